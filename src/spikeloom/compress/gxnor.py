"""GXNOR-Net (spec A1; Deng et al., Neural Networks 2018, arXiv:1705.09283).

Weights and activations live in the discrete space ``Z_N = {(n / 2^(N−1) − 1)·H}`` at every
moment of training: there is no hidden full-precision weight.

* :func:`discrete_states`, :func:`snap` — the space and the nearest state.
* :class:`GXNORActivation` — ``φ_r`` (ternary, or the multi-level staircase [RECON]) with the
  rectangular derivative window ``1/(2a)`` on ``r − a ≤ |x| ≤ r + a`` around every threshold.
* :class:`DST` — the Discrete State Transition optimizer: Adam proposes ``ΔW``; DST moves each
  weight by ``κ`` whole states plus one more with probability ``tanh(m·|ν|/Δz)``. Adam's moment
  estimates are its only state.
* :func:`gated_xnor_dot` — XNOR/popcount dot product of ternary vectors (equals the integer dot)
  and :func:`gated_fraction` — the fraction of multiply operations a gated-XNOR unit executes
  (both operands non-zero), measured per layer by :func:`measure_gated_fraction`.
* :class:`GXNORNet` — the MNIST network of the reference code: 32C5-MP2-BN-φ, 64C5-MP2-BN-φ,
  FC512-BN-φ, FC10-BN, no biases, discrete conv/dense weights (priced as ``ternary`` for
  ``N = 1``, ``int4`` for ``N = 2`` by :func:`spikeloom.cost.measure_cost`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ..cost.energy import precision_for_bits
from ..errors import ConfigError
from ..walk import run_hooked

__all__ = ["discrete_states", "snap", "GXNORActivation", "DST", "gated_xnor_dot",
           "gated_fraction", "measure_gated_fraction", "GXNORNet", "squared_hinge"]


def _spacing(N: int, H: float) -> float:
    if N < 0 or H <= 0:
        raise ConfigError(f"GXNOR needs N >= 0 and H > 0, got N={N}, H={H}")
    return 2.0 * H / 2 ** N


def discrete_states(N: int = 1, H: float = 1.0) -> Tensor:
    """``Z_N``: ``2^N + 1`` states from ``−H`` to ``H`` (``N = 1``: ternary)."""
    dz = _spacing(N, H)
    return torch.arange(2 ** N + 1, dtype=torch.float64) * dz - H


def snap(w: Tensor, N: int = 1, H: float = 1.0) -> Tensor:
    """Nearest state of ``Z_N`` (clipped to ``[−H, H]``)."""
    dz = _spacing(N, H)
    return torch.round((w.clamp(-H, H) + H) / dz) * dz - H


class _PhiFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, r: float, a: float, dz: float, H: float, levels: int):
        ctx.save_for_backward(x)
        ctx.cfg = (r, a, dz, levels)
        mag = torch.clamp(dz * (1 + torch.floor((x.abs() - r) / dz)), max=H)
        return torch.where(x.abs() > r, torch.sign(x) * mag, torch.zeros_like(x))

    @staticmethod
    def backward(ctx, g: Tensor):
        (x,) = ctx.saved_tensors
        r, a, dz, levels = ctx.cfg
        ax = x.abs()
        win = torch.zeros_like(x)
        for j in range(levels):  # one window per threshold (levels is small)
            t = r + j * dz
            win = win + ((ax >= t - a) & (ax <= t + a)).to(x.dtype)
        return g * win.clamp(max=1.0) * (dz / (2 * a)), None, None, None, None, None


class GXNORActivation(nn.Module):
    """Discrete activation ``φ`` with a rectangular derivative window.

    Args:
        r: dead zone (``|x| ≤ r`` gives 0).
        a: half-width of the derivative window (``a > 0``); gradient ``Δz/(2a)`` inside
            (the jump height over the window width: ``1/(2a)`` for ``H = 1`` ternary).
        N: activations in ``Z_N`` (``N = 1``: ternary ``{−H, 0, H}``; larger ``N``: the
            multi-level staircase with steps every ``Δz`` after ``r`` [RECON]).
        H: range.
    """

    def __init__(self, r: float = 1.0, a: float = 0.5, N: int = 1, H: float = 1.0) -> None:
        super().__init__()
        if a <= 0:
            raise ConfigError(f"the derivative window half-width a must be > 0, got {a}")
        self.r, self.a, self.N, self.H = float(r), float(a), int(N), float(H)
        self.dz = _spacing(self.N, self.H)

    def forward(self, x: Tensor) -> Tensor:
        levels = max(1, round(self.H / self.dz))  # thresholds on one side
        return _PhiFn.apply(x, self.r, self.a, self.dz, self.H, levels)

    def extra_repr(self) -> str:
        return f"r={self.r}, a={self.a}, N={self.N}, H={self.H}"


class DST(torch.optim.Optimizer):
    """Discrete State Transition update over Adam's proposal (spec A1).

    Every parameter given must start in ``Z_N`` (:func:`snap` it); after every step it is
    exactly in ``Z_N``. The only state is Adam's (``step``, ``exp_avg``, ``exp_avg_sq``).

    Args:
        params: the discrete weights.
        lr, betas, eps: Adam's. ``betas[0]`` sets how noisy the proposals are: Adam scales
            every proposal to about ``lr``, so noise-dominated weights keep transitioning at
            a rate ≈ ``m·lr`` in random directions however small ``lr`` gets. The reference
            code's 0.9 relies on its batch of 10,000; at batch 100 on MNIST, 0.99 lifted
            training accuracy from 0.990 to 0.998 and test accuracy from 0.9865 to 0.9921
            (``benchmarks/bench_gxnor_mnist.py``, runs 6 and 8).
        N, H: the discrete space.
        m: non-linear factor of the transition probability ``tanh(m·|ν|/Δz)``.
        generator: RNG of the Bernoulli draws (``None``: torch's global one).
    """

    def __init__(self, params: Iterable[Tensor], lr: float = 0.01, betas=(0.9, 0.999),
                 eps: float = 1e-8, N: int = 1, H: float = 1.0, m: float = 3.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "N": N, "H": H, "m": m})
        self.generator = generator

    @staticmethod
    def transition(w: Tensor, dw: Tensor, N: int, H: float, m: float,
                   generator: torch.Generator | None = None) -> Tensor:
        """``w`` moved by the proposal ``dw`` (boundary, κ/ν split, tanh coin; then snapped)."""
        dz = _spacing(N, H)
        rho = torch.where(dw >= 0, torch.minimum(H - w, dw), torch.maximum(-H - w, dw))
        kappa = torch.trunc(rho / dz)
        nu = rho - kappa * dz
        tau = torch.tanh(m * nu.abs() / dz)
        coin = (torch.rand(w.shape, generator=generator, dtype=w.dtype, device=w.device)
                < tau).to(w.dtype)
        return snap(w + (kappa + torch.sign(rho) * coin) * dz, N, H)

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["step"] = 0
                    st["exp_avg"] = torch.zeros_like(p)
                    st["exp_avg_sq"] = torch.zeros_like(p)
                st["step"] += 1
                st["exp_avg"].mul_(b1).add_(p.grad, alpha=1 - b1)
                st["exp_avg_sq"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                mhat = st["exp_avg"] / (1 - b1 ** st["step"])
                vhat = st["exp_avg_sq"] / (1 - b2 ** st["step"])
                dw = -group["lr"] * mhat / (vhat.sqrt() + group["eps"])
                p.copy_(self.transition(p, dw, group["N"], group["H"], group["m"],
                                        self.generator))
        return loss


def gated_xnor_dot(w: Tensor, x: Tensor) -> Tensor:
    """Dot product of ternary vectors (last axis) by gated XNOR and popcount.

    ``gate = (w ≠ 0) & (x ≠ 0)``; agree = gate & XNOR(sign bits); result ``#agree − #disagree``.
    """
    gate = (w != 0) & (x != 0)
    agree = gate & ~((w < 0) ^ (x < 0))
    n_gate = gate.sum(-1)
    n_agree = agree.sum(-1)
    return 2 * n_agree - n_gate


def gated_fraction(w: Tensor, x: Tensor) -> float:
    """Fraction of the pairwise products of a dot product that are executed (both non-zero)."""
    return float(((w != 0) & (x != 0)).double().mean())


def measure_gated_fraction(model: nn.Module, x: Tensor) -> dict[str, float]:
    """Per conv/linear layer, the fraction of its multiplies with both operands non-zero on
    input batch ``x`` (the gated-XNOR operations executed), and ``"total"``."""
    executed: dict[str, float] = {}
    total: dict[str, float] = {}
    hooks = []

    def hook(name):
        def fn(m, args, out):
            xin = (args[0] != 0).double()
            wnz = (m.weight != 0).double()
            if isinstance(m, nn.Conv2d):
                ex = nn.functional.conv2d(xin, wnz, None, m.stride, m.padding)
                full = nn.functional.conv2d(torch.ones_like(xin), torch.ones_like(wnz), None,
                                            m.stride, m.padding)
            else:
                ex, full = xin @ wnz.T, torch.ones_like(xin) @ torch.ones_like(wnz).T
            executed[name] = executed.get(name, 0.0) + float(ex.sum())
            total[name] = total.get(name, 0.0) + float(full.sum())
        return fn

    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            hooks.append(m.register_forward_hook(hook(name)))
    run_hooked(model, x, hooks)
    out = {k: executed[k] / total[k] for k in executed}
    out["total"] = sum(executed.values()) / max(sum(total.values()), 1.0)
    return out


def squared_hinge(logits: Tensor, y: Tensor) -> Tensor:
    """``mean(max(0, 1 − t·y)^2)`` with one-hot targets mapped to ±1 (reference code loss)."""
    t = torch.full_like(logits, -1.0).scatter_(1, y[:, None], 1.0)
    return torch.clamp(1 - t * logits, min=0).pow(2).mean()


class GXNORNet(nn.Module):
    """The reference MNIST layout: ``[conv5 32, MP2, BN, φ], [conv5 64, MP2, BN, φ],
    [FC 512, BN, φ], [FC 10, BN]``; conv/dense weights discrete (init ``U(−H, H)`` snapped).

    Input ``[B, 1, 28, 28]`` scaled to ``[−1, 1]``; output ``[B, 10]``.
    """

    def __init__(self, N: int = 1, H: float = 1.0, r: float = 1.0, a: float = 0.5,
                 width: tuple[int, int, int] = (32, 64, 512)) -> None:
        super().__init__()
        c1, c2, f = width
        act = lambda: GXNORActivation(r, a, N, H)  # noqa: E731
        bn = dict(eps=1e-4, momentum=0.1)
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 5, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(c1, **bn), act(),
            nn.Conv2d(c1, c2, 5, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(c2, **bn), act(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c2 * 16, f, bias=False), nn.BatchNorm1d(f, **bn), act(),
            nn.Linear(f, 10, bias=False), nn.BatchNorm1d(10, **bn))
        self.N, self.H = N, H
        bits = math.ceil(math.log2(2 ** N + 1))  # 2^N + 1 states
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.cost_precision = precision_for_bits(bits)  # priced by the cost report
        with torch.no_grad():
            for p in self.discrete_parameters():
                p.copy_(snap(torch.empty_like(p).uniform_(-H, H), N, H))

    def discrete_parameters(self) -> list[nn.Parameter]:
        """The conv/dense weights (to be trained by :class:`DST`)."""
        return [m.weight for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))
