"""Fake-quantizers with straight-through estimators.

* :func:`round_half_up` — ``floor(x + 0.5)``, the rounding of the integer executor (an
  arithmetic ``(a + 2^(S-1)) >> S``); every quantizer here rounds this way so the torch model
  follows the integer arithmetic.
* :class:`WeightFakeQuant` — uniform weight quantizer (a ``torch.nn.utils.parametrize``
  parametrization): per-channel or per-tensor, symmetric or asymmetric, 2–8 bits; the scale is
  recomputed from the current weights (max-abs, or min/max when asymmetric).
* :class:`DuQ` — the DuQ weight quantizer of PROFIT/SNNQuantPrune (spec A8): learnable clip
  ``a`` and output scale ``c``, ``w_q = c·round((n−1)·hardtanh(w/a))/(n−1)``, ``n = 2^(b−1)``;
  ``b = 2`` gives the ternary grid ``{−c, 0, c}``. Plain STE through the rounding. Per tensor
  (the spec) or per output channel; ``a``/``c`` start from the spec's ``3σ`` rule or from the
  least-squares fit of :func:`duq_mse_init`.
* :class:`ActFakeQuant` — per-tensor activation quantizer with a running-max observer
  (power-of-two scale, so event counts stay exact integers), used as a forward pre-hook.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ...errors import ConfigError

__all__ = ["round_half_up", "ste_round", "WeightFakeQuant", "DuQ", "ActFakeQuant", "check_bits",
           "duq_mse_init", "DUQ_INITS"]

#: initialisations of DuQ's ``a`` and ``c``
DUQ_INITS: tuple[str, ...] = ("3sigma", "mse")


def check_bits(bits: int, what: str = "bits", lo: int = 2, hi: int = 8) -> int:
    """``bits`` as an int in ``[lo, hi]``, else a one-line :class:`ConfigError`."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not lo <= bits <= hi:
        raise ConfigError(f"{what} must be an integer in {lo}..{hi}, got {bits!r}")
    return bits


def round_half_up(x: Tensor) -> Tensor:
    """``floor(x + 0.5)`` (ties toward +inf, as ``(a + 2^(S-1)) >> S`` in integers)."""
    return torch.floor(x + 0.5)


