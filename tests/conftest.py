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
