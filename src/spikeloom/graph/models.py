"""Graph models for node classification, registered in :data:`spikeloom.models.MODELS`.

=================  ===========================================================================
name               model
=================  ===========================================================================
``gcn``            :class:`GCN`: ANN graph convolution network (Kipf & Welling 2017)
``gat``            :class:`GAT`: ANN graph attention network (Veličković et al. 2018)
``spiking-gcn``    :class:`~spikeloom.graph.spiking.SpikingGraphNet` with GCN aggregation (GC-SNN)
``spiking-gat``    the same with attention (GA-SNN)
``cluster-gcn``    :class:`ClusterGCN`: Cluster-GCN's reference network (``[A h, h]`` + LayerNorm)
``layerwise-gcn``  :class:`~.layerwise.LayerwiseGCN` (L-GCN; ``--batching layerwise``)
``gnn-lf``         :class:`~spikeloom.graph.lowhigh.GNNLowHigh`, low-pass kernel (Zhu et al. 2021)
``gnn-hf``         the same with the high-pass kernel (``propagation=closed|iter``)
=================  ===========================================================================

Every model is called as ``model(x, adj)`` with node features ``x [N, F]`` and a normalised
adjacency (:class:`~spikeloom.graph.norm.Adj`, self-loops included for GCN/GAT) and returns
logits ``[N, K]``. The adjacency each model expects is its ``adj_norm`` attribute (read by the
graph training step). :class:`GraphBound` binds a model to one adjacency so that tools taking a
plain ``model(x)`` (the cost report, spike monitors) can run it.
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ..datasets.spec import DataSpec
from ..models.registry import register_model
from .layers import ClusterGCNLayer, GATConv, GCNConv
from .norm import Adj
from .spiking import SpikingGraphNet

__all__ = ["GCN", "GAT", "ClusterGCN", "GraphBound", "graph_args"]


def graph_args(spec: DataSpec) -> dict[str, Any]:
    """Constructor arguments from a graph :class:`DataSpec`: ``in_features``, ``num_classes``."""
    return {"in_features": spec.features, "num_classes": spec.num_classes}


class GCN(nn.Module):
    """``layers`` graph convolutions with ReLU and dropout between them."""

    adj_norm = "gcn"

    def __init__(self, in_features: int, num_classes: int, hidden: int = 16, layers: int = 2,
                 dropout: float = 0.5) -> None:
        super().__init__()
        sizes = [in_features] + [hidden] * (layers - 1) + [num_classes]
        self.convs = nn.ModuleList(GCNConv(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.dropout = dropout

    def forward(self, x: Tensor, adj: Adj) -> Tensor:
        for i, conv in enumerate(self.convs):
            x = conv(F.dropout(x, self.dropout, self.training), adj)
            if i < len(self.convs) - 1:
                x = F.relu(x)
        return x


class GAT(nn.Module):
    """Two-layer GAT: ``heads`` heads of ``hidden`` units (ELU), one averaged output head."""

    adj_norm = "gcn"

    def __init__(self, in_features: int, num_classes: int, hidden: int = 8, heads: int = 8,
                 dropout: float = 0.6) -> None:
        super().__init__()
        self.conv1 = GATConv(in_features, hidden, heads, attn_dropout=dropout)
        self.conv2 = GATConv(hidden * heads, num_classes, 1, concat=False, attn_dropout=dropout)
        self.dropout = dropout

    def forward(self, x: Tensor, adj: Adj) -> Tensor:
        x = F.elu(self.conv1(F.dropout(x, self.dropout, self.training), adj))
        return self.conv2(F.dropout(x, self.dropout, self.training), adj)


class ClusterGCN(nn.Module):
    """Cluster-GCN's network: :class:`~spikeloom.graph.layers.ClusterGCNLayer` stack.

    Use it with a row-normalised adjacency (``adj_norm = "diag"``: diagonal enhancement with
    ``diag_lambda`` chosen by the batching, λ = 0 gives variant (c)).
    """

    adj_norm = "diag"

    def __init__(self, in_features: int, num_classes: int, hidden: int = 128, layers: int = 3,
                 dropout: float = 0.2) -> None:
        super().__init__()
        sizes = [in_features] + [hidden] * (layers - 1) + [num_classes]
        self.layers = nn.ModuleList(
            ClusterGCNLayer(a, b, last=(i == layers - 1), dropout=dropout)
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])))

    def forward(self, x: Tensor, adj: Adj) -> Tensor:
        for layer in self.layers:
            x = layer(x, adj)
        return x


class GraphBound(nn.Module):
    """``model`` bound to one adjacency: ``GraphBound(model, adj)(x) == model(x, adj)``.

    For tools that call ``module(x)`` with a time-major ``x [T, N, F]`` (the cost report; the
    nodes are its samples): ANN models take ``T = 1``, spiking models their spike train.
    ``sample_axis=True`` takes ``[T, 1, N, F]`` instead (the spike-raster plot).
    """

    def __init__(self, model: nn.Module, adj: Adj, sample_axis: bool = False) -> None:
        super().__init__()
        self.model, self.adj, self.sample_axis = model, adj, sample_axis

    def forward(self, x: Tensor) -> Tensor:
        if self.sample_axis:  # [T, 1, N, F] (one "sample" = the whole graph)
            return self.model(x.squeeze(1), self.adj).unsqueeze(1)
        return self.model(x, self.adj)


def _spiking(conv: str):
    def build(in_features: int, num_classes: int, **kw: Any) -> SpikingGraphNet:
        return SpikingGraphNet(in_features, num_classes, conv=conv, **kw)

    build.__name__ = f"spiking_{conv}"
    build.__doc__ = f"Spiking {conv.upper()} with STFN (see SpikingGraphNet)."
    return build


register_model("gcn", GCN, kinds=("graph",), from_spec=graph_args)
register_model("gat", GAT, kinds=("graph",), from_spec=graph_args)
register_model("cluster-gcn", ClusterGCN, kinds=("graph",), from_spec=graph_args)
register_model("spiking-gcn", _spiking("gcn"), kinds=("graph",), from_spec=graph_args)
register_model("spiking-gat", _spiking("gat"), kinds=("graph",), from_spec=graph_args)


def _mincut(in_features: int, num_classes: int, **kw: Any) -> nn.Module:
    from .mincut import MinCutNet

    return MinCutNet(in_features, num_classes, **kw)


_mincut.__doc__ = "MinCUT-pooling graph classifier (dense padded batches; see .mincut)."
register_model("mincut-net", _mincut, kinds=("graph",), from_spec=graph_args)


def _lowhigh(kind: str):
    def build(in_features: int, num_classes: int, **kw: Any) -> nn.Module:
        from .lowhigh import GNNLowHigh

        return GNNLowHigh(in_features, num_classes, kind=kind, **kw)

    build.__name__ = f"gnn_{kind}"
    build.__doc__ = (f"GNN-{kind.upper()}: MLP + {'low' if kind == 'lf' else 'high'}-pass "
                     "fitting-kernel propagation, propagation=closed|iter (see .lowhigh).")
    return build


def _layerwise(in_features: int, num_classes: int, **kw: Any) -> nn.Module:
    from .layerwise import LayerwiseGCN

    return LayerwiseGCN(in_features, num_classes, **kw)


_layerwise.__doc__ = "L-GCN: layer-wise trained GCN (train with --batching layerwise)."
register_model("layerwise-gcn", _layerwise, kinds=("graph",), from_spec=graph_args)
register_model("gnn-lf", _lowhigh("lf"), kinds=("graph",), from_spec=graph_args)
register_model("gnn-hf", _lowhigh("hf"), kinds=("graph",), from_spec=graph_args)
