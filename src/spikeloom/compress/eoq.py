"""EOQ: full 8-bit integer training without BatchNorm (spec A2) and MAD-BN (spec A3).

* Quantizer toolbox (WAGE/WAGEUBN lineage): :func:`sigma` ``σ(k) = 2^(1−k)``, :func:`Q`
  (round-half-even to the ``σ(k)`` grid), :func:`C` (saturate to ``±(1 − σ)``), :func:`R`
  (power-of-two range), :func:`SQ` (shift quantizer), :func:`SR` (stochastic rounding).
* :class:`ActQuant8` — ReLU output on the 8-bit grid (STE forward) whose *backward* quantizes the
  error with ``SQ(·, 8)``; the grid spans ``[0, 1)`` (fixed) or ``[0, R(x))`` (``dynamic``:
  a per-tensor power-of-two range, the spec's remedy for BN-free activation drift).
* :class:`ErrorQuant8` — identity forward, ``SQ(·, 8)`` on the error in backward: put after a
  spiking neuron (whose binary output needs no activation grid) it makes the spiking network's
  errors 8-bit (``FixupResNet(act="lif-eoq")``).
* :class:`IntegerSGD` — 8-bit gradient codes ``n = clip(SR(γ·g/R(g)), ±(γ−1))`` and an update of
  a whole number of weight-grid steps by stochastic rounding [RECON: ``ΔW = σ(8)·SR(lr·n·R(g)/
  (γ·σ(8)))``, the SR of the SGD step in grid units]; ``W ← C(W − ΔW, 8)``. The weight is the
  only copy (no float master). With ``momentum > 0`` the optimizer keeps one int16 velocity
  per weight on a fixed power-of-two grid (1/256 of a weight step), updated by stochastic
  rounding — state, not a float copy.
* :func:`fixup_init` — Fixup (standard: He fan-out std, branch scale ``L^(−1/(2m−2))``) and the
  BDI variant (fan-in std, ``L^(−2/3)`` for basic blocks, downsample ``sqrt(1/fan_in)``); last
  conv of every branch and the classifier zero.
* :class:`FixupResNet` — BN-free ResNet (``6n+2`` layers, basic blocks with scalar biases and a
  multiplier), ANN (ReLU, or EOQ's :class:`ActQuant8`) or spiking (LIF over ``[T, B, ...]``,
  or LIF + :class:`ErrorQuant8` for the spiking EOQ twin).
* :class:`MADBatchNorm2d` — BN with the mean absolute deviation instead of the standard
  deviation (no square, no square root), foldable to ``a·x + b`` (:meth:`MADBatchNorm2d.fold`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ..errors import ConfigError

__all__ = ["sigma", "Q", "C", "R", "SQ", "SR", "grad_codes", "ActQuant8", "ErrorQuant8",
           "IntegerSGD", "fixup_init", "FixupBlock", "FixupResNet", "MADBatchNorm2d",
           "on_weight_grid"]


def sigma(k: int) -> float:
    """Grid step ``2^(1−k)`` of a ``k``-bit signed fixed-point number in ``(−1, 1)``."""
    return 2.0 ** (1 - k)


def Q(x: Tensor, k: int) -> Tensor:  # noqa: N802 (spec name)
    """``round(x/σ(k))·σ(k)`` (round half to even)."""
    s = sigma(k)
    return torch.round(x / s) * s


def C(x: Tensor, k: int) -> Tensor:  # noqa: N802
    """Saturate to ``[−1 + σ(k), 1 − σ(k)]``."""
    s = sigma(k)
    return torch.clamp(x, -1 + s, 1 - s)


def R(x: Tensor, min_range: float = 2.0 ** -24) -> Tensor:  # noqa: N802
    """Power-of-two range ``2^round(log2 max|x|)`` (``min_range`` for an all-zero tensor)."""
    m = x.detach().abs().max().clamp_min(min_range)
    return torch.pow(2.0, torch.round(torch.log2(m)))


def SQ(x: Tensor, k: int) -> Tensor:  # noqa: N802
    """Shift quantizer ``R(x)·C(Q(x/R(x), k), k)``."""
    r = R(x)
    return r * C(Q(x / r, k), k)


def SR(x: Tensor, generator: torch.Generator | None = None) -> Tensor:  # noqa: N802
    """Stochastic rounding ``floor(x) + Bernoulli(x − floor(x))`` (fresh draws per element)."""
    f = torch.floor(x)
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return f + (u < (x - f)).to(x.dtype)


def grad_codes(g: Tensor, gamma: int = 128,
               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """8-bit gradient codes ``n = clip(SR(γ·g/R(g)), −(γ−1), γ−1)`` and ``R(g)``."""
    r = R(g)
    return torch.clamp(SR(gamma * g / r, generator), -(gamma - 1), gamma - 1), r


def on_weight_grid(w: Tensor, k: int = 8) -> bool:
    """Every element an integer multiple of ``σ(k)`` inside ``±(1 − σ(k))``."""
    s = sigma(k)
    q = w / s
    return bool(torch.equal(q, torch.round(q)) and q.abs().max() <= 2 ** (k - 1) - 1)


class _ActQ(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, k: int, ke: int, dynamic: bool) -> Tensor:  # type: ignore[override]
        r = R(x) if dynamic else torch.ones((), dtype=x.dtype, device=x.device)
        ctx.save_for_backward(x, r)
        ctx.ke = ke
        return r * torch.clamp(Q(x / r, k), 0.0, 1 - sigma(k))

    @staticmethod
    def backward(ctx, e: Tensor):  # type: ignore[override]
        x, r = ctx.saved_tensors
        inside = ((x > 0) & (x < r)).to(e.dtype)  # STE through ReLU + saturation
        return SQ(e * inside, ctx.ke), None, None, None


class ActQuant8(nn.Module):
    """ReLU + ``k``-bit activation grid forward; the error flowing back is quantized with
    ``SQ(·, ke)``.

    ``dynamic=False``: the fixed grid ``Q(x, k)`` on ``[0, 1 − σ]``. ``dynamic=True``:
    ``R(x)·C(Q(x/R(x), k))`` on ``[0, R(x)(1 − σ)]`` with the per-tensor power-of-two range
    ``R`` (a shift). Without BN the fixed range is the failure mode the spec warns of: measured
    on the MNIST Fixup ResNet-8 (``benchmarks/bench_eoq.py``), activations saturating at 1 get
    no gradient and training stalls even with float SGD.
    """

    def __init__(self, k: int = 8, ke: int = 8, dynamic: bool = False) -> None:
        super().__init__()
        self.k, self.ke, self.dynamic = int(k), int(ke), bool(dynamic)

    def forward(self, x: Tensor) -> Tensor:
        return _ActQ.apply(x, self.k, self.ke, self.dynamic)

    def extra_repr(self) -> str:
        return f"k={self.k}, ke={self.ke}, dynamic={self.dynamic}"


class _ErrQ(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, ke: int) -> Tensor:  # type: ignore[override]
        ctx.ke = ke
        return x.view_as(x)

    @staticmethod
    def backward(ctx, e: Tensor):  # type: ignore[override]
        return SQ(e, ctx.ke), None


class ErrorQuant8(nn.Module):
    """Identity forward; the error flowing back is quantized with ``SQ(·, ke)``.

    The spiking counterpart of :class:`ActQuant8`'s backward: a spiking neuron's output is
    already binary (exact on any grid), so only its error needs quantizing.
    """

    def __init__(self, ke: int = 8) -> None:
        super().__init__()
        self.ke = int(ke)

    def forward(self, x: Tensor) -> Tensor:
        return _ErrQ.apply(x, self.ke)

    def extra_repr(self) -> str:
        return f"ke={self.ke}"


class IntegerSGD(torch.optim.Optimizer):
    """8-bit integer SGD on the weight grid, optionally with an integer momentum (module docstring).

    Parameters must start on the ``σ(k)`` grid (:func:`C` of :func:`Q`; :meth:`snap_` does it).
    Every step turns the gradient into 8-bit codes ``n`` (:func:`grad_codes`); the SGD step in
    units of the weight grid is ``u = lr·n·R(g)/(γ·σ(k))`` (a shift of ``n``: ``lr``, ``R`` and
    ``γ·σ`` are powers of two).

    * ``momentum = 0``: ``W ← C(W − σ·SR(u))``; the optimizer keeps no state.
    * ``momentum = β > 0``: a velocity ``v`` held as an **int16** code on the fixed grid
      ``σ(k)·2^−frac_bits`` (``frac_bits = 8``: 1/256 of a weight step, range ±128 weight steps
      = the whole weight range), updated by stochastic rounding,
      ``v ← clip(SR(β·v + 2^frac_bits·u), ±(2^15 − 1))``, and ``W ← C(W − σ·SR(v·2^−frac_bits))``
      (the whole-step update clipped to ``±(2^(k−1) − 1)`` steps: a ``k``-bit integer).
      This is heavy-ball SGD with ``lr`` folded into the velocity (float twin:
      ``SGD(lr, momentum=β)``); ``β = 1 − 2^−3`` is a shift and a subtraction. The velocity is
      optimizer state, not a copy of the weights: the weight itself is still the only copy and
      is always on its 8-bit grid. WAGEUBN also keeps a momentum buffer, re-quantized after each
      step (13 bits, spec A2 Defaults) but beside a 24-bit weight accumulator; here the weight
      has no accumulator and the sub-step resolution lives in the 16-bit velocity.

    Args:
        params: the weights.
        lr: learning rate (a power of two keeps every scale a shift).
        k: weight bits; gamma: gradient code range (``γ = 128``: 8-bit codes).
        momentum: ``β`` in ``[0, 1)``; 0 = plain SGD without state.
        frac_bits: fractional bits of the velocity grid, in weight-grid steps.
        generator: RNG of the stochastic roundings.
    """

    VMAX = 2 ** 15 - 1

    def __init__(self, params: Iterable[Tensor], lr: float = 2.0 ** -4, k: int = 8,
                 gamma: int = 128, momentum: float = 0.0, frac_bits: int = 8,
                 generator: torch.Generator | None = None) -> None:
        if lr <= 0:
            raise ConfigError(f"lr must be > 0, got {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ConfigError(f"momentum must be in [0, 1), got {momentum}")
        if not 0 <= frac_bits <= 14:
            raise ConfigError(f"frac_bits must be in 0..14, got {frac_bits}")
        super().__init__(params, {"lr": lr, "k": k, "gamma": gamma, "momentum": momentum,
                                  "frac_bits": frac_bits})
        self.generator = generator

    @torch.no_grad()
    def snap_(self) -> None:
        """Put every parameter on its grid (before the first step)."""
        for g in self.param_groups:
            for p in g["params"]:
                p.copy_(C(Q(p, g["k"]), g["k"]))

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        loss = closure() if closure is not None else None
        for g in self.param_groups:
            s = sigma(g["k"])
            for p in g["params"]:
                if p.grad is None:
                    continue
                n, r = grad_codes(p.grad, g["gamma"], self.generator)
                u = g["lr"] * n * (r / (g["gamma"] * s))  # SGD step, in weight-grid steps
                if g["momentum"] > 0:
                    scale = 2.0 ** g["frac_bits"]
                    st = self.state[p]
                    if "velocity" not in st:
                        st["velocity"] = torch.zeros(p.shape, dtype=torch.int16, device=p.device)
                    v = st["velocity"].to(torch.float32)
                    v = torch.clamp(SR(g["momentum"] * v + scale * u.float(), self.generator),
                                    -self.VMAX, self.VMAX)
                    st["velocity"] = v.to(torch.int16)
                    u = v.to(p.dtype) / scale
                qmax = 2 ** (g["k"] - 1) - 1  # the update is a k-bit integer of grid steps
                p.copy_(C(p - torch.clamp(SR(u, self.generator), -qmax, qmax) * s, g["k"]))
        return loss


# ---- Fixup ResNet ----------------------------------------------------------------------------
class _Bias(nn.Module):
    """A scalar bias (Fixup)."""

    def __init__(self) -> None:
        super().__init__()
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.b


class _SeqAct(nn.Module):
    """Apply a multi-step neuron to ``[T·B, ...]`` activations (time folded into the batch)."""

    def __init__(self, neuron: nn.Module, T: int) -> None:
        super().__init__()
        self.neuron, self.T = neuron, T

    def forward(self, x: Tensor) -> Tensor:
        return self.neuron(x.reshape(self.T, -1, *x.shape[1:])).reshape(x.shape)


def _lif() -> nn.Module:
    from ..neurons import LIF

    return LIF(v_th=0.5, decay=0.5)


class FixupBlock(nn.Module):
    """Basic block ``act(scale·conv2(act(conv1(x + b1a) + b1b) + b2a) + b2b + shortcut(x))``."""

    def __init__(self, c_in: int, c_out: int, stride: int, act) -> None:
        super().__init__()
        self.bias1a, self.bias1b, self.bias2a, self.bias2b = _Bias(), _Bias(), _Bias(), _Bias()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.scale = nn.Parameter(torch.ones(1))
        self.act1, self.act2 = act(), act()
        self.shortcut = (nn.Conv2d(c_in, c_out, 1, stride, bias=False)
                         if stride != 1 or c_in != c_out else nn.Identity())

    def forward(self, x: Tensor) -> Tensor:
        out = self.act1(self.bias1b(self.conv1(self.bias1a(x))))
        out = self.bias2b(self.conv2(self.bias2a(out)) * self.scale)
        return self.act2(out + self.shortcut(self.bias1a(x)))


class FixupResNet(nn.Module):
    """BN-free CIFAR-style ResNet of depth ``6n + 2`` with Fixup blocks.

    Args:
        depth: ``6n + 2`` (20, 32, 56, 110, ...).
        widths: channels of the three stages.
        in_channels, num_classes: input channels and classes.
        act: ``"relu"`` (ANN), ``"eoq"`` (:class:`ActQuant8`), ``"lif"`` (spiking; needs
            ``T`` and input ``[T, B, C, H, W]``) or ``"lif-eoq"`` (spiking EOQ: LIF followed by
            :class:`ErrorQuant8`, 8-bit errors in backward).
        T: time steps of the spiking version.
        dynamic_range: ``act="eoq"`` with the power-of-two dynamic activation range.
    """

    def __init__(self, depth: int = 20, widths: tuple[int, int, int] = (16, 32, 64),
                 in_channels: int = 3, num_classes: int = 10, act: str = "relu",
                 T: int | None = None, dynamic_range: bool = False) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ConfigError(f"FixupResNet depth must be 6n+2 (20, 32, 56, 110), got {depth}")
        n = (depth - 2) // 6
        makers = {  # act -> activation factory
            "relu": nn.ReLU,
            "eoq": lambda: ActQuant8(dynamic=dynamic_range),
            "lif": lambda: _SeqAct(_lif(), T),
            "lif-eoq": lambda: nn.Sequential(_SeqAct(_lif(), T), ErrorQuant8()),
        }
        if act not in makers:
            raise ConfigError(f"act must be one of {sorted(makers)}, got {act!r}")
        spiking = act.startswith("lif")
        if spiking and not T:
            raise ConfigError(f"the spiking FixupResNet (act={act!r}) needs T")
        make = makers[act]
        self.T = T if spiking else None
        self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.stem_bias, self.stem_act = _Bias(), make()
        blocks, c = [], widths[0]
        for i, w in enumerate(widths):
            for j in range(n):
                blocks.append(FixupBlock(c, w, 2 if (i > 0 and j == 0) else 1, make))
                c = w
        self.blocks = nn.Sequential(*blocks)
        self.fc_bias = _Bias()
        self.fc = nn.Linear(c, num_classes)
        self.num_branches = len(blocks)
        fixup_init(self)

    def forward(self, x: Tensor) -> Tensor:
        if self.T is not None:
            x = x.flatten(0, 1)
        y = self.blocks(self.stem_act(self.stem_bias(self.stem(x))))
        y = self.fc(self.fc_bias(y.mean(dim=(2, 3))))
        return y.reshape(self.T, -1, y.shape[-1]).mean(0) if self.T is not None else y


def fixup_init(model: nn.Module, variant: str = "standard") -> nn.Module:
    """Fixup initialisation of every :class:`FixupBlock` of ``model`` (spec A2).

    ``"standard"``: conv1 ~ N(0, 2/fan_out)·L^(−1/2) (basic blocks, ``m = 2``), conv2 = 0,
    shortcut convs He (fan-out); ``"bdi"``: conv1 ~ N(0, 2/fan_in)·L^(−2/3), conv2 = 0,
    shortcut ~ N(0, 1/fan_in). The last linear layer is zero in both; convs outside the blocks
    (the stem) are He with fan-in ``N(0, 2/fan_in)``: the stem is in no residual branch, and
    with one input channel a fan-out init (fan-out 72 vs fan-in 9 for 8 3×3 filters) shrinks
    MNIST activations to a mean of ~0.01, about one step of the 8-bit grid.
    """
    if variant not in ("standard", "bdi"):
        raise ConfigError(f"fixup variant must be 'standard' or 'bdi', got {variant!r}")
    blocks = [m for m in model.modules() if isinstance(m, FixupBlock)]
    L = max(len(blocks), 1)
    with torch.no_grad():
        for b in blocks:
            w = b.conv1.weight
            fan_out = w.shape[0] * w[0, 0].numel()
            fan_in = w[0].numel()
            if variant == "standard":
                std = math.sqrt(2.0 / fan_out) * L ** (-0.5)
            else:
                std = math.sqrt(2.0 / fan_in) * L ** (-2.0 / 3.0)
            w.normal_(0.0, std)
            b.conv2.weight.zero_()
            if isinstance(b.shortcut, nn.Conv2d):
                sw = b.shortcut.weight
                sc_std = (math.sqrt(2.0 / (sw.shape[0] * sw[0, 0].numel()))
                          if variant == "standard" else math.sqrt(1.0 / sw[0].numel()))
                sw.normal_(0.0, sc_std)
        in_blocks = {id(c) for b in blocks for c in b.modules()}
        for m in model.modules():
            if isinstance(m, nn.Conv2d) and id(m) not in in_blocks:  # the stem: He (fan-in)
                m.weight.normal_(0.0, math.sqrt(2.0 / m.weight[0].numel()))
            if isinstance(m, nn.Linear):
                m.weight.zero_()
                if m.bias is not None:
                    m.bias.zero_()
    return model


# ---- MAD batch norm --------------------------------------------------------------------------
class MADBatchNorm2d(nn.Module):
    """BatchNorm with the mean absolute deviation ``s = mean|x − μ|`` (spec A3).

    ``y = γ·(x − μ)/(s + ε) + β`` per channel over ``(N, H, W)``; running ``μ``, ``s`` with
    ``momentum`` (0.05 = the DeepLab code's decay 0.95) used in eval. No square, no root.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.05) -> None:
        super().__init__()
        self.eps, self.momentum = float(eps), float(momentum)
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_mad", torch.ones(num_features))

    def _shape(self, x: Tensor) -> tuple[int, ...]:
        return (1, -1) + (1,) * (x.ndim - 2)

    def forward(self, x: Tensor) -> Tensor:
        dims = [0, *range(2, x.ndim)]
        if self.training:
            mu = x.mean(dim=dims)
            s = (x - mu.reshape(self._shape(x))).abs().mean(dim=dims)
            with torch.no_grad():
                self.running_mean.lerp_(mu.detach(), self.momentum)
                self.running_mad.lerp_(s.detach(), self.momentum)
        else:
            mu, s = self.running_mean, self.running_mad
        sh = self._shape(x)
        xh = (x - mu.reshape(sh)) / (s.reshape(sh) + self.eps)
        return self.weight.reshape(sh) * xh + self.bias.reshape(sh)

    def fold(self) -> tuple[Tensor, Tensor]:
        """Eval mode as ``a·x + b`` per channel: ``a = γ/(s + ε)``, ``b = β − a·μ``."""
        a = self.weight.detach() / (self.running_mad + self.eps)
        return a, self.bias.detach() - a * self.running_mean
