"""Joint A-SNN (spec snn.md §7): shared SVD factors, separate singular values, the loss, the
method's step, and exporting the SNN alone."""

import pytest
import torch
import torch.nn.functional as F

from spikeloom.errors import ConfigError
from spikeloom.methods import METHODS
from spikeloom.methods.joint_asnn import (
    JointASNN,
    SharedSVDConv2d,
    SVDFactors,
    export_snn,
    joint_loss,
)
from spikeloom.models import SpikingResNet, build_model


def tiny(T=None) -> JointASNN:
    torch.manual_seed(0)
    snn = build_model("resnet_tiny", in_channels=2, num_classes=5, norm="bn", fc_hidden=None,
                      T=T, neuron_kwargs={"fire_ge": True})
    return JointASNN(snn)


def test_factorisation_reproduces_the_weight():
    w = torch.randn(6, 4, 3, 3)
    f = SVDFactors(w)
    assert torch.allclose(f.compose(f.sigma0), w, atol=1e-5)


def test_init_equal_and_snn_loss_moves_shared_factors():
    j = tiny()
    pairs = [(a, b) for a, b in zip(j.snn.modules(), j.ann.modules())
             if isinstance(a, SharedSVDConv2d)]
    assert len(pairs) == 6  # stem, 2 + 2 block convs, 1 projection shortcut
    for s, a in pairs:
        assert s.factors is a.factors and s.sigma is not a.sigma
        assert torch.equal(s.weight, a.weight)
    before = {id(s): s.factors.U.detach().clone() for s, _ in pairs}
    ann_w = pairs[1][1].weight.detach().clone()
    opt = torch.optim.SGD(j.parameters(), lr=0.5)
    x = torch.rand(3, 4, 2, 16, 16)
    F.cross_entropy(j(x), torch.tensor([0, 1, 2, 3])).backward()  # SNN loss only
    assert all(a.sigma.grad is None for _, a in pairs)  # the ANN's σ is not used by the SNN
    opt.step()
    assert any(not torch.equal(before[id(s)], s.factors.U) for s, _ in pairs)
    assert not torch.equal(ann_w, pairs[1][1].weight)  # U, V moved in the ANN path too


def test_T1_snn_is_a_threshold_network():
    j = tiny().eval()
    x = torch.rand(1, 2, 2, 16, 16)
    out = j(x)
    # with T = 1 the LIF fires iff u = x >= V_th (0.5): the same net with a step function
    net = export_snn(j)
    for name, m in list(net.named_modules()):
        if hasattr(m, "spec"):
            parent, _, attr = name.rpartition(".")
            (net.get_submodule(parent) if parent else net)._modules[attr] = _Step()
    assert torch.allclose(net(x), out, atol=1e-6)


class _Step(torch.nn.Module):
    def forward(self, x):
        return (x >= 0.5).to(x.dtype)


def test_loss_reduces_to_ce_and_counts_every_term():
    j = tiny()
    x, y = torch.rand(2, 4, 2, 16, 16), torch.tensor([0, 1, 2, 3])
    out = j.joint_forward(x)
    ce = sum(F.cross_entropy(a, y, reduction="sum") + F.cross_entropy(s, y, reduction="sum")
             for a, s in zip(out["ann_logits"], out["snn_logits"]))
    assert joint_loss(out, y, alpha=0.0, beta=0.0).item() == pytest.approx(ce.item(), rel=1e-6)
    assert joint_loss(out, y, alpha=0.1, beta=1e-6).item() != pytest.approx(0.9 * ce.item())
    assert len(out["snn_logits"]) == 2 and out["snn_feats"][0].shape == (4, 16)


def test_export_gives_the_same_outputs():
    j = tiny()
    step = METHODS.get("joint-asnn").make_step(METHODS.get("joint-asnn").resolve({}))
    opt = torch.optim.SGD(j.parameters(), lr=0.1)
    for _ in range(2):  # train a little so BN stats and σ differ from init
        out = step(j, (torch.rand(3, 4, 2, 16, 16), torch.tensor([0, 1, 2, 3])), "ce", "cpu")
        opt.zero_grad()
        out.loss_sum.backward()
        opt.step()
    j.eval()
    snn = export_snn(j).eval()
    assert type(snn) is SpikingResNet
    assert not any(isinstance(m, SharedSVDConv2d) for m in snn.modules())
    x = torch.rand(3, 5, 2, 16, 16)
    assert torch.allclose(snn(x), j(x), atol=1e-5)
    sd = snn.state_dict()
    fresh = build_model("resnet_tiny", in_channels=2, num_classes=5, norm="bn", fc_hidden=None,
                        neuron_kwargs={"fire_ge": True})
    fresh.load_state_dict(sd)  # an ordinary model of the registry
    assert torch.allclose(fresh.eval()(x), j(x), atol=1e-5)


def test_method_refuses_other_models():
    m = build_model("liafnet", channels=(4,), hidden=8, input_size=(8, 8))
    with pytest.raises(ConfigError, match="spiking ResNet"):
        METHODS.get("joint_asnn").prepare(m, METHODS.get("joint_asnn").resolve({}))


def test_bottleneck_resnet_joins_too():
    torch.manual_seed(0)
    snn = build_model("resnet50", block_layout=(1, 1), widths=(2, 4), stem=4, in_channels=2,
                      num_classes=3, norm="bn", stem_kernel=3, stem_stride=1, stem_pool=False)
    j = JointASNN(snn)
    out = j.joint_forward(torch.rand(2, 2, 2, 8, 8))
    assert [f.shape[-1] for f in out["ann_feats"]] == [16, 16]  # 4 · expansion 4
