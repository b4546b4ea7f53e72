"""Training callbacks: where quantization observers, pruning masks and custom updates plug in.

A :class:`Callback` gets three calls from the loop, each with the :class:`StepContext` of the
run: ``after_backward`` (gradients are there, before clipping and the optimizer step),
``after_step`` (after the optimizer and schedule step) and ``epoch_end`` (after validation,
before the checkpoint is written, so what a callback changes is saved). A callback with state
returns it from ``state_dict()`` and gets it back in ``load_state_dict()`` on resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn
from torch.optim import Optimizer

__all__ = ["Callback", "StepContext", "CallbackList"]


@dataclass
class StepContext:
    """What callbacks see.

    Attributes:
        model: the user's model (unwrapped from DDP).
        optimizer: the optimizer.
        epoch: current epoch (0-based).
        step: optimizer steps taken in this epoch so far (``after_step``: including this one).
        global_step: optimizer steps since the start of the run.
        record: the epoch's metrics (only at ``epoch_end``).
        config: the run's :class:`~spikeloom.train.TrainConfig`.
    """

    model: nn.Module
    optimizer: Optimizer
    config: Any
    epoch: int = 0
    step: int = 0
    global_step: int = 0
    record: dict[str, Any] = field(default_factory=dict)


class Callback:
    """Base class; override the hooks you need."""

    def after_backward(self, ctx: StepContext) -> None:
        """Gradients are computed; the optimizer has not stepped."""

    def after_step(self, ctx: StepContext) -> None:
        """The optimizer and the schedule stepped."""

    def epoch_end(self, ctx: StepContext) -> None:
        """Validation is done; the checkpoint is written right after."""

    def state_dict(self) -> dict[str, Any]:
        """State saved in ``last.pt`` (default: none)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


class CallbackList:
    """Calls every callback in order; saves their states keyed by position and class name."""

    def __init__(self, callbacks: Sequence[Callback] = ()) -> None:
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must derive from spikeloom.train.Callback, got "
                                f"{type(cb).__name__}")
        self.callbacks = list(callbacks)

    def after_backward(self, ctx: StepContext) -> None:
        for cb in self.callbacks:
            cb.after_backward(ctx)

    def after_step(self, ctx: StepContext) -> None:
        for cb in self.callbacks:
            cb.after_step(ctx)

    def epoch_end(self, ctx: StepContext) -> None:
        for cb in self.callbacks:
            cb.epoch_end(ctx)

    def _key(self, i: int, cb: Callback) -> str:
        return f"{i}:{type(cb).__name__}"

    def state_dict(self) -> dict[str, Any]:
        return {self._key(i, cb): cb.state_dict() for i, cb in enumerate(self.callbacks)}

    def load_state_dict(self, states: dict[str, Any]) -> None:
        for i, cb in enumerate(self.callbacks):
            key = self._key(i, cb)
            if key in states:
                cb.load_state_dict(states[key])
