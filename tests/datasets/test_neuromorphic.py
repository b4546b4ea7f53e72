"""Tests of the event datasets (spikeloom.datasets.nmnist, ... through .neuromorphic).

N-MNIST runs on the real 1,100-recording subset (``shared_data`` fixture). The other datasets
have no real sample available: they are tested on synthetic files written from the published
byte layouts with the writers of spikeloom.events.io, plus the real DVS128 Gesture labels CSV.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from spikeloom.datasets import DATASETS, build_dataset
from spikeloom.datasets.neuromorphic import (
    CIFAR10DVS,
    NMNIST,
    SHD,
    DVSGesture,
    ESImageNet,
    ESImageNetToFrame,
    NCaltech101,
    shift_frames,
    stratified_split,
)
from spikeloom.errors import ConfigError, MissingDataError, UnknownNameError
from spikeloom.events import read_cifar10dvs, read_dvs_gesture
from spikeloom.events.core import make_events
from spikeloom.events.io import (
    read_es_imagenet_npz,
    write_aedat2,
    write_aedat31,
    write_es_imagenet_npz,
    write_nmnist_bin,
)
from spikeloom.events.transforms import ToFrame

# per-class counts of the shared subset (README section 3)
TRAIN_COUNTS = [97, 116, 99, 93, 105, 92, 94, 117, 87, 100]
TEST_COUNTS = [8, 14, 8, 11, 14, 7, 10, 15, 2, 11]


@pytest.fixture(scope="module")
def nmnist_root(shared_data: Path) -> Path:
    return shared_data / "nmnist"


# ---------------------------------------------------------------- helpers


def test_stratified_split_invariants() -> None:
    labels = np.repeat(np.arange(10), TRAIN_COUNTS)
    np.random.default_rng(5).shuffle(labels)
    tr, va = stratified_split(labels, 0.1, seed=0)
    assert len(va) == 100 and len(tr) == 900  # exactly round(0.1 * 1000)
    assert np.intersect1d(tr, va).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([tr, va])), np.arange(1000))
    per_class = np.bincount(labels[va], minlength=10)
    # largest remainder: floor(0.1 n_c) = 9,11,9,9,10,9,9,11,8,10 (=95); the 5 largest
    # fractions (.9 .7 .6 .5 .4 for digits 2, 8, 7, 1, 6 ...) get one more
    expected = np.floor(0.1 * np.array(TRAIN_COUNTS)).astype(int)
    frac = 0.1 * np.array(TRAIN_COUNTS) - expected
    expected[np.argsort(-frac, kind="stable")[:5]] += 1
    np.testing.assert_array_equal(per_class, expected)
    tr2, va2 = stratified_split(labels, 0.1, seed=0)
    np.testing.assert_array_equal(va, va2)  # fixed by the seed
    assert not np.array_equal(va, stratified_split(labels, 0.1, seed=1)[1])
    assert stratified_split(labels, 0.0, seed=0)[1].size == 0
    with pytest.raises(ValueError, match="val_fraction"):
        stratified_split(labels, 1.0, seed=0)


def test_shift_frames_by_hand() -> None:
    x = torch.arange(12.0).reshape(1, 3, 4)
    out = shift_frames(x, dx=1, dy=-1)
    # out[r, c] = x[r + 1, c - 1], zero outside
    expected = torch.tensor([[[0.0, 4, 5, 6], [0, 8, 9, 10], [0, 0, 0, 0]]])
    torch.testing.assert_close(out, expected)
    assert shift_frames(x, 0, 0) is x


# ---------------------------------------------------------------- N-MNIST (real data)


def test_nmnist_splits_and_labels(nmnist_root: Path, tmp_path: Path) -> None:
    kw = {"cache_dir": tmp_path}
    tr = NMNIST(nmnist_root, "train", **kw)
    va = NMNIST(nmnist_root, "val", **kw)
    te = NMNIST(nmnist_root, "test", **kw)
    assert (len(tr), len(va), len(te)) == (900, 100, 100)
    assert tr.num_classes == 10 and tr.classes[3] == "3" and tr.sensor_size == (34, 34, 2)
    np.testing.assert_array_equal(
        np.bincount(np.concatenate([tr.labels, va.labels]), minlength=10), TRAIN_COUNTS
    )
    np.testing.assert_array_equal(np.bincount(te.labels, minlength=10), TEST_COUNTS)
    # train and val are disjoint subsets of the training files
    files_tr = {tr._samples[j] for j in tr.indices}
    files_va = {va._samples[j] for j in va.indices}
    assert not files_tr & files_va and len(files_tr | files_va) == 1000
    # labels match the digit folder of each file (and its split folder)
    for ds, sub in ((tr, "Train"), (va, "Train"), (te, "Test")):
        for lab, j in zip(ds.labels, ds.indices):
            path = ds._samples[j]
            assert path.parent.name == str(lab) and path.parent.parent.name == sub
    # a different seed moves the validation files
    assert set(NMNIST(nmnist_root, "val", seed=1, **kw).indices) != set(va.indices)
    # the trainer's registry gives the same dataset
    reg = build_dataset("nmnist", "val", root=str(nmnist_root), **kw)
    np.testing.assert_array_equal(reg.indices, va.indices)


def test_nmnist_frames_count_every_event(nmnist_root: Path, tmp_path: Path) -> None:
    te = NMNIST(nmnist_root, "test", T=6, cache_dir=tmp_path)
    for i in (0, 17, 99):
        x, y = te[i]
        ev = te.events(i)
        assert x.shape == (6, 2, 34, 34) and x.dtype == torch.float32
        assert y == int(te.labels[i])
        assert float(x.sum()) == len(ev)  # count-preserving default transform
        # channel = polarity value
        assert float(x[:, 1].sum()) == int((ev["p"] == 1).sum())
    ds2 = NMNIST(nmnist_root, "test", T=6, downsample=2, cache_dir=False)
    x2, _ = ds2[17]
    assert x2.shape == (6, 2, 17, 17) and float(x2.sum()) == len(ds2.events(17))
    # the spec is known without reading a sample and matches the samples
    for ds in (te, ds2, NMNIST(nmnist_root, "test", downsample=3, cache_dir=False)):
        assert ds.spec.kind == "frames" and ds.spec.num_classes == 10
        assert ds.spec.sample_shape == tuple(ds[0][0].shape)
    assert ds2.spec.sample_shape == (6, 2, 17, 17)


def test_nmnist_cache_hit_identical(nmnist_root: Path, tmp_path: Path) -> None:
    ds = NMNIST(nmnist_root, "test", T=5, cache_dir=tmp_path)
    assert ds.cache is not None and ds.cache.cached_indices() == []
    miss, _ = ds[3]
    assert ds.cache.cached_indices() == [int(ds.indices[3])]
    hit, _ = ds[3]
    torch.testing.assert_close(hit, miss, rtol=0, atol=0)
    # same frames without cache, and from a fresh object on the same cache
    torch.testing.assert_close(NMNIST(nmnist_root, "test", T=5, cache_dir=False)[3][0], miss)
    torch.testing.assert_close(NMNIST(nmnist_root, "test", T=5, cache_dir=tmp_path)[3][0], miss)
    # another T is another cache folder; train and val share theirs
    other = NMNIST(nmnist_root, "test", T=7, cache_dir=tmp_path)
    assert other.cache.folder != ds.cache.folder
    tr = NMNIST(nmnist_root, "train", T=5, cache_dir=tmp_path)
    va = NMNIST(nmnist_root, "val", T=5, cache_dir=tmp_path)
    assert tr.cache.folder == va.cache.folder != ds.cache.folder
    # prepare() fills the rest and can be repeated
    assert ds.prepare() == 99 and ds.prepare() == 0
    assert ds.cache.cached_indices() == list(range(100))
    # the stored file is compact
    assert ds.cache.load(0).dtype == np.uint8


def _prepare_test_split(args: tuple[str, str]) -> list[bytes]:
    root, cache = args
    ds = NMNIST(root, "test", T=4, cache_dir=cache)
    ds.prepare()
    return [ds[i][0].numpy().tobytes() for i in range(len(ds))]


def test_nmnist_two_processes_fill_one_cache(nmnist_root: Path, tmp_path: Path) -> None:
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(2) as pool:
        a, b = pool.map(_prepare_test_split, [(str(nmnist_root), str(tmp_path))] * 2)
    assert a == b
    ref = NMNIST(nmnist_root, "test", T=4, cache_dir=False)
    assert a == [ref[i][0].numpy().tobytes() for i in range(len(ref))]
    assert NMNIST(nmnist_root, "test", T=4, cache_dir=tmp_path).cache.temp_files() == []


def test_nmnist_augment_shift_only_on_train(nmnist_root: Path) -> None:
    tr = NMNIST(nmnist_root, "train", T=4, cache_dir=False, augment_shift=2)
    va = NMNIST(nmnist_root, "val", T=4, cache_dir=False, augment_shift=2)
    plain = NMNIST(nmnist_root, "train", T=4, cache_dir=False)
    torch.manual_seed(0)
    outs = [tr[0][0] for _ in range(8)]
    base = plain[0][0]
    assert any(not torch.equal(o, base) for o in outs)
    assert all(float(o.sum()) <= float(base.sum()) for o in outs)  # zero fill, no wrap
    torch.testing.assert_close(va[0][0], NMNIST(nmnist_root, "val", T=4, cache_dir=False)[0][0])


def test_nmnist_argument_errors(nmnist_root: Path) -> None:
    with pytest.raises(ValueError, match="either T"):
        NMNIST(nmnist_root, "train", T=5, transform=ToFrame(n_time_bins=5))
    with pytest.raises(ValueError, match="split must be"):
        NMNIST(nmnist_root, "validation")
    with pytest.raises(ValueError, match="val_fraction=0"):
        NMNIST(nmnist_root, "val", val_fraction=0.0)
    with pytest.raises(IndexError):
        NMNIST(nmnist_root, "test", cache_dir=False)[100]
    for bad in ({"downsample": 0}, {"downsample": True}, {"T": 0}, {"T": "x"}):
        name = next(iter(bad))
        with pytest.raises(ValueError, match=f"{name} must be an int >= 1"):
            NMNIST(nmnist_root, "test", cache_dir=False, **bad)
    # a random transform is never cached, and asking for a cache says so
    from spikeloom.events.transforms import Compose, DropEvent

    rnd = Compose((DropEvent(0.5), ToFrame(n_time_bins=3)))
    with pytest.warns(UserWarning, match="not cached"):
        ds = NMNIST(nmnist_root, "test", transform=rnd, cache_dir="/nonexistent/never/used")
    assert ds.cache is None
    with pytest.raises(ConfigError, match="custom transform"):
        ds.spec  # noqa: B018 - the output shape of a custom transform is unknown
    x, _ = ds[0]
    n = len(ds.events(0))
    assert float(x.sum()) == n - round(n * 0.5)  # DropEvent drops round(p * N) events


def test_trainer_runs_on_nmnist(nmnist_root: Path, tmp_path: Path) -> None:
    from spikeloom.train import TrainConfig, train

    cfg = TrainConfig(
        dataset="nmnist", root=str(nmnist_root), max_samples=24, epochs=1, batch_size=12,
        dataset_kwargs={"T": 3, "downsample": 2, "cache_dir": str(tmp_path / "c")},
        model_kwargs={"channels": [4, 8], "hidden": 16}, progress=False, plots=False,
        cost=False, out=str(tmp_path / "run"), threads=1,
    )
    final = train(cfg)
    assert final["test_n"] == 24 and 0.0 <= final["test_acc"] <= 1.0


# ---------------------------------------------------------------- missing files


@pytest.mark.parametrize(
    "cls, needles",
    [
        (NMNIST, ["ROOT/Train/<digit 0-9>/*.bin", "ROOT/Test/<digit 0-9>/*.bin",
                  "garrickorchard.com/datasets/n-mnist", "ROOT/Train does not exist"]),
        (DVSGesture, ["ROOT/trials_to_train.txt", "_labels.csv", "research.ibm.com"]),
        (CIFAR10DVS, ["ROOT/<class>/*.aedat", "airplane", "10.6084/m9.figshare.4724671"]),
        (NCaltech101, ["ROOT/<category>/image_*.bin", "n-caltech101"]),
        (SHD, ["ROOT/shd_train.h5", "ROOT/shd_test.h5", "zenkelab.org"]),
        (ESImageNet, ["ROOT/trainlabel.txt", "ROOT/train/<path>.npz", "ES-imagenet-master"]),
    ],
)
def test_missing_files_message(cls: type, needles: list[str], tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        cls(tmp_path, "train", cache_dir=False)
    msg = str(info.value)
    for needle in needles + [f"ROOT = {tmp_path}", "spikeloom never downloads"]:
        assert needle in msg, (needle, msg)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        cls(tmp_path / "nope", "test", cache_dir=False)


def test_nmnist_missing_test_folder(nmnist_root: Path, tmp_path: Path) -> None:
    (tmp_path / "Train" / "3").mkdir(parents=True)
    shutil.copy(next((nmnist_root / "Train" / "3").glob("*.bin")), tmp_path / "Train" / "3")
    assert len(NMNIST(tmp_path, "train", val_fraction=0.0, cache_dir=False)) == 1
    with pytest.raises(FileNotFoundError, match="ROOT/Test does not exist"):
        NMNIST(tmp_path, "test", cache_dir=False)


def test_registry() -> None:
    for name in ("nmnist", "dvsgesture", "cifar10dvs", "ncaltech101", "shd", "esimagenet"):
        assert name in DATASETS
    with pytest.raises(ValueError, match="needs --root"):
        build_dataset("nmnist", "train")
    with pytest.raises(ValueError, match=r"ROOT/Train/<digit 0-9>/\*\.bin.*never downloads"):
        build_dataset("NMNIST", "train")  # names are case-insensitive
    with pytest.raises(ValueError, match="takes no --root"):
        build_dataset("esdigits", "train", root="/somewhere")
    with pytest.raises(UnknownNameError, match="unknown dataset 'mnist2'") as info:
        build_dataset("mnist2", "train")
    assert "esdigits" in str(info.value) and "shd" in str(info.value)
    assert {"cifar10dvs", "dvsgesture", "esdigits", "esimagenet", "eventfolder", "mnist",
            "ncaltech101", "nmnist", "shd"} <= set(DATASETS)


def test_base_calls_no_hook_before_the_subclass_is_ready(nmnist_root: Path) -> None:
    calls = []

    class Late(NMNIST):
        def __init__(self, root: Path, split: str, **kwargs: object) -> None:
            super().__init__(root, split, **kwargs)
            self.late = "set after super().__init__"  # the hooks below need it

        def default_transform(self):  # noqa: ANN202
            calls.append(("default_transform", self.late))
            return super().default_transform()

        def _list_part(self, part: str):  # noqa: ANN202
            calls.append(("_list_part", self.late))
            return super()._list_part(part)

    ds = Late(nmnist_root, "test", T=3, cache_dir=False)
    assert [c[0] for c in calls] == ["default_transform", "_list_part"]
    assert len(ds) == 100 and ds[0][0].shape == (3, 2, 34, 34)
    assert ds.spec.sample_shape == (3, 2, 34, 34)


def test_spec_reads_no_sample(nmnist_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds = NMNIST(nmnist_root, "test", T=7, downsample=2, cache_dir=False)

    def no_read(sample: object) -> None:
        raise AssertionError("spec must not read a sample")

    monkeypatch.setattr(ds, "_read", no_read)
    assert ds.spec.sample_shape == (7, 2, 17, 17) and ds.spec.num_classes == 10


def test_classes_importable_from_the_package() -> None:
    import spikeloom.datasets as D

    assert D.NMNIST is NMNIST and D.SHD is SHD and D.ESDigits.__name__ == "ESDigits"
    with pytest.raises(AttributeError):
        D.NoSuchDataset  # noqa: B018


def test_missing_data_error_type(tmp_path: Path) -> None:
    with pytest.raises(MissingDataError, match="ROOT/Train does not exist"):
        NMNIST(tmp_path, "train", cache_dir=False)


def test_old_import_paths() -> None:
    from spikeloom.datasets import neuromorphic, nmnist, shd, splits

    assert neuromorphic.NMNIST is nmnist.NMNIST and neuromorphic.SHD is shd.SHD
    assert neuromorphic.stratified_split is splits.stratified_split
    from spikeloom.datasets.esdigits import split_indices

    assert split_indices is splits.split_indices


# ---------------------------------------------------------------- DVS128 Gesture (synthetic)


def _gesture_root(tmp_path: Path, shared_labels: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """user01_natural.aedat (synthetic events) + the real labels CSV, listed for both splits."""
    root = tmp_path / "gesture"
    root.mkdir()
    shutil.copy(shared_labels, root / "user01_natural_labels.csv")
    rows = np.loadtxt(shared_labels, delimiter=",", skiprows=1, dtype=np.int64)
    rng = np.random.default_rng(0)
    # events from 1 s before the first gesture to 1 s after the last, 400 per second, plus
    # events exactly on every start and end boundary
    t = np.sort(rng.integers(rows[0, 1] - 10**6, rows[-1, 2] + 10**6, size=50_000))
    t = np.sort(np.concatenate([t, rows[:, 1], rows[:, 2]]))
    n = t.size
    ev = make_events(rng.integers(0, 128, n), rng.integers(0, 128, n), rng.integers(0, 2, n),
                     t, (128, 128, 2))
    write_aedat31(root / "user01_natural.aedat", ev, packet_events=1000)
    (root / "trials_to_train.txt").write_text("user01_natural.aedat\n\n")
    (root / "trials_to_test.txt").write_text("user01_natural.aedat\n")
    return root, rows, ev


def test_dvs_gesture_csv_slicing(shared_data: Path, tmp_path: Path) -> None:
    labels_csv = shared_data / "dvsgesture_labels" / "user01_natural_labels.csv"
    root, rows, ev = _gesture_root(tmp_path, labels_csv)
    te = DVSGesture(root, "test", cache_dir=tmp_path / "cache")
    assert len(te) == 12 and te.num_classes == 11 and te.classes[0] == "hand clap"
    np.testing.assert_array_equal(te.labels, rows[:, 0] - 1)
    assert te.labels.tolist().count(7) == 2  # class 8 (arm roll) occurs twice
    t_all = ev["t"]
    for i, (_, start, end) in enumerate(rows):
        seg = te.events(i)
        inside = (t_all >= start) & (t_all < end)
        assert len(seg) == int(inside.sum())
        assert seg["t"].min() == start and seg["t"].max() < end  # start kept, end excluded
        np.testing.assert_array_equal(np.sort(seg["t"]), np.sort(t_all[inside]))
        # default frames: 128 -> 32, T = 60 windows of 1 ms from the first event
        x, y = te[i]
        assert x.shape == (60, 2, 32, 32) and y == rows[i, 0] - 1
        first_60ms = (seg["t"] >= start) & (seg["t"] < start + 60_000)
        assert float(x.sum()) == int(first_60ms.sum())
    hit, _ = te[4]
    torch.testing.assert_close(hit, DVSGesture(root, "test", cache_dir=False)[4][0])
    # the dataset slices the plain reader's stream exactly as the convenience reader does
    ref = read_dvs_gesture(root / "user01_natural.aedat", root / "user01_natural_labels.csv")
    for i, (seg, label) in enumerate(ref):
        np.testing.assert_array_equal(te.events(i), seg)
        assert label == te.labels[i]
    # train/val split of the 12 training gestures
    tr = DVSGesture(root, "train", val_fraction=0.25, cache_dir=False, T=5, dt_us=20_000)
    va = DVSGesture(root, "val", val_fraction=0.25, cache_dir=False, T=5, dt_us=20_000)
    assert len(tr) + len(va) == 12 and len(va) == 3
    assert tr[0][0].shape == (5, 2, 32, 32)
    for ds in (te, tr):
        assert ds.spec.sample_shape == tuple(ds[0][0].shape) and ds.spec.num_classes == 11


def test_dvs_gesture_missing_recording(shared_data: Path, tmp_path: Path) -> None:
    root = tmp_path / "g"
    root.mkdir()
    (root / "trials_to_train.txt").write_text("user02_led.aedat\n")
    with pytest.raises(FileNotFoundError, match="ROOT/user02_led.aedat, ROOT/user02_led_labels"):
        DVSGesture(root, "train", cache_dir=False)


# ---------------------------------------------------------------- CIFAR10-DVS (synthetic)


def _cifar_root(tmp_path: Path) -> Path:
    root = tmp_path / "cifar"
    rng = np.random.default_rng(1)
    for c in CIFAR10DVS.classes:
        (root / c).mkdir(parents=True)
        for k in (0, 2, 10):  # natural order puts 10 last
            n = 50 + k
            ev = make_events(rng.integers(0, 128, n), rng.integers(0, 128, n),
                             rng.integers(0, 2, n), np.sort(rng.integers(0, 10**6, n)),
                             (128, 128, 2))
            write_aedat2(root / c / f"cifar10_{c}_{k}.aedat", ev, camera="dvs128")
    return root


def test_cifar10dvs_split_rule_and_orientation(tmp_path: Path) -> None:
    root = _cifar_root(tmp_path)
    te = CIFAR10DVS(root, "test", test_per_class=1, cache_dir=tmp_path / "c")
    assert len(te) == 10 and te.labels.tolist() == list(range(10))
    assert all(te._samples[j].name.endswith("_10.aedat") for j in te.indices)
    tr = CIFAR10DVS(root, "train", test_per_class=1, val_fraction=0.5, seed=3, cache_dir=False)
    va = CIFAR10DVS(root, "val", test_per_class=1, val_fraction=0.5, seed=3, cache_dir=False)
    assert len(tr) == len(va) == 10  # one of the two remaining files per class each
    assert not {tr._samples[j] for j in tr.indices} & {te._samples[j] for j in te.indices}
    # the test set does not move with the validation seed
    np.testing.assert_array_equal(
        CIFAR10DVS(root, "test", test_per_class=1, seed=9, cache_dir=False).indices, te.indices
    )
    # spikingjelly orientation: x = 127 - y_raw, y = 127 - x_raw, p = 1 - p_raw
    raw = CIFAR10DVS(root, "test", test_per_class=1, orientation="raw", cache_dir=False)
    a, b = te.events(0), raw.events(0)
    np.testing.assert_array_equal(a["x"], 127 - b["y"].astype(int))
    np.testing.assert_array_equal(a["y"], 127 - b["x"].astype(int))
    np.testing.assert_array_equal(a["p"], 1 - b["p"].astype(int))
    x, _ = te[0]
    assert x.shape == (10, 2, 128, 128) and float(x.sum()) == len(a) == 60
    path = te._samples[te.indices[0]]
    np.testing.assert_array_equal(a, read_cifar10dvs(path))  # same as the convenience reader
    np.testing.assert_array_equal(b, read_cifar10dvs(path, orientation="raw"))
    assert raw.cache is None
    assert te.spec.sample_shape == tuple(x.shape) and te.spec.num_classes == 10
    small = CIFAR10DVS(root, "test", test_per_class=1, T=3, downsample=3, dt_us=1000,
                       cache_dir=False)
    assert small.spec.sample_shape == tuple(small[0][0].shape) == (3, 2, 43, 43)
    seeded = CIFAR10DVS(root, "test", split_rule="seeded", test_fraction=0.34, cache_dir=False)
    assert len(seeded) == 10  # one per class (largest remainder of 0.34 * 3)
    with pytest.raises(ValueError, match="has 3 recordings"):
        CIFAR10DVS(root, "test", cache_dir=False)  # default keeps 100 per class for testing


# ---------------------------------------------------------------- N-Caltech101 (synthetic)


def test_ncaltech101(tmp_path: Path) -> None:
    root = tmp_path / "Caltech101"
    rng = np.random.default_rng(2)
    for c, n_files in (("accordion", 5), ("BACKGROUND_Google", 5), ("yin_yang", 10)):
        (root / c).mkdir(parents=True)
        for k in range(1, n_files + 1):
            n = 30
            ev = make_events(rng.integers(0, 200, n), rng.integers(0, 150, n),
                             rng.integers(0, 2, n), np.sort(rng.integers(0, 10**5, n)),
                             (240, 180, 2))
            write_nmnist_bin(root / c / f"image_{k:04d}.bin", ev)
    te = NCaltech101(tmp_path, "test", cache_dir=False)  # finds ROOT/Caltech101
    assert te.classes == ("BACKGROUND_Google", "accordion", "yin_yang")
    assert np.bincount(te.labels).tolist() == [1, 1, 2]  # 20 % of 5, 5, 10
    ex = NCaltech101(tmp_path, "train", exclude=("BACKGROUND_Google",), val_fraction=0.2,
                     cache_dir=False, T=4, downsample=4)
    assert ex.classes == ("accordion", "yin_yang") and ex.num_classes == 2
    x, _ = ex[0]
    assert x.shape == (4, 2, 45, 60) and float(x.sum()) == 30
    assert ex.spec.sample_shape == tuple(x.shape) and ex.spec.num_classes == 2
    assert te.spec.sample_shape == tuple(te[0][0].shape) == (10, 2, 180, 240)


# ---------------------------------------------------------------- SHD (synthetic h5)


def _shd_file(path: Path, n: int, rng: np.random.Generator) -> tuple[list, list, np.ndarray]:
    times, units = [], []
    for i in range(n):
        k = 20 + 5 * i
        times.append(np.sort(rng.uniform(0.0, 1.3, k)).astype(np.float32))
        units.append(rng.integers(0, 700, k).astype(np.uint16))
    labels = (np.arange(n) % 20).astype(np.uint8)
    with h5py.File(path, "w") as f:
        sp = f.create_group("spikes")
        sp.create_dataset("times", data=np.array(times, dtype=object),
                          dtype=h5py.vlen_dtype(np.float32))
        sp.create_dataset("units", data=np.array(units, dtype=object),
                          dtype=h5py.vlen_dtype(np.uint16))
        f.create_dataset("labels", data=labels)
        keys = [f"english-{d}" for d in range(10)] + [f"german-{d}" for d in range(10)]
        f.create_group("extra").create_dataset("keys", data=np.array(keys, dtype="S"))
    return times, units, labels


def test_shd(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    _shd_file(tmp_path / "shd_train.h5", 20, rng)
    times, units, labels = _shd_file(tmp_path / "shd_test.h5", 6, rng)
    te = SHD(tmp_path, "test", cache_dir=tmp_path / "c")
    assert len(te) == 6 and te.num_classes == 20 and te.classes[12] == "german-2"
    np.testing.assert_array_equal(te.labels, labels)
    for i in range(6):
        ev = te.events(i)
        np.testing.assert_array_equal(ev["x"], units[i])
        np.testing.assert_array_equal(ev["t"], np.rint(times[i].astype(np.float64) * 1e6))
        x, y = te[i]
        assert x.shape == (100, 1, 1, 700) and y == labels[i]
        t_us = ev["t"]
        assert float(x.sum()) == int((t_us < 1_000_000).sum())  # first 100 x 10 ms from t=0
        # channel histogram of the first 10 ms bin, by hand
        first = np.bincount(ev["x"][t_us < 10_000].astype(int), minlength=700)
        np.testing.assert_array_equal(x[0, 0, 0].numpy(), first)
    tr = SHD(tmp_path, "train", cache_dir=False, T=10, dt_us=4000)
    va = SHD(tmp_path, "val", cache_dir=False)
    assert len(tr) + len(va) == 20 and len(va) == 2 and tr[0][0].shape == (10, 1, 1, 700)
    for ds in (te, tr):
        assert ds.spec.kind == "frames" and ds.spec.num_classes == 20
        assert ds.spec.sample_shape == tuple(ds[0][0].shape)
    seq = SHD(tmp_path, "test", cache_dir=False, output="sequence")
    xs, _ = seq[1]
    assert seq.spec.kind == "sequence" and seq.spec.sample_shape == tuple(xs.shape) == (100, 700)
    torch.testing.assert_close(xs, te[1][0].reshape(100, 700))


def test_shd_gz_hint(tmp_path: Path) -> None:
    (tmp_path / "shd_train.h5.gz").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="gunzip it first"):
        SHD(tmp_path, "train", cache_dir=False)


# ---------------------------------------------------------------- ES-ImageNet (synthetic)


def _es_root(tmp_path: Path) -> Path:
    root = tmp_path / "es"
    lines = []
    rng = np.random.default_rng(4)
    for label in range(3):
        d = root / "train" / f"class{label}"
        d.mkdir(parents=True)
        for k in range(1, 5):
            pos = np.stack([rng.integers(17, 240, 40), rng.integers(17, 240, 40),
                            rng.integers(1, 9, 40)], 1)
            neg = np.stack([rng.integers(17, 240, 30), rng.integers(17, 240, 30),
                            rng.integers(1, 9, 30)], 1)
            write_es_imagenet_npz(d / f"class{label}_{k}.npz", pos, neg)
            lines.append(f"class{label}/class{label}_{k}.JPEG {label} 254 254")
    (root / "trainlabel.txt").write_text("\n".join(lines) + "\n")
    (root / "val").mkdir()
    # one hand-made validation sample: a 200 x 254 image, so rows shift by (254-200)//2 = 27
    pos = np.array([[100, 120, 3], [100, 120, 3], [5, 50, 1]])  # a duplicate; 5+27 = 32 kept
    neg = np.array([[220, 17, 8]])  # row 220 + 27 = 247 >= 240: cropped away
    write_es_imagenet_npz(root / "val" / "ILSVRC2012_val_00000001.npz", pos, neg)
    (root / "vallabel.txt").write_text("ILSVRC2012_val_00000001.JPEG 7 200 254\n")
    return root


def test_es_imagenet(tmp_path: Path) -> None:
    root = _es_root(tmp_path)
    te = ESImageNet(root, "test", cache_dir=tmp_path / "c")
    assert len(te) == 1 and te.labels.tolist() == [7] and te.num_classes == 1000
    x, y = te[0]
    assert x.shape == (8, 2, 224, 224) and y == 7
    # ON event (row 100 -> 127 after centring, col 120), step 3 -> frame 2, channel 1 (ON),
    # minus the 16-pixel crop; the duplicate counts once (binary frames)
    assert float(x[2, 1, 127 - 16, 120 - 16]) == 1.0
    assert float(x[0, 1, 32 - 16, 50 - 16]) == 1.0
    assert float(x.sum()) == 2.0
    ev = te.events(0)
    np.testing.assert_array_equal(np.sort(ev["y"]), [32, 127, 127, 247])
    np.testing.assert_array_equal(
        ev, read_es_imagenet_npz(root / "val" / "ILSVRC2012_val_00000001.npz", centre=(200, 254))
    )
    assert ESImageNetToFrame(binary=False)(ev)[2, 1, 111, 104] == 2
    full = ESImageNetToFrame(crop=False)(ev)
    assert full.shape == (8, 2, 256, 256) and full.sum() == 3 and full[7, 0, 247, 17] == 1
    assert te.cache.compress
    assert te.spec.sample_shape == tuple(x.shape) and te.spec.num_classes == 1000
    tr = ESImageNet(root, "train", val_fraction=0.25, cache_dir=False)
    va = ESImageNet(root, "val", val_fraction=0.25, cache_dir=False)
    assert len(tr) == 9 and len(va) == 3 and sorted(va.labels.tolist()) == [0, 1, 2]
    xt, yt = tr[0]
    ref = read_es_imagenet_npz(tr._samples[tr.indices[0]][0], centre=(254, 254))
    assert float(xt.sum()) == len(np.unique(ref[["x", "y", "p", "t"]]))
    with pytest.raises(ValueError, match="exactly 8 time steps"):
        ESImageNet(root, "test", T=10)


@pytest.mark.parametrize("crop", [True, False])
@pytest.mark.parametrize("binary", [True, False])
def test_es_imagenet_to_frame_matches_a_reference_count(crop: bool, binary: bool) -> None:
    """ESImageNetToFrame equals a plain np.add.at count (frame t-1, channel p, crop 16..239)."""
    rng = np.random.default_rng(5)
    n = 5000
    x, y = rng.integers(0, 256, n), rng.integers(0, 256, n)
    p, t = rng.integers(0, 2, n), np.sort(rng.integers(1, 9, n))
    ev = make_events(x, y, p, t, (256, 256, 2))
    ref = np.zeros((8, 2, 256, 256), np.int64)
    np.add.at(ref, (t - 1, p, y, x), 1)
    if crop:
        ref = ref[:, :, 16:240, 16:240]
    got = ESImageNetToFrame(crop=crop, binary=binary)(ev)
    want = (ref > 0) if binary else ref
    assert got.shape == want.shape and np.array_equal(got, want)
    assert got.dtype == (np.uint8 if binary or ref.max() <= 255 else np.uint16)
    empty = ESImageNetToFrame(crop=crop, binary=binary)(ev[:0])
    assert empty.shape == want.shape and empty.dtype == np.uint8 and empty.sum() == 0
    with pytest.raises(ValueError, match="t = ODG step 1..8"):
        ESImageNetToFrame(crop=crop, binary=binary)(make_events([1], [1], [1], [9], (256, 256, 2)))
