"""``lower(model)``: a quantized spiking network -> :class:`~.program.IntegerProgram`, and
``frozen_twin(model, program)``: the same network in torch computing the same integers.

What can be lowered: a feed-forward chain (in call order) of quantized ``Conv2d``/``Linear``
synapses (``TimeDistributed`` or not), each optionally followed by a BatchNorm/tdBN (folded, eval
statistics) and a :class:`~spikeloom.compress.quant.QuantNeuron` wrapping a spiking LIF/IF/PLIF
neuron; average pooling (``AvgPool2d``, ``AdaptiveAvgPool2d`` with a whole-number ratio) between
them; dropout/identity; a last synapse without neuron read out by the mean over time. The first
synapse needs its input quantizer (``act_bits``). Anything else is refused with the layer's name
and the reason.

Fixed point: for a synapse with integer weights ``W`` (scale ``s_w`` per channel), input codes of
real value ``s_in`` each, folded norm ``a·y + b`` and neuron step ``Δ`` (input gain ``g``), the
current is ``I = round(acc·r + o)`` with ``r = s_in·s_w·a·g/Δ``, ``o = (bias·a + b)·g/Δ``, done
as ``(acc·M + B + 2^(S−1)) >> S`` with ``M = round(r·2^S)``, ``B = round(o·2^S)`` and the
largest ``S ≤ 30`` that keeps ``|acc·M|`` below ``2^52`` (exact in int64 and float64).
The frozen twin is a float64 copy whose weights return their integer codes, whose norms are
folded away and whose neurons compute exactly this current; its spikes equal the executor's
bit for bit.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ...errors import ConfigError
from ...layers import MeanOverTime, TdBN
from ...walk import iter_layers, run_hooked
from ..quant.api import is_quantized
from ..quant.fake import ActFakeQuant
from ..quant.neuron import QuantNeuron
from .program import IntegerProgram

__all__ = ["lower", "frozen_twin", "spike_outputs", "LOWERABLE"]

LOWERABLE = ("Conv2d", "Linear", "BatchNorm1d/2d", "TdBN", "QuantNeuron(LIF/IF/PLIF)",
             "AvgPool2d", "AdaptiveAvgPool2d", "Dropout", "Identity", "MeanOverTime")
_SKIP = (nn.Dropout, nn.Identity)


def _trace(model: nn.Module, example: Tensor) -> list[tuple[str, nn.Module, tuple, tuple]]:
    """Walked layers in call order with input and output shapes (one forward on ``example``)."""
    calls: list[tuple[str, nn.Module, tuple, tuple]] = []
    handles = []
    for layer in iter_layers(model):
        def hook(m, args, out, name=layer.name):
            calls.append((name, m, tuple(args[0].shape), tuple(out.shape)))
        handles.append(layer.module.register_forward_hook(hook))
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(example)
    finally:
        model.train(was)
        for h in handles:
            h.remove()
    return calls


def _norm_affine(m: nn.Module) -> tuple[Tensor, Tensor]:
    """Eval-mode ``a·x + b`` of a BatchNorm or tdBN (per channel)."""
    if isinstance(m, TdBN):
        w = m.effective_weight()
    elif isinstance(m, nn.modules.batchnorm._BatchNorm):
        w = m.weight
    else:
        raise ConfigError(f"norm {type(m).__name__} cannot be folded (BatchNorm or TdBN only)")
    if m.running_var is None:
        raise ConfigError(f"{type(m).__name__} without running statistics cannot be folded")
    a = 1.0 / torch.sqrt(m.running_var.double() + m.eps)
    if w is not None:
        a = a * w.detach().double()
    b = -m.running_mean.double() * a
    if getattr(m, "bias", None) is not None:
        b = b + m.bias.detach().double()
    return a, b


def _weight_codes(m: nn.Module, name: str) -> tuple[np.ndarray, Tensor]:
    if not parametrize.is_parametrized(m, "weight"):
        raise ConfigError(f"layer {name!r}: weights are not quantized (run quantize first)")
    q = m.parametrizations.weight[0]
    with torch.no_grad():
        codes, s = q.codes(m.parametrizations.weight.original)
    s = s.double().reshape(-1)
    s = s.expand(codes.shape[0]) if s.numel() == 1 else s
    if float(codes.abs().max()) > 127:
        raise ConfigError(f"layer {name!r}: weight codes exceed int8")
    return codes.numpy().astype(np.int8), s


def _fixed_point(r: np.ndarray, o: np.ndarray, acc_bound: float) -> tuple[np.ndarray, ...]:
    big = float(np.abs(r).max()) * acc_bound + float(np.abs(o).max()) + 1.0
    shift = int(min(30, math.floor(52 - math.log2(max(big, 1.0)))))
    if shift < 1:
        raise ConfigError("fixed-point multiplier out of range (accumulator too large)")
    m = np.floor(r * 2.0 ** shift + 0.5).astype(np.int64)
    b = np.floor(o * 2.0 ** shift + 0.5).astype(np.int64)
    return m, b, shift


class _Lowering:
    """State of one pass over the traced layers."""

    def __init__(self) -> None:
        self.ops: list[dict[str, Any]] = []
        self.twin: dict[str, dict[str, Any]] = {}  # neuron name -> requant values
        self.in_scale = None  # real value of one input code of the next synapse
        self.code_max = 0.0  # largest input code magnitude
        self.div = 1.0  # twin: (torch value) * div = integer code
        self.syn: dict[str, Any] | None = None

    def synapse(self, name: str, m: nn.Module, in_shape: tuple) -> None:
        if self.syn is not None:
            raise ConfigError(f"layer {name!r}: two synapses in a row cannot be lowered "
                              f"(after {self.syn['name']!r})")
        aq = getattr(m, "input_quant", None)
        if self.in_scale is None:
            if not isinstance(aq, ActFakeQuant):
                raise ConfigError(f"layer {name!r}: the first synapse's input must be quantized "
                                  "(quantize with act_bits)")
            lo, hi = aq.qrange
            self.ops.append({"op": "input_quant", "scale": aq.scale(), "qmin": lo, "qmax": hi})
            self.in_scale, self.code_max = aq.scale(), float(max(abs(lo), hi))
        elif isinstance(aq, ActFakeQuant):
            raise ConfigError(f"layer {name!r}: an analog (LIAF) input cannot be lowered")
        codes, s_w = _weight_codes(m, name)
        if isinstance(m, nn.Conv2d):
            if m.groups != 1 or m.dilation != (1, 1) or len(set(m.stride)) > 1 \
                    or not isinstance(m.padding, tuple) or len(set(m.padding)) > 1:
                raise ConfigError(f"layer {name!r}: only square stride/padding, groups=1, "
                                  "dilation=1 convolutions can be lowered")
            self.ops.append({"op": "conv2d", "weight": codes, "stride": m.stride[0],
                             "padding": m.padding[0]})
        elif isinstance(m, nn.Linear):
            self.ops.append({"op": "linear", "weight": codes})
        else:
            raise ConfigError(f"layer {name!r} ({type(m).__name__}) cannot be lowered; "
                              f"supported: {', '.join(LOWERABLE)}")
        fan_in = codes[0].size
        bias = m.bias.detach().double() if m.bias is not None else torch.zeros(len(s_w),
                                                                               dtype=torch.float64)
        self.syn = {"name": name, "s_w": s_w, "bias": bias, "a": torch.ones_like(s_w),
                    "b": torch.zeros_like(s_w), "div": self.div,
                    "acc_bound": fan_in * 127.0 * self.code_max}

    def norm(self, name: str, m: nn.Module) -> None:
        if self.syn is None:
            raise ConfigError(f"layer {name!r}: a norm must follow a synapse to be folded")
        a, b = _norm_affine(m)
        self.syn["a"], self.syn["b"] = self.syn["a"] * a, self.syn["b"] * a + b

    def neuron(self, name: str, m: nn.Module) -> None:
        if not isinstance(m, QuantNeuron):
            raise ConfigError(f"layer {name!r} ({type(m).__name__}): neurons must be quantized "
                              "(QuantNeuron) to be lowered")
        if not m.emits_spikes:
            raise ConfigError(f"layer {name!r}: analog-output neurons (LIAF) cannot be lowered")
        if self.syn is None:
            raise ConfigError(f"layer {name!r}: a neuron must follow a synapse")
        g = m.input_scale()
        g = float(g.detach()) if isinstance(g, Tensor) else float(g)
        sy = self.syn
        r = (self.in_scale * sy["s_w"] * sy["a"] * g / m.delta).numpy()
        o = ((sy["bias"] * sy["a"] + sy["b"]) * g / m.delta).numpy()
        mult, bias, shift = _fixed_point(r, o, sy["acc_bound"])
        lo, hi = m.qrange
        self.ops.append({
            "op": "neuron", "name": name, "mult": mult, "bias": bias, "shift": shift,
            "theta": m.theta, "v_reset": m.v_reset_int, "decay_m": int(m.decay_int().detach()),
            "decay_bits": m.decay_bits, "lo": lo, "hi": hi, "soft": m.spec.reset == "soft",
            "fire_ge": m.spec.fire_ge})
        self.twin[name] = {"mult": mult, "bias": bias, "shift": shift, "div": sy["div"],
                           "synapse": sy["name"]}
        self.syn, self.in_scale, self.code_max, self.div = None, 1.0, 1.0, 1.0

    def pool(self, name: str, m: nn.Module, in_shape: tuple, out_shape: tuple) -> None:
        if self.syn is not None:
            raise ConfigError(f"layer {name!r}: pooling between a synapse and its neuron "
                              "cannot be lowered")
        if isinstance(m, nn.AdaptiveAvgPool2d):
            (h, w), (ho, wo) = in_shape[-2:], out_shape[-2:]
            if h % ho or w % wo or h // ho != w // wo:
                raise ConfigError(f"layer {name!r}: adaptive pooling {h}x{w} -> {ho}x{wo} is not "
                                  "a whole square ratio")
            k = h // ho
        elif isinstance(m, nn.AvgPool2d):
            k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            if m.stride not in (k, (k, k)) or m.padding not in (0, (0, 0)) or \
                    not isinstance(m.kernel_size, int) and len(set(m.kernel_size)) > 1:
                raise ConfigError(f"layer {name!r}: only square non-overlapping average "
                                  "pooling can be lowered")
        else:
            raise ConfigError(f"layer {name!r} ({type(m).__name__}) cannot be lowered; "
                              f"supported: {', '.join(LOWERABLE)}")
        if k == 1:
            return
        self.ops.append({"op": "sumpool", "k": k})
        self.in_scale /= k * k
        self.code_max *= k * k
        self.div *= k * k

    def readout(self, name: str) -> None:
        sy = self.syn
        if sy is None:
            raise ConfigError(f"layer {name!r}: the readout must follow the last synapse")
        if not torch.equal(sy["a"], torch.ones_like(sy["a"])) or bool(sy["b"].abs().max() > 0):
            raise ConfigError(f"layer {name!r}: a norm before the readout cannot be lowered")
        self.ops.append({"op": "output", "scale": (self.in_scale * sy["s_w"]).numpy(),
                         "bias": sy["bias"].numpy()})
        self.twin["(output)"] = {"synapse": sy["name"]}
        self.syn = None


def lower(model: nn.Module, example: Tensor) -> IntegerProgram:
    """Lower a quantized model (see the module docstring); ``example`` is one input batch
    ``[T, B, ...]`` (only its shape matters)."""
    if not is_quantized(model):
        raise ConfigError("lower() needs a quantized model (spikeloom.compress.quant.quantize)")
    st = _Lowering()
    for name, m, in_shape, out_shape in _trace(model, example):
        role = type(m)
        if isinstance(m, _SKIP):
            continue
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            st.synapse(name, m, in_shape)
        elif isinstance(m, (TdBN, nn.modules.batchnorm._BatchNorm)):
            st.norm(name, m)
        elif isinstance(m, QuantNeuron) or getattr(m, "emits_spikes", None) is not None:
            st.neuron(name, m)
        elif isinstance(m, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            st.pool(name, m, in_shape, out_shape)
        elif isinstance(m, MeanOverTime):
            st.readout(name)
        else:
            raise ConfigError(f"layer {name!r} ({role.__name__}) cannot be lowered; "
                              f"supported: {', '.join(LOWERABLE)}")
    if not st.ops or st.ops[-1]["op"] != "output":
        raise ConfigError("the model does not end in a synapse read out by MeanOverTime")
    prog = IntegerProgram(st.ops, {"T": int(example.shape[0])})
    prog.twin = st.twin  # type: ignore[attr-defined]  (used by frozen_twin)
    return prog


def frozen_twin(model: nn.Module, program: IntegerProgram) -> nn.Module:
    """A float64 copy of ``model`` computing the program's integers (see the module docstring).

    ``program`` must come from :func:`lower` on this model in this process.
    """
    twin_info = getattr(program, "twin", None)
    if twin_info is None:
        raise ConfigError("frozen_twin needs the program returned by lower() (not a loaded one)")
    twin = copy.deepcopy(model).double().eval()
    out_syn = twin_info.get("(output)", {}).get("synapse")
    for name, m in list(twin.named_modules()):
        if isinstance(m, (TdBN, nn.modules.batchnorm._BatchNorm)):
            parent, _, child = name.rpartition(".")
            setattr(twin.get_submodule(parent) if parent else twin, child, nn.Identity())
    for name, m in twin.named_modules():
        if isinstance(m, ActFakeQuant):
            m.exact = True
        if parametrize.is_parametrized(m, "weight") and name != out_syn:
            m.parametrizations.weight[0].exact = True
            if m.bias is not None:
                m.bias = None
        if isinstance(m, QuantNeuron) and name in twin_info:
            info = twin_info[name]
            m.exact = True
            m.rq_mult = torch.as_tensor(info["mult"], dtype=torch.float64)
            m.rq_bias = torch.as_tensor(info["bias"], dtype=torch.float64)
            m.rq_shift, m.rq_div = int(info["shift"]), float(info["div"])
    return twin


def spike_outputs(model: nn.Module, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """``(logits, {neuron name: spikes [T, B, ...]})`` of one forward pass of ``model``."""
    spikes: dict[str, Tensor] = {}
    handles = [m.register_forward_hook(lambda m, a, out, n=name: spikes.__setitem__(n, out))
               for name, m in model.named_modules() if isinstance(m, QuantNeuron)]
    return run_hooked(model, x, handles), spikes
