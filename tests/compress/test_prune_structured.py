"""Structured channel pruning: a smaller dense model equal to the channel-masked original."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from spikeloom.compress.prune_structured import plan_channels, prune_channels
from spikeloom.cost import measure_cost
from spikeloom.errors import ConfigError
from spikeloom.models.registry import build_model
from spikeloom.walk import register_role


def _randomize_norms(model):
    torch.manual_seed(11)
    for m in model.modules():
        if hasattr(m, "running_var") and m.running_var is not None:
            m.running_var.uniform_(0.5, 2.0)
            m.running_mean.normal_()
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)


def _masked_reference(ref, model, result, plans):
    """Zero the consumer weights reading each removed channel of ``ref``."""
    with torch.no_grad():
        for p in plans:
            if p.name not in result.kept:
                continue
            drop = torch.ones(p.channels, dtype=torch.bool)
            drop[result.kept[p.name]] = False
            w = ref.get_submodule(p.consumer).weight
            if w.ndim == 2:  # linear after flatten: k features per channel
                k = w.shape[1] // p.channels
                w.view(w.shape[0], p.channels, k)[:, drop] = 0
            else:
                w[:, drop] = 0


@pytest.mark.parametrize("neuron", ["liaf", "lif"])
def test_pruned_model_equals_channel_masked_model(neuron):
    torch.manual_seed(0)
    model = build_model("liafnet", in_channels=2, num_classes=10, input_size=(16, 16),
                        channels=(8, 16), hidden=32, neuron=neuron).eval()
    _randomize_norms(model)
    ref = copy.deepcopy(model)
    plans, _ = plan_channels(model)
    result = prune_channels(model, 0.5)
    assert set(result.kept) == {"features.0.0.module", "features.1.0.module", "classifier.1"}
    assert [len(k) for k in result.kept.values()] == [4, 8, 16]
    assert model.get_submodule("features.0.1").num_features == 4
    assert model.get_submodule("features.1.0.module").in_channels == 4
    assert model.get_submodule("classifier.1").in_features == 8 * 16
    _masked_reference(ref, model, result, plans)
    x = (torch.rand(4, 3, 2, 16, 16) < 0.3).float()
    assert torch.allclose(model(x), ref(x), atol=1e-5)
    n_new = sum(p.numel() for p in model.parameters())
    assert n_new < sum(p.numel() for p in ref.parameters())


def test_kept_channels_have_largest_l1_norm():
    torch.manual_seed(1)
    model = build_model("liafnet", in_channels=2, num_classes=10, input_size=(16, 16),
                        channels=(6, 8), hidden=None)
    norms = model.get_submodule("features.0.0.module").weight.abs().flatten(1).sum(1)
    result = prune_channels(model, 0.5, layers=["features.0.0.module"])
    assert result.kept["features.0.0.module"].tolist() == sorted(
        torch.topk(norms, 3).indices.tolist())


class ChannelThreshold(nn.Module):
    """A toy neuron with a per-channel threshold (shape [C, 1, 1])."""

    def __init__(self, c):
        super().__init__()
        self.v_th = nn.Parameter(torch.linspace(0.1, 0.9, c).view(c, 1, 1))

    def forward(self, x):
        return (x > self.v_th).float()


register_role(ChannelThreshold, "neuron")


def test_per_channel_neuron_state_is_sliced():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(2, 6, 3, padding=1), nn.BatchNorm2d(6), ChannelThreshold(6),
                          nn.Conv2d(6, 4, 3, padding=1)).eval()
    _randomize_norms(model)
    ref = copy.deepcopy(model)
    result = prune_channels(model, 0.5)
    keep = result.kept["0"]
    assert torch.equal(model[2].v_th, ref[2].v_th[keep])
    assert torch.equal(model[1].running_mean, ref[1].running_mean[keep])
    with torch.no_grad():
        drop = torch.ones(6, dtype=torch.bool)
        drop[keep] = False
        ref[3].weight[:, drop] = 0
    x = torch.randn(3, 2, 8, 8)
    assert torch.allclose(model(x), ref(x), atol=1e-6)


def test_residual_model_prunes_only_inner_layers():
    torch.manual_seed(3)
    model = build_model("resnet_tiny", in_channels=2, num_classes=10, input_size=(16, 16)).eval()
    _randomize_norms(model)
    ref = copy.deepcopy(model)
    plans, skipped = plan_channels(model)
    result = prune_channels(model, 0.5)
    assert set(result.kept) == {"layers.0.conv1.module", "layers.1.conv1.module", "classifier.0"}
    assert "stem.0.module" in result.skipped and "layers.1.shortcut.0.module" in result.skipped
    _masked_reference(ref, model, result, plans)
    x = (torch.rand(2, 2, 2, 16, 16) < 0.3).float()
    assert torch.allclose(model(x), ref(x), atol=1e-5)


def test_cost_report_of_smaller_model():
    torch.manual_seed(4)
    model = build_model("liafnet", in_channels=2, num_classes=10, input_size=(16, 16),
                        channels=(8, 16), hidden=32).eval()
    x = (torch.rand(2, 2, 2, 16, 16) < 0.3).float()
    before = measure_cost(model, [x]).Dense
    prune_channels(model, 0.5)
    after = measure_cost(model, [x]).Dense
    # conv1 halves, conv2 and fc1 quarter (inputs and outputs), classifier halves
    assert after < 0.5 * before


def test_errors():
    model = build_model("liafnet", in_channels=2, num_classes=10, input_size=(16, 16))
    with pytest.raises(ConfigError, match=r"sparsity must be in \[0, 1\)"):
        prune_channels(model, -0.1)
    with pytest.raises(ConfigError, match=r"classifier.6.*last synaptic layer"):
        prune_channels(model, 0.5, layers=["classifier.6"])
