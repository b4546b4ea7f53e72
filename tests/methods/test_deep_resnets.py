"""Deep spiking ResNets (spec snn.md §3, §5): layouts, parameter counts, the 1/√2 rule."""

import math

import pytest
import torch

from spikeloom.layers import TdBN
from spikeloom.models import Bottleneck, build_model, count_parameters
from spikeloom.neurons import LIAF, LIF


@pytest.mark.parametrize("name,params", [
    ("resnet34", 21_797_672),  # = torchvision's ResNet-34 (3 channels, 1000 classes)
    ("resnet50", 25_557_032),  # = torchvision's ResNet-50
])
def test_imagenet_layouts_match_the_standard_counts(name, params):
    assert count_parameters(build_model(name)) == params


def test_es_imagenet_resnets():
    m18 = build_model("es_resnet18")
    # table: 11.69 M without the learnable decays (one scalar per neuron layer)
    n_dec = sum(1 for m in m18.modules() if isinstance(m, LIAF))
    assert count_parameters(m18) - n_dec == 11_686_376
    assert isinstance(m18.stem[2], LIAF) and m18.stem[2].learn_decay
    assert m18.stem[2].decay_factor().item() == pytest.approx(1 / (1 + math.exp(-0.5)))
    assert m18.stem[3].module.padding == 0  # ES-ImageNet max-pool without padding
    lif = build_model("es_resnet34", neuron="lif")
    assert any(isinstance(m, LIF) and not isinstance(m, LIAF) for m in lif.modules())
    assert round(count_parameters(lif) / 1e6, 2) == 21.79


def test_bottleneck_residual_rule_and_forward():
    m = build_model("resnet50", block_layout=(1, 1), widths=(4, 8), stem=8, num_classes=3,
                    in_channels=2)
    b = m.layers[1]
    assert isinstance(b, Bottleneck)
    a = 1 / math.sqrt(2)
    assert isinstance(b.bn3, TdBN) and b.bn3.alpha == pytest.approx(a)
    assert b.shortcut[1].alpha == pytest.approx(a)
    assert b.bn1.alpha == pytest.approx(1.0) and b.bn2.alpha == pytest.approx(1.0)
    x = torch.rand(2, 3, 2, 32, 32)
    assert m(x).shape == (3, 3)
    assert b.conv3.module.out_channels == 32  # expansion 4
