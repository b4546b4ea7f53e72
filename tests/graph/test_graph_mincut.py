"""MinCUT pooling: spec B13 test vectors, masking, and a graph-classification task."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from spikeloom.graph.mincut import MinCutNet, mincut_pool, pad_graphs
from spikeloom.models import build_model


def _two_triangles():
    a = torch.zeros(6, 6)
    for i, j in [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5)]:
        a[i, j] = a[j, i] = 1
    return a


def test_spec_vectors_hard_and_uniform_assignment():
    a, x = _two_triangles(), torch.randn(6, 3)
    hard = torch.tensor([[0, 1]] * 3 + [[1, 0]] * 3, dtype=torch.float) * -1e4  # logits
    _, _, cut, ortho = mincut_pool(x, a, hard)
    assert float(cut) == pytest.approx(-1.0, abs=1e-6)
    assert float(ortho) == pytest.approx(0.0, abs=1e-6)
    _, _, cut_u, ortho_u = mincut_pool(x, a, torch.zeros(6, 2))
    assert float(cut_u) == pytest.approx(-1.0, abs=1e-6)
    assert float(ortho_u) == pytest.approx(math.sqrt(2 - math.sqrt(2)), abs=1e-4)


def test_padding_does_not_change_pooling():
    a, x = _two_triangles(), torch.randn(6, 3)
    s = torch.randn(6, 2)
    ref = mincut_pool(x, a, s)
    xp, ap, mask = pad_graphs([x, torch.randn(9, 3)], [a, torch.ones(9, 9)])
    sp = torch.cat([s, torch.randn(3, 2)])
    got = mincut_pool(xp[:1], ap[:1], sp[None], mask[:1])
    for r, g in zip(ref, got):
        assert torch.allclose(r, g.squeeze(0) if g.ndim else g, atol=1e-5)


def _dataset(n_graphs=48, seed=0):
    """Class 0: two dense communities; class 1: a ring. Node feature: the degree / 10."""
    g = torch.Generator().manual_seed(seed)
    xs, adjs, ys = [], [], []
    for i in range(n_graphs):
        n = int(torch.randint(8, 13, (1,), generator=g))
        a = torch.zeros(n, n)
        if i % 2 == 0:
            half = n // 2
            a[:half, :half] = (torch.rand(half, half, generator=g) < 0.8).float()
            a[half:, half:] = (torch.rand(n - half, n - half, generator=g) < 0.8).float()
            a = torch.triu(a, 1)
            a = a + a.T
        else:
            idx = torch.arange(n)
            a[idx, (idx + 1) % n] = a[(idx + 1) % n, idx] = 1
        xs.append(a.sum(1, keepdim=True) / 10)
        adjs.append(a)
        ys.append(i % 2)
    x, adj, mask = pad_graphs(xs, adjs)
    return x, adj, mask, torch.tensor(ys)


def test_mincut_net_learns_graph_classification():
    torch.manual_seed(0)
    x, adj, mask, y = _dataset()
    net = build_model("mincut-net", in_features=1, num_classes=2, hidden=16, clusters=4)
    assert isinstance(net, MinCutNet)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    first = None
    for _ in range(60):
        logits, aux = net(x, adj, mask)
        loss = F.cross_entropy(logits, y) + aux
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    xt, at, mt, yt = _dataset(24, seed=1)
    with torch.no_grad():
        acc = float((net(xt, at, mt)[0].argmax(1) == yt).float().mean())
    assert float(loss.detach()) < first and acc >= 0.9
