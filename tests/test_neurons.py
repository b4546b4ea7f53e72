"""Neurons, surrogates and the fused sequence op (spec §1, §2 test vectors)."""

from __future__ import annotations

import math

import pytest
import torch

from spikeloom.encoding import DirectEncoder, LatencyEncoder, PoissonEncoder
from spikeloom.functional import neuron_sequence, neuron_sequence_naive
from spikeloom.monitor import SpikeMonitor
from spikeloom.neurons import IF, LIAF, LIF, PLIF
from spikeloom.surrogate import ATan, Gaussian, Rectangular, Sigmoid, Triangular, get_surrogate


def seq(values):
    return torch.tensor(values, dtype=torch.float64).view(-1, 1)


# --- spec §1 LIF test vectors (k = 0.2, V_th = 0.5, strict >) ---------------------------------

def test_lif_constant_subthreshold_input():
    lif = LIF(v_th=0.5, decay=0.2)
    s, u, _ = neuron_sequence(seq([0.3] * 6), 0.2, v_th=0.5)
    expected = [0.3, 0.36, 0.372, 0.3744, 0.37488]
    assert torch.allclose(u[:5, 0], torch.tensor(expected, dtype=torch.float64))
    assert lif(seq([0.3] * 50)).sum() == 0  # fixed point 0.375 < V_th


def test_lif_alternating_spikes():
    s, u, _ = neuron_sequence(seq([0.45] * 6), 0.2, v_th=0.5)
    assert torch.allclose(u[:, 0], seq([0.45, 0.54] * 3)[:, 0])
    assert s[:, 0].tolist() == [0, 1, 0, 1, 0, 1]


def test_lif_reset_kills_carry_over():
    s, u, _ = neuron_sequence(seq([0.6, 0, 0, 0.6, 0.6, 0]), 0.2, v_th=0.5)
    assert torch.allclose(u[:, 0], seq([0.6, 0, 0, 0.6, 0.6, 0])[:, 0])
    assert s[:, 0].tolist() == [1, 0, 0, 1, 1, 0]


def test_rectangular_gradient_window():
    x = seq([0.2, 0.9, 1.2]).requires_grad_()
    # decay 0 isolates each step: u[t] = x[t]
    s, _, _ = neuron_sequence(x, 1e-30, v_th=0.5, surrogate=Rectangular(1.0))
    s.sum().backward()
    # ds/du = 1 iff |u - 0.5| < 0.5
    assert x.grad[:, 0].tolist() == [1.0, 1.0, 0.0]


# --- spec §2 LIAF test vectors ----------------------------------------------------------------

def test_liaf_ntr_trace():
    liaf = LIAF(v_th=0.3, decay=0.3, mode="ntr", activation="relu", fire_ge=True)
    x = seq([0.2, 0.2, 0.2, 0.5])
    y, v = liaf(x, return_state=True)
    assert torch.allclose(y[:, 0], torch.tensor([0.2, 0.26, 0.278, 0.5834], dtype=torch.float64))
    s, u, _ = neuron_sequence(x, 0.3, v_th=0.3, fire_ge=True)
    assert s[:, 0].tolist() == [0, 0, 0, 1]
    assert v.item() == 0.0  # V[4] = 0 after the spike


def test_liaf_tr_trace_and_not_binary():
    liaf = LIAF(v_th=0.3, decay=0.3, mode="tr", fire_ge=True)
    y = liaf(seq([0.2, 0.2, 0.2, 0.5]))
    assert torch.allclose(y[:, 0], torch.tensor([0, 0, 0, 0.2834], dtype=torch.float64))
    y = LIAF()(torch.rand(4, 3, 5))
    assert not torch.all((y == 0) | (y == 1))


def test_lif_output_is_exactly_spikes():
    x = torch.randn(6, 4, 3)
    s, _, _ = neuron_sequence(x, 0.5, v_th=0.5)
    assert torch.equal(LIF(decay=0.5)(x), s)
    assert set(s.unique().tolist()) <= {0.0, 1.0}


def test_liaf_pure_integrator():
    x = torch.rand(7, 2, 3, dtype=torch.float64)
    y = LIAF(v_th=math.inf, decay=1.0, activation="identity")(x)
    assert torch.allclose(y, x.cumsum(0))


def test_hard_reset_to_value_and_soft_reset():
    x = seq([1.0, 0.0])
    _, u, _ = neuron_sequence(x, 0.5, v_th=0.5, v_reset=0.2)
    assert torch.allclose(u[:, 0], seq([1.0, 0.1])[:, 0])  # 0.5 * 0.2
    _, u, _ = neuron_sequence(x, 0.5, v_th=0.5, reset="soft")
    assert torch.allclose(u[:, 0], seq([1.0, 0.25])[:, 0])  # 0.5 * (1 - 0.5)


def test_fire_ge_comparison():
    x = seq([0.5])
    assert neuron_sequence(x, 0.2, v_th=0.5)[0].item() == 0
    assert neuron_sequence(x, 0.2, v_th=0.5, fire_ge=True)[0].item() == 1


# --- fused op == naive loop (values and gradients) --------------------------------------------

