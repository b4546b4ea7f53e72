"""GNN-LF / GNN-HF (spec C5): closed forms, iterations, spectral responses, PPNP limit, CLI."""

from __future__ import annotations

import json

import pytest
import torch

from spikeloom.cli import main as cli_main
from spikeloom.cost import measure_cost
from spikeloom.errors import ConfigError
from spikeloom.graph import GraphBound, normalize
from spikeloom.graph.lowhigh import (
    LowHighPropagation,
    check_params,
    closed_form_matrix,
    iterate,
    spectral_response,
)
from spikeloom.models import build_model

ALPHA, P = 0.1, 0.9
H = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)


@pytest.fixture(scope="module")
def path_adj():
    ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    adj = normalize(ei, 3, "gcn")
    return adj.with_values(adj.val.double())


def test_normalised_path_graph(path_adj):
    want = torch.tensor([[0.5, 0.4082, 0], [0.4082, 0.3333, 0.4082], [0, 0.4082, 0.5]],
                        dtype=torch.float64)
    assert torch.allclose(path_adj.to_dense(), want, atol=1e-4)


@pytest.mark.parametrize("kind,mat,z", [
    ("lf", [[0.3895, 0.3228, 0.2152], [0.3228, 0.4729, 0.3228], [0.2152, 0.3228, 0.3895]],
     [[0.6047, 0.5380], [0.6455, 0.7957], [0.6047, 0.7123]]),
    ("hf", [[0.4426, 0.2928, 0.1989], [0.2928, 0.5219, 0.2928], [0.1989, 0.2928, 0.4426]],
     [[0.6414, 0.4916], [0.5855, 0.8147], [0.6414, 0.7353]]),
])
def test_closed_form_spec_vectors(path_adj, kind, mat, z):
    m = closed_form_matrix(path_adj.to_dense(), kind, ALPHA, P)
    assert torch.allclose(m, torch.tensor(mat, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(m @ H, torch.tensor(z, dtype=torch.float64), atol=1e-4)


@pytest.mark.parametrize("kind,gains", [("lf", [1, 0.1743, 0.0776]),
                                        ("hf", [1, 0.2437, 0.1633])])
def test_spectral_response_spec_vectors_and_eigendecomposition(path_adj, kind, gains):
    a = path_adj.to_dense()
    lam, U = torch.linalg.eigh(torch.eye(3, dtype=torch.float64) - a)
    assert torch.allclose(lam, torch.tensor([0, 0.5, 7 / 6], dtype=torch.float64), atol=1e-4)
    g = spectral_response(lam, kind, ALPHA, P)
    assert torch.allclose(g, torch.tensor(gains, dtype=torch.float64), atol=1e-4)
    # the closed-form matrix is exactly U diag(g) Uᵀ
    m = closed_form_matrix(a, kind, ALPHA, P)
    assert torch.allclose(m, U @ torch.diag(g) @ U.T, atol=1e-12)


@pytest.mark.parametrize("kind,z10,errs", [
    ("lf", [[0.6067, 0.5400], [0.6480, 0.7984], [0.6067, 0.7146]],
     {1: 0.199, 2: 0.082, 10: 2.7e-3}),
    ("hf", [[0.6234, 0.4714], [0.5635, 0.7901], [0.6234, 0.7155]],
     {1: 0.259, 2: 0.161, 10: 2.5e-2}),
])
def test_iterative_spec_vectors(path_adj, kind, z10, errs):
    closed = closed_form_matrix(path_adj.to_dense(), kind, ALPHA, P) @ H
    z = iterate(H, path_adj, kind, ALPHA, P, K=10)
    assert torch.allclose(z, torch.tensor(z10, dtype=torch.float64), atol=1e-4)
    for K, e in errs.items():
        got = float((iterate(H, path_adj, kind, ALPHA, P, K=K) - closed).abs().max())
        assert got == pytest.approx(e, rel=0.05, abs=2e-4)
    assert float((iterate(H, path_adj, kind, ALPHA, P, K=200) - closed).abs().max()) < 1e-8


def _ppnp(a: torch.Tensor, alpha: float) -> torch.Tensor:
    return alpha * torch.linalg.inv(torch.eye(len(a), dtype=a.dtype) - (1 - alpha) * a)


def test_ppnp_limit(path_adj):
    a = path_adj.to_dense()
    ppnp = _ppnp(a, ALPHA)
    want = torch.tensor([[0.3953, 0.3195, 0.2134], [0.3195, 0.4783, 0.3195],
                         [0.2134, 0.3195, 0.3953]], dtype=torch.float64)
    assert torch.allclose(ppnp, want, atol=1e-4)
    lf = closed_form_matrix(a, "lf", ALPHA, 1.0, ppnp_limit=True)
    hf = closed_form_matrix(a, "hf", ALPHA, 0.0, ppnp_limit=True)
    assert torch.allclose(lf, ppnp, atol=1e-14) and torch.allclose(hf, ppnp, atol=1e-14)
    # the iterations become APPNP's: Z <- (1-α) Â Z + α H
    z = H.clone()
    for _ in range(10):
        z = (1 - ALPHA) * (a @ z) + ALPHA * H
    for kind, p in (("lf", 1.0), ("hf", 0.0)):
        assert torch.allclose(iterate(H, path_adj, kind, ALPHA, p, 10, ppnp_limit=True), z,
                              atol=1e-14)


def _objective(z, h, a, kind, p, alpha):
    eye = torch.eye(len(a), dtype=a.dtype)
    k = p * eye + (1 - p) * a if kind == "lf" else eye + p * (eye - a)
    d = z - h
    return (d * (k @ d)).sum() + (1 / alpha - 1) * (z * ((eye - a) @ z)).sum()


@pytest.mark.parametrize("kind", ["lf", "hf"])
def test_closed_form_minimises_objective_and_iteration_converges(kind):
    """Random 30-node graph: gradient of O at the closed form is 0; iter(K=300) == closed."""
    g = torch.Generator().manual_seed(0)
    src, dst = torch.randint(0, 30, (2, 90), generator=g)
    keep = src != dst
    ei = torch.stack([torch.cat([src[keep], dst[keep]]), torch.cat([dst[keep], src[keep]])])
    adj = normalize(ei, 30, "gcn")
    adj = adj.with_values(adj.val.double())
    a = adj.to_dense()
    h = torch.randn(30, 4, generator=g, dtype=torch.float64)
    z = (closed_form_matrix(a, kind, 0.2, 0.7) @ h).requires_grad_(True)
    _objective(z, h, a, kind, 0.7, 0.2).backward()
    assert float(z.grad.abs().max()) < 1e-9
    assert torch.allclose(iterate(h, adj, kind, 0.2, 0.7, 300), z.detach(), atol=1e-9)
    prop_c = LowHighPropagation(kind, 0.2, 0.7, "closed")
    prop_i = LowHighPropagation(kind, 0.2, 0.7, "iter", K=300)
    adj32 = normalize(ei, 30, "gcn")
    assert torch.allclose(prop_c(h.float(), adj32), prop_i(h.float(), adj32), atol=1e-5)
    m = prop_c.matrix(adj32)  # computed once per adjacency, also for an equal copy
    assert prop_c.matrix(adj32) is m and prop_c.matrix(normalize(ei, 30, "gcn")) is m
    assert prop_c.matrix(normalize(ei[:, :-2], 30, "gcn")) is not m


@pytest.mark.parametrize("kind,alpha,p,msg", [
    ("lf", 0.7, 0.9, "alpha must be in \\(0, 2/3\\), got 0.7"),
    ("lf", 0.0, 0.9, "alpha must be in \\(0, 2/3\\), got 0.0"),
    ("lf", 0.1, 0.4, "mu must be in \\[0.5, 1\\), got 0.4"),
    ("lf", 0.1, 1.0, "mu must be in \\[0.5, 1\\), got 1.0"),
    ("hf", 1.5, 0.9, "alpha must be in \\(0, 1\\], got 1.5"),
    ("hf", 0.1, 0.0, "beta must be > 0 and finite, got 0.0"),
    ("hf", 0.1, float("nan"), "beta must be > 0"),
    ("mid", 0.1, 0.9, "kind must be one of lf, hf"),
])
def test_parameter_errors(kind, alpha, p, msg):
    with pytest.raises(ConfigError, match=msg):
        check_params(kind, alpha, p)


def test_model_options_and_errors():
    with pytest.raises(ConfigError, match="GNN-LF mu must be"):
        build_model("gnn-lf", in_features=5, num_classes=3, mu=0.2)
    with pytest.raises(ConfigError, match="GNN-HF beta must be"):
        build_model("gnn-hf", in_features=5, num_classes=3, beta=-1.0)
    with pytest.raises(ConfigError, match="propagation must be one of closed, iter"):
        build_model("gnn-lf", in_features=5, num_classes=3, propagation="cg")
    m = build_model("gnn-hf", in_features=5, num_classes=3, max_closed_nodes=10)
    ei = torch.stack([torch.arange(19), torch.arange(1, 20)])
    adj = normalize(torch.cat([ei, ei.flip(0)], 1), 20, "gcn")
    with pytest.raises(ConfigError, match="propagation=iter"):
        m(torch.randn(20, 5), adj)
    mi = build_model("gnn-hf", in_features=5, num_classes=3, propagation="iter", K=4)
    assert mi.lin1.bias is None and mi(torch.randn(20, 5), adj).shape == (20, 3)
    # the iterative propagation goes through Aggregate: the cost report counts K+1 products
    mi.eval()
    rep = measure_cost(GraphBound(mi, adj), [torch.randn(1, 20, 5)]).to_dict()
    (row,) = [r for r in rep["rows"] if r["type"] == "Aggregate"]
    assert row["calls"] == 5  # Â·H once, then K = 4 steps
    assert row["dense_macs"] == pytest.approx(adj.nnz * 3 * 5 / 20)  # per node


def test_cli_train_cora_iter(shared_data, tmp_path):
    out = tmp_path / "run"
    rc = cli_main(["train", "--dataset", "cora", "--root", str(shared_data / "planetoid"),
                   "--model", "gnn-lf", "--model-arg", "propagation=iter", "--epochs", "2",
                   "--batch-size", "140", "--lr", "0.01", "--no-progress", "--no-plots",
                   "--threads", "1", "--out", str(out)])
    assert rc == 0
    final = json.loads((out / "final.json").read_text())
    assert final["epochs"] == 2 and final["test_n"] == 1000  # Cora public split: 1000 test
    assert 0.0 <= final["test_acc"] <= 1.0


def test_sparse_features_equal_dense():
    ei = torch.stack([torch.arange(9), torch.arange(1, 10)])
    adj = normalize(torch.cat([ei, ei.flip(0)], 1), 10, "gcn")
    x = (torch.rand(10, 6, generator=torch.Generator().manual_seed(1)) > 0.7).float()
    torch.manual_seed(0)
    m = build_model("gnn-lf", in_features=6, num_classes=3).eval()
    assert torch.allclose(m(x.to_sparse(), adj), m(x, adj), atol=1e-6)
    m.train()
    out = m(x.to_sparse(), adj)
    out.sum().backward()
    assert m.lin1.weight.grad is not None and m.lin1.weight.grad.shape == (64, 6)
