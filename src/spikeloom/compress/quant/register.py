"""``spikeloom compress --method int8|quant|duq|ternary``: quantization-aware fine-tuning.

Options (shared by the three methods): ``--bits`` (weights; default 8, ``duq``: 2),
``--per-tensor`` / ``--per-channel`` (default: per channel for ``int8``/``quant``, per tensor for
``duq``/``ternary`` as in spec A8), ``--asymmetric``, ``--duq-init 3sigma|mse``, ``--act-bits``
(analog inputs, default 8), ``--mem-bits`` (membrane, default 16), ``--first-last-bits`` (the
first and last synaptic layers at these weight bits, e.g. 8; default: ``--bits`` everywhere),
``--no-neuron-quant`` (keep neurons in float).
"""

from __future__ import annotations

import argparse
from typing import Any

from torch import nn

from ...errors import ConfigError
from ..methods import add_option, register_method
from .api import QuantConfig, quantize
from .fake import DUQ_INITS

__all__ = ["config_from_args"]


def _add_args(p: argparse.ArgumentParser) -> None:
    add_option(p, "--bits", type=int, default=None,
               help="weight bits 2..8 (default 8; duq: 2 = ternary)")
    add_option(p, "--per-tensor", action="store_true",
               help="one weight scale per tensor (default of duq)")
    add_option(p, "--per-channel", action="store_true",
               help="one weight scale per output channel (default of int8/quant)")
    add_option(p, "--duq-init", choices=list(DUQ_INITS), default="3sigma",
               help="DuQ's initial clip/scale: 3sigma (spec) or mse (least squares)")
    add_option(p, "--asymmetric", action="store_true", help="asymmetric weight grid")
    add_option(p, "--act-bits", type=int, default=8, help="bits of analog inputs (default 8)")
    add_option(p, "--mem-bits", type=int, default=16, help="membrane bits (default 16)")
    add_option(p, "--first-last-bits", type=int, default=None,
               help="weight bits of the first and last synaptic layers (e.g. 8; default: "
                    "--bits like the others)")
    add_option(p, "--no-neuron-quant", action="store_true",
               help="keep neurons in floating point")


def _per_channel(args: argparse.Namespace) -> bool | None:
    if args.per_tensor and args.per_channel:
        raise ConfigError("give one of --per-tensor and --per-channel")
    return False if args.per_tensor else (True if args.per_channel else None)


def config_from_args(args: argparse.Namespace, method: str = "uniform",
                     default_bits: int = 8) -> QuantConfig:
    """The :class:`QuantConfig` of the command-line options."""
    return QuantConfig(
        weight_bits=args.bits if args.bits is not None else default_bits,
        weight_method=method, per_channel=_per_channel(args), symmetric=not args.asymmetric,
        duq_init=args.duq_init,
        act_bits=args.act_bits, neurons=not args.no_neuron_quant, mem_bits=args.mem_bits,
        first_last_bits=getattr(args, "first_last_bits", None))


def _apply(method: str, bits: int):
    def apply(model: nn.Module, args: argparse.Namespace, spec: Any) -> nn.Module:
        return quantize(model, config_from_args(args, method, bits))
    return apply


register_method("int8", apply=_apply("uniform", 8), add_arguments=_add_args,
                description="8-bit weights and activations, integer neuron state (QAT)")
register_method("quant", apply=_apply("uniform", 8), add_arguments=_add_args,
                description="uniform QAT with --bits N weights (2..8)")
register_method("duq", apply=_apply("duq", 2), add_arguments=_add_args,
                description="DuQ learnable clip/scale weights (spec A8); --bits 2 = ternary")


def _ternary(model: nn.Module, args: argparse.Namespace, spec: Any) -> nn.Module:
    if args.bits not in (None, 2):
        raise ConfigError(f"--method ternary is DuQ with 2 bits; got --bits {args.bits}")
    return quantize(model, config_from_args(args, "duq", 2))


register_method("ternary", apply=_ternary, add_arguments=_add_args,
                description="ternary weights {-c, 0, c}: DuQ with 2 bits (spec A8)")
