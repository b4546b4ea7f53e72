"""Cluster-GCN partitions and batches, the graph cost counter, graph runs of the trainer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from spikeloom.cli import main as cli_main
from spikeloom.cost import measure_cost
from spikeloom.graph import GraphBound, normalize
from spikeloom.graph import cluster as cl
from spikeloom.graph.layers import Aggregate
from spikeloom.graph.synthetic import sbm_graph
from spikeloom.graph.training import GraphSplit, node_step
from spikeloom.models import build_model
from spikeloom.train import DistInfo, TrainConfig, train


@pytest.fixture(scope="module")
def graph():
    return sbm_graph(400, blocks=4, avg_degree=8, features=12, feature_noise=1.5, seed=2)


@pytest.mark.parametrize("method", ["metis", "lp", "random"])
def test_partition_covers_every_node_once(graph, method):
    member = cl.partition(graph, 8, method)
    assert member.shape == (400,) and int(member.min()) == 0 and int(member.max()) == 7
    sizes = torch.bincount(member, minlength=8)
    assert int(sizes.sum()) == 400 and int(sizes.min()) >= 400 // 8 * 0.8
    if method != "random":  # METIS and lp cut far fewer edges than a random partition
        src, dst = graph.edge_index
        cut_m = float((member[src] != member[dst]).float().mean())
        rnd = cl.partition(graph, 8, "random")
        assert cut_m < 0.8 * float((rnd[src] != rnd[dst]).float().mean())


def test_batch_of_clusters_holds_all_edges_among_its_nodes(graph):
    member = cl.partition(graph, 6, "random", seed=4)
    nodes = torch.nonzero((member == 1) | (member == 4), as_tuple=True)[0]
    rowptr, col = graph.csr()
    ei = cl.induced_edges(rowptr, col, nodes, graph.num_nodes)
    dense = torch.zeros(400, 400)
    dense[graph.edge_index[1], graph.edge_index[0]] = 1
    got = torch.zeros(len(nodes), len(nodes))
    got[ei[1], ei[0]] = 1
    assert torch.equal(got, dense[nodes][:, nodes])
    groups = cl.cluster_groups(10, 3, seed=0)
    assert [len(g) for g in groups] == [3, 3, 3, 1]
    assert sorted(torch.cat(groups).tolist()) == list(range(10))


def test_partition_cache_is_reused(graph, tmp_path, monkeypatch):
    a = cl.cached_partition(graph, 5, "random", seed=1, cache_dir=tmp_path)
    files = list((tmp_path / "graph_partitions").glob("*.npy"))
    assert len(files) == 1

    def fail(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(cl, "partition", fail)
    assert torch.equal(cl.cached_partition(graph, 5, "random", seed=1, cache_dir=tmp_path), a)
    with pytest.raises(AssertionError):  # other settings: another key
        cl.cached_partition(graph, 6, "random", seed=1, cache_dir=tmp_path)


def _grads(model, batch):
    model.zero_grad()
    node_step(model, batch, "ce", torch.device("cpu")).loss_sum.backward()
    return {k: p.grad.clone() for k, p in model.named_parameters()}


def test_all_clusters_in_one_batch_equal_full_batch(graph):
    """Spec B10: q = p gives the full-batch gradient (same normalisation, here variant (d))."""
    split = GraphSplit(graph, "train")
    torch.manual_seed(0)
    model = build_model("cluster-gcn", split.spec, hidden=16, layers=3, dropout=0.0)
    cfg = SimpleNamespace(batching="cluster", parts=5, clusters_per_batch=5, partition="random",
                          diag_lambda=1.0, partition_cache=False)
    (batch_c,) = split.graph_loader([np.arange(5)], DistInfo(), seed=3, cfg=cfg)
    full = SimpleNamespace(**{**vars(cfg), "batching": "full"})
    (batch_f,) = split.graph_loader([np.arange(len(split.nodes))], DistInfo(), cfg=full)
    ga, gb = _grads(model, batch_c), _grads(model, batch_f)
    for k in ga:
        assert torch.allclose(ga[k], gb[k], rtol=1e-4, atol=1e-6), k
    # fewer clusters per batch drop edges: a different gradient
    cfg.clusters_per_batch = 1
    b1 = next(iter(split.graph_loader([np.arange(5)], DistInfo(), seed=3, cfg=cfg)))
    assert b1.edge_index.shape[1] < batch_f.edge_index.shape[1]


def test_aggregate_cost_counts_edges():
    ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    adj = normalize(ei, 3, "gcn")  # 7 entries with self-loops; out-degrees 2, 3, 2
    x = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]])  # [T=1, N=3, F=2] spikes

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.agg = Aggregate()

        def forward(self, x, adj):
            return self.agg(x, adj)

    rep = measure_cost(GraphBound(Net(), adj), [x]).to_dict()
    row = next(r for r in rep["rows"] if r["name"].endswith("agg"))
    assert row["dense_macs"] == pytest.approx(7 * 2 / 3)  # nnz·F per call, per node
    # non-zeros: node 0 one value (fan-out 2), node 1 two values (fan-out 3): 8 accumulates
    assert row["eff_acs"] == pytest.approx(8 / 3) and row["eff_macs"] == 0


def _cfg(tmp_path, name, **kw):
    base = dict(dataset="sbm", dataset_kwargs=dict(num_nodes=300, blocks=3, avg_degree=6,
                                                   features=8, feature_noise=1.0, seed=1),
                model="spiking-gcn", model_kwargs=dict(hidden=16, T=4), epochs=2,
                batch_size=300, lr=0.01, out=str(tmp_path / name), progress=False, quiet=True,
                threads=1)
    base.update(kw)
    return TrainConfig(**base)


def test_train_spiking_gcn_full_batch_with_resume(tmp_path):
    res = train(_cfg(tmp_path, "full", epochs=3))
    run = tmp_path / "full"
    for f in ("final.json", "cost.json", "plots/raster.png", "checkpoints/best.pt"):
        assert (run / f).exists(), f
    assert res["test_n"] == int(sbm_graph(300, 3, 6, features=8, feature_noise=1.0,
                                          seed=1).masks["test"].sum())
    cost = json.loads((run / "cost.json").read_text())
    names = [r["name"] for r in cost["rows"]]
    assert any(n.endswith("convs.0.agg") for n in names)
    # interrupted after 1 epoch and resumed: same final weights as uninterrupted
    train(_cfg(tmp_path, "part", epochs=3), stop_after_epochs=1)
    res2 = train(resume=tmp_path / "part")
    assert res2["test_acc"] == res["test_acc"]
    assert res2["test_loss"] == pytest.approx(res["test_loss"], abs=1e-6)


def test_train_cluster_batching(tmp_path):
    res = train(_cfg(tmp_path, "cl", model="gcn", model_kwargs={}, batching="cluster",
                     parts=6, clusters_per_batch=2, batch_size=2, partition="metis",
                     partition_cache=str(tmp_path / "cache"), epochs=8, lr=0.05))
    assert res["finished"] and res["test_acc"] > 0.5  # 3 classes; chance is 1/3
    hist = [json.loads(s) for s in (tmp_path / "cl" / "metrics.jsonl").read_text().splitlines()]
    assert len(hist) == 8 and hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert len(list((tmp_path / "cache" / "graph_partitions").glob("*.npy"))) == 1


def test_cli_graph_errors(capsys):
    assert cli_main(["train", "--dataset", "cora", "--model", "gcn"]) == 2
    assert "ind.cora.graph" in capsys.readouterr().err
    assert cli_main(["train", "--dataset", "sbm", "--model", "liafnet", "--batching",
                     "cluster"]) == 2
    assert "accepts data of kind" in capsys.readouterr().err


@pytest.mark.slow
def test_two_process_cluster_gcn_equals_one_process(tmp_path):
    """torchrun, 2 gloo processes, one subgraph of q clusters each = 1 process, same batches."""
    common = ["train", "--dataset", "sbm", "--dataset-arg", "num_nodes=300",
              "--dataset-arg", "features=8", "--model", "gcn", "--batching", "cluster",
              "--parts", "8", "--clusters-per-batch", "2", "--batch-size", "4",
              "--partition", "random", "--epochs", "2", "--lr", "0.01", "--no-progress",
              "--model-arg", "dropout=0.0",
              "--no-plots", "--no-cost", "--threads", "1", "--partition-cache",
              str(tmp_path / "cache")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "spikeloom.cli", *common, "--out",
                          str(tmp_path / "one")], env=env, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node", "2", "-m", "spikeloom.cli", *common, "--out",
                          str(tmp_path / "two")], env=env, capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-3000:]
    f1 = json.loads((tmp_path / "one" / "final.json").read_text())
    f2 = json.loads((tmp_path / "two" / "final.json").read_text())
    assert (f1["world_size"], f2["world_size"]) == (1, 2)
    assert f1["test_acc"] == f2["test_acc"]
    w1 = torch.load(tmp_path / "one" / "checkpoints" / "last.pt", weights_only=False)["model"]
    w2 = torch.load(tmp_path / "two" / "checkpoints" / "last.pt", weights_only=False)["model"]
    for k in w1:
        assert torch.allclose(w1[k], w2[k], atol=1e-5), k
