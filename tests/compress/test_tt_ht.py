"""TT / HT tensorized layers (spec A4): parameter formulas, both forward paths, decomposition,
initialisation, hybrid strategy, errors and cost counters."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from spikeloom.compress.tensorized import (
    HTConv2d,
    HTLinear,
    HTMatrix,
    TTConv2d,
    TTLinear,
    TTMatrix,
    load_dense,
    tensorize,
)
from spikeloom.compress.tensorized.tt import tt_max_ranks
from spikeloom.cost import measure_cost
from spikeloom.errors import ConfigError
from spikeloom.models.registry import build_model


def test_param_counts_equal_spec_formulas():
    m = [4, 8, 8, 4]
    assert TTMatrix(m, m, 8).num_params() == 8448
    assert HTMatrix(m, m, 8).num_params() == 2368
    r = 8  # HT equal ranks, d = 4: r·Σ m_k n_k + 2r³ + r²
    assert HTMatrix(m, m, r).num_params() == r * sum(a * a for a in m) + 2 * r**3 + r**2
    # TT conv: ℓ² r0 + Σ r c s r
    conv = TTConv2d(16, 32, 3, in_modes=[4, 4], out_modes=[4, 8], ranks=[5, 6], bias=False)
    assert sum(p.numel() for p in conv.parameters()) == 9 * 5 + 5 * 4 * 4 * 6 + 6 * 4 * 8


@pytest.mark.parametrize("cls", [TTMatrix, HTMatrix])
def test_reconstruct_equals_contract_spec_vector(cls):
    torch.manual_seed(0)
    f = cls([2, 3, 2, 2], [3, 2, 2, 3], 2).double()
    x = torch.randn(5, 36, dtype=torch.float64)
    assert torch.allclose(f.contract(x), x @ f.weight().T, atol=1e-10, rtol=0)


@pytest.mark.parametrize("cls", [TTMatrix, HTMatrix])
def test_reconstruction_matches_entrywise_definition(cls):
    """Row-major (i, j) <-> (i_1..i_d, j_1..j_d): check W[i, j] by the format's own formula."""
    torch.manual_seed(1)
    f = cls([2, 3, 2], [2, 2, 3], 2).double()
    w = f.weight()
    i, j = 7, 9  # i = (1, 0, 1) over m=[2,3,2]; j = (1, 1, 0) over n=[2,2,3]
    ii, jj = (1, 0, 1), (1, 1, 0)
    if cls is TTMatrix:
        v = torch.ones(1, 1, dtype=torch.float64)
        for k, g in enumerate(f.cores):
            v = v @ g[:, ii[k], jj[k], :]
        expect = v.item()
    else:  # tree: root -> ({0,1}, {2}); post-order ranks: leaf0, leaf1, node01, leaf2
        u0, u1, u2 = (leaf[ii[k], jj[k]] for k, leaf in enumerate(f.leaves))
        b01, broot = f.transfers
        n01 = torch.einsum("a,b,abc->c", u0, u1, b01)
        expect = torch.einsum("a,b,ab->", n01, u2, broot).item()
    assert w[i, j].item() == pytest.approx(expect, abs=1e-12)


@pytest.mark.parametrize("cls", [TTMatrix, HTMatrix])
def test_full_rank_decomposition_is_exact(cls):
    torch.manual_seed(2)
    m, n = [2, 3, 2], [3, 2, 2]
    w = torch.randn(12, 12, dtype=torch.float64)
    full = tt_max_ranks(m, n) if cls is TTMatrix else HTMatrix(m, n, 1).max_ranks()
    f = cls(m, n, full).double()
    load_dense(f, w)
    assert torch.allclose(f.weight(), w, atol=1e-10)


def test_tt_svd_agrees_with_tensorly():
    tl = pytest.importorskip("tensorly")
    from tensorly.decomposition import tensor_train_matrix
    torch.manual_seed(3)
    m, n = [2, 3, 2], [3, 2, 2]
    w = torch.randn(12, 12, dtype=torch.float64)
    ours = TTMatrix(m, n, [2, 3]).double()
    load_dense(ours, w)
    t = w.numpy().reshape(*m, *n)
    theirs = tensor_train_matrix(tl.tensor(t), rank=[1, 2, 3, 1]).to_matrix()
    assert torch.allclose(ours.weight(), torch.as_tensor(theirs), atol=1e-8)


def test_low_rank_decomposition_better_than_random():
    torch.manual_seed(4)
    w = torch.randn(12, 12, dtype=torch.float64)
    f = HTMatrix([2, 3, 2], [3, 2, 2], 2).double()
    err_rand = torch.linalg.norm(f.weight() - w)
    load_dense(f, w)
    assert torch.linalg.norm(f.weight() - w) < err_rand


