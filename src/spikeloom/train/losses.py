"""Losses of spiking classifiers over time-averaged or per-step outputs."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError

__all__ = ["LOSSES", "compute_loss", "rate_of"]

LOSSES = ("ce", "per_step_ce", "mse")


def rate_of(out: Tensor) -> Tensor:
    """Time-averaged output ``[B, K]`` of per-step outputs ``[T, B, K]`` (or ``out`` itself)."""
    return out.mean(0) if out.ndim == 3 else out


def compute_loss(out: Tensor, y: Tensor, kind: str, reduction: str = "mean") -> Tensor:
    """Loss of outputs ``[B, K]`` (time-averaged) or ``[T, B, K]`` (per step) against labels.

    Args:
        out: model outputs.
        y: class labels ``[B]``.
        kind: ``"ce"`` (cross-entropy of the rate), ``"per_step_ce"`` (cross-entropy at every
            step, averaged over T; needs ``[T, B, K]``) or ``"mse"`` (squared error of the rate
            against the one-hot label, summed over classes).
        reduction: ``"mean"`` or ``"sum"`` over the batch, or ``"none"`` (per sample).
    """
    if kind == "per_step_ce":
        if out.ndim != 3:
            raise ConfigError("per_step_ce needs per-step outputs [T, B, K]")
        T = out.shape[0]
        loss = F.cross_entropy(out.flatten(0, 1), y.repeat(T), reduction="none")
        loss = loss.view(T, -1).mean(0)
    else:
        rate = rate_of(out)
        if kind == "ce":
            loss = F.cross_entropy(rate, y, reduction="none")
        elif kind == "mse":
            onehot = F.one_hot(y, rate.shape[-1]).to(rate.dtype)
            loss = ((rate - onehot) ** 2).sum(-1)
        else:
            raise ConfigError(f"unknown loss {kind!r}; choose one of {', '.join(LOSSES)}")
    if reduction == "none":
        return loss
    return loss.mean() if reduction == "mean" else loss.sum()
