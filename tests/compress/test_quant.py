"""Quantization-aware training: fake-quantizers, fixed-point neurons, quantize/dequantize."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from spikeloom.compress.quant import (
    ActFakeQuant,
    DuQ,
    QuantConfig,
    QuantNeuron,
    WeightFakeQuant,
    dequantize,
    duq_mse_init,
    quantize,
)
from spikeloom.compress.size import model_bytes
from spikeloom.cost import measure_cost
from spikeloom.errors import ConfigError
from spikeloom.neurons import LIF

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def frames(seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(4, 3, 2, 16, 16, generator=g) < 0.3).float() * 3


def test_duq_ternary_and_8bit_levels():
    w = torch.randn(64, 32)
    q = DuQ(w, bits=2)
    vals = torch.unique(q(w).detach())
    c = float(q.c.detach())
    assert len(vals) == 3 and torch.allclose(vals, torch.tensor([-c, 0.0, c]))
    q8 = DuQ(w, bits=8)
    assert len(torch.unique(q8(w).detach())) <= 255
    # init: max(|mu - 3 sd|, |mu + 3 sd|)
    mu, sd = float(w.mean()), float(w.std())
    assert float(q.a.detach()) == pytest.approx(max(abs(mu - 3 * sd), abs(mu + 3 * sd)), rel=1e-6)


def test_duq_mse_init_hand_computed():
    # ternary fit of [0.9, -1.1, 0.1, 0]: codes [1, -1, 0, 0] (any clip in (0.2, 1.8]), the
    # least-squares step <w, q>/<q, q> = 2/2 = 1, error 0.01 + 0.01 + 0.01; the first grid clip
    # k/64 * 1.1 above 0.2 is k = 12
    w = torch.tensor([0.9, -1.1, 0.1, 0.0], dtype=torch.float64)
    a, c = duq_mse_init(w, bits=2)
    assert float(a) == pytest.approx(12 / 64 * 1.1) and float(c) == pytest.approx(1.0)
    q = DuQ(w, bits=2, init="mse")
    assert q(w).detach().tolist() == pytest.approx([1.0, -1.0, 0.0, 0.0])


def test_duq_per_channel_and_mse_init_fit_better():
    torch.manual_seed(0)
    w = torch.randn(8, 4, 3, 3) * torch.linspace(0.1, 2.0, 8)[:, None, None, None]
    errs = {}
    for pc in (False, True):
        for init in ("3sigma", "mse"):
            q = DuQ(w, bits=2, per_channel=pc, init=init)
            assert q.a.shape == ((8, 1, 1, 1) if pc else ())
            vals = q(w).detach()
            if pc:  # ternary per channel: {-c_k, 0, c_k}
                assert all(len(torch.unique(v)) <= 3 for v in vals)
            errs[pc, init] = float(((vals - w) ** 2).sum())
    # the spec's 3-sigma clip zeroes nearly all ternary weights; least squares does better,
    # and one scale per channel better still on channels of different spread
    assert errs[False, "mse"] < 0.8 * errs[False, "3sigma"]
    assert errs[True, "mse"] < errs[False, "mse"]
    with pytest.raises(ConfigError, match="DuQ init must be one of 3sigma, mse"):
        DuQ(w, init="minmax")


def test_duq_gradient_is_plain_ste_inside_clip():
    w = torch.tensor([0.1, -0.2, 5.0], requires_grad=True)
    q = DuQ(torch.tensor([1.0, -1.0, 0.5, 0.0]), bits=4)
    q.a.data.fill_(1.0)
    q.c.data.fill_(1.0)
    q(w).sum().backward()
    # d/dw of c*round(n*hardtanh(w/a))/n with STE = c/a inside |w| < a, 0 outside
    assert w.grad.tolist() == pytest.approx([1.0, 1.0, 0.0])


@pytest.mark.parametrize("per_channel,symmetric", [(True, True), (False, True), (True, False)])
def test_weight_fake_quant_grid(per_channel, symmetric):
    torch.manual_seed(0)
    w = torch.randn(6, 3, 3, 3)
    fq = WeightFakeQuant(4, per_channel, symmetric)
    q, s = fq.codes(w)
    assert torch.equal(q, torch.round(q))
    lo, hi = (-7, 7) if symmetric else (-15, 15)
    assert q.min() >= lo and q.max() <= hi
    wq = fq(w)
    err = (wq - w).abs()
    assert bool((err <= s / 2 + 1e-6).all())  # inside the range: at most half a step
    if per_channel:
        assert s.shape == (6, 1, 1, 1)


def test_bits_out_of_range_is_one_line_error():
    with pytest.raises(ConfigError, match="2..8"):
        WeightFakeQuant(9)
    with pytest.raises(ConfigError, match="weight_bits"):
        QuantConfig(weight_bits=1)


def test_act_fake_quant_keeps_integer_counts():
    a = ActFakeQuant(8)
    x = torch.tensor([0.0, 1.0, 3.0, 7.0])
    a.train()
    y = a(x)
    assert a.scale() == 2.0 ** -5 and torch.equal(y, x)  # 2^ceil(log2(7/255))
    big = ActFakeQuant(4)
    big.train()
    big(torch.tensor([0.0, 40.0]))
    assert big.scale() == 4.0  # 2^ceil(log2(40/15))


def test_quant_neuron_hand_computed():
    # v_th 0.5, mem_bits 8, v_range 4 -> theta 32, step 1/64; decay 0.5 = 128/256
    qn = QuantNeuron(LIF(v_th=0.5, decay=0.5), mem_bits=8, decay_bits=8, v_range=4)
    assert qn.theta == 32 and qn.delta == 1 / 64
    x = torch.tensor([0.3, 0.3, 0.3, 0.0]).reshape(4, 1, 1)
    s, u, _ = qn._run(x, None)
    # I = round(19.2) = 19; v: 19 -> round(9.5)=10; u 29 -> round(14.5)=15 (half up, not
    # half-even 14); u 34 > 32 fires, hard reset
    assert s.flatten().tolist() == [0.0, 0.0, 1.0, 0.0]
    assert (u.flatten() * 64).tolist() == [19.0, 29.0, 34.0, 0.0]


def test_quant_neuron_gradients_flow():
    qn = QuantNeuron(LIF(v_th=0.5, decay=0.5))
    x = torch.full((5, 2, 3), 0.2, requires_grad=True)
    s = qn(x)
    s.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_quantize_dequantize_round_trip(small_liafnet):
    m = small_liafnet()
    x = frames()
    m.train()  # batch statistics: the fresh net fires (eval with fresh BN stats is silent)
    with torch.no_grad():
        y0 = m(x)
    quantize(m, QuantConfig(weight_bits=4))
    assert sum(isinstance(mod, QuantNeuron) for mod in m.modules()) == 3
    with pytest.raises(ConfigError, match="quantized already"):
        quantize(m)
    with torch.no_grad():
        y1 = m(x)
    assert not torch.equal(y0, y1)
    dequantize(m)
    assert not any(isinstance(mod, QuantNeuron) for mod in m.modules())
    with torch.no_grad():
        assert torch.equal(m(x), y0)


def test_quantized_state_dict_restores_into_rebuilt_model(small_liafnet):
    cfg = QuantConfig(weight_bits=2, weight_method="duq")
    m = quantize(small_liafnet(seed=0), cfg)
    m.train()
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        m(frames()).pow(2).sum().backward()
        opt.step()
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    buf.seek(0)
    fresh = quantize(small_liafnet(seed=5), cfg)
    fresh.load_state_dict(torch.load(buf))
    m.eval()
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(m(frames()), fresh(frames()))
    a = [float(p.detach()) for n, p in m.named_parameters() if n.endswith(".a")]
    assert a and a == [float(p.detach()) for n, p in fresh.named_parameters() if n.endswith(".a")]


def test_unsupported_synapse_names_layer():
    m = nn.Sequential(nn.ConvTranspose2d(2, 2, 3))
    with pytest.raises(ConfigError, match=r"'0' \(ConvTranspose2d\).*Linear, Conv1d, Conv2d"):
        quantize(m)


def test_cost_report_uses_integer_precision(small_liafnet):
    m = small_liafnet()
    x = frames()
    fp = measure_cost(m, [x])
    quantize(m, QuantConfig(weight_bits=4))
    q = measure_cost(m, [x])
    assert {r.precision for r in q.rows if r.role == "synapse"} == {"int4"}
    assert {r.precision for r in q.rows if r.role == "neuron"} == {"int32"}
    assert q.snn_energy < fp.snn_energy
    assert model_bytes(m) < 0.2 * model_bytes(small_liafnet())
    # its 8-bit twin: same counts, dearer synapse rows
    m8 = quantize(small_liafnet(), QuantConfig(weight_bits=8))
    q8 = measure_cost(m8, [x])
    assert q8.totals["Eff_ACs"] == q.totals["Eff_ACs"]
    assert q.snn_energy < q8.snn_energy


@pytest.mark.parametrize("bits,e_mac_pj", [(8, 0.03 + 0.2), (4, 0.015 + 0.05),
                                           (3, 0.015 + 0.05), (2, 0.0075 + 0.0125)])
def test_low_bit_energy_hand_computed(bits, e_mac_pj):
    # analog input (values 0.5, 0.25 and 1 are exact on the 8-bit power-of-two input grid):
    # 5 non-zero inputs x fan-out 3 = 15 MACs priced at the weight width's add + multiply
    m = quantize(nn.Sequential(nn.Linear(4, 3, bias=False)),
                 QuantConfig(weight_bits=bits, neurons=False))
    x = torch.tensor([[[0.5, 0, 1, 0]], [[0, 0.25, 1, 1]]])
    m.train()(x)  # calibrates the input quantizer's running max (1.0 -> step 2^-7)
    r = measure_cost(m, [x])
    row = r.rows[0]
    assert (row.eff_macs, row.eff_acs) == (15, 0)
    assert row.energy_j == pytest.approx(15 * e_mac_pj * 1e-12)
    assert r.snn_energy == pytest.approx(15 * e_mac_pj * 1e-12)


def test_plain_ann_quantizes_and_trains():
    torch.manual_seed(0)
    ann = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    quantize(ann, QuantConfig(weight_bits=3, per_channel=False, symmetric=False))
    x = torch.rand(5, 1, 8, 8)
    opt = torch.optim.SGD(ann.parameters(), lr=0.1)
    loss0 = None
    for _ in range(5):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(ann(x), torch.tensor([0, 1, 2, 0, 1]))
        loss.backward()
        opt.step()
        loss0 = loss0 if loss0 is not None else float(loss.detach())
    assert float(loss.detach()) < loss0
    assert len(torch.unique(ann[0].weight.detach())) <= 8  # 3-bit asymmetric grid
