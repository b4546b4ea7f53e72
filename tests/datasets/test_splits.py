"""Split indices are pinned: moving both old stratified splitters onto one helper
(spikeloom.datasets.splits) must not move a single sample between train, val and test.

The hashes below were computed with the code before the merge (``esdigits.split_indices`` and
``neuromorphic.stratified_split``).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from spikeloom.datasets.base import default_frames
from spikeloom.datasets.esdigits import esdigits_frames, split_indices
from spikeloom.datasets.neuromorphic import stratified_split
from spikeloom.datasets.splits import stratified_parts
from spikeloom.events.transforms import Compose, Downsample, ToFrame

TRAIN_COUNTS = [97, 116, 99, 93, 105, 92, 94, 117, 87, 100]


def _digest(*arrays: np.ndarray) -> str:
    m = hashlib.sha256()
    for a in arrays:
        m.update(np.asarray(a, dtype=np.int64).tobytes())
        m.update(b"|")
    return m.hexdigest()[:16]


def _nmnist_like_labels() -> np.ndarray:
    labels = np.repeat(np.arange(10), TRAIN_COUNTS)
    np.random.default_rng(5).shuffle(labels)
    return labels


@pytest.mark.parametrize(
    "seed, fractions, digest, first_val",
    [
        (0, (0.70, 0.15, 0.15), "63f67f14c45e32b1", [7, 13, 18, 29, 45, 58, 66, 70, 86, 96]),
        (1, (0.70, 0.15, 0.15), "2ff75c6d6f2311f4", [0, 5, 8, 18, 21, 27, 37, 42, 54, 58]),
        (7, (0.70, 0.15, 0.15), "1aae6a5abdfb2ebc", [0, 4, 6, 11, 25, 30, 31, 37, 47, 51]),
        (3, (0.50, 0.25, 0.25), "cb2480e7fe101163", None),
    ],
)
def test_esdigits_split_is_pinned(seed, fractions, digest, first_val) -> None:
    d = split_indices(esdigits_frames()[1], seed, fractions)
    assert _digest(d["train"], d["val"], d["test"]) == digest
    if first_val is not None:
        assert d["val"][:10].tolist() == first_val


@pytest.mark.parametrize(
    "val_fraction, seed, digest, first_val",
    [
        (0.1, 0, "86c15652903467fd", [15, 20, 32, 41, 45, 49, 51, 53, 63, 64]),
        (0.1, 1, "ccc6178d6f78492b", [4, 9, 25, 50, 60, 63, 66, 67, 78, 79]),
        (0.25, 3, "48cc4ea421bea423", [1, 3, 7, 11, 16, 19, 32, 37, 41, 42]),
        (0.5, 2, "f2678abb78e0b609", [0, 1, 2, 9, 10, 12, 13, 15, 16, 18]),
        (0.34, 0, "abd4465a0004ea58", [2, 5, 8, 10, 13, 14, 15, 16, 19, 20]),
    ],
)
def test_event_dataset_split_is_pinned(val_fraction, seed, digest, first_val) -> None:
    tr, va = stratified_split(_nmnist_like_labels(), val_fraction, seed)
    assert _digest(tr, va) == digest and va[:10].tolist() == first_val


@pytest.mark.parametrize("val_fraction, seed, digest", [(0.2, 0, "4ed4509ab0ef0078"),
                                                        (0.1, 4, "49d2e18e23ce808a")])
def test_ragged_classes_split_is_pinned(val_fraction, seed, digest) -> None:
    labels = np.random.default_rng(9).integers(0, 7, 53)
    assert _digest(*stratified_split(labels, val_fraction, seed)) == digest


def test_one_helper_with_a_rounding_option() -> None:
    labels = _nmnist_like_labels()
    val, train = stratified_parts(labels, (0.1, 0.9), 0, rounding="largest_remainder")
    tr, va = stratified_split(labels, 0.1, 0)
    np.testing.assert_array_equal(val, va)
    np.testing.assert_array_equal(train, tr)
    digits = esdigits_frames()[1]
    parts = stratified_parts(digits, (0.7, 0.15, 0.15), 0, rounding="round")
    d = split_indices(digits, 0)
    for name, part in zip(("train", "val", "test"), parts):
        np.testing.assert_array_equal(part, d[name])
    # the rules differ: 0.15 * 183 = 27.45 rounds to 27 per class, but the largest remainder
    # gives some classes one more so that the total is round(0.15 * 1797) = 270
    lr = stratified_parts(digits, (0.15, 0.85), 0)
    assert lr[0].size == 270 and parts[1].size == 269
    with pytest.raises(ValueError, match="rounding"):
        stratified_parts(digits, (0.5, 0.5), 0, rounding="floor")
    assert [p.size for p in stratified_parts([], (0.5, 0.5), 0)] == [0, 0]


def test_default_frames_helper_builds_the_old_pipelines() -> None:
    assert default_frames(12) == ToFrame(n_time_bins=12)
    assert default_frames(10, downsample=4) == Compose((Downsample(4), ToFrame(n_time_bins=10)))
    assert default_frames(60, downsample=4, dt_us=1000) == Compose(
        (Downsample(4), ToFrame(time_window=1000, n_frames=60))
    )
    shd = default_frames(100, dt_us=10_000, start_time=0)
    assert shd == ToFrame(time_window=10_000, n_frames=100, start_time=0)
    assert shd.cache_key() == ToFrame(time_window=10_000, n_frames=100, start_time=0).cache_key()
