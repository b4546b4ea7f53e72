"""The training-method registry: how a run turns the model into what it trains.

A :class:`TrainingMethod` may replace three things of a run, each through a hook, never by
editing the trainer:

* ``prepare(model, options) -> model``: swap neurons (DSR), or check/wrap the model (Joint
  A-SNN needs a model with an ANN twin);
* ``make_step(options) -> TaskStep | None``: the training step (loss of one batch); ``None``
  keeps the step registered for the data kind (:data:`spikeloom.train.steps.STEPS`);
* ``make_callbacks(options) -> [Callback]``: per-step updates (DSR keeps thresholds above
  their bound).

Evaluation always uses the data kind's ordinary step on ``model(x)``, so a method's model must
give its inference logits from ``forward``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..registry import Registry

__all__ = ["TrainingMethod", "METHODS", "register_method", "get_method"]


def _keep(model: nn.Module, options: dict[str, Any]) -> nn.Module:
    return model


def _no_step(options: dict[str, Any]) -> None:
    return None


def _no_callbacks(options: dict[str, Any]) -> list:
    return []


@dataclass(frozen=True)
class TrainingMethod:
    """One way of training a model (see the module docstring for the hooks).

    Attributes:
        name: registry name.
        summary: one line for listings.
        prepare: ``(model, options) -> model``.
        make_step: ``options -> TaskStep | None``.
        make_callbacks: ``options -> list of Callback``.
        options: the accepted option names (``method_kwargs`` keys) and their defaults.
    """

    name: str
    summary: str
    prepare: Callable[[nn.Module, dict[str, Any]], nn.Module] = _keep
    make_step: Callable[[dict[str, Any]], Any] = _no_step
    make_callbacks: Callable[[dict[str, Any]], list] = _no_callbacks
    options: dict[str, Any] = field(default_factory=dict)

    def resolve(self, kwargs: dict[str, Any] | None) -> dict[str, Any]:
        """The method's options: defaults updated with ``kwargs`` (unknown keys refused)."""
        from ..errors import ConfigError

        kwargs = dict(kwargs or {})
        unknown = sorted(set(kwargs) - set(self.options))
        if unknown:
            allowed = ", ".join(sorted(self.options)) or "none"
            raise ConfigError(f"method {self.name!r} has no option(s) {', '.join(unknown)}; "
                              f"its options: {allowed}")
        return {**self.options, **kwargs}


#: method name -> :class:`TrainingMethod`
METHODS: Registry[TrainingMethod] = Registry("training method")


def register_method(method: TrainingMethod, aliases: tuple[str, ...] = ()) -> TrainingMethod:
    """Add a method to :data:`METHODS` (name case-insensitive, ``-`` == ``_``)."""
    METHODS.register(method.name, method, aliases=aliases)
    return method


def get_method(name: str) -> TrainingMethod:
    """The registered method ``name`` (an unknown name lists the registered ones)."""
    return METHODS.get(name)


register_method(TrainingMethod(
    "stbp", "surrogate-gradient BPTT through the neurons (spatio-temporal backpropagation)"),
    aliases=("bptt", "surrogate"))
