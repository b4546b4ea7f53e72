"""Graph datasets for the trainer: splits, batchings, the node-classification step.

``spikeloom train --dataset cora --root DIR --model spiking-gcn`` runs through the same
trainer as image tasks. A graph dataset split is a :class:`GraphSplit` (``spec.kind ==
"graph"``); it builds its own loaders (the trainer asks it through ``graph_loader``), the
spike-raster input (``raster_input``) and the cost-report input (``cost_inputs``).

The trainer's *samples* of a graph split are:

* ``batching="full"`` — labelled nodes of the split; every step runs the whole graph and takes
  the loss on the step's nodes (``batch_size`` ≥ the training nodes gives one step per epoch);
* ``batching="cluster"`` — Cluster-GCN clusters (:mod:`.cluster`): ``batch_size`` clusters per
  optimiser step (global, over processes); every ``clusters_per_batch`` of them form one
  induced subgraph (edges between them restored, adjacency normalised on the subgraph); a
  step's subgraphs are processed as one disjoint union. So 2 processes with ``batch_size =
  2·q`` compute exactly what 1 process computes with the same ``batch_size``.
* ``batching="sage"``, ``"saint"``, ``"layerwise"`` — GraphSAGE neighbour-sampled subgraphs
  (samples: training nodes), GraphSAINT random-walk subgraphs (samples: subgraphs) and L-GCN
  layer-wise training (samples: training nodes); see :mod:`.batching`.

Validation and test always run the full graph once (loss and accuracy on the split's nodes).
The loss is summed over a step's labelled nodes and divided by the step's samples (nodes for
``full``, clusters for ``cluster``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from ..datasets.spec import DataSpec
from ..errors import ConfigError
from ..train.losses import compute_loss, rate_of
from ..train.steps import STEPS, StepOutput
from .cluster import cached_partition, cluster_groups, induced_edges
from .data import Graph
from .norm import Adj, normalize

__all__ = ["GraphBatch", "GraphSplit", "node_step", "BATCHINGS", "BATCH_LOADERS"]


@dataclass
class GraphBatch:
    """One step's graph: features, labels, the nodes that carry the loss, its edges.

    The normalised adjacency is computed on demand for the model's normalisation
    (:meth:`adj`; by ``make_adj(kind, diag_lambda)`` when given, else by normalising
    ``edge_index``) and memoised in ``adj_cache`` (shared with the split for the full graph).
    ``weight`` (per target) weights the loss; the step then counts ``samples`` samples
    (GraphSAINT subgraphs) instead of the targets.
    """

    x: Tensor
    y: Tensor
    target: Tensor
    edge_index: Tensor
    diag_lambda: float = 0.0
    adj_cache: dict = field(default_factory=dict)
    weight: Tensor | None = None
    samples: int | None = None
    make_adj: Callable[[str, float], Adj] | None = None

    def adj(self, kind: str, device: torch.device) -> Adj:
        key = (kind, self.diag_lambda, str(device))
        if key not in self.adj_cache:
            a = self.make_adj(kind, self.diag_lambda) if self.make_adj is not None else \
                normalize(self.edge_index, self.x.shape[0], kind, self.diag_lambda)
            self.adj_cache[key] = a.to(device)
        return self.adj_cache[key]

    def predict(self, model: nn.Module, device: torch.device):
        """``(outputs, targets, labels, weights, samples)`` of the model on this batch."""
        adj = self.adj(getattr(_unwrap(model), "adj_norm", "gcn"), device)
        out = model(self.x.to(device, non_blocking=True), adj)
        w = None if self.weight is None else self.weight.to(device)
        return out, self.target.to(device), self.y.to(device), w, self.samples


def _unwrap(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)  # DistributedDataParallel


def node_step(model: nn.Module, batch: Any, loss: str, device: torch.device) -> StepOutput:
    """Node classification on one batch (loss on its targets only).

    ``batch.predict(model, device)`` gives ``(outputs, targets, labels, weights, samples)``
    (:class:`GraphBatch`, :class:`~spikeloom.graph.batching.LayerBatch`); with weights the
    loss and the accuracy are weighted sums and the step counts ``samples``.
    """
    out, t, y_all, w, samples = batch.predict(model, device)
    if len(t) == 0:  # a cluster without labelled nodes: no loss, but keep the graph (DDP)
        return StepOutput(out.sum() * 0.0, torch.zeros((), device=device), samples or 0)
    sel, y = rate_of(out)[t], y_all[t]
    if w is None:
        loss_sum = compute_loss(sel, y, loss, reduction="sum")
        return StepOutput(loss_sum, (sel.argmax(-1) == y).sum(), len(t))
    per = compute_loss(sel, y, loss, reduction="none")
    correct = ((sel.argmax(-1) == y).to(w.dtype) * w).sum()
    return StepOutput((per * w).sum(), correct.detach(), int(samples))


STEPS.register("graph", node_step)


class _Loader:
    """A list of batches with ``len`` (what the training loop iterates)."""

    def __init__(self, make, n: int) -> None:
        self.make, self.n = make, n

    def __iter__(self):
        return (self.make(i) for i in range(self.n))

    def __len__(self) -> int:
        return self.n


class GraphSplit(Dataset):
    """One split of a node-classification graph, as the trainer's dataset.

    Args:
        graph: the whole graph (shared by the three splits).
        split: ``"train"``, ``"val"`` or ``"test"``.
        features_norm: ``"row"`` (features divided by their row sum, as in the GCN code),
            ``"none"``.
    """

    def __init__(self, graph: Graph, split: str, features_norm: str = "none") -> None:
        if features_norm not in ("row", "none"):
            raise ConfigError(f"features_norm must be 'row' or 'none', got {features_norm!r}")
        self.graph, self.split = graph, split
        self.x = graph.x
        if features_norm == "row":
            self.x = graph.x / graph.x.sum(1, keepdim=True).clamp_min(1e-12)
        self.nodes = graph.nodes(split)
        self.spec = DataSpec("graph", graph.num_classes, features=graph.num_features)
        self.full_cache: dict = {}
        self._batching: tuple | None = None
        self._csr: tuple[Tensor, Tensor] | None = None
        self.options: dict[str, Any] = {}
        self._memo: dict = {}  # full adjacencies, GraphSAINT sampler, layer inputs

    @property
    def labels(self):
        raise ConfigError("max_samples does not apply to graph datasets (a split is a set of "
                          "nodes of one graph); leave it unset")

    def __len__(self) -> int:
        if self.split == "train" and self._batching and self._batching[0] == "cluster":
            return self._batching[1]
        if self.split == "train" and self._batching and self._batching[0] == "saint":
            from .batching import saint_count

            return saint_count(self.graph.num_nodes, self.options["num_roots"],
                               self.options["walk_length"])
        return len(self.nodes)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        v = int(self.nodes[i])
        return self.x[v], int(self.graph.y[v])

    def configure(self, cfg: Any) -> None:
        """Read the batching settings of a :class:`~spikeloom.train.config.TrainConfig`."""
        batching = getattr(cfg, "batching", "full")
        if batching not in BATCH_LOADERS:
            raise ConfigError(f"batching must be one of {', '.join(BATCHINGS)}, got {batching!r}")
        self._batching = (batching, int(getattr(cfg, "parts", 1)),
                          int(getattr(cfg, "clusters_per_batch", 1)),
                          getattr(cfg, "partition", "metis"), float(getattr(cfg, "diag_lambda",
                                                                                0.0)))
        self.options = {k: getattr(cfg, k, v) for k, v in _OPTION_DEFAULTS.items()}

    @property
    def diag_lambda(self) -> float:
        return self._batching[4] if self._batching else 0.0

    def csr(self) -> tuple[Tensor, Tensor]:
        """The whole graph's ``(rowptr, col)`` (rows = receivers), computed once."""
        if self._csr is None:
            self._csr = self.graph.csr()
        return self._csr

    def full_adj(self, kind: str, lam: float) -> Adj:
        """The whole graph's normalised adjacency ``kind`` (memoised)."""
        key = ("adj", kind, lam)
        if key not in self._memo:
            self._memo[key] = normalize(self.graph.edge_index, self.graph.num_nodes, kind, lam)
        return self._memo[key]

    def saint_sampler(self):
        """The GraphSAINT sampler of this graph (pre-sampled once, seeded by the options)."""
        from .batching import saint_adj_structure
        from .samplers import SaintRW

        if "saint" not in self._memo:
            o = self.options
            raw = saint_adj_structure(self.graph.edge_index, self.graph.num_nodes)
            self._memo["saint"] = SaintRW(raw, o["num_roots"], o["walk_length"],
                                          o["saint_presample"],
                                          torch.Generator().manual_seed(o["seed"]))
        return self._memo["saint"]

    def layer_input(self, model: nn.Module, layer: int, device: torch.device) -> Tensor:
        """L-GCN: layer ``layer``'s aggregated input over the whole graph, computed once per
        layer (the earlier layers are frozen by then)."""
        from .batching import layer_input

        key = ("layer", id(model), layer)
        if key not in self._memo:
            self._memo = {k: v for k, v in self._memo.items() if k[0] != "layer"}
            adj = self.full_adj(getattr(model, "adj_norm", "mean_self"), self.diag_lambda)
            self._memo[key] = layer_input(model, self.x.to(device), adj.to(device), layer)
        return self._memo[key]

    def _full_batch(self, target: Tensor) -> GraphBatch:
        lam = self._batching[4] if self._batching else 0.0
        return GraphBatch(self.x, self.graph.y, target, self.graph.edge_index, lam,
                          self.full_cache)

    def _cluster_batch(self, member_order: Tensor, starts: Tensor, groups: list[Tensor],
                       lam: float) -> GraphBatch:
        rowptr, col = self.csr()
        xs, ys, tg, eis, off = [], [], [], [], 0
        train = self.graph.masks["train"]
        for grp in groups:
            nodes = torch.cat([member_order[starts[c]:starts[c + 1]] for c in grp.tolist()])
            eis.append(induced_edges(rowptr, col, nodes, self.graph.num_nodes) + off)
            xs.append(self.x[nodes])
            ys.append(self.graph.y[nodes])
            tg.append(torch.nonzero(train[nodes], as_tuple=True)[0] + off)
            off += len(nodes)
        return GraphBatch(torch.cat(xs), torch.cat(ys), torch.cat(tg), torch.cat(eis, 1), lam)

    def graph_loader(self, batches: list[np.ndarray], d: Any, seed: int = 0,
                     cfg: Any = None) -> _Loader:
        """This rank's batches (see the module docstring); ``seed`` varies per epoch."""
        if cfg is not None:
            self.configure(cfg)
        batching = self._batching[0] if self._batching else "full"
        mine = [np.array_split(b, d.world)[d.rank] for b in batches]
        if self.split != "train":  # one full-graph pass over all of this rank's nodes
            idx = np.concatenate(mine) if mine else np.zeros(0, np.int64)
            nodes = self.nodes[torch.from_numpy(idx.astype(np.int64))]
            return _Loader(lambda i: self._full_batch(nodes), 1 if len(nodes) else 0)
        if batching == "layerwise" and d.world > 1:
            raise ConfigError("--batching layerwise runs in one process (its layer step "
                              "bypasses DistributedDataParallel); drop torchrun")
        return BATCH_LOADERS[batching](self, mine, seed, cfg)

    def _full_loader(self, mine: list[np.ndarray], seed: int, cfg: Any) -> _Loader:
        return _Loader(lambda i: self._full_batch(
            self.nodes[torch.from_numpy(mine[i].astype(np.int64))]), len(mine))

    def _cluster_loader(self, mine: list[np.ndarray], seed: int, cfg: Any) -> _Loader:
        _, parts, q, method, lam = self._batching
        key = ("partition", parts, method)
        if key not in self._memo:  # once per split (not once per epoch)
            self._memo[key] = cached_partition(self.graph, parts, method, seed=1,
                                               cache_dir=getattr(cfg, "partition_cache", None))
        member = self._memo[key]
        order = torch.argsort(member, stable=True)
        starts = torch.zeros(parts + 1, dtype=torch.long)
        starts[1:] = torch.cumsum(torch.bincount(member, minlength=parts), 0)
        perm = torch.cat(cluster_groups(parts, parts, seed))  # this epoch's cluster order

        def make(i: int) -> GraphBatch:
            clusters = perm[torch.from_numpy(mine[i].astype(np.int64))]
            groups = [clusters[j:j + q] for j in range(0, len(clusters), q)]
            return self._cluster_batch(order, starts, groups, lam)

        return _Loader(make, len(mine))

    def raster_input(self, model: nn.Module, device: torch.device):
        """``(module, x)`` for :func:`spikeloom.train.plots.plot_raster` (node 0's spikes)."""
        from .models import GraphBound

        adj = self._full_batch(self.nodes).adj(getattr(model, "adj_norm", "gcn"), device)
        T = getattr(model, "T", 1)
        x = self.x.to(device).unsqueeze(0).expand(T, *self.x.shape)
        return GraphBound(model, adj, sample_axis=True), x

    def cost_inputs(self, model: nn.Module, device: torch.device) -> tuple[nn.Module, list]:
        """``(module, batches)`` for :func:`spikeloom.cost.measure_cost` on the full graph.

        Spiking models get their spike train ``[T, N, F]`` (their own encoding), ANN models
        ``[1, N, F]``; costs are per node.
        """
        from .models import GraphBound
        from .spiking import encode_nodes

        adj = self._full_batch(self.nodes).adj(getattr(model, "adj_norm", "gcn"), device)
        T = getattr(model, "T", None)
        x = self.x.to(device)
        if T is None:
            seq = x.unsqueeze(0)
        else:
            seq = encode_nodes(x, T, getattr(model, "encoding", "repeat"), False)
        return GraphBound(model, adj), [seq]


