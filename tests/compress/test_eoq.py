"""EOQ (spec A2) quantizers, integer SGD on the grid, Fixup, and MAD-BN (spec A3)."""

from __future__ import annotations

import pytest
import torch

from spikeloom.compress.eoq import (
    SQ,
    SR,
    ActQuant8,
    ErrorQuant8,
    FixupBlock,
    FixupResNet,
    IntegerSGD,
    MADBatchNorm2d,
    Q,
    R,
    fixup_init,
    on_weight_grid,
    sigma,
)
from spikeloom.errors import ConfigError  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_quantizer_vectors():
    assert float(Q(torch.tensor(0.30), 8)) == 0.296875
    assert float(Q(torch.tensor(0.30), 3)) == 0.25
    assert float(R(torch.tensor([0.3, -0.7]))) == 0.5
    # SQ: R = 0.5; 0.3 / 0.5 = 0.6 -> 77/128; -0.7 / 0.5 = -1.4 saturates at -(1 - 1/128)
    assert SQ(torch.tensor([0.3, -0.7]), 8).tolist() == [0.5 * 77 / 128, -0.5 * (1 - sigma(8))]


def test_stochastic_rounding():
    g = torch.Generator().manual_seed(0)
    x = torch.full((100_000,), 0.3, dtype=torch.float64)
    assert abs(float(SR(x, g).mean()) - 0.3) < 0.005
    k = torch.tensor([-3.0, 0.0, 2.0, 7.0])
    assert torch.equal(SR(k, g), k)


def test_error_quantized_in_backward():
    x = torch.tensor([0.2, 0.5, -0.3, 1.5], requires_grad=True)
    y = ActQuant8()(x)
    assert y.tolist() == [Q(torch.tensor(0.2), 8).item(), 0.5, 0.0, 1 - sigma(8)]
    y.backward(torch.tensor([0.3001, 0.1, 0.2, 0.4]))
    # errors of the in-range entries on the SQ grid of R = 0.25: multiples of 0.25/128
    step = 0.25 * sigma(8)
    g = x.grad.tolist()
    assert g[2] == 0.0 and g[3] == 0.0
    assert all(abs(v / step - round(v / step)) < 1e-9 for v in g[:2])


def test_dynamic_range_activation():
    x = torch.tensor([0.05, 0.3, -0.1, 2.9], requires_grad=True)
    y = ActQuant8(dynamic=True)(x)
    # R(x) = 2^round(log2 2.9) = 4: grid 4/128 on [0, 4 - 4/128]
    assert y.tolist() == pytest.approx([0.0625, 0.3125, 0.0, 2.90625])
    y.backward(torch.ones(4))
    assert x.grad[2] == 0.0 and x.grad[3] != 0.0  # 2.9 < 4 is inside the dynamic range


def test_integer_sgd_grid_invariant_and_no_state():
    torch.manual_seed(0)
    net = FixupResNet(depth=8, widths=(4, 8, 8), act="eoq")
    weights = [p for n, p in net.named_parameters() if n.endswith("weight")]
    opt = IntegerSGD(weights, lr=2.0 ** -3, generator=torch.Generator().manual_seed(1))
    opt.snap_()
    x = torch.rand(6, 3, 8, 8)
    y = torch.arange(6) % 10
    fc0 = net.fc.weight.detach().clone()
    for _ in range(4):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        for p in weights:
            assert on_weight_grid(p.detach()), "a weight left the 8-bit grid"
    assert len(opt.state) == 0  # no momentum, no float master copy
    assert not torch.equal(net.fc.weight, fc0)  # the zero-initialised classifier moves


@pytest.mark.parametrize("variant", ["standard", "bdi"])
def test_fixup_branches_start_at_zero(variant):
    torch.manual_seed(0)
    blk = FixupBlock(4, 8, 2, torch.nn.ReLU)
    fixup_init(torch.nn.Sequential(blk), variant)
    x = torch.randn(2, 4, 8, 8)
    assert torch.equal(blk(x), torch.relu(blk.shortcut(x)))
    net = FixupResNet(depth=110, widths=(4, 8, 8))
    fixup_init(net, variant)
    with torch.no_grad():
        out = net.blocks(net.stem_act(net.stem(torch.randn(2, 3, 16, 16))))
    assert bool(torch.isfinite(out).all()) and float(out.abs().max()) > 0


def test_fixup_std_rules():
    torch.manual_seed(0)
    net = FixupResNet(depth=56, widths=(16, 16, 16))  # 27 blocks, conv1 fan_out = 144
    w = torch.cat([b.conv1.weight.detach().flatten() for b in net.blocks])
    assert float(w.std()) == pytest.approx((2 / 144) ** 0.5 * 27 ** -0.5, rel=0.03)
    stem_std = float(net.stem.weight.detach().std())
    assert stem_std == pytest.approx((2 / 27) ** 0.5, rel=0.2)  # He fan-in
    fixup_init(net, "bdi")
    w = torch.cat([b.conv1.weight.detach().flatten() for b in net.blocks])
    assert float(w.std()) == pytest.approx((2 / 144) ** 0.5 * 27 ** (-2 / 3), rel=0.03)


def test_spiking_fixup_resnet_runs():
    net = FixupResNet(depth=8, widths=(4, 4, 8), act="lif", T=3)
    out = net(torch.rand(3, 2, 3, 8, 8))
    assert out.shape == (2, 10)


