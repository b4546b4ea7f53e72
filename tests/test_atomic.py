"""Atomic writes: an interrupted write leaves the previous file intact and no temp file."""

from __future__ import annotations

import pytest
import torch

from spikeloom.atomic import atomic_write, atomic_write_text
from spikeloom.train import atomic_torch_save


def test_interrupted_write_keeps_previous_file(tmp_path):
    target = tmp_path / "ckpt.pt"
    atomic_torch_save({"step": 1}, target)

    def crash(fh):
        fh.write(b"partial bytes")
        raise KeyboardInterrupt  # e.g. the user pressed Ctrl-C during torch.save

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash)
    assert torch.load(target, weights_only=False) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]


def test_write_replaces_and_creates_dirs(tmp_path):
    target = tmp_path / "a" / "b" / "x.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic_write_text(tmp_path / "missing" / "y.txt", "z", make_dirs=False)
