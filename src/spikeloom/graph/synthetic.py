"""Synthetic graphs for scale: a seeded stochastic block model with block-correlated features.

:func:`sbm_graph` draws ``N·avg_degree/2`` undirected edges in chunks (no dense matrix, memory
``O(E)``): a source node uniformly, then with probability ``p_within`` a destination in the
same block, else anywhere. Labels are the blocks; features are the block's mean vector plus
Gaussian noise (``feature_noise`` sets how hard the task is without the graph), so both the
features and the graph carry the label and accuracy is meaningful. Splits are seeded random
fractions of the nodes.
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from .data import Graph, to_undirected

__all__ = ["sbm_graph"]


def sbm_graph(num_nodes: int = 10_000, blocks: int = 10, avg_degree: float = 20.0,
              p_within: float = 0.8, features: int = 32, feature_noise: float = 3.0,
              train: float = 0.5, val: float = 0.25, seed: int = 0,
              chunk: int = 1 << 22) -> Graph:
    """A stochastic-block-model graph (see the module docstring).

    Args:
        num_nodes: ``N``.
        blocks: number of blocks (= classes).
        avg_degree: mean degree (``N·avg_degree/2`` undirected edges are drawn; duplicates and
            self-loops are removed, so slightly fewer remain).
        p_within: probability that an edge stays inside its source's block.
        features: feature size.
        feature_noise: standard deviation of the noise around the block means (unit-norm
            means scaled by 1).
        train, val: fractions of nodes in the train and validation splits (the rest: test).
        seed: everything is drawn from this seed.
        chunk: edges drawn per chunk.
    """
    if num_nodes < blocks or blocks < 1:
        raise ConfigError(f"sbm_graph needs num_nodes >= blocks >= 1, got {num_nodes}, {blocks}")
    if not (0 <= p_within <= 1 and 0 < train and 0 < val and train + val < 1):
        raise ConfigError("sbm_graph: p_within in [0, 1], train, val > 0 and train + val < 1")
    g = torch.Generator().manual_seed(seed)
    block = torch.randint(blocks, (num_nodes,), generator=g)
    order = torch.argsort(block, stable=True)
    sizes = torch.bincount(block, minlength=blocks)
    starts = torch.cumsum(sizes, 0) - sizes
    n_edges = int(num_nodes * avg_degree / 2)
    parts = []
    for s in range(0, n_edges, chunk):
        m = min(chunk, n_edges - s)
        src = torch.randint(num_nodes, (m,), generator=g)
        b = block[src]
        within = torch.rand(m, generator=g) < p_within
        pos = (torch.rand(m, generator=g) * sizes[b]).long().clamp_max(sizes[b] - 1)
        dst = torch.where(within, order[starts[b] + pos], torch.randint(num_nodes, (m,),
                                                                         generator=g))
        parts.append(torch.stack([src, dst]))
    edge_index = to_undirected(torch.cat(parts, 1), num_nodes)
    means = torch.randn(blocks, features, generator=g)
    means = means / means.norm(dim=1, keepdim=True)
    x = torch.empty(num_nodes, features)
    for s in range(0, num_nodes, chunk):
        e = min(s + chunk, num_nodes)
        x[s:e] = means[block[s:e]] + feature_noise * torch.randn(e - s, features, generator=g)
    r = torch.rand(num_nodes, generator=g)
    masks = {"train": r < train, "val": (r >= train) & (r < train + val), "test": r >= train + val}
    return Graph(edge_index, x, block, masks, f"sbm{num_nodes}")
