"""A fast balanced partitioner: region growing from random seeds + label-propagation refinement.

For graphs where METIS is too slow (tens of millions of edges on one core), ``partition(...,
method="lp")`` uses :func:`grow_partition`. Everything is vectorised over edges, processed in
chunks of whole CSR rows so that memory stays ``O(N + chunk)`` beyond the edge list itself:

1. *Growing*: ``parts`` random seed nodes start one cluster each; at every round each
   unassigned node next to assigned ones picks the cluster most of those neighbours are in
   (random tie-break), and each cluster admits its best-connected candidates up to its
   capacity ``ceil(N / parts · (1 + imbalance))``. Nodes that can reach no cluster with room
   (other components, full neighbourhoods) fill the remaining room in random order.
2. *Refinement*: ``refine`` rounds of balanced label propagation: a random half of the nodes
   may move to the cluster holding most of their neighbours when it holds more than their
   own, best gains first, never past a cluster's capacity.

Only the graph's edges are used (no node labels or other hidden information). The edge cut is
larger than METIS's multilevel one; the benchmark ``bench_graph_scale.py --compare`` measures
both.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["grow_partition", "edge_cut"]


def _best_labels(row: Tensor, col: Tensor, rowptr: Tensor, label: Tensor, parts: int,
                 gen: torch.Generator, unassigned_only: bool, chunk: int
                 ) -> tuple[Tensor, Tensor, Tensor]:
    """Per node: the label most of its labelled neighbours carry, that count, own-label count.

    ``row``/``col``: edges sorted by ``row`` (CSR, ``rowptr``). Returns ``best [N]`` (−1 where
    no neighbour is labelled), ``best_count [N]`` and ``own_count [N]`` (int64).
    """
    n = label.numel()
    best = torch.full((n,), -1, dtype=torch.long)
    best_count = torch.zeros(n, dtype=torch.long)
    own_count = torch.zeros(n, dtype=torch.long)
    bounds = torch.searchsorted(rowptr, torch.arange(0, int(rowptr[-1]) + chunk, chunk))
    bounds = torch.unique_consecutive(torch.cat([bounds.clamp_max(n), torch.tensor([n])]))
    for n0, n1 in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        a, b = int(rowptr[n0]), int(rowptr[n1])
        r, lab = row[a:b], label[col[a:b]]
        keep = lab >= 0
        if unassigned_only:
            keep &= label[r] < 0
        key = (r[keep] - n0) * parts + lab[keep]
        if key.numel() == 0:
            continue
        uk, cnt = torch.unique(key, return_counts=True)
        nodes, labs = uk // parts, uk % parts
        score = cnt.double() + 0.5 * torch.rand(len(cnt), generator=gen, dtype=torch.double)
        top = torch.full((n1 - n0,), -1.0, dtype=torch.double)
        top.scatter_reduce_(0, nodes, score, "amax")
        win = score == top[nodes]
        best[n0 + nodes[win]] = labs[win]
        best_count[n0 + nodes[win]] = cnt[win]
        own = labs == label[n0 + nodes]
        own_count[n0 + nodes[own]] = cnt[own]
    return best, best_count, own_count


def _admit(nodes: Tensor, labs: Tensor, score: Tensor, room: Tensor) -> Tensor:
    """Mask of the candidates ``(nodes, labs)`` admitted: per label its best ``room`` by score."""
    order = torch.argsort(score, descending=True)
    order = order[torch.argsort(labs[order], stable=True)]
    sl = labs[order]
    starts = torch.searchsorted(sl, sl)  # first index of each label's group
    rank = torch.arange(len(sl)) - starts
    ok = torch.zeros(len(nodes), dtype=torch.bool)
    ok[order] = rank < room[sl]
    return ok


def grow_partition(edge_index: Tensor, num_nodes: int, parts: int, seed: int = 1,
                   refine: int = 4, imbalance: float = 0.03, chunk: int = 1 << 23) -> Tensor:
    """Cluster id ``[N]`` of every node (see the module docstring).

    Args:
        edge_index: ``[2, E]`` symmetric edges sorted by destination (``Graph.edge_index``);
            self-loops are ignored.
        num_nodes: ``N``.
        parts: number of clusters.
        seed: seeds the seed nodes and the tie-breaks.
        refine: label-propagation rounds after growing.
        imbalance: allowed excess of a cluster over ``N / parts``.
        chunk: edges per processing chunk (memory vs. speed).
    """
    n = num_nodes
    col, row = edge_index[0], edge_index[1]
    if bool((col == row).any()):
        keep = col != row
        col, row = col[keep], row[keep]
    rowptr = torch.zeros(n + 1, dtype=torch.long)
    rowptr[1:] = torch.cumsum(torch.bincount(row, minlength=n), 0)
    gen = torch.Generator().manual_seed(seed)
    cap = math.ceil(n / parts * (1 + imbalance))
    label = torch.full((n,), -1, dtype=torch.long)
    label[torch.randperm(n, generator=gen)[:parts]] = torch.arange(parts)
    size = torch.ones(parts, dtype=torch.long)
    while True:  # growing, one hop per round
        best, count, _ = _best_labels(row, col, rowptr, label, parts, gen, True, chunk)
        nodes = torch.nonzero((label < 0) & (best >= 0)).squeeze(1)
        if nodes.numel() == 0:
            break
        score = count[nodes].double() + torch.rand(len(nodes), generator=gen, dtype=torch.double)
        ok = _admit(nodes, best[nodes], score, cap - size)
        if not bool(ok.any()):
            break
        label[nodes[ok]] = best[nodes[ok]]
        size += torch.bincount(best[nodes[ok]], minlength=parts)
    rest = torch.nonzero(label < 0).squeeze(1)
    if rest.numel():  # fill the remaining room (sum of room >= number of such nodes)
        slots = torch.repeat_interleave(torch.arange(parts), cap - size)
        label[rest[torch.randperm(len(rest), generator=gen)]] = slots[:len(rest)]
    for _ in range(refine):
        size = torch.bincount(label, minlength=parts)
        best, count, own = _best_labels(row, col, rowptr, label, parts, gen, False, chunk)
        gain = count - own
        move = (gain > 0) & (best != label) & (best >= 0) & \
            (torch.rand(n, generator=gen) < 0.5)
        nodes = torch.nonzero(move).squeeze(1)
        if nodes.numel() == 0:
            break
        score = gain[nodes].double() + torch.rand(len(nodes), generator=gen, dtype=torch.double)
        ok = _admit(nodes, best[nodes], score, cap - size)
        label[nodes[ok]] = best[nodes[ok]]
    return label


def edge_cut(edge_index: Tensor, member: Tensor) -> float:
    """Fraction of the (non-loop) edges whose ends lie in different clusters."""
    src, dst = edge_index
    keep = src != dst
    return float((member[src[keep]] != member[dst[keep]]).double().mean())
