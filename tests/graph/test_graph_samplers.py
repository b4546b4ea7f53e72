"""Samplers (spec B12): exactness and Monte-Carlo unbiasedness within 3 standard errors."""

from __future__ import annotations

import pytest
import torch

from spikeloom.graph import normalize
from spikeloom.graph.samplers import SaintRW, layer_sample, sage_block, sage_blocks
from spikeloom.graph.synthetic import sbm_graph

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _setup(n=30, seed=0):
    g = sbm_graph(n, blocks=3, avg_degree=5, features=4, feature_noise=1.0, seed=seed)
    h = torch.randn(n, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return g, h


def _within_3se(samples: torch.Tensor, exact: torch.Tensor) -> None:
    mean = samples.mean(0)
    se = samples.std(0) / samples.shape[0] ** 0.5
    assert bool(((mean - exact).abs() <= 3 * se + 1e-9).float().mean() >= 0.99), \
        float(((mean - exact).abs() / (se + 1e-12)).max())


def test_sage_with_full_fanout_is_exact():
    g, h = _setup()
    rowptr, col = g.csr()
    targets = torch.tensor([0, 5, 7, 11])
    block, src = sage_block(rowptr, col, targets, fanout=100)
    assert torch.equal(src[: len(targets)], targets)
    mean = normalize(g.edge_index, g.num_nodes, "mean").to_dense().double()
    assert torch.allclose(block.to_dense().double() @ h[src], (mean @ h)[targets])
    two = sage_blocks(rowptr, col, targets, [100, 100])
    assert len(two) == 2 and torch.equal(two[1][1][: len(targets)], targets)


def test_sage_mean_is_unbiased():
    g, h = _setup()
    rowptr, col = g.csr()
    targets = torch.arange(10)
    gen = torch.Generator().manual_seed(1)
    draws = []
    for _ in range(2000):
        block, src = sage_block(rowptr, col, targets, fanout=2, generator=gen)
        draws.append(block.to_dense().double() @ h[src])
    exact = (normalize(g.edge_index, g.num_nodes, "mean").to_dense().double() @ h)[targets]
    _within_3se(torch.stack(draws), exact)


def test_ladies_and_fastgcn_are_unbiased():
    g, h = _setup()
    adj = normalize(g.edge_index, g.num_nodes, "gcn")
    targets = torch.tensor([1, 4, 9, 16, 25])
    exact = (adj.to_dense().double() @ h)[targets]
    for probs in ("targets", "all"):
        gen = torch.Generator().manual_seed(2)
        draws = []
        for _ in range(2000):
            block, sampled = layer_sample(adj, targets, 6, probs=probs, generator=gen)
            assert block.num_cols == 6
            draws.append(block.to_dense().double() @ h[sampled])
        _within_3se(torch.stack(draws), exact)
    # row normalisation makes every row sum to 1 (and the estimator biased)
    block, _ = layer_sample(adj, targets, 6, row_normalize=True, generator=gen)
    sums = block.to_dense().sum(1)
    assert torch.allclose(sums[sums > 0], torch.ones(int((sums > 0).sum())))


def test_graphsaint_normalisation_is_unbiased():
    g, h = _setup(40, seed=3)
    adj = normalize(g.edge_index, g.num_nodes, "gcn")
    saint = SaintRW(adj, roots=6, length=2, presample=2000,
                    generator=torch.Generator().manual_seed(4))
    exact = adj.to_dense().double() @ h
    agg_sum = torch.zeros(40, 4, dtype=torch.float64)
    agg_sq = torch.zeros(40, 4, dtype=torch.float64)
    hits = torch.zeros(40, dtype=torch.float64)
    loss = torch.rand(40, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    est_loss = []
    for _ in range(2000):
        nodes, block, w = saint.sample()
        agg = block.to_dense().double() @ h[nodes]  # aggregation conditioned on v sampled
        agg_sum[nodes] += agg
        agg_sq[nodes] += agg ** 2
        hits[nodes] += 1
        est_loss.append((w.double() * loss[nodes]).sum())
    seen = hits > 30
    mean = agg_sum[seen] / hits[seen, None]
    se = (agg_sq[seen] / hits[seen, None] - mean ** 2).clamp_min(0).sqrt() \
        / hits[seen, None].sqrt()
    # alpha is estimated from 2000 pre-samples: allow its small estimation error on top
    assert float(((mean - exact[seen]).abs() <= 3 * se + 0.02).float().mean()) >= 0.97
    el = torch.stack(est_loss)
    assert abs(float(el.mean()) - float(loss.sum())) <= 3 * float(el.std()) / 2000 ** 0.5 \
        + 0.02 * float(loss.sum())