@pytest.mark.parametrize("cls", [TTLinear, HTLinear])
def test_linear_paths_equal_and_grads(cls):
    torch.manual_seed(5)
    lin = cls(64, 48, ranks=4).double()
    x = torch.randn(3, 5, 64, dtype=torch.float64)
    y1 = lin(x)
    lin.forward_path = "reconstruct"
    y2 = lin(x)
    assert y1.shape == (3, 5, 48)
    assert torch.allclose(y1, y2, atol=1e-10)
    g1 = torch.autograd.grad(y1.sum(), list(lin.parameters()))
    g2 = torch.autograd.grad(y2.sum(), list(lin.parameters()))
    assert all(torch.allclose(a, b, atol=1e-9) for a, b in zip(g1, g2))


@pytest.mark.parametrize("cls", [TTConv2d, HTConv2d])
def test_conv_paths_equal_and_from_dense(cls):
    torch.manual_seed(6)
    conv = cls(8, 12, 3, stride=2, padding=1, ranks=3).double()
    x = torch.randn(2, 8, 9, 9, dtype=torch.float64)
    y1 = conv(x)
    conv.forward_path = "contract"
    assert torch.allclose(conv(x), y1, atol=1e-10)
    assert torch.allclose(y1, nn.functional.conv2d(x, conv.weight, conv.bias, 2, 1), atol=1e-12)
    dense = nn.Conv2d(8, 12, 3, padding=1).double()
    t = cls.from_dense(dense, ranks=10**6)  # clamped to full rank: exact
    assert torch.allclose(t(x), dense(x), atol=1e-5)


@pytest.mark.parametrize("cls", [TTLinear, HTLinear])
def test_variance_matched_init(cls):
    torch.manual_seed(7)
    v = [cls(512, 512, ranks=6).weight_matrix.var().item() for _ in range(4)]
    assert sum(v) / 4 == pytest.approx(2 / 512, rel=0.35)


def test_bad_inputs_name_layer_and_allowed_values():
    with pytest.raises(ConfigError, match=r"fc1.*product is 100"):
        TTLinear(100, 10, in_modes=[3, 33], out_modes=[2, 5], name="fc1")
    with pytest.raises(ConfigError, match=r"fc2: TT ranks \[50\].*<= \[2\]"):
        TTMatrix([2, 2], [1, 1], [50], name="fc2")
    with pytest.raises(ConfigError, match=r"fc3: HT ranks"):
        HTMatrix([2, 2], [2, 2], 9, name="fc3")
    with pytest.raises(ConfigError, match="forward_path"):
        TTLinear(4, 4, ranks=1, forward_path="fast")
    with pytest.raises(ConfigError, match="strategy"):
        tensorize(nn.Linear(4, 4), "cp")


def _net():
    torch.manual_seed(8)
    return build_model("liafnet", in_channels=2, num_classes=10, input_size=(16, 16),
                       channels=(8, 16), hidden=32).eval()


@pytest.mark.parametrize("strategy,conv_t,lin_t", [("hybrid", TTConv2d, HTLinear),
                                                   ("tt", TTConv2d, TTLinear),
                                                   ("ht", HTConv2d, HTLinear)])
def test_tensorize_model(strategy, conv_t, lin_t):
    net = _net()
    x = (torch.rand(3, 2, 2, 16, 16) < 0.3).float()
    y0 = net(x)
    names = tensorize(net, strategy, rank=10**6)  # full ranks: same function
    assert names == ["features.1.0.module", "classifier.1"]
    assert isinstance(net.get_submodule(names[0]), conv_t)
    assert isinstance(net.get_submodule(names[1]), lin_t)
    assert isinstance(net.get_submodule("classifier.6"), nn.Linear)  # classifier kept dense
    assert torch.allclose(net(x), y0, atol=1e-4)
    small = _net()
    tensorize(small, strategy, rank=2)
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in _net().parameters())


def test_cost_counters_dense_equivalent_and_contraction_ops():
    torch.manual_seed(9)
    lin = TTLinear(36, 24, in_modes=[3, 2, 6], out_modes=[2, 3, 4], ranks=2)
    model = nn.Sequential(lin)
    x = (torch.rand(2, 3, 36) < 0.5).float()  # [T, B, N]
    rep = measure_cost(model, [x])
    row = next(r for r in rep.rows if r.role == "synapse")
    assert row.dense_macs == 2 * 36 * 24  # per sample, T = 2 steps
    steps = lin.matrix.contract_macs()
    nnz = int(x.sum())
    first = nnz * (steps[0] // 36)
    inner = 2 * 3 * sum(steps[1:])
    assert row.eff_acs == pytest.approx(first / 3)
    assert row.eff_macs == pytest.approx(inner / 3)
    assert math.prod(lin.matrix.out_modes) == 24
