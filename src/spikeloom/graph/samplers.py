"""Sampling for GCN training, one method per family of the survey of Liu et al. (2022,
arXiv:2103.05872): node-wise (GraphSAGE), layer-wise (LADIES, with FastGCN as a variant) and
subgraph (GraphSAINT random walks), each with the normalisation that makes it unbiased.

All samplers are vectorised over edges (no Python loop over nodes or edges) and take a
``torch.Generator`` so that draws are reproducible. They return sparse blocks
(:class:`~spikeloom.graph.norm.Adj` ``[targets, sources]``) to aggregate with ``block @ h[src]``.

* :func:`sage_block` — per target node, ``fanout`` neighbours uniformly without replacement
  (all of them when the degree is at most ``fanout``), mean aggregation: ``E[block @ h] =``
  the neighbour mean (GraphSAGE, Hamilton et al. 2017). :func:`sage_blocks` stacks layers.
* :func:`layer_sample` — LADIES (Zou et al. 2019): ``s`` nodes i.i.d. with
  ``p_u ∝ ‖Â[targets, u]‖²``, block ``Â[targets, u_j] / (s·p_{u_j})`` (optionally
  row-normalised, which is biased); ``probs="all"`` uses ``‖Â[:, u]‖²`` of the whole graph
  (FastGCN, Chen et al. 2018).
* :class:`SaintRW` — GraphSAINT (Zeng et al. 2020): subgraphs of ``roots`` random walks of
  ``length`` steps; pre-sampling estimates node counts ``C_v`` and edge counts ``C_{u,v}``;
  the subgraph aggregates with ``Â_{v,u} / α_{u,v}``, ``α_{u,v} = C_{u,v}/C_v``, and weights
  node losses by ``1/λ_v``, ``λ_v = C_v/M``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .norm import Adj, edges_to_csr

__all__ = ["sage_block", "sage_blocks", "layer_sample", "SaintRW"]


def _row_slices(rowptr: Tensor, nodes: Tensor) -> tuple[Tensor, Tensor]:
    """``(owner, edge_pos)``: for every entry of the rows ``nodes``, its row's position in
    ``nodes`` and its index in the CSR arrays."""
    starts, counts = rowptr[nodes], rowptr[nodes + 1] - rowptr[nodes]
    total = int(counts.sum())
    owner = torch.repeat_interleave(torch.arange(len(nodes)), counts, output_size=total)
    first = torch.cumsum(counts, 0) - counts
    pos = torch.arange(total) - first[owner] + starts[owner]
    return owner, pos


def sage_block(rowptr: Tensor, col: Tensor, targets: Tensor, fanout: int,
               generator: torch.Generator | None = None) -> tuple[Adj, Tensor]:
    """One GraphSAGE layer: ``(block [len(targets), len(src)], src)`` with mean weights.

    ``src`` lists the targets first (so ``h[src][:len(targets)]`` are their own features),
    then the sampled neighbours.
    """
    owner, pos = _row_slices(rowptr, targets)
    nbr = col[pos]
    # random order within each row, keep the first `fanout`
    key = owner.double() + torch.rand(len(owner), generator=generator, dtype=torch.float64)
    order = torch.argsort(key)
    owner, nbr = owner[order], nbr[order]
    counts = torch.bincount(owner, minlength=len(targets))
    first = torch.cumsum(counts, 0) - counts
    keep = (torch.arange(len(owner)) - first[owner]) < fanout
    owner, nbr = owner[keep], nbr[keep]
    k = torch.bincount(owner, minlength=len(targets)).clamp_min(1).float()
    src, inv = torch.unique(torch.cat([targets, nbr]), return_inverse=True)
    # put the targets first in src
    tpos = inv[: len(targets)]
    rest = torch.ones(len(src), dtype=torch.bool)
    rest[tpos] = False
    new_order = torch.cat([tpos, torch.nonzero(rest, as_tuple=True)[0]])
    remap = torch.empty(len(src), dtype=torch.long)
    remap[new_order] = torch.arange(len(src))
    cols = remap[inv[len(targets):]]
    ei = torch.stack([cols, owner])
    idx = torch.argsort(owner * len(src) + cols)
    ei = ei[:, idx]
    block = edges_to_csr(ei, len(targets), (1.0 / k)[ei[1]])
    return Adj(block.rowptr, block.col, block.val, len(src)), src[new_order]


def sage_blocks(rowptr: Tensor, col: Tensor, targets: Tensor, fanouts: list[int],
                generator: torch.Generator | None = None) -> list[tuple[Adj, Tensor]]:
    """Blocks for ``len(fanouts)`` layers, outermost (input) layer first.

    ``fanouts[0]`` is the fan-out of the layer next to the targets (GraphSAGE's ``S_1``).
    Layer ``l``'s block maps the nodes ``src`` of block ``l`` to the targets of block ``l+1``.
    """
    blocks, nodes = [], targets
    for f in fanouts:
        block, src = sage_block(rowptr, col, nodes, f, generator)
        blocks.append((block, src))
        nodes = src
    return blocks[::-1]


def layer_sample(adj: Adj, targets: Tensor, num: int, probs: str = "targets",
                 row_normalize: bool = False,
                 generator: torch.Generator | None = None) -> tuple[Adj, Tensor]:
    """LADIES (``probs="targets"``) / FastGCN (``probs="all"``) layer sample.

    Returns ``(block [len(targets), num], sampled)``: ``block @ h[sampled]`` estimates
    ``Â[targets] @ h`` without bias when ``row_normalize=False``.
    """
    owner, pos = _row_slices(adj.rowptr, targets)
    cols, vals = adj.col[pos], adj.val[pos]
    if probs == "targets":
        w = torch.zeros(adj.num_cols, dtype=torch.float64).index_add_(0, cols,
                                                                       vals.double() ** 2)
    elif probs == "all":
        w = torch.zeros(adj.num_cols, dtype=torch.float64).index_add_(0, adj.col,
                                                                       adj.val.double() ** 2)
    else:
        raise ValueError(f"probs must be 'targets' (LADIES) or 'all' (FastGCN), got {probs!r}")
    p = w / w.sum()
    sampled = torch.multinomial(p, num, replacement=True, generator=generator)
    # entries Â[t, u_j] for every (target, sample j): match the rows' entries to the samples
    order = torch.argsort(sampled)
    s_sorted = sampled[order]
    lo = torch.searchsorted(s_sorted, cols)
    hi = torch.searchsorted(s_sorted, cols, right=True)
    reps = hi - lo
    total = int(reps.sum())
    e_idx = torch.repeat_interleave(torch.arange(len(cols)), reps, output_size=total)
    first = torch.cumsum(reps, 0) - reps
    j = order[lo[e_idx] + torch.arange(total) - first[e_idx]]
    val = vals[e_idx].double() / (num * p[sampled[j]])
    row = owner[e_idx]
    if row_normalize:
        den = torch.zeros(len(targets), dtype=torch.float64).index_add_(0, row, val)
        val = val / den[row].clamp_min(1e-300)
    idx = torch.argsort(row * num + j)
    block = edges_to_csr(torch.stack([j[idx], row[idx]]), len(targets), val[idx].float())
    return Adj(block.rowptr, block.col, block.val, num), sampled


class SaintRW:
    """GraphSAINT random-walk subgraph sampler with its normalisation.

    Args:
        adj: the normalised adjacency ``Â`` of the whole graph (CSR, rows = receivers).
        roots: walks per subgraph.
        length: steps per walk.
        presample: subgraphs ``M`` drawn to estimate the normalisation.
        generator: random source (pre-sampling and :meth:`sample`).
    """

    def __init__(self, adj: Adj, roots: int, length: int, presample: int = 50,
                 generator: torch.Generator | None = None) -> None:
        self.adj, self.roots, self.length, self.gen = adj, roots, length, generator
        n = adj.num_rows
        self.node_count = torch.zeros(n, dtype=torch.float64)
        self.edge_count = torch.zeros(adj.nnz, dtype=torch.float64)
        for _ in range(presample):  # M pre-sampled subgraphs (a loop over subgraphs)
            nodes = self._walk_nodes()
            self.node_count[nodes] += 1
            self.edge_count[self._edges_within(nodes)] += 1
        self.presample = presample

    def _walk_nodes(self) -> Tensor:
        n, a = self.adj.num_rows, self.adj
        cur = torch.randint(n, (self.roots,), generator=self.gen)
        visited = [cur]
        deg = a.rowptr[1:] - a.rowptr[:-1]
        for _ in range(self.length):
            d = deg[cur]
            step = (torch.rand(len(cur), generator=self.gen) * d).long().clamp_max(
                (d - 1).clamp_min(0))
            cur = torch.where(d > 0, a.col[a.rowptr[cur] + step], cur)
            visited.append(cur)
        return torch.unique(torch.cat(visited))

    def _edges_within(self, nodes: Tensor) -> Tensor:
        inside = torch.zeros(self.adj.num_rows, dtype=torch.bool)
        inside[nodes] = True
        owner, pos = _row_slices(self.adj.rowptr, nodes)
        return pos[inside[self.adj.col[pos]]]

    def sample(self) -> tuple[Tensor, Adj, Tensor]:
        """``(nodes, block, loss_weight)``: the subgraph's nodes, its normalised adjacency
        ``[n_s, n_s]`` (``Â_{v,u}/α_{u,v}``) and ``1/λ_v`` per node. Edges never seen in
        pre-sampling keep ``α = 1``."""
        nodes = self._walk_nodes()
        e = self._edges_within(nodes)
        rows = self.adj.rows()[e]
        cols = self.adj.col[e]
        c_v = self.node_count[rows]
        alpha = torch.where(self.edge_count[e] > 0, self.edge_count[e] / c_v.clamp_min(1),
                            torch.ones_like(c_v))
        local = torch.full((self.adj.num_rows,), -1, dtype=torch.long)
        local[nodes] = torch.arange(len(nodes))
        ei = torch.stack([local[cols], local[rows]])
        val = self.adj.val[e].double() / alpha
        idx = torch.argsort(ei[1] * len(nodes) + ei[0])
        block = edges_to_csr(ei[:, idx], len(nodes), val[idx].float())
        lam = (self.node_count[nodes] / self.presample).clamp_min(1.0 / self.presample)
        return nodes, Adj(block.rowptr, block.col, block.val, len(nodes)), (1 / lam).float()
