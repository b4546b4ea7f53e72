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


def test_one_temp_name_scheme_and_stale_cleanup(tmp_path):
    import os
    import subprocess
    import sys

    from spikeloom.atomic import clean_stale_temps, host_tag, parse_temp_name, temp_path

    t = temp_path(tmp_path / "a.npy")
    info = parse_temp_name(t.name)
    assert info is not None and info.target == "a.npy" and info.pid == os.getpid()
    assert info.host == host_tag()
    # a temp of a live process (us) stays; one of a finished process goes
    t.write_bytes(b"x")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_tmp = tmp_path / f".b.npy.{host_tag()}.{int(dead.stdout)}.abcd1234.tmp"
    dead_tmp.write_bytes(b"y")
    foreign = tmp_path / ".c.npy.otherhost.1.abcd.tmp"
    foreign.write_bytes(b"z")
    assert clean_stale_temps(tmp_path, targets={"a.npy"}) == 0
    assert clean_stale_temps(tmp_path) == 1
    assert t.exists() and not dead_tmp.exists() and foreign.exists()
    os.utime(foreign, (0, 0))  # old enough: another host's leftovers expire
    assert clean_stale_temps(tmp_path, stale_after=60) == 1 and not foreign.exists()
