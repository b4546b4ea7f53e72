"""Keyword-argument front end of the neuron sequence op (:mod:`spikeloom.ops.neuron_sequence`).

:func:`neuron_sequence` takes the neuron parameters as keywords, builds a
:class:`~spikeloom.ops.neuron_sequence.NeuronSpec` and runs the dispatched backend (the fused
autograd op by default). :func:`neuron_sequence_naive` runs the reference per-step loop with
the same arguments; it is what the fast backends are tested against and the baseline of
``benchmarks/bench_neurons.py``.
"""

from __future__ import annotations

from torch import Tensor

from .ops.neuron_sequence import NeuronSpec, Reset
from .ops.neuron_sequence import neuron_sequence as _dispatch
from .ops.neuron_sequence.reference import neuron_sequence_reference
from .surrogate import Surrogate

__all__ = ["neuron_sequence", "neuron_sequence_naive", "Reset", "NeuronSpec"]


def _spec(v_th: float, v_reset: float, reset: str, detach_reset: bool,
          surrogate: str | Surrogate, width: float | None, fire_ge: bool) -> NeuronSpec:
    return NeuronSpec.make(v_th=v_th, v_reset=v_reset, reset=reset, detach_reset=detach_reset,
                           surrogate=surrogate, width=width, fire_ge=fire_ge)


def neuron_sequence(
    x: Tensor,
    decay: float | Tensor = 0.2,
    *,
    v_th: float = 0.5,
    v_reset: float = 0.0,
    reset: Reset = "hard",
    detach_reset: bool = False,
    surrogate: str | Surrogate = "rectangular",
    width: float | None = None,
    fire_ge: bool = False,
    v0: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run the spiking recurrence over a whole sequence with the dispatched backend.

    Args:
        x: input current ``[T, B, ...]``.
        decay: leak factor ``k`` — a float, or a tensor broadcastable to ``[B, ...]`` (e.g. a
            learnable per-channel decay of shape ``[C, 1, 1]``); gradients flow to a tensor decay.
        v_th: firing threshold ``V_th``.
        v_reset: value after a hard reset.
        reset: ``"hard"`` (to ``v_reset``) or ``"soft"`` (subtract ``V_th``).
        detach_reset: treat ``s`` in the reset term as a constant in backward (LIAF code, PLIF).
        surrogate: surrogate derivative (name or :class:`~spikeloom.surrogate.Surrogate`).
        width: shape parameter of a named surrogate (see :mod:`spikeloom.surrogate`).
        fire_ge: fire on ``u >= V_th`` instead of ``u > V_th``.
        v0: initial post-leak potential ``[B, ...]`` (streaming); ``None`` = rest (zeros).

    Returns:
        ``(s, u, v_T)``: spikes ``[T, B, ...]`` (0/1, differentiable through the surrogate),
        pre-reset potentials ``[T, B, ...]`` (differentiable) and the final state ``[B, ...]``.
    """
    spec = _spec(v_th, v_reset, reset, detach_reset, surrogate, width, fire_ge)
    return _dispatch(x, decay, spec, v0)


def neuron_sequence_naive(
    x: Tensor,
    decay: float | Tensor = 0.2,
    *,
    v_th: float = 0.5,
    v_reset: float = 0.0,
    reset: Reset = "hard",
    detach_reset: bool = False,
    surrogate: str | Surrogate = "rectangular",
    width: float | None = None,
    fire_ge: bool = False,
    v0: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The reference per-step loop with the same arguments and results as
    :func:`neuron_sequence` (autograd records every step)."""
    if x.ndim < 2:
        raise ValueError(
            f"expected a sequence shaped [T, B, ...], got a tensor of shape {tuple(x.shape)}"
        )
    spec = _spec(v_th, v_reset, reset, detach_reset, surrogate, width, fire_ge)
    return neuron_sequence_reference(x, decay, spec, v0)
