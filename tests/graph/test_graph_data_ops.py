"""Graph container, Planetoid loader, spmm operator, normalisations, STFN, layers."""

from __future__ import annotations

import math

import pytest
import torch

from spikeloom.errors import BackendError, MissingDataError
from spikeloom.graph import STFN, Graph, SpikingGraphNet, load_planetoid, normalize
from spikeloom.graph.data import to_undirected
from spikeloom.graph.layers import GATConv, GCNConv, segment_softmax
from spikeloom.graph.synthetic import sbm_graph
from spikeloom.ops import available_backends, get_backend
from spikeloom.ops.spmm import spmm


def _csr(n_rows, n_cols, nnz, seed=0):
    g = torch.Generator().manual_seed(seed)
    rows = torch.sort(torch.randint(n_rows, (nnz,), generator=g)).values
    col = torch.randint(n_cols, (nnz,), generator=g)
    rowptr = torch.zeros(n_rows + 1, dtype=torch.long)
    rowptr[1:] = torch.cumsum(torch.bincount(rows, minlength=n_rows), 0)
    return rowptr, col, torch.rand(nnz, generator=g, dtype=torch.float64), rows


# ----------------------------------------------------------------------------- Planetoid


def test_cora_public_split(shared_data):
    g = load_planetoid(shared_data / "planetoid", "cora")
    assert (g.num_nodes, g.num_edges, g.num_features, g.num_classes) == (2708, 10556, 1433, 7)
    assert [int(g.masks[k].sum()) for k in ("train", "val", "test")] == [140, 500, 1000]
    # 20 labelled nodes per class, splits disjoint, undirected without self-loops
    assert torch.bincount(g.y[g.masks["train"]]).tolist() == [20] * 7
    assert not (g.masks["train"] & g.masks["test"]).any()
    src, dst = g.edge_index
    assert not (src == dst).any()
    assert torch.equal(to_undirected(g.edge_index, g.num_nodes), g.edge_index)


def test_citeseer_isolated_test_nodes(shared_data):
    g = load_planetoid(shared_data / "planetoid", "citeseer")
    assert (g.num_nodes, g.num_edges, g.num_classes) == (3327, 9104, 6)
    test_idx = g.nodes("test")
    lo, hi = int(test_idx.min()), int(test_idx.max())
    filled = torch.ones(g.num_nodes, dtype=torch.bool)
    filled[: lo] = False
    filled[hi + 1:] = False
    filled[test_idx] = False  # the test-range nodes that are not test nodes: no data
    assert int(filled.sum()) == 15
    assert g.x[filled].abs().sum() == 0 and not g.masks["test"][filled].any()
    assert int((g.in_degree() == 0).sum()) == 48  # isolated nodes of the standard graph


def test_pubmed_missing_file_is_listed(shared_data):
    with pytest.raises(MissingDataError, match=r"ind\.pubmed\.allx.*github\.com/kimiyoung"):
        load_planetoid(shared_data / "planetoid", "pubmed")


def test_pyg_roundtrip():
    pytest.importorskip("torch_geometric", reason="PyTorch Geometric is not installed")
    g = sbm_graph(200, blocks=4, avg_degree=6, features=5, seed=1)
    back = Graph.from_pyg(g.to_pyg())
    assert torch.equal(back.edge_index, g.edge_index) and torch.equal(back.x, g.x)
    assert all(torch.equal(back.masks[k], g.masks[k]) for k in g.masks)


def test_subgraph_and_sbm_determinism():
    a, b = sbm_graph(500, blocks=5, seed=3), sbm_graph(500, blocks=5, seed=3)
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.x, b.x)
    # edges mostly within blocks (p_within = 0.8)
    src, dst = a.edge_index
    assert 0.7 < float((a.y[src] == a.y[dst]).float().mean()) < 0.9
    nodes = torch.tensor([4, 1, 7, 9])
    sub = a.subgraph(nodes)
    dense = torch.zeros(500, 500)
    dense[a.edge_index[1], a.edge_index[0]] = 1
    sub_dense = torch.zeros(4, 4)
    sub_dense[sub.edge_index[1], sub.edge_index[0]] = 1
    assert torch.equal(sub_dense, dense[nodes][:, nodes])


# ----------------------------------------------------------------------------- spmm


@pytest.mark.parametrize("with_val", [True, False])
def test_spmm_backends_agree_with_gradients(with_val):
    rowptr, col, val, rows = _csr(30, 40, 300)
    x = torch.randn(40, 5, dtype=torch.float64)
    dense = torch.zeros(30, 40, dtype=torch.float64).index_put_((rows, col), val if with_val
                                                                else torch.ones(300,
                                                                dtype=torch.float64),
                                                                accumulate=True)
    assert set(available_backends("spmm")) >= {"reference", "csr"}
    g_out = torch.randn(30, 5, dtype=torch.float64)
    results = []
    for name in ("reference", "csr"):
        xx = x.clone().requires_grad_()
        vv = val.clone().requires_grad_() if with_val else None
        y = get_backend("spmm", name).fn(rowptr, col, vv, xx)
        (y * g_out).sum().backward()
        results.append((y.detach(), xx.grad, vv.grad if with_val else None))
    for y, gx, gv in results:
        assert torch.allclose(y, dense @ x, atol=1e-10)
        assert torch.allclose(gx, dense.T @ g_out, atol=1e-10)
        if with_val:  # dval[k] = <g_out[row k], x[col k]>
            assert torch.allclose(gv, (g_out[rows] * x[col]).sum(1), atol=1e-10)


