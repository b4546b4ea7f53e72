"""Tests of the on-disk frame cache (spikeloom.datasets.cache)."""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from spikeloom.atomic import host_tag
from spikeloom.datasets import cache as cache_mod
from spikeloom.datasets.cache import (
    CachedDataset,
    FrameCache,
    compact_array,
    default_cache_dir,
    make_cache_key,
    resolve_cache_dir,
    transform_cache_key,
)
from spikeloom.datasets.nmnist import NMNIST
from spikeloom.events.core import make_events
from spikeloom.events.io import write_nmnist_bin
from spikeloom.events.transforms import Compose, Downsample, ToFrame


def _frames(i: int) -> np.ndarray:
    """Deterministic pseudo frames of sample i: counts [3, 2, 5, 4], some above 255 for i%7==0."""
    rng = np.random.default_rng(i)
    a = rng.poisson(2.0, size=(3, 2, 5, 4)).astype(np.float32)
    if i % 7 == 0:
        a[0, 0, 0, 0] = 300
    return a


# ---------------------------------------------------------------- keys and dtypes


def test_key_changes_with_every_ingredient() -> None:
    files = ["Train/0/00002.bin:25140", "Train/1/00004.bin:21000"]
    t8 = transform_cache_key(ToFrame(n_time_bins=8))
    t10 = transform_cache_key(ToFrame(n_time_bins=10))
    base = make_cache_key("nmnist", files, t8, np.float32)
    assert base == make_cache_key("nmnist", list(files), t8, "float32")  # stable
    assert len(base) == 24 and all(c in "0123456789abcdef" for c in base)
    others = {
        make_cache_key("nmnist", files, t10, np.float32),  # transform parameter
        make_cache_key("nmnist", files[:1], t8, np.float32),  # file list
        make_cache_key("nmnist", files[::-1], t8, np.float32),  # order = sample indices
        make_cache_key("nmnist", ["Train/0/00002.bin:25141", files[1]], t8, np.float32),
        make_cache_key("dvsgesture", files, t8, np.float32),  # dataset
        make_cache_key("nmnist", files, t8, np.float16),  # dtype
        make_cache_key("nmnist", files, t8, np.float32, version=cache_mod.CACHE_VERSION + 1),
    }
    assert base not in others and len(others) == 7


def test_transform_cache_key_sources() -> None:
    pipe = Compose((Downsample(4), ToFrame(time_window=1000, n_frames=30)))
    assert transform_cache_key(pipe) == pipe.cache_key()
    assert transform_cache_key(pipe) != transform_cache_key(
        Compose((Downsample(2), ToFrame(time_window=1000, n_frames=30)))
    )
    assert transform_cache_key(lambda ev: ev) is None  # no stable description

    class WithParams:
        def __init__(self, k: int) -> None:
            self.k = k

        def params(self) -> dict:
            return {"k": self.k}

    assert transform_cache_key(WithParams(1)) == transform_cache_key(WithParams(1))
    assert transform_cache_key(WithParams(1)) != transform_cache_key(WithParams(2))


def test_compact_array_dtypes_and_exactness() -> None:
    cases = [
        (np.array([0.0, 3.0, 255.0], np.float32), np.uint8),
        (np.array([0, 256], np.int64), np.uint16),
        (np.array([0, 70000], np.float64), np.uint32),
        (np.array([-3, 100], np.int64), np.int8),
        (np.array([-300, 1], np.int32), np.int16),
        (np.array([True, False]), np.uint8),
        (np.array([0.5, 1.0], np.float32), np.float32),  # fractions: unchanged
        (np.array([np.nan, 1.0], np.float32), np.float32),
        (np.array([1, 2], np.uint8), np.uint8),
    ]
    for a, dt in cases:
        c = compact_array(a)
        assert c.dtype == dt, (a, c.dtype)
        np.testing.assert_array_equal(c.astype(np.float64), a.astype(np.float64))


