"""Tests of the built-in ES-Digits dataset (ODG of scikit-learn's 8x8 digits)."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
import torch

from spikeloom.datasets.esdigits import ESDigits, esdigits_frames, split_indices, upscale
from spikeloom.events.core import EVENT_DTYPE
from spikeloom.events.odg import odg, to_pos_neg


@pytest.fixture(scope="module")
def splits():
    return {s: ESDigits(s) for s in ("train", "val", "test")}


def test_split_sizes_disjoint_and_covering(splits):
    sizes = {k: len(v) for k, v in splits.items()}
    assert sizes == {"train": 1258, "val": 269, "test": 270}
    idx = [set(v.indices.tolist()) for v in splits.values()]
    assert not (idx[0] & idx[1]) and not (idx[0] & idx[2]) and not (idx[1] & idx[2])
    assert set().union(*idx) == set(range(1797))
    # stratified: every class in every split, in proportion
    for ds in splits.values():
        counts = np.bincount(ds.labels.numpy(), minlength=10)
        assert counts.min() > 0
        assert counts.max() - counts.min() <= 0.06 * len(ds) + 2


def test_split_is_deterministic_and_seed_dependent():
    labels = esdigits_frames()[1]
    a, b = split_indices(labels, seed=0), split_indices(labels, seed=0)
    c = split_indices(labels, seed=1)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["train"], c["train"])
    assert {k: len(v) for k, v in c.items()} == {k: len(v) for k, v in a.items()}
    ds0, ds1 = ESDigits("val", seed=0), ESDigits("val", seed=0)
    assert torch.equal(ds0.frames, ds1.frames) and torch.equal(ds0.labels, ds1.labels)


def test_shapes_dtypes_and_attributes(splits):
    ds = splits["train"]
    x, y = ds[5]
    assert x.shape == (8, 2, 32, 32) and x.dtype == torch.float32
    assert isinstance(y, int) and 0 <= y < 10
    assert ds.frames.shape == (1258, 8, 2, 32, 32) and ds.labels.shape == (1258,)
    assert set(torch.unique(ds.frames).tolist()) == {0.0, 1.0}
    assert (ds.num_classes, ds.T, ds.sensor_size) == (10, 8, (32, 32, 2))
    small = ESDigits("test", size=16, transform=lambda f: f.sum(0))
    assert small[0][0].shape == (2, 16, 16)
    assert ds.spec.kind == "frames" and ds.spec.num_classes == 10
    assert ds.spec.sample_shape == tuple(x.shape) == (8, 2, 32, 32)
    assert ESDigits("val", size=16).spec.sample_shape == (8, 2, 16, 16)


def test_every_sample_has_events_and_events_match_frames(splits):
    for ds in splits.values():
        counts = ds.frames.sum(dim=(1, 2, 3, 4))
        assert counts.min() > 0
        assert not len(ds.discarded)
    ds = splits["val"]
    ev = ds.events(3)
    assert ev.dtype == EVENT_DTYPE and ev.sensor_size == (32, 32, 2)
    assert len(ev) == int(ds.frames[3].sum())
    assert ev["t"].min() >= 1 and ev["t"].max() <= 8 and np.all(np.diff(ev["t"]) >= 0)
    rebuilt = np.zeros((8, 2, 32, 32), np.float32)
    rebuilt[ev["t"] - 1, ev["p"], ev["y"], ev["x"]] = 1
    np.testing.assert_array_equal(rebuilt, ds.frames[3].numpy())


def test_frames_equal_single_image_odg():
    # one digit converted on its own with odg(): same events as the vectorised build
    from sklearn.datasets import load_digits

    img = load_digits().images[17].astype(np.float32) / 16
    v = np.clip(upscale(img[None], 32), 0, 1)[0]
    pos, neg = to_pos_neg(odg(v, crop=None))  # odg returns an EventArray
    frames = esdigits_frames()[0][17]
    assert frames.sum() == len(pos) + len(neg)
    assert np.all(frames[pos[:, 2] - 1, 1, pos[:, 0] - 1, pos[:, 1] - 1] == 1)
    assert np.all(frames[neg[:, 2] - 1, 0, neg[:, 0] - 1, neg[:, 1] - 1] == 1)


def test_upscale_rules():
    x = np.array([[[0.0, 1.0]]], np.float32).repeat(2, axis=1)  # [1, 2, 2]
    np.testing.assert_array_equal(upscale(x, 4, "nearest")[0, 0], [0, 0, 1, 1])
    np.testing.assert_allclose(upscale(x, 4, "bilinear")[0, 0], [0, 0.25, 0.75, 1])
    with pytest.raises(ValueError, match="interpolation"):
        upscale(x, 4, "cubic")


def test_min_events_discards_are_reported():
    with pytest.warns(UserWarning, match="discards"):
        ds = ESDigits("val", min_events=1100)
    assert len(ds) + len(ds.discarded) == 269
    assert len(ds.discarded) > 0
    assert float(ds.frames.sum(dim=(1, 2, 3, 4)).min()) >= 1100
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ESDigits("val", min_events=0)


def test_build_is_fast_and_cached():
    key_size = 20  # a size no other test uses: forces a fresh conversion
    t0 = time.perf_counter()
    f1, _ = esdigits_frames(key_size)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    f2, _ = esdigits_frames(key_size)
    assert f1 is f2 and time.perf_counter() - t0 < 0.01
    assert first < 3.0  # measured about 0.2 s for all 1,797 digits on 2 cores


def test_events_carry_the_digit(splits):
    from sklearn.linear_model import RidgeClassifier
    from sklearn.neighbors import NearestCentroid

    def features(ds):  # 8x8 spatial sum pooling per step and polarity -> 8*2*4*4 = 256
        f = ds.frames.numpy().reshape(len(ds), 8, 2, 4, 8, 4, 8).sum(axis=(4, 6))
        return f.reshape(len(ds), -1)

    xtr, ytr = features(splits["train"]), splits["train"].labels.numpy()
    xva, yva = features(splits["val"]), splits["val"].labels.numpy()
    ridge = RidgeClassifier(alpha=10.0).fit(xtr, ytr).score(xva, yva)
    with warnings.catch_warnings():  # sklearn warns about always-zero border features
        warnings.simplefilter("ignore", UserWarning)
        centroid = NearestCentroid().fit(xtr, ytr).score(xva, yva)
    # measured on this split (seed 0): ridge 0.970, nearest centroid 0.914, shuffled 0.145
    assert ridge > 0.93
    assert centroid > 0.85
    shuffled = np.random.default_rng(0).permutation(ytr)
    chance = RidgeClassifier(alpha=10.0).fit(xtr, shuffled).score(xva, yva)
    assert chance < 0.3