def _sampled(name: str):
    def load(split: GraphSplit, mine: list[np.ndarray], seed: int, cfg: Any) -> _Loader:
        from . import batching

        return getattr(batching, f"{name}_loader")(split, mine, seed, cfg)

    return load


#: batching name -> ``(split, this rank's batches, seed, cfg) -> loader`` of training batches
BATCH_LOADERS: dict[str, Callable] = {
    "full": GraphSplit._full_loader, "cluster": GraphSplit._cluster_loader,
    "sage": _sampled("sage"), "saint": _sampled("saint"), "layerwise": _sampled("layerwise"),
}
BATCHINGS: tuple[str, ...] = tuple(BATCH_LOADERS)

#: batching options read from the config (name -> default when absent)
_OPTION_DEFAULTS: dict[str, Any] = {"fanouts": "10,10", "num_roots": 300, "walk_length": 2,
                                    "saint_presample": 50, "seed": 0, "layer_epochs": 0}


def graph_split(name: str, split: str, root: str | None = None, features_norm: str | None = None,
                **kwargs: Any) -> GraphSplit:
    """Split ``split`` of graph dataset ``name`` (``cora``, ``citeseer``, ``pubmed``, ``sbm``).

    Planetoid graphs need ``root`` (the folder of the ``ind.<name>.*`` files); ``sbm`` takes
    the keyword arguments of :func:`spikeloom.graph.synthetic.sbm_graph` and no root.
    Features are row-normalised for Planetoid graphs unless ``features_norm="none"``.
    """
    if name == "sbm":
        from .synthetic import sbm_graph

        if root is not None:
            raise ConfigError("dataset 'sbm' is generated (seeded); it takes no --root")
        return GraphSplit(sbm_graph(**kwargs), split, features_norm or "none")
    from .planetoid import PLANETOID_FILES, load_planetoid

    if root is None:
        raise ConfigError(f"dataset {name!r} needs --root DIR holding the Planetoid files "
                          + ", ".join(f"ind.{name}.{k}" for k in PLANETOID_FILES)
                          + ". spikeloom never downloads data.")
    if kwargs:
        raise ConfigError(f"dataset {name!r} takes only features_norm, got {sorted(kwargs)}")
    return GraphSplit(load_planetoid(root, name), split, features_norm or "row")
