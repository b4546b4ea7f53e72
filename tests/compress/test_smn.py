"""SMN (spec A7 vectors, custom backward vs autograd, fold, drop-in) and BDI diagnostics."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from spikeloom.compress.bdi import bdi_report, bdi_table, phi_exact, phi_hutchinson
from spikeloom.compress.smn import SMN, CenteredWeight, fold_smn, smn_function, to_smn
from spikeloom.models.registry import build_model


def test_spec_vector_one_channel():
    smn = SMN(1, eps=0.0)
    y = smn(torch.tensor([1.0, -1.0, 2.0, -2.0]).view(4, 1))
    assert smn.running_s.item() == pytest.approx(0.9 + 0.1 * 1.5811, abs=1e-4)
    assert torch.allclose(y.flatten(), torch.tensor([0.6325, -0.6325, 1.2649, -1.2649]),
                          atol=1e-4)


def test_custom_backward_equals_autograd():
    torch.manual_seed(0)
    x = torch.randn(40, 3, dtype=torch.float64, requires_grad=True)
    gam = torch.rand(3, dtype=torch.float64, requires_grad=True)
    bet = torch.randn(3, dtype=torch.float64, requires_grad=True)
    g = torch.randn(40, 3, dtype=torch.float64)
    for eps in (0.0, 1e-3):
        ours = torch.autograd.grad((smn_function(x, gam, bet, eps) * g).sum(), (x, gam, bet))
        s = x.square().mean(0).sqrt()
        ref = torch.autograd.grad(((x * gam / (s + eps) + bet) * g).sum(), (x, gam, bet))
        assert all(torch.allclose(a, b, atol=1e-10) for a, b in zip(ours, ref))
    assert torch.autograd.gradcheck(lambda a, b, c: smn_function(a, b, c, 1e-3), (x, gam, bet))


def test_centred_weights_and_fold():
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 5, 3, padding=1)
    torch.nn.utils.parametrize.register_parametrization(conv, "weight", CenteredWeight())
    assert torch.allclose(conv.weight.mean((1, 2, 3)), torch.zeros(5), atol=1e-6)
    smn = SMN(5)
    x = torch.randn(8, 3, 6, 6)
    smn(conv(x))  # one training step of the running statistic
    with torch.no_grad():
        smn.weight.uniform_(0.5, 1.5)
        smn.bias.normal_()
    smn.eval()
    folded = fold_smn(conv, smn)
    assert type(folded) is nn.Conv2d
    assert torch.allclose(folded(x), smn(conv(x)), atol=1e-5)


def test_drop_in_for_tdbn_in_a_model():
    torch.manual_seed(2)
    net = build_model("liafnet", in_channels=2, num_classes=10, input_size=(16, 16),
                      channels=(4, 8), hidden=16)
    ref = copy.deepcopy(net)
    names = to_smn(net)
    assert names == ["features.0.1", "features.1.1", "classifier.2"]
    assert all(isinstance(net.get_submodule(n), SMN) for n in names)
    x = (torch.rand(3, 4, 2, 16, 16) < 0.3).float()
    y = net(x)
    y.sum().backward()
    assert y.shape == ref(x).shape and torch.isfinite(y).all()
    assert net.get_submodule("features.1.1").weight.grad is not None


def test_phi_linear_relu_he_is_about_one():
    torch.manual_seed(3)
    lin = nn.Linear(512, 512, bias=False)
    nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")  # fan-in: 2/n
    block = nn.Sequential(lin, nn.ReLU())
    x = torch.randn(1, 512)
    exact = phi_exact(block, x)
    assert 0.85 < exact < 1.15
    est, se = phi_hutchinson(block, x, probes=128, generator=torch.Generator().manual_seed(0))
    assert abs(est - exact) < 4 * se + 1e-3 and se < 0.02


def test_serial_rule_on_a_deep_he_relu_mlp():
    torch.manual_seed(4)
    layers = []
    for _ in range(10):
        lin = nn.Linear(128, 128, bias=False)
        nn.init.kaiming_normal_(lin.weight, nonlinearity="relu")
        layers.append(nn.Sequential(lin, nn.ReLU()))
    mlp = nn.Sequential(*layers)
    x = torch.randn(4, 128)
    rows = bdi_report(mlp, x, probes=16)
    assert len(rows) == 10 and all(0.5 < r.phi < 1.5 for r in rows)
    whole, _ = phi_hutchinson(mlp, x, probes=32, generator=torch.Generator().manual_seed(1))
    assert 0.7 < whole < 1.3
    assert "product (serial rule)" in bdi_table(rows)


def test_bdi_report_exact_on_small_blocks_of_a_spiking_model():
    torch.manual_seed(5)
    net = build_model("liafnet", in_channels=2, num_classes=10, input_size=(8, 8),
                      channels=(2,), hidden=8)
    x = torch.rand(2, 2, 2, 8, 8)
    rows = bdi_report(net, x, blocks=["classifier"], exact_max=10**6)
    assert rows[0].stderr == 0.0 and rows[0].phi > 0
