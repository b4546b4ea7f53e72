"""Tests for spikeloom.events.transforms (frames, voxel grids, denoise, augmentations)."""

from __future__ import annotations

import dataclasses
import json
import pickle
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from spikeloom.errors import BackendError
from spikeloom.events import slicing as sl
from spikeloom.events import transforms as tr
from spikeloom.events.core import EVENT_DTYPE, EventArray, make_events
from spikeloom.ops import available_backends, get_backend, register_backend
from spikeloom.ops._dispatch import _OPS
from spikeloom.ops.frames import c_backend, select_backend

SIZE = (5, 4, 2)  # W, H, P


def events_of(x, y, p, t) -> np.ndarray:
    """Plain structured array (not an EventArray)."""
    out = np.empty(len(x), dtype=EVENT_DTYPE)
    out["x"], out["y"], out["p"], out["t"] = x, y, p, t
    return out


def random_stream(
    rng: np.random.Generator, n: int, size=(7, 6, 2), t_max: int = 1000, sort: bool = True
) -> np.ndarray:
    """Random events with many duplicates (small sensor, coarse times)."""
    w, h, p = size
    t = rng.integers(0, t_max, n)
    if sort:
        t = np.sort(t)
    return events_of(rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, p, n), t)


# ------------------------------------------------------------------------------------------
# independent reference for to_frame: window membership by brute force from the definitions,
# accumulation with np.add.at
# ------------------------------------------------------------------------------------------


def ref_frames(ev: np.ndarray, size, members: list[np.ndarray]) -> np.ndarray:
    w, h, p = size
    out = np.zeros((len(members), p, h, w), dtype=np.int64)
    for j, m in enumerate(members):
        e = ev[m]
        pol = e["p"].astype(int) if p > 1 else np.zeros(len(e), int)
        np.add.at(out[j], (pol, e["y"].astype(int), e["x"].astype(int)), 1)
    return out


