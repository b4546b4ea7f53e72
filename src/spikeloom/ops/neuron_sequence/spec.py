"""The parameters shared by every spiking neuron op: one frozen record, written once."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

from ...surrogate import Surrogate, get_surrogate

__all__ = ["NeuronSpec", "Reset", "RESETS"]

Reset = Literal["hard", "soft"]
RESETS: tuple[str, ...] = ("hard", "soft")


@dataclass(frozen=True)
class NeuronSpec:
    """Firing and reset rule of a spiking neuron (everything but the leak and the input scale).

    Attributes:
        v_th: firing threshold ``V_th``.
        reset: ``"hard"`` (to ``v_reset``) or ``"soft"`` (subtract ``V_th``).
        v_reset: potential after a hard reset.
        surrogate: surrogate derivative used in backward (a name is resolved on construction;
            see :mod:`spikeloom.surrogate`).
        fire_ge: fire on ``u >= V_th`` instead of ``u > V_th``.
        detach_reset: treat the spike in the reset term as a constant in backward.

    Build with a surrogate name and width via :meth:`make`::

        NeuronSpec.make(v_th=0.5, surrogate="sigmoid", width=4.0)
    """

    v_th: float = 0.5
    reset: str = "hard"
    v_reset: float = 0.0
    surrogate: Surrogate = get_surrogate("rectangular")
    fire_ge: bool = False
    detach_reset: bool = False

    def __post_init__(self) -> None:
        if self.reset not in RESETS:
            raise ValueError(f"reset must be 'hard' or 'soft', got {self.reset!r}")
        try:
            v_th = float(self.v_th)
            v_reset = float(self.v_reset)
        except (TypeError, ValueError):
            raise ValueError(
                f"v_th and v_reset must be numbers, got {self.v_th!r} and {self.v_reset!r}"
            ) from None
        if math.isnan(v_th) or (not math.isfinite(v_th) and v_th != math.inf):
            raise ValueError(f"v_th must be a number (or +inf for a silent neuron), got {v_th}")
        if not math.isfinite(v_reset):
            raise ValueError(f"v_reset must be finite, got {v_reset}")
        object.__setattr__(self, "v_th", v_th)
        object.__setattr__(self, "v_reset", v_reset)
        object.__setattr__(self, "surrogate", get_surrogate(self.surrogate))
        object.__setattr__(self, "fire_ge", bool(self.fire_ge))
        object.__setattr__(self, "detach_reset", bool(self.detach_reset))

    @classmethod
    def make(cls, *, surrogate: str | Surrogate = "rectangular", width: float | None = None,
             **kwargs: Any) -> NeuronSpec:
        """Build a spec, resolving a surrogate name with an optional width parameter."""
        return cls(surrogate=get_surrogate(surrogate, width), **kwargs)

    def replace(self, **changes: Any) -> NeuronSpec:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    @property
    def soft(self) -> bool:
        return self.reset == "soft"
