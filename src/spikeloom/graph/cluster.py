"""Cluster-GCN: graph partitions, their on-disk cache and multi-cluster batches.

Chiang et al., "Cluster-GCN", KDD 2019 (arXiv:1905.07953). The graph is partitioned once into
``p`` clusters (METIS through ``pymetis``; ``"lp"``, a fast vectorised region-growing +
label-propagation partitioner for graphs where METIS is too slow, :mod:`.grow`; or a seeded
balanced random partition as a fallback); each training batch takes ``q`` clusters, the
subgraph *induced* by their union (edges between the chosen clusters restored) and the batch
adjacency is normalised again on that subgraph (the training step normalises the batch's
edges; see :mod:`spikeloom.graph.norm` for the variants, ``diag`` = diagonal enhancement).

Partitions are cached on disk (``<cache>/graph_partitions/<key>.npy``, ``<cache>`` from
:func:`spikeloom.datasets.cache.resolve_cache_dir`), keyed by a hash of the graph's edges and
size and by the settings (method, parts, seed), so a second run loads them.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..atomic import atomic_write_bytes
from ..errors import ConfigError
from .data import Graph

__all__ = ["partition", "cached_partition", "partition_key", "cluster_groups",
           "induced_edges", "PARTITION_METHODS", "PARTITIONERS"]

_VERSION = 1


def _metis(graph: Graph, parts: int, seed: int) -> Tensor:
    try:
        import pymetis
    except ImportError:
        raise ConfigError("partition method 'metis' needs pymetis (pip install pymetis, or "
                          "the 'graph' extra); use partition='lp' or 'random' without "
                          "it") from None
    n = graph.num_nodes
    src, dst = graph.edge_index
    keep = src != dst  # METIS rejects self-loops; edges are sorted by dst (CSR rows)
    rowptr = np.zeros(n + 1, dtype=np.int64)
    rowptr[1:] = np.cumsum(np.bincount(dst[keep].numpy(), minlength=n))
    adjacency = pymetis.CSRAdjacency(rowptr, src[keep].numpy().astype(np.int64))
    _, member = pymetis.part_graph(parts, adjacency, options=pymetis.Options(seed=seed))
    return torch.from_numpy(np.asarray(member, dtype=np.int64))


def _random(graph: Graph, parts: int, seed: int) -> Tensor:
    n = graph.num_nodes
    g = torch.Generator().manual_seed(seed)
    member = torch.empty(n, dtype=torch.long)
    member[torch.randperm(n, generator=g)] = torch.arange(n) % parts
    return member


def _lp(graph: Graph, parts: int, seed: int) -> Tensor:
    from .grow import grow_partition

    return grow_partition(graph.edge_index, graph.num_nodes, parts, seed=seed)


#: partition method -> function ``(graph, parts, seed) -> member [N]``
PARTITIONERS = {"metis": _metis, "lp": _lp, "random": _random}
PARTITION_METHODS = tuple(PARTITIONERS)


def partition(graph: Graph, parts: int, method: str = "metis", seed: int = 1) -> Tensor:
    """Cluster id ``[N]`` (int64, in ``0..parts-1``) of every node.

    Args:
        graph: the graph (edges symmetric; self-loops are ignored).
        parts: number of clusters ``p``.
        method: ``"metis"`` (balanced, minimum edge cut), ``"lp"`` (balanced, fast, larger
            cut; :mod:`.grow`) or ``"random"`` (balanced, seeded).
        seed: partitioner seed (the reference code uses 1 for METIS).
    """
    n = graph.num_nodes
    if not 1 <= parts <= n:
        raise ConfigError(f"parts must be in [1, {n}] (nodes of {graph.name!r}), got {parts}")
    if method not in PARTITIONERS:
        raise ConfigError(f"partition method must be one of {PARTITION_METHODS}, got {method!r}")
    return PARTITIONERS["random" if parts == 1 else method](graph, parts, seed)


def partition_key(graph: Graph, parts: int, method: str, seed: int) -> str:
    """Cache key: hash of the edges, node count and settings."""
    h = hashlib.sha256()
    h.update(f"v{_VERSION}|{graph.num_nodes}|{graph.num_edges}|{parts}|{method}|{seed}".encode())
    ei = graph.edge_index.contiguous().numpy()
    step = 1 << 24
    for s in range(0, ei.shape[1], step):
        h.update(np.ascontiguousarray(ei[:, s:s + step]).tobytes())
    return f"{graph.name}-{method}-p{parts}-s{seed}-{h.hexdigest()[:20]}"


def cached_partition(graph: Graph, parts: int, method: str = "metis", seed: int = 1,
                     cache_dir: str | os.PathLike | bool | None = None) -> Tensor:
    """:func:`partition`, computed once and cached on disk (``cache_dir=False``: no cache)."""
    from ..datasets.cache import resolve_cache_dir

    root = resolve_cache_dir(cache_dir)
    if root is None:
        return partition(graph, parts, method, seed)
    path = Path(root) / "graph_partitions" / f"{partition_key(graph, parts, method, seed)}.npy"
    if path.is_file():
        try:
            member = np.load(path)
            if member.shape == (graph.num_nodes,) and member.min() >= 0 \
                    and member.max() < parts:
                return torch.from_numpy(member.astype(np.int64))
        except (OSError, ValueError):
            pass  # damaged entry: recompute and replace it
    member = partition(graph, parts, method, seed)
    buf = io.BytesIO()
    np.save(buf, member.numpy())
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())
    return member


def cluster_groups(parts: int, q: int, seed: int) -> list[Tensor]:
    """One epoch of Cluster-GCN batches: the ``p`` clusters shuffled, in chunks of ``q``."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(parts, generator=g)
    return [order[i:i + q] for i in range(0, parts, q)]


def induced_edges(rowptr: Tensor, col: Tensor, nodes: Tensor, num_nodes: int) -> Tensor:
    """Edges ``[2, E_b]`` (local ids) of the subgraph induced by ``nodes``, via the CSR rows.

    Work is proportional to the degrees of ``nodes``, not to the graph size.
    """
    starts, ends = rowptr[nodes], rowptr[nodes + 1]
    counts = ends - starts
    total = int(counts.sum())
    local_dst = torch.repeat_interleave(torch.arange(len(nodes)), counts, output_size=total)
    offs = torch.arange(total) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts,
                                                         output_size=total)
    src_global = col[torch.repeat_interleave(starts, counts, output_size=total) + offs]
    new_id = torch.full((num_nodes,), -1, dtype=torch.long)
    new_id[nodes] = torch.arange(len(nodes))
    src = new_id[src_global]
    keep = src >= 0
    return torch.stack([src[keep], local_dst[keep]])
