"""Shared test fixtures.

Real data live in ``../shared/data`` beside the repository (never committed). Tests that need
them use the ``shared_data`` fixture, which skips with a clear reason when the folder is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(
    os.environ.get("SPIKELOOM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ``../shared/data``; skips the test when the folder is not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (set SPIKELOOM_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def one_torch_thread():
    """One torch intra-op thread for the test (small tensors: faster and steadier on a loaded
    machine); the previous count is restored afterwards. Use with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def small_liafnet():
    """Factory of the small ``liafnet`` the compression tests quantize and lower:
    ``small_liafnet(neuron="lif", size=16, seed=0)`` (keywords only; 2 input channels, conv
    widths 8/16, hidden 32, input ``size × size``; torch's seed set to ``seed`` first)."""
    from spikeloom.models import build_model

    def make(*, neuron: str = "lif", size: int = 16, seed: int = 0):
        import torch

        torch.manual_seed(seed)
        return build_model("liafnet", in_channels=2, input_size=(size, size), channels=(8, 16),
                           hidden=32, neuron=neuron)

    return make
