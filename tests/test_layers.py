"""Tests of spikeloom.layers: TimeDistributed, tdBN (spec §3), temporal attention (spec §4),
readouts and layout helpers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from spikeloom.layers import (
    LastStep,
    MeanOverTime,
    MembraneReadout,
    TdBN,
    TemporalAttention,
    TimeDistributed,
    from_time_major,
    permute_layout,
    to_time_major,
)
from spikeloom.monitor import AttentionMonitor

torch.set_default_dtype(torch.float32)


# ---------------------------------------------------------------------------------- layouts


def test_layout_helpers_roundtrip_and_values():
    x = torch.randn(2, 3, 4, 5, 6)  # B, C, T, H, W (LIAF code layout)
    y = to_time_major(x, "BCTHW")
    assert y.shape == (4, 2, 3, 5, 6)
    assert torch.equal(y[1, 0, 2], x[0, 2, 1])
    assert torch.equal(from_time_major(y, "BCTHW"), x)
    z = permute_layout(x, "BCTHW", "TBCHW")
    assert torch.equal(z, y)
    with pytest.raises(ValueError, match="same distinct letters"):
        permute_layout(x, "BCTHW", "TBCHX")
    with pytest.raises(ValueError, match="names 4 axes"):
        permute_layout(x, "BCTH", "TBCH")
    with pytest.raises(ValueError, match="must contain a 'T'"):
        to_time_major(x, "BCXHW")


# --------------------------------------------------------------------------- TimeDistributed


def test_time_distributed_equals_per_step_loop():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 4, 3, padding=1)
    td = TimeDistributed(conv)
    assert td.module is conv
    x = torch.randn(5, 3, 2, 8, 8)
    expected = torch.stack([conv(x[t]) for t in range(5)])
    torch.testing.assert_close(td(x), expected)

    lin = nn.Linear(6, 3)
    x = torch.randn(4, 2, 6)
    torch.testing.assert_close(TimeDistributed(lin)(x), torch.stack([lin(x[t]) for t in range(4)]))

    pool = TimeDistributed(nn.AvgPool2d(2))
    x = torch.randn(3, 2, 1, 4, 4)
    assert pool(x).shape == (3, 2, 1, 2, 2)
    assert torch.isclose(pool(x)[2, 1, 0, 0, 0], x[2, 1, 0, :2, :2].mean())


def test_time_distributed_rejects_missing_time_axis():
    td = TimeDistributed(nn.Conv2d(2, 4, 3))
    with pytest.raises(ValueError, match=r"expected \[T, B, \.\.\.\].*unsqueeze"):
        td(torch.randn(3, 2, 8, 8))
    with pytest.raises(ValueError, match=r"expected \[T, B, \.\.\.\]"):
        TimeDistributed(nn.Linear(3, 2))(torch.randn(4, 3))


# ----------------------------------------------------------------------------------- tdBN


def test_tdbn_spec_example_zero_two():
    # one channel, values {0, 2} in equal number across T·B·H·W -> {-0.5, +0.5} (spec §3)
    x = torch.zeros(4, 2, 1, 3, 3)
    x.view(-1)[::2] = 2.0
    x.view(-1)[1::2] = 0.0
    bn = TdBN(1, alpha=1.0, v_th=0.5, eps=1e-12)  # torch refuses eps = 0; 1e-12 is exact here
    y = bn(x)
    # exact up to float rounding: values are ±0.5
    torch.testing.assert_close(y[x == 2], torch.full_like(y[x == 2], 0.5))
    torch.testing.assert_close(y[x == 0], torch.full_like(y[x == 0], -0.5))
    assert abs(y.mean().item()) < 1e-7
    assert abs(y.std(unbiased=False).item() - 0.5) < 1e-6


@pytest.mark.parametrize("shape", [(6, 5, 3), (6, 5, 3, 7), (4, 3, 3, 5, 6)])
@pytest.mark.parametrize("alpha", [1.0, 1 / math.sqrt(2)])
def test_tdbn_train_mode_mean_zero_std_alpha_vth(shape, alpha):
    torch.manual_seed(1)
    scale = torch.tensor([3.0, 0.2, 10.0]).view(1, 1, 3, *([1] * (len(shape) - 3)))
    x = torch.randn(*shape) * scale + 5.0
    bn = TdBN(3, alpha=alpha, v_th=0.4)
    y = bn(x)
    assert y.shape == x.shape
    per_channel = y.transpose(0, 2).reshape(3, -1)
    torch.testing.assert_close(per_channel.mean(1), torch.zeros(3), atol=1e-5, rtol=0)
    expected_std = alpha * 0.4
    # biased std; eps slightly lowers it for small-variance channels
    torch.testing.assert_close(
        per_channel.std(1, unbiased=False), torch.full((3,), expected_std), atol=2e-4, rtol=0
    )


def test_tdbn_equals_batchnorm2d_on_folded_view_including_running_stats():
    torch.manual_seed(2)
    C, alpha, v_th = 4, 1 / math.sqrt(2), 0.5
    tdbn = TdBN(C, residual=True, v_th=v_th, momentum=0.1)
    assert tdbn.alpha == pytest.approx(alpha)
    ref = nn.BatchNorm2d(C, affine=False, momentum=0.1)
    lam = torch.randn(C)
    beta = torch.randn(C)
    with torch.no_grad():
        tdbn.weight.copy_(lam)
        tdbn.bias.copy_(beta)
    for step in range(5):
        x = torch.randn(3, 2, C, 5, 5) * (step + 1) + step
        y = tdbn(x)
        r = ref(x.flatten(0, 1)) * alpha * v_th
        r = r * lam.view(1, C, 1, 1) + beta.view(1, C, 1, 1)
        torch.testing.assert_close(y, r.unflatten(0, (3, 2)), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(tdbn.running_mean, ref.running_mean)
    torch.testing.assert_close(tdbn.running_var, ref.running_var)
    assert int(tdbn.num_batches_tracked) == 5
    # eval mode uses the running statistics
    tdbn.eval()
    ref.eval()
    x = torch.randn(2, 3, C, 5, 5)
    r = ref(x.flatten(0, 1)).unflatten(0, (2, 3)) * alpha * v_th
    r = r * lam.view(1, 1, C, 1, 1) + beta.view(1, 1, C, 1, 1)
    torch.testing.assert_close(tdbn(x), r, atol=1e-5, rtol=1e-5)
    # by hand: (x - running_mean) / sqrt(running_var + eps) * α V_th * λ + β
    rm = tdbn.running_mean.view(1, 1, C, 1, 1)
    rv = tdbn.running_var.view(1, 1, C, 1, 1)
    hand = (x - rm) / torch.sqrt(rv + 1e-5) * alpha * v_th * lam.view(1, 1, C, 1, 1)
    hand = hand + beta.view(1, 1, C, 1, 1)
    torch.testing.assert_close(tdbn(x), hand, atol=1e-5, rtol=1e-5)


def test_tdbn_running_var_is_unbiased_ema_by_hand():
    x = torch.tensor([0.0, 2.0, 4.0, 6.0]).view(2, 2, 1)  # [T=2, B=2, C=1]
    bn = TdBN(1, momentum=0.25)
    bn(x)
    mean, var_unbiased = 3.0, torch.tensor([0.0, 2.0, 4.0, 6.0]).var(unbiased=True).item()
    assert bn.running_mean.item() == pytest.approx(0.25 * mean)
    assert bn.running_var.item() == pytest.approx(0.75 * 1.0 + 0.25 * var_unbiased)
    # momentum=None: cumulative average over calls
    bn = TdBN(1, momentum=None)
    bn(x)
    bn(x + 2.0)
    assert bn.running_mean.item() == pytest.approx((3.0 + 5.0) / 2)


def test_tdbn_scale_modes_agree_at_init_but_differ_in_gradient():
    torch.manual_seed(3)
    x = torch.randn(4, 3, 2, 6)
    fixed = TdBN(2, v_th=0.5)
    init = TdBN(2, v_th=0.5, scale_mode="init")
    torch.testing.assert_close(init.weight.detach(), torch.full((2,), 0.5))
    torch.testing.assert_close(fixed.weight.detach(), torch.ones(2))
    yf, yi = fixed(x), init(x)
    torch.testing.assert_close(yf, yi)
    w = torch.randn_like(yf)
    (yf * w).sum().backward()
    (yi * w).sum().backward()
    # d/dλ: fixed mode carries the α·V_th factor, init mode does not
    torch.testing.assert_close(fixed.weight.grad, init.weight.grad * 0.5)
    # affine=False still scales by α·V_th
    plain = TdBN(2, v_th=0.5, affine=False)
    torch.testing.assert_close(plain(x), yf)


def test_tdbn_argument_and_shape_errors():
    with pytest.raises(ValueError, match="either residual"):
        TdBN(3, alpha=0.5, residual=True)
    with pytest.raises(ValueError, match="needs affine=True"):
        TdBN(3, affine=False, scale_mode="init")
    with pytest.raises(ValueError, match="scale_mode"):
        TdBN(3, scale_mode="learned")
    with pytest.raises(ValueError, match="eps must be > 0"):
        TdBN(3, eps=0.0)
    bn = TdBN(3)
    with pytest.raises(ValueError, match=r"got 4 channels"):
        bn(torch.randn(2, 2, 4, 5))
    with pytest.raises(ValueError, match=r"expected \[T, B, C"):
        bn(torch.randn(2, 3))


# ------------------------------------------------------------------------ temporal attention


def _zero_ta(ta: TemporalAttention) -> None:
    with torch.no_grad():
        for p in ta.parameters():
            p.zero_()


@pytest.mark.parametrize("shape", [(6, 3, 4, 5, 5), (6, 3, 7)])
def test_ta_zero_weights_give_exactly_half(shape):
    ta = TemporalAttention(T=6, reduction=2)
    _zero_ta(ta)
    x = torch.randn(*shape)
    with AttentionMonitor(ta) as mon:
        y = ta(x)
    assert y.shape == x.shape
    assert torch.equal(y, x * 0.5)
    assert torch.equal(mon.scores[""], torch.full((6, 3), 0.5))


def test_ta_toy_example_spec():
    T, r = 4, 2
    ta = TemporalAttention(T, reduction=r)
    assert ta.hidden == 2
    with torch.no_grad():
        ta.fc1.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0]]))
        ta.fc2.weight.copy_(torch.tensor([[1.0, 0], [0, 0], [0, 0], [0, 0]]))
        ta.fc1.bias.zero_()
        ta.fc2.bias.zero_()
    torch.manual_seed(4)
    noise = torch.randn(T, 1, 3, 4, 4, dtype=torch.float64)
    noise = noise - noise.mean(dim=(2, 3, 4), keepdim=True)  # zero-mean per frame
    z = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    x = (noise + z.view(T, 1, 1, 1, 1)).float()
    a = ta.scores(x)[:, 0]
    torch.testing.assert_close(a, torch.tensor([0.7311, 0.5, 0.5, 0.5]), atol=5e-5, rtol=0)
    assert a[0].item() == pytest.approx(1 / (1 + math.exp(-1)), abs=1e-6)
    torch.testing.assert_close(ta(x), x * a.view(T, 1, 1, 1, 1))


def test_ta_matches_batch_major_reference_and_is_per_sample():
    torch.manual_seed(5)
    T, B = 5, 4
    ta = TemporalAttention(T, reduction=2)
    x = torch.randn(T, B, 3, 6)
    # independent reference in the [B, T, ...] layout of the TA-SNN code
    xb = x.permute(1, 0, 2, 3)
    zb = xb.mean(dim=(2, 3))
    ab = torch.sigmoid(ta.fc2(torch.relu(ta.fc1(zb))))
    ref = (xb * ab[:, :, None, None]).permute(1, 0, 2, 3)
    torch.testing.assert_close(ta(x), ref)
    # scores of sample 0 do not depend on the other samples (no batch averaging)
    x2 = x.clone()
    x2[:, 1:] = torch.randn(T, B - 1, 3, 6) * 10
    torch.testing.assert_close(ta.scores(x2)[:, 0], ta.scores(x)[:, 0])


def test_ta_gradients_reach_w1_w2():
    torch.manual_seed(6)
    ta = TemporalAttention(8, reduction=4)
    x = torch.randn(8, 3, 2, 4, 4) + 1.0
    (ta(x) ** 2).sum().backward()
    for p in (ta.fc1.weight, ta.fc1.bias, ta.fc2.weight, ta.fc2.bias):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_ta_hidden_width_clamped_and_T_checked():
    ta = TemporalAttention(T=4, reduction=16)
    assert ta.hidden == 1 and ta.fc1.out_features == 1
    assert TemporalAttention(T=30, reduction=16).hidden == 1
    with pytest.raises(ValueError, match="built for T=4"):
        ta(torch.randn(5, 2, 3))
    with pytest.raises(ValueError, match="at least 3 dims"):
        ta(torch.randn(4, 2))
    with pytest.raises(ValueError, match="discard_threshold"):
        TemporalAttention(4, discard_threshold=1.5)


def test_ta_discard_zeroes_low_frames_and_counts():
    torch.manual_seed(7)
    T, B = 6, 5
    ta = TemporalAttention(T, reduction=2, discard_threshold=0.5)
    with torch.no_grad():
        ta.fc2.bias.copy_(torch.linspace(-1.0, 1.0, T))  # spread the scores around 0.5
    x = torch.randn(T, B, 3, 4, 4)
    # training mode: never discards
    ta.train()
    with AttentionMonitor(ta) as mon:
        y_train = ta(x)
    assert torch.equal(y_train, x * mon.scores[""].view(T, B, 1, 1, 1))
    assert mon.discard_report() == {}
    ta.eval()
    with AttentionMonitor(ta) as mon:
        y = ta(x)
    a = mon.scores[""]
    low = a < 0.5
    assert 0 < int(low.sum()) < T * B  # the test is informative
    assert torch.all(y[low] == 0)
    torch.testing.assert_close(y[~low], (x * a.view(T, B, 1, 1, 1))[~low])
    assert mon.discard_report()[""] == {
        "total_frames": T * B,
        "discarded_frames": int(low.sum()),
        "fraction": int(low.sum()) / (T * B),
    }
    with mon:  # the same monitor accumulates over passes
        ta(x)
    assert mon.discard_report()[""]["total_frames"] == 2 * T * B
    assert mon.discard_report()[""]["discarded_frames"] == 2 * int(low.sum())
    mon.reset()
    assert mon.discard_report() == {}


# ---------------------------------------------------------------------------------- readouts


def test_mean_and_last_step_by_hand():
    x = torch.tensor([[[1.0, 2.0]], [[3.0, 6.0]], [[5.0, -2.0]]])  # [T=3, B=1, K=2]
    torch.testing.assert_close(MeanOverTime()(x), torch.tensor([[3.0, 2.0]]))
    torch.testing.assert_close(LastStep()(x), torch.tensor([[5.0, -2.0]]))
    with pytest.raises(ValueError, match="empty sequence"):
        MeanOverTime()(torch.zeros(0, 2, 3))


def test_membrane_readout_by_hand():
    x = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1)
    ro = MembraneReadout(decay=0.5)
    # u = 1, 0.5 + 2 = 2.5, 1.25 + 3 = 4.25 -> mean 7.75 / 3
    torch.testing.assert_close(ro.potentials(x).flatten(), torch.tensor([1.0, 2.5, 4.25]))
    assert ro(x).item() == pytest.approx(7.75 / 3)
    torch.testing.assert_close(ro.time_weights(3), torch.tensor([1.75, 1.5, 1.0]) / 3)


def test_membrane_readout_closed_form_matches_loop_and_limits():
    torch.manual_seed(8)
    x = torch.randn(7, 4, 10)
    for decay in (0.0, 0.3, 0.9, 1.0):
        ro = MembraneReadout(decay=decay)
        torch.testing.assert_close(ro(x), ro.potentials(x).mean(0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(MembraneReadout(decay=0.0)(x), x.mean(0))
    torch.testing.assert_close(MembraneReadout(decay=1.0)(x), x.cumsum(0).mean(0))
    ro = MembraneReadout(decay=0.6, learnable=True)
    assert ro.decay.item() == pytest.approx(0.6)
    ro(x).pow(2).sum().backward()
    assert ro.decay_logit.grad is not None and ro.decay_logit.grad.abs() > 0
    with pytest.raises(ValueError, match="decay must lie"):
        MembraneReadout(decay=1.5)
