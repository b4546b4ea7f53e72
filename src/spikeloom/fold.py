"""Fold an inference-mode normalisation layer into the synapse before it.

In eval mode a batch norm (or :class:`~spikeloom.layers.TdBN`) is a per-channel affine map
``y = a·x + b`` with ``a = γ_eff / sqrt(running_var + ε)`` and ``b = β - a·running_mean``
(``γ_eff = λ·α·V_th`` for tdBN in its fixed-scale mode). After a linear or convolutional layer
``x = W·z + c`` it folds into that layer::

    W' = a[:, None, ...] · W        c' = a·c + b

:func:`norm_affine` gives ``(a, b)`` for any registered norm type (:data:`NORM_AFFINE`, a
:class:`~spikeloom.registry.TypeRegistry`; register new norm types there);
:func:`fold_norm` gives the folded ``(W', c')`` without touching the modules;
:func:`folded_synapse` returns a folded copy of the synapse. Used by NIR export; the folded
weights are also what a quantizer should quantize.

The folded layer computes the same function in exact arithmetic; in float32 the result differs
from ``norm(synapse(z))`` by rounding only (a few ulp).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn

from .errors import ExportError
from .layers import TdBN, TimeDistributed
from .registry import TypeRegistry

__all__ = ["NORM_AFFINE", "norm_affine", "fold_norm", "folded_synapse", "FOLDABLE_SYNAPSES"]

#: norm type -> function ``norm -> (a, b)`` giving its eval-mode per-channel affine map
NORM_AFFINE: TypeRegistry[Callable[[nn.Module], tuple[Tensor, Tensor]]] = TypeRegistry(
    "foldable norm"
)

#: synapse types whose output channel is axis 0 of the weight
FOLDABLE_SYNAPSES: tuple[type, ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _stats(norm: nn.Module, name: str) -> tuple[Tensor, Tensor]:
    if norm.running_mean is None or norm.running_var is None:
        raise ExportError(
            f"{name}: cannot fold a norm without running statistics "
            "(track_running_stats=False normalises with batch statistics at inference)"
        )
    return norm.running_mean.detach().double(), norm.running_var.detach().double()


@NORM_AFFINE.register(nn.modules.batchnorm._BatchNorm)
def _batchnorm_affine(norm: nn.modules.batchnorm._BatchNorm) -> tuple[Tensor, Tensor]:
    mean, var = _stats(norm, type(norm).__name__)
    a = 1.0 / torch.sqrt(var + norm.eps)
    if norm.weight is not None:
        a = a * norm.weight.detach().double()
    b = -a * mean
    if norm.bias is not None:
        b = b + norm.bias.detach().double()
    return a, b


@NORM_AFFINE.register(TdBN)
def _tdbn_affine(norm: TdBN) -> tuple[Tensor, Tensor]:
    mean, var = _stats(norm, "TdBN")
    w = norm.effective_weight()
    a = (w.detach().double() if w is not None else torch.full_like(mean, norm.scale))
    a = a / torch.sqrt(var + norm.eps)
    b = -a * mean
    if norm.bias is not None:
        b = b + norm.bias.detach().double()
    return a, b


def norm_affine(norm: nn.Module) -> tuple[Tensor, Tensor]:
    """The eval-mode per-channel map ``y = a·x + b`` of ``norm`` as float64 ``(a, b)``.

    Raises:
        ExportError: the norm type is not registered in :data:`NORM_AFFINE` or has no running
            statistics.
    """
    fn = NORM_AFFINE.lookup(norm)
    if fn is None:
        names = ", ".join(t.__name__ for t in NORM_AFFINE.types())
        raise ExportError(f"cannot fold {type(norm).__name__}; foldable norms: {names}")
    return fn(norm)


def _unwrap(synapse: nn.Module) -> nn.Module:
    return synapse.module if isinstance(synapse, TimeDistributed) else synapse


def fold_norm(synapse: nn.Module, norm: nn.Module) -> tuple[Tensor, Tensor]:
    """Weight and bias of ``synapse`` with the eval-mode ``norm`` folded in (float32, or the
    synapse's dtype). ``synapse`` may be wrapped in :class:`~spikeloom.layers.TimeDistributed`.

    Raises:
        ExportError: unsupported synapse/norm type or a channel-count mismatch.
    """
    syn = _unwrap(synapse)
    if not isinstance(syn, FOLDABLE_SYNAPSES):
        names = ", ".join(t.__name__ for t in FOLDABLE_SYNAPSES)
        raise ExportError(f"cannot fold a norm into {type(syn).__name__}; foldable: {names}")
    a, b = norm_affine(norm)
    w = syn.weight.detach()
    if a.numel() != w.shape[0]:
        raise ExportError(
            f"{type(norm).__name__} has {a.numel()} channels but {type(syn).__name__} has "
            f"{w.shape[0]} outputs"
        )
    bias = syn.bias.detach().double() if syn.bias is not None else torch.zeros_like(a)
    w_f = w.double() * a.reshape(-1, *([1] * (w.ndim - 1)))
    return w_f.to(w.dtype), (a * bias + b).to(w.dtype)


def folded_synapse(synapse: nn.Module, norm: nn.Module) -> nn.Module:
    """A deep copy of ``synapse`` (wrapper kept) with ``norm`` folded in and a bias."""
    w, b = fold_norm(synapse, norm)
    out = copy.deepcopy(synapse)
    syn = _unwrap(out)
    syn.weight = nn.Parameter(w)
    syn.bias = nn.Parameter(b)
    return out