def test_resolve_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(cache_mod.CACHE_ENV, str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    assert resolve_cache_dir(None) == tmp_path / "env"
    assert resolve_cache_dir(True) == tmp_path / "env"
    assert resolve_cache_dir(False) is None
    assert resolve_cache_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv(cache_mod.CACHE_ENV)
    assert default_cache_dir() == Path.home() / ".cache" / "spikeloom"
    with pytest.raises(TypeError, match="cache_dir must be"):
        resolve_cache_dir(3)  # type: ignore[arg-type]


# ---------------------------------------------------------------- hits and misses


@pytest.mark.parametrize("compress", [False, True])
def test_hit_returns_identical_frames(tmp_path: Path, compress: bool) -> None:
    c = FrameCache(tmp_path, "toy", "k1", meta={"what": "test"}, compress=compress)
    calls = []

    def compute() -> np.ndarray:
        calls.append(1)
        return _frames(7)

    first = c.get_or_compute(7, compute)
    second = c.get_or_compute(7, compute)
    assert len(calls) == 1  # the second call was a hit
    assert first.dtype == second.dtype == np.uint16  # 300 does not fit uint8
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(second.astype(np.float32), _frames(7))
    assert c.path(7).name == ("0000007.npz" if compress else "0000007.npy")
    assert 7 in c and 3 not in c and c.cached_indices() == [7]
    assert (tmp_path / "toy" / "k1" / "meta.json").is_file()
    assert c.temp_files() == []
    # a fresh cache object on the same folder sees the sample
    again = FrameCache(tmp_path, "toy", "k1", compress=compress)
    np.testing.assert_array_equal(again.load(7), first)
    c.clear()
    assert c.load(7) is None


def test_bad_names_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="plain folder name"):
        FrameCache(tmp_path, "../escape", "k")
    with pytest.raises(ValueError, match="plain folder name"):
        FrameCache(tmp_path, "toy", "a/b")
    with pytest.raises(IndexError):
        FrameCache(tmp_path, "toy", "k").path(-1)


# ---------------------------------------------------------------- interrupted writes


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftover_temp_file_is_ignored_and_cleaned(tmp_path: Path) -> None:
    c = FrameCache(tmp_path, "toy", "k")
    host = host_tag()
    # a write interrupted by a kill: a partial temp file of a dead process
    dead = c.folder / f".0000003.npy.{host}.{_dead_pid()}.ab12cd34.tmp"
    dead.write_bytes(b"\x93NUMPY\x01\x00partial")
    # an in-flight write of a live process (this one) must survive the cleaning
    live = c.folder / f".0000004.npy.{host}.{os.getpid()}.ef56gh78.tmp"
    live.write_bytes(b"in flight")
    # a temp file of another machine: removed only once it is old
    foreign_old = c.folder / ".0000005.npy.otherhost.123.zz.tmp"
    foreign_new = c.folder / ".0000006.npy.otherhost.124.zz.tmp"
    foreign_old.write_bytes(b"x")
    foreign_new.write_bytes(b"x")
    old = time.time() - 2 * 3600
    os.utime(foreign_old, (old, old))

    assert c.load(3) is None  # readers never see temp files
    assert c.cached_indices() == []

    reopened = FrameCache(tmp_path, "toy", "k")  # opening cleans abandoned temp files
    left = {p.name for p in reopened.temp_files()}
    assert left == {live.name, foreign_new.name}
    # the re-run completes the interrupted sample
    out = reopened.get_or_compute(3, lambda: _frames(3))
    np.testing.assert_array_equal(out.astype(np.float32), _frames(3))
    assert reopened.cached_indices() == [3]


