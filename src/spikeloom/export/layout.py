"""Layout helpers between spikeloom's time-first ``[T, B, ...]`` and other libraries' layouts.

=====================  ===================  ==================================================
layout                 shape                used by
=====================  ===================  ==================================================
time-first             ``[T, B, ...]``      spikeloom, SpikingJelly multi-step, Norse
batch-first            ``[B, T, ...]``      Sinabs, snnTorch users' data loaders, Tonic
time-last              ``[B, ..., T]``      Lava-DL (SLAYER)
=====================  ===================  ==================================================

All return views (no copy; :func:`spikeloom.layers.permute_layout` handles any other
letter layout such as ``"BCTHW"``); call
``.contiguous()`` when a library needs contiguous memory. Each pair is an exact inverse.
"""

from __future__ import annotations

from torch import Tensor

__all__ = ["time_first_to_batch_first", "batch_first_to_time_first",
           "time_first_to_time_last", "time_last_to_time_first"]


def _check(x: Tensor, who: str) -> None:
    if x.ndim < 2:
        raise ValueError(f"{who} needs a tensor with a time and a batch axis, got shape "
                         f"{tuple(x.shape)}")


def time_first_to_batch_first(x: Tensor) -> Tensor:
    """``[T, B, ...] -> [B, T, ...]``."""
    _check(x, "time_first_to_batch_first")
    return x.transpose(0, 1)


def batch_first_to_time_first(x: Tensor) -> Tensor:
    """``[B, T, ...] -> [T, B, ...]``."""
    _check(x, "batch_first_to_time_first")
    return x.transpose(0, 1)


def time_first_to_time_last(x: Tensor) -> Tensor:
    """``[T, B, *rest] -> [B, *rest, T]`` (Lava-DL)."""
    _check(x, "time_first_to_time_last")
    return x.permute(*range(1, x.ndim), 0)


def time_last_to_time_first(x: Tensor) -> Tensor:
    """``[B, *rest, T] -> [T, B, *rest]``."""
    _check(x, "time_last_to_time_first")
    return x.permute(x.ndim - 1, *range(x.ndim - 1))
