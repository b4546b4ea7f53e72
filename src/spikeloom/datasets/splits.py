"""Stratified splits: the one helper behind every dataset's train/val/test indices.

:func:`stratified_parts` cuts each class's members, permuted with one seeded generator, into
consecutive parts of per-class sizes given by fractions. Two rounding rules keep the splits of
the datasets exactly as they were:

* ``"largest_remainder"`` (event datasets, :func:`stratified_split`): every part but the last
  gets ``floor(f * n_c)`` per class plus one for the classes with the largest fractional parts,
  so that its total is exactly ``round(f * N)``;
* ``"round"`` (ES-Digits, :func:`split_indices`): every part but the last gets
  ``round(f * n_c)`` per class (Python rounding, half to even), capped by what is left.

The last part always takes the rest of each class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

__all__ = ["Rounding", "split_indices", "stratified_parts", "stratified_split"]

Rounding = Literal["largest_remainder", "round"]


def _largest_remainder(f: float, counts: np.ndarray, room: np.ndarray) -> np.ndarray:
    """Per-class counts ``[K]`` summing to ``floor(f * N + 0.5)``, each at most ``room``."""
    quota = f * counts
    k = np.floor(quota).astype(np.int64)
    extra = int(np.floor(f * counts.sum() + 0.5)) - int(k.sum())
    if extra > 0:
        frac = quota - k
        rank = np.lexsort((np.arange(counts.size), -frac))  # largest fraction, then class
        rank = rank[(k < room)[rank]][:extra]
        k[rank] += 1
    return np.minimum(k, room)


def _part_sizes(fractions: Sequence[float], counts: np.ndarray, rounding: Rounding) -> np.ndarray:
    """Sizes ``[P, K]`` of each part per class; the last part takes the rest."""
    sizes = np.zeros((len(fractions), counts.size), dtype=np.int64)
    left = counts.astype(np.int64).copy()
    for j, f in enumerate(fractions[:-1]):
        if rounding == "largest_remainder":
            sizes[j] = _largest_remainder(float(f), counts, left)
        else:
            sizes[j] = np.minimum([int(round(float(f) * int(n))) for n in counts], left)
        left -= sizes[j]
    sizes[-1] = left
    return sizes


def stratified_parts(
    labels: Sequence[int] | np.ndarray,
    fractions: Sequence[float],
    seed: int,
    *,
    rounding: Rounding = "largest_remainder",
) -> tuple[np.ndarray, ...]:
    """Seeded stratified split of positions ``0..N-1`` into ``len(fractions)`` parts.

    For each class (ascending), its positions (ascending) are permuted with one
    ``numpy.random.default_rng(seed)`` generator, drawn class after class, and cut into
    consecutive parts whose per-class sizes follow ``fractions`` and ``rounding`` (see the
    module docstring); the last part takes the rest.

    Args:
        labels: ``[N]`` integer labels.
        fractions: one share per part (the last one only names the part: it gets the rest).
        seed: the generator seed.
        rounding: ``"largest_remainder"`` or ``"round"``.

    Returns:
        One sorted int64 position array per part; disjoint, together ``0..N-1``.
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D [N], got shape {y.shape}")
    if rounding not in ("largest_remainder", "round"):
        raise ValueError(f"rounding must be 'largest_remainder' or 'round', got {rounding!r}")
    if y.shape[0] == 0:
        return tuple(np.zeros(0, np.int64) for _ in fractions)
    order = np.argsort(y, kind="stable")
    _, starts, counts = np.unique(y[order], return_index=True, return_counts=True)
    sizes = _part_sizes(list(fractions), counts, rounding)
    rng = np.random.default_rng(int(seed))
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for c, (s, n) in enumerate(zip(starts.tolist(), counts.tolist())):  # classes, not samples
        members = order[s : s + n][rng.permutation(n)]
        cuts = np.cumsum(sizes[:, c])[:-1]
        for j, piece in enumerate(np.split(members, cuts)):
            parts[j].append(piece)
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) for p in parts)


def stratified_split(
    labels: Sequence[int] | np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified ``(train, val)`` split of the event datasets.

    The first ``k_c`` permuted members of each class go to validation, ``k_c`` by the
    largest-remainder rule so that the total is ``round(val_fraction * N)``
    (:func:`stratified_parts` with ``rounding="largest_remainder"``).

    Args:
        labels: ``[N]`` integer labels.
        val_fraction: in ``[0, 1)``.
        seed: the generator seed.

    Returns:
        ``(train, val)``: sorted int64 position arrays, disjoint, together ``0..N-1``.
    """
    f = float(val_fraction)
    if not 0.0 <= f < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    val, train = stratified_parts(labels, (f, 1.0 - f), seed, rounding="largest_remainder")
    return train, val


def split_indices(
    labels: np.ndarray,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.70, 0.15, 0.15),
) -> dict[str, np.ndarray]:
    """Stratified train/val/test positions (sorted) of ES-Digits.

    Per class with ``n`` samples, after the seeded permutation: the first ``round(f_train * n)``
    go to train, the next ``round(f_val * n)`` to val, the rest to test
    (:func:`stratified_parts` with ``rounding="round"``).
    """
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or (f < 0).any() or abs(f.sum() - 1.0) > 1e-9:
        raise ValueError(f"fractions must be 3 non-negative numbers summing to 1, got {fractions}")
    parts = stratified_parts(labels, tuple(f.tolist()), seed, rounding="round")
    return dict(zip(("train", "val", "test"), parts))
