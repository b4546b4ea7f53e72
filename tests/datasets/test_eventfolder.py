"""EventFolder: bring your own event data (class folders, or spikeloom convert output)."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from spikeloom.cli import main as cli_main
from spikeloom.datasets import build_dataset
from spikeloom.datasets.eventfolder import EventFolder
from spikeloom.events import make_events, save_events


def _folder(root: Path, n_per_class: int = 10) -> Path:
    rng = np.random.default_rng(0)
    for c, name in enumerate(["left", "right", "up"]):
        (root / name).mkdir(parents=True)
        for k in range(n_per_class):
            n = 50
            ev = make_events(x=rng.integers(0, 12, n), y=rng.integers(0, 9, n) + c,
                             p=rng.integers(0, 2, n), t=np.sort(rng.integers(0, 1000, n)),
                             sensor_size=(16, 12, 2))
            save_events(root / name / f"rec{k}.npz", ev)
    return root


def test_class_folders_split_spec_and_frames(tmp_path):
    root = _folder(tmp_path / "data")
    parts = {s: EventFolder(root, s, T=4, sensor_size=(16, 12, 2), cache_dir=False)
             for s in ("train", "val", "test")}
    assert sum(len(p) for p in parts.values()) == 30
    assert len(parts["test"]) == 6  # test_fraction 0.2, stratified: 2 per class
    ids = [{str(p._samples[i]) for i in p.indices} for p in parts.values()]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    ds = parts["train"]
    assert ds.classes == ("left", "right", "up") and ds.num_classes == 3
    x, y = ds[0]
    assert tuple(x.shape) == ds.spec.sample_shape == (4, 2, 12, 16)
    assert float(x.sum()) == 50  # every event counted once


def test_sensor_size_is_scanned_with_a_warning_and_errors_are_clear(tmp_path):
    root = _folder(tmp_path / "data")
    with pytest.warns(UserWarning, match="scanning the"):
        ds = EventFolder(root, "train", cache_dir=False)
        assert ds.sensor_size[0] <= 16 and ds.sensor_size[1] <= 12 and ds.sensor_size[2] == 2
    with pytest.raises(FileNotFoundError, match="holds no <class>/<file>"):
        (tmp_path / "empty" / "a").mkdir(parents=True)
        EventFolder(tmp_path / "empty", "train", sensor_size=(4, 4, 2))


def _mnist_idx(shared_data: Path, folder: Path, n: int) -> tuple[Path, Path]:
    from spikeloom.events.io import read_idx

    images = read_idx(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz")[:n]
    labels = read_idx(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz")[:n]
    img, lab = folder / "imgs-idx3-ubyte.gz", folder / "labs-idx1-ubyte.gz"
    with gzip.open(img, "wb") as f:
        f.write(struct.pack(">BBBBIII", 0, 0, 8, 3, n, 28, 28) + images.tobytes())
    with gzip.open(lab, "wb") as f:
        f.write(struct.pack(">BBBBI", 0, 0, 8, 1, n) + labels.astype(np.uint8).tobytes())
    return img, lab


def test_walkthrough_convert_train_eval(shared_data, tmp_path, capsys):
    """The README walk-through on a small slice of MNIST: convert, train, evaluate."""
    src = tmp_path / "src"
    src.mkdir()
    img, lab = _mnist_idx(shared_data, src, 160)
    out = tmp_path / "mnist-events"
    for split in ("train", "val"):
        assert cli_main(["convert", "--idx", str(img), str(lab), str(out), "--split", split,
                         "--size", "28", "--no-crop", "--min-events", "0",
                         "--no-progress"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["sensor_size"] == [32, 32, 2]
    ds = build_dataset("eventfolder", "train", root=str(out), cache_dir=False)
    assert ds.official_test and ds.num_classes == 10 and ds.spec.size == (32, 32)
    run = tmp_path / "run"
    assert cli_main(["train", "--dataset", "eventfolder", "--root", str(out),
                     "--dataset-arg", "cache_dir=false", "--epochs", "2", "--batch-size", "32",
                     "--model-arg", "channels=[4, 8]", "--model-arg", "hidden=16",
                     "--out", str(run), "--no-plots", "--no-cost", "--threads", "1",
                     "--quiet"]) == 0
    capsys.readouterr()
    assert cli_main(["eval", str(run)]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 160 and 0.0 <= res["acc"] <= 1.0