class _STERound(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        return round_half_up(x)

    @staticmethod
    def backward(ctx, g: Tensor) -> Tensor:  # type: ignore[override]
        return g


def ste_round(x: Tensor) -> Tensor:
    """:func:`round_half_up` with an identity gradient (straight-through estimator)."""
    return _STERound.apply(x)


class WeightFakeQuant(nn.Module):
    """Uniform fake-quantizer of a weight tensor (a parametrization).

    Args:
        bits: 2..8.
        per_channel: one scale per output channel (axis 0) instead of one per tensor.
        symmetric: grid ``s·{−(2^(b−1)−1) .. 2^(b−1)−1}`` (zero point 0); asymmetric uses
            ``s·({0 .. 2^b−1} − z)`` from the min/max.

    ``exact = True`` (set by the integer lowering's frozen twin) returns the integer codes
    ``q − z`` instead of ``s·(q − z)``.
    """

    def __init__(self, bits: int = 8, per_channel: bool = True, symmetric: bool = True) -> None:
        super().__init__()
        self.bits = check_bits(bits)
        self.per_channel, self.symmetric = bool(per_channel), bool(symmetric)
        self.exact = False

    def _reduce(self, w: Tensor, fn) -> Tensor:
        if self.per_channel and w.ndim > 1:
            return fn(w.reshape(w.shape[0], -1), dim=1).values.reshape(-1, *([1] * (w.ndim - 1)))
        return fn(w.reshape(-1), dim=0).values

    def scale_zero(self, w: Tensor) -> tuple[Tensor, Tensor, int, int]:
        """``(scale, zero_point, qmin, qmax)`` for weights ``w`` (no gradient)."""
        w = w.detach()
        if self.symmetric:
            qmax = 2 ** (self.bits - 1) - 1
            amax = self._reduce(w.abs(), torch.max).clamp_min(1e-8)
            return amax / qmax, torch.zeros_like(amax), -qmax, qmax
        lo = self._reduce(w, torch.min).clamp_max(0.0)
        hi = self._reduce(w, torch.max).clamp_min(0.0)
        qmax = 2 ** self.bits - 1
        s = ((hi - lo) / qmax).clamp_min(1e-8)
        return s, round_half_up(-lo / s), 0, qmax

    def codes(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """Integer codes ``q − z`` (with STE) and the scale ``s``: ``w_q = s·(q − z)``."""
        s, z, qmin, qmax = self.scale_zero(w)
        q = torch.clamp(ste_round(w / s) + z, qmin, qmax)
        return q - z, s

    def forward(self, w: Tensor) -> Tensor:
        q, s = self.codes(w)
        return q if self.exact else q * s

    def extra_repr(self) -> str:
        return f"bits={self.bits}, per_channel={self.per_channel}, symmetric={self.symmetric}"


def _rows(w: Tensor, per_channel: bool) -> Tensor:
    """``w`` as ``[C, K]``: one row per output channel, or a single row."""
    return w.reshape(w.shape[0], -1) if per_channel and w.ndim > 1 else w.reshape(1, -1)


def duq_mse_init(w: Tensor, bits: int, per_channel: bool = False,
                 n_grid: int = 64) -> tuple[Tensor, Tensor]:
    """``(a, c)`` of :class:`DuQ` fitted to ``w`` by least squares (per tensor or per row).

    For each clip ``a`` on a grid of ``n_grid`` fractions ``(0, 1]`` of ``max|w|`` the codes
    ``q = round((n−1)·hardtanh(w/a))`` are formed and the step ``c/(n−1) = ⟨w, q⟩/⟨q, q⟩`` is the
    least-squares one; the ``a`` with the smallest ``‖w − c·q/(n−1)‖²`` wins. Returned as
    ``[C]`` tensors (``C = 1`` per tensor).
    """
    rows = _rows(w.detach(), per_channel)
    n1 = 2 ** (bits - 1) - 1
    amax = rows.abs().amax(1).clamp_min(1e-8)  # [C]
    frac = torch.arange(1, n_grid + 1, dtype=rows.dtype) / n_grid  # [M]
    a = frac[:, None] * amax[None]  # [M, C]
    q = round_half_up(n1 * torch.clamp(rows[None] / a[..., None], -1.0, 1.0))  # [M, C, K]
    qq = (q * q).sum(-1)
    step = (q * rows[None]).sum(-1) / qq.clamp_min(1e-12)  # [M, C]
    err = ((rows[None] - step[..., None] * q) ** 2).sum(-1)
    err = torch.where(qq > 0, err, torch.full_like(err, float("inf")))
    best = err.argmin(0)  # [C]
    idx = torch.arange(rows.shape[0])
    return a[best, idx], (step[best, idx] * n1).clamp_min(1e-8)


class DuQ(nn.Module):
    """DuQ weight quantizer (spec A8): learnable clip ``a`` and output scale ``c``.

    ``w_q = c · round((n − 1)·hardtanh(w / a)) / (n − 1)`` with ``n = 2^(b−1)``; ``b = 2`` is
    ternary.

    Args:
        weight: the tensor to be quantized (for the initial ``a``, ``c``).
        bits: 2..8.
        per_channel: one ``a``, ``c`` per output channel (axis 0) instead of one per tensor
            (the spec's DuQ is per tensor).
        init: ``"3sigma"`` (spec: ``a = c = max(|μ − 3σ|, |μ + 3σ|)`` of the tensor or channel)
            or ``"mse"`` (:func:`duq_mse_init`: the clip and scale minimising the squared
            quantization error of the initial weights; for ternary the spec's ``3σ`` clip
            zeroes almost every weight, ``|w| < 1.5σ``).
    """

    def __init__(self, weight: Tensor, bits: int = 2, per_channel: bool = False,
                 init: str = "3sigma") -> None:
        super().__init__()
        self.bits = check_bits(bits)
        if init not in DUQ_INITS:
            raise ConfigError(f"DuQ init must be one of {', '.join(DUQ_INITS)}, got {init!r}")
        w = weight.detach()
        self.per_channel = bool(per_channel and w.ndim > 1)
        if init == "mse":
            a, c = duq_mse_init(w, self.bits, self.per_channel)
        else:
            rows = _rows(w, self.per_channel)
            mu = rows.mean(1)
            sd = rows.std(1) if rows.shape[1] > 1 else torch.zeros_like(mu)
            a = torch.maximum((mu - 3 * sd).abs(), (mu + 3 * sd).abs()).clamp_min(1e-6)
            c = a.clone()
        shape = (-1, *([1] * (w.ndim - 1))) if self.per_channel else ()
        self.a = nn.Parameter(a.reshape(shape).to(w.dtype))
        self.c = nn.Parameter(c.reshape(shape).to(w.dtype))
        self.exact = False

    @property
    def levels(self) -> int:
        """``n − 1``: the largest integer code."""
        return 2 ** (self.bits - 1) - 1

    def codes(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """Integer codes in ``[−(n−1), n−1]`` and the scale ``c/(n−1)``."""
        n1 = self.levels
        return ste_round(n1 * torch.nn.functional.hardtanh(w / self.a)), self.c / n1

    def forward(self, w: Tensor) -> Tensor:
        q, s = self.codes(w)
        return q if self.exact else q * s

    def extra_repr(self) -> str:
        return f"bits={self.bits}, per_channel={self.per_channel}"


class ActFakeQuant(nn.Module):
    """Per-tensor activation quantizer with a power-of-two scale from a running max.

    In training the running max of ``|x|`` (EMA, ``momentum``) is updated; the scale is
    ``2^ceil(log2(max / qmax))`` so the grid is exact in binary floating point (integer event
    counts up to the running max are represented exactly). Values are clamped to
    ``[qmin, qmax]·s`` with a straight-through gradient inside the range.
    ``exact`` returns the integer codes.
    """

    def __init__(self, bits: int = 8, signed: bool = False, momentum: float = 0.1) -> None:
        super().__init__()
        self.bits, self.signed, self.momentum = check_bits(bits), bool(signed), float(momentum)
        self.register_buffer("running_max", torch.tensor(0.0))
        self.exact = False
        self.rq_mult: int | None = None
        self.rq_shift, self.rq_div, self.rq_out = 0, 1.0, 1.0

    @property
    def qrange(self) -> tuple[int, int]:
        if self.signed:
            return -(2 ** (self.bits - 1) - 1), 2 ** (self.bits - 1) - 1
        return 0, 2 ** self.bits - 1

    def scale(self) -> float:
        """The current power-of-two step."""
        m = float(self.running_max)
        if m <= 0:
            return 1.0
        return 2.0 ** math.ceil(math.log2(m / self.qrange[1]))

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            m = x.detach().abs().max()
            if float(self.running_max) == 0:
                self.running_max.copy_(m)
            else:
                self.running_max.mul_(1 - self.momentum).add_(self.momentum * m)
        s = self.scale()
        lo, hi = self.qrange
        if self.exact and self.rq_mult is not None:
            a = torch.round(x * self.rq_div) * self.rq_mult
            q = torch.floor((a + 2.0 ** (self.rq_shift - 1)) / 2.0 ** self.rq_shift)
            return torch.clamp(q, lo, hi) * self.rq_out
        q = torch.clamp(ste_round(x / s), lo, hi)
        return q * self.rq_out if self.exact else q * s

    def extra_repr(self) -> str:
        return f"bits={self.bits}, signed={self.signed}"
