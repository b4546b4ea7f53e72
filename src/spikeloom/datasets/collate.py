"""Batching of time-major samples."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["collate"]


def collate(batch: list[tuple[Tensor, int]]) -> tuple[Tensor, Tensor]:
    """Stack samples ``[T, C, ...]`` into a time-major batch ``[T, B, C, ...]``, labels ``[B]``."""
    xs, ys = zip(*batch)
    x = torch.stack([torch.as_tensor(a) for a in xs], dim=1)
    return x, torch.as_tensor(ys, dtype=torch.long)
