"""L-GCN (spec B11): one layer equals an MLP on ÂX; the offline pipeline equals inference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from spikeloom.graph import normalize
from spikeloom.graph.layerwise import train_layerwise
from spikeloom.graph.synthetic import sbm_graph


def _graph():
    return sbm_graph(300, blocks=3, avg_degree=6, features=8, feature_noise=1.5, seed=5)


def test_one_layer_equals_mlp_on_aggregated_features():
    g = _graph()
    res = train_layerwise(g, hidden=8, layers=1, epochs=5, batch_size=64, seed=3,
                          inductive=False)
    # the same training by hand: a 1-hidden-layer MLP on Â X, same seeds and batches
    torch.manual_seed(3)
    from spikeloom.graph.layerwise import LayerwiseGCN

    ref = LayerwiseGCN(8, 3, 8, 1)
    opt = torch.optim.Adam(ref.parameters(), lr=5e-3)
    gen = torch.Generator().manual_seed(3)
    rows = g.nodes("train")
    feats = (normalize(g.edge_index, 300, "mean_self") @ g.x)[rows]
    for _ in range(5):
        order = torch.randperm(len(rows), generator=gen)
        for s in range(0, len(rows), 64):
            b = order[s:s + 64]
            loss = F.cross_entropy(ref.classifier(F.relu(ref.weights[0](feats[b]))),
                                   g.y[rows][b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    for a, b in zip(res.model.parameters(), ref.parameters()):
        assert torch.equal(a, b)


def test_layerwise_pipeline_equals_full_graph_inference():
    g = _graph()
    g.masks["train"] = torch.ones(300, dtype=torch.bool)  # training graph = whole graph
    res = train_layerwise(g, hidden=8, layers=3, epochs=3, batch_size=100, seed=0)
    m = res.model
    adj = normalize(g.edge_index, 300, "mean_self")
    h = g.x
    for w in m.weights:  # the offline, layer-by-layer feature pipeline
        h = F.relu(w(adj @ h))
    with torch.no_grad():
        assert (m.classifier(h) - m(g.x, adj)).abs().max() < 1e-6
    assert all(layer[-1] < layer[0] for layer in res.losses)


def test_l2gcn_controller_shapes_and_layer_limit():
    from spikeloom.graph.l2gcn import StopController

    c = StopController(layers=2, max_decisions=4)
    logits, (h, cc) = c(0.9, 1.0, 1, 6, 1, None)  # decision index past the heads: last head
    assert logits.shape == (2,) and h.shape == cc.shape == (1, 8)
    with pytest.raises(ValueError, match="1..6 layers"):
        StopController(layers=7, max_decisions=4)


def test_l2gcn_deployment_rule_min_and_max_epochs():
    from spikeloom.graph.l2gcn import ControllerStop, StopController

    g = _graph()
    ctrl = StopController(layers=2, max_decisions=20)
    # threshold 0: stop at the first decision (every 10 epochs) once 35 epochs are done
    always = ControllerStop(ctrl, 0.0, decision_step=10, min_epochs=35, max_epochs=95)
    res = train_layerwise(g, hidden=8, layers=2, seed=1, stop="controller", controller=always)
    assert res.epochs_per_layer == [40, 40]
    never = ControllerStop(ctrl, 1.01, decision_step=10, min_epochs=35, max_epochs=95)
    res = train_layerwise(g, hidden=8, layers=2, seed=1, stop="controller", controller=never)
    assert res.epochs_per_layer == [95, 95]


def test_l2gcn_controller_learns_the_time_cost():
    """REINFORCE: charging each epoch raises the stop probability, paying for it lowers it."""
    from spikeloom.graph.l2gcn import train_controller

    g = _graph()
    kw = dict(hidden=8, layers=2, episodes=40, warmup=5, decision_step=5, min_epochs=5,
              max_epochs=40, lr=0.01, seed=2)
    long_runs = train_controller(g, time_ratio=-0.05, **kw)
    short_runs = train_controller(g, time_ratio=0.05, **kw)
    assert long_runs.threshold < 0.4 < 0.7 < short_runs.threshold
    res = train_layerwise(g, hidden=8, layers=2, seed=2, lr=0.01, inductive=False,
                          stop="controller", controller=short_runs)
    assert all(5 <= e <= 40 for e in res.epochs_per_layer)
