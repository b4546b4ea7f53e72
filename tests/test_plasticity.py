"""Hybrid-plasticity layer and network (spec C1): spec vectors, GP equivalence, bounds, grads."""

from __future__ import annotations

import math

import pytest
import torch

from spikeloom.errors import ConfigError
from spikeloom.plasticity import HebbianLinear, HybridPlasticityNet, evaluate_hp, mse_onehot

D64 = torch.float64


def _spec_layer(**kw) -> HebbianLinear:
    m = HebbianLinear(2, 2, **kw).to(D64)
    with torch.no_grad():
        m.fc.weight.copy_(torch.tensor([[0.4, 0.1], [0.2, -0.4]]))
        m.fc.bias.copy_(torch.tensor([0.0, 0.05]))
        m.alpha.fill_(0.5)
        m.beta.copy_(torch.tensor([0.1, 0.3]))
        m.eta.copy_(torch.tensor([0.0, 0.1]))
    return m


def _spec_input(T: int = 3) -> torch.Tensor:
    t = torch.arange(T, dtype=D64)
    return (torch.tensor([1.0, 0.5], dtype=D64) * torch.exp(-t / 40)[:, None])[:, None, :]


def test_spec_vectors():
    m = _spec_layer()
    x = _spec_input()
    torch.testing.assert_close(x[1, 0], torch.tensor([0.97531, 0.48765], dtype=D64),
                               atol=1e-5, rtol=0)
    s, u, P = m(x)
    torch.testing.assert_close(u[:, 0], torch.tensor(
        [[0.45, 0.05], [0.55211, 0.07366], [0.65128, 0.09178]], dtype=D64), atol=1e-5, rtol=0)
    assert s[:, 0].tolist() == [[1, 0], [1, 0], [1, 0]]
    torch.testing.assert_close(P.flatten(), torch.tensor(
        [0.25314, 0.02935, 0.37971, 0.04403], dtype=D64), atol=1e-5, rtol=0)
    # P after t = 0 and t = 1 (runs of 1 and 2 steps)
    torch.testing.assert_close(m(x[:1])[2].flatten(), torch.tensor(
        [0.0858, 0.00428, 0.1287, 0.00642], dtype=D64), atol=1e-5, rtol=0)
    torch.testing.assert_close(m(x[:2])[2].flatten(), torch.tensor(
        [0.17106, 0.0148, 0.2566, 0.0222], dtype=D64), atol=1e-4, rtol=0)
    readout = torch.clamp(u[-1, 0] / 0.35, max=1.1)
    torch.testing.assert_close(readout, torch.tensor([1.1, 0.26222], dtype=D64),
                               atol=1e-5, rtol=0)


def test_zero_rule_equals_backprop_layer_bit_for_bit():
    torch.manual_seed(0)
    hp = HebbianLinear(5, 4, plasticity="hybrid")
    gp = HebbianLinear(5, 4, plasticity="backprop")
    gp.fc.load_state_dict(hp.fc.state_dict())
    with torch.no_grad():
        hp.alpha.zero_()
        hp.beta.zero_()
    x = torch.rand(6, 3, 5)
    s1, u1, _ = hp(x)
    s2, u2, P = gp(x)
    assert P is None and torch.equal(u1, u2) and torch.equal(s1, s2)


def test_fast_weights_stay_clamped_and_carry_over():
    torch.manual_seed(1)
    m = HebbianLinear(6, 3, clamp=0.5, meta_init=5.0)
    x = torch.rand(20, 4, 6) * 5
    _, _, P = m(x)
    P = P.detach()
    assert float(P.abs().max()) <= 0.5 and float(P.abs().max()) == pytest.approx(0.5)
    _, u_reset, _ = m(x)
    _, u_carry, _ = m(x, P)
    assert not torch.equal(u_reset, u_carry)  # the start state matters (explicit option)


def test_gradient_reaches_rule_parameters():
    m = _spec_layer()
    x = _spec_input(4).expand(4, 3, 2).clone()
    _, u, _ = m(x)
    u[-1].sum().backward()
    for p in (m.alpha, m.beta, m.eta):
        assert p.grad is not None and float(p.grad.abs().sum()) > 0


def test_local_variant_freezes_hidden_layer_and_trains_readout():
    torch.manual_seed(2)
    net = HybridPlasticityNet((12, 8, 3), variant="local", T=4)
    hidden, readout = net.layers
    assert not any(p.requires_grad for p in hidden.parameters())
    assert all(p.requires_grad for p in readout.parameters())
    groups = net.param_groups()
    assert [len(g["params"]) for g in groups] == [2, 3] and groups[1]["lr"] == 5e-4
    x, y = torch.rand(5, 12), torch.tensor([0, 1, 2, 0, 1])
    loss = mse_onehot(net(x), y)
    loss.backward()
    assert hidden.fc.weight.grad is None and readout.fc.weight.grad is not None


def test_network_readout_shape_reset_and_evaluate():
    torch.manual_seed(3)
    net = HybridPlasticityNet((12, 8, 3), variant="hybrid", T=5)
    x = torch.rand(4, 12)
    res = net.run(x)
    assert res.out.shape == (4, 3) and float(res.out.detach().max()) <= 1.1
    assert len(res.fast) == 2 and res.fast[0].shape == (12, 8)
    # time-major input with identical frames == static input
    torch.testing.assert_close(net(x[None].expand(5, 4, 12)), res.out)
    torch.testing.assert_close(net(x), net(x, fast=None))
    batches = [(x, torch.tensor([0, 1, 2, 0]))] * 2
    acc_reset, _ = evaluate_hp(net, batches, reset_fast=True)
    acc_carry, fast = evaluate_hp(net, batches, reset_fast=False, fast=res.fast)
    assert 0 <= acc_reset <= 1 and 0 <= acc_carry <= 1 and len(fast) == 2
    assert net.layers[0].initial_fast(x).abs().sum() == 0
    assert math.isfinite(float(mse_onehot(res.out, torch.tensor([0, 1, 2, 0])).detach()))


def test_bad_options():
    with pytest.raises(ConfigError, match="plasticity must be one of"):
        HebbianLinear(2, 2, plasticity="stdp")
    with pytest.raises(ConfigError, match="variant must be one of"):
        HybridPlasticityNet(variant="meta")
    with pytest.raises(ConfigError, match=r"expected \[T, B, 2\]"):
        HebbianLinear(2, 2)(torch.rand(3, 2))
