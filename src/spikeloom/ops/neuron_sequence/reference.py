"""Reference implementation of the neuron sequence op: the plain per-step loop.

Readable and obviously right; autograd records every step. Every backend is tested against it
(``tests/test_ops.py``), and it is the speed baseline of ``benchmarks/bench_neurons.py``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...surrogate import spike
from .spec import NeuronSpec

__all__ = ["neuron_sequence_reference"]


def neuron_sequence_reference(
    x: Tensor, decay: float | Tensor, spec: NeuronSpec, v0: Tensor | None = None, *,
    need_u: bool = True,
) -> tuple[Tensor, Tensor | None, Tensor]:
    """Per-step loop of charge, fire, reset and leak (see :mod:`spikeloom.ops.neuron_sequence`).

    Args:
        x: input current ``[T, B, ...]``.
        decay: leak factor ``k`` (float or tensor broadcastable to ``[B, ...]``).
        spec: firing and reset rule.
        v0: initial post-leak potential ``[B, ...]``; ``None`` = rest.
        need_u: return the pre-reset potentials (``False``: ``u`` is ``None``; every backend
            takes this keyword, a fast one may then skip storing them).

    Returns:
        ``(s, u, v_T)``: spikes and pre-reset potentials ``[T, B, ...]``, final state.
    """
    v = v0 if v0 is not None else torch.zeros_like(x[0])
    spikes, pots = [], []
    for t in range(x.shape[0]):
        u = v + x[t]
        s = spike(u - spec.v_th, spec.surrogate, spec.fire_ge)
        s_r = s.detach() if spec.detach_reset else s
        r = u - spec.v_th * s_r if spec.soft else u * (1 - s_r) + spec.v_reset * s_r
        v = decay * r
        spikes.append(s)
        pots.append(u)
    return torch.stack(spikes), (torch.stack(pots) if need_u else None), v