def test_spmm_dispatch_and_errors(monkeypatch):
    rowptr, col, val, _ = _csr(4, 6, 10)
    x = torch.randn(6, 2, dtype=torch.float64)
    monkeypatch.setenv("SPIKELOOM_BACKEND_SPMM", "reference")
    a = spmm(rowptr, col, val, x)
    monkeypatch.setenv("SPIKELOOM_BACKEND_SPMM", "csr")
    assert torch.allclose(spmm(rowptr, col, val, x), a)
    monkeypatch.setenv("SPIKELOOM_BACKEND_SPMM", "nope")
    with pytest.raises(BackendError, match="reference"):
        spmm(rowptr, col, val, x)
    monkeypatch.delenv("SPIKELOOM_BACKEND_SPMM")
    with pytest.raises(ValueError, match="outside"):
        spmm(rowptr, col, val, x[:2])
    # trailing dims are kept: [N, T, F]
    x3 = torch.randn(6, 3, 2, dtype=torch.float64)
    assert torch.allclose(spmm(rowptr, col, val, x3).reshape(4, 6),
                          spmm(rowptr, col, val, x3.reshape(6, 6)))


# ----------------------------------------------------------------------------- normalisations


def test_normalisation_variants_path_graph():
    """Spec B10 test vector: path 0-1-2, variant (c) and (d) with lambda = 1."""
    ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    t = 1 / 3
    assert torch.allclose(normalize(ei, 3, "row").to_dense(),
                          torch.tensor([[.5, .5, 0], [t, t, t], [0, .5, .5]]))
    assert torch.allclose(normalize(ei, 3, "diag", 1.0).to_dense(),
                          torch.tensor([[1, .5, 0], [t, 2 * t, t], [0, .5, 1]]))
    d = torch.tensor([2.0, 3.0, 2.0]).rsqrt()
    a = torch.tensor([[1.0, 1, 0], [1, 1, 1], [0, 1, 1]])
    assert torch.allclose(normalize(ei, 3, "gcn").to_dense(), d[:, None] * a * d[None])
    assert torch.allclose(normalize(ei, 3, "mean").to_dense(),
                          torch.tensor([[0, 1.0, 0], [.5, 0, .5], [0, 1, 0]]))


# ----------------------------------------------------------------------------- STFN, layers


def test_stfn_statistics_per_node():
    s = torch.randn(6, 5, 7) * 3 + 2
    y = STFN(7, v_th=0.5, rho=2.0, eps=0.0)(s)
    assert torch.allclose(y.mean(dim=(0, 2)), torch.zeros(5), atol=1e-5)
    assert torch.allclose(y.std(dim=(0, 2), unbiased=False), torch.full((5,), 1.0), atol=1e-4)
    causal = STFN(7, v_th=0.5, rho=2.0, eps=0.0, causal=True)(s)
    for t in (1, 3, 6):  # step t uses the statistics of steps 1..t only
        assert torch.allclose(causal[t - 1], STFN(7, 0.5, 2.0, 0.0)(s[:t])[t - 1], atol=1e-5)


def _perm_graph(n=40, seed=0):
    g = sbm_graph(n, blocks=3, avg_degree=5, features=6, feature_noise=1.0, seed=seed)
    x = (g.x > 0).float()  # binary features (spikes)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    inv = torch.argsort(perm)
    ei_p = inv[g.edge_index]  # node v becomes inv[v]
    from spikeloom.graph.data import coalesce_edges

    ei_p = coalesce_edges(ei_p, n, remove_self_loops=False)
    return x, g.edge_index, x[perm], ei_p, perm


@pytest.mark.parametrize("conv", ["gcn", "gat"])
def test_spiking_gnn_is_permutation_equivariant(conv):
    x, ei, xp, eip, perm = _perm_graph()
    torch.manual_seed(0)
    net = SpikingGraphNet(6, 3, conv=conv, hidden=8, layers=2, heads=2, T=4).eval()
    out = net(x, normalize(ei, 40))
    out_p = net(xp, normalize(eip, 40))
    assert torch.allclose(out_p, out[perm], atol=1e-5)


