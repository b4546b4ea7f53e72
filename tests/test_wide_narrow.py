"""Wide-then-narrow training (spec C4): exact merges, imitation loss, the staged recipe."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeloom.errors import ConfigError
from spikeloom.models import BlockNet, build_model, deep_thin_mlp
from spikeloom.train.wide_narrow import (
    ChannelMap,
    WideThenNarrow,
    first_synapse,
    merge_channel_map,
)

D64 = torch.float64


def test_spec_merge_exactness_float64():
    g = torch.Generator().manual_seed(0)
    A1, c1 = torch.randn(3, 2, generator=g, dtype=D64), torch.randn(3, generator=g, dtype=D64)
    A2, c2 = torch.randn(2, 3, generator=g, dtype=D64), torch.randn(2, generator=g, dtype=D64)
    U, V = torch.randn(4, 2, generator=g, dtype=D64), torch.randn(2, 4, generator=g, dtype=D64)
    h = torch.randn(5, 2, generator=g, dtype=D64)
    block = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2)).to(D64)
    with torch.no_grad():
        block[0].weight.copy_(A1)
        block[0].bias.copy_(c1)
        block[2].weight.copy_(A2)
        block[2].bias.copy_(c2)
    ref = block(h @ U.T @ V.T)  # block(V U h)
    merge_channel_map(first_synapse(block), V @ U)
    assert float((block(h) - ref).detach().abs().max()) < 1e-14


def test_spec_imitation_loss_value():
    thin = BlockNet(nn.Linear(1, 2, bias=False), [], nn.Identity())
    wide = BlockNet(nn.Linear(1, 4, bias=False), [], nn.Identity())
    with torch.no_grad():
        thin.stem.weight.copy_(torch.tensor([[0.5], [1.0]]))
        wide.stem.weight.copy_(torch.tensor([[1.0], [0.0], [2.0], [-1.0]]))
    win = WideThenNarrow(lambda w: thin, width=2, factor=2)
    win.prepare(wide)
    with torch.no_grad():
        win.U[0].weight.copy_(torch.tensor([[1.0, 0], [0, 1], [2, 0], [0, -1]]))
    loss = win.imitation_loss(torch.ones(1, 1), 0)
    assert float(loss.detach()) == pytest.approx(0.5625)


def test_same_width_teacher_equal_to_student_gives_zero_loss():
    def make(w: int) -> BlockNet:
        torch.manual_seed(0)
        return deep_thin_mlp(w, 3, in_features=5, num_classes=3)

    win = WideThenNarrow(make, width=4, factor=1)
    win.prepare(make(4))
    with torch.no_grad():
        for m in [*win.U, *win.V]:
            m.weight.copy_(torch.eye(4))
    x = torch.randn(7, 5)
    for i in range(4):
        assert float(win.imitation_loss(x, i).detach()) == 0.0
    win.teacher_forcing = True
    assert float(win.imitation_loss(x, 2).detach()) == 0.0


def test_rate_imitation_compares_means_over_time():
    thin = BlockNet(nn.Linear(1, 2, bias=False), [], nn.Identity())
    wide = BlockNet(nn.Linear(1, 2, bias=False), [], nn.Identity())
    with torch.no_grad():
        thin.stem.weight.copy_(torch.tensor([[1.0], [0.0]]))
        wide.stem.weight.copy_(torch.tensor([[0.0], [1.0]]))
    win = WideThenNarrow(lambda w: thin, width=2, factor=1, rate_dim=0)
    win.prepare(wide)
    with torch.no_grad():
        win.U[0].weight.copy_(torch.eye(2))
    x = torch.tensor([[[1.0]], [[-1.0]]])  # [T=2, B=1, 1]: means over time are zero
    assert float(win.imitation_loss(x, 0).detach()) == 0.0
    win.rate_dim = None
    assert float(win.imitation_loss(x, 0).detach()) == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["mlp", "snn"])
def test_merged_thin_net_equals_augmented_net(kind):
    torch.manual_seed(1)
    if kind == "mlp":
        def make(w):
            return deep_thin_mlp(w, 3, in_features=6, num_classes=3).to(D64)
        x, y, dim = torch.randn(16, 6, dtype=D64), torch.randint(0, 3, (16,)), -1
    else:
        def make(w):
            return build_model("deep_thin_snn", width=w, depth=2, num_classes=3).to(D64)
        x, y, dim = torch.rand(3, 8, 2, 8, 8, dtype=D64), torch.randint(0, 3, (8,)), 2
    win = WideThenNarrow(make, width=3, factor=2, channel_dim=dim, lr=1e-2)
    wide = make(6)
    win.prepare(wide)
    losses = win.imitate(lambda: [(x, y)], epochs_per_block=2)
    assert len(losses) == len(wide.blocks) + 1
    for m in win.thin.modules():  # BN in eval mode: one affine map before and after merging
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    wide.eval()
    ref = win.augmented_forward(x).detach()
    thin = win.merge()
    assert len(win.U) == 0 and thin.head[2 if kind == "snn" else 0].in_features == 3
    out = thin(x).detach()
    assert float((out - ref).abs().max()) < 1e-10
    assert sum(p.numel() for p in thin.parameters()) == sum(
        p.numel() for p in make(3).parameters())


def test_fit_runs_all_stages():
    torch.manual_seed(2)
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    win = WideThenNarrow(lambda w: deep_thin_mlp(w, 2, in_features=6, num_classes=3),
                         width=4, factor=2, lr=1e-2)
    thin = win.fit(lambda: [(x, y)], epochs_wide=3, epochs_per_block=1, epochs_finetune=2)
    assert thin(x).shape == (32, 3) and len(win.history["imitation"]) == 3


def test_block_must_start_with_a_synapse():
    with pytest.raises(ConfigError, match="comes before the first linear"):
        first_synapse(nn.Sequential(nn.ReLU(), nn.Linear(2, 2)))
    with pytest.raises(ConfigError, match="no linear or convolution"):
        first_synapse(nn.Sequential(nn.Flatten()))
    with pytest.raises(ConfigError, match="width and factor"):
        WideThenNarrow(deep_thin_mlp, width=0)
    with pytest.raises(ConfigError, match="call prepare"):
        WideThenNarrow(deep_thin_mlp, width=2).merge()
    cm = ChannelMap(3, 5, channel_dim=1)
    assert cm(torch.randn(2, 3, 4)).shape == (2, 5, 4)
