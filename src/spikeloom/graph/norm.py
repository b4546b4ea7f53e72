"""Normalised sparse adjacency matrices (CSR) for graph convolutions.

:class:`Adj` is a CSR matrix ``[R, N]`` (rows = receiving nodes) with its values;
``adj @ x`` aggregates with :func:`spikeloom.ops.spmm.spmm`. :func:`normalize` builds one
from an edge index with a named normalisation (:data:`NORMS`):

============  =========================================================================
kind          matrix (``A`` without self-loops, ``D`` its degrees)
============  =========================================================================
``gcn``       ``D̃^(-1/2) (A + I) D̃^(-1/2)``, ``D̃ = D + I`` (Kipf & Welling)
``row``       ``(D + I)^(-1) (A + I)`` (Cluster-GCN variant (c))
``diag``      ``Ã + λ·diag(Ã)`` with ``Ã`` the ``row`` matrix (Cluster-GCN diagonal
              enhancement, variant (d); λ = ``diag_lambda``, λ = 0 gives ``row``)
``mean``      ``D^(-1) A`` with degrees clamped to ≥ 1 (Cluster-GCN code's ``diag_lambda=-1``)
``mean_self`` ``D^(-1) A + I`` (L-GCN's aggregation)
``sum``       ``A`` (no normalisation)
============  =========================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..ops.spmm import csr_rows, spmm
from ..registry import Registry
from .data import coalesce_edges

__all__ = ["Adj", "normalize", "NORMS", "edges_to_csr"]


@dataclass(frozen=True)
class Adj:
    """A sparse matrix ``[num_rows, num_cols]`` in CSR form (``col`` sorted within rows)."""

    rowptr: Tensor
    col: Tensor
    val: Tensor
    num_cols: int

    @property
    def num_rows(self) -> int:
        return len(self.rowptr) - 1

    @property
    def nnz(self) -> int:
        return int(self.col.numel())

    def rows(self) -> Tensor:
        """Row index of every entry ``[nnz]``."""
        return csr_rows(self.rowptr, self.nnz)

    def out_degree(self) -> Tensor:
        """Entries per column ``[num_cols]`` (how many rows read each source node)."""
        return torch.bincount(self.col, minlength=self.num_cols)

    def with_values(self, val: Tensor) -> Adj:
        return Adj(self.rowptr, self.col, val, self.num_cols)

    def to(self, device: torch.device | str) -> Adj:
        return Adj(self.rowptr.to(device), self.col.to(device), self.val.to(device),
                   self.num_cols)

    def to_dense(self) -> Tensor:
        out = torch.zeros(self.num_rows, self.num_cols, dtype=self.val.dtype)
        out[self.rows(), self.col] = self.val
        return out

    def __matmul__(self, x: Tensor) -> Tensor:
        """``A · x`` for ``x [N, ...]``, or ``[T, N, ...]`` (applied at every step)."""
        return aggregate(self, x)


def aggregate(adj: Adj, x: Tensor, time_major: bool | None = None) -> Tensor:
    """``adj @ x`` for node features ``[N, F]`` or time-major ``[T, N, F]``."""
    if time_major is None:
        time_major = x.ndim == 3
    if not time_major:
        return spmm(adj.rowptr, adj.col, adj.val, x)
    T = x.shape[0]
    flat = x.movedim(0, 1).reshape(x.shape[1], -1)  # [N, T*F]
    y = spmm(adj.rowptr, adj.col, adj.val, flat)
    return y.reshape(adj.num_rows, T, *x.shape[2:]).movedim(1, 0)


def edges_to_csr(edge_index: Tensor, num_nodes: int, val: Tensor | None = None) -> Adj:
    """CSR of edges ``src -> dst`` (rows = dst) that are already sorted by ``(dst, src)``."""
    counts = torch.bincount(edge_index[1], minlength=num_nodes)
    rowptr = torch.zeros(num_nodes + 1, dtype=torch.long)
    rowptr[1:] = torch.cumsum(counts, 0)
    if val is None:
        val = torch.ones(edge_index.shape[1])
    return Adj(rowptr, edge_index[0].contiguous(), val, num_nodes)


def _with_self_loops(edge_index: Tensor, n: int) -> Tensor:
    loops = torch.arange(n).expand(2, n)
    return coalesce_edges(torch.cat([edge_index, loops], 1), n, remove_self_loops=False)


def _gcn(ei: Tensor, n: int, lam: float) -> Adj:
    ei = _with_self_loops(ei, n)
    deg = torch.bincount(ei[1], minlength=n).float()
    dinv = deg.pow(-0.5)
    return edges_to_csr(ei, n, dinv[ei[0]] * dinv[ei[1]])


def _row(ei: Tensor, n: int, lam: float) -> Adj:
    ei = _with_self_loops(ei, n)
    deg = torch.bincount(ei[1], minlength=n).float()
    return edges_to_csr(ei, n, 1.0 / deg[ei[1]])


def _diag(ei: Tensor, n: int, lam: float) -> Adj:
    a = _row(ei, n, 0.0)
    diag = a.rows() == a.col
    return a.with_values(a.val + lam * a.val * diag)


def _mean(ei: Tensor, n: int, lam: float) -> Adj:
    ei = coalesce_edges(ei, n)
    deg = torch.bincount(ei[1], minlength=n).clamp(min=1).float()
    return edges_to_csr(ei, n, 1.0 / deg[ei[1]])


def _mean_self(ei: Tensor, n: int, lam: float) -> Adj:
    ei0 = coalesce_edges(ei, n)
    deg = torch.bincount(ei0[1], minlength=n).clamp(min=1).float()
    full = _with_self_loops(ei0, n)
    self_loop = full[0] == full[1]
    val = torch.where(self_loop, torch.ones(()), 1.0 / deg[full[1]])
    return edges_to_csr(full, n, val)


def _sum(ei: Tensor, n: int, lam: float) -> Adj:
    return edges_to_csr(coalesce_edges(ei, n, remove_self_loops=False), n)


#: normalisation name -> ``fn(edge_index, num_nodes, diag_lambda) -> Adj``
NORMS: Registry[Callable[[Tensor, int, float], Adj]] = Registry("graph normalisation")
for _k, _f in (("gcn", _gcn), ("row", _row), ("diag", _diag), ("mean", _mean),
               ("mean_self", _mean_self), ("sum", _sum)):
    NORMS.register(_k, _f)


def normalize(edge_index: Tensor, num_nodes: int, kind: str = "gcn",
              diag_lambda: float = 0.0) -> Adj:
    """The normalised adjacency ``kind`` (see :data:`NORMS`) of a graph's edges ``src -> dst``."""
    return NORMS.get(kind)(edge_index, num_nodes, float(diag_lambda))
