"""Fold batch normalisation into the neighbouring linear or convolution layer (inference form).

A BatchNorm in eval mode is the affine map ``bn(z) = a ⊙ z + c`` per channel with
``a = γ / sqrt(var + eps)`` and ``c = β − mean · a``. It can be absorbed exactly:

* **BN after a layer** (``layer → BN``): :func:`fold_bn_after` scales the layer's output
  channels: ``W ← a ⊙ W`` (per output channel), ``b ← a ⊙ b + c``. Works for ``nn.Linear`` and
  ``nn.Conv1d/2d/3d``.
* **BN before a linear layer** (``BN → Linear``, e.g. BN placed after a ReLU):
  :func:`fold_bn_before` scales the layer's input columns: ``W ← W · diag(a)``,
  ``b ← b + W c``. Only ``nn.Linear``: for a zero-padded convolution the border positions would
  need their own biases, which a plain conv cannot hold (a :class:`ConfigError` says so).
* :func:`fold_sequential` applies both rules to an ``nn.Sequential`` and returns a new one
  without BatchNorm layers.

The folded modules are new copies; the originals are not modified.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from .errors import ConfigError

__all__ = ["bn_affine", "fold_bn_after", "fold_bn_before", "fold_sequential"]

_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def bn_affine(bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """``(a, c)`` with ``bn(z) = a·z + c`` per channel, from the running statistics."""
    if bn.running_mean is None or bn.running_var is None:
        raise ConfigError(f"cannot fold {bn}: it tracks no running statistics")
    a = torch.rsqrt(bn.running_var + bn.eps)
    if bn.weight is not None:
        a = a * bn.weight
    c = -bn.running_mean * a
    if bn.bias is not None:
        c = c + bn.bias
    return a.detach(), c.detach()


def _check_channels(layer: nn.Module, n: int, bn: nn.Module, what: str) -> None:
    if n != bn.num_features:
        raise ConfigError(
            f"cannot fold {bn} {what} {layer}: {n} channels vs {bn.num_features} BN features"
        )


def fold_bn_after(layer: nn.Module, bn: nn.modules.batchnorm._BatchNorm) -> nn.Module:
    """A copy of ``layer`` (``nn.Linear``/``nn.ConvNd``) computing ``bn(layer(x))`` exactly."""
    if not isinstance(layer, (nn.Linear, *_CONV)):
        raise ConfigError(f"fold_bn_after: expected nn.Linear or nn.Conv1d/2d/3d, got {layer}")
    out_ch = layer.weight.shape[0]
    _check_channels(layer, out_ch, bn, "after")
    a, c = bn_affine(bn)
    new = copy.deepcopy(layer)
    with torch.no_grad():
        shape = (-1,) + (1,) * (layer.weight.ndim - 1)
        w = layer.weight * a.reshape(shape).to(layer.weight.dtype)
        b = layer.bias if layer.bias is not None else torch.zeros_like(a)
        new.weight.copy_(w)
        if new.bias is None:
            new.bias = nn.Parameter(torch.zeros(out_ch, dtype=w.dtype, device=w.device))
        new.bias.copy_(a * b + c)
    return new


def fold_bn_before(bn: nn.modules.batchnorm._BatchNorm, layer: nn.Module) -> nn.Module:
    """A copy of ``layer`` (``nn.Linear``) computing ``layer(bn(x))`` exactly."""
    if isinstance(layer, _CONV):
        raise ConfigError(
            f"fold_bn_before: cannot fold {bn} into the following {layer}: with zero padding "
            "the border positions need their own biases; place the BN before the ReLU instead"
        )
    if not isinstance(layer, nn.Linear):
        raise ConfigError(f"fold_bn_before: expected nn.Linear, got {layer}")
    _check_channels(layer, layer.in_features, bn, "before")
    a, c = bn_affine(bn)
    new = copy.deepcopy(layer)
    with torch.no_grad():
        b = layer.bias if layer.bias is not None else torch.zeros(layer.out_features)
        new.weight.copy_(layer.weight * a[None, :])
        if new.bias is None:
            new.bias = nn.Parameter(torch.zeros(layer.out_features, dtype=layer.weight.dtype))
        new.bias.copy_(b + layer.weight @ c)
    return new


def fold_sequential(seq: nn.Sequential) -> nn.Sequential:
    """A copy of ``seq`` with every BatchNorm folded into its neighbouring layer.

    A BN directly after a linear/conv layer is folded into it (:func:`fold_bn_after`);
    any other BN (e.g. after a ReLU) is folded into the next ``nn.Linear``
    (:func:`fold_bn_before`), which must follow before any other layer except ``nn.Flatten``
    and ``nn.Dropout``.
    """
    mods = list(seq)
    out: list[nn.Module] = []
    pending: nn.Module | None = None
    for i, m in enumerate(mods):
        if isinstance(m, _BN):
            if out and isinstance(out[-1], (nn.Linear, *_CONV)) and pending is None:
                out[-1] = fold_bn_after(out[-1], m)
            elif pending is not None:
                raise ConfigError(f"fold_sequential: two BatchNorms in a row at index {i}")
            else:
                pending = m
        elif pending is not None and isinstance(m, (nn.Linear, *_CONV)):
            out.append(fold_bn_before(pending, m))
            pending = None
        elif pending is not None and not isinstance(m, (nn.Flatten, nn.Dropout)):
            raise ConfigError(
                f"fold_sequential: BatchNorm before {type(m).__name__} at index {i} cannot be "
                "folded; only a following nn.Linear (through Flatten/Dropout) can absorb it"
            )
        else:
            out.append(copy.deepcopy(m))
    if pending is not None:
        raise ConfigError("fold_sequential: a trailing BatchNorm has no layer to fold into")
    return nn.Sequential(*out)
