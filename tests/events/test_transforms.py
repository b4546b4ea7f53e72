"""Tests for spikeloom.events.transforms (frames, voxel grids, denoise, augmentations)."""

from __future__ import annotations

import pickle
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from spikeloom.events import transforms as tr
from spikeloom.events.core import EVENT_DTYPE, EventArray, make_events

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
    half = [int((tr.FlipLR(p=0.5)(stream, rng=s)["x"] != stream["x"]).any()) for s in range(40)]
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
    tr.FlipUD(p=0.5),
    tr.FlipPolarity(p=0.3),
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
    assert not a.is_random and tr.RandomCrop(4).is_random and not tr.FlipLR(p=1).is_random


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
