"""Sampled and layer-wise batchings of a graph split for the trainer (``--batching``).

``full`` and ``cluster`` live in :mod:`.training`; this module adds, each as a function
``(split, this rank's batches, seed, cfg) -> loader`` registered in
:data:`spikeloom.graph.training.BATCH_LOADERS`:

* ``sage`` — GraphSAGE neighbour sampling as a subgraph (what PyG's ``NeighborLoader``
  returns): each batch's training nodes are the targets, ``--fanouts f1,f2,...`` neighbours
  are drawn per node and hop (:func:`~spikeloom.graph.samplers.sage_block`; ``f1`` next to
  the targets) and the model runs on the sampled nodes with the sampled edges (adjacency
  normalised on that subgraph); the loss is taken on the targets.
* ``saint`` — GraphSAINT random-walk subgraphs (:class:`~spikeloom.graph.samplers.SaintRW`:
  ``--num-roots`` walks of ``--walk-length`` steps, ``--saint-presample`` subgraphs to
  estimate the counts): the subgraph's adjacency is the *full graph's* normalised adjacency
  restricted to it, each entry divided by ``α_{u,v} = C_{u,v}/C_v``, and the loss of training
  node ``v`` is weighted by ``1/(λ_v·N_train)``, ``λ_v = C_v/M``, so a subgraph's loss
  estimates the mean training loss without bias. The trainer's samples are the subgraphs of
  an epoch (``ceil(N / (roots·(length+1)))``, ``batch_size`` of them per step); the logged
  training loss and accuracy are the same weighted estimates averaged over subgraphs.
* ``layerwise`` — L-GCN (:mod:`.layerwise`, spec B11) through the trainer: the model (e.g.
  ``layerwise-gcn``) trains one layer at a time for ``--layer-epochs`` epochs each (0: the
  run's epochs split evenly), on mini-batches of training-node rows of that layer's
  aggregated input ``Â·H_{l-1}``, computed once per layer with the earlier layers frozen
  (transductive: aggregated over the whole graph). Validation runs the full-graph inference
  path, so epochs before the last layer validate a partly trained network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .data import coalesce_edges
from .norm import Adj, edges_to_csr
from .samplers import SaintRW, _row_slices, sage_block

__all__ = ["parse_fanouts", "sage_loader", "saint_loader", "layerwise_loader", "LayerBatch",
           "sage_subgraph", "saint_count", "layer_input", "saint_adj_structure"]


def parse_fanouts(text: str) -> list[int]:
    """``"10,5"`` -> ``[10, 5]`` (positive integers, nearest hop first)."""
    try:
        out = [int(v) for v in str(text).split(",")]
    except ValueError:
        out = []
    if not out or min(out) < 1:
        raise ConfigError(f"fanouts must be comma-separated integers >= 1 (e.g. 10,5), got "
                          f"{text!r}")
    return out


def _gen(seed: int, i: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(i))


def sage_subgraph(rowptr: Tensor, col: Tensor, targets: Tensor, fanouts: list[int],
                  gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """``(nodes, edge_index)``: the sampled nodes (``targets`` first) and the sampled edges
    ``src -> dst`` in local ids (coalesced), one GraphSAGE draw per hop."""
    nodes, srcs, dsts = targets, [], []
    for f in fanouts:
        block, src = sage_block(rowptr, col, nodes, f, gen)
        srcs.append(src[block.col])
        dsts.append(nodes[block.rows()])
        nodes = src  # src lists the previous nodes first, then the new neighbours
    order = torch.argsort(nodes)
    pos = order[torch.searchsorted(nodes[order], torch.cat(srcs + dsts))]
    m = sum(len(s) for s in srcs)
    return nodes, coalesce_edges(torch.stack([pos[:m], pos[m:]]), len(nodes))


def sage_loader(split: Any, mine: list[np.ndarray], seed: int, cfg: Any):
    """GraphSAGE subgraph batches (see the module docstring)."""
    from .training import GraphBatch, _Loader

    fanouts = parse_fanouts(split.options["fanouts"])
    rowptr, col = split.csr()

    def make(i: int) -> GraphBatch:
        targets = split.nodes[torch.from_numpy(mine[i].astype(np.int64))]
        nodes, ei = sage_subgraph(rowptr, col, targets, fanouts, _gen(seed, i))
        return GraphBatch(split.x[nodes], split.graph.y[nodes], torch.arange(len(targets)), ei,
                          split.diag_lambda)

    return _Loader(make, len(mine))


def saint_count(num_nodes: int, roots: int, length: int) -> int:
    """Subgraphs per epoch: about every node once (``ceil(N / (roots·(length+1)))``)."""
    return max(1, math.ceil(num_nodes / (roots * (length + 1))))


@dataclass
class _SaintBatch:
    """The disjoint union of GraphSAINT subgraphs; adjacency built per normalisation."""

    split: Any
    sampler: SaintRW
    parts: list[Tensor]  # each subgraph's nodes (sorted global ids)

    def batch(self):
        from .training import GraphBatch

        nodes = torch.cat(self.parts)
        train = self.split.graph.masks["train"][nodes]
        target = torch.nonzero(train, as_tuple=True)[0]
        lam = (self.sampler.node_count[nodes[target]] / self.sampler.presample).clamp_min(
            1.0 / self.sampler.presample)
        weight = (1.0 / (lam * int(self.split.graph.masks["train"].sum()))).float()
        return GraphBatch(self.split.x[nodes], self.split.graph.y[nodes], target,
                          torch.zeros(2, 0, dtype=torch.long), self.split.diag_lambda,
                          weight=weight, samples=len(self.parts), make_adj=self.adj)

    def adj(self, kind: str, lam: float) -> Adj:
        """Full-graph ``kind`` adjacency restricted to each subgraph, entries divided by α."""
        full = self.split.full_adj(kind, lam)
        s = self.sampler
        raw = s.adj
        n = raw.num_rows
        raw_key = raw.rows() * n + raw.col
        rows_l, cols_l, vals, off = [], [], [], 0
        for nodes in self.parts:  # a loop over the step's subgraphs (a handful)
            inside = torch.zeros(n, dtype=torch.bool)
            inside[nodes] = True
            owner, pos = _row_slices(full.rowptr, nodes)
            keep = inside[full.col[pos]]
            r, c = nodes[owner[keep]], full.col[pos[keep]]
            k = r * n + c
            idx = torch.searchsorted(raw_key, k).clamp_max(len(raw_key) - 1)
            cnt = torch.where(raw_key[idx] == k, s.edge_count[idx], 0.0)
            alpha = torch.where(cnt > 0, cnt / s.node_count[r].clamp_min(1), 1.0)
            rows_l.append(torch.searchsorted(nodes, r) + off)
            cols_l.append(torch.searchsorted(nodes, c) + off)
            vals.append((full.val[pos[keep]].double() / alpha).float())
            off += len(nodes)
        rows, cols, val = torch.cat(rows_l), torch.cat(cols_l), torch.cat(vals)
        order = torch.argsort(rows * off + cols)
        return edges_to_csr(torch.stack([cols[order], rows[order]]), off, val[order])


def saint_loader(split: Any, mine: list[np.ndarray], seed: int, cfg: Any):
    """GraphSAINT random-walk subgraph batches (see the module docstring)."""
    from .training import _Loader

    sampler = split.saint_sampler()

    def make(i: int):
        sampler.gen = _gen(seed, i)
        parts = [sampler._walk_nodes() for _ in mine[i]]
        return _SaintBatch(split, sampler, parts).batch()

    return _Loader(make, len(mine))


class LayerBatch:
    """Rows of one layer's aggregated input for L-GCN training (see the module docstring)."""

    def __init__(self, split: Any, rows: Tensor, epoch: int, layer_epochs: int,
                 epochs: int) -> None:
        self.split, self.rows = split, rows
        self.epoch, self.layer_epochs, self.epochs = epoch, layer_epochs, epochs

    def predict(self, model: nn.Module, device: torch.device):
        """``(logits, targets, labels, weights, samples)`` as :meth:`GraphBatch.predict`."""
        from .training import _unwrap

        model = _unwrap(model)  # one process only (the layer path bypasses DDP's forward)
        if not hasattr(model, "layer_logits"):
            raise ConfigError(f"--batching layerwise needs a layer-wise model (layerwise-gcn); "
                              f"{type(model).__name__} has no layer_logits")
        depth = len(model.weights)
        per = self.layer_epochs or math.ceil(self.epochs / depth)
        layer = min(self.epoch // per, depth - 1)
        h = self.split.layer_input(model, layer, device)
        out = model.layer_logits(h[self.rows.to(device)], layer)
        t = torch.arange(len(self.rows), device=device)
        return out, t, self.split.graph.y[self.rows].to(device), None, None


def layerwise_loader(split: Any, mine: list[np.ndarray], seed: int, cfg: Any):
    """L-GCN batches; the epoch is ``seed - cfg.seed`` (the trainer seeds epochs so)."""
    from .training import _Loader

    epoch = int(seed) - int(getattr(cfg, "seed", 0))
    le, epochs = int(split.options["layer_epochs"]), int(getattr(cfg, "epochs", 1))
    return _Loader(lambda i: LayerBatch(
        split, split.nodes[torch.from_numpy(mine[i].astype(np.int64))], epoch, le, epochs),
        len(mine))


def layer_input(model: nn.Module, x: Tensor, adj: Adj, layer: int) -> Tensor:
    """``Â · H_{layer-1}`` with ``H_0 = x`` and the earlier layers' frozen weights."""
    h = x
    with torch.no_grad():
        for w in model.weights[:layer]:
            h = torch.relu(w(adj @ h))
        return adj @ h


def saint_adj_structure(edge_index: Tensor, num_nodes: int) -> Adj:
    """The raw adjacency (values 1, no self-loops) the random walks run on."""
    return edges_to_csr(coalesce_edges(edge_index, num_nodes), num_nodes)

