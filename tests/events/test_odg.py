"""Tests of the ODG conversion (ES-ImageNet, Lin et al. 2021, arXiv:2110.12211), its frame
loader and the Edge-Integral reconstruction."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from spikeloom.events.core import EventArray
from spikeloom.events.odg import (
    ES_IMAGENET,
    ES_IMAGENET_CROP,
    ES_IMAGENET_MIN_EVENTS,
    ES_IMAGENET_SIZE,
    ES_IMAGENET_THRESHOLD,
    ES_IMAGENET_TRAJECTORY,
    ES_IMAGENET_WINDOW,
    ESImageNetGeometry,
    ODGResult,
    convert_image,
    edge_integral,
    frames_from_masks,
    nearest_indices,
    odg,
    odg_batch,
    odg_frames,
    resize_longer_side,
    resize_nearest,
    resized_shape,
    to_pos_neg,
    value_channel,
)

STEP_COUNTS = [(0, 446), (223, 0), (223, 0), (0, 223), (0, 223), (446, 0), (0, 223), (0, 0)]


def step_edge(h: int = 254, w: int = 254) -> np.ndarray:
    v = np.zeros((h, w), np.float32)
    v[:, 127:] = 1.0
    return v


def pos_neg(v: np.ndarray, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """``(pos, neg)`` ``[n, 3]`` (row, col, t) arrays of ``odg(v, **kwargs)``."""
    return to_pos_neg(odg(v, **kwargs))


def per_step(ev: np.ndarray) -> list[int]:
    return np.bincount(ev[:, 2], minlength=9)[1:].tolist()


def reference_odg(v, threshold=0.18, crop=(16, 240)):
    """Literal, loop-per-step transcription of the authors' ODG steps (canvas, difference,
    border suppression, crop), independent of the module."""
    trace = ES_IMAGENET_TRAJECTORY
    h, w = v.shape
    last = None
    pos, neg = [], []
    for t in range(9):
        r, c = trace[t]
        new = np.zeros((h + 4, w + 4), np.float32)
        new[r : r + h, c : c + w] = v
        if t > 0:
            r0, c0 = trace[t - 1]
            d = new - last
            for out, m in ((pos, d > np.float32(threshold)), (neg, d < -np.float32(threshold))):
                m = m.copy()
                m[min(r, r0) : max(r, r0), :] = False
                m[min(r, r0) + h : max(r, r0) + h, :] = False
                m[:, min(c, c0) : max(c, c0)] = False
                m[:, min(c, c0) + w : max(c, c0) + w] = False
                rows, cols = np.nonzero(m)
                if crop is not None:
                    ok = (rows > crop[0]) & (rows < crop[1]) & (cols > crop[0]) & (cols < crop[1])
                    rows, cols = rows[ok], cols[ok]
                out.append(np.stack([rows, cols, np.full_like(rows, t)], 1))
        last = new
    return np.concatenate(pos), np.concatenate(neg)


# ------------------------------------------------------------------------------------------
# hand-checked test vectors
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0.0, 0.3, 1.0])
def test_constant_image_gives_no_event(value):
    ev = odg(np.full((254, 254), value, np.float32))
    pos, neg = to_pos_neg(ev)
    assert len(ev) == 0 and pos.shape == (0, 3) and neg.shape == (0, 3)
    img = np.full((300, 200, 3), int(value * 255), np.uint8)
    assert convert_image(img) is None
    assert convert_image(img, min_events=0).num_events == 0


def test_step_edge_per_step_counts():
    pos, neg = pos_neg(step_edge())
    assert list(zip(per_step(pos), per_step(neg))) == STEP_COUNTS
    assert (len(pos), len(neg), len(pos) + len(neg)) == (892, 1115, 2007)
    assert np.unique(neg[neg[:, 2] == 1, 1]).tolist() == [127, 128]
    # every event inside the strict crop, sorted by (t, row, col)
    for ev in (pos, neg):
        assert ev[:, :2].min() > 16 and ev[:, :2].max() < 240
        key = ev[:, 2].astype(np.int64) * 10**6 + ev[:, 0] * 1000 + ev[:, 1]
        assert np.all(np.diff(key) > 0)


def test_direction_selectivity_horizontal_edge():
    # t = 7 is a purely horizontal move (0, +1): a horizontal edge gives nothing there.
    pos, neg = pos_neg(step_edge().T.copy())
    assert per_step(pos)[6] == per_step(neg)[6] == 0
    assert per_step(pos)[7] + per_step(neg)[7] > 0


def test_loader_keeps_all_step_edge_events_and_layouts_agree():
    ev = odg(step_edge())
    es = odg_frames(ev, 254, 254, layout="es_imagenet")
    assert es.shape == (2, 8, 224, 224) and es.dtype == np.float32
    assert es.sum() == 2007 and es[0].sum() == 892 and es[1].sum() == 1115
    tp = odg_frames(ev, 254, 254)
    assert tp.shape == (8, 2, 224, 224)
    np.testing.assert_array_equal(tp[:, 1], es[0])  # ON
    np.testing.assert_array_equal(tp[:, 0], es[1])  # OFF
    # canvas (row, col) -> frame (row - 16, col - 16) for a square image
    assert es[1, 0, 100 - 16, 127 - 16] == 1 and es[1, 0, 100 - 16, 129 - 16] == 0


def test_edge_integral_of_step_edge():
    ev = odg(step_edge())
    es = odg_frames(ev, 254, 254, layout="es_imagenet")
    gray = edge_integral(es)
    assert gray.shape == (224, 224)
    assert np.flatnonzero(np.abs(gray).sum(0)).tolist() == [110, 111, 112, 113]
    assert np.all(np.abs(gray[:, 110:114]).sum(1) > 0)  # every row
    assert gray[100, 109:115].tolist() == [0, -1, -4, 3, 1, 0]
    assert gray.sum() == -220
    # tpchw layout, bool frames and torch tensors give the same image
    tp = odg_frames(ev, 254, 254, dtype=bool)
    np.testing.assert_array_equal(edge_integral(tp, layout="tpchw"), gray)
    t = edge_integral(torch.from_numpy(es)[None], layout="es_imagenet")
    assert t.shape == (1, 224, 224)
    np.testing.assert_array_equal(t[0].numpy(), gray)


def test_edge_integral_generalised_size_small_canvas():
    # 20x20 image, no crop, window (1, 21): gray pixel (i, j) <-> image pixel (i, j); interior
    # rows show the same profile as the 254 case, at image columns edge-2 .. edge+1
    v = np.zeros((20, 20), np.float32)
    v[:, 10:] = 1.0
    ev = odg(v, crop=None)
    frames = odg_frames(ev, 20, 20, size=20, window=None)
    assert frames.shape == (8, 2, 20, 20) and frames.sum() == len(ev)
    gray = edge_integral(frames, layout="tpchw")
    assert gray.shape == (20, 20)
    assert np.flatnonzero(np.abs(gray).sum(0)).tolist() == [8, 9, 10, 11]
    for row in range(1, 18):
        assert gray[row, 7:13].tolist() == [0, -1, -4, 3, 1, 0]


def test_short_image_170x254():
    v = step_edge(170, 254)
    ev = odg(v)
    assert len(ev) == 1381
    es = odg_frames(ev, 170, 254, layout="es_imagenet")
    assert es.sum() == 1381
    rows = np.flatnonzero(es.any(axis=(0, 1, 3)))
    assert (rows.min(), rows.max()) == (43, 196)
    assert rows.size == 196 - 43 + 1


# ------------------------------------------------------------------------------------------
# agreement with the literal transcription, batch versions
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape,crop", [((254, 254), (16, 240)), ((190, 254), (16, 240)),
                                        ((23, 31), None)])
def test_odg_matches_literal_reference(shape, crop):
    rng = np.random.default_rng(1)
    # smooth-ish random image: blocky noise so that both signs and all steps occur
    v = rng.random((shape[0] // 4 + 1, shape[1] // 4 + 1)).repeat(4, 0).repeat(4, 1)
    v = v[: shape[0], : shape[1]].astype(np.float32)
    pos, neg = pos_neg(v, crop=crop)
    rpos, rneg = reference_odg(v, crop=crop)
    np.testing.assert_array_equal(pos, rpos)
    np.testing.assert_array_equal(neg, rneg)
    assert len(pos) > 100 and len(neg) > 100


def test_events_lie_in_rows_and_cols_1_to_h():
    rng = np.random.default_rng(2)
    v = rng.random((20, 13)).astype(np.float32)
    pos, neg = pos_neg(v, crop=None)
    ev = np.concatenate([pos, neg])
    assert ev[:, 0].min() >= 1 and ev[:, 0].max() <= 20
    assert ev[:, 1].min() >= 1 and ev[:, 1].max() <= 13


def test_odg_batch_matches_single():
    rng = np.random.default_rng(3)
    v = (rng.random((7, 16, 16)) > 0.5).astype(np.float32)
    v[3] = 0.25  # constant image: empty event lists inside a batch
    batch = odg_batch(v, crop=None, chunk_size=3)
    assert len(batch) == 7
    for k in range(7):
        single = odg(v[k], crop=None)
        assert isinstance(batch[k], EventArray) and batch[k].sensor_size == single.sensor_size
        np.testing.assert_array_equal(batch[k], single)
        np.testing.assert_array_equal(to_pos_neg(batch[k])[0], to_pos_neg(single)[0])
        np.testing.assert_array_equal(to_pos_neg(batch[k])[1], to_pos_neg(single)[1])
    assert to_pos_neg(batch[3])[0].shape == (0, 3) and len(batch[3]) == 0
    for layout in ("tpchw", "es_imagenet"):
        frames = odg_batch(v, crop=None, output="frames", layout=layout, window=(1, 17))
        for k in range(7):
            ref = odg_frames(batch[k], 16, 16, layout=layout, size=16, window=(1, 17))
            np.testing.assert_array_equal(frames[k], ref)
        # window (1, size+1) keeps every event
        assert frames.sum() == sum(len(e) for e in batch)
    on, off = odg_batch(v, crop=None, output="masks")
    assert on.shape == (7, 8, 20, 20) and on.sum() == sum(int((e["p"] == 1).sum()) for e in batch)
    assert odg_batch(v[:0], crop=None) == []
    assert odg_batch(v[:0], crop=None, output="frames").shape == (0, 8, 2, 16, 16)


def test_frames_from_masks_matches_odg_frames_for_centred_crop():
    v = step_edge(170, 254)
    on, off = odg_batch(v[None], output="masks")
    ref = odg_frames(odg(v), 170, 254, dtype=np.uint8)
    np.testing.assert_array_equal(frames_from_masks(on, off, 170, 254)[0], ref)


# ------------------------------------------------------------------------------------------
# resize and value channel
# ------------------------------------------------------------------------------------------


def test_resized_shape_rule():
    assert resized_shape(375, 500) == (190, 254)
    assert resized_shape(500, 375) == (254, 190)
    assert resized_shape(300, 300) == (254, 254)
    assert resized_shape(28, 28) == (254, 254)
    assert resized_shape(1000, 3) == (254, 0)  # caller must reject, see below
    with pytest.raises(ValueError, match="too elongated"):
        resize_longer_side(np.zeros((1000, 3)))


def test_nearest_index_rules_by_hand():
    np.testing.assert_array_equal(nearest_indices(4, 2, "floor"), [0, 2])
    np.testing.assert_array_equal(nearest_indices(2, 5, "floor"), [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(nearest_indices(2, 5, "center"), [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(nearest_indices(2, 5, "torch"), [0, 0, 0, 1, 1])


@pytest.mark.parametrize("shape", [(375, 500), (500, 333), (28, 28), (62, 84), (97, 300)])
def test_torch_sampling_matches_interpolate_on_float64(shape):
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, size=(*shape, 3), dtype=np.uint8)
    out = resize_longer_side(img, 254)
    h, w = resized_shape(*shape)
    x = torch.from_numpy(img / 255.0).permute(2, 0, 1)[None]
    ref = torch.nn.functional.interpolate(x, size=(h, w), mode="nearest")[0].permute(1, 2, 0)
    np.testing.assert_array_equal(out / 255.0, ref.numpy())
    assert out.shape == (h, w, 3)


def test_floor_sampling_is_exact_integer_rule():
    a = np.arange(97 * 300).reshape(97, 300)
    out = resize_nearest(a, 82, 254, sampling="floor")
    rows = np.arange(82) * 97 // 82
    cols = np.arange(254) * 300 // 254
    np.testing.assert_array_equal(out, a[rows][:, cols])


def test_value_channel():
    img = np.zeros((2, 3, 4), np.uint8)
    img[0, 0] = (10, 200, 30, 255)  # alpha ignored
    img[1, 2] = (255, 0, 0, 0)
    v = value_channel(img)
    assert v.dtype == np.float32 and v.shape == (2, 3)
    assert v[0, 0] == np.float32(200 / 255) and v[1, 2] == 1.0 and v[0, 1] == 0.0
    np.testing.assert_array_equal(value_channel(img[..., 0]), img[..., 0] / np.float32(255))
    with pytest.raises(ValueError, match="scaled to"):
        value_channel(np.full((2, 2), 3.0))
    with pytest.raises(TypeError, match="value_channel"):
        odg(np.zeros((8, 8), np.uint8))


def test_threshold_is_strict():
    v = np.zeros((40, 40), np.float32)
    v[:, 20:] = np.float32(0.18)  # difference exactly at the threshold: no event
    assert len(odg(v, crop=None)) == 0
    v[:, 20:] = np.nextafter(np.float32(0.18), np.float32(1))
    assert len(odg(v, crop=None)) > 0


def test_bad_trajectory_is_rejected():
    with pytest.raises(ValueError, match="pad"):
        odg(np.zeros((10, 10), np.float32), trajectory=[(0, 0), (5, 0)])


# ------------------------------------------------------------------------------------------
# whole pipeline
# ------------------------------------------------------------------------------------------


def test_convert_image_min_events_rule_and_npz_arrays():
    img = np.zeros((300, 300, 3), np.uint8)
    img[:, 150:] = 255  # resized to 254: edge at column floor-rule boundary
    r = convert_image(img)
    assert isinstance(r, ODGResult) and (r.h, r.w) == (254, 254)
    n = r.num_events
    assert n > 1000
    assert convert_image(img, min_events=n) is not None
    assert convert_image(img, min_events=n + 1) is None
    arrays = r.npz_arrays()
    assert arrays["pos"].dtype == np.uint8 and arrays["pos"].shape == (len(r.pos), 3)
    np.testing.assert_array_equal(arrays["neg"], r.neg)
    assert r.frames(layout="es_imagenet").sum() == n


def test_edge_integral_of_real_mnist_digits_correlates_with_gradient(shared_data):
    from spikeloom.events.io import read_idx

    images = read_idx(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz")[:10]
    eis, grads = [], []
    for img in images:
        r = convert_image(img, min_events=0)
        gray = edge_integral(r.frames(layout="es_imagenet"))
        v = resize_longer_side(value_channel(img)).astype(np.float64)
        gy, gx = np.gradient(v)
        # gray pixel (i, j) <-> image pixel (i + 15, j + 15) for a square 254 image
        grads.append(np.hypot(gx, gy)[15:239, 15:239].ravel())
        eis.append(np.abs(gray).astype(np.float64).ravel())
    matched = np.array([np.corrcoef(eis[k], grads[k])[0, 1] for k in range(10)])
    mismatched = np.array([np.corrcoef(eis[k], grads[(k + 1) % 10])[0, 1] for k in range(10)])
    # measured: matched mean 0.84 (min 0.83); mismatched mean 0.19 (max 0.37)
    assert matched.min() > 0.75
    assert mismatched.mean() < 0.3
    assert np.all(matched > mismatched + 0.3)


# ------------------------------------------------------------------------------------------
# EventArray output and the geometry record
# ------------------------------------------------------------------------------------------


def test_odg_returns_event_array_in_canvas_coordinates():
    v = step_edge(170, 254)
    ev = odg(v)
    assert isinstance(ev, EventArray) and ev.sensor_size == (254 + 4, 170 + 4, 2)
    wide = odg(v, crop=None, pad=6)
    assert len(wide) > 0 and wide.sensor_size == (260, 176, 2)
    t, p = ev["t"].astype(np.int64), ev["p"].astype(np.int64)
    assert t.min() >= 1 and t.max() <= 8 and set(np.unique(p)) == {0, 1}
    # ordered by step, then ON before OFF, then row, then col
    key = ((t * 2 + (1 - p)) * 1000 + ev["y"]) * 1000 + ev["x"]
    assert np.all(np.diff(key) > 0)
    pos, neg = to_pos_neg(ev)
    assert pos.dtype == np.int32 and len(pos) == int(p.sum()) and len(neg) == len(ev) - len(pos)
    np.testing.assert_array_equal(pos[:, 0], ev["y"][p == 1])  # row = y
    np.testing.assert_array_equal(neg[:, 1], ev["x"][p == 0])  # col = x
    np.testing.assert_array_equal(neg[:, 2], t[p == 0])
    # frames of the EventArray = frames of the same events through to_frame directly
    from spikeloom.events.frames import to_frame

    direct = to_frame(ev, time_window=1, start_time=1, n_frames=8)  # [8, 2, 174, 258] canvas
    assert int(direct.sum()) == len(ev) and direct.max() == 1


def test_odg_npz_round_trip_through_the_es_imagenet_reader(tmp_path):
    from spikeloom.convert import npz_bytes
    from spikeloom.events.io import read_es_imagenet_npz

    img = np.zeros((300, 300, 3), np.uint8)
    img[100:200, 80:220] = 200
    r = convert_image(img)
    (tmp_path / "a.npz").write_bytes(npz_bytes(r.npz_arrays()))
    back = read_es_imagenet_npz(tmp_path / "a.npz")
    for field in ("x", "y", "p", "t"):  # the reader's order (step, ON first, file order) = ours
        np.testing.assert_array_equal(back[field], r.events[field])


def test_es_imagenet_geometry_record():
    g = ES_IMAGENET
    assert isinstance(g, ESImageNetGeometry) and g == ESImageNetGeometry()
    assert (g.size, g.threshold, g.crop, g.window, g.min_events, g.pad) == (
        254, 0.18, (16, 240), (16, 240), 1000, 4)
    assert g.steps == 8 and g.frame_side == 224 and len(g.trajectory) == 9
    # the old constants are aliases of the record's fields
    assert (ES_IMAGENET_SIZE, ES_IMAGENET_THRESHOLD, ES_IMAGENET_CROP, ES_IMAGENET_WINDOW,
            ES_IMAGENET_MIN_EVENTS, ES_IMAGENET_TRAJECTORY) == (
        g.size, g.threshold, g.crop, g.window, g.min_events, g.trajectory)
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.size = 128  # type: ignore[misc]
    small = g.replace(size=32, crop=None, window=None, trajectory=[[0, 0], [1, 1]])
    assert small.trajectory == ((0, 0), (1, 1)) and small.steps == 1 and small.frame_side == 32
    with pytest.raises(ValueError, match="pad"):
        ESImageNetGeometry(trajectory=((0, 0), (5, 0)))
    with pytest.raises(ValueError, match="crop"):
        ESImageNetGeometry(crop=(240, 16))
    with pytest.raises(ValueError, match="window"):
        ESImageNetGeometry(window=(-1, 5))
    with pytest.raises(ValueError, match="threshold"):
        ESImageNetGeometry(threshold=float("nan"))
    # the functions' defaults are the record's values
    v = step_edge()
    np.testing.assert_array_equal(
        odg(v), odg(v, g.threshold, g.trajectory, g.pad, g.crop))
    assert odg_frames(odg(v), 254, 254).shape == (g.steps, 2, g.frame_side, g.frame_side)


def test_odg_frames_are_binary_and_reject_old_arguments():
    ev = odg(step_edge())
    doubled = np.concatenate([ev, ev[:10]]).view(EventArray)
    np.testing.assert_array_equal(odg_frames(doubled, 254, 254), odg_frames(ev, 254, 254))
    with pytest.raises(TypeError, match="EventArray"):
        odg_frames(*to_pos_neg(ev), 254)
    bad = ev.copy()
    bad["t"][0] = 9
    with pytest.raises(ValueError, match="1..8"):
        odg_frames(bad, 254, 254)
