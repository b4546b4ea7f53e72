"""GXNOR (spec A1): activation and window, states, DST, gated XNOR dot."""

from __future__ import annotations

import math

import pytest
import torch

from spikeloom.compress.gxnor import (
    DST,
    GXNORActivation,
    GXNORNet,
    discrete_states,
    gated_fraction,
    gated_xnor_dot,
    measure_gated_fraction,
    snap,
    squared_hinge,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_activation_and_derivative_window():
    x = torch.tensor([-2, -1.2, -0.9, 0, 0.6, 0.99, 1.01, 1.4, 3], requires_grad=True)
    y = GXNORActivation(r=1.0, a=0.5)(x)
    assert y.tolist() == [-1, -1, 0, 0, 0, 0, 1, 1, 1]
    y.sum().backward()
    expect = [1.0 if 0.5 <= abs(v) <= 1.5 else 0.0 for v in x.tolist()]
    assert x.grad.tolist() == expect


def test_multilevel_staircase():
    phi = GXNORActivation(r=0.25, a=0.1, N=2, H=1.0)  # steps of 0.5 after 0.25
    x = torch.tensor([0.2, 0.3, 0.74, 0.76, 2.0, -0.3])
    assert phi(x).tolist() == [0.0, 0.5, 0.5, 1.0, 1.0, -0.5]


def test_states():
    assert discrete_states(2, 1.0).tolist() == [-1, -0.5, 0, 0.5, 1]
    assert discrete_states(1).tolist() == [-1, 0, 1]
    assert discrete_states(0).tolist() == [-1, 1]


@pytest.mark.parametrize("w0,dw,p_up,hi", [(0.0, 0.3, math.tanh(0.9), 1.0),
                                            (1.0, 0.3, 1.0, 1.0),
                                            (-1.0, 1.4, math.tanh(1.2), 1.0)])
def test_dst_transition_probabilities(w0, dw, p_up, hi):
    g = torch.Generator().manual_seed(0)
    n = 100_000
    w = torch.full((n,), w0, dtype=torch.float64)
    out = DST.transition(w, torch.full_like(w, dw), 1, 1.0, 3.0, g)
    assert set(out.unique().tolist()) <= {-1.0, 0.0, 1.0}
    frac_hi = float((out == hi).double().mean())
    assert abs(frac_hi - p_up) < 0.01
    if w0 == -1.0:  # kappa = 1 always taken: lands on 0 or 1
        assert set(out.unique().tolist()) == {0.0, 1.0}


def test_dst_training_keeps_states_and_no_float_copy():
    torch.manual_seed(0)
    net = GXNORNet(width=(4, 8, 16))
    opt = DST(net.discrete_parameters(), lr=0.05, generator=torch.Generator().manual_seed(1))
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    y = torch.arange(8) % 10
    states = torch.tensor([-1.0, 0.0, 1.0])
    before = [p.detach().clone() for p in net.discrete_parameters()]
    for _ in range(3):
        opt.zero_grad()
        squared_hinge(net(x), y).backward()
        opt.step()
        for p in net.discrete_parameters():
            assert bool(torch.isin(p.detach(), states).all())
    assert any(not torch.equal(b, p) for b, p in zip(before, net.discrete_parameters()))
    for p in net.discrete_parameters():  # only Adam's moments: no weight copy
        assert set(opt.state[p]) == {"step", "exp_avg", "exp_avg_sq"}
    # the module holds no hidden weight either: every parameter is a weight or a BN affine
    names = {n.rsplit(".", 1)[-1] for n, _ in net.named_parameters()}
    assert names == {"weight", "bias"}


def test_gated_xnor_dot_equals_integer_dot():
    g = torch.Generator().manual_seed(0)
    w = torch.randint(-1, 2, (50, 257), generator=g)
    x = torch.randint(-1, 2, (50, 257), generator=g)
    assert torch.equal(gated_xnor_dot(w, x), (w * x).sum(-1))
    assert gated_fraction(torch.tensor([1, 0, -1, 1]), torch.tensor([1, 1, 0, -1])) == 0.5


def test_measure_gated_fraction_counts_nonzero_pairs():
    lin = torch.nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0, -1, 0], [0, 0, 1, 1]]))
    x = torch.tensor([[1.0, 1, 0, -1]])
    f = measure_gated_fraction(torch.nn.Sequential(lin), x)
    # executed pairs: row 0: (1,1) -> 1; row 1: (1,-1) at index 3 -> 1; of 8
    assert f["0"] == pytest.approx(2 / 8) and f["total"] == pytest.approx(2 / 8)
    assert torch.equal(snap(torch.tensor([0.4, 0.6, -3.0])), torch.tensor([0.0, 1.0, -1.0]))


def test_gxnor_net_is_priced_at_its_weight_width():
    from spikeloom.cost import Energy45nm, measure_cost

    torch.manual_seed(0)
    x = (torch.rand(1, 2, 1, 28, 28) * 2 - 1,)  # [T=1, B=2, ...]; T and B merged below
    costs = {}
    for N, want in [(1, "ternary"), (2, "int4")]:
        net = torch.nn.Sequential(torch.nn.Flatten(0, 1), GXNORNet(N=N, width=(2, 4, 8)))
        r = measure_cost(net, [x])
        syn = [row for row in r.rows if row.role == "synapse"]
        assert {row.precision for row in syn} == {want}
        add, mult = Energy45nm().add_mult(want)
        ops = sum(row.eff_macs for row in syn), sum(row.eff_acs for row in syn)
        assert r.snn_energy == pytest.approx(ops[0] * (add + mult) + ops[1] * add)
        costs[N] = r
    assert costs[1].snn_energy < costs[2].snn_energy


def test_dst_beta1_lowers_noise_transitions():
    """Pure-noise gradients: Adam scales each proposal to about lr, so weights keep moving;
    a higher beta1 averages the noise down and moves far fewer of them (bench run 8)."""
    def moves(beta1: float) -> int:
        w = torch.nn.Parameter(torch.zeros(5_000))
        opt = DST([w], lr=0.02, betas=(beta1, 0.999), generator=torch.Generator().manual_seed(0))
        g = torch.Generator().manual_seed(1)
        n = 0
        for step in range(1000):
            before = w.detach().clone()
            w.grad = torch.randn(w.shape, generator=g)
            opt.step()
            if step >= 500:  # after the moment estimates have warmed up
                n += int((w.detach() != before).sum())
        return n

    noisy, calm = moves(0.9), moves(0.99)
    # noise share of the proposal ~ sqrt((1-b)/(1+b)): 0.23 vs 0.07 (ratio 0.31)
    assert calm < 0.45 * noisy
