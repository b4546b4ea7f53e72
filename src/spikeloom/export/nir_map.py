"""Layer -> NIR node mappers and the discrete <-> continuous neuron conventions.

spikeloom neurons are discrete-time. With step ``dt``, a NIR LIF node
``τ·dv/dt = (v_leak - v) + R·I`` integrated by forward Euler over one step reads
``v[t] = (1 - dt/τ)·v[t-1] + (dt/τ)·(v_leak + R·I[t])``, then fires on ``v > v_threshold``
and resets to ``v_reset``. spikeloom's LIF ``u[t] = k·r[t-1] + s_in·x[t]`` (``r`` = the
post-reset potential, leak after reset, ``s_in`` = 1 for LIF and ``1 - k`` for PLIF) is exactly
that with

==========================  ==================================================================
spikeloom                    NIR
==========================  ==================================================================
LIF, decay ``k < 1``         ``LIF(tau = dt/(1-k), r = s_in/(1-k), v_leak = 0, v_threshold =
                             V_th, v_reset = V_reset)`` (``r = τ/dt`` for LIF, 1 for PLIF)
PLIF, ``1-k = sigmoid(w)``   the same LIF with ``r = 1``
IF (``k = 1``)               ``IF(r = 1/dt, v_threshold = V_th, v_reset = V_reset)``
hard reset to ``V_reset``    NIR's reset (``v = v_reset`` after a spike; the next step starts
                             from ``k·V_reset``, as NIR's Euler step from ``v_reset`` with
                             ``v_leak = 0`` does)
==========================  ==================================================================

These are the conventions snnTorch (``τ = dt/(1-β)``, ``r = τ/dt``) and SpikingJelly
(``τ_NIR = τ·dt``, ``IF r = 1/dt``) use, so their importers read spikeloom graphs.
The exact discrete parameters are also stored in each neuron node's ``metadata``
(``spikeloom_neuron``, ``decay``, ``input_scale``) so that :func:`~spikeloom.export.from_nir`
rebuilds bit-identical neurons.

Refused (no faithful NIR form): soft (subtractive) reset, firing on ``>=`` (``fire_ge``),
LIAF's analog output, temporal attention, max pooling; a norm that does not directly follow a
Linear/Conv layer cannot be folded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import nir
import numpy as np
import torch
from torch import nn

from ..errors import ExportError
from ..fold import fold_norm
from ..layers import TemporalAttention, TimeDistributed
from ..neurons import LIAF, LIF, PLIF, BaseNeuron
from ..registry import TypeRegistry

__all__ = ["MapContext", "NIR_MAPPERS", "register_nir_mapper", "supported_layers",
           "neuron_to_nir"]


@dataclass
class MapContext:
    """What a mapper knows about the layer: its name, per-sample input and output shapes
    (without time and batch axes), the time step and a norm to fold in (or ``None``)."""

    name: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    dt: float
    fold: nn.Module | None = None


Mapper = Callable[[nn.Module, MapContext], list]

#: module type -> mapper ``(module, ctx) -> [NIR nodes]`` (``[]`` = identity)
NIR_MAPPERS: TypeRegistry[Mapper] = TypeRegistry("NIR mapper")


def register_nir_mapper(cls: type | tuple[type, ...], mapper: Mapper | None = None):
    """Register ``mapper`` for module type(s) ``cls`` (decorator without ``mapper``)."""
    return NIR_MAPPERS.register(cls, mapper)


def supported_layers() -> list[str]:
    """Names of the module types :func:`~spikeloom.export.to_nir` can export."""
    return sorted({t.__name__ for t in NIR_MAPPERS.types() if t not in _REFUSED})


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _weights(m: nn.Module, ctx: MapContext) -> tuple[np.ndarray, np.ndarray | None]:
    if ctx.fold is not None:
        w, b = fold_norm(m, ctx.fold)
        return _np(w), _np(b)
    return _np(m.weight), (_np(m.bias) if m.bias is not None else None)


@register_nir_mapper(nn.Linear)
def _linear(m: nn.Linear, ctx: MapContext) -> list:
    w, b = _weights(m, ctx)
    return [nir.Linear(weight=w) if b is None else nir.Affine(weight=w, bias=b)]


def _conv(m: nn.Module, ctx: MapContext) -> list:
    if m.padding_mode != "zeros":
        raise ExportError(f"layer {ctx.name!r}: padding_mode={m.padding_mode!r} has no NIR form "
                          "(only zero padding)")
    w, b = _weights(m, ctx)
    if b is None:
        b = np.zeros(w.shape[0], dtype=np.float32)
    pad = m.padding if isinstance(m.padding, str) else tuple(int(p) for p in m.padding)
    if isinstance(m, nn.Conv1d):
        return [nir.Conv1d(input_shape=int(ctx.in_shape[-1]), weight=w, stride=int(m.stride[0]),
                           padding=pad if isinstance(pad, str) else pad[0],
                           dilation=int(m.dilation[0]), groups=int(m.groups), bias=b)]
    return [nir.Conv2d(input_shape=tuple(int(n) for n in ctx.in_shape[-2:]), weight=w,
                       stride=tuple(int(s) for s in m.stride), padding=pad,
                       dilation=tuple(int(d) for d in m.dilation), groups=int(m.groups), bias=b)]


register_nir_mapper((nn.Conv1d, nn.Conv2d), _conv)


@register_nir_mapper(TimeDistributed)
def _time_distributed(m: TimeDistributed, ctx: MapContext) -> list:
    inner = NIR_MAPPERS.lookup(m.module)
    if inner is None:
        raise _unsupported(m.module, ctx.name)
    return inner(m.module, ctx)


@register_nir_mapper(nn.AvgPool2d)
def _avgpool(m: nn.AvgPool2d, ctx: MapContext) -> list:
    pad = np.broadcast_to(np.asarray(m.padding, dtype=np.int64), (2,))
    if m.ceil_mode or m.divisor_override is not None or (pad.any() and not m.count_include_pad):
        raise ExportError(f"layer {ctx.name!r}: AvgPool2d with ceil_mode, divisor_override or "
                          "count_include_pad=False has no NIR form")
    k = np.broadcast_to(np.asarray(m.kernel_size, dtype=np.int64), (2,))
    s = np.broadcast_to(np.asarray(m.stride if m.stride is not None else m.kernel_size,
                                   dtype=np.int64), (2,))
    return [nir.AvgPool2d(kernel_size=k.copy(), stride=s.copy(), padding=pad.copy())]


@register_nir_mapper(nn.AdaptiveAvgPool2d)
def _adaptive_avgpool(m: nn.AdaptiveAvgPool2d, ctx: MapContext) -> list:
    (h, w), (oh, ow) = ctx.in_shape[-2:], ctx.out_shape[-2:]
    if (h, w) == (oh, ow):
        return []
    if h % oh or w % ow:
        raise ExportError(f"layer {ctx.name!r}: AdaptiveAvgPool2d from {(h, w)} to {(oh, ow)} "
                          "has uneven windows; NIR pooling needs a fixed kernel")
    k = np.array([h // oh, w // ow], dtype=np.int64)
    return [nir.AvgPool2d(kernel_size=k, stride=k.copy(), padding=np.zeros(2, dtype=np.int64))]


@register_nir_mapper((nn.Dropout, nn.Identity))
def _identity(m: nn.Module, ctx: MapContext) -> list:
    return []


@register_nir_mapper(nn.Flatten)
def _flatten(m: nn.Flatten, ctx: MapContext) -> list:
    # nn.Flatten inside a time-major model sees [T, B, ...]; NIR dims index one sample
    if m.start_dim < 2 and m.start_dim >= 0:
        raise ExportError(f"layer {ctx.name!r}: Flatten(start_dim={m.start_dim}) would merge "
                          "the time or batch axis of [T, B, ...]")
    return [flatten_node(ctx.in_shape, m.start_dim - 2, m.end_dim)]


def flatten_node(in_shape: tuple[int, ...], start: int, end: int) -> nir.Flatten:
    """A NIR Flatten over one sample's axes ``start..end`` (indices into ``in_shape``)."""
    end = end if end < 0 else end - 2
    return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=start, end_dim=end)


