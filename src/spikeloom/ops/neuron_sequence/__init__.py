"""The multi-step spiking neuron operator: charge, fire, reset and leak over ``[T, B, ...]``.

One recurrence covers LIF, IF, PLIF and LIAF. With ``x[t]`` the input current and ``v[t]`` the
membrane potential after reset and leak (``v[-1]`` = 0 or a given state):

.. code-block:: text

    u[t] = v[t-1] + x[t]                       charge (pre-reset potential)
    s[t] = Θ(u[t] - V_th)                      fire  (``>`` or ``>=``)
    r[t] = u[t]·(1 - s[t]) + V_reset·s[t]      hard reset          (reset="hard")
         = u[t] - V_th·s[t]                    soft / subtractive  (reset="soft")
    v[t] = k · r[t]                            leak (decay factor k, scalar or per-neuron tensor)

With ``V_reset = 0`` and a hard reset this is the iterative LIF of STBP (Wu et al. 2018,
arXiv:1706.02609), ``u[t] = k·u[t-1]·(1 - s[t-1]) + x[t]``; with ``k = 1`` it is IF. The spike's
derivative is replaced by a surrogate in backward (:mod:`spikeloom.surrogate`).

Backends (``SPIKELOOM_BACKEND_NEURON_SEQUENCE`` forces one):

* ``reference`` — the per-step loop recorded by autograd (:mod:`.reference`);
* ``torch_fused`` — the whole loop in one autograd function with a hand-written backward that
  saves only ``u`` (:mod:`.torch_fused`); the default on devices other than the CPU and
  the fallback when the compiled kernel is not built;
* ``cpu_kernel`` — a compiled C++/OpenMP kernel (forward and backward, registered with
  ``torch.library`` so ``torch.compile`` traces through it; :mod:`.cpu_kernel`); the default on
  the CPU when its extension is built.
"""

from __future__ import annotations

from torch import Tensor

from .._dispatch import register_backend, select
from .cpu_kernel import neuron_sequence_cpu_kernel
from .cpu_kernel import unavailable_reason as _cpu_kernel_unavailable
from .reference import neuron_sequence_reference
from .spec import RESETS, NeuronSpec, Reset
from .torch_fused import neuron_sequence_fused

__all__ = ["NeuronSpec", "Reset", "RESETS", "neuron_sequence", "OP"]

OP = "neuron_sequence"

register_backend(OP, "reference", neuron_sequence_reference, priority=0)
register_backend(OP, "torch_fused", neuron_sequence_fused, priority=10)
register_backend(OP, "cpu_kernel", neuron_sequence_cpu_kernel, devices=("cpu",), priority=20,
                 is_available=_cpu_kernel_unavailable)


def neuron_sequence(
    x: Tensor, decay: float | Tensor, spec: NeuronSpec, v0: Tensor | None = None, *,
    need_u: bool = True,
) -> tuple[Tensor, Tensor | None, Tensor]:
    """Run the recurrence over a whole sequence with the selected backend.

    Args:
        x: input current ``[T, B, ...]`` (``T >= 1``).
        decay: leak factor ``k``: a float, or a tensor broadcastable to ``[B, ...]`` (e.g. a
            learnable per-channel decay ``[C, 1, 1]``); gradients flow to a tensor decay.
        spec: firing and reset rule (:class:`NeuronSpec`).
        v0: initial post-leak potential ``[B, ...]`` (streaming); ``None`` = rest.
        need_u: return the pre-reset potentials. With ``False`` the result's ``u`` is ``None``
            and a backend may skip them: ``cpu_kernel`` then writes only spikes and saves the
            input ``x`` instead of ``u`` for backward, which recomputes ``u`` chunk by chunk
            (same gradients bit for bit, one ``[T, B, ...]`` buffer less written in forward).

    Returns:
        ``(s, u, v_T)``: spikes ``[T, B, ...]`` (0/1, differentiable through the surrogate),
        pre-reset potentials ``[T, B, ...]`` (``None`` when ``need_u`` is false) and the
        final state ``[B, ...]``.
    """
    if x.ndim < 2:
        raise ValueError(
            f"expected a sequence shaped [T, B, ...], got a tensor of shape {tuple(x.shape)}; "
            "add the time axis first (e.g. x.unsqueeze(0) for one step, or an encoder)"
        )
    if x.shape[0] == 0:
        raise ValueError(f"the sequence is empty (T = 0, shape {tuple(x.shape)})")
    if isinstance(decay, Tensor):
        decay = decay.to(x.dtype)
    return select(OP, x.device.type).fn(x, decay, spec, v0, need_u=need_u)