def test_exception_during_write_leaves_nothing(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    c = FrameCache(tmp_path, "toy", "k")

    def broken_save(fh, arr, allow_pickle=False):  # noqa: ANN001
        fh.write(b"\x93NUMPY partial")
        raise KeyboardInterrupt  # e.g. Ctrl-C in the middle of a write

    monkeypatch.setattr(np, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        c.save(1, _frames(1))
    monkeypatch.undo()
    assert not c.path(1).exists()
    assert c.temp_files() == []
    np.testing.assert_array_equal(c.get_or_compute(1, lambda: _frames(1)), _frames(1))


def test_damaged_file_is_rebuilt_with_a_warning(tmp_path: Path) -> None:
    c = FrameCache(tmp_path, "toy", "k")
    c.save(2, _frames(2))
    data = c.path(2).read_bytes()
    c.path(2).write_bytes(data[: len(data) // 2])  # e.g. a power loss without fsync
    with pytest.warns(RuntimeWarning, match="damaged"):
        out = c.get_or_compute(2, lambda: _frames(2))
    np.testing.assert_array_equal(out, _frames(2))
    np.testing.assert_array_equal(c.load(2), _frames(2))


# ---------------------------------------------------------------- concurrent writers


def _fill(args: tuple[str, int, int]) -> list[bytes]:
    root, n, start = args
    c = FrameCache(root, "toy", "shared")
    order = list(range(start, n)) + list(range(start))
    got = {i: c.get_or_compute(i, lambda i=i: _frames(i)) for i in order}
    return [got[i].tobytes() + str(got[i].dtype).encode() for i in range(n)]


def test_two_processes_fill_the_same_cache(tmp_path: Path) -> None:
    n = 60
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(2) as pool:
        # both start at sample 0 (maximal overlap) ... and a third pass starts halfway
        res = pool.map(_fill, [(str(tmp_path), n, 0), (str(tmp_path), n, 0)])
        res.append(pool.apply(_fill, ((str(tmp_path), n, n // 2),)))
    assert res[0] == res[1] == res[2]
    c = FrameCache(tmp_path, "toy", "shared")
    assert c.cached_indices() == list(range(n))
    assert c.temp_files() == []
    for i in range(n):
        np.testing.assert_array_equal(c.load(i).astype(np.float32), _frames(i))


class _CountingFrames:
    """A toy dataset of per-index frames that counts how often each index is computed."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, [0] * n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> np.ndarray:
        self.calls[i] += 1
        return _frames(i)


def test_cached_dataset_wraps_any_frames_dataset(tmp_path: Path) -> None:
    src = _CountingFrames(5)
    key = make_cache_key("toy", [f"s{i}" for i in range(5)], "toy-transform", np.float32)
    cached = CachedDataset(src, cache_dir=tmp_path, name="toy", key=key, meta={"a": 1})
    assert len(cached) == 5 and cached.cache.folder == tmp_path / "toy" / key
    first = cached[2]
    np.testing.assert_array_equal(first.astype(np.float32), _frames(2))
    again = cached[2]
    assert src.calls[2] == 1 and again.dtype == first.dtype  # a hit: not recomputed
    np.testing.assert_array_equal(again, first)
    assert cached.prepare() == 4 and cached.prepare() == 0 and src.calls == [1] * 5
    # another wrapper on the same folder reads what the first stored
    other = CachedDataset(_CountingFrames(5), cache_dir=tmp_path, name="toy", key=key)
    np.testing.assert_array_equal(other[4], cached[4])
    assert other.dataset.calls == [0] * 5
    # no cache: computed each time
    plain = CachedDataset(src, cache_dir=False, name="toy", key=key)
    assert plain.cache is None and plain.prepare() == 0
    plain[0]
    plain[0]
    assert src.calls[0] == 3


# ---------------------------------------------------------------- integrity (issue 7)


def _tiny_nmnist(root: Path, per_class: int = 3) -> Path:
    """A small N-MNIST folder (Train/Test, digits 0-2) of synthetic ``.bin`` recordings."""
    rng = np.random.default_rng(11)
    for sub, n in (("Train", per_class), ("Test", 2)):
        for digit in range(3):
            (root / sub / str(digit)).mkdir(parents=True)
            for k in range(n):
                m = 40
                ev = make_events(rng.integers(0, 34, m), rng.integers(0, 34, m),
                                 rng.integers(0, 2, m), np.sort(rng.integers(0, 10**5, m)),
                                 (34, 34, 2))
                write_nmnist_bin(root / sub / str(digit) / f"{k:05d}.bin", ev)
    return root


def _rewrite_same_size(path: Path) -> None:
    """Change the first event's x in place (same size), then put the old mtime back."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[0] = (data[0] + 7) % 34  # x of event 0 (byte 0 of the 40-bit record)
    with open(path, "r+b") as fh:
        fh.write(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def test_same_size_source_change_gives_recomputed_frames(tmp_path: Path) -> None:
    root = _tiny_nmnist(tmp_path / "data")
    ds = NMNIST(root, "test", T=3, cache_dir=tmp_path / "cache")
    old = ds[0][0]
    assert ds.cache.cached_indices() == [int(ds.indices[0])]
    _rewrite_same_size(ds._samples[int(ds.indices[0])])
    fresh = NMNIST(root, "test", T=3, cache_dir=False)[0][0]
    assert not torch.equal(fresh, old)
    # the same object and a new one on the same cache both see the new content
    torch.testing.assert_close(ds[0][0], fresh)
    again = NMNIST(root, "test", T=3, cache_dir=tmp_path / "cache")
    assert again.cache.folder == ds.cache.folder  # same key: the entry itself knew
    torch.testing.assert_close(again[0][0], fresh)


def test_replaced_source_file_gives_recomputed_frames(tmp_path: Path) -> None:
    """A same-size file moved over the source (new inode, mtime forced back)."""
    root = _tiny_nmnist(tmp_path / "data")
    ds = NMNIST(root, "train", T=2, val_fraction=0.0, cache_dir=tmp_path / "cache")
    old = ds[1][0]
    src = ds._samples[int(ds.indices[1])]
    st = src.stat()
    other = ds._samples[int(ds.indices[4])]
    assert other.stat().st_size == st.st_size
    tmp = src.with_suffix(".new")
    shutil.copyfile(other, tmp)
    os.replace(tmp, src)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    new = ds[1][0]
    torch.testing.assert_close(new, ds[4][0])
    assert not torch.equal(new, old)


def _data_offset(path: Path) -> int:
    """Byte offset of the array data in a ``.npy`` file."""
    with open(path, "rb") as fh:
        fmt = np.lib.format
        if fmt.read_magic(fh) == (1, 0):
            fmt.read_array_header_1_0(fh)
        else:
            fmt.read_array_header_2_0(fh)
        return fh.tell()


def _corrupt(kind: str, ds: NMNIST, pos: int, tmp_path: Path) -> None:
    """Damage the cache entry of part position ``pos`` in one of the ways of issue 7."""
    p = ds.cache.path(pos)
    if kind == "byte":
        data = bytearray(p.read_bytes())
        arr = ds.cache.load(pos)
        flat = int(np.flatnonzero(arr.reshape(-1))[0]) * arr.dtype.itemsize
        data[_data_offset(p) + flat] ^= 0x01
        p.write_bytes(bytes(data))
    elif kind == "zeros":
        data = bytearray(p.read_bytes())
        off = _data_offset(p)
        n = ds.cache.load(pos).nbytes
        data[off:off + n] = bytes(n)  # the whole frame region zeroed, the file length kept
        p.write_bytes(bytes(data))
    elif kind == "shape":
        np.save(p, np.zeros((2, 2, 34, 34), np.uint8))
    elif kind == "shape_via_cache":
        ds.cache.save(pos, np.ones((1, 2, 34, 34), np.uint8))
    elif kind == "other_sample":
        other = pos + 1
        ds.frames(int(np.flatnonzero(ds.indices == other)[0]))
        shutil.copyfile(ds.cache.path(other), p)
    elif kind == "other_part":
        # the same position of another part (same T, same shape, other recording)
        te = NMNIST(ds.root, "test", T=ds.T, cache_dir=ds.cache.root)
        te.frames(int(np.flatnonzero(te.indices == pos)[0]))
        shutil.copyfile(te.cache.path(pos), p)
    else:  # pragma: no cover
        raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["byte", "zeros", "shape", "shape_via_cache", "other_sample", "other_part"]
)
def test_bad_cache_entry_is_detected_warned_once_and_recomputed(tmp_path: Path,
                                                                kind: str) -> None:
    root = _tiny_nmnist(tmp_path / "data")
    ds = NMNIST(root, "train", T=3, val_fraction=0.0, cache_dir=tmp_path / "cache")
    ref = NMNIST(root, "train", T=3, val_fraction=0.0, cache_dir=False)
    i = int(np.flatnonzero(ds.indices == 0)[0])
    ds[i]
    _corrupt(kind, ds, 0, tmp_path)
    with pytest.warns(RuntimeWarning, match=re.escape(ds.cache.path(0).name)):
        got = ds[i][0]
    torch.testing.assert_close(got, ref[i][0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.testing.assert_close(ds[i][0], ref[i][0])  # rebuilt: no second warning
        fresh = NMNIST(root, "train", T=3, val_fraction=0.0, cache_dir=tmp_path / "cache")
        torch.testing.assert_close(fresh[i][0], ref[i][0])


@pytest.mark.parametrize("compress", [False, True])
def test_frame_cache_verifies_checksum_and_shape(tmp_path: Path, compress: bool) -> None:
    c = FrameCache(tmp_path, "toy", "k", compress=compress)
    c.save(3, _frames(3))
    c.save(4, _frames(4))
    np.testing.assert_array_equal(c.load(3), _frames(3))
    shutil.copyfile(c.path(4), c.path(3))  # another sample's entry
    with pytest.warns(RuntimeWarning, match="0000003"):
        assert c.load(3) is None
    assert 3 not in c
    if not compress:
        np.save(c.path(5), _frames(5))  # a bare array: no checksum, no shape record
        with pytest.warns(RuntimeWarning, match="0000005"):
            assert c.load(5) is None
    np.testing.assert_array_equal(c.get_or_compute(3, lambda: _frames(3)), _frames(3))


def test_corrupt_entry_on_real_nmnist(shared_data: Path, tmp_path: Path) -> None:
    root = shared_data / "nmnist"
    ds = NMNIST(root, "test", T=4, cache_dir=tmp_path)
    a, b = ds[0][0], ds[1][0]
    p0, p1 = (ds.cache.path(int(ds.indices[j])) for j in (0, 1))
    shutil.copyfile(p1, p0)
    with pytest.warns(RuntimeWarning, match=re.escape(p0.name)):
        got = ds[0][0]
    torch.testing.assert_close(got, a)
    assert not torch.equal(got, b)


def test_cache_hits_of_unchanged_sources_hash_nothing(shared_data: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The content hash is taken once per miss; a hit of an old, unchanged file only stats it."""
    from spikeloom.datasets import integrity

    calls: list[Path] = []
    real = integrity.file_digest

    def counting(path):  # noqa: ANN001, ANN202
        calls.append(Path(path))
        return real(path)

    monkeypatch.setattr(integrity, "file_digest", counting)
    monkeypatch.setattr(integrity, "_MEMO", integrity._DigestMemo())  # noqa: SLF001
    t0 = time.perf_counter()
    ds = NMNIST(shared_data / "nmnist", "train", T=4, cache_dir=tmp_path)
    assert time.perf_counter() - t0 < 5.0 and calls == []  # construction hashes no file
    for i in range(5):
        ds[i]
    assert len(calls) == 5  # one hash per sample, on its miss
    fresh = NMNIST(shared_data / "nmnist", "train", T=4, cache_dir=tmp_path)
    for i in range(5):
        torch.testing.assert_close(fresh[i][0], ds[i][0])
    assert len(calls) == 5  # hits: stat signature only


def test_missing_source_file_raises_the_readers_error(tmp_path: Path) -> None:
    root = _tiny_nmnist(tmp_path / "data")
    ds = NMNIST(root, "test", T=2, cache_dir=tmp_path / "cache")
    ds[0]
    ds._samples[int(ds.indices[0])].unlink()
    with pytest.raises(Exception) as info:
        ds[0]  # the entry is not returned: its source is gone
    assert ds._samples[int(ds.indices[0])].name in str(info.value)
    assert ds.cache.cached_indices() == [int(ds.indices[0])]
