"""Fixtures of the export tests: a small LIF network trained for a few steps on real N-MNIST."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spikeloom.models import build_model

T_STEPS = 8


def _nmnist(root: Path, split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    from spikeloom.datasets.nmnist import NMNIST

    ds = NMNIST(root, split, T=T_STEPS, downsample=2, cache_dir=False)
    idx = torch.linspace(0, len(ds) - 1, n).round().long().tolist()
    xs, ys = zip(*(ds[i] for i in idx))
    return torch.stack(xs, dim=1), torch.as_tensor(ys)  # [T, B, 2, 17, 17]


@pytest.fixture(scope="session")
def nmnist_batches(shared_data: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """64 training and 16 test recordings of the shared N-MNIST subset, ``[8, B, 2, 17, 17]``."""
    root = shared_data / "nmnist"
    return {"train": _nmnist(root, "train", 64), "test": _nmnist(root, "test", 16)}


def _train_few_steps(model: torch.nn.Module, batches, steps: int = 8) -> torch.nn.Module:
    """A few Adam steps on the training batch (seeded), then eval mode."""
    x, y = batches["train"]
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for i in range(steps):
        sl = slice((i * 32) % x.shape[1], (i * 32) % x.shape[1] + 32)
        loss = torch.nn.functional.cross_entropy(model(x[:, sl]), y[sl])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="session")
def trained_lif_net(nmnist_batches) -> torch.nn.Module:
    """LIAFNet with LIF neurons and tdBN (4-8 channels, hidden 16) after 8 training steps."""
    torch.manual_seed(0)
    model = build_model("liafnet", in_channels=2, num_classes=10, input_size=(17, 17),
                        channels=(4, 8), hidden=16, neuron="lif", norm="tdbn", decay=0.6)
    return _train_few_steps(model, nmnist_batches)


@pytest.fixture(scope="session")
def train_few_steps():
    """The training helper: ``train_few_steps(model, nmnist_batches, steps=8)``."""
    return _train_few_steps
