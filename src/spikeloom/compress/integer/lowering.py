"""``lower(model)``: a quantized spiking network -> :class:`~.program.IntegerProgram`.

The lowering follows the data flow of one traced forward pass: every walked layer's inputs are
matched to the layer that produced them (by tensor storage, so views and ``flatten`` pass
through), so branches and residual sums are lowered as well as chains. Each value is either

* *codes*: an integer tensor in a slot of the program with a real value per code unit (the
  quantized input, spikes, LIAF activations, their sum-pools), or
* *pending*: a sum of terms ``Σ_i acc_i·r_i + o`` (per channel) not yet requantised — the
  accumulator of a synapse, with folded BatchNorm/tdBN (eval statistics), and residual ``Add``
  s of such accumulators and of spike tensors.

A neuron requantises a pending value to its integer input current; the last synapse is read
out by the mean over time. What can be lowered: quantized ``Conv2d``/``Linear`` synapses
(``TimeDistributed`` or not), BatchNorm/tdBN after a synapse or a sum, :class:`~spikeloom.
compress.quant.QuantNeuron` around LIF/IF/PLIF and LIAF with ReLU (analog output: the next
synapse's activation grid becomes an integer requantisation), ``Add`` of two or more branches
(each one synapse accumulator or a spike tensor), average pooling (``AvgPool2d``,
``AdaptiveAvgPool2d`` with a whole-number ratio), max pooling of spikes or LIAF activations,
dropout/identity/flatten and a last synapse
read out by ``MeanOverTime``. Anything else is refused in one line naming the layer and why.

Fixed point: a neuron with step ``Δ`` and input gain ``g`` fed by terms of real multiplier
``r_i`` (input code value × weight scale × folded norm scale) and offset ``o`` gets the current
``I = (Σ_i acc_i·M_i + B + 2^(S−1)) >> S`` with ``M_i = round(r_i·g/Δ·2^S)``,
``B = round(o·g/Δ·2^S)`` and one common shift ``S ≤ 30``, the largest that keeps
``Σ_i |acc_i·M_i|`` below ``2^52`` (exact in int64 and float64). A residual sum is thus
requantised once, on the common scale of the neuron's current. An analog value ``a`` (LIAF
output, step ``Δ``, maybe sum-pooled) entering a synapse with input grid ``s`` becomes
``clamp((a·M + 2^(S−1)) >> S, 0, 2^b − 1)`` with ``M = round(Δ/(k²·s)·2^S)``; when ``V_th``
is a power of two (the default 0.5) that ratio is a power of two and the rule equals the
fake-quant's ``round(x/s)`` exactly. :func:`~.twin.frozen_twin` builds the torch model that
computes these integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
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

__all__ = ["lower", "spike_outputs", "LOWERABLE"]

LOWERABLE = ("Conv2d", "Linear", "BatchNorm1d/2d", "TdBN", "QuantNeuron(LIF/IF/PLIF/LIAF-relu)",
             "Add", "AvgPool2d", "AdaptiveAvgPool2d", "MaxPool2d", "AdaptiveMaxPool2d",
             "Dropout", "Identity", "Flatten", "MeanOverTime")
_SKIP = (nn.Dropout, nn.Identity, nn.Flatten)


@dataclass
class _Call:
    name: str
    module: nn.Module
    inputs: list[int]  # storage keys of the tensor arguments
    in_shapes: list[tuple]
    output: int
    out_shape: tuple


def _key(t: Tensor) -> int:
    return t.untyped_storage().data_ptr()


def _trace(model: nn.Module, example: Tensor) -> tuple[int, list[_Call]]:
    """The model input's key and the walked layers' calls in order (one forward on
    ``example``; every tensor is kept alive so storage keys are never reused)."""
    calls: list[_Call] = []
    keep: list[Tensor] = []
    raw: dict[int, Tensor] = {}  # a synapse's input before its input quantizer's pre-hook
    handles = []
    for layer in iter_layers(model):
        def hook(m, args, out, name=layer.name):
            ts = [a for a in args if isinstance(a, Tensor)]
            if id(m) in raw:
                ts[0] = raw.pop(id(m))
            keep.extend([*ts, out])
            calls.append(_Call(name, m, [_key(t) for t in ts], [tuple(t.shape) for t in ts],
                               _key(out), tuple(out.shape)))
        handles.append(layer.module.register_forward_hook(hook))
        if isinstance(getattr(layer.module, "input_quant", None), ActFakeQuant):
            handles.append(layer.module.register_forward_pre_hook(
                lambda m, args: raw.__setitem__(id(m), args[0]), prepend=True))
    was = model.training
    model.eval()
    try:
        run_hooked(model, example, handles)
    finally:
        model.train(was)
    return _key(example), calls


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


def _fixed_point(terms: list[tuple[np.ndarray, float]], o: np.ndarray
                 ) -> tuple[list[np.ndarray], np.ndarray, int]:
    """Multipliers ``M_i`` of ``(r_i, bound_i)`` terms, the offset ``B`` and the common shift."""
    big = sum(float(np.abs(r).max()) * bound for r, bound in terms) + float(np.abs(o).max()) + 1
    shift = int(min(30, math.floor(52 - math.log2(max(big, 1.0)))))
    if shift < 1:
        raise ConfigError("fixed-point multiplier out of range (accumulator too large)")
    ms = [np.floor(r * 2.0 ** shift + 0.5).astype(np.int64) for r, _ in terms]
    return ms, np.floor(o * 2.0 ** shift + 0.5).astype(np.int64), shift


@dataclass
class _Codes:
    """An integer tensor in ``slot``: real value ``scale`` per code, ``|code| ≤ bound``; the
    frozen twin holds ``code / div``; ``analog``: LIAF activations not yet on an input grid."""

    slot: int
    scale: float
    bound: float
    div: float = 1.0
    analog: bool = False


@dataclass
class _Term:
    slot: int
    r: Tensor  # [C] real value of one accumulator unit
    bound: float  # largest |accumulator|
    div: float  # the twin holds accumulator / div


@dataclass
class _Pending:
    """``Σ terms + o``: synapse accumulators (and spikes) not yet requantised."""

    terms: list[_Term]
    o: Tensor
    synapse: str | None = None  # the synapse of a single-term value (for the readout)
    normed: bool = False
    adds: list[str] = field(default_factory=list)


class _Lowering:
    """State of one pass over the traced calls (one handler per walk role)."""

    def __init__(self, input_key: int) -> None:
        self.ops: list[dict[str, Any]] = []
        self.values: dict[int, Any] = {input_key: "input"}
        self.twin: dict[str, dict[str, Any]] = {}
        self.n_slots = 1  # slot 0: the input frames

    def emit(self, op: dict[str, Any], src: list[int]) -> int:
        op["src"], op["dst"] = np.asarray(src, np.int64), self.n_slots
        self.ops.append(op)
        self.n_slots += 1
        return op["dst"]

    def value(self, call: _Call, i: int = 0) -> Any:
        v = self.values.get(call.inputs[i]) if call.inputs else None
        if v is None:
            raise ConfigError(f"layer {call.name!r}: its input does not come from a lowerable "
                              "layer (a tensor operation outside the layer walk?)")
        return v

    # ---- handlers ---------------------------------------------------------------------------
    def synapse(self, c: _Call) -> Any:
        m, v = c.module, self.value(c)
        if not isinstance(m, (nn.Conv2d, nn.Linear)):
            raise ConfigError(f"layer {c.name!r} ({type(m).__name__}) cannot be lowered; "
                              f"supported: {', '.join(LOWERABLE)}")
        if isinstance(v, _Pending):
            raise ConfigError(f"layer {c.name!r}: its input is an accumulator without a neuron "
                              "(two synapses in a row) and cannot be lowered")
        v = self.input_grid(c, v)
        codes, s_w = _weight_codes(m, c.name)
        if isinstance(m, nn.Conv2d):
            if m.groups != 1 or m.dilation != (1, 1) or len(set(m.stride)) > 1 \
                    or not isinstance(m.padding, tuple) or len(set(m.padding)) > 1:
                raise ConfigError(f"layer {c.name!r}: only square stride/padding, groups=1, "
                                  "dilation=1 convolutions can be lowered")
            op = {"op": "conv2d", "weight": codes, "stride": m.stride[0],
                  "padding": m.padding[0]}
        else:
            op = {"op": "linear", "weight": codes}
        slot = self.emit(op, [v.slot])
        bias = m.bias.detach().double() if m.bias is not None else torch.zeros_like(s_w)
        bound = float(np.abs(codes.reshape(len(codes), -1).astype(np.int64)).sum(1).max())
        return _Pending([_Term(slot, v.scale * s_w, bound * v.bound, v.div)], bias, c.name)

    def input_grid(self, c: _Call, v: Any) -> _Codes:
        """The synapse's input codes: its input quantizer applied to the frames or to an analog
        (LIAF) value; spike codes pass as they are."""
        aq = getattr(c.module, "input_quant", None)
        if v == "input" or (isinstance(v, _Codes) and v.analog):
            if not isinstance(aq, ActFakeQuant):
                what = "the network input" if v == "input" else "an analog (LIAF) value"
                raise ConfigError(f"layer {c.name!r}: its input is {what} and must be quantized "
                                  "(quantize with act_bits)")
            lo, hi = aq.qrange
            if v == "input":
                slot = self.emit({"op": "input_quant", "scale": aq.scale(), "qmin": lo,
                                  "qmax": hi}, [0])
            else:
                (mult,), _, shift = _fixed_point([(np.array([v.scale / aq.scale()]), v.bound)],
                                                 np.zeros(1))
                slot = self.emit({"op": "act_requant", "mult": int(mult[0]), "shift": shift,
                                  "qmin": lo, "qmax": hi}, [v.slot])
                self.twin[c.name] = {"act_mult": int(mult[0]), "act_shift": shift,
                                     "act_div": v.div}
            return _Codes(slot, aq.scale(), float(max(abs(lo), hi)))
        if isinstance(aq, ActFakeQuant):
            raise ConfigError(f"layer {c.name!r}: an input quantizer on a spike input cannot "
                              "be lowered")
        return v

    def norm(self, c: _Call) -> Any:
        v = self.value(c)
        if not isinstance(v, _Pending):
            raise ConfigError(f"layer {c.name!r}: a norm must follow a synapse or a residual "
                              "sum to be folded")
        a, b = _norm_affine(c.module)
        return replace(v, terms=[replace(t, r=t.r * a) for t in v.terms], o=v.o * a + b,
                       normed=True)

    def merge(self, c: _Call) -> Any:
        if type(c.module).__name__ != "Add":
            raise ConfigError(f"layer {c.name!r} ({type(c.module).__name__}): only Add merges "
                              "can be lowered")
        terms, o = [], None
        for i, shape in enumerate(c.in_shapes):
            v = self.value(c, i)
            if isinstance(v, _Codes) and not v.analog:
                ch = shape[2] if len(shape) > 2 else 1
                v = _Pending([_Term(v.slot, torch.full((ch,), v.scale, dtype=torch.float64),
                                    v.bound, v.div)], torch.zeros(ch, dtype=torch.float64))
            if not isinstance(v, _Pending) or len(v.terms) != 1:
                raise ConfigError(f"layer {c.name!r}: each branch of a residual Add must be one "
                                  "synapse (with its norm) or a spike tensor to be lowered")
            terms += v.terms
            o = v.o if o is None else o + v.o
        return _Pending(terms, o, None, True, [c.name])

    def neuron(self, c: _Call) -> Any:
        m, v = c.module, self.value(c)
        if not isinstance(m, QuantNeuron):
            raise ConfigError(f"layer {c.name!r} ({type(m).__name__}): neurons must be quantized "
                              "(QuantNeuron) to be lowered")
        analog = not m.emits_spikes
        act = getattr(m.inner, "activation_name", "relu")
        if analog and act != "relu":
            raise ConfigError(f"layer {c.name!r}: LIAF activation {act!r} cannot be lowered "
                              "(relu only)")
        if not isinstance(v, _Pending):
            raise ConfigError(f"layer {c.name!r}: a neuron must follow a synapse or a residual "
                              "sum")
        g = m.input_scale()
        g = float(g.detach()) if isinstance(g, Tensor) else float(g)
        mults, bias, shift = _fixed_point([((t.r * g / m.delta).numpy(), t.bound)
                                           for t in v.terms], (v.o * g / m.delta).numpy())
        lo, hi = m.qrange
        tr = analog and getattr(m.inner, "mode", "ntr") == "tr"
        op = {"op": "neuron", "name": c.name, "mult": np.stack(mults), "bias": bias,
              "shift": shift, "theta": m.theta, "v_reset": m.v_reset_int,
              "decay_m": int(m.decay_int().detach()), "decay_bits": m.decay_bits, "lo": lo,
              "hi": hi, "soft": m.spec.reset == "soft", "fire_ge": m.spec.fire_ge,
              "analog": analog, "tr": tr}
        slot = self.emit(op, [t.slot for t in v.terms])
        if len(v.terms) == 1:
            self.twin[c.name] = {"mult": mults[0], "bias": bias, "shift": shift,
                                 "div": v.terms[0].div}
        else:  # the twin's Add forms Σ acc_i·M_i itself
            self.twin[v.adds[0]] = {"mults": mults, "divs": [t.div for t in v.terms]}
            self.twin[c.name] = {"mult": np.ones_like(bias), "bias": bias, "shift": shift,
                                 "div": 1.0}
        if analog:
            return _Codes(slot, m.delta, float(max(abs(lo), hi)), 1.0, True)
        return _Codes(slot, 1.0, 1.0)

    def pool(self, c: _Call) -> Any:
        m, v = c.module, self.value(c)
        if isinstance(v, _Pending) or v == "input":
            raise ConfigError(f"layer {c.name!r}: pooling can be lowered only after a neuron")
        if isinstance(m, nn.AdaptiveAvgPool2d):
            (h, w), (ho, wo) = c.in_shapes[0][-2:], c.out_shape[-2:]
            if h % ho or w % wo or h // ho != w // wo:
                raise ConfigError(f"layer {c.name!r}: adaptive pooling {h}x{w} -> {ho}x{wo} is "
                                  "not a whole square ratio")
            k = h // ho
        elif isinstance(m, nn.AvgPool2d):
            k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            if m.stride not in (k, (k, k)) or m.padding not in (0, (0, 0)) or \
                    not isinstance(m.kernel_size, int) and len(set(m.kernel_size)) > 1:
                raise ConfigError(f"layer {c.name!r}: only square non-overlapping average "
                                  "pooling can be lowered")
        elif isinstance(m, (nn.MaxPool2d, nn.AdaptiveMaxPool2d)):
            return self.maxpool(c, v)
        else:
            raise ConfigError(f"layer {c.name!r} ({type(m).__name__}) cannot be lowered; "
                              f"supported: {', '.join(LOWERABLE)}")
        if k == 1:
            return v
        slot = self.emit({"op": "sumpool", "k": k}, [v.slot])
        return replace(v, slot=slot, scale=v.scale / k ** 2, bound=v.bound * k ** 2,
                       div=v.div * k ** 2)

    def maxpool(self, c: _Call, v: _Codes) -> _Codes:
        """Max pooling of non-negative codes (spikes, LIAF activations): scale unchanged."""
        m = c.module
        if isinstance(m, nn.AdaptiveMaxPool2d):
            (h, w), (ho, wo) = c.in_shapes[0][-2:], c.out_shape[-2:]
            if h % ho or w % wo or h // ho != w // wo:
                raise ConfigError(f"layer {c.name!r}: adaptive pooling {h}x{w} -> {ho}x{wo} is "
                                  "not a whole square ratio")
            k = stride = h // ho
            pad = 0
        else:
            k, stride, pad, dil = (x if isinstance(x, int) else x[0] if len(set(x)) == 1
                                   else None for x in (m.kernel_size, m.stride or m.kernel_size,
                                                       m.padding, m.dilation))
            if None in (k, stride, pad) or dil != 1 or m.ceil_mode:
                raise ConfigError(f"layer {c.name!r}: only square max pooling without dilation "
                                  "or ceil_mode can be lowered")
        slot = self.emit({"op": "maxpool", "k": k, "stride": stride, "padding": pad}, [v.slot])
        return replace(v, slot=slot)

    def readout(self, c: _Call) -> Any:
        v = self.value(c)
        if not isinstance(c.module, MeanOverTime):
            raise ConfigError(f"layer {c.name!r} ({type(c.module).__name__}): only the mean "
                              "over time can be lowered as the readout")
        if not isinstance(v, _Pending) or v.synapse is None:
            raise ConfigError(f"layer {c.name!r}: the readout must follow the last synapse")
        if v.normed:
            raise ConfigError(f"layer {c.name!r}: a norm before the readout cannot be lowered")
        t = v.terms[0]
        self.emit({"op": "output", "scale": t.r.numpy(), "bias": v.o.numpy()}, [t.slot])
        self.twin["(output)"] = {"synapse": v.synapse}
        return None

    def other(self, c: _Call) -> Any:
        if isinstance(c.module, _SKIP):
            return self.value(c)
        raise ConfigError(f"layer {c.name!r} ({type(c.module).__name__}) cannot be lowered; "
                          f"supported: {', '.join(LOWERABLE)}")


def lower(model: nn.Module, example: Tensor) -> IntegerProgram:
    """Lower a quantized model (see the module docstring); ``example`` is one input batch
    ``[T, B, ...]`` (only its shape matters)."""
    if not is_quantized(model):
        raise ConfigError("lower() needs a quantized model (spikeloom.compress.quant.quantize)")
    input_key, calls = _trace(model, example.contiguous())  # reshapes of it stay views
    st = _Lowering(input_key)
    roles = {layer.name: layer.role for layer in iter_layers(model)}
    for c in calls:
        handler = getattr(st, roles.get(c.name, "other"), None)
        if handler is None:
            raise ConfigError(f"layer {c.name!r} ({type(c.module).__name__}, role "
                              f"{roles.get(c.name)}) cannot be lowered; supported: "
                              f"{', '.join(LOWERABLE)}")
        st.values[c.output] = handler(c)
    if not st.ops or st.ops[-1]["op"] != "output":
        raise ConfigError("the model does not end in a synapse read out by MeanOverTime")
    prog = IntegerProgram(st.ops, {"T": int(example.shape[0])})
    prog.twin = st.twin  # type: ignore[attr-defined]  (used by frozen_twin)
    return prog


def spike_outputs(model: nn.Module, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """``(logits, {neuron name: output [T, B, ...]})`` of one forward pass of ``model``
    (spikes, or the integer activations of LIAF neurons in the frozen twin)."""
    outs: dict[str, Tensor] = {}
    handles = [m.register_forward_hook(lambda m, a, out, n=name: outs.__setitem__(n, out))
               for name, m in model.named_modules() if isinstance(m, QuantNeuron)]
    return run_hooked(model, x, handles), outs
