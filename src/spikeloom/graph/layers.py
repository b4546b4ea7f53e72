"""Graph layers on sparse adjacencies: aggregation, graph convolution, graph attention.

All layers take node features ``[N, F]`` or time-major ``[T, N, F]`` (spiking models) and an
:class:`~spikeloom.graph.norm.Adj` ``[R, N]``; they return ``[R, F_out]`` (``[T, R, F_out]``).

* :class:`Aggregate` — ``A · x`` through the ``spmm`` operator; role ``"synapse"`` with a cost
  counter per edge (:mod:`spikeloom.graph.cost`);
* :class:`GCNConv` — ``A (x W) + b`` (Kipf & Welling 2017); ``order="aggregate_first"`` computes
  ``(A x) W + b`` instead (the same function, different cost);
* :class:`GATConv` — multi-head attention over each node's neighbourhood (Veličković et al.
  2018): ``α_ij = softmax_j(LeakyReLU(a_srcᵀ W x_j + a_dstᵀ W x_i))``, heads concatenated or
  averaged; with time-major input the coefficients are computed at every step;
* :class:`ClusterGCNLayer` — the Cluster-GCN reference layer ``act(LN(dropout([A h, h]) W))``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..walk import register_role
from .norm import Adj, aggregate

__all__ = ["Aggregate", "GCNConv", "GATConv", "ClusterGCNLayer", "segment_softmax"]


class Aggregate(nn.Module):
    """Sparse neighbourhood aggregation ``A · x`` (a synapse whose weights are ``A``'s values)."""

    def forward(self, x: Tensor, adj: Adj) -> Tensor:
        if x.shape[-2] != adj.num_cols:
            raise ValueError(f"Aggregate: input has {x.shape[-2]} nodes, the adjacency "
                             f"{adj.num_cols} columns")
        return aggregate(adj, x, time_major=x.ndim == 3)


register_role(Aggregate, "synapse")


class GCNConv(nn.Module):
    """Graph convolution ``A · x · W + b``.

    Args:
        in_features, out_features: sizes.
        bias: add a bias after aggregation.
        order: ``"transform_first"`` (``A (x W)``, fewer operations when ``out < in``) or
            ``"aggregate_first"`` (``(A x) W``).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 order: str = "transform_first") -> None:
        super().__init__()
        if order not in ("transform_first", "aggregate_first"):
            raise ValueError(f"GCNConv order must be 'transform_first' or 'aggregate_first', "
                             f"got {order!r}")
        self.order = order
        self.lin = nn.Linear(in_features, out_features, bias=False)
        self.agg = Aggregate()
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        nn.init.xavier_uniform_(self.lin.weight)

    def forward(self, x: Tensor, adj: Adj) -> Tensor:
        if self.order == "transform_first":
            y = self.agg(self.lin(x), adj)
        else:
            y = self.lin(self.agg(x, adj))
        return y + self.bias if self.bias is not None else y


def segment_softmax(e: Tensor, rows: Tensor, num_rows: int) -> Tensor:
    """Softmax of edge scores ``e [E, ...]`` over the edges of each row (``rows [E]``)."""
    idx = rows.view(-1, *([1] * (e.ndim - 1))).expand_as(e)
    mx = torch.full((num_rows, *e.shape[1:]), float("-inf"), dtype=e.dtype, device=e.device)
    mx = mx.scatter_reduce(0, idx, e, "amax", include_self=True)
    ex = torch.exp(e - mx[rows])
    den = torch.zeros((num_rows, *e.shape[1:]), dtype=e.dtype, device=e.device)
    den = den.index_add(0, rows, ex)
    return ex / den[rows].clamp_min(1e-16)


class GATConv(nn.Module):
    """Graph attention with ``heads`` heads over the entries of ``adj`` (add self-loops to it).

    Args:
        in_features: input size.
        out_features: size per head.
        heads: attention heads.
        concat: concatenate heads (``heads·out_features`` outputs) or average them.
        negative_slope: of the LeakyReLU on scores.
        attn_dropout: dropout on attention coefficients (training only).
        bias: add a bias.
    """

    def __init__(self, in_features: int, out_features: int, heads: int = 1,
                 concat: bool = True, negative_slope: float = 0.2, attn_dropout: float = 0.0,
                 bias: bool = True) -> None:
        super().__init__()
        self.heads, self.out_features, self.concat = heads, out_features, concat
        self.negative_slope, self.attn_dropout = negative_slope, attn_dropout
        self.lin = nn.Linear(in_features, heads * out_features, bias=False)
        self.att_src = nn.Parameter(torch.empty(heads, out_features))
        self.att_dst = nn.Parameter(torch.empty(heads, out_features))
        self.agg = Aggregate()
        n_out = heads * out_features if concat else out_features
        self.bias = nn.Parameter(torch.zeros(n_out)) if bias else None
        for p in (self.lin.weight, self.att_src, self.att_dst):
            nn.init.xavier_uniform_(p)

    def attention(self, h: Tensor, adj: Adj) -> Tensor:
        """Coefficients ``[E, *lead, heads]`` for projected features ``h [*lead, N, H, C]``."""
        rows = adj.rows()
        a_s = (h * self.att_src).sum(-1).movedim(-2, 0)  # [N, *lead, H]
        a_d = (h * self.att_dst).sum(-1).movedim(-2, 0)
        e = F.leaky_relu(a_s[adj.col] + a_d[rows], self.negative_slope)
        alpha = segment_softmax(e, rows, adj.num_rows)
        return F.dropout(alpha, self.attn_dropout, self.training)

    def forward(self, x: Tensor, adj: Adj) -> Tensor:
        lead = x.shape[:-2]
        h = self.lin(x).view(*lead, x.shape[-2], self.heads, self.out_features)
        alpha = self.attention(h, adj)  # [E, *lead, H]
        hf = h.reshape(-1, x.shape[-2], self.heads, self.out_features)  # [L, N, H, C]
        af = alpha.reshape(adj.nnz, -1, self.heads)  # [E, L, H]
        outs = [torch.stack([self.agg(hf[i, :, k], adj.with_values(af[:, i, k]))
                             for k in range(self.heads)], -2) for i in range(hf.shape[0])]
        y = torch.stack(outs).view(*lead, adj.num_rows, self.heads, self.out_features)
        y = y.flatten(-2) if self.concat else y.mean(-2)
        return y + self.bias if self.bias is not None else y


class ClusterGCNLayer(nn.Module):
    """Cluster-GCN's layer: ``act(LayerNorm(dropout([A h, h]) · W))`` (no bias).

    Args:
        in_features, out_features: sizes (``W`` has ``2·in_features`` rows).
        last: the output layer (no LayerNorm, no activation).
        dropout: dropout on the concatenated features.
    """

    def __init__(self, in_features: int, out_features: int, last: bool = False,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.agg = Aggregate()
        self.lin = nn.Linear(2 * in_features, out_features, bias=False)
        self.norm = None if last else nn.LayerNorm(out_features, eps=1e-9)
        self.dropout, self.last = dropout, last

    def forward(self, x: Tensor, adj: Adj) -> Tensor:
        h = torch.cat([self.agg(x, adj), x[..., : adj.num_rows, :]], -1)
        h = self.lin(F.dropout(h, self.dropout, self.training))
        return h if self.last else F.relu(self.norm(h))
