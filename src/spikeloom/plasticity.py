"""Hybrid-plasticity SNNs: global (BPTT) learning plus a local Hebbian rule with learned
parameters (Wu et al., Nat. Commun. 13, 65, 2022; arXiv:2006.03226; spec C1).

A :class:`HebbianLinear` layer of LIF neurons has *slow* weights ``W, b`` (trained by
backprop, "global plasticity", GP) and *fast* weights ``P`` ``[n_in, n_out]`` that a Hebbian
rule changes at every time step during the forward pass ("local plasticity", LP). Per step
``t`` (as in the authors' demo)::

    state[t] = x[t] Wᵀ + b + α · x[t] P[t−1]
    u[t]     = (u[t−1] − V_th · s[t−1]) · λ + state[t]          # LIF, soft reset
    s[t]     = H(u[t] − V_th)                                    # strict >, rectangular surrogate
    P[t]     = clamp(γ_w · P[t−1] + mean_batch[(x[t] ⊙ β)ᵀ tanh(u[t]/V_th − η)], −4, 4)

``α`` (scalar), ``β`` (per input) and ``η`` (per neuron, a sliding threshold of the post-term)
are the *meta-local* parameters: they are trained by gradient descent through the unrolled
forward ("learning how to learn locally"). The Hebbian post-term uses the membrane *after*
integration and before the next step's reset; ``x[t]`` is the input after the temporal decay.
The demo also declares a decay meta-parameter ``γ`` that it never uses; it is left out here.

Variants (``plasticity=``): ``"hybrid"`` (HP: everything trained, P active),
``"backprop"`` (GP: no P), ``"local"`` (LP layer: ``W, b`` and the rule parameters frozen at
their random initialisation, only ``P`` adapts, no gradient through the layer — the demo's LP
hidden layer). :class:`HybridPlasticityNet` builds the demo's three networks
(``variant="hybrid"|"backprop"|"local"``; the LP network has a local hidden layer and a hybrid
readout layer).

Fast-weight state. In the demo ``P`` is created once per run, carried (detached) from batch to
batch and into evaluation, so test accuracy depends on the training order. Here the state is
explicit: ``net(x, fast=...)`` takes the fast weights to start from (``None``: zeros, i.e.
reset) and ``net.run(x, fast)`` also returns the final ones. To reproduce the demo, carry
``out.fast`` into the next call; to evaluate with reset fast weights (our recommended default),
pass ``fast=None``. :func:`evaluate_hp` makes the choice an explicit ``reset_fast`` option.
The meta-learning outer loop of the paper collapses, in the demo, to joint training with two
Adam learning rates (GP 1e-3, meta-local 5e-4): :meth:`HybridPlasticityNet.param_groups`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import ConfigError
from .surrogate import Rectangular

__all__ = [
    "HebbianLinear", "HybridPlasticityNet", "HPOutput", "Plasticity", "evaluate_hp", "mse_onehot",
]

Plasticity = Literal["hybrid", "backprop", "local"]
_PLASTICITY = ("hybrid", "backprop", "local")


class HebbianLinear(nn.Module):
    """LIF layer with slow (backprop) and fast (Hebbian) weights (see the module docstring).

    Args:
        in_features, out_features: widths.
        plasticity: ``"hybrid"``, ``"backprop"`` or ``"local"``.
        v_th: threshold ``V_th`` (0.35). decay: membrane decay ``λ`` (0.4).
        trace_decay: ``γ_w`` of the fast weights (0.95). clamp: bound of ``P`` (4).
        meta_init: scale of the uniform initialisation of ``α, β, η`` (1e-2).
        surrogate_width: width of the rectangular surrogate (1.0: ``1[|u − V_th| < 0.5]``).
    """

    def __init__(self, in_features: int, out_features: int, *,
                 plasticity: Plasticity = "hybrid", v_th: float = 0.35, decay: float = 0.4,
                 trace_decay: float = 0.95, clamp: float = 4.0, meta_init: float = 1e-2,
                 surrogate_width: float = 1.0) -> None:
        super().__init__()
        if plasticity not in _PLASTICITY:
            raise ConfigError(f"HebbianLinear: plasticity must be one of {_PLASTICITY}, "
                              f"got {plasticity!r}")
        if not (v_th > 0 and 0 < decay <= 1 and 0 <= trace_decay <= 1 and clamp > 0):
            raise ConfigError(
                f"HebbianLinear: need v_th > 0, 0 < decay <= 1, 0 <= trace_decay <= 1, "
                f"clamp > 0; got v_th={v_th}, decay={decay}, trace_decay={trace_decay}, "
                f"clamp={clamp}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.plasticity = plasticity
        self.v_th, self.decay, self.trace_decay, self.clamp = v_th, decay, trace_decay, clamp
        self.fc = nn.Linear(self.in_features, self.out_features)
        self.surrogate = Rectangular(surrogate_width)
        if plasticity != "backprop":
            self.alpha = nn.Parameter(meta_init * torch.rand(()))
            self.beta = nn.Parameter(meta_init * torch.rand(self.in_features))
            self.eta = nn.Parameter(meta_init * torch.rand(self.out_features))
        if plasticity == "local":
            for p in self.parameters():
                p.requires_grad_(False)

    def meta_parameters(self) -> list[nn.Parameter]:
        """The rule parameters ``α, β, η`` (empty for ``"backprop"``)."""
        return [] if self.plasticity == "backprop" else [self.alpha, self.beta, self.eta]

    def initial_fast(self, ref: Tensor) -> Tensor | None:
        """Zero fast weights ``[n_in, n_out]`` (``None`` for ``"backprop"``)."""
        if self.plasticity == "backprop":
            return None
        return ref.new_zeros(self.in_features, self.out_features)

    def forward(self, x: Tensor,
                fast: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        """Run ``x`` ``[T, B, n_in]`` from rest; returns ``(spikes, membrane, fast_T)``."""
        if x.ndim != 3 or x.shape[-1] != self.in_features:
            raise ConfigError(f"HebbianLinear: expected [T, B, {self.in_features}], got "
                              f"{tuple(x.shape)}")
        if self.plasticity == "local":
            with torch.no_grad():
                return self._run(x, fast)
        return self._run(x, fast)

    def _run(self, x: Tensor, fast: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        P = self.initial_fast(x) if fast is None else fast
        cur = self.fc(x)  # [T, B, n_out]: the slow-weight input of all steps at once
        u = s = x.new_zeros(x.shape[1], self.out_features)
        spikes, mems = [], []
        for t in range(x.shape[0]):
            state = cur[t]
            if P is not None:
                state = state + self.alpha * (x[t] @ P)
            u = (u - self.v_th * s) * self.decay + state
            s = self.surrogate(u - self.v_th)
            if P is not None:
                post = torch.tanh(u / self.v_th - self.eta)
                hebb = (x[t] * self.beta).T @ post / x.shape[1]
                P = torch.clamp(self.trace_decay * P + hebb, -self.clamp, self.clamp)
            spikes.append(s)
            mems.append(u)
        return torch.stack(spikes), torch.stack(mems), P

    def extra_repr(self) -> str:
        return (f"{self.in_features}, {self.out_features}, plasticity={self.plasticity}, "
                f"v_th={self.v_th}, decay={self.decay}, trace_decay={self.trace_decay}")


@dataclass
class HPOutput:
    """Readout ``[B, K]`` and the fast weights after the sequence (one per layer)."""

    out: Tensor
    fast: list[Tensor | None]


class HybridPlasticityNet(nn.Module):
    """The demo's fully connected hybrid-plasticity SNN (784-512-10 by default).

    Args:
        sizes: ``(inputs, hidden..., classes)``.
        variant: ``"hybrid"`` (all layers hybrid), ``"backprop"`` (no fast weights) or
            ``"local"`` (hidden layers local-only with frozen random slow weights, hybrid
            readout layer).
        T: time steps when the input is a static ``[B, ...]`` image (10).
        tau_w: the input and the hidden spikes are scaled by ``exp(−t/τ_w)`` (40).
        readout_clamp: output ``min(u_L[T−1]/V_th, readout_clamp)`` (1.1); train with MSE
            against one-hot labels as in the demo.
        **layer_kw: :class:`HebbianLinear` options (``v_th``, ``decay``, ``trace_decay``, ...).

    ``forward(x, per_step=False, fast=None)`` returns the readout (``fast=None``: fast weights
    reset to zero); :meth:`run` returns an :class:`HPOutput` with the final fast weights.
    Input: time-major ``[T, B, ...]`` frames or a static ``[B, C, H, W]``/``[B, F]`` batch.
    """

    def __init__(self, sizes: Sequence[int] = (784, 512, 10), *, variant: Plasticity = "hybrid",
                 T: int = 10, tau_w: float = 40.0, readout_clamp: float = 1.1,
                 **layer_kw) -> None:
        super().__init__()
        if variant not in _PLASTICITY:
            raise ConfigError(f"HybridPlasticityNet: variant must be one of {_PLASTICITY}, "
                              f"got {variant!r}")
        if len(sizes) < 2 or T < 1:
            raise ConfigError(f"HybridPlasticityNet: need >= 2 sizes and T >= 1, got {sizes}, {T}")
        self.sizes, self.variant, self.T = [int(s) for s in sizes], variant, int(T)
        self.tau_w, self.readout_clamp = float(tau_w), float(readout_clamp)
        n = len(self.sizes) - 1
        kinds = {"hybrid": ["hybrid"] * n, "backprop": ["backprop"] * n,
                 "local": ["local"] * (n - 1) + ["hybrid"]}[variant]
        self.layers = nn.ModuleList(
            HebbianLinear(a, b, plasticity=k, **layer_kw)
            for a, b, k in zip(self.sizes[:-1], self.sizes[1:], kinds, strict=True))

    def param_groups(self, lr: float = 1e-3, meta_lr: float = 5e-4) -> list[dict]:
        """Adam groups of the demo: slow weights at ``lr``, rule parameters at ``meta_lr``."""
        meta = [p for m in self.layers for p in m.meta_parameters() if p.requires_grad]
        ids = {id(p) for p in meta}
        base = [p for p in self.parameters() if p.requires_grad and id(p) not in ids]
        groups = [{"params": base, "lr": lr}]
        if meta:
            groups.append({"params": meta, "lr": meta_lr})
        return groups

    def _sequence(self, x: Tensor) -> Tensor:
        if x.ndim in (2, 4):  # static batch: the image at every step
            x = x.reshape(x.shape[0], -1).expand(self.T, -1, -1)
        else:
            x = x.reshape(x.shape[0], x.shape[1], -1)
        return x

    def run(self, x: Tensor, fast: Sequence[Tensor | None] | None = None) -> HPOutput:
        """Readout and the final fast weights, starting from ``fast`` (``None``: zeros)."""
        h = self._sequence(x)
        fast = [None] * len(self.layers) if fast is None else list(fast)
        if len(fast) != len(self.layers):
            raise ConfigError(f"fast: expected {len(self.layers)} tensors, got {len(fast)}")
        t = torch.arange(h.shape[0], dtype=h.dtype, device=h.device)
        scale = torch.exp(-t / self.tau_w)[:, None, None]
        new_fast: list[Tensor | None] = []
        mem = h
        for m, p in zip(self.layers, fast, strict=True):
            s, mem, p = m(h * scale, p)
            new_fast.append(p)
            h = s
        out = torch.clamp(mem[-1] / self.layers[-1].v_th, max=self.readout_clamp)
        return HPOutput(out, new_fast)

    def forward(self, x: Tensor, per_step: bool = False,
                fast: Sequence[Tensor | None] | None = None) -> Tensor:
        """Readout ``[B, K]`` (``per_step=True``: ``[1, B, K]``); fast weights from ``fast``."""
        out = self.run(x, fast).out
        return out[None] if per_step else out


@torch.no_grad()
def evaluate_hp(net: HybridPlasticityNet, batches: Iterable[tuple[Tensor, Tensor]], *,
                reset_fast: bool = True,
                fast: Sequence[Tensor | None] | None = None) -> tuple[float, list]:
    """Accuracy of ``net`` on ``(x, y)`` batches and the fast weights at the end.

    ``reset_fast=True`` starts every batch from zero fast weights (order-independent);
    ``False`` carries them from ``fast`` (e.g. the end of training) through the batches, as the
    reference demo does.
    """
    was = net.training
    net.eval()
    correct = total = 0
    carry = None if reset_fast else fast
    for x, y in batches:
        res = net.run(x, carry)
        if not reset_fast:
            carry = [None if p is None else p.detach() for p in res.fast]
        correct += int((res.out.argmax(1) == y).sum())
        total += int(y.numel())
    net.train(was)
    return correct / max(total, 1), list(carry or [])


def mse_onehot(out: Tensor, y: Tensor) -> Tensor:
    """The demo's loss: mean squared error against one-hot labels."""
    return F.mse_loss(out, F.one_hot(y, out.shape[-1]).to(out.dtype))

