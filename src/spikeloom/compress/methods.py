"""The compression-method registry behind ``spikeloom compress``.

HOW TO PLUG IN A METHOD (pruning, tensorization, quantization, ...)::

    from spikeloom.compress.methods import add_option, register_method

    def _add_args(p):                       # options of the method on the `compress` parser
        add_option(p, "--sparsity", type=float, default=0.8, help="fraction of weights zeroed")

    def _apply(model, args, spec):          # args: argparse.Namespace, spec: the DataSpec
        prune_global(model, args.sparsity)  # in place, or return a new module
        return model

    register_method("prune", apply=_apply, add_arguments=_add_args,
                    description="global magnitude pruning")

Put the ``register_method`` call at the bottom of your method's module and import that module
in :mod:`spikeloom.compress` (``__init__.py``) so that the registration runs.

Rules:

* ``apply(model, args, spec) -> model`` compresses a *built* model. It is called twice in a
  run's life: (1) by ``spikeloom compress`` on the source run's trained weights, (2) whenever the
  compressed run is rebuilt (``load_run``, ``spikeloom eval/cost``, ``train --resume``) on a
  freshly built model whose weights are overwritten right after by the compressed checkpoint.
  So ``apply`` must create the same modules, parameters and buffers every time, given the same
  options; values it computes from the weights (scales, masks) must live in the state dict.
* Options: every method's options are added to the one ``compress`` parser, so two methods may
  use the same option name (``--bits``). Add them with :func:`add_option`, which adds an option
  only when its destination is not there yet; a shared option therefore must have the same
  meaning and default in every method that uses it. The options a method added (found by
  calling ``add_arguments`` on a scratch parser) are saved in the compressed run's config
  (``compress: {method, options, source}``), so the rebuild gets the same ones.
* ``finetune=False`` marks a method that is not fine-tuned (``--epochs`` must be 0 for it).
* ``callbacks(model, args) -> list[Callback]`` (optional) adds training callbacks for the
  fine-tuning (e.g. weight updates on a grid).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import ConfigError
from ..registry import Registry

__all__ = ["COMPRESS_METHODS", "CompressMethod", "register_method", "add_option",
           "method_options", "apply_saved"]


@dataclass(frozen=True)
class CompressMethod:
    """One registered compression method (see the module docstring)."""

    name: str
    apply: Callable[[nn.Module, argparse.Namespace, Any], nn.Module]
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    description: str = ""
    finetune: bool = True
    callbacks: Callable[[nn.Module, argparse.Namespace], list] | None = None


#: method name -> :class:`CompressMethod`
COMPRESS_METHODS: Registry[CompressMethod] = Registry("compression method")


def register_method(name: str, *, apply: Callable[..., nn.Module],
                    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
                    description: str = "", finetune: bool = True,
                    callbacks: Callable[..., list] | None = None,
                    replace: bool = False) -> CompressMethod:
    """Register a compression method under ``name`` (see the module docstring)."""
    m = CompressMethod(name, apply, add_arguments, description, finetune, callbacks)
    COMPRESS_METHODS.register(name, m, replace=replace)
    return m


def add_option(parser: argparse.ArgumentParser, *flags: str, **kwargs: Any) -> None:
    """``parser.add_argument(*flags, **kwargs)`` unless an option with that destination (or
    one of those flags) exists already (methods share options by name)."""
    dest = kwargs.get("dest") or flags[0].lstrip("-").replace("-", "_")
    have_dest = any(a.dest == dest for a in parser._actions)
    have_flag = any(f in parser._option_string_actions for f in flags)
    if not (have_dest or have_flag):
        parser.add_argument(*flags, **kwargs)


def method_options(method: CompressMethod) -> dict[str, Any]:
    """``{dest: default}`` of the options that ``method`` adds."""
    p = argparse.ArgumentParser(add_help=False)
    if method.add_arguments is not None:
        method.add_arguments(p)
    return {a.dest: a.default for a in p._actions}


def namespace_for(method: CompressMethod, values: Mapping[str, Any]) -> argparse.Namespace:
    """The method's options with defaults, overridden by ``values``."""
    opts = method_options(method)
    unknown = sorted(set(values) - set(opts))
    if unknown:
        raise ConfigError(f"compression method {method.name!r} has no option(s) "
                          f"{', '.join(unknown)} (its options: {', '.join(sorted(opts)) or '-'})")
    return argparse.Namespace(**{**opts, **values})


def apply_saved(model: nn.Module, saved: Mapping[str, Any], spec: Any) -> nn.Module:
    """Re-apply a run's saved compression (``config.compress``) to a freshly built model.

    When the source checkpoint named in ``saved["source"]`` exists its weights are loaded
    first (so calibrated values start from the trained model; a rebuild for a compressed
    checkpoint overwrites them anyway).
    """
    if not isinstance(saved, Mapping) or "method" not in saved:
        raise ConfigError(f"config key 'compress' must be a mapping with 'method', got {saved!r}")
    method = COMPRESS_METHODS.get(saved["method"])
    args = namespace_for(method, saved.get("options") or {})
    src = saved.get("source")
    if src and Path(src).exists():
        from ..train.checkpoint import load_checkpoint

        dev = next((p.device for p in model.parameters()), "cpu")
        model.load_state_dict(load_checkpoint(Path(src), dev)["model"])
    return method.apply(model, args, spec)
