"""Tests of ``spikeloom convert`` (ES-ImageNet conversion at scale) on real MNIST digits."""

from __future__ import annotations

import gzip
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from spikeloom.atomic import pid_alive, temp_path
from spikeloom.convert import (
    STATE_DIR,
    convert_job,
    main,
    plan_folder_jobs,
    plan_idx_jobs,
)
from spikeloom.events.odg import convert_image, resize_nearest

REPO = Path(__file__).resolve().parents[1]


def dead_pid() -> int:
    """The id of a process that has exited (a writer killed before its rename)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert not pid_alive(proc.pid)
    return proc.pid


@pytest.fixture(scope="module")
def mnist(shared_data):
    from spikeloom.events.io import read_idx

    images = read_idx(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz")[:200]
    labels = read_idx(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz")[:200]
    return images, labels


def write_idx_pair(folder: Path, images: np.ndarray, labels: np.ndarray) -> tuple[Path, Path]:
    img_path, lab_path = folder / "imgs-idx3-ubyte.gz", folder / "labs-idx1-ubyte.gz"
    n, h, w = images.shape
    with gzip.open(img_path, "wb") as f:
        f.write(struct.pack(">BBBBIII", 0, 0, 8, 3, n, h, w) + images.tobytes())
    with gzip.open(lab_path, "wb") as f:
        f.write(struct.pack(">BBBBI", 0, 0, 8, 1, n) + labels.astype(np.uint8).tobytes())
    return img_path, lab_path


@pytest.fixture(scope="module")
def image_tree(mnist, tmp_path_factory):
    """Class folders (synset-like names) of 64x64 PNGs made from the first 20 MNIST digits."""
    from PIL import Image

    images, labels = mnist
    root = tmp_path_factory.mktemp("src")
    for j in range(20):
        d = root / f"n{int(labels[j]):08d}"
        d.mkdir(exist_ok=True)
        big = resize_nearest(images[j], 64, 64, sampling="floor")
        if j % 2:  # odd images as RGB (red channel only), even as grey: both decoder paths
            rgb = np.zeros((64, 64, 3), np.uint8)
            rgb[..., 0] = big
            Image.fromarray(rgb).save(d / f"img_{j:03d}.png")
        else:
            Image.fromarray(big).save(d / f"img_{j:03d}.png")
    # a blank image sorted first in class 0: discarded (0 events), leaves a gap k = 1
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(root / "n00000000" / "a_blank.png")
    (root / "n00000000" / "notes.txt").write_text("not an image")
    return root


def tree_files(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and STATE_DIR not in p.parts
    }


def tmp_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.endswith(".tmp")]


# ------------------------------------------------------------------------------------------


def test_folder_tree_conversion(image_tree, tmp_path):
    from PIL import Image

    out = tmp_path / "out"
    assert main([str(image_tree), str(out), "--workers", "2", "--min-events", "200",
                 "--no-progress"]) == 0
    lines = (out / "trainlabel.txt").read_text().splitlines()
    assert len(lines) == 20  # 21 images, the blank one discarded
    classes = sorted(d.name for d in image_tree.iterdir())
    for line in lines:
        rel, label, h, w = line.split()
        assert (int(h), int(w)) == (254, 254)
        cls, name = rel.split("/")
        assert cls == f"class{label}" and name.startswith(f"class{label}_")
        k = int(name.split("_")[1].split(".")[0])
        src = sorted(p for p in (image_tree / classes[int(label)]).iterdir()
                     if p.suffix == ".png")[k - 1]
        ref = convert_image(np.asarray(Image.open(src)), min_events=200)
        with np.load(out / "train" / rel) as z:
            assert sorted(z.files) == ["neg", "pos"]
            assert z["pos"].dtype == np.uint8 and z["pos"].shape[1] == 3
            np.testing.assert_array_equal(z["pos"], ref.pos)
            np.testing.assert_array_equal(z["neg"], ref.neg)
    # class 0: the blank image (k = 1) was discarded, so numbering starts at 2
    class0 = sorted(line.split()[0] for line in lines if line.split()[1] == "0")
    assert class0[0] == "class0/class0_2.npz" and not (out / "train/class0/class0_1.npz").exists()
    assert tmp_files(out) == []


def test_idx_train_and_val_layouts(mnist, tmp_path):
    images, labels = mnist
    img, lab = write_idx_pair(tmp_path, images[:30], labels[:30])
    out = tmp_path / "out"
    assert main([str(out), "--idx", str(img), str(lab), "--workers", "1", "--no-progress"]) == 0
    lines = (out / "trainlabel.txt").read_text().splitlines()
    assert len(lines) == 30
    # k counts per label in file order
    expected = []
    seen: dict[int, int] = {}
    for lb in labels[:30]:
        seen[int(lb)] = seen.get(int(lb), 0) + 1
        expected.append(f"class{lb}/class{lb}_{seen[int(lb)]}.npz {lb} 254 254")
    assert lines == expected
    assert main([str(out), "--idx", str(img), str(lab), "--split", "val", "--workers", "1",
                 "--no-progress"]) == 0
    val = (out / "vallabel.txt").read_text().splitlines()
    assert val[0] == f"imgs-idx3-ubyte_00000001.npz {labels[0]} 254 254"
    with np.load(out / "val" / "imgs-idx3-ubyte_00000003.npz") as z:
        ref = convert_image(images[2])
        np.testing.assert_array_equal(z["neg"], ref.neg)
    # identical content whatever the split layout
    a = (out / "train" / expected[2].split()[0]).read_bytes()
    assert a == (out / "val" / "imgs-idx3-ubyte_00000003.npz").read_bytes()


def test_val_labels_file(image_tree, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    table = []
    for j, p in enumerate(sorted(image_tree.rglob("img_*.png"))[:6]):
        name = f"ILSVRC2012_val_{j + 1:08d}.PNG"
        (flat / name).write_bytes(p.read_bytes())
        table.append(f"{name} {j * 7}")
    (tmp_path / "val.txt").write_text("\n".join(table) + "\n")
    out = tmp_path / "out"
    assert main([str(flat), str(out), "--split", "val", "--val-labels", str(tmp_path / "val.txt"),
                 "--min-events", "200", "--workers", "1", "--no-progress"]) == 0
    lines = (out / "vallabel.txt").read_text().splitlines()
    assert lines == [f"ILSVRC2012_val_{j + 1:08d}.npz {j * 7} 254 254" for j in range(6)]
    (tmp_path / "val.txt").write_text("\n".join(table[:-1]) + "\n")
    assert main([str(flat), str(tmp_path / "o2"), "--split", "val", "--val-labels",
                 str(tmp_path / "val.txt"), "--no-progress"]) == 2


def test_resume_after_simulated_interruption_equals_clean_run(mnist, tmp_path):
    images, labels = mnist
    img, lab = write_idx_pair(tmp_path, images[:40], labels[:40])
    clean, broken = tmp_path / "clean", tmp_path / "broken"
    args = ["--idx", str(img), str(lab), "--min-events", "8000", "--workers", "1",
            "--no-progress"]
    assert main([str(clean), *args]) == 0
    # interrupted state: some npz written without a record, a half-written record line,
    # a leftover temporary file of a killed writer
    jobs = plan_idx_jobs(img, lab)
    from spikeloom.convert import ConvertOptions

    opts = ConvertOptions(min_events=8000)
    for job in jobs[:9]:
        assert convert_job(job, broken / "train", opts).status in ("kept", "discarded")
    state = broken / STATE_DIR
    state.mkdir(parents=True)
    (state / "train.shard0of1.done").write_text(f"{jobs[0].rel} kept 254 2")
    leftover = broken / "train" / jobs[12].rel
    leftover.parent.mkdir(parents=True, exist_ok=True)
    stale = temp_path(leftover)  # the one temporary-name scheme, with a dead writer's pid
    stale = stale.with_name(stale.name.replace(f".{os.getpid()}.", f".{dead_pid()}."))
    stale.write_bytes(b"partial")
    live = temp_path(broken / "train" / jobs[13].rel)  # this process: an in-flight write
    live.parent.mkdir(parents=True, exist_ok=True)
    live.write_bytes(b"in flight")
    assert main([str(broken), *args]) == 0
    assert not stale.exists() and live.exists()  # only the killed writer's leftover goes
    live.unlink()
    assert tree_files(broken) == tree_files(clean)  # byte-for-byte, label file included
    assert tmp_files(broken) == []
    # a re-run converts nothing (discarded ones are remembered too)
    n_discarded = sum(1 for line in (clean / STATE_DIR / "train.shard0of1.done").read_text()
                      .splitlines() if " discarded " in line)
    assert n_discarded > 0
    before = (broken / STATE_DIR / "train.shard0of1.done").read_text()
    assert main([str(broken), *args]) == 0
    assert (broken / STATE_DIR / "train.shard0of1.done").read_text() == before


@pytest.mark.slow
def test_resume_after_killed_subprocess(mnist, tmp_path):
    images, labels = mnist
    img, lab = write_idx_pair(tmp_path, images[:100], labels[:100])
    out, clean = tmp_path / "out", tmp_path / "clean"
    # smaller canvas (128, crop 8..120) keeps the test quick; 100 images take about 0.5 s
    args = ["--idx", str(img), str(lab), "--workers", "1", "--no-progress", "--size", "128",
            "--crop", "8", "120", "--min-events", "0"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "spikeloom.convert", str(out), *args],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = out / STATE_DIR / "train.shard0of1.done"
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if done.exists() and done.read_text().count("\n") >= 5:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be interrupted"
    assert not (out / "trainlabel.txt").exists()
    for p in (out / "train").rglob("*.npz"):  # whatever exists is complete
        with np.load(p) as z:
            assert z["pos"].shape[1] == 3
    assert main([str(out), *args]) == 0
    assert main([str(clean), *args]) == 0
    assert tree_files(out) == tree_files(clean)
    assert len((out / "trainlabel.txt").read_text().splitlines()) == 100
    assert tmp_files(out) == []


def test_shards_together_equal_unsharded(mnist, tmp_path, monkeypatch):
    images, labels = mnist
    img, lab = write_idx_pair(tmp_path, images[:25], labels[:25])
    args = ["--idx", str(img), str(lab), "--workers", "1", "--no-progress",
            "--min-events", "8000"]
    whole, sharded = tmp_path / "whole", tmp_path / "sharded"
    assert main([str(whole), *args]) == 0
    # shard 1 first (as torchrun rank 1): no label file until shard 0 is done
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main([str(sharded), *args]) == 0
    assert not (sharded / "trainlabel.txt").exists()
    written = sorted(p.name for p in (sharded / "train").rglob("*.npz"))
    jobs = plan_idx_jobs(img, lab)
    assert set(written) <= {j.rel.split("/")[1] for j in jobs if j.index % 2 == 1}
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert main([str(sharded), *args, "--shard", "0/2"]) == 0
    assert tree_files(sharded) == tree_files(whole)
    assert main([str(sharded), "--assemble-only", "--shard", "0/2"]) == 0


def test_errors_are_reported(image_tree, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(tmp_path / "missing"), str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([str(image_tree), str(out), "--shard", "3/2"]) == 2
    assert main([str(image_tree), str(out), "--no-crop"]) == 2  # 258-pixel canvas vs uint8
    # options recorded on the first run; a different threshold is refused
    assert main([str(image_tree), str(out), "--min-events", "200", "--workers", "1",
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main([str(image_tree), str(out), "--threshold", "0.3", "--no-progress"]) == 2
    assert "'threshold': 0.3" in capsys.readouterr().err
    # a corrupt image is reported and blocks the label file, without stopping the others
    bad = tmp_path / "bad"
    (bad / "c0").mkdir(parents=True)
    (bad / "c0" / "x.png").write_bytes(b"\x89PNG broken")
    assert main([str(bad), str(tmp_path / "o3"), "--no-progress", "--workers", "1"]) == 1
    assert not (tmp_path / "o3" / "trainlabel.txt").exists()


def test_plan_folder_jobs_naming(image_tree):
    jobs = plan_folder_jobs(image_tree)
    assert [j.index for j in jobs] == list(range(len(jobs))) and len(jobs) == 21
    assert jobs[0].rel == "class0/class0_1.npz" and jobs[0].path.endswith("a_blank.png")
    assert {j.label for j in jobs} == set(range(len({Path(j.path).parent for j in jobs})))
    val = plan_folder_jobs(image_tree, split="val")
    assert val[1].rel == Path(val[1].path).stem + ".npz"


def test_convert_is_an_argparse_subcommand(mnist, tmp_path, capsys):
    import argparse

    from spikeloom import convert, errors

    assert convert.ConvertError is errors.ConvertError
    assert issubclass(convert.ConvertError, errors.SpikeloomError)
    top = argparse.ArgumentParser(prog="spikeloom")
    sub = top.add_subparsers(dest="command", required=True)
    convert.add_arguments(sub.add_parser("convert"))
    images, labels = mnist
    img, lab = write_idx_pair(tmp_path, images[:5], labels[:5])
    args = top.parse_args(["convert", str(tmp_path / "out"), "--idx", str(img), str(lab),
                           "--workers", "1", "--no-progress", "--min-events", "0"])
    assert args.command == "convert" and args.size == 254 and args.crop == (16, 240)
    assert convert.run(args) == 0
    assert len((tmp_path / "out" / "trainlabel.txt").read_text().splitlines()) == 5
    # the stand-alone parser is built from the same arguments
    stand_alone = vars(convert.build_parser().parse_args(
        [str(tmp_path / "out"), "--idx", str(img), str(lab)]))
    assert stand_alone.keys() == vars(args).keys() - {"command"}
    bad = top.parse_args(["convert", str(tmp_path / "x"), str(tmp_path / "y"), "--shard", "5"])
    capsys.readouterr()
    assert convert.run(bad) == 2
    assert "spikeloom convert: error: --shard must look like i/n" in capsys.readouterr().err



def test_small_images_warn_about_the_crop_and_meta_is_written(image_tree, tmp_path):
    import json

    out = tmp_path / "small"
    with pytest.warns(UserWarning, match=r"--crop 16 240 keeps only 50% .*--no-crop"):
        assert main([str(image_tree), str(out), "--size", "28", "--min-events", "0",
                     "--no-progress"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["sensor_size"] == [32, 32, 2] and meta["T"] == 8 and meta["size"] == 28
    assert meta["splits"]["train"]["num_classes"] == len(list(image_tree.iterdir()))
    out2 = tmp_path / "nocrop"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning without a crop
        assert main([str(image_tree), str(out2), "--size", "28", "--no-crop", "--min-events",
                     "0", "--no-progress"]) == 0
    meta = json.loads((out2 / "meta.json").read_text())
    assert meta["sensor_size"] == [32, 32, 2] and meta["crop"] is None
    with np.load(next((out2 / "train").rglob("*.npz"))) as z:  # events fit the sensor
        assert int(max(z["pos"][:, :2].max(initial=0), z["neg"][:, :2].max(initial=0))) < 32
