"""Cost counters registered by module type: dense MACs, exact SynOps and precision.

A *counter* tells :func:`~spikeloom.cost.measure_cost` how to count one forward call of a
synapse type (a module whose :func:`spikeloom.walk.role_of` is ``"synapse"``):

* ``dense_macs(module, x, y) -> int``: MACs of the dense ANN-equivalent for this call (all
  samples of the call, padded positions included), from the input ``x`` and output ``y``;
* ``synops(module, nz, y, cache) -> int | (int, int)``: exact synaptic operations triggered by
  the non-zero pattern ``nz`` (bool, shape of ``x``) in this call, i.e. for every non-zero
  input element its real fan-out; they are accumulates when the input is spikes and MACs when
  it is analog. A layer with internal analog stages (a low-rank or tensor-train linear) returns
  ``(input_ops, inner_macs)``: ``inner_macs`` are always MACs. ``cache`` is a per-module dict
  kept across calls (e.g. for fan-out maps);
* ``step_input(module, x, T, B) -> (x_step | None, why)``: the input of one time step when the
  input ``x`` of the first layer is identical at every step (``first_layer="once"``), else
  ``None`` and the reason;
* ``step_output(module, y, T) -> y_step``: the output of one step in that case (its shape is
  what ``synops`` uses);
* ``precision``: arithmetic precision of the layer (``"fp32"``, ``"fp16"``, ``"int32"``,
  ``"int8"``, ``"int4"``, ``"ternary"``), a function of the module returning one, or ``None``
  for the energy model's.

Counters live in :data:`COUNTERS`, a :class:`~spikeloom.registry.TypeRegistry`, so a subclass
inherits its parent's counter. A new synapse type registers its role and counter next to its
own definition::

    register_role(LowRank, "synapse")
    register_counter(
        LowRank,
        dense_macs=lambda m, x, y: x.numel() // m.d_in * m.rank * (m.d_in + m.d_out),
        synops=lambda m, nz, y, cache: (int(nz.sum()) * m.rank,  # on the input
                                        int(nz.any(-1).sum()) * m.rank * m.d_out),  # inner
        precision="int8",
    )

A layer with another role whose compute is done by synaptic sub-modules registers
:class:`CountParts` (temporal attention: its two ``nn.Linear`` are counted as their own rows).
The counting of ``nn.Linear``, ``nn.Conv1d/2d/3d`` and ``nn.ConvTranspose1d/2d/3d`` follows
NeuroBench (Yik et al. 2023, arXiv:2304.04640): dense MACs per step, exact effective operations
on non-zero inputs (zero-skipping).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import TemporalAttention
from ..registry import TypeRegistry

__all__ = [
    "COUNTERS",
    "CountParts",
    "PRECISIONS",
    "SYNAPTIC_TYPES",
    "SynapseCounter",
    "counter_of",
    "register_counter",
]

#: Precisions with an entry in the energy table (:class:`~spikeloom.cost.Energy45nm`).
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int32", "int8", "int4", "ternary")

_CONV_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONVT_TYPES: tuple[type[nn.Module], ...] = (
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
#: The torch module types counted by the built-in counters.
SYNAPTIC_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, *_CONV_TYPES, *_CONVT_TYPES)


def flat_step_input(m: nn.Module, x: Tensor, T: int, B: int) -> tuple[Tensor | None, str]:
    """One step of an input ``[T, B, ...]`` or ``[T*B, ...]`` that is identical over time."""
    if x.ndim >= 3 and x.shape[0] == T and x.shape[1] == B:
        xv = x
    elif x.ndim >= 2 and x.shape[0] == T * B:
        xv = x.reshape(T, B, *x.shape[1:])
    else:
        return None, f"input shape {tuple(x.shape)} is neither [T*B, ...] nor [T, B, ...]"
    return _same_over_time(xv, T)


def _same_over_time(xv: Tensor, T: int) -> tuple[Tensor | None, str]:
    if T > 1 and not bool((xv == xv[:1]).all()):
        return None, "input differs between time steps"
    return xv[0], ""


def same_output(m: nn.Module, y: Tensor, T: int) -> Tensor:
    """``step_output`` of layers whose ``synops`` does not use the output shape."""
    return y


@dataclass(frozen=True)
class SynapseCounter:
    """How to count one forward call of a synapse type (see the module docstring).

    Attributes:
        dense_macs: ``(module, x, y) -> int`` dense MACs of the call.
        synops: ``(module, nz, y, cache) -> int | (int, int)`` exact operations of the non-zero
            inputs (and MACs of internal analog stages).
        step_input: ``(module, x, T, B) -> (x_step | None, why)`` for ``first_layer="once"``.
        step_output: ``(module, y, T) -> y_step`` for ``first_layer="once"``.
        precision: one of :data:`PRECISIONS`, ``module -> str | None``, or
            ``None`` (the energy model's precision).
    """

    dense_macs: Callable[[nn.Module, Tensor, Tensor], int]
    synops: Callable[[nn.Module, Tensor, Tensor, dict], int | tuple[int, int]]
    step_input: Callable[[nn.Module, Tensor, int, int], tuple[Tensor | None, str]] = (
        flat_step_input
    )
    step_output: Callable[[nn.Module, Tensor, int], Tensor] = same_output
    precision: str | Callable[[nn.Module], str | None] | None = None
    #: pass the call's other positional arguments after the usual ones to ``dense_macs`` and
    #: ``synops`` (a graph aggregation reads its adjacency from them)
    call_args: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.precision, str) and self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")

    def precision_of(self, m: nn.Module) -> str | None:
        """The precision of module ``m`` (``None``: the energy model's)."""
        p = self.precision(m) if callable(self.precision) else self.precision
        if p is not None and p not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {p!r}")
        return p


@dataclass(frozen=True)
class CountParts:
    """Counter of a layer whose compute is done by synaptic sub-modules.

    Attributes:
        parts: ``module -> [(relative name, sub-module), ...]``; each part is counted with its
            own counter as a synapse row named ``<layer>.<relative name>``.
    """

    parts: Callable[[nn.Module], list[tuple[str, nn.Module]]]


COUNTERS: TypeRegistry[SynapseCounter | CountParts] = TypeRegistry("cost counter")


def register_counter(
    cls: type | tuple[type, ...],
    counter: SynapseCounter | CountParts | None = None,
    **fields: Any,
) -> SynapseCounter | CountParts:
    """Register the counter of module type(s) ``cls`` (and their subclasses).

    Args:
        cls: a module class or a tuple of them.
        counter: a :class:`SynapseCounter` or :class:`CountParts`; or leave it out and give the
            :class:`SynapseCounter` fields as keywords (``dense_macs``, ``synops``, ...).

    Returns:
        the registered counter.
    """
    if counter is None:
        counter = SynapseCounter(**fields)
    elif fields:
        raise TypeError("give either a counter or its fields as keywords, not both")
    COUNTERS.register(cls, counter)
    return counter


def counter_of(module: nn.Module) -> SynapseCounter | CountParts | None:
    """The counter registered for ``module``'s type (or a base class), or ``None``."""
    return COUNTERS.lookup(module)


# --------------------------------------------------------------------------------------------
# nn.Linear
# --------------------------------------------------------------------------------------------
def _linear_dense(m: nn.Module, x: Tensor, y: Tensor) -> int:
    return int(x.numel()) * int(m.out_features)


def _linear_synops(m: nn.Module, nz: Tensor, y: Tensor, cache: dict) -> int:
    return int(nz.sum()) * int(m.out_features)


register_counter(nn.Linear, dense_macs=_linear_dense, synops=_linear_synops)


# --------------------------------------------------------------------------------------------
# Convolutions and transposed convolutions
# --------------------------------------------------------------------------------------------
def _ones_conv(m: nn.Module, x: Tensor, w: Tensor, out_spatial: tuple[int, ...]) -> Tensor:
    """``m``'s convolution (stride, padding and its mode, dilation) of ``x`` with kernel ``w``."""
    fn = getattr(F, f"conv{len(out_spatial)}d")
    if m.padding_mode != "zeros":
        xp = F.pad(x, m._reversed_padding_repeated_twice, mode=m.padding_mode)
        return fn(xp, w, None, m.stride, 0, m.dilation, 1)
    return fn(x, w, None, m.stride, m.padding, m.dilation, 1)


def _ones_conv_transpose(
    m: nn.Module, x: Tensor, w: Tensor, out_spatial: tuple[int, ...]
) -> Tensor:
    """``m``'s transposed convolution of ``x`` with kernel ``w``, output size ``out_spatial``."""
    d, k = len(out_spatial), tuple(w.shape[2:])
    stride, pad, dil = tuple(m.stride), tuple(m.padding), tuple(m.dilation)
    base = [
        (x.shape[2 + i] - 1) * stride[i] - 2 * pad[i] + dil[i] * (k[i] - 1) + 1 for i in range(d)
    ]
    opad = tuple(out_spatial[i] - base[i] for i in range(d))
    return getattr(F, f"conv_transpose{d}d")(x, w, None, stride, pad, opad, 1, dil)


_OnesConv = Callable[[nn.Module, Tensor, Tensor, tuple[int, ...]], Tensor]


def _fanout_map(
    m: nn.Module, in_spatial: tuple[int, ...], out_spatial: tuple[int, ...], conv: _OnesConv
) -> Tensor:
    """Fan-out per input position of a (transposed) conv, shape ``in_spatial``, int64, CPU.

    ``f[i]`` = number of (output position, kernel tap) pairs that read input position ``i`` for
    one (input channel, output channel) pair; padding reads of zeros are not counted, positions
    read several times through reflect/replicate/circular padding are counted each time.
    Computed exactly as the gradient of ``sum(conv(x, ones))`` w.r.t. ``x`` (the adjoint of the
    conv with an all-ones kernel), in float64; ``conv`` is :func:`_ones_conv` or
    :func:`_ones_conv_transpose`.
    """
    w = torch.ones((1, 1, *m.kernel_size), dtype=torch.float64)
    with torch.inference_mode(False), torch.enable_grad():
        x = torch.ones((1, 1, *in_spatial), dtype=torch.float64, requires_grad=True)
        y = conv(m, x, w, out_spatial)
        if tuple(y.shape[2:]) != tuple(out_spatial):
            raise RuntimeError(
                f"internal error: fan-out conv of {type(m).__name__} gives spatial shape "
                f"{tuple(y.shape[2:])}, the layer produced {tuple(out_spatial)}"
            )
        (g,) = torch.autograd.grad(y.sum(), x)
    return torch.round(g[0, 0]).to(torch.int64)


def _batch_size(m: nn.Module, x: Tensor) -> int:
    """Samples in a conv input ``[N, C, *spatial]`` (1 for an unbatched ``[C, *spatial]``)."""
    return int(x.shape[0]) if x.ndim == len(m.kernel_size) + 2 else 1


def _conv_dense(m: nn.Module, x: Tensor, y: Tensor) -> int:
    """``N·Cout·prod(out spatial)·(Cin/groups)·prod(kernel)``."""
    d = len(m.kernel_size)
    return (_batch_size(m, x) * int(m.out_channels) * math.prod(y.shape[-d:])
            * (int(m.in_channels) // int(m.groups)) * math.prod(m.kernel_size))


def _convt_dense(m: nn.Module, x: Tensor, y: Tensor) -> int:
    """``N·Cin·prod(in spatial)·prod(kernel)·(Cout/groups)``."""
    d = len(m.kernel_size)
    return (_batch_size(m, x) * int(m.in_channels) * math.prod(x.shape[-d:])
            * math.prod(m.kernel_size) * (int(m.out_channels) // int(m.groups)))


def _fanout_synops(m: nn.Module, nz: Tensor, y: Tensor, cache: dict, conv: _OnesConv) -> int:
    """Spikes per input position × exact fan-out of that position × output channels/group."""
    d = len(m.kernel_size)
    if nz.ndim == d + 1:  # unbatched conv input [C, *spatial]
        nz, y = nz.unsqueeze(0), y.unsqueeze(0)
    in_sp = tuple(int(s) for s in nz.shape[2:])
    out_sp = tuple(int(s) for s in y.shape[2:])
    key = (in_sp, out_sp, str(nz.device))
    f = cache.get(key)
    if f is None:
        f = cache[key] = _fanout_map(m, in_sp, out_sp, conv).to(nz.device)
    count = nz.sum(dim=(0, 1), dtype=torch.int64)  # non-zero inputs per spatial position
    return int((count * f).sum()) * (int(m.out_channels) // int(m.groups))


def _conv_synops(m: nn.Module, nz: Tensor, y: Tensor, cache: dict) -> int:
    return _fanout_synops(m, nz, y, cache, _ones_conv)


def _convt_synops(m: nn.Module, nz: Tensor, y: Tensor, cache: dict) -> int:
    return _fanout_synops(m, nz, y, cache, _ones_conv_transpose)


def _conv_step_input(m: nn.Module, x: Tensor, T: int, B: int) -> tuple[Tensor | None, str]:
    if x.ndim == len(m.kernel_size) + 2 and x.shape[0] == T * B:
        return _same_over_time(x.reshape(T, B, *x.shape[1:]), T)
    return None, f"input shape {tuple(x.shape)} is not [T*B, C, ...]"


def _conv_step_output(m: nn.Module, y: Tensor, T: int) -> Tensor:
    return y[: y.shape[0] // T]


register_counter(
    _CONV_TYPES,
    dense_macs=_conv_dense,
    synops=_conv_synops,
    step_input=_conv_step_input,
    step_output=_conv_step_output,
)
register_counter(
    _CONVT_TYPES,
    dense_macs=_convt_dense,
    synops=_convt_synops,
    step_input=_conv_step_input,
    step_output=_conv_step_output,
)


# --------------------------------------------------------------------------------------------
# Temporal attention: its two linear layers are real compute, counted as synapse rows
# --------------------------------------------------------------------------------------------
def _counted_children(m: nn.Module) -> list[tuple[str, nn.Module]]:
    out = []
    for name, sub in m.named_modules():
        if name and isinstance(counter_of(sub), SynapseCounter):
            out.append((name, sub))
    return out


register_counter(TemporalAttention, CountParts(_counted_children))
