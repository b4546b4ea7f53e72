"""MinCUT pooling (Bianchi, Grattarola, Alippi, ICML 2020, arXiv:1907.00481) and a
graph-classification network that uses it.

Graphs are batched densely with padding: features ``x [B, N, F]``, adjacency ``adj [B, N, N]``
and a node mask ``mask [B, N]`` (``True`` = real node). Masked (padded) nodes get no cluster
assignment, so they count in neither the pooled graph nor the losses.

* assignment ``S = softmax(MLP(x))`` ``[B, N, K]``; pooled ``X' = Sᵀ X``, ``A' = Sᵀ Ã S``;
* cut loss ``L_c = -Tr(Sᵀ Ã S) / Tr(Sᵀ D̃ S)`` (``D̃`` = degrees of ``Ã``), in ``[-1, 0]``;
* orthogonality loss ``L_o = ‖SᵀS/‖SᵀS‖_F - I_K/√K‖_F``;
* both averaged over the graphs of the batch; then ``A'`` loses its diagonal and is
  normalised again ``D'^(-1/2) A' D'^(-1/2)`` (ε = 1e-15 in the square root).

``Ã`` is ``D^(-1/2) A D^(-1/2)`` of the input adjacency when ``normalize_adj=True`` (default,
as in the paper's formulation), else the adjacency as given (PyG's ``dense_mincut_pool``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError

__all__ = ["mincut_pool", "MinCutPool", "MinCutNet", "dense_norm", "pad_graphs"]

_EPS = 1e-15


def dense_norm(adj: Tensor) -> Tensor:
    """``D^(-1/2) A D^(-1/2)`` of dense adjacencies ``[B, N, N]`` (isolated nodes stay 0)."""
    d = adj.sum(-1).clamp_min(0)
    dinv = torch.where(d > 0, d.pow(-0.5), torch.zeros_like(d))
    return dinv.unsqueeze(-1) * adj * dinv.unsqueeze(-2)


def mincut_pool(x: Tensor, adj: Tensor, s: Tensor, mask: Tensor | None = None,
                normalize_adj: bool = True) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Pool with assignment logits ``s [B, N, K]``; returns ``(x', a', L_c, L_o)``."""
    if x.ndim == 2:
        x, adj, s = x[None], adj[None], s[None]
        mask = None if mask is None else mask[None]
    k = s.shape[-1]
    s = torch.softmax(s, -1)
    if mask is not None:
        m = mask.unsqueeze(-1).to(x.dtype)
        x, s = x * m, s * m
    a = dense_norm(adj) if normalize_adj else adj
    st = s.transpose(1, 2)
    x_out = st @ x
    a_out = st @ a @ s
    deg = torch.diag_embed(a.sum(-1))
    cut = -(torch.diagonal(a_out, dim1=-2, dim2=-1).sum(-1)
            / torch.diagonal(st @ deg @ s, dim1=-2, dim2=-1).sum(-1).clamp_min(_EPS))
    ss = st @ s
    eye = torch.eye(k, dtype=x.dtype, device=x.device) / k ** 0.5
    ortho = torch.linalg.matrix_norm(ss / torch.linalg.matrix_norm(ss).clamp_min(_EPS)[:, None,
                                                                                    None] - eye)
    a_out = a_out * (1 - torch.eye(k, dtype=x.dtype, device=x.device))
    d = torch.sqrt(a_out.sum(-1)) + _EPS
    a_out = a_out / d.unsqueeze(-1) / d.unsqueeze(-2)
    return x_out, a_out, cut.mean(), ortho.mean()


class MinCutPool(nn.Module):
    """Assignment MLP (one hidden layer) + :func:`mincut_pool` to ``clusters`` nodes."""

    def __init__(self, in_features: int, clusters: int, hidden: int = 32,
                 normalize_adj: bool = True) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(),
                                 nn.Linear(hidden, clusters))
        self.normalize_adj = normalize_adj

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor | None = None):
        return mincut_pool(x, adj, self.mlp(x), mask, self.normalize_adj)


class MinCutNet(nn.Module):
    """Graph classification: message passing → MinCutPool → message passing → mean → linear.

    ``forward(x, adj, mask)`` on dense padded batches returns ``(logits [B, K], aux_loss)``
    with ``aux_loss = L_c + L_o`` (add it to the task loss). Message passing is
    ``relu(Â X W1 + X W2)`` with ``Â`` the symmetric-normalised adjacency.
    """

    def __init__(self, in_features: int, num_classes: int, hidden: int = 32,
                 clusters: int = 8) -> None:
        super().__init__()
        self.mp1 = nn.ModuleList([nn.Linear(in_features, hidden), nn.Linear(in_features, hidden,
                                                                            bias=False)])
        self.pool = MinCutPool(hidden, clusters, hidden)
        self.mp2 = nn.ModuleList([nn.Linear(hidden, hidden), nn.Linear(hidden, hidden,
                                                                       bias=False)])
        self.head = nn.Linear(hidden, num_classes)

    @staticmethod
    def _mp(layers: nn.ModuleList, x: Tensor, a: Tensor) -> Tensor:
        return F.relu(layers[0](a @ x) + layers[1](x))

    def forward(self, x: Tensor, adj: Tensor, mask: Tensor | None = None):
        if not torch.is_tensor(adj) or adj.layout != torch.strided:
            raise ConfigError("mincut-net classifies whole graphs from dense padded batches "
                              "(x [B, N, F], adj [B, N, N], mask [B, N]); it is not a node "
                              "classifier for spikeloom train")
        h = self._mp(self.mp1, x, dense_norm(adj))
        if mask is not None:
            h = h * mask.unsqueeze(-1).to(h.dtype)
        h, a, cut, ortho = self.pool(h, adj, mask)
        h = self._mp(self.mp2, h, a)
        return self.head(h.mean(1)), cut + ortho


def pad_graphs(xs: list[Tensor], adjs: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """Pad graphs of different sizes into ``(x [B, N, F], adj [B, N, N], mask [B, N])``."""
    n = max(int(x.shape[0]) for x in xs)
    B, f = len(xs), xs[0].shape[1]
    x = torch.zeros(B, n, f)
    adj = torch.zeros(B, n, n)
    mask = torch.zeros(B, n, dtype=torch.bool)
    for i, (xi, ai) in enumerate(zip(xs, adjs)):
        k = xi.shape[0]
        x[i, :k], adj[i, :k, :k], mask[i, :k] = xi, ai, True
    return x, adj, mask