CASES = [
    dict(reset="hard", detach_reset=False, surrogate="rectangular"),
    dict(reset="hard", detach_reset=True, surrogate="sigmoid"),
    dict(reset="soft", detach_reset=False, surrogate="arctan"),
    dict(reset="soft", detach_reset=True, surrogate="triangular"),
    dict(reset="hard", detach_reset=False, surrogate="gaussian", v_reset=0.1, fire_ge=True),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("learn_decay", [False, True])
def test_fused_matches_naive(case, learn_decay):
    torch.manual_seed(0)
    T, B, C = 7, 3, 5
    x = (torch.randn(T, B, C, dtype=torch.float64) * 0.6 + 0.3).requires_grad_()
    v0 = (torch.rand(B, C, dtype=torch.float64) * 0.3).requires_grad_()
    decay = (
        torch.full((C,), 0.4, dtype=torch.float64).requires_grad_() if learn_decay else 0.4
    )
    ws, wu, wv = torch.randn(T, B, C), torch.randn(T, B, C), torch.randn(B, C)
    results = []
    for fn in (neuron_sequence, neuron_sequence_naive):
        s, u, v = fn(x, decay, v_th=0.5, v0=v0, **case)
        loss = (s * ws).sum() + (u * wu).sum() + (v * wv).sum()
        params = [x, v0] + ([decay] if learn_decay else [])
        grads = torch.autograd.grad(loss, params)
        results.append((s.detach(), u.detach(), v.detach(), grads))
    (s1, u1, v1, g1), (s2, u2, v2, g2) = results
    assert torch.equal(s1, s2)
    assert torch.allclose(u1, u2) and torch.allclose(v1, v2)
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, atol=1e-10), (a - b).abs().max()


def test_fused_gradcheck():
    torch.manual_seed(1)
    x = (torch.randn(5, 2, 3, dtype=torch.float64)).requires_grad_()
    decay = torch.tensor([0.3, 0.5, 0.7], dtype=torch.float64, requires_grad=True)

    def f(x, decay):  # only the analog path is smooth enough for finite differences
        return neuron_sequence(x, decay, v_th=10.0, surrogate="sigmoid")[1]

    assert torch.autograd.gradcheck(f, (x, decay))


def test_state_does_not_leak_and_streaming_equals_whole():
    torch.manual_seed(2)
    lif = LIF(decay=0.5)
    x = torch.rand(10, 2, 4)
    assert torch.equal(lif(x), lif(x))
    y1, st = lif(x[:4], return_state=True)
    y2, _ = lif(x[4:], state=st, return_state=True)
    assert torch.equal(torch.cat([y1, y2]), lif(x))


def test_bad_shapes_give_clear_errors():
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        LIF()(torch.rand(5))
    with pytest.raises(ValueError, match="state has shape"):
        LIF()(torch.rand(3, 2, 4), state=torch.zeros(2, 5))
    with pytest.raises(ValueError, match="unknown surrogate"):
        LIF(surrogate="nope")
    with pytest.raises(ValueError, match="decay"):
        LIF(decay=1.5)


def test_if_and_plif():
    x = torch.full((4, 1), 0.4)
    assert IF(v_th=1.0)(x)[:, 0].tolist() == [0, 0, 1, 0]  # 0.4, 0.8, 1.2 -> fire
    plif = PLIF(init_tau=2.0)
    assert abs(plif.tau - 2.0) < 1e-6
    y = plif(torch.rand(6, 3, 4) * 3)
    y.sum().backward()
    assert plif.w.grad is not None and plif.w.grad.abs() > 0


def test_learnable_decay_gets_gradient():
    lif = LIF(decay=0.3, learn_decay=True, surrogate="sigmoid")
    lif(torch.rand(5, 4, 3)).sum().backward()
    assert lif.decay_logit.grad is not None and lif.decay_logit.grad != 0


def test_spike_rate_through_a_monitor():
    lif = LIF()
    with SpikeMonitor(lif) as mon:
        lif(torch.tensor([[1.0], [0.0], [1.0], [0.0]]))
    assert mon.rates()[""] == pytest.approx(0.5)


# --- surrogates --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "surr", [Rectangular(1.0), Rectangular(0.25), Triangular(1.0), Triangular(4.0), Sigmoid(4.0),
             ATan(2.0), Gaussian(1.0)]
)
def test_surrogates_integrate_to_one(surr):
    # dense grid near the threshold (box edges), sparse wide tails (arctan decays as 1/z^2)
    f64 = torch.float64
    z = torch.cat([torch.linspace(-1e4, -10, 1_000_000, dtype=f64)[:-1],
                   torch.linspace(-10, 10, 2_000_001, dtype=f64),
                   torch.linspace(10, 1e4, 1_000_000, dtype=f64)[1:]])
    area = torch.trapezoid(surr.grad(z), z).item()
    assert abs(area - 1.0) < 1e-3


def test_surrogate_by_name_and_width():
    assert get_surrogate("rectangular", 0.5) == Rectangular(0.5)
    assert get_surrogate("arctan").grad(torch.tensor(0.0)).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="positive"):
        Sigmoid(-1.0)


# --- encoders ----------------------------------------------------------------------------------

def test_encoders():
    x = torch.tensor([[0.0, 0.5, 1.0]])
    d = DirectEncoder(4)(x)
    assert d.shape == (4, 1, 3) and torch.equal(d[2], x)
    g = torch.Generator().manual_seed(0)
    p = PoissonEncoder(2000, generator=g)(x)
    rates = p.mean(0)[0]
    assert rates[0] == 0 and rates[2] == 1 and abs(rates[1] - 0.5) < 0.05
    lat = LatencyEncoder(5)(x)
    assert lat.sum(0).tolist() == [[0.0, 1.0, 1.0]]
    assert lat[0, 0, 2] == 1 and lat[2, 0, 1] == 1  # p=1 fires first, p=0.5 in the middle
    with pytest.raises(ValueError):
        DirectEncoder(0)
