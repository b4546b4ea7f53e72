"""``torch_fused`` backend: the whole time loop in one autograd function.

The forward stores only the pre-reset potential ``u`` ``[T, ...]`` (and a tensor decay); the
hand-written backward recomputes spikes and surrogate derivatives step by step. The loops work
one step at a time (a step's tensors stay in cache) and write into preallocated buffers.
Runs on any device torch supports.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .spec import NeuronSpec

__all__ = ["neuron_sequence_fused"]


def _reset(u: Tensor, s: Tensor, spec: NeuronSpec, out: Tensor | None = None) -> Tensor:
    """``r = u - V_th·s`` (soft) or ``u·(1 - s) + V_reset·s`` (hard)."""
    if spec.soft:
        return torch.add(u, s, alpha=-spec.v_th, out=out) if out is not None else \
            torch.add(u, s, alpha=-spec.v_th)
    r = torch.addcmul(u, u, s, value=-1.0, out=out) if out is not None else \
        torch.addcmul(u, u, s, value=-1.0)
    if spec.v_reset != 0.0:
        r.add_(s, alpha=spec.v_reset)
    return r


class _NeuronSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, decay, v0, spec: NeuronSpec):
        T = x.shape[0]
        u_seq = torch.empty_like(x)
        s_seq = torch.empty_like(x)
        v = x.new_zeros(x.shape[1:]) if v0 is None else v0.clone()
        cmp = torch.ge if spec.fire_ge else torch.gt
        for t in range(T):
            u = torch.add(v, x[t], out=u_seq[t]) if (t or v0 is not None) else u_seq[t].copy_(x[t])
            s = cmp(u, spec.v_th, out=s_seq[t])
            _reset(u, s, spec, out=v)
            v.mul_(decay)
        ctx.save_for_backward(u_seq, decay if isinstance(decay, Tensor) else None)
        ctx.decay = decay
        ctx.spec = spec
        ctx.v0_given = v0 is not None
        ctx.set_materialize_grads(False)
        return s_seq, u_seq, v

    @staticmethod
    def backward(ctx, g_s, g_u, g_vT):
        u_seq, decay_t = ctx.saved_tensors
        decay = decay_t if decay_t is not None else ctx.decay
        spec: NeuronSpec = ctx.spec
        v_th = spec.v_th
        need_x, need_k, need_v0 = ctx.needs_input_grad[:3]
        cmp = torch.ge if spec.fire_ge else torch.gt
        g_x = torch.empty_like(u_seq)
        g_k = torch.zeros_like(u_seq[0]) if need_k else None
        z, s, m = (torch.empty_like(u_seq[0]) for _ in range(3))
        g_v = g_vT  # dL/dv[t], flowing backwards
        for t in range(u_seq.shape[0] - 1, -1, -1):
            u = u_seq[t]
            torch.sub(u, v_th, out=z)
            need_h = g_s is not None or (g_v is not None and not spec.detach_reset)
            h = spec.surrogate.grad(z) if need_h else None
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
                _reset_jacobian(u, h, spec, cmp, s, m)  # m = dr/du
                m.mul_(decay)
                g.addcmul_(m, g_v)
                if need_k:  # dL/dk += dL/dv[t] · r[t]
                    cmp(u, v_th, out=s)
                    g_k.addcmul_(g_v, _reset(u, s, spec))
            g_v = g
        g_k_out = _sum_to_shape(g_k, decay_t.shape) if need_k else None
        g_v0 = g_v if (need_v0 and ctx.v0_given) else None
        return (g_x if need_x else None), g_k_out, g_v0, None


def _reset_jacobian(u: Tensor, h: Tensor | None, spec: NeuronSpec, cmp, s: Tensor,
                    m: Tensor) -> None:
    """Write ``dr/du`` into ``m`` (``s`` is scratch space)."""
    if spec.soft:
        if spec.detach_reset:
            m.fill_(1.0)
        else:
            torch.mul(h, -spec.v_th, out=m).add_(1.0)
    else:
        cmp(u, spec.v_th, out=s)
        torch.sub(1.0, s, out=m)
        if not spec.detach_reset:
            m.addcmul_(torch.sub(spec.v_reset, u), h)


def _sum_to_shape(g: Tensor, shape: torch.Size) -> Tensor:
    """Reduce a broadcast gradient back to ``shape`` (leading dims and size-1 dims summed)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    g = g.sum(dim=tuple(range(lead))) if lead > 0 else g
    dims = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(dim=dims, keepdim=True) if dims else g


def neuron_sequence_fused(
    x: Tensor, decay: float | Tensor, spec: NeuronSpec, v0: Tensor | None = None, *,
    need_u: bool = True,
) -> tuple[Tensor, Tensor | None, Tensor]:
    """Same contract as :func:`.reference.neuron_sequence_reference` (``u`` is computed and
    saved either way; ``need_u=False`` only drops it from the result)."""
    s, u, v = _NeuronSequence.apply(x, decay, v0, spec)
    return s, (u if need_u else None), v