def ref_members(ev: np.ndarray, mode: str, k: int, overlap: int = 0) -> list[np.ndarray]:
    t = ev["t"].astype(np.int64)
    n = len(ev)
    idx = np.arange(n)
    if mode == "time_window":
        if n == 0:
            return []
        t0, t_last = int(t.min()), int(t.max())
        s = k - overlap
        members = []
        j = 0
        while True:  # add windows until the union covers t_last
            a = t0 + j * s
            members.append((t >= a) & (t < a + k))
            if a + k > t_last:
                return members
            j += 1
    if mode == "n_time_bins":
        if n == 0:
            return [np.zeros(0, bool)] * k
        t0, t_last = int(t.min()), int(t.max())
        span = t_last - t0 + 1
        frame = np.array([int(Fraction((int(ti) - t0) * k, span)) for ti in t])
        return [frame == j for j in range(k)]
    if mode == "event_count":
        s = k - overlap
        members = []
        j = 0
        while j * s < n:
            members.append((idx >= j * s) & (idx < j * s + k))
            if j * s + k >= n:
                break
            j += 1
        return members
    if mode == "n_event_bins":
        base = n // k
        frame = np.minimum(idx // base, k - 1) if base else np.full(n, k - 1)
        return [frame == j for j in range(k)]
    raise AssertionError(mode)


MODES = [("time_window", 37), ("n_time_bins", 7), ("event_count", 13), ("n_event_bins", 5)]


@pytest.mark.parametrize(("mode", "k"), MODES)
def test_every_event_counted_once_random_streams(mode: str, k: int) -> None:
    rng = np.random.default_rng(1)
    size = (7, 6, 2)
    for trial in range(40):
        n = int(rng.choice([1, 2, 3, 12, 50, 301]))
        t_max = int(rng.choice([1, 5, 1000]))  # t_max=1: all timestamps equal
        ev = random_stream(rng, n, size, t_max)
        if trial % 5 == 0:  # duplicates at the same pixel and time
            ev = np.concatenate([ev, ev[-3:], ev[:2]])
            ev = ev[np.argsort(ev["t"], kind="stable")]
        frames = tr.to_frame(ev, size, **{mode: k})
        assert frames.shape[1:] == (2, 6, 7)
        assert int(frames.sum()) == len(ev)
        expected = ref_frames(ev, size, ref_members(ev, mode, k))
        np.testing.assert_array_equal(frames, expected)


def test_last_event_exactly_at_t_last_and_window_edges() -> None:
    # t_last - t0 = 100 is a multiple of the window: a 'ceil((t_last - t0)/dt)' rule or Tonic's
    # ToFrame would drop the event at t = 100
    ev = events_of([0, 1, 2], [0, 0, 0], [1, 1, 1], [0, 50, 100])
    f = tr.to_frame(ev, SIZE, time_window=50)
    assert f.shape[0] == 3
    assert f[:, 1, 0, :3].tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    f = tr.to_frame(ev, SIZE, n_time_bins=2)  # span 101 µs: edges 0, 50.5, 101
    assert f[:, 1, 0, :3].tolist() == [[1, 1, 0], [0, 0, 1]]
    f = tr.to_frame(ev, SIZE, n_time_bins=2, time_bins_rule="floor")  # dT = 50
    assert f[:, 1, 0, :3].tolist() == [[1, 0, 0], [0, 1, 1]]


def test_single_event_and_equal_timestamps_every_mode() -> None:
    one = events_of([3], [2], [0], [12345])
    same = events_of([0, 1, 1, 4], [0, 3, 3, 1], [0, 1, 1, 0], [7, 7, 7, 7])
    for ev in (one, same):
        for mode, k in MODES:
            f = tr.to_frame(ev, SIZE, **{mode: k})
            assert int(f.sum()) == len(ev), mode
        f = tr.to_frame(ev, SIZE, n_time_bins=3)
        assert int(f[0].sum()) == len(ev)  # everything in the first bin (span = 1 µs)
    f = tr.to_frame(same, SIZE, n_event_bins=3)  # N=4, M=3: B=1 -> sizes 1, 1, 2
    assert f.reshape(3, -1).sum(1).tolist() == [1, 1, 2]
    assert f[2, 1, 3, 1] == 1 and f[2, 0, 1, 4] == 1


def test_hand_example_time_window() -> None:
    #            x  y  p   t
    ev = events_of([0, 1, 1, 2, 4], [0, 0, 0, 3, 3], [1, 0, 0, 1, 1], [10, 12, 19, 20, 41])
    f = tr.to_frame(ev, SIZE, time_window=10)  # windows [10,20) [20,30) [30,40) [40,50)
    assert f.shape == (4, 2, 4, 5) and f.dtype == np.uint8
    exp = np.zeros((4, 2, 4, 5), np.uint8)
    exp[0, 1, 0, 0] = 1
    exp[0, 0, 0, 1] = 2  # duplicate pixel counted twice
    exp[1, 1, 3, 2] = 1
    exp[3, 1, 3, 4] = 1
    np.testing.assert_array_equal(f, exp)
    # overlap 5 µs: stride 5, windows [10,20) [15,25) [20,30) [25,35) [30,40) [35,45) [40,50)?
    # smallest cover of [10, 41]: start 35 -> end 45 > 41, so 6 windows
    g = tr.to_frame(ev, SIZE, time_window=10, overlap=5)
    assert g.shape[0] == 6
    per_frame = g.reshape(6, -1).sum(1).tolist()
    assert per_frame == [3, 2, 1, 0, 0, 1]  # t=19 in windows 0,1; t=20 in 1,2; t=41 in 5
    # incomplete windows dropped: a window must end at or before t_last + 1 = 42, so
    # [35, 45) goes and the event at t = 41 is lost
    h = tr.to_frame(ev, SIZE, time_window=10, overlap=5, include_incomplete=False)
    np.testing.assert_array_equal(h, g[:5])
    h = tr.to_frame(ev, SIZE, time_window=10, include_incomplete=False)
    np.testing.assert_array_equal(h, f[:3])


def test_hand_example_counts_modes() -> None:
    ev = events_of([0, 1, 2, 3, 4, 0, 1], [0] * 7, [1] * 7, [0, 1, 2, 3, 4, 5, 6])
    f = tr.to_frame(ev, SIZE, event_count=3)
    assert f[:, 1, 0, :].tolist() == [[1, 1, 1, 0, 0], [1, 0, 0, 1, 1], [0, 1, 0, 0, 0]]
    f = tr.to_frame(ev, SIZE, event_count=3, include_incomplete=False)
    assert f.shape[0] == 2
    f = tr.to_frame(ev, SIZE, event_count=3, overlap=1)  # windows [0,3) [2,5) [4,7)
    assert f.reshape(3, -1).sum(1).tolist() == [3, 3, 3]
    assert f[1, 1, 0].tolist() == [0, 0, 1, 1, 1]
    f = tr.to_frame(ev, SIZE, n_event_bins=2)  # B = 3: [0,3) and [3,7)
    assert f.reshape(2, -1).sum(1).tolist() == [3, 4]
    f = tr.to_frame(ev, SIZE, n_time_bins=2)  # span 7 µs: t < 3.5 -> 0..3
    assert f.reshape(2, -1).sum(1).tolist() == [4, 3]
    f = tr.to_frame(ev, SIZE, n_time_bins=2, time_bins_rule="floor")  # dT = 3
    assert f.reshape(2, -1).sum(1).tolist() == [3, 4]


def test_overlap_counts_each_containing_window() -> None:
    rng = np.random.default_rng(7)
    size = (7, 6, 2)
    for _ in range(20):
        ev = random_stream(rng, int(rng.integers(1, 200)), size, 500)
        for dt, ov in ((40, 10), (40, 39), (25, 5)):
            f = tr.to_frame(ev, size, time_window=dt, overlap=ov)
            members = ref_members(ev, "time_window", dt, ov)
            assert int(f.sum()) == sum(int(m.sum()) for m in members)
            np.testing.assert_array_equal(f, ref_frames(ev, size, members))
        for cnt, ov in ((10, 3), (7, 6)):
            f = tr.to_frame(ev, size, event_count=cnt, overlap=ov)
            members = ref_members(ev, "event_count", cnt, ov)
            np.testing.assert_array_equal(f, ref_frames(ev, size, members))
            covered = np.any(members, axis=0)
            assert covered.all()  # every event is in at least one window


def test_fixed_n_frames_truncates_and_pads_and_start_time() -> None:
    ev = events_of([0, 1, 2, 3], [0, 0, 0, 0], [1, 1, 1, 1], [100, 150, 220, 990])
    f = tr.to_frame(ev, SIZE, time_window=100, n_frames=2)  # TA-SNN: first 2 * 100 µs
    assert f.shape[0] == 2 and f.reshape(2, -1).sum(1).tolist() == [2, 1]
    f = tr.to_frame(ev, SIZE, time_window=100, n_frames=12)
    assert f.shape[0] == 12 and int(f.sum()) == 4 and int(f[9:].sum()) == 0
    assert int(f[8].sum()) == 1  # t=990 in [900, 1000)
    f = tr.to_frame(ev, SIZE, time_window=100, n_frames=2, start_time=150)
    assert f.reshape(2, -1).sum(1).tolist() == [2, 0]  # t=100 ignored
    f = tr.to_frame(ev, SIZE, event_count=3, n_frames=3)
    assert f.reshape(3, -1).sum(1).tolist() == [3, 1, 0]
    f = tr.to_frame(ev, SIZE, n_time_bins=2, start_time=200)  # span [200, 990]
    assert f.reshape(2, -1).sum(1).tolist() == [1, 1]
    f = tr.to_frame(ev, SIZE, n_time_bins=3, start_time=5000)
    assert f.shape[0] == 3 and int(f.sum()) == 0


def test_unsorted_input_gives_same_frames_as_sorted() -> None:
    rng = np.random.default_rng(3)
    ev = random_stream(rng, 500, SIZE, 10_000, sort=False)
    srt = ev[np.argsort(ev["t"], kind="stable")]
    for kw in (dict(time_window=777), dict(n_time_bins=9), dict(time_window=500, overlap=100)):
        np.testing.assert_array_equal(tr.to_frame(ev, SIZE, **kw), tr.to_frame(srt, SIZE, **kw))
    assert ev["t"].tolist() != srt["t"].tolist()  # the input was not sorted in place


def test_many_sparse_frames_grouped_path_matches_reference() -> None:
    rng = np.random.default_rng(11)
    size = (40, 30, 2)
    ev = random_stream(rng, 3000, size, 200_000)
    for dt in (50, 997):  # thousands of frames with few events each
        f = tr.to_frame(ev, size, time_window=dt)
        members = ref_members(ev, "time_window", dt)
        assert f.shape[0] == len(members)
        np.testing.assert_array_equal(f, ref_frames(ev, size, members))


@pytest.mark.parametrize(
    ("n", "k"),
    [(5000, 4), (300, 4), (50, 100)],
    ids=["dense-per-frame", "sparse-grouped", "very-sparse-unique"],
)
def test_counting_strategies_match_reference(n: int, k: int) -> None:
    # 7x6x2 = 84 cells per frame; the three cases hit the three counting strategies
    rng = np.random.default_rng(n)
    size = (7, 6, 2)
    ev = random_stream(rng, n, size, 10**5)
    for mode in ("n_event_bins", "n_time_bins"):
        f = tr.to_frame(ev, size, **{mode: k})
        np.testing.assert_array_equal(f, ref_frames(ev, size, ref_members(ev, mode, k)))
    bad = ev.copy()
    bad["p"][n // 2] = 3
    with pytest.raises(ValueError, match="p=3 >= P=2"):
        tr.to_frame(bad, size, n_event_bins=k)


def test_polarity_merge_and_validation() -> None:
    ev = events_of([0, 0, 1], [0, 0, 0], [0, 1, 1], [0, 1, 2])
    f = tr.to_frame(ev, (5, 4, 1), n_time_bins=1)
    assert f.shape == (1, 1, 4, 5) and f[0, 0, 0, :2].tolist() == [2, 1]
    with pytest.raises(ValueError, match="x=5 >= W=5"):
        tr.to_frame(events_of([5], [0], [0], [0]), SIZE, n_time_bins=1)
    with pytest.raises(ValueError, match="y=4 >= H=4"):
        tr.to_frame(events_of([0], [4], [0], [0]), SIZE, n_time_bins=1)
    with pytest.raises(ValueError, match="p=2 >= P=2"):
        tr.to_frame(events_of([0, 1], [0, 0], [0, 2], [0, 0]), SIZE, n_time_bins=1)
    with pytest.raises(ValueError, match="p=2 >= P=2"):  # grouped (many frames) path
        tr.to_frame(events_of([0, 1], [0, 0], [0, 2], [0, 9]), SIZE, time_window=1)


def test_option_errors() -> None:
    ev = events_of([0], [0], [0], [0])
    with pytest.raises(ValueError, match="exactly one"):
        tr.to_frame(ev, SIZE)
    with pytest.raises(ValueError, match="exactly one"):
        tr.to_frame(ev, SIZE, time_window=5, n_time_bins=3)
    with pytest.raises(ValueError, match="overlap"):
        tr.to_frame(ev, SIZE, time_window=5, overlap=5)
    with pytest.raises(ValueError, match="overlap is not supported"):
        tr.to_frame(ev, SIZE, n_time_bins=5, overlap=1)
    with pytest.raises(ValueError, match="n_frames"):
        tr.to_frame(ev, SIZE, n_event_bins=5, n_frames=3)
    with pytest.raises(ValueError, match="include_incomplete"):
        tr.to_frame(ev, SIZE, time_window=5, n_frames=3, include_incomplete=False)
    with pytest.raises(TypeError, match="int"):
        tr.to_frame(ev, SIZE, time_window=5.0)
    with pytest.raises(ValueError, match="time_bins_rule only applies"):
        tr.to_frame(ev, SIZE, time_window=5, time_bins_rule="floor")
    with pytest.raises(ValueError, match="time_bins_rule must be"):
        tr.ToFrame(SIZE, n_time_bins=5, time_bins_rule="ceil")
    with pytest.raises(ValueError, match="sensor size"):
        tr.to_frame(ev, n_time_bins=2)
    with pytest.raises(TypeError, match="EVENT_DTYPE"):
        tr.to_frame(
            np.zeros(3, dtype=[("x", "i4"), ("y", "i4"), ("p", "i4"), ("t", "i8")]),
            SIZE,
            n_time_bins=2,
        )


def test_dtype_choice_and_overflow() -> None:
    n = 300
    ev = events_of([1] * n, [2] * n, [1] * n, np.arange(n))
    assert tr.to_frame(ev, SIZE, n_time_bins=2).dtype == np.uint8  # 150 per frame
    f = tr.to_frame(ev, SIZE, n_time_bins=1)
    assert f.dtype == np.uint16 and int(f[0, 1, 2, 1]) == 300
    with pytest.raises(OverflowError, match="300"):
        tr.to_frame(ev, SIZE, n_time_bins=1, dtype=np.uint8)
    with pytest.raises(OverflowError, match="int8"):
        tr.to_frame(ev, SIZE, n_time_bins=2, dtype="int8")  # 150 > 127
    assert tr.to_frame(ev, SIZE, n_time_bins=3, dtype="int8").max() == 100
    g = tr.to_frame(ev, SIZE, n_time_bins=1, dtype=np.float32)
    assert g.dtype == np.float32 and g.sum() == 300
    big = events_of([0] * 2049, [0] * 2049, [0] * 2049, np.zeros(2049, int))
    with pytest.raises(OverflowError, match="float16"):
        tr.to_frame(big, SIZE, n_time_bins=1, dtype=np.float16)
    with pytest.raises(TypeError, match="frames > 0"):
        tr.to_frame(ev, SIZE, n_time_bins=1, dtype=bool)
    # many events spread out: bound says uint32 but counts are small -> uint8
    rng = np.random.default_rng(0)
    spread = random_stream(rng, 70_000, (64, 64, 2), 10**6)
    assert tr.to_frame(spread, (64, 64, 2), n_event_bins=1).dtype == np.uint8


def test_empty_input_frames() -> None:
    ev = np.empty(0, dtype=EVENT_DTYPE)
    assert tr.to_frame(ev, SIZE, time_window=10).shape == (0, 2, 4, 5)
    assert tr.to_frame(ev, SIZE, event_count=10).shape == (0, 2, 4, 5)
    assert tr.to_frame(ev, SIZE, time_window=10, n_frames=3).shape == (3, 2, 4, 5)
    for kw in (dict(n_time_bins=4), dict(n_event_bins=4)):
        f = tr.to_frame(ev, SIZE, **kw)
        assert f.shape == (4, 2, 4, 5) and f.dtype == np.uint8 and not f.any()
    v = tr.to_voxel_grid(ev, SIZE, n_time_bins=3)
    assert v.shape == (3, 1, 4, 5) and not v.any()


def test_event_array_sensor_size_is_used_and_checked() -> None:
    ev = make_events([0, 4], [0, 3], [0, 1], [0, 10], SIZE)
    f = tr.to_frame(ev, n_time_bins=1)
    assert f.shape == (1, 2, 4, 5) and int(f.sum()) == 2
    assert tr.to_frame(ev, SIZE, n_time_bins=1).shape == f.shape
    with pytest.raises(ValueError, match="contradicts"):
        tr.to_frame(ev, (6, 4, 2), n_time_bins=1)


def test_large_stream_matches_add_at_reference() -> None:
    rng = np.random.default_rng(5)
    size = (128, 128, 2)
    n = 200_000
    ev = random_stream(rng, n, size, 10**6)
    f = tr.to_frame(ev, size, n_time_bins=16)
    t = ev["t"]
    span = int(t[-1] - t[0] + 1)
    b = (t - t[0]) * 16 // span
    ref = np.zeros((16, 2, 128, 128), np.int64)
    np.add.at(ref, (b, ev["p"].astype(int), ev["y"].astype(int), ev["x"].astype(int)), 1)
    np.testing.assert_array_equal(f, ref)
    assert int(f.sum()) == n


# ------------------------------------------------------------------------------------------
# frame-counting backends (spikeloom.ops.frames: c, numpy, reference) give identical results
# ------------------------------------------------------------------------------------------

SPEEDUPS = c_backend.speedups
needs_c = pytest.mark.skipif(
    SPEEDUPS is None, reason="C extension spikeloom.ops.frames._speedups is not built"
)
NO_SPEEDUPS = "SPIKELOOM_NO_SPEEDUPS"
BACKEND_ENV = "SPIKELOOM_BACKEND_FRAMES"
PATHS = [pytest.param("c", marks=needs_c), "numpy", "reference"]


def run_path(path: str | bool, fn):
    """Run ``fn`` on one backend (``True`` = "c", ``False`` = "numpy"); return
    ``(result, None)`` or ``(None, error text)``. The numpy path is selected through the
    legacy alias ``SPIKELOOM_NO_SPEEDUPS=1``, the reference by ``SPIKELOOM_BACKEND_FRAMES``."""
    path = {True: "c", False: "numpy"}.get(path, path)  # type: ignore[call-overload]
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(BACKEND_ENV, raising=False)
        mp.delenv(NO_SPEEDUPS, raising=False)
        if path == "numpy":
            mp.setenv(NO_SPEEDUPS, "1")
        elif path == "reference":
            mp.setenv(BACKEND_ENV, "reference")
        assert tr.speedups_enabled() is (path == "c")
        assert select_backend().name == path
        try:
            return fn(), None
        except (ValueError, OverflowError) as err:
            return None, f"{type(err).__name__}: {err}"


def frames_both_paths(ev: np.ndarray, size, **kw):
    """to_frame on the C, numpy and reference backends; asserts identical frames/dtype or
    errors (the reference only for inputs small enough for np.add.at)."""
    fc, ec = run_path(True, lambda: tr.to_frame(ev, size, **kw))
    fn, en = run_path(False, lambda: tr.to_frame(ev, size, **kw))
    others = [(fn, en)]
    if len(ev) <= 100_000:
        others.append(run_path("reference", lambda: tr.to_frame(ev, size, **kw)))
    for fo, eo in others:
        assert ec == eo, kw
        if fc is not None:
            assert fc.dtype == fo.dtype and fc.shape == fo.shape, kw
            np.testing.assert_array_equal(fc, fo)
    return fc, ec


def random_options(rng: np.random.Generator) -> dict:
    mode = str(rng.choice(["time_window", "n_time_bins", "event_count", "n_event_bins"]))
    kw: dict = {}
    if mode == "time_window":
        kw[mode] = int(rng.choice([1, 7, 60, 333]))
        if rng.random() < 0.4:
            kw["overlap"] = int(rng.integers(0, kw[mode]))
    elif mode == "event_count":
        kw[mode] = int(rng.choice([1, 5, 40]))
        if rng.random() < 0.4:
            kw["overlap"] = int(rng.integers(0, kw[mode]))
    else:
        kw[mode] = int(rng.choice([1, 3, 9, 70]))
    if mode in ("time_window", "event_count"):
        r = rng.random()
        if r < 0.25:
            kw["n_frames"] = int(rng.integers(0, 6))
        elif r < 0.5:
            kw["include_incomplete"] = False
    if mode in ("time_window", "n_time_bins") and rng.random() < 0.3:
        kw["start_time"] = int(rng.integers(-50, 800))
    if mode == "n_time_bins" and rng.random() < 0.5:
        kw["time_bins_rule"] = "floor"
    return kw


@needs_c
def test_c_path_equals_numpy_path_random_streams() -> None:
    rng = np.random.default_rng(20)
    n_errors = 0
    for trial in range(1200):
        size = (int(rng.integers(1, 9)), int(rng.integers(1, 7)), int(rng.choice([1, 2, 3])))
        n = int(rng.choice([0, 1, 2, 17, 150, 900]))
        ev = random_stream(rng, n, size, int(rng.choice([1, 40, 1000])), sort=rng.random() < 0.8)
        if n and rng.random() < 0.3:  # a few out-of-range events of random kinds
            for i in rng.integers(0, n, int(rng.integers(1, 4))):
                field = str(rng.choice(["x", "y", "p"]))
                limit = dict(x=size[0], y=size[1], p=size[2])[field]
                ev[field][i] = limit + int(rng.integers(0, 3))
        kw = random_options(rng)
        frames, err = frames_both_paths(ev, size, **kw)
        if err is not None:
            n_errors += 1
            assert "ValueError: event " in err
        elif trial % 4 == 0 and "n_frames" not in kw and "start_time" not in kw:
            # independent check where the reference supports the options
            mode = next(
                k for k in kw if k in ("time_window", "n_time_bins", "event_count", "n_event_bins")
            )
            if kw.get("include_incomplete", True) and kw.get("time_bins_rule") is None:
                srt = ev  # the event-index modes keep the input order
                if mode in ("time_window", "n_time_bins"):
                    srt = ev[np.argsort(ev["t"], kind="stable")]
                members = ref_members(srt, mode, kw[mode], kw.get("overlap", 0))
                np.testing.assert_array_equal(frames, ref_frames(srt, size, members))
    assert 150 < n_errors < 450  # the error branches were exercised, not only the happy path


@needs_c
@pytest.mark.parametrize("kind", ["views", "event_array", "read_only"])
def test_c_path_other_array_layouts(kind: str) -> None:
    rng = np.random.default_rng(21)
    size = (9, 7, 2)
    base = random_stream(rng, 2000, size, 5000)
    if kind == "views":  # strided and reversed (hence unsorted) views, never copied first
        arrays = [base[::3], base[::-1], base[5:1500:7]]
    elif kind == "event_array":
        arrays = [make_events(base["x"], base["y"], base["p"], base["t"], size)]
    else:
        ro = base.copy()
        ro.flags.writeable = False
        arrays = [ro]
    for ev in arrays:
        for kw in (
            dict(time_window=300, overlap=100),
            dict(n_time_bins=5),
            dict(event_count=77),
            dict(n_event_bins=4),
        ):
            frames, err = frames_both_paths(ev, size, **kw)
            assert err is None and int(frames.sum()) >= len(ev)


@needs_c
def test_c_path_counts_all_output_dtypes() -> None:
    # automatic dtype: the longest frame picks uint8/16/32 for the counting buffer, then the
    # result shrinks to the largest count; both paths must agree on both steps
    rng = np.random.default_rng(22)
    for n, size, dtype in (
        (200, (3, 2, 2), np.uint8),
        (6000, (3, 2, 2), np.uint16),
        (70_000, (4, 4, 1), np.uint16),
        (70_000, (1, 1, 1), np.uint32),
    ):
        ev = random_stream(rng, n, size, 100)
        frames, err = frames_both_paths(ev, size, n_time_bins=1)
        assert err is None and frames.dtype == dtype and int(frames.sum()) == n
        ref = ref_frames(ev, size, [np.ones(n, bool)])
        np.testing.assert_array_equal(frames, ref)
    ev = random_stream(rng, 500, (4, 3, 2), 100)
    for dtype in (np.uint8, np.int16, np.uint32, np.int64, np.float32, np.float64):
        frames, err = frames_both_paths(ev, (4, 3, 2), event_count=60, overlap=20, dtype=dtype)
        assert err is None and frames.dtype == dtype
    same = events_of([1] * 300, [2] * 300, [1] * 300, np.arange(300))
    _, err = frames_both_paths(same, SIZE, n_time_bins=1, dtype=np.uint8)
    assert err is not None and err.startswith("OverflowError: a pixel holds 300 events")


@needs_c
@pytest.mark.parametrize("out_dtype", [np.uint8, np.uint16, np.uint32, np.uint64])
def test_c_count_frames_direct_every_counter_type(out_dtype) -> None:
    rng = np.random.default_rng(23)
    size = w, h, p = (6, 5, 2)
    ev = random_stream(rng, 4000, size, 10**4)
    lo = np.array([0, 100, 100, 1500, 3999, 4000], np.int64)  # overlapping and empty frames
    hi = np.array([250, 100, 2000, 4000, 4000, 4000], np.int64)
    out = np.zeros((len(lo), p * h * w), out_dtype)
    assert SPEEDUPS.count_frames(ev, lo, hi, w, h, p, out) == (-1, -1)
    ref = np.zeros((len(lo), p, h, w), np.int64)
    for j in range(len(lo)):
        e = ev[lo[j] : hi[j]]
        np.add.at(ref[j], (e["p"].astype(int), e["y"].astype(int), e["x"].astype(int)), 1)
    np.testing.assert_array_equal(out.reshape(ref.shape), ref)
    # counts are added to what is there; P=1 merges the polarities
    SPEEDUPS.count_frames(ev, lo, hi, w, h, p, out)
    np.testing.assert_array_equal(out.reshape(ref.shape), 2 * ref)
    merged = np.zeros((len(lo), h * w), out_dtype)
    SPEEDUPS.count_frames(ev, lo, hi, w, h, 1, merged)
    np.testing.assert_array_equal(merged.reshape(len(lo), h, w), ref.sum(axis=1))


@needs_c
def test_c_kernels_report_first_problem() -> None:
    s = SPEEDUPS
    #                x  y  p   t
    ev = events_of([0, 1, 5, 2, 0], [0, 4, 0, 0, 0], [0, 1, 1, 2, 0], [3, 4, 4, 2, 9])
    out = np.zeros((2, 2 * 4 * 5), np.uint8)
    lo, hi = np.array([0, 2], np.int64), np.array([2, 5], np.int64)
    assert s.count_frames(ev, lo, hi, 5, 4, 2, out) == (1, -1)  # y=4 >= H
    assert s.count_frames(ev, lo[1:], hi[1:], 5, 4, 2, out[1:]) == (2, -1)  # x=5 >= W
    # order is checked before the range, pair (i-1, i) also across the frame start
    big = np.zeros((1, 3 * 5 * 6), np.uint8)
    assert s.count_frames(ev, lo[1:], hi[1:], 6, 5, 3, big, True) == (-1, 3)
    assert s.count_frames(ev, lo[:1], hi[:1], 6, 5, 3, big, True) == (-1, -1)
    assert big.sum() == 2 + 1  # event 2 counted before the unsorted event 3 stopped the loop
    lo3, hi5 = np.array([3], np.int64), np.array([5], np.int64)
    assert s.count_frames(ev, lo3, hi5, 6, 5, 3, big, True) == (-1, 3)  # t[3] < t[2]
    assert s.count_frames(ev, lo3, hi5, 6, 5, 3, big) == (-1, -1)
    assert s.scan_events(ev, 0, 5, 5, 4, 2) == (3, 1)
    assert s.scan_events(ev, 2, 5, 6, 5, 2) == (3, 3)  # p=2 >= P=2 at the unsorted event
    assert s.scan_events(ev, 0, 3, 6, 5, 3) == (-1, -1)
    assert s.scan_events(ev, 3, 3, 1, 1, 1) == (-1, -1)  # empty range
    assert s.scan_events(ev, 0, 5, 6, 5, 1) == (3, -1)  # P=1: any polarity is fine


@needs_c
def test_c_kernels_reject_bad_arguments() -> None:
    s = SPEEDUPS
    ev = events_of([0, 1], [0, 0], [0, 1], [0, 1])
    lo, hi = np.array([0], np.int64), np.array([2], np.int64)
    out = np.zeros((1, 40), np.uint16)
    with pytest.raises(ValueError, match="13-byte"):
        s.count_frames(np.zeros(4, np.int64), lo, hi, 5, 4, 2, out)
    with pytest.raises(ValueError, match="13-byte"):
        s.scan_events(ev.reshape(1, 2), 0, 2, 5, 4, 2)
    with pytest.raises(ValueError, match="int64"):
        s.count_frames(ev, lo.astype(np.int32), hi, 5, 4, 2, out)
    with pytest.raises(ValueError, match="0 <= lo <= hi <= N"):
        s.count_frames(ev, lo, np.array([3], np.int64), 5, 4, 2, out)
    with pytest.raises(ValueError, match="same length"):
        s.count_frames(ev, lo, np.array([1, 2], np.int64), 5, 4, 2, out)
    with pytest.raises(ValueError, match="J\\*P\\*H\\*W"):
        s.count_frames(ev, lo, hi, 5, 4, 2, np.zeros((1, 39), np.uint16))
    with pytest.raises(ValueError, match="unsigned"):
        s.count_frames(ev, lo, hi, 5, 4, 2, np.zeros((1, 40), np.int16))
    with pytest.raises(ValueError, match="unsigned"):
        s.count_frames(ev, lo, hi, 5, 4, 2, np.zeros((1, 40), np.float32))
    with pytest.raises((ValueError, BufferError)):  # not writable
        ro = np.zeros((1, 40), np.uint8)
        ro.flags.writeable = False
        s.count_frames(ev, lo, hi, 5, 4, 2, ro)
    with pytest.raises(ValueError, match="C-contiguous|contiguous"):
        s.count_frames(ev, lo, hi, 5, 4, 2, np.zeros((1, 80), np.uint16)[:, ::2])
    with pytest.raises(ValueError, match="sensor size"):
        s.count_frames(ev, lo, hi, 0, 4, 2, out)
    with pytest.raises(ValueError, match="start <= stop"):
        s.scan_events(ev, 1, 3, 5, 4, 2)


@pytest.mark.parametrize("use_c", PATHS)
def test_range_errors_name_the_first_bad_event(use_c: str) -> None:
    #                x  y  p   t
    ev = events_of([0, 1, 9, 2, 7], [0, 8, 9, 0, 0], [0, 0, 0, 5, 0], [0, 1, 2, 3, 4])
    cases = [
        (ev, dict(n_time_bins=2), "event 1 has y=8 >= H=4"),
        (ev[2:], dict(n_event_bins=2), "event 0 has x=9 >= W=5"),  # x before y
        (ev[3:], dict(time_window=10), "event 0 has p=5 >= P=2"),
        (ev[3:], dict(event_count=1, n_frames=1), "event 0 has p=5 >= P=2"),
        (ev[3:], dict(event_count=1, overlap=0), "event 0 has p=5 >= P=2"),
        (ev[[3, 2, 1]], dict(time_window=10), "event 0 has p=5 >= P=2"),  # unsorted: input order
        (ev[[0, 3, 1]], dict(event_count=2, overlap=1), "event 1 has p=5 >= P=2"),
        # with n_frames the frames' events are validated after sorting: sorted index
        (
            events_of([7, 0, 1], [0] * 3, [0] * 3, [5, 0, 3]),
            dict(time_window=10, n_frames=1),
            "event 2 has x=7 >= W=5",
        ),
    ]
    for events, kw, message in cases:
        _, err = run_path(use_c, lambda e=events, k=kw: tr.to_frame(e, SIZE, **k))
        assert err is not None and err.startswith(f"ValueError: {message} (sensor_size"), err
    # events outside every frame: validated when no n_frames/start_time cuts the stream
    tail = events_of([0, 1, 1, 7], [0, 0, 0, 0], [0, 0, 0, 0], [0, 5, 10, 15])
    _, err = run_path(
        use_c, lambda: tr.to_frame(tail, SIZE, time_window=10, include_incomplete=False)
    )
    assert err is not None and "event 3 has x=7" in err
    f, err = run_path(use_c, lambda: tr.to_frame(tail, SIZE, time_window=10, n_frames=1))
    assert err is None and int(f.sum()) == 2
    # event-index modes validate the events of the frames only (one window [0, 3) here)
    f, err = run_path(
        use_c, lambda: tr.to_frame(tail, SIZE, event_count=3, include_incomplete=False)
    )
    assert err is None and int(f.sum()) == 3
    f, err = run_path(use_c, lambda: tr.to_frame(tail, (5, 4, 1), n_time_bins=1, start_time=11))
    assert err is not None and "event 3 has x=7" in err


@pytest.mark.parametrize("use_c", PATHS)
def test_unsorted_events_outside_the_frames_are_detected(use_c: str) -> None:
    # only a prefix / suffix is used, and the disorder lies outside the frames that the
    # (bisection) slicing of the unsorted times gives; sorting first changes the frames
    tail = events_of([0, 1, 2, 3, 4], [0] * 5, [1] * 5, [0, 6, 12, 7, 30])
    f, err = run_path(use_c, lambda: tr.to_frame(tail, SIZE, time_window=10, n_frames=1))
    assert err is None and f[0, 1, 0].tolist() == [1, 1, 0, 1, 0]
    head = events_of([0, 1, 2, 3], [0] * 4, [1] * 4, [50, 3, 60, 70])
    f, err = run_path(use_c, lambda: tr.to_frame(head, SIZE, n_time_bins=1, start_time=55))
    assert err is None and f[0, 1, 0].tolist() == [0, 0, 1, 1, 0]
    f, err = run_path(use_c, lambda: tr.to_frame(head, SIZE, time_window=100))
    assert err is None and f.shape[0] == 1 and int(f.sum()) == 4  # t0 = 3, not 50


def test_speedups_env_switch_and_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    monkeypatch.setenv(NO_SPEEDUPS, "1")
    assert not tr.speedups_enabled()
    assert select_backend().name == "numpy"
    for value in ("", "0"):
        monkeypatch.setenv(NO_SPEEDUPS, value)
        assert tr.speedups_enabled() is (SPEEDUPS is not None)
    # SPIKELOOM_BACKEND_FRAMES wins over the legacy alias
    monkeypatch.setenv(NO_SPEEDUPS, "1")
    monkeypatch.setenv(BACKEND_ENV, "reference")
    assert select_backend().name == "reference" and not tr.speedups_enabled()
    # a compiled extension lying in the package must be the one that is imported
    folder = Path(c_backend.__file__).parent
    built = list(folder.glob("_speedups*.so")) + list(folder.glob("_speedups*.pyd"))
    if built:
        assert SPEEDUPS is not None
        assert Path(SPEEDUPS.__file__).parent == folder
        assert "c" in available_backends("frames")
    else:
        assert "c" not in available_backends("frames")


def test_frames_backends_listed_and_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    names = available_backends("frames")
    assert {"numpy", "reference"} <= set(names)
    assert ("c" in names) is (SPEEDUPS is not None)
    monkeypatch.delenv(NO_SPEEDUPS, raising=False)
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    assert select_backend().name == ("c" if SPEEDUPS is not None else "numpy")
    ev = events_of([0, 1, 1], [0, 0, 2], [1, 0, 0], [0, 5, 9])
    expected = tr.to_frame(ev, SIZE, n_time_bins=2)
    calls = []
    real = get_backend("frames", "reference").fn

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    register_backend("frames", "spy", spy, devices=("cpu",), priority=-1)
    try:
        for name in names + ["spy"]:
            monkeypatch.setenv(BACKEND_ENV, name)
            assert select_backend().name == name
            np.testing.assert_array_equal(tr.to_frame(ev, SIZE, n_time_bins=2), expected)
        assert calls == [1]  # to_frame really goes through the forced backend
    finally:
        _OPS["frames"].unregister("spy")
    monkeypatch.setenv(BACKEND_ENV, "nope")
    with pytest.raises(BackendError, match=r"SPIKELOOM_BACKEND_FRAMES=nope.*unknown backend"):
        tr.to_frame(ev, SIZE, n_time_bins=2)
    assert not tr.speedups_enabled()
    # known but unavailable: what the "c" backend reports when its extension is missing
    monkeypatch.setattr(c_backend, "speedups", None)
    assert "c" not in available_backends("frames")
    monkeypatch.setenv(BACKEND_ENV, "c")
    with pytest.raises(BackendError, match="cannot run here: the C extension .* is not built"):
        tr.to_frame(ev, SIZE, n_time_bins=2)
    monkeypatch.delenv(BACKEND_ENV)
    assert select_backend().name == "numpy"  # the fallback without the extension


# ------------------------------------------------------------------------------------------
# voxel grid
# ------------------------------------------------------------------------------------------


def test_voxel_grid_hand_cases() -> None:
    ev = events_of([0, 1, 2, 3], [0, 0, 0, 1], [1, 0, 1, 1], [0, 25, 50, 100])
    v = tr.to_voxel_grid(ev, SIZE, n_time_bins=3)  # tn = 0, 0.5, 1, 2
    assert v.shape == (3, 1, 4, 5) and v.dtype == np.float32
    exp = np.zeros((3, 1, 4, 5), np.float32)
    exp[0, 0, 0, 0] = 1
    exp[0, 0, 0, 1] = -0.5
    exp[1, 0, 0, 1] = -0.5
    exp[1, 0, 0, 2] = 1
    exp[2, 0, 1, 3] = 1
    np.testing.assert_array_equal(v, exp)  # edges hit exactly: no 1e-16 leftovers
    one = tr.to_voxel_grid(events_of([2], [1], [0], [77]), SIZE, n_time_bins=4)
    assert one[0, 0, 1, 2] == -1 and np.count_nonzero(one) == 1
    np.testing.assert_array_equal(tr.to_voxel_grid(ev, SIZE, 3), v)  # positional form
    with pytest.raises(TypeError, match="n_time_bins"):
        tr.to_voxel_grid(ev, SIZE)
    b1 = tr.to_voxel_grid(ev, SIZE, n_time_bins=1)
    assert b1.shape == (1, 1, 4, 5) and b1.sum() == 2


def test_voxel_grid_sum_is_on_minus_off() -> None:
    rng = np.random.default_rng(2)
    for _ in range(20):
        ev = random_stream(rng, int(rng.integers(1, 400)), (9, 8, 2), 10**5, sort=False)
        for b in (1, 2, 5, 10):
            v = tr.to_voxel_grid(ev, (9, 8, 2), n_time_bins=b)
            n_on = int((ev["p"] == 1).sum())
            assert v.sum(dtype=np.float64) == pytest.approx(n_on - (len(ev) - n_on), abs=1e-3)
            # each event's weights are >= 0 and sum to 1 -> |grid| total <= N
            assert np.abs(v).sum() <= len(ev) + 1e-3


# ------------------------------------------------------------------------------------------
# denoise
# ------------------------------------------------------------------------------------------


def ref_denoise(ev: np.ndarray, filter_time: int, connectivity: int) -> np.ndarray:
    """Sequential last-timestamp filter (the definition), plain Python."""
    last: dict[tuple[int, int], int] = {}
    offs = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if connectivity == 8:
        offs += [(-1, -1), (1, -1), (-1, 1), (1, 1)]
    keep = []
    for e in ev:
        x, y, t = int(e["x"]), int(e["y"]), int(e["t"])
        keep.append(
            any(
                (x + dx, y + dy) in last and t - last[(x + dx, y + dy)] < filter_time
                for dx, dy in offs
            )
        )
        last[(x, y)] = t
    return np.array(keep, dtype=bool)


def test_denoise_burst_kept_isolated_removed() -> None:
    xs, ys = np.meshgrid(np.arange(10, 13), np.arange(20, 23))
    burst = events_of(xs.ravel(), ys.ravel(), np.ones(9, int), 1000 + np.arange(9) * 10)
    lone = events_of([40], [5], [1], [1050])
    ev = np.concatenate([burst, lone])
    ev = ev[np.argsort(ev["t"], kind="stable")]
    out = tr.denoise(ev, 500)
    # the very first burst event has no earlier neighbour; all later ones do
    assert len(out) == 8
    assert not ((out["x"] == 40) & (out["y"] == 5)).any()
    assert out["t"].tolist() == sorted(out["t"].tolist())
    assert len(tr.denoise(ev, 5)) == 0  # neighbours 10 µs apart are too old for 5 µs
    # same pixel repeated does not keep itself alive
    rep = events_of([3, 3, 3], [3, 3, 3], [1, 1, 1], [0, 1, 2])
    assert len(tr.denoise(rep, 100)) == 0
    # diagonal neighbour counts with 8-connectivity only
    diag = events_of([3, 4], [3, 4], [1, 0], [0, 5])
    assert len(tr.denoise(diag, 100, connectivity=8)) == 1
    assert len(tr.denoise(diag, 100, connectivity=4)) == 0


@pytest.mark.parametrize("connectivity", [4, 8])
def test_denoise_matches_sequential_reference(connectivity: int) -> None:
    rng = np.random.default_rng(4)
    for _ in range(15):
        ev = random_stream(rng, int(rng.integers(1, 1500)), (12, 9, 2), 20_000)
        for ft in (1, 50, 700):
            keep = ref_denoise(ev, ft, connectivity)
            np.testing.assert_array_equal(tr.denoise(ev, ft, connectivity=connectivity), ev[keep])


def test_denoise_needs_sorted_time() -> None:
    with pytest.raises(ValueError, match="sorted"):
        tr.denoise(events_of([0, 1], [0, 0], [0, 0], [5, 1]), 10)


# ------------------------------------------------------------------------------------------
# augmentations
# ------------------------------------------------------------------------------------------


@pytest.fixture
def stream() -> EventArray:
    rng = np.random.default_rng(8)
    ev = random_stream(rng, 400, (16, 12, 2), 50_000)
    return make_events(ev["x"], ev["y"], ev["p"], ev["t"], (16, 12, 2))


def test_crop_keeps_window_and_shifts(stream: EventArray) -> None:
    out = tr.crop(stream, (3, 2), (5, 4))
    inside = (stream["x"] >= 3) & (stream["x"] < 8) & (stream["y"] >= 2) & (stream["y"] < 6)
    assert len(out) == int(inside.sum()) > 0
    np.testing.assert_array_equal(out["x"], stream["x"][inside] - 3)
    np.testing.assert_array_equal(out["y"], stream["y"][inside] - 2)
    np.testing.assert_array_equal(out["t"], stream["t"][inside])
    assert isinstance(out, EventArray) and out.sensor_size == (5, 4, 2)
    c = tr.center_crop(stream, 8)  # origin ((16-8)//2, (12-8)//2) = (4, 2)
    np.testing.assert_array_equal(c, tr.crop(stream, (4, 2), (8, 8)))
    assert c.sensor_size == (8, 8, 2)
    plain = tr.crop(stream.view(np.ndarray), (3, 2), (5, 4))
    assert type(plain) is np.ndarray
    with pytest.raises(ValueError, match="larger than the sensor"):
        tr.center_crop(stream, (17, 4))


def test_random_crop_reproducible_and_in_bounds(stream: EventArray) -> None:
    t = tr.RandomCrop((6, 5))
    a = t(stream, rng=123)
    b = t(stream, rng=123)
    np.testing.assert_array_equal(a, b)
    assert a.sensor_size == (6, 5, 2)
    origins = set()
    for seed in range(30):
        out = t(stream, rng=np.random.default_rng(seed))
        assert (out["x"] < 6).all() and (out["y"] < 5).all()
        origins.add(len(out))
    assert len(origins) > 3  # different windows for different seeds


def test_flips(stream: EventArray) -> None:
    lr = tr.flip_lr(stream)
    np.testing.assert_array_equal(lr["x"], 15 - stream["x"])
    np.testing.assert_array_equal(lr["y"], stream["y"])
    np.testing.assert_array_equal(tr.flip_lr(lr), stream)
    ud = tr.flip_ud(stream)
    np.testing.assert_array_equal(ud["y"], 11 - stream["y"])
    np.testing.assert_array_equal(tr.flip_ud(ud), stream)
    fp = tr.flip_polarity(stream)
    np.testing.assert_array_equal(fp["p"], 1 - stream["p"])
    np.testing.assert_array_equal(tr.flip_polarity(fp), stream)
    # frames of the flipped stream are the mirrored frames
    f = tr.to_frame(stream, n_time_bins=3)
    np.testing.assert_array_equal(tr.to_frame(lr, n_time_bins=3), f[..., ::-1])
    np.testing.assert_array_equal(tr.to_frame(fp, n_time_bins=3), f[:, ::-1])
    with pytest.raises(ValueError, match="sensor size"):
        tr.flip_lr(stream.view(np.ndarray))
    flip = tr.RandomApply(tr.FlipLR(), p=0.5)
    half = [int((flip(stream, rng=s)["x"] != stream["x"]).any()) for s in range(40)]
    assert 5 < sum(half) < 35


def test_drop_event(stream: EventArray) -> None:
    same = tr.drop_event(stream, 0.0)
    np.testing.assert_array_equal(same, stream)
    assert same is not stream
    out = tr.drop_event(stream, 0.25, rng=1)
    assert len(out) == 300
    assert out["t"].tolist() == sorted(out["t"].tolist())  # order kept
    np.testing.assert_array_equal(out, tr.drop_event(stream, 0.25, rng=1))
    assert len(tr.drop_event(stream, 1.0, rng=1)) == 0


def test_time_jitter(stream: EventArray) -> None:
    np.testing.assert_array_equal(tr.time_jitter(stream, 0.0), stream)
    out = tr.time_jitter(stream, 200.0, rng=0, clip_negative=False, sort=False)
    d = out["t"] - stream["t"]
    assert 100 < d.std() < 300 and abs(d.mean()) < 50
    np.testing.assert_array_equal(out["x"], stream["x"])
    srt = tr.time_jitter(stream, 5000.0, rng=0)
    assert (np.diff(srt["t"]) >= 0).all() and (srt["t"] >= 0).all()
    early = make_events([0] * 50, [0] * 50, [0] * 50, np.arange(50), (16, 12, 2))
    assert len(tr.time_jitter(early, 1000.0, rng=0)) < 50  # negative times removed


def test_drop_time(stream: EventArray) -> None:
    out = tr.drop_time(stream, 0.3, rng=5)
    removed = np.setdiff1d(stream["t"], out["t"])
    span = int(stream["t"].max() - stream["t"].min() + 1)
    assert 0 < len(out) < len(stream)
    assert removed.max() - removed.min() < round(0.3 * span)  # one interval of length d
    gone = (stream["t"] >= removed.min()) & (stream["t"] <= removed.max())
    assert len(out) == len(stream) - int(gone.sum())  # everything inside it went
    assert len(tr.drop_time(stream, 1.0, rng=5)) == 0
    np.testing.assert_array_equal(tr.drop_time(stream, 0.0, rng=5), stream)
    assert tr.RandomTemporalDelete is tr.DropTime


def test_downsample(stream: EventArray) -> None:
    out = tr.downsample(stream, 4, 1000)
    np.testing.assert_array_equal(out["x"], stream["x"] // 4)
    np.testing.assert_array_equal(out["y"], stream["y"] // 4)
    np.testing.assert_array_equal(out["t"], stream["t"] // 1000 * 1000)
    assert out.sensor_size == (4, 3, 2)
    odd = tr.downsample(make_events([345], [259], [1], [3], (346, 260, 2)), 4)
    assert odd.sensor_size == (87, 65, 2) and odd["x"][0] == 86  # still inside
    f = tr.to_frame(stream, n_time_bins=2)
    g = tr.to_frame(out, n_time_bins=2)
    np.testing.assert_array_equal(g, f.reshape(2, 2, 3, 4, 4, 4).sum(axis=(3, 5)))


ALL_TRANSFORMS = [
    tr.ToFrame((16, 12, 2), time_window=1000, overlap=200, dtype=np.uint16),
    tr.ToFrame(n_event_bins=4),
    tr.ToVoxelGrid(n_time_bins=3),
    tr.Denoise(2000),
    tr.Downsample(2, 10),
    tr.Crop((1, 2), (8, 6)),
    tr.CenterCrop(8),
    tr.RandomCrop((10, 10)),
    tr.FlipLR(),
    tr.RandomApply(tr.FlipUD(), p=0.5),
    tr.RandomApply(tr.FlipPolarity(), p=0.3),
    tr.DropEvent(0.2),
    tr.TimeJitter(100.0),
    tr.DropTime(0.25),
    tr.Compose([tr.Downsample(2), tr.FlipLR(), tr.ToFrame(n_time_bins=2)]),
]


@pytest.mark.parametrize("t", ALL_TRANSFORMS, ids=lambda t: type(t).__name__)
def test_transform_contract(t: tr.EventTransform, stream: EventArray) -> None:
    before = stream.copy()
    out1 = t(stream, rng=42)
    out2 = t(stream, rng=42)
    np.testing.assert_array_equal(out1, out2)  # reproducible with a seed
    np.testing.assert_array_equal(stream, before)  # input not mutated
    assert out1 is not stream
    if out1.dtype.names:
        assert out1.dtype == EVENT_DTYPE
    # pickling round trip
    back = pickle.loads(pickle.dumps(t))
    assert back == t and repr(back) == repr(t)
    np.testing.assert_array_equal(back(stream, rng=42), out1)
    # cache key: stable, names the class, lists every parameter
    key = t.cache_key()
    assert key == back.cache_key() and key.startswith(f"spikeloom.{type(t).__name__}/v")
    for name in t.params():
        assert f'"{name}"' in key
    # empty input
    empty = make_events([], [], [], [], (16, 12, 2))
    res = t(empty, rng=0)
    assert res.size == 0 or not np.asarray(res).any()


def test_cache_keys_distinguish_parameters() -> None:
    keys = {t.cache_key() for t in ALL_TRANSFORMS}
    assert len(keys) == len(ALL_TRANSFORMS)
    a = tr.ToFrame((16, 12, 2), time_window=1000)
    assert a.cache_key() != tr.ToFrame((16, 12, 2), time_window=1001).cache_key()
    assert tr.ToFrame(n_time_bins=3, dtype="uint8").params()["dtype"] == "uint8"
    assert "time_window=1000" in repr(a)
    assert not a.is_random and tr.RandomCrop(4).is_random
    assert not tr.RandomApply(tr.FlipLR(), p=1).is_random and not tr.FlipLR().is_random


def test_compose_pipeline_propagates_sensor_size(stream: EventArray) -> None:
    pipe = tr.Compose([tr.Denoise(5000), tr.Downsample(4), tr.ToFrame(time_window=10_000)])
    frames = pipe(stream)
    manual = tr.to_frame(tr.downsample(tr.denoise(stream, 5000), 4), time_window=10_000)
    np.testing.assert_array_equal(frames, manual)
    assert frames.shape[1:] == (2, 3, 4)
    assert len(pipe) == 3 and isinstance(pipe[1], tr.Downsample)
    rnd = tr.Compose([tr.DropEvent(0.5), tr.RandomCrop(8)])
    np.testing.assert_array_equal(rnd(stream, rng=9), rnd(stream, rng=9))
    assert rnd.is_random
    with pytest.raises(TypeError, match="EventTransform"):
        tr.Compose([lambda e: e])


# ------------------------------------------------------------------------------------------
# RandomApply
# ------------------------------------------------------------------------------------------


def test_random_apply_probability_extremes(stream: EventArray) -> None:
    never = tr.RandomApply(tr.FlipLR(), p=0)
    always = tr.RandomApply(tr.FlipLR(), p=1.0)
    for seed in range(20):
        out = never(stream, rng=seed)
        np.testing.assert_array_equal(out, stream)
        assert out is not stream and out.sensor_size == stream.sensor_size
        np.testing.assert_array_equal(always(stream, rng=seed), tr.flip_lr(stream))
    assert not never.is_random and not always.is_random
    # p = 1 passes the caller's rng on unchanged: identical to the inner transform alone
    crop = tr.RandomCrop(5)
    np.testing.assert_array_equal(tr.RandomApply(crop, 1)(stream, rng=3), crop(stream, rng=3))
    assert tr.RandomApply(crop, 1).is_random and not tr.RandomApply(crop, 0).is_random


def test_random_apply_seeded_reproducible_and_both_outcomes(stream: EventArray) -> None:
    t = tr.RandomApply(tr.FlipPolarity(), p=0.5)
    assert t.is_random
    flipped = []
    for seed in range(40):
        a, b = t(stream, rng=seed), t(stream, rng=np.random.default_rng(seed))
        np.testing.assert_array_equal(a, b)
        applied = bool((a["p"] != stream["p"]).any())
        # the decision is the first uniform draw of the generator
        assert applied is bool(np.random.default_rng(seed).random() < 0.5)
        flipped.append(applied)
    assert 5 < sum(flipped) < 35
    # inside Compose the pipeline's generator is shared: a seed reproduces the whole pipeline
    pipe = tr.Compose([tr.RandomApply(tr.FlipUD(), 0.5), tr.RandomCrop(6)])
    np.testing.assert_array_equal(pipe(stream, rng=11), pipe(stream, rng=11))


def test_random_apply_cache_key_and_errors() -> None:
    inner = tr.Downsample(2)
    t = tr.RandomApply(inner, p=0.25)
    key = t.cache_key()
    assert key.startswith("spikeloom.RandomApply/v") and '"p":0.25' in key
    assert json.loads(key.split(":", 1)[1])["transform"] == inner.cache_key()
    assert key != tr.RandomApply(inner, p=0.5).cache_key()
    assert key != tr.RandomApply(tr.Downsample(3), p=0.25).cache_key()
    assert t == pickle.loads(pickle.dumps(t)) and repr(t).startswith("RandomApply(")
    with pytest.raises(ValueError, match="probability"):
        tr.RandomApply(inner, p=1.5)
    with pytest.raises(TypeError, match="EventTransform"):
        tr.RandomApply(lambda e: e, p=0.5)
    for cls in (tr.FlipLR, tr.FlipUD, tr.FlipPolarity):  # the removed p field says where it went
        with pytest.raises(TypeError, match=r"RandomApply\(" + cls.__name__):
            cls(p=0.5)


# ------------------------------------------------------------------------------------------
# slicers
# ------------------------------------------------------------------------------------------


def ranges(slicer, events) -> tuple[list[int], list[int]]:
    lo, hi = slicer.indices(events)
    assert lo.dtype == np.intp and hi.dtype == np.intp
    return lo.tolist(), hi.tolist()


def test_slice_by_time_hand_ranges() -> None:
    ev = events_of([0] * 5, [0] * 5, [0] * 5, [10, 12, 19, 20, 41])
    # windows [10,20) [20,30) [30,40) [40,50)
    assert ranges(sl.SliceByTime(10), ev) == ([0, 3, 4, 4], [3, 4, 4, 5])
    # stride 5: [10,20) [15,25) [20,30) [25,35) [30,40) [35,45)
    assert ranges(sl.SliceByTime(10, overlap=5), ev) == ([0, 2, 3, 4, 4, 4], [3, 4, 4, 4, 4, 5])
    assert ranges(sl.SliceByTime(10, include_incomplete=False), ev) == ([0, 3, 4], [3, 4, 4])
    assert ranges(sl.SliceByTime(10, n_slices=2, start_time=15), ev) == ([2, 4], [4, 4])
    assert ranges(sl.SliceByTime(10), ev["t"].copy()) == ([0, 3, 4, 4], [3, 4, 4, 5])  # t only
    assert ranges(sl.SliceByTime(10), ev[:0]) == ([], [])
    assert ranges(sl.SliceByTime(10, n_slices=2), ev[:0]) == ([0, 0], [0, 0])
    assert sl.SliceByTime.by_time and sl.SliceByTimeBins.by_time


def test_slice_by_time_bins_hand_ranges() -> None:
    t = np.array([0, 50, 100])
    assert ranges(sl.SliceByTimeBins(2), t) == ([0, 2], [2, 3])  # span 101: edges 0, 51, 101
    assert ranges(sl.SliceByTimeBins(2, rule="floor"), t) == ([0, 1], [1, 3])  # dT = 50
    assert ranges(sl.SliceByTimeBins(3, start_time=60), t) == ([2, 2, 2], [2, 2, 3])
    assert ranges(sl.SliceByTimeBins(3), t[:0]) == ([0, 0, 0], [0, 0, 0])


def test_slice_by_event_count_and_bins_hand_ranges() -> None:
    t = np.arange(7)
    assert ranges(sl.SliceByEventCount(3), t) == ([0, 3, 6], [3, 6, 7])
    assert ranges(sl.SliceByEventCount(3, overlap=1), t) == ([0, 2, 4], [3, 5, 7])
    assert ranges(sl.SliceByEventCount(3, include_incomplete=False), t) == ([0, 3], [3, 6])
    assert ranges(sl.SliceByEventCount(3, n_slices=4), t) == ([0, 3, 6, 7], [3, 6, 7, 7])
    assert ranges(sl.SliceByEventBins(2), t) == ([0, 3], [3, 7])
    assert ranges(sl.SliceByEventBins(3), t[:2]) == ([0, 0, 0], [0, 0, 2])
    assert not sl.SliceByEventCount.by_time and not sl.SliceByEventBins.by_time


def test_slicers_validate_and_drive_to_frame(stream: EventArray) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        sl.SliceByTime(0)
    with pytest.raises(TypeError, match="int"):
        sl.SliceByEventCount(5.0)
    with pytest.raises(ValueError, match="overlap"):
        sl.SliceByTime(10, overlap=10)
    with pytest.raises(ValueError, match="include_incomplete"):
        sl.SliceByEventCount(10, include_incomplete=False, n_slices=2)
    with pytest.raises(ValueError, match="time_bins_rule"):
        sl.SliceByTimeBins(3, rule="ceil")
    s = sl.SliceByTime(1000, overlap=200)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.window = 5  # type: ignore[misc]
    assert s == pickle.loads(pickle.dumps(s))
    assert tr.ToFrame(time_window=1000, overlap=200).slicer == s
    assert tr.ToFrame(n_event_bins=4).slicer == sl.SliceByEventBins(4)
    for kw, slicer in (
        (dict(time_window=1000, overlap=200), s),
        (dict(n_time_bins=5, time_bins_rule="floor"), sl.SliceByTimeBins(5, rule="floor")),
        (dict(event_count=37, n_frames=20), sl.SliceByEventCount(37, n_slices=20)),
        (dict(n_event_bins=3), sl.SliceByEventBins(3)),
    ):
        np.testing.assert_array_equal(tr.to_frame(stream, slicer=slicer), tr.to_frame(stream, **kw))
    with pytest.raises(ValueError, match="either slicer= or the slicing keywords"):
        tr.to_frame(stream, slicer=s, n_time_bins=3)


# ------------------------------------------------------------------------------------------
# real data
# ------------------------------------------------------------------------------------------


def read_nmnist(path: Path) -> np.ndarray:
    """Minimal N-MNIST 40-bit decoder (independent of spikeloom.events.io)."""
    raw = np.frombuffer(path.read_bytes(), dtype=np.uint8).reshape(-1, 5).astype(np.int64)
    t = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]
    return events_of(raw[:, 0], raw[:, 1], raw[:, 2] >> 7, t)


def test_real_nmnist_sample_every_event_counted(shared_data: Path) -> None:
    ev = read_nmnist(shared_data / "tonic_samples" / "sample_nmnist.bin")
    size = (34, 34, 2)
    assert len(ev) == 4325
    for kw in (
        dict(time_window=1000),
        dict(n_time_bins=10),
        dict(event_count=1000),
        dict(n_event_bins=16),
        dict(n_time_bins=10, time_bins_rule="floor"),
    ):
        f = tr.to_frame(ev, size, **kw)
        assert int(f.sum()) == 4325, kw
        assert int(f[:, 1].sum()) == 2145 and int(f[:, 0].sum()) == 2180
    f = tr.to_frame(ev, size, time_window=1000)
    assert f.shape[0] == (311_175 - 654) // 1000 + 1
    v = tr.to_voxel_grid(ev, size, n_time_bins=5)
    assert float(v.sum()) == pytest.approx(2145 - 2180, abs=1e-2)
    kept = tr.denoise(ev, 10_000)
    assert 0 < len(kept) < len(ev)
