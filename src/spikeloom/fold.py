"""Fold an inference-mode normalisation layer into the synapse before it.

In eval mode a batch norm (or :class:`~spikeloom.layers.TdBN`) is a per-channel affine map
``y = a·x + b`` with ``a = γ_eff / sqrt(running_var + ε)`` and ``b = β - a·running_mean``
(``γ_eff = λ·α·V_th`` for tdBN in its fixed-scale mode). After a linear or convolutional layer
``x = W·z + c`` it folds into that layer::

    W' = a[:, None, ...] · W        c' = a·c + b

:func:`norm_affine` gives ``(a, b)`` for any registered norm type (:data:`NORM_AFFINE`, a
:class:`~spikeloom.registry.TypeRegistry`; register new norm types there);
:func:`fold_norm` gives the folded ``(W', c')`` without touching the modules;
:func:`folded_synapse` returns a folded copy of the synapse (``fold_bn_after`` is the same
function under the name used by the TTFS conversion). A norm *before* a linear layer
(``norm -> Linear``, e.g. a BN placed after a ReLU) folds into the layer's input columns
(:func:`fold_bn_before`: ``W' = W·diag(a)``, ``c' = c + W·b``; only ``nn.Linear``: for a
zero-padded convolution the border positions would need their own biases).
:func:`fold_sequential` applies both rules to an ``nn.Sequential``. Used by NIR export and
ReLU -> TTFS conversion; the folded weights are also what a quantizer should quantize.

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

__all__ = [
    "NORM_AFFINE", "norm_affine", "fold_norm", "folded_synapse", "FOLDABLE_SYNAPSES",
    "fold_bn_after", "fold_bn_before", "fold_sequential",
]

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


#: ``norm -> synapse`` folding under the name used by :mod:`spikeloom.ttfs`
fold_bn_after = folded_synapse

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def fold_bn_before(norm: nn.Module, layer: nn.Module) -> nn.Module:
    """A copy of ``layer`` (``nn.Linear``) computing ``layer(norm(x))`` exactly.

    Raises:
        ExportError: ``layer`` is a convolution (with zero padding its border positions would
            need their own biases) or not ``nn.Linear``, or the channel counts differ.
    """
    if isinstance(layer, _CONV):
        raise ExportError(
            f"cannot fold {type(norm).__name__} into the following {type(layer).__name__}: with "
            "zero padding the border positions need their own biases; place the norm before "
            "the nonlinearity instead"
        )
    if not isinstance(layer, nn.Linear):
        raise ExportError(f"fold_bn_before: expected nn.Linear, got {type(layer).__name__}")
    a, b = norm_affine(norm)
    if a.numel() != layer.in_features:
        raise ExportError(
            f"{type(norm).__name__} has {a.numel()} channels but the following Linear has "
            f"{layer.in_features} inputs"
        )
    w = layer.weight.detach().double()
    bias = layer.bias.detach().double() if layer.bias is not None else torch.zeros(w.shape[0])
    new = copy.deepcopy(layer)
    new.weight = nn.Parameter((w * a[None, :]).to(layer.weight.dtype))
    new.bias = nn.Parameter((bias.to(w) + w @ b).to(layer.weight.dtype))
    return new


def fold_sequential(seq: nn.Sequential) -> nn.Sequential:
    """A copy of ``seq`` with every registered norm folded into a neighbouring layer.

    A norm directly after a Linear/Conv is folded into it (:func:`folded_synapse`); any other
    norm (e.g. after a ReLU) into the next ``nn.Linear`` (:func:`fold_bn_before`), which must
    follow before any layer other than ``nn.Flatten`` and ``nn.Dropout``.

    Raises:
        ExportError: a norm that cannot be folded (the message gives its index).
    """
    out: list[nn.Module] = []
    pending: nn.Module | None = None
    for i, m in enumerate(seq):
        if NORM_AFFINE.lookup(m) is not None:
            if pending is not None:
                raise ExportError(f"fold_sequential: two norms in a row at index {i}")
            if out and isinstance(_unwrap(out[-1]), FOLDABLE_SYNAPSES):
                out[-1] = folded_synapse(out[-1], m)
            else:
                pending = m
        elif pending is not None and isinstance(m, (nn.Linear, *_CONV)):
            out.append(fold_bn_before(pending, m))
            pending = None
        elif pending is not None and not isinstance(m, (nn.Flatten, nn.Dropout)):
            raise ExportError(
                f"fold_sequential: the norm before {type(m).__name__} at index {i} cannot be "
                "folded; only a following nn.Linear (through Flatten/Dropout) can absorb it"
            )
        else:
            out.append(copy.deepcopy(m))
    if pending is not None:
        raise ExportError("fold_sequential: a trailing norm has no layer to fold into")
    return nn.Sequential(*out)
