"""``--batching sage | saint | layerwise``: batch construction, the training step, the CLI."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from spikeloom.cli import main as cli_main
from spikeloom.graph.batching import (
    LayerBatch,
    _SaintBatch,
    parse_fanouts,
    sage_subgraph,
    saint_count,
)
from spikeloom.graph.synthetic import sbm_graph
from spikeloom.graph.training import GraphSplit, node_step
from spikeloom.models import build_model
from spikeloom.train import DistInfo


@pytest.fixture(scope="module")
def graph():
    return sbm_graph(300, blocks=3, avg_degree=6, features=8, feature_noise=1.0, seed=1)


def _cfg(batching, **kw):
    base = dict(batching=batching, parts=1, clusters_per_batch=1, partition="random",
                diag_lambda=0.0, fanouts="3,2", num_roots=20, walk_length=2,
                saint_presample=40, seed=0, layer_epochs=1, epochs=4)
    base.update(kw)
    return SimpleNamespace(**base)


def test_parse_fanouts():
    assert parse_fanouts("10, 5") == [10, 5]
    for bad in ("", "3,0", "a", "2,,1"):
        with pytest.raises(Exception, match="fanouts must be"):
            parse_fanouts(bad)


def test_sage_subgraph_samples_real_edges_targets_first(graph):
    rowptr, col = graph.csr()
    targets = torch.tensor([5, 17, 40])
    nodes, ei = sage_subgraph(rowptr, col, targets, [2, 3], torch.Generator().manual_seed(0))
    assert torch.equal(nodes[:3], targets) and len(torch.unique(nodes)) == len(nodes)
    real = set(map(tuple, graph.edge_index.t().tolist()))
    glob = nodes[ei]
    assert all(tuple(e) in real for e in glob.t().tolist())
    # a target receives at most 2 sampled edges at hop 1 and 3 more at hop 2 (the hop-2
    # targets are all nodes so far, the original targets included)
    into_targets = torch.bincount(ei[1][ei[1] < 3], minlength=3)
    assert int(into_targets.max()) <= 2 + 3 and int(into_targets.min()) >= 1


def test_saint_weights_estimate_the_training_set_without_bias(graph):
    split = GraphSplit(graph, "train")
    split.configure(_cfg("saint", num_roots=30, saint_presample=400))
    assert len(split) == saint_count(300, 30, 2) == 4
    loader = split.graph_loader([np.array([i]) for i in range(300)], DistInfo(), seed=3,
                                cfg=_cfg("saint", num_roots=30, saint_presample=400))
    # Σ_{train v in G_s} w_v estimates Σ_v 1/N_train = 1; averaged over 300 fresh subgraphs
    tot = [float(b.weight.sum()) for b in loader]
    assert abs(np.mean(tot) - 1.0) < 0.1
    b = next(iter(loader))
    assert b.samples == 1 and len(b.weight) == len(b.target)


def test_saint_adjacency_is_the_full_one_restricted_and_divided_by_alpha(graph):
    split = GraphSplit(graph, "train")
    split.configure(_cfg("saint"))
    s = split.saint_sampler()
    p1, p2 = s._walk_nodes(), s._walk_nodes()
    a = _SaintBatch(split, s, [p1, p2]).adj("gcn", 0.0).to_dense()
    full = split.full_adj("gcn", 0.0).to_dense()
    counts = s.adj.with_values(s.edge_count).to_dense()  # C_{v,u} (rows = receivers)
    n1 = len(p1)
    assert a.shape == (n1 + len(p2),) * 2
    assert torch.all(a[:n1, n1:] == 0) and torch.all(a[n1:, :n1] == 0)  # block-diagonal
    for nodes, blk in ((p1, a[:n1, :n1]), (p2, a[n1:, n1:])):
        c = counts[nodes][:, nodes]
        alpha = torch.where(c > 0, c / s.node_count[nodes].clamp_min(1)[:, None], 1.0)
        ref = full[nodes][:, nodes].double() / alpha
        assert torch.allclose(blk.double(), ref, atol=1e-6)


def test_layerwise_trains_one_layer_per_epoch(graph):
    split = GraphSplit(graph, "train")
    torch.manual_seed(0)
    model = build_model("layerwise-gcn", split.spec, hidden=8, layers=2)
    rows = split.nodes[:32]
    for epoch, trained in ((0, 0), (1, 1), (3, 1)):
        split.configure(_cfg("layerwise"))
        model.zero_grad(set_to_none=True)
        out = node_step(model, LayerBatch(split, rows, epoch, 1, 4), "ce", torch.device("cpu"))
        out.loss_sum.backward()
        grads = [w.weight.grad is not None for w in model.weights]
        assert grads == [i == trained for i in range(2)] and out.n == 32
    # the layer input of layer 1 is Â·ReLU(W_0 Â x) of the whole graph
    adj = split.full_adj("mean_self", 0.0)
    h1 = split.layer_input(model, 1, torch.device("cpu"))
    with torch.no_grad():
        ref = adj @ torch.relu(model.weights[0](adj @ split.x))
    assert torch.allclose(h1, ref, atol=1e-6)


@pytest.mark.parametrize("batching,extra", [
    ("sage", ["--fanouts", "5,3", "--batch-size", "70"]),
    ("saint", ["--num-roots", "200", "--walk-length", "2", "--saint-presample", "10"]),
    ("layerwise", ["--layer-epochs", "1", "--batch-size", "70"]),
])
def test_cli_trains_cora_with_batching(shared_data, tmp_path, batching, extra):
    out = tmp_path / "run"
    model = "layerwise-gcn" if batching == "layerwise" else "gcn"
    args = ["train", "--dataset", "cora", "--root", str(shared_data / "planetoid"), "--model",
            model, "--batching", batching, *extra, "--epochs", "2", "--lr", "0.01",
            "--no-progress", "--no-plots", "--threads", "1", "--out", str(out)]
    assert cli_main(args) == 0
    final = json.loads((out / "final.json").read_text())
    assert final["epochs"] == 2 and final["test_n"] == 1000
    assert (out / "cost.json").exists()
    hist = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(hist) == 2 and all(np.isfinite(h["train_loss"]) for h in hist)
    # resume: a finished run continues to more epochs through the same run directory
    assert cli_main(["train", "--resume", str(out), "--epochs", "3", "--no-progress"]) == 0
    hist = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(hist) == 3


@pytest.mark.parametrize("args,msg", [
    (["--batching", "sage", "--fanouts", "0"], "fanouts must be"),
    (["--batching", "saint", "--num-roots", "0"], "num_roots and saint_presample"),
    (["--batching", "saint", "--walk-length", "-1"], "walk_length >= 0"),
    (["--batching", "layerwise", "--layer-epochs", "-2"], "layer_epochs must be"),
    (["--batching", "minibatch"], "batching must be one of"),
    (["--batching", "layerwise", "--model", "gcn", "--epochs", "1"], "needs a layer-wise model"),
])
def test_cli_bad_batching_values_give_one_line_errors(shared_data, tmp_path, capsys, args,
                                                      msg):
    base = ["train", "--dataset", "cora", "--root", str(shared_data / "planetoid"),
            "--model", "layerwise-gcn", "--no-progress", "--no-plots", "--no-cost",
            "--threads", "1", "--out", str(tmp_path / "r")]
    assert cli_main(base + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert msg in err[0] and len(err) <= 2  # the message and the SPIKELOOM_DEBUG hint
