"""Graph learning: spiking and ANN graph networks, sparse aggregation, scalable training.

* :mod:`.data` — :class:`Graph` container (edge index / CSR, features, labels, split masks;
  PyTorch Geometric ``Data`` conversion when PyG is installed);
* :mod:`.planetoid` — Cora / Citeseer / Pubmed from the original files;
  :mod:`.synthetic` — seeded stochastic-block-model graphs of any size;
* :mod:`.norm` — normalised CSR adjacencies (GCN, row, diagonal enhancement, ...), aggregated
  with the ``spmm`` operator (:mod:`spikeloom.ops.spmm`);
* :mod:`.layers` — ``GCNConv``, ``GATConv``, the Cluster-GCN layer; :mod:`.spiking` — STFN and
  spiking GCN/GAT; :mod:`.models` — registered models (``gcn``, ``gat``, ``spiking-gcn``,
  ``spiking-gat``, ``cluster-gcn``); :mod:`.lowhigh` — GNN-LF / GNN-HF propagation
  (``gnn-lf``, ``gnn-hf``; closed form and iterative);
* :mod:`.cluster` — Cluster-GCN partitions (METIS / random), cached on disk;
  :mod:`.training` — graph datasets and the node-classification step of ``spikeloom train``;
* :mod:`.cost` — cost counters of the sparse aggregation (per edge).
"""

from . import cost as _cost  # noqa: F401  (registers the aggregation's cost counter)
from .cluster import cached_partition, partition
from .data import Graph
from .layers import Aggregate, ClusterGCNLayer, GATConv, GCNConv
from .models import GAT, GCN, ClusterGCN, GraphBound
from .norm import Adj, normalize
from .planetoid import load_planetoid
from .spiking import STFN, SpikingGraphNet

__all__ = [
    "Adj", "Aggregate", "ClusterGCN", "ClusterGCNLayer", "GAT", "GATConv", "GCN", "GCNConv",
    "Graph", "GraphBound", "STFN", "SpikingGraphNet", "cached_partition", "load_planetoid",
    "normalize", "partition",
]
