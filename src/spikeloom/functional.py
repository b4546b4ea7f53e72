"""Keyword-argument front end of the neuron sequence op (:mod:`spikeloom.ops.neuron_sequence`).

:func:`neuron_sequence` takes the neuron parameters as keywords, builds a
:class:`~spikeloom.ops.neuron_sequence.NeuronSpec` and runs the dispatched backend (the fused
autograd op by default). :func:`neuron_sequence_naive` runs the reference per-step loop with
the same arguments; it is what the fast backends are tested against and the baseline of
``benchmarks/bench_neurons.py``.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from .ops.neuron_sequence import NeuronSpec, Reset
from .ops.neuron_sequence import neuron_sequence as _dispatch
from .ops.neuron_sequence.reference import neuron_sequence_reference

__all__ = ["neuron_sequence", "neuron_sequence_naive", "Reset", "NeuronSpec"]


def neuron_sequence(
    x: Tensor, decay: float | Tensor = 0.2, *, v0: Tensor | None = None, **params: Any
) -> tuple[Tensor, Tensor, Tensor]:
    """Run the spiking recurrence over a whole sequence with the dispatched backend.

    Args:
        x: input current ``[T, B, ...]``.
        decay: leak factor ``k`` — a float, or a tensor broadcastable to ``[B, ...]`` (e.g. a
            learnable per-channel decay of shape ``[C, 1, 1]``); gradients flow to a tensor decay.
        v0: initial post-leak potential ``[B, ...]`` (streaming); ``None`` = rest (zeros).
        params: the fields of :class:`NeuronSpec` as keywords: ``v_th`` (0.5), ``v_reset``
            (0), ``reset`` (``"hard"`` or ``"soft"``), ``detach_reset``, ``surrogate`` (name or
            object) with ``width`` for a named one, ``fire_ge`` (``>=`` instead of ``>``).

    Returns:
        ``(s, u, v_T)``: spikes ``[T, B, ...]`` (0/1, differentiable through the surrogate),
        pre-reset potentials ``[T, B, ...]`` (differentiable) and the final state ``[B, ...]``.
    """
    return _dispatch(x, decay, NeuronSpec.make(**params), v0)


def neuron_sequence_naive(
    x: Tensor, decay: float | Tensor = 0.2, *, v0: Tensor | None = None, **params: Any
) -> tuple[Tensor, Tensor, Tensor]:
    """The reference per-step loop with the same arguments and results as
    :func:`neuron_sequence` (autograd records every step)."""
    if x.ndim < 2:
        raise ValueError(
            f"expected a sequence shaped [T, B, ...], got a tensor of shape {tuple(x.shape)}"
        )
    return neuron_sequence_reference(x, decay, NeuronSpec.make(**params), v0)
