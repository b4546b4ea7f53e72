"""Readable reference of ``spmm``: gather, scale, scatter-add (autograd records every step)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["spmm_reference", "csr_rows"]


def csr_rows(rowptr: Tensor, num_edges: int) -> Tensor:
    """The row (destination) of every stored entry of a CSR matrix, ``[E]`` int64."""
    counts = rowptr[1:] - rowptr[:-1]
    return torch.repeat_interleave(torch.arange(len(counts), device=rowptr.device), counts,
                                   output_size=num_edges)


def spmm_reference(rowptr: Tensor, col: Tensor, val: Tensor | None, x: Tensor) -> Tensor:
    """``y[i] = Σ_{k in row i} val[k] · x[col[k]]`` for a CSR matrix ``[R, N]`` and ``x [N, F]``."""
    rows = csr_rows(rowptr, col.numel())
    msg = x[col]
    if val is not None:
        msg = msg * val.unsqueeze(-1).to(msg.dtype)
    out = torch.zeros(len(rowptr) - 1, x.shape[1], dtype=msg.dtype, device=x.device)
    return out.index_add(0, rows, msg)
