"""Encoders that turn a static input ``[B, ...]`` into a sequence ``[T, B, ...]``.

* :class:`DirectEncoder` — the analog input repeated at every step (tdBN, DSR; the first layer
  then acts as the encoder). Returns an expanded view: no copy.
* :class:`PoissonEncoder` — Bernoulli rate code, ``s[t] = 1[U(0,1) < p]`` with ``p`` the input
  clipped to ``[0, 1]`` (STBP MNIST code).
* :class:`LatencyEncoder` — one spike per input element, earlier for larger values:
  ``t = round((1 - p)·(T - 1))`` (linear) and no spike where ``p <= threshold``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["DirectEncoder", "PoissonEncoder", "LatencyEncoder"]


def _check_T(T: int) -> int:
    if int(T) != T or T < 1:
        raise ValueError(f"T must be a positive integer, got {T}")
    return int(T)


class DirectEncoder(nn.Module):
    """Repeat the analog input at each of ``T`` steps: ``[B, ...] -> [T, B, ...]`` (a view)."""

    def __init__(self, T: int) -> None:
        super().__init__()
        self.T = _check_T(T)

    def forward(self, x: Tensor) -> Tensor:
        return x.unsqueeze(0).expand(self.T, *x.shape)

    def extra_repr(self) -> str:
        return f"T={self.T}"


class PoissonEncoder(nn.Module):
    """Bernoulli/Poisson rate code: ``[B, ...]`` with values in [0, 1] -> spikes ``[T, B, ...]``.

    Values outside [0, 1] are clipped. Pass a ``torch.Generator`` for reproducible draws.
    """

    def __init__(self, T: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.T = _check_T(T)
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        p = x.clamp(0, 1).unsqueeze(0).expand(self.T, *x.shape)
        u = torch.rand(p.shape, generator=self.generator, device=x.device, dtype=x.dtype)
        return (u < p).to(x.dtype)

    def extra_repr(self) -> str:
        return f"T={self.T}"


class LatencyEncoder(nn.Module):
    """Time-to-first-spike code: each element fires once, at ``round((1 - p)·(T - 1))``.

    ``p`` is the input clipped to [0, 1]; elements with ``p <= threshold`` never fire.
    """

    def __init__(self, T: int, threshold: float = 0.0) -> None:
        super().__init__()
        self.T = _check_T(T)
        self.threshold = float(threshold)

    def forward(self, x: Tensor) -> Tensor:
        p = x.clamp(0, 1)
        t_fire = torch.round((1 - p) * (self.T - 1)).long()
        steps = torch.arange(self.T, device=x.device).view(self.T, *([1] * x.ndim))
        out = (steps == t_fire.unsqueeze(0)) & (p > self.threshold).unsqueeze(0)
        return out.to(x.dtype)

    def extra_repr(self) -> str:
        return f"T={self.T}, threshold={self.threshold}"
