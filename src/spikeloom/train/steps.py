"""The step protocol: how one batch becomes a loss, per task kind.

The loop does not know what a batch holds. It asks the step registered for the dataset's kind
(:attr:`spikeloom.datasets.spec.DataSpec.kind`) to turn a batch into a :class:`StepOutput`:
the loss summed over the batch, the number of correct predictions and the number of samples.
A new task (node classification on a graph, sequence labelling) registers its own step::

    @STEPS.register("graph")
    def node_step(model, batch, loss, device) -> StepOutput: ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..registry import Registry
from .losses import compute_loss, rate_of

__all__ = ["StepOutput", "TaskStep", "STEPS", "classification_step"]


@dataclass
class StepOutput:
    """The result of one step on this process's part of a batch.

    Attributes:
        loss_sum: loss summed over the samples (a differentiable scalar tensor).
        correct: number of correct predictions (a scalar tensor; reading it syncs the device).
        n: number of samples.
    """

    loss_sum: Tensor
    correct: Tensor
    n: int


TaskStep = Callable[[nn.Module, Any, str, torch.device], StepOutput]

#: data kind -> step function
STEPS: Registry[TaskStep] = Registry("task step")


def _forward(model: nn.Module, x: Tensor, per_step: bool) -> Tensor:
    if not per_step:
        return model(x)
    try:
        return model(x, per_step=True)
    except TypeError as e:
        if "per_step" not in str(e):
            raise
        raise ConfigError(
            "loss 'per_step_ce' needs a model whose forward accepts per_step=True "
            f"(returning [T, B, K]); this one does not ({e}): use loss 'ce'"
        ) from None


def classification_step(model: nn.Module, batch: Any, loss: str,
                        device: torch.device) -> StepOutput:
    """Classify time-major samples: ``batch = (x [T, B, ...], y [B])``."""
    x, y = batch
    x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
    if x.ndim < 3:
        raise ConfigError(
            f"input batch has shape {tuple(x.shape)}; spikeloom models expect [T, B, ...]. "
            "Check that the dataset returns samples shaped [T, C, H, W] (time first)."
        )
    out = _forward(model, x, per_step=(loss == "per_step_ce"))
    loss_sum = compute_loss(out, y, loss, reduction="sum")
    correct = (rate_of(out).argmax(-1) == y).sum()
    return StepOutput(loss_sum, correct, len(y))


STEPS.register("frames", classification_step)
STEPS.register("sequence", classification_step)