def neuron_to_nir(neuron: BaseNeuron, shape: tuple[int, ...], dt: float, name: str) -> nir.NIRNode:
    """The NIR node of a LIF/IF/PLIF neuron layer of per-sample ``shape`` (see the table)."""
    spec = neuron.spec
    if spec.soft:
        raise ExportError(f"layer {name!r}: soft (subtractive) reset has no NIR form (NIR "
                          "neurons reset to v_reset); export a hard-reset model")
    if spec.fire_ge:
        raise ExportError(f"layer {name!r}: firing on u >= V_th (fire_ge=True) has no NIR form "
                          "(NIR fires on v > v_threshold)")
    k = float(torch.as_tensor(neuron.decay_factor()).detach())
    s_in = float(torch.as_tensor(neuron.input_scale()).detach())
    full = lambda v: np.full(shape, v, dtype=np.float64)  # noqa: E731
    kind = "plif" if isinstance(neuron, PLIF) else ("if" if k == 1.0 else "lif")
    meta = {"spikeloom_neuron": kind, "decay": k, "input_scale": s_in, "dt": float(dt)}
    if isinstance(neuron, PLIF):
        meta["w"] = float(neuron.w.detach())
    thr, rst = full(spec.v_th), full(spec.v_reset)
    if k == 1.0:
        return nir.IF(r=full(s_in / dt), v_threshold=thr, v_reset=rst, metadata=meta)
    tau = dt / (1.0 - k)
    return nir.LIF(tau=full(tau), r=full(s_in * tau / dt), v_leak=full(0.0), v_threshold=thr,
                   v_reset=rst, metadata=meta)


@register_nir_mapper((LIF, PLIF))
def _neuron(m: BaseNeuron, ctx: MapContext) -> list:
    return [neuron_to_nir(m, ctx.out_shape, ctx.dt, ctx.name)]


def _refuse(reason: str) -> Mapper:
    def mapper(m: nn.Module, ctx: MapContext) -> list:
        raise ExportError(f"layer {ctx.name!r} ({type(m).__name__}): {reason}; supported "
                          f"layers: {', '.join(supported_layers())}")
    return mapper


_REFUSED: set[type] = {LIAF, TemporalAttention, nn.MaxPool1d, nn.MaxPool2d}
register_nir_mapper(LIAF, _refuse("LIAF's analog output has no NIR neuron"))
register_nir_mapper(TemporalAttention, _refuse(
    "temporal attention mixes time steps (scores from the whole sequence); NIR nodes are "
    "causal per-step dynamics"))
register_nir_mapper((nn.MaxPool1d, nn.MaxPool2d), _refuse("NIR has no max pooling"))


def _unsupported(m: nn.Module, name: str) -> ExportError:
    return ExportError(f"layer {name!r} of type {type(m).__name__} cannot be exported to NIR; "
                       f"supported layers: {', '.join(supported_layers())}")
