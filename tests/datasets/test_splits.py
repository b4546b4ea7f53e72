"""Split indices are pinned: moving both old stratified splitters onto one helper
(spikeloom.datasets.splits) must not move a single sample between train, val and test.

The hashes below were computed with the code before the merge (``esdigits.split_indices`` and
``neuromorphic.stratified_split``).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from spikeloom.datasets.esdigits import esdigits_frames, split_indices
from spikeloom.datasets.neuromorphic import stratified_split

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