def test_spiking_gnn_dropout_placement_reset_and_readout():
    x, ei, *_ = _perm_graph()
    adj = normalize(ei, 40)
    torch.manual_seed(0)
    # no dropout anywhere: training mode computes the same function as eval mode
    net = SpikingGraphNet(6, 3, hidden=8, layers=2, T=4, dropout=0.0, input_dropout=0.0)
    assert torch.equal(net.train()(x, adj), net.eval()(x, adj))
    # input_dropout = 1 drops every feature: the output no longer depends on x
    net.input_dropout = 1.0
    net.train()
    assert torch.equal(net(x, adj), net(torch.rand_like(x).round(), adj))
    # hidden dropout alone still leaves the input intact (training output depends on x)
    net.input_dropout, net.dropout = 0.0, 0.5
    torch.manual_seed(1)
    a = net(x, adj)
    torch.manual_seed(1)
    assert not torch.equal(a, net(1 - x, adj))
    assert SpikingGraphNet(6, 3, dropout=0.3).input_dropout == 0.3  # None: same as dropout
    soft = SpikingGraphNet(6, 3, layers=2, reset="soft")
    assert [n.reset for n in soft.neurons] == ["soft", "soft"]
    mlp = SpikingGraphNet(6, 3, hidden=8, readout="mlp").eval()
    assert [type(m).__name__ for m in mlp.head] == ["Linear", "ReLU", "Linear"]
    assert mlp(x, adj).shape == (40, 3)
    with pytest.raises(ValueError, match="readout"):
        SpikingGraphNet(6, 3, readout="conv")
    # the neurons' surrogate options reach every LIF; forward spikes do not depend on them
    torch.manual_seed(0)
    rect = SpikingGraphNet(6, 3, hidden=8, layers=2).eval()
    torch.manual_seed(0)
    atan = SpikingGraphNet(6, 3, hidden=8, layers=2, surrogate="arctan", surrogate_width=3.0,
                           detach_reset=True).eval()
    assert all(type(n.surrogate).__name__ == "ATan" and n.detach_reset for n in atan.neurons)
    assert torch.equal(rect(x, adj), atan(x, adj))
    xa = x.clone().requires_grad_(True)
    atan(xa, adj).sum().backward()
    xr = x.clone().requires_grad_(True)
    rect(xr, adj).sum().backward()
    assert not torch.equal(xa.grad, xr.grad)


def test_spiking_gnn_weight_decay_scope():
    net = SpikingGraphNet(6, 3, hidden=8, layers=2, wd_scope="first")
    decayed, free = net.weight_decay_groups(1e-3)
    assert decayed["weight_decay"] == 1e-3 and free["weight_decay"] == 0.0
    assert {id(p) for p in decayed["params"]} == {id(p) for p in net.convs[0].parameters()}
    assert len(decayed["params"]) + len(free["params"]) == len(list(net.parameters()))
    # one Adam step on a zero loss: only the first convolution's weights shrink
    opt = torch.optim.Adam(net.weight_decay_groups(0.5), lr=0.1)
    before = [p.detach().clone() for p in net.parameters()]
    (sum(p.sum() for p in net.parameters()) * 0).backward()
    opt.step()
    first = {id(p) for p in net.convs[0].lin.parameters()}
    for p, b in zip(net.parameters(), before):
        assert torch.equal(p, b) != (id(p) in first)
    (every,) = SpikingGraphNet(6, 3).weight_decay_groups(1e-3)
    assert len(every["params"]) == len(list(SpikingGraphNet(6, 3).parameters()))
    with pytest.raises(ValueError, match="wd_scope"):
        SpikingGraphNet(6, 3, wd_scope="head")


def test_gcn_on_spikes_equals_dense_product():
    x, ei, *_ = _perm_graph()
    adj = normalize(ei, 40)
    conv = GCNConv(6, 4, bias=False)
    h = x.unsqueeze(0).expand(3, 40, 6)  # binary H over T = 3 steps
    expected = adj.to_dense() @ (x @ conv.lin.weight.T)
    assert torch.allclose(conv(h, adj), expected.expand(3, 40, 4), atol=1e-6)
    first = GCNConv(6, 4, bias=False, order="aggregate_first")
    first.lin.weight.data.copy_(conv.lin.weight)
    assert torch.allclose(first(x, adj), expected, atol=1e-6)


def test_gat_attention_is_a_softmax_over_neighbours():
    x, ei, *_ = _perm_graph()
    adj = normalize(ei, 40)
    conv = GATConv(6, 3, heads=2).eval()
    h = conv.lin(x).view(40, 2, 3)
    alpha = conv.attention(h, adj)
    sums = torch.zeros(40, 2).index_add(0, adj.rows(), alpha)
    assert torch.allclose(sums, torch.ones(40, 2), atol=1e-6)
    # dense check of one head
    e = torch.full((40, 40), -math.inf)
    a_s, a_d = (h * conv.att_src).sum(-1), (h * conv.att_dst).sum(-1)
    r, c = adj.rows(), adj.col
    e[r, c] = torch.nn.functional.leaky_relu(a_s[c, 0] + a_d[r, 0], 0.2)
    dense = torch.softmax(e, 1)
    out = conv(x, adj)[:, :3] - conv.bias[:3]
    assert torch.allclose(out, dense @ h[:, 0], atol=1e-5)
    sm = segment_softmax(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0, 0, 1]), 2)
    assert torch.allclose(sm, torch.tensor([1 / (1 + math.e), math.e / (1 + math.e), 1.0]))
