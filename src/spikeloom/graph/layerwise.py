"""L-GCN: layer-wise GCN training (You, Chen, Wang, Shen, CVPR 2020, arXiv:2003.13606).

Aggregation (sparse, parameter-free) is done once per layer; each layer's transformation is then
trained as an MLP on i.i.d. mini-batches of node rows, greedily, layer after layer::

    H ← X_tr
    for l = 1..L:
        H ← Â_tr H                                # once, sparse
        train W_l (and the shared classifier Θ) on row batches: logits = ReLU(H_b W_l) Θ
        H ← ReLU(H W_l)                            # frozen from now on
    inference on the full graph: H ← X; H ← ReLU((Â H) W_l) for each l; logits = H Θ

``Â = D^(-1) A + I`` (``mean_self`` normalisation). ``inductive=True`` aggregates training
features over the graph induced by the training nodes (the paper's protocol); ``False`` over
the whole graph (transductive, e.g. Planetoid with 20 labels per class). One Adam optimiser
over all parameters, no biases, one classifier shared across layers (the ``l2_gcn`` code).
Memory during training depends on the batch size, not on the graph (after aggregation).
Each layer trains ``epochs`` epochs, or (``stop="controller"``) until L²-GCN's learned
stopping controller ends it (:mod:`.l2gcn`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data import Graph
from .norm import normalize

__all__ = ["LayerwiseGCN", "train_layerwise", "run_layerwise", "LayerwiseResult"]


class LayerwiseGCN(nn.Module):
    """``L`` bias-free transformations and a shared classifier; ``model(x, adj)`` is the
    full-graph inference path."""

    adj_norm = "mean_self"

    def __init__(self, in_features: int, num_classes: int, hidden: int = 16,
                 layers: int = 2) -> None:
        super().__init__()
        sizes = [in_features] + [hidden] * layers
        self.weights = nn.ModuleList(nn.Linear(a, b, bias=False)
                                     for a, b in zip(sizes[:-1], sizes[1:]))
        self.classifier = nn.Linear(hidden, num_classes, bias=False)

    def forward(self, x: Tensor, adj) -> Tensor:
        for w in self.weights:
            x = F.relu(w(adj @ x))
        return self.classifier(x)

    def layer_logits(self, h: Tensor, layer: int) -> Tensor:
        """Training logits of layer ``layer`` on its aggregated input rows ``h``."""
        return self.classifier(F.relu(self.weights[layer](h)))


@dataclass
class LayerwiseResult:
    model: LayerwiseGCN
    losses: list[list[float]]  # per layer, per epoch: mean training loss

    @property
    def epochs_per_layer(self) -> list[int]:
        return [len(x) for x in self.losses]


#: ``decide(layer, losses of this layer so far) -> stop now?`` (called after every epoch)
StopRule = Callable[[int, list[float]], bool]


def run_layerwise(model: LayerwiseGCN, h: Tensor, adj, rows: Tensor, y: Tensor,
                  opt: torch.optim.Optimizer, gen: torch.Generator, batch_size: int,
                  decide: StopRule) -> list[list[float]]:
    """Greedy layer-wise training of ``model`` (module docstring); ``decide`` ends each layer.

    Returns the mean training loss of every epoch, per layer.
    """
    losses = []
    for layer, w in enumerate(model.weights):
        h = (adj @ h).detach()  # aggregation, once per layer
        feats = h[rows]
        layer_losses: list[float] = []
        while True:
            order = torch.randperm(len(rows), generator=gen)
            tot = 0.0
            for s in range(0, len(rows), batch_size):
                b = order[s:s + batch_size]
                loss = F.cross_entropy(model.layer_logits(feats[b], layer), y[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
                tot += float(loss.detach()) * len(b)
            layer_losses.append(tot / len(rows))
            if decide(layer, layer_losses):
                break
        losses.append(layer_losses)
        with torch.no_grad():
            h = F.relu(w(h))
    return losses


def train_layerwise(graph: Graph, hidden: int = 16, layers: int = 2, epochs: int = 80,
                    batch_size: int = 256, lr: float = 5e-3, seed: int = 0,
                    inductive: bool = True, stop: str = "fixed",
                    controller: Any = None) -> LayerwiseResult:
    """Train an L-GCN on ``graph``'s training nodes (see the module docstring).

    Args:
        stop: ``"fixed"`` (``epochs`` epochs per layer) or ``"controller"`` (L²-GCN: a learned
            controller ends each layer, :mod:`.l2gcn`; ``epochs`` is then unused).
        controller: for ``stop="controller"``, a :class:`~spikeloom.graph.l2gcn.ControllerStop`
            (``None``: one is trained first with :func:`~spikeloom.graph.l2gcn.train_controller`
            on this graph, same sizes and seed).
    """
    if stop not in ("fixed", "controller"):
        raise ValueError(f"stop must be 'fixed' or 'controller', got {stop!r}")
    if stop == "controller" and controller is None:
        from .l2gcn import train_controller

        controller = train_controller(graph, hidden=hidden, layers=layers, lr=lr, seed=seed)
    torch.manual_seed(seed)
    train_nodes = graph.nodes("train")
    if inductive:
        sub = graph.subgraph(train_nodes)
        h = sub.x
        adj = normalize(sub.edge_index, sub.num_nodes, "mean_self")
        rows, y = torch.arange(sub.num_nodes), sub.y
    else:
        h = graph.x
        adj = normalize(graph.edge_index, graph.num_nodes, "mean_self")
        rows, y = train_nodes, graph.y[train_nodes]
    model = LayerwiseGCN(graph.num_features, graph.num_classes, hidden, layers)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    decide = controller.rule() if stop == "controller" else \
        (lambda layer, ls: len(ls) >= epochs)
    return LayerwiseResult(model, run_layerwise(model, h, adj, rows, y, opt, g, batch_size,
                                                decide))
