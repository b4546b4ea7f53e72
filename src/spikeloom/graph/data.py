"""The graph container: edges (edge index and CSR), node features, labels and split masks.

:class:`Graph` is a small, framework-free container for node classification on one graph.
Edges are stored as an edge index ``[2, E]`` (``src -> dst``; an undirected graph stores both
directions); :meth:`Graph.csr` gives the CSR form by destination (row = receiving node), the
layout used by :func:`spikeloom.graph.spmm` and the normalisations of :mod:`.norm`.
:meth:`Graph.to_pyg` / :meth:`Graph.from_pyg` convert to and from PyTorch Geometric's ``Data``
when PyG is installed (an optional dependency; nothing else needs it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ..errors import ConfigError

__all__ = ["Graph", "coalesce_edges", "to_undirected"]


def coalesce_edges(edge_index: Tensor, num_nodes: int,
                   remove_self_loops: bool = True) -> Tensor:
    """Sorted (by ``dst``, then ``src``), de-duplicated edges; self-loops dropped if asked."""
    src, dst = edge_index[0].long(), edge_index[1].long()
    if remove_self_loops:
        keep = src != dst
        src, dst = src[keep], dst[keep]
    key = torch.unique(dst * num_nodes + src)  # sorted
    return torch.stack([key % num_nodes, key // num_nodes])


def to_undirected(edge_index: Tensor, num_nodes: int, remove_self_loops: bool = True) -> Tensor:
    """Both directions of every edge, coalesced (see :func:`coalesce_edges`)."""
    both = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    return coalesce_edges(both, num_nodes, remove_self_loops)


@dataclass
class Graph:
    """One graph for node classification.

    Attributes:
        edge_index: ``[2, E]`` int64, edges ``src -> dst`` (both directions when undirected),
            sorted by ``dst`` then ``src`` without duplicates (use :func:`coalesce_edges`).
        x: node features ``[N, F]`` (float32).
        y: node labels ``[N]`` (int64).
        masks: split name (``"train"``, ``"val"``, ``"test"``) -> bool mask ``[N]``.
        name: a label used in messages and cache keys.
    """

    edge_index: Tensor
    x: Tensor
    y: Tensor
    masks: dict[str, Tensor] = field(default_factory=dict)
    name: str = "graph"

    def __post_init__(self) -> None:
        n = self.num_nodes
        ei = self.edge_index
        if ei.ndim != 2 or ei.shape[0] != 2:
            raise ConfigError(f"graph {self.name!r}: edge_index must be [2, E], got "
                              f"{tuple(ei.shape)}")
        if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= n):
            raise ConfigError(f"graph {self.name!r}: edge_index holds node ids outside "
                              f"[0, {n}); got range [{int(ei.min())}, {int(ei.max())}]")
        if self.y.shape[0] != n:
            raise ConfigError(f"graph {self.name!r}: {self.y.shape[0]} labels for {n} nodes")
        for k, m in self.masks.items():
            if m.dtype != torch.bool or m.shape != (n,):
                raise ConfigError(f"graph {self.name!r}: mask {k!r} must be bool [{n}], got "
                                  f"{m.dtype} {tuple(m.shape)}")

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_edges(self) -> int:
        """Directed edges (an undirected edge counts twice)."""
        return int(self.edge_index.shape[1])

    @property
    def num_features(self) -> int:
        return int(self.x.shape[1])

    @property
    def num_classes(self) -> int:
        return int(self.y.max()) + 1 if self.y.numel() else 0

    def in_degree(self) -> Tensor:
        """Incoming edges per node ``[N]`` (int64)."""
        return torch.bincount(self.edge_index[1], minlength=self.num_nodes)

    def csr(self) -> tuple[Tensor, Tensor]:
        """``(rowptr [N+1], col [E])``: row ``i`` lists the sources of edges into ``i``."""
        rowptr = torch.zeros(self.num_nodes + 1, dtype=torch.long)
        rowptr[1:] = torch.cumsum(self.in_degree(), 0)
        return rowptr, self.edge_index[0]

    def nodes(self, split: str) -> Tensor:
        """Node ids of a split (``"train"``, ``"val"``, ``"test"``)."""
        if split not in self.masks:
            raise ConfigError(f"graph {self.name!r} has no {split!r} split; it has "
                              f"{', '.join(self.masks) or 'none'}")
        return torch.nonzero(self.masks[split], as_tuple=True)[0]

    def subgraph(self, nodes: Tensor) -> Graph:
        """The subgraph induced by ``nodes`` (relabelled ``0..len(nodes)-1`` in that order)."""
        nodes = torch.as_tensor(nodes, dtype=torch.long)
        new_id = torch.full((self.num_nodes,), -1, dtype=torch.long)
        new_id[nodes] = torch.arange(len(nodes))
        src, dst = new_id[self.edge_index[0]], new_id[self.edge_index[1]]
        keep = (src >= 0) & (dst >= 0)
        ei = coalesce_edges(torch.stack([src[keep], dst[keep]]), len(nodes), False)
        return Graph(ei, self.x[nodes], self.y[nodes],
                     {k: m[nodes] for k, m in self.masks.items()}, f"{self.name}[sub]")

    def to_pyg(self) -> Any:
        """A ``torch_geometric.data.Data`` with ``x, edge_index, y`` and ``<split>_mask``."""
        try:
            from torch_geometric.data import Data
        except ImportError:
            raise ConfigError("Graph.to_pyg needs PyTorch Geometric (pip install "
                              "torch_geometric); spikeloom's graph code does not") from None
        return Data(x=self.x, edge_index=self.edge_index, y=self.y,
                    **{f"{k}_mask": m for k, m in self.masks.items()})

    @classmethod
    def from_pyg(cls, data: Any, name: str = "graph") -> Graph:
        """A :class:`Graph` from a PyG ``Data`` (its ``*_mask`` attributes become splits)."""
        n = int(data.num_nodes)
        masks = {k[:-5]: data[k].bool() for k in data.keys() if k.endswith("_mask")}
        x = data.x if data.x is not None else torch.ones(n, 1)
        y = data.y if data.y is not None else torch.zeros(n, dtype=torch.long)
        ei = coalesce_edges(data.edge_index, n, remove_self_loops=False)
        return cls(ei, x.float(), y.long(), masks, name)

    def summary(self) -> str:
        sizes = ", ".join(f"{k} {int(m.sum())}" for k, m in self.masks.items())
        iso = int((self.in_degree() == 0).sum())
        return (f"{self.name}: {self.num_nodes} nodes, {self.num_edges // 2} undirected edges, "
                f"{self.num_features} features, {self.num_classes} classes, {iso} isolated; "
                f"{sizes}")

