"""L-GCN (spec B11): one layer equals an MLP on ÂX; the offline pipeline equals inference."""

from __future__ import annotations

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
