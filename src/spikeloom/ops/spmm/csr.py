"""Fast ``spmm`` backend: PyTorch's sparse CSR kernel forward, a hand-written backward.

Forward is one ``torch.sparse_csr_tensor @ x`` (no ``[E, F]`` message tensor). Backward:
``dx = Aᵀ · dy`` with the transposed CSR built by a stable sort of the columns, and, only when
the values need a gradient (graph attention), ``dval[k] = <dy[row k], x[col k]>`` computed in
chunks of edges so that memory stays ``O(chunk · F)``.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from .reference import csr_rows

__all__ = ["spmm_csr", "EDGE_CHUNK"]

#: edges per chunk for the value gradient
EDGE_CHUNK = 1 << 20


def _matmul(rowptr: Tensor, col: Tensor, val: Tensor, n_cols: int, x: Tensor) -> Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        a = torch.sparse_csr_tensor(rowptr, col, val.to(x.dtype), (len(rowptr) - 1, n_cols),
                                    check_invariants=False)
        return a @ x


def _transpose(rowptr: Tensor, col: Tensor, val: Tensor, n_cols: int):
    rows = csr_rows(rowptr, col.numel())
    perm = torch.sort(col, stable=True).indices
    rowptr_t = torch.zeros(n_cols + 1, dtype=rowptr.dtype, device=rowptr.device)
    rowptr_t[1:] = torch.cumsum(torch.bincount(col, minlength=n_cols), 0)
    return rowptr_t, rows[perm], val[perm], rows


class _SpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, rowptr: Tensor, col: Tensor, val: Tensor, x: Tensor) -> Tensor:
        ctx.save_for_backward(rowptr, col, val, x)
        return _matmul(rowptr, col, val, x.shape[0], x)

    @staticmethod
    def backward(ctx, g: Tensor):
        rowptr, col, val, x = ctx.saved_tensors
        g = g.contiguous()
        dx = dval = None
        rowptr_t, col_t, val_t, rows = _transpose(rowptr, col, val, x.shape[0])
        if ctx.needs_input_grad[3]:
            dx = _matmul(rowptr_t, col_t, val_t, g.shape[0], g)
        if ctx.needs_input_grad[2]:
            parts = [(g[rows[s:s + EDGE_CHUNK]] * x[col[s:s + EDGE_CHUNK]]).sum(-1)
                     for s in range(0, col.numel(), EDGE_CHUNK)]
            dval = torch.cat(parts).to(val.dtype) if parts else torch.zeros_like(val)
        return None, None, dval, dx


def spmm_csr(rowptr: Tensor, col: Tensor, val: Tensor | None, x: Tensor) -> Tensor:
    """Same contract as :func:`~spikeloom.ops.spmm.reference.spmm_reference`."""
    if val is None:
        val = torch.ones(col.numel(), dtype=x.dtype, device=x.device)
    if col.numel() == 0:
        return x.new_zeros(len(rowptr) - 1, x.shape[1]) + 0 * x.sum()
    return _SpMM.apply(rowptr, col, val, x)
