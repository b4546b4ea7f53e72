"""Functional core of the spiking neurons: the whole time loop as one autograd function.

One recurrence covers LIF, IF, PLIF and LIAF (spec §1, §2). With ``x[t]`` the input current,
``v[t]`` the membrane potential *after* reset and leak (``v[0]`` = 0 or a given state):

.. code-block:: text

    u[t] = v[t-1] + x[t]                       charge (pre-reset potential)
    s[t] = Θ(u[t] - V_th)                      fire  (``>`` or ``>=``)
    r[t] = u[t]·(1 - s[t]) + V_reset·s[t]      hard reset          (reset="hard")
         = u[t] - V_th·s[t]                    soft / subtractive  (reset="soft")
    v[t] = k · r[t]                            leak (decay factor k, scalar or per-neuron tensor)

With ``V_reset = 0`` and hard reset this is exactly the STBP recurrence
``u[t] = k·u[t-1]·(1 - s[t-1]) + x[t]``; with ``k = 1`` it is IF. LIAF transmits an analog
function of ``u`` instead of ``s``; that is computed outside by ordinary autograd from the
returned ``u``.

:func:`neuron_sequence` runs the loop in one :class:`torch.autograd.Function` that stores only
the pre-reset potential ``u`` (one tensor of shape ``[T, ...]``) and the decay, and recomputes
spikes and surrogate derivatives in its hand-written backward. :func:`neuron_sequence_naive` is
the plain per-step loop that lets autograd record every operation; it is the reference the fused
op is tested against and the baseline of ``benchmarks/bench_neurons.py``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from .surrogate import Surrogate, get_surrogate, spike

__all__ = ["neuron_sequence", "neuron_sequence_naive", "Reset"]

Reset = Literal["hard", "soft"]


def _check_args(x: Tensor, reset: str) -> None:
    if x.ndim < 2:
        raise ValueError(
            f"expected a sequence shaped [T, B, ...], got a tensor of shape {tuple(x.shape)}; "
            "add the time axis first (e.g. x.unsqueeze(0) for one step, or an encoder)"
        )
    if reset not in ("hard", "soft"):
        raise ValueError(f"reset must be 'hard' or 'soft', got {reset!r}")


class _NeuronSequence(torch.autograd.Function):
    """Fused forward/backward of the recurrence above over all T steps.

    The loops work one step at a time (a step's tensors stay in cache) and write into
    preallocated buffers, so that a call allocates little beyond its outputs.
    """

    @staticmethod
    def forward(ctx, x, decay, v0, v_th, v_reset, soft, detach_reset, surrogate, fire_ge):
        T = x.shape[0]
        u_seq = torch.empty_like(x)
        s_seq = torch.empty_like(x)
        v = x.new_zeros(x.shape[1:]) if v0 is None else v0.clone()
        cmp = torch.ge if fire_ge else torch.gt
        for t in range(T):
            u = torch.add(v, x[t], out=u_seq[t]) if (t or v0 is not None) else u_seq[t].copy_(x[t])
            s = cmp(u, v_th, out=s_seq[t])
            if soft:
                torch.add(u, s, alpha=-v_th, out=v)
            else:
                torch.addcmul(u, u, s, value=-1.0, out=v)  # u·(1 - s)
                if v_reset != 0.0:
                    v.add_(s, alpha=v_reset)
            v.mul_(decay)
        ctx.save_for_backward(u_seq, decay if isinstance(decay, Tensor) else None)
        ctx.decay = decay
        ctx.args = (v_th, v_reset, soft, detach_reset, surrogate, fire_ge)
        ctx.v0_given = v0 is not None
        ctx.set_materialize_grads(False)
        return s_seq, u_seq, v

    @staticmethod
    def backward(ctx, g_s, g_u, g_vT):
        u_seq, decay_t = ctx.saved_tensors
        decay = decay_t if decay_t is not None else ctx.decay
        v_th, v_reset, soft, detach_reset, surrogate, fire_ge = ctx.args
        need_x, need_k, need_v0 = ctx.needs_input_grad[:3]
        T = u_seq.shape[0]
        cmp = torch.ge if fire_ge else torch.gt
        g_x = torch.empty_like(u_seq)
        g_k = torch.zeros_like(u_seq[0]) if need_k else None
        z = torch.empty_like(u_seq[0])
        s = torch.empty_like(u_seq[0])
        m = torch.empty_like(u_seq[0])
        g_v = g_vT  # dL/dv[t], flowing backwards
        for t in range(T - 1, -1, -1):
            u = u_seq[t]
            torch.sub(u, v_th, out=z)
            need_h = g_s is not None or (g_v is not None and not detach_reset)
            h = surrogate.grad(z) if need_h else None
            g = g_x[t]
            if g_u is not None:
                g.copy_(g_u[t])
                if g_s is not None:
                    g.addcmul_(g_s[t], h)
            elif g_s is not None:
                torch.mul(g_s[t], h, out=g)
            else:
                g.zero_()
            if g_v is not None:
                # m = k · dr/du
                if soft:
                    if detach_reset:
                        m.fill_(1.0)
                    else:
                        torch.mul(h, -v_th, out=m).add_(1.0)
                else:
                    cmp(u, v_th, out=s)
                    torch.sub(1.0, s, out=m)
                    if not detach_reset:
                        m.addcmul_(torch.sub(v_reset, u), h)
                m.mul_(decay)
                g.addcmul_(m, g_v)
                if need_k:  # dL/dk += dL/dv[t] · r[t]
                    if soft:
                        cmp(u, v_th, out=s)
                        r = torch.add(u, s, alpha=-v_th)
                    else:  # s already holds this step's spikes
                        r = torch.addcmul(u, u, s, value=-1.0)
                        if v_reset != 0.0:
                            r.add_(s, alpha=v_reset)
                    g_k.addcmul_(g_v, r)
            g_v = g
        g_k_out = _sum_to_shape(g_k, decay_t.shape) if need_k else None
        g_v0 = g_v if (need_v0 and ctx.v0_given) else None
        return (g_x if need_x else None), g_k_out, g_v0, None, None, None, None, None, None


def _sum_to_shape(g: Tensor, shape: torch.Size) -> Tensor:
    """Reduce a broadcast gradient back to ``shape`` (leading dims and size-1 dims summed)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    g = g.sum(dim=tuple(range(lead))) if lead > 0 else g
    dims = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(dim=dims, keepdim=True) if dims else g


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
    """Run the spiking recurrence over a whole sequence with one fused autograd function.

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
    _check_args(x, reset)
    surr = get_surrogate(surrogate, width)
    if isinstance(decay, Tensor):
        decay = decay.to(x.dtype)
    return _NeuronSequence.apply(
        x, decay, v0, float(v_th), float(v_reset), reset == "soft", detach_reset, surr, fire_ge
    )


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
    """Reference per-step loop with the same arguments and results as :func:`neuron_sequence`.

    Autograd records every step; used to test the fused op and as the speed baseline.
    """
    _check_args(x, reset)
    surr = get_surrogate(surrogate, width)
    v = v0 if v0 is not None else torch.zeros_like(x[0])
    spikes, pots = [], []
    for t in range(x.shape[0]):
        u = v + x[t]
        s = spike(u - v_th, surr, fire_ge)
        s_r = s.detach() if detach_reset else s
        r = u - v_th * s_r if reset == "soft" else u * (1 - s_r) + v_reset * s_r
        v = decay * r
        spikes.append(s)
        pots.append(u)
    return torch.stack(spikes), torch.stack(pots), v
