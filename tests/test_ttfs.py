"""TTFS networks (spec C2) and BatchNorm folding: spec vectors, exact ReLU equivalence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spikeloom.cost import measure_cost
from spikeloom.errors import ConfigError, ExportError
from spikeloom.fold import fold_bn_after, fold_bn_before, fold_sequential
from spikeloom.ttfs import TTFSLinear, TTFSNet, relu_to_ttfs

D64 = torch.float64


def _spec_net() -> TTFSNet:
    net = TTFSNet((2, 2, 2), x_max=1.0).to(D64)
    with torch.no_grad():
        net.layers[0].weight.copy_(torch.tensor([[1.0, -0.5], [0.5, 0.5]], dtype=D64).T)
        net.layers[0].bias.copy_(torch.tensor([0.1, -0.6], dtype=D64))
        net.layers[1].weight.copy_(torch.tensor([[1.0, 2.0], [-1.0, 0.5]], dtype=D64).T)
        net.layers[1].bias.copy_(torch.tensor([0.05, 0.0], dtype=D64))
    return net


def test_spec_vectors():
    net = _spec_net()
    l1 = net.layers[0]
    assert (float(l1.t_min), float(l1.t_max)) == (1.0, 2.5)
    tr = net.trace(torch.tensor([[0.2, 0.8]], dtype=D64))
    torch.testing.assert_close(tr.times[0], torch.tensor([[1.8, 2.5]], dtype=D64))
    assert tr.spikes[0].tolist() == [[1.0, 0.0]]  # neuron 1 does not fire
    torch.testing.assert_close(2.5 - tr.times[0], torch.tensor([[0.7, 0.0]], dtype=D64))
    torch.testing.assert_close(tr.logits, torch.tensor([[0.75, 1.4]], dtype=D64))
    assert float(net.layers[1].t_min) == 2.5 and tr.early == [0] and tr.input_spikes == 2
    assert tr.spikes_per_neuron() == 0.5
    theta = l1.threshold(0.0)  # ϑ^eff + α·(1 − 0), α = 1 − ΣW
    torch.testing.assert_close(theta, torch.tensor([1.4 - 0.5, 2.1 + 1.0], dtype=D64))


def test_closed_form_matches_euler_simulation_of_the_if_neuron():
    # dV/dt = α H(t − 0) + 1·H(t − 0.8) + 0.5·H(t − 0.2), α = −0.5, threshold 0.9
    dt = 1e-5
    t = np.arange(0.0, 2.5, dt)
    slope = -0.5 + 1.0 * (t >= 0.8) + 0.5 * (t >= 0.2)
    v = np.cumsum(slope) * dt
    t_cross = t[np.argmax(v >= 0.9)]
    closed = float(_spec_net().trace(torch.tensor([[0.2, 0.8]], dtype=D64)).times[0][0, 0].detach())
    assert closed == pytest.approx(1.8, abs=1e-12)
    assert abs(t_cross - closed) < 3e-5


def test_mapped_network_equals_relu_twin_to_1e12():
    torch.manual_seed(0)
    net = TTFSNet((20, 16, 12, 5), x_max=50.0).to(D64)
    x = torch.rand(64, 20, dtype=D64)
    tr = net.trace(x)
    relu = net.relu_twin()
    torch.testing.assert_close(tr.logits, relu(x), atol=1e-12, rtol=0)
    h = relu[2](relu[1](relu[0](x)))
    torch.testing.assert_close(float(net.layers[0].t_max) - tr.times[0], h, atol=1e-12, rtol=0)
    assert tr.spikes_per_neuron() <= 1.0
    fired = sum(float(s.sum()) for s in tr.spikes)
    assert fired == float((h > 0).sum() + (relu[4](relu[3](h)) > 0).sum())


def _sgd_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("slope", ["identity", "free"])
def test_sgd_step_follows_relu_trajectory_only_with_identity_mapping(slope):
    torch.manual_seed(1)
    net = TTFSNet((6, 8, 3), x_max=100.0, slope=slope).to(D64)
    x, y = torch.rand(16, 6, dtype=D64), torch.randint(0, 3, (16,))
    relu = net.relu_twin()
    torch.testing.assert_close(net(x), relu(x), atol=1e-12, rtol=0)  # B = 1 at init in both
    w_snn = _sgd_step(net, x, y)
    w_relu = [p for p in _sgd_step(relu, x, y)]
    diff = max(float((a - b).abs().max()) for a, b in zip(w_snn, w_relu, strict=True))
    if slope == "identity":
        assert diff < 1e-12
    else:  # free slope: B moves with W, the trajectory leaves the ReLU one
        assert diff > 1e-4


@pytest.mark.parametrize(("B", "gain"), [(0.5, 1024.0), (1.0, 1.0), (2.0, 2.0 ** -10)])
def test_free_slope_gain_compounds_over_ten_layers(B, gain):
    layers = [TTFSLinear(1, 1, slope="free", t_min=1.0 + 5 * i, t_max=6.0 + 5 * i).to(D64)
              for i in range(10)]
    with torch.no_grad():
        for m in layers:
            m.weight.fill_(1.0)
            m.bias.fill_(1.0)  # keeps every neuron active
            m.alpha0.fill_(B - 1.0)
    t0 = torch.tensor([[0.5]], dtype=D64, requires_grad=True)
    s, t = torch.ones_like(t0), t0
    for m in layers:
        s, t = m(s, t)
    (g,) = torch.autograd.grad(t.sum(), t0)
    assert float(g) == pytest.approx(gain, rel=1e-9)


def test_windows_grow_and_remove_early_spikes():
    torch.manual_seed(2)
    net = TTFSNet((10, 7, 7, 3), x_max=1e-3).to(D64)  # far too narrow windows
    x = torch.rand(32, 10, dtype=D64)
    tr = net.trace(x)
    assert sum(tr.early) > 0
    before = net.widths
    widths = net.grow_windows(tr)
    assert all(a >= b for a, b in zip(widths, before, strict=True))
    assert net.layers[1].t_min == net.layers[0].t_max  # consecutive
    assert float(net.layers[-1].t_min) == pytest.approx(1.0 + sum(widths))
    tr2 = net.trace(x)
    assert tr2.early == [0, 0]
    torch.testing.assert_close(tr2.logits, tr.logits, atol=1e-12, rtol=0)  # values unchanged


def _bn(n: int, seed: int) -> nn.BatchNorm1d:
    g = torch.Generator().manual_seed(seed)
    bn = nn.BatchNorm1d(n)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(n, generator=g))
        bn.running_var.copy_(torch.rand(n, generator=g) + 0.5)
        bn.weight.copy_(torch.randn(n, generator=g))
        bn.bias.copy_(torch.randn(n, generator=g))
    return bn.eval()


def test_relu_to_ttfs_with_batchnorm_and_input_range_is_exact():
    torch.manual_seed(3)
    relu = nn.Sequential(
        nn.Flatten(), nn.Linear(12, 9), _bn(9, 0), nn.ReLU(),
        nn.Linear(9, 7), nn.ReLU(), _bn(7, 1), nn.Dropout(0.1), nn.Linear(7, 4),
    ).to(D64).eval()
    x = torch.rand(40, 12, dtype=D64) * 2 - 1  # inputs in [-1, 1]
    net = relu_to_ttfs(relu, [x[:20], x[20:]], input_range=(-1.0, 1.0))
    tr = net.trace((x + 1) / 2)
    torch.testing.assert_close(tr.logits, relu(x), atol=1e-10, rtol=0)
    assert tr.early == [0, 0]  # windows are 1.5 × the measured maximum
    h1 = torch.relu(relu[2](relu[1](relu[0](x))))
    assert net.widths[0] == pytest.approx(1.5 * float(h1.detach().max()))


def test_relu_to_ttfs_rejects_bad_layouts():
    with pytest.raises(ConfigError, match="unsupported layer"):
        relu_to_ttfs(nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.Linear(2, 2)),
                     [torch.rand(1, 2)])
    with pytest.raises(ConfigError, match="ending with a Linear"):
        relu_to_ttfs(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), [torch.rand(1, 2)])
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        TTFSNet((2, 2, 2))(torch.full((1, 2), 2.0))


def test_fold_bn_after_conv_and_before_linear():
    torch.manual_seed(4)
    conv = nn.Conv2d(3, 5, 3, padding=1).to(D64)
    bn = nn.BatchNorm2d(5).to(D64)
    bn.train()(conv(torch.randn(8, 3, 6, 6, dtype=D64)))  # running statistics
    bn.eval()
    x = torch.randn(2, 3, 6, 6, dtype=D64)
    torch.testing.assert_close(fold_bn_after(conv, bn)(x), bn(conv(x)), atol=1e-12, rtol=0)
    lin, bn1 = nn.Linear(7, 3).to(D64), _bn(7, 5).to(D64)
    z = torch.randn(4, 7, dtype=D64)
    torch.testing.assert_close(fold_bn_before(bn1, lin)(z), lin(bn1(z)), atol=1e-12, rtol=0)
    with pytest.raises(ExportError, match="border positions"):
        fold_bn_before(bn, conv)
    seq = nn.Sequential(nn.Linear(7, 3), nn.BatchNorm1d(3)).eval()
    assert not any(isinstance(m, nn.BatchNorm1d) for m in fold_sequential(seq))


def test_cost_report_counts_ttfs_input_spikes():
    net = _spec_net()
    x = torch.tensor([[[0.2, 0.8]], [[0.0, 0.5]]]).transpose(0, 1)  # [T=1, B=2, 2]
    rep = measure_cost(net, [x.to(D64)])
    rows = {r.name: r for r in rep.rows}
    # layer 1: 3 input spikes (0.0 does not spike) × 2 outputs over 2 samples
    assert rows["layers.0"].eff_acs == pytest.approx(3.0)
    assert rows["layers.0"].input_kind == "spike"
    # readout: hidden spikes of sample 0 (1 spike) and sample 1 (h = relu(...)) × 2 outputs
    h1 = net.trace(x[0].to(D64)).spikes[0]
    assert rows["layers.1"].eff_acs == pytest.approx(float(h1.sum()) * 2 / 2)
    assert rows["layers.0"].dense_macs == 4 and rows["layers.1"].dense_macs == 4


def test_registered_model_builds_from_a_frames_spec():
    from spikeloom.datasets.spec import DataSpec
    from spikeloom.models import build_model

    net = build_model("ttfs_fc", DataSpec("frames", 10, T=1, channels=1, size=(28, 28)))
    assert isinstance(net, TTFSNet) and net.sizes == [784, 340, 10]
    assert net(torch.rand(1, 3, 1, 28, 28)).shape == (3, 10)
    assert build_model("ttfs_fc", input_size=4, in_channels=2).sizes == [32, 340, 10]