def test_error_quant8_identity_forward_sq_backward():
    x = torch.tensor([0.3, -1.0, 2.0], requires_grad=True)
    y = ErrorQuant8()(x)
    assert torch.equal(y, x)
    y.backward(torch.tensor([0.30, -0.7, 0.001]))
    # R = 2^round(log2 0.7) = 0.5; 0.30/0.5 = 0.6 -> 77/128; -0.7/0.5 = -1.4 saturates at
    # -(1 - 2^-7); 0.001/0.5 = 0.002 rounds to 0
    assert x.grad.tolist() == [0.5 * 77 / 128, -0.5 * 127 / 128, 0.0]


def test_spiking_eoq_twin_same_forward_8bit_errors():
    torch.manual_seed(0)
    lif = FixupResNet(depth=8, widths=(4, 4, 8), in_channels=1, act="lif", T=2)
    torch.manual_seed(0)
    q = FixupResNet(depth=8, widths=(4, 4, 8), in_channels=1, act="lif-eoq", T=2)
    opt = IntegerSGD(q.parameters(), lr=2.0 ** -5, momentum=0.875)
    opt.snap_()
    lif.load_state_dict(q.state_dict())
    x = torch.rand(2, 3, 1, 8, 8) * 2
    assert torch.equal(lif(x), q(x))  # ErrorQuant8 is the identity forward
    errs = []
    hooks = [m.register_full_backward_hook(lambda m, gi, go: errs.append(gi[0]))
             for m in q.modules() if isinstance(m, ErrorQuant8)]
    torch.nn.functional.cross_entropy(q(x), torch.tensor([1, 2, 3])).backward()
    for h in hooks:
        h.remove()
    assert len(errs) == 7  # stem + 2 per block
    for e in errs:  # every error an 8-bit code times a power of two
        codes = e / R(e)
        assert torch.equal(codes * 128, torch.round(codes * 128))
        assert float(codes.abs().max()) <= 127 / 128
    opt.step()
    assert all(on_weight_grid(p.detach()) for p in q.parameters())


def test_mad_bn_vectors_and_fold():
    bn = MADBatchNorm2d(1, eps=0.0)
    x = torch.tensor([1.0, 2, 3, 6]).reshape(4, 1, 1, 1)
    y = bn(x).flatten()
    assert y.tolist() == pytest.approx([-4 / 3, -2 / 3, 0, 2], abs=1e-6)
    g = torch.Generator().manual_seed(0)
    big = torch.randn(1_000_000, generator=g) * 2
    s = (big - big.mean()).abs().mean()
    assert float(s) == pytest.approx(1.596, rel=0.01)
    bn = MADBatchNorm2d(3)
    for _ in range(5):
        bn(torch.randn(8, 3, 4, 4) * 3 + 1)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, 1.5, -2.0]))
        bn.bias.copy_(torch.tensor([0.1, 0.0, 0.3]))
    bn.eval()
    z = torch.randn(2, 3, 4, 4)
    a, b = bn.fold()
    torch.testing.assert_close(bn(z), a.reshape(1, 3, 1, 1) * z + b.reshape(1, 3, 1, 1),
                               atol=1e-6, rtol=1e-6)


def test_integer_momentum_velocity_hand_computed():
    w = torch.nn.Parameter(torch.zeros(4, 3))
    opt = IntegerSGD([w], lr=2.0 ** -3, momentum=0.875, generator=torch.Generator().manual_seed(0))
    w.grad = torch.full((4, 3), 0.5)  # R(g) = 0.5, codes n = clip(128) = 127
    # SGD step in weight-grid units u = lr·n·R/(γ·σ) = 0.125·127·0.5 = 7.9375; velocity grid
    # 1/256 of a step: 256·u = 2032, then 0.875·2032 + 2032 = 3810 (exact, no rounding)
    opt.step()
    v = opt.state[w]["velocity"]
    assert v.dtype == torch.int16 and bool((v == 2032).all())
    d = (-w.detach() / sigma(8)).round()
    assert set(d.unique().tolist()) <= {7.0, 8.0}  # SR(2032/256 = 7.9375) whole grid steps
    opt.step()
    assert bool((opt.state[w]["velocity"] == 3810).all())
    assert on_weight_grid(w.detach())


def test_integer_momentum_grid_invariant_and_integer_state():
    torch.manual_seed(0)
    net = FixupResNet(depth=8, widths=(4, 8, 8), act="eoq", dynamic_range=True)
    opt = IntegerSGD(net.parameters(), lr=2.0 ** -4, momentum=0.875,
                     generator=torch.Generator().manual_seed(1))
    opt.snap_()
    x, y = torch.rand(6, 3, 8, 8), torch.arange(6) % 10
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        assert all(on_weight_grid(p.detach()) for p in net.parameters())
    state = [t for st in opt.state.values() for t in st.values()]
    assert len(state) == sum(1 for _ in net.parameters())  # one velocity per parameter...
    assert all(t.dtype == torch.int16 for t in state)  # ...an integer code, no float copy
    assert any(bool((t != 0).any()) for t in state)


def test_integer_sgd_bad_momentum():
    with pytest.raises(ConfigError, match="momentum"):
        IntegerSGD([torch.nn.Parameter(torch.zeros(2))], momentum=1.0)
