"""DSR neurons (spec snn.md §6): forward test vectors, the representation backward, thresholds,
and --method dsr swapping the neurons of a model."""

import math

import pytest
import torch

from spikeloom.errors import ConfigError
from spikeloom.methods import METHODS
from spikeloom.methods.dsr import (
    DSRIF,
    DSRLIF,
    ClampThresholds,
    WeightedRate,
    dsr_if_forward,
    dsr_lif_forward,
    lif_time_weights,
    swap_to_dsr,
)
from spikeloom.models import build_model
from spikeloom.neurons import LIF


def test_if_forward_vector():
    x = torch.full((5, 1), 0.4)
    s, m = dsr_if_forward(x, 1.0, 0.5)
    assert torch.allclose(m[:, 0], torch.tensor([0.4, -0.2, 0.2, -0.4, 0.0]), atol=1e-6)
    assert s[:, 0].tolist() == [0.0, 1.0, 0.0, 1.0, 0.0]
    assert s.mean().item() == pytest.approx(0.4)  # = clamp(0.4, 0, 1)


@pytest.mark.parametrize("value,rate", [(1.7, 1.0), (-0.2, 0.0), (0.4, 0.4)])
def test_if_rate_is_clamp(value, rate):
    n = DSRIF(v_th=1.0, alpha=0.5)
    out = n(torch.full((5, 2, 3), value))
    assert out.mean(0).flatten().tolist() == pytest.approx([rate] * 6)


def test_if_backward_representation():
    torch.manual_seed(0)
    n = DSRIF(v_th=1.0, alpha=0.5)
    xbar = torch.tensor([0.5, 1.5, -0.3])  # inside, saturated, silent
    x = (xbar + 0.1 * torch.randn(6, 3)).detach()
    x = x - x.mean(0) + xbar  # exact means
    x.requires_grad_(True)
    g = torch.randn(6, 3)
    n(x).backward(g)
    expected = g.mean(0) * torch.tensor([1.0, 0.0, 0.0])
    assert torch.allclose(x.grad, expected.expand(6, 3), atol=1e-6)
    # the threshold gradient comes from the saturated neuron only
    assert n.v_th.grad.item() == pytest.approx(g[:, 1].sum().item(), abs=1e-6)


def test_lif_forward_and_weights():
    tau, dt = 1.0, 0.05
    w = lif_time_weights(4, tau, dt, torch.float64)
    raw = torch.tensor([math.exp(-(4 - i) * dt / tau) for i in range(1, 5)], dtype=torch.float64)
    assert torch.allclose(w, raw / raw.sum())
    assert w[-1] > w[0]
    # saturated input: spike every step, output V_th/Δt
    o, _ = dsr_lif_forward(torch.full((4, 1), 100.0), 0.3, 0.3, tau, dt)
    assert o[:, 0].tolist() == pytest.approx([6.0] * 4)
    # hand-computed first step: m = (1-β)·x; β = exp(-0.05)
    beta = math.exp(-0.05)
    o, m = dsr_lif_forward(torch.full((2, 1), 2.0), 0.3, 0.3, tau, dt)
    m1 = (1 - beta) * 2.0  # 0.0975... >= 0.09 -> spike 0.3
    assert o[0, 0].item() == pytest.approx(0.3 / dt)
    assert m[0, 0].item() == pytest.approx(m1 - 0.3, abs=1e-6)


def test_lif_backward_formula():
    torch.manual_seed(1)
    T, tau, dt = 5, 1.0, 0.05
    n = DSRLIF(v_th=0.3, alpha=0.3, tau=tau, dt=dt)
    x = torch.tensor([[1.0, 20.0, -1.0]]).repeat(T, 1).requires_grad_(True)  # in, sat, silent
    g = torch.randn(T, 3)
    n(x).backward(g)
    w = lif_time_weights(T, tau, dt)
    G = T * (w[:, None] * g).sum(0)
    expected = G / tau / T * torch.tensor([1.0, 0.0, 0.0])
    assert torch.allclose(x.grad, expected.expand(T, 3), atol=1e-6)
    assert n.v_th.grad.item() == pytest.approx(dt * G[1].item(), rel=1e-5)  # 'code' factor Δt
    n2 = DSRLIF(v_th=0.3, alpha=0.3, tau=tau, dt=dt, vth_grad="exact")
    n2(x.detach()).backward(g)
    assert n2.v_th.grad.item() == pytest.approx(G[1].item() / dt, rel=1e-5)


def test_threshold_bound_and_readout():
    n = DSRIF(v_th=1.0, vth_bound=0.01)
    with torch.no_grad():
        n.v_th.fill_(-3.0)
    n.clamp_threshold()
    assert n.v_th.item() == pytest.approx(0.01)
    r = WeightedRate(1.0, 0.05)(torch.ones(3, 2, 4))
    assert torch.allclose(r, torch.ones(2, 4))
    assert torch.allclose(WeightedRate()(torch.arange(3.0).view(3, 1)), torch.tensor([1.0]))


def test_method_swaps_neurons_and_trains():
    torch.manual_seed(0)
    model = build_model("liafnet", neuron="lif", channels=(4,), hidden=8, input_size=(8, 8))
    method = METHODS.get("dsr")
    swap_to_dsr(model, method.resolve({}))
    neurons = [m for m in model.modules() if isinstance(m, (DSRLIF, DSRIF))]
    assert len(neurons) == 2 and not any(isinstance(m, LIF) for m in model.modules())
    x = torch.rand(4, 3, 2, 8, 8)
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1, 2]))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    cb = method.make_callbacks({})
    assert isinstance(cb[0], ClampThresholds)


def test_method_refuses_liaf_and_bad_options():
    model = build_model("liafnet", channels=(4,), hidden=8, input_size=(8, 8))  # LIAF
    with pytest.raises(ConfigError, match="LIAF"):
        swap_to_dsr(model, {})
    with pytest.raises(ConfigError, match="no option"):
        METHODS.get("dsr").resolve({"bogus": 1})


def test_config_method_is_checked():
    from spikeloom.train import TrainConfig

    with pytest.raises(ConfigError, match="method must be one of"):
        TrainConfig(method="nope").validate()
    with pytest.raises(ConfigError, match="no option"):
        TrainConfig(method="joint-asnn", method_kwargs={"v_th": 1}).validate()
    TrainConfig(method="JOINT-ASNN", method_kwargs={"alpha": 0.2}).validate()


def test_bound_holds_without_the_callback():
    n = DSRIF(v_th=1.0, vth_bound=0.5)
    with torch.no_grad():
        n.v_th.fill_(0.1)
    # below the bound the forward uses the bound: input 0.5 per step saturates at rate 0.5
    assert n(torch.full((4, 1), 0.9)).mean().item() == pytest.approx(0.5)


def test_method_arg_on_the_command_line():
    from spikeloom.cli import build_parser
    from spikeloom.cli.train import config_from_args

    args = build_parser().parse_args(["train", "--method", "dsr", "--method-arg", "dt=0.25",
                                      "--method-arg", "neuron=lif"])
    c = config_from_args(args)
    assert c.method_kwargs == {"dt": 0.25, "neuron": "lif"}
    c.validate()
    bad = build_parser().parse_args(["train", "--method", "dsr", "--method-arg", "tau"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        config_from_args(bad)
