"""L²-GCN's learned stopping controller for layer-wise GCN training (spec B11).

You, Chen, Wang, Shen, CVPR 2020 (arXiv:2003.13606). Instead of a fixed number of epochs per
layer, a small recurrent policy decides every ``decision_step`` epochs whether the current
layer has trained enough:

* :class:`StopController` — ``LSTMCell(8, 8)``; its input is ``0.1·(loss − loss_0 + 1)`` (the
  current training loss against the episode's first) and ``0.1·one-hot(layer)`` (``L + 1``
  values) concatenated with an embedding (``7 − L`` values) of (decision index, previous
  action); one linear head per decision index gives the logits of {continue, stop}.
* :func:`train_controller` — REINFORCE over ``episodes`` episodes: each runs full-batch
  layer-wise training of a fresh network on (up to) ``nodes`` training nodes with the
  controller sampling its actions; cost ``R = final loss + time_ratio · total epochs``,
  baseline ``b ← 0.9·b + 0.1·R`` (``b₀ = 0.3``), controller loss ``Σ log π(a) · (R − b)``
  (Adam, lr 0.05). The first ``warmup`` episodes take scripted actions (a random stop
  decision per layer) and train the policy on them.
* Deployment (:class:`ControllerStop`): stop a layer once ``p(stop) ≥ threshold`` (the mean
  stop probability seen in training) after at least ``min_epochs`` epochs, or at
  ``max_epochs``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data import Graph
from .layerwise import LayerwiseGCN, run_layerwise
from .norm import normalize

__all__ = ["StopController", "ControllerStop", "train_controller"]


class StopController(nn.Module):
    """The stopping policy (see the module docstring)."""

    def __init__(self, layers: int, max_decisions: int) -> None:
        super().__init__()
        if not 1 <= layers <= 6:
            raise ValueError(f"the L²-GCN controller handles 1..6 layers (8 inputs), got {layers}")
        self.layers, self.max_decisions = layers, max_decisions
        self.cell = nn.LSTMCell(8, 8)
        self.embed = nn.Embedding(2 * max_decisions, 7 - layers)
        self.heads = nn.ModuleList(nn.Linear(8, 2) for _ in range(max_decisions))

    def forward(self, loss: float, loss0: float, layer: int, decision: int, prev_action: int,
                state: tuple[Tensor, Tensor] | None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Logits ``[2]`` of (continue, stop) at decision ``decision``; the new LSTM state."""
        d = min(decision, self.max_decisions - 1)
        feat = torch.zeros(1, self.layers + 1)
        feat[0, 0] = 0.1 * (loss - loss0 + 1.0)
        feat[0, 1 + layer] = 0.1
        emb = self.embed(torch.tensor([2 * d + prev_action]))
        h, c = self.cell(torch.cat([feat, emb], 1), state)
        return self.heads[d](h)[0], (h, c)


class _Episode:
    """The controller's decisions in one layer-wise run (``decide`` for :func:`run_layerwise`).

    ``act(p_stop, decision, layer) -> action`` chooses; log-probabilities and stop
    probabilities are recorded for training.
    """

    def __init__(self, controller: StopController, decision_step: int, min_epochs: int,
                 max_epochs: int, act: Callable[[Tensor, int, int], int]) -> None:
        self.c, self.step, self.min, self.max, self.act = (controller, decision_step,
                                                          min_epochs, max_epochs, act)
        self.state: tuple[Tensor, Tensor] | None = None
        self.loss0: float | None = None
        self.decision, self.prev = 0, 0
        self.logps: list[Tensor] = []
        self.p_stops: list[float] = []

    def __call__(self, layer: int, losses: list[float]) -> bool:
        if self.loss0 is None:
            self.loss0 = losses[0]
        n = len(losses)
        if n >= self.max:
            return True
        if n % self.step:
            return False
        with torch.set_grad_enabled(self.c.training):
            logits, self.state = self.c(losses[-1], self.loss0, layer, self.decision,
                                        self.prev, self.state)
        logp = F.log_softmax(logits, -1)
        p_stop = logp[1].exp()
        a = self.act(p_stop, self.decision, layer)
        self.logps.append(logp[a])
        self.p_stops.append(float(p_stop.detach()))
        self.decision, self.prev = self.decision + 1, a
        return bool(a) and n >= self.min


@dataclass
class ControllerStop:
    """A trained controller and its deployment rule."""

    controller: StopController
    threshold: float
    decision_step: int = 10
    min_epochs: int = 35
    max_epochs: int = 95

    def rule(self) -> Callable[[int, list[float]], bool]:
        """A fresh stop rule for :func:`~spikeloom.graph.layerwise.run_layerwise`."""
        self.controller.eval()
        return _Episode(self.controller, self.decision_step, self.min_epochs, self.max_epochs,
                        lambda p, d, layer: int(float(p) >= self.threshold))


def train_controller(graph: Graph, hidden: int = 16, layers: int = 2, episodes: int = 50,
                     warmup: int = 10, nodes: int = 1024, decision_step: int = 10,
                     min_epochs: int = 35, max_epochs: int = 95, time_ratio: float = 1e-4,
                     lr: float = 5e-3, controller_lr: float = 0.05,
                     seed: int = 0) -> ControllerStop:
    """Train the stopping controller by REINFORCE on ``graph`` (module docstring).

    ``lr`` is the layer-wise networks' learning rate; episodes train full-batch on the
    subgraph induced by up to ``nodes`` random training nodes.
    """
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    per_layer = -(-max_epochs // decision_step)
    ctrl = StopController(layers, per_layer * layers)
    opt_c = torch.optim.Adam(ctrl.parameters(), lr=controller_lr)
    base, p_seen = 0.3, []
    ctrl.train()
    train_nodes = graph.nodes("train")
    for ep in range(episodes):
        pick = train_nodes[torch.randperm(len(train_nodes), generator=gen)[:nodes]]
        sub = graph.subgraph(pick)
        adj = normalize(sub.edge_index, sub.num_nodes, "mean_self")
        net = LayerwiseGCN(graph.num_features, graph.num_classes, hidden, layers)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        if ep < warmup:  # scripted: stop at a random decision of each layer
            stops = torch.randint(1, per_layer + 1, (layers,), generator=gen).tolist()
            first = [0] * layers

            def act(p, d, layer, stops=stops, first=first):
                first[layer] += 1
                return int(first[layer] >= stops[layer])
        else:
            def act(p, d, layer):
                return int(torch.rand((), generator=gen) < p)
        episode = _Episode(ctrl, decision_step, 0, max_epochs, act)
        losses = run_layerwise(net, sub.x, adj, torch.arange(sub.num_nodes), sub.y, opt, gen,
                               sub.num_nodes, episode)
        cost = losses[-1][-1] + time_ratio * sum(len(x) for x in losses)
        p_seen += episode.p_stops
        if episode.logps:
            loss_c = torch.stack(episode.logps).sum() * (cost - base)
            opt_c.zero_grad()
            loss_c.backward()
            opt_c.step()
        base = 0.9 * base + 0.1 * cost
    threshold = sum(p_seen) / max(len(p_seen), 1)
    return ControllerStop(ctrl, threshold, decision_step, min_epochs, max_epochs)
