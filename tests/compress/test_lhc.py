"""Learnable Heterogeneous Convolution (spec A6 test vectors, STE, schedule, report)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikeloom.compress.lhc import (
    RIGID_SHAPES,
    LHCConv2d,
    LHCSchedule,
    lhc_report,
    loss_max,
    mask_loss,
    to_lhc,
)
from spikeloom.cost import measure_cost
from spikeloom.errors import ConfigError
from spikeloom.layers import TimeDistributed


def test_groups_of_one_mask_is_step_of_effects_and_forward_is_masked_conv():
    torch.manual_seed(0)
    m = LHCConv2d(3, 4, 3, padding=1)
    mask = m.mask()
    assert torch.equal(mask, (m.effects.detach().permute(0, 1, 2, 3) > 0).float())
    x = torch.randn(2, 3, 6, 6)
    assert torch.allclose(m(x), F.conv2d(x, m.weight * mask, m.bias, padding=1))


def test_all_ones_mask_loss_equals_loss_max():
    m = LHCConv2d(4, 4, 3, padding=1)
    with torch.no_grad():
        m.effects.fill_(1.0)
    m(torch.randn(1, 4, 5, 5))
    assert mask_loss([m], 0.1).item() == pytest.approx(0.901)
    assert loss_max(0.1) == pytest.approx(0.901)


def test_grouped_effect_flip_changes_exactly_group_taps():
    m = LHCConv2d(64, 32, 3, padding=1, group_in=32, group_out=16)
    assert tuple(m.effects.shape) == (2, 2, 3, 3)  # spec: 3x3x2x2 in (k, k, C_in/g, C_out/g)
    before = m.mask().clone()
    with torch.no_grad():
        m.effects[1, 0, 2, 1] *= -1
    assert int((m.mask() != before).sum()) == 32 * 16


def test_crop_when_channels_not_divisible():
    m = LHCConv2d(5, 7, 3, group_in=2, group_out=4)
    assert tuple(m.effects.shape) == (2, 3, 3, 3) and tuple(m.mask().shape) == (7, 5, 3, 3)


def test_rigid_shapes_tap_counts_and_lhc_r():
    counts = sorted(RIGID_SHAPES.flatten(1).sum(1).int().tolist())
    assert counts == [0, 1, 3, 3, 3, 3, 4, 4, 4, 4, 6, 6, 6, 6, 9]
    assert len({tuple(s.flatten().tolist()) for s in RIGID_SHAPES}) == 15
    m = LHCConv2d(2, 2, 3, variant="r")
    with torch.no_grad():
        m.effects.zero_()
        m.effects[4, 0, 1] = 5.0  # diagonal for (out 0, in 1)
    assert torch.equal(m.mask()[0, 1], torch.eye(3))


def test_damped_straight_through_gradients():
    m = LHCConv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        m.effects.copy_(torch.tensor([0.5, -0.5, 2.0, -3.0, 0.1, 0.9, -0.9, 1.5, 0.0]).view(
            1, 1, 3, 3))
        m.weight.fill_(1.0)
    m.mask().sum().backward()
    expect = torch.tensor([1, 1, 0.1, 0.1, 1, 1, 1, 0.1, 1]).view(1, 1, 3, 3)
    assert torch.allclose(m.effects.grad, expect)


class _Ctx:
    def __init__(self, model, epoch, step, record=None):
        self.model, self.epoch, self.step, self.record = model, epoch, step, record or {}
        self.config = None


def test_schedule_lambda_warmup_mask_enabling_and_freeze():
    torch.manual_seed(1)
    net = nn.Sequential(LHCConv2d(2, 8, 3, padding=1))
    sched = LHCSchedule(density=0.1, warmup_epochs=4, coarse_epochs=5)
    sched.after_backward(_Ctx(net, 0, 0))
    assert not net[0].use_learned.any()  # epoch 0: p = 0/4, dense masks
    assert sched.lam(0) == 0.0
    sched.epoch_end(_Ctx(net, 0, 5, {"train_loss": 2.0 * loss_max(0.1)}))
    assert sched.scale0 == pytest.approx(2.0)
    assert sched.lam(1) == pytest.approx(1 * (4 / 4) * 2.0) and sched.lam(9) == pytest.approx(8.0)
    for e in range(1, 6):
        sched.epoch_end(_Ctx(net, e - 1, 5))
    net[0](torch.randn(1, 2, 4, 4)).sum().backward()
    sched.after_backward(_Ctx(net, 5, 0))
    assert net[0].use_learned.all() and not net[0].effects.requires_grad  # fine stage


def test_regulariser_drives_density_down():
    torch.manual_seed(2)
    m = LHCConv2d(8, 8, 3, padding=1)
    m(torch.randn(1, 8, 6, 6))
    opt = torch.optim.Adam([m.effects], lr=0.05)
    d0 = m.mask().mean().item()
    for _ in range(40):
        opt.zero_grad()
        mask_loss([m], 0.1).backward()
        opt.step()
    assert m.mask().mean().item() < min(d0, 0.2)


def test_report_and_cost_use_kept_taps():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(4, 4, 3, padding=1))
    assert to_lhc(net) == ["1"]
    m = net[1]
    x = torch.randn(2, 4, 5, 5)
    m(x)
    (row,) = lhc_report(net)
    assert row.density == pytest.approx(m.mask().mean().item())
    assert row.flops_kept == int(m.mask().sum()) * 25
    spikes = (torch.rand(1, 3, 4, 5, 5) < 0.5).float()
    rep = measure_cost(TimeDistributed(m), [spikes])
    r = next(r for r in rep.rows if r.role == "synapse")
    expect = F.conv2d(spikes[0].double(), m.mask().double(), padding=1).sum() / 3
    assert r.eff_acs == pytest.approx(expect.item())
    with pytest.raises(ConfigError, match="LHC-R needs 3x3"):
        LHCConv2d(2, 2, 5, variant="r")
