"""Readable reference of the frame-counting operator: validate, sort, slice, ``np.add.at``.

Slow (``np.add.at`` is unbuffered) but short enough to check by eye; every other backend is
tested against it (``tests/test_ops.py``).
"""

from __future__ import annotations

import numpy as np

from ._shared import (
    Ranges,
    SensorSize,
    checked_ranges,
    event_error,
    first_bad,
    is_sorted,
    smallest_uint,
)


def _validate(ev: np.ndarray, lo: int, hi: int, size: SensorSize) -> None:
    i = first_bad(ev, lo, hi, size)
    if i >= 0:
        raise event_error(ev, i, size)


def frames_reference(
    events: np.ndarray,
    ranges: Ranges,
    sensor_size: SensorSize,
    *,
    by_time: bool,
    check_all: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Count events into frames (the contract every backend of ``frames`` implements).

    Args:
        events: structured ``[N]`` EVENT_DTYPE records (any stride).
        ranges: ``ranges(t) -> (start [J], stop [J])``, the events ``start[j]..stop[j]-1`` of
            frame ``j``; ``start``/``stop`` non-decreasing, without gaps between frames
            (``start[j+1] <= stop[j]``); frames may overlap or be empty.
        sensor_size: ``(W, H, P)``; ``P == 1`` merges the polarities into channel 0.
        by_time: the ranges read the timestamps, so they are computed on the events stably
            sorted by ``t`` (sorted only when not already non-decreasing).
        check_all: validate every event (in input order) against the sensor; otherwise only the
            events from the first frame's start to the last frame's stop (in the order used for
            slicing), and only when some frame is non-empty.

    Returns:
        ``(events, start, stop, counts)``: the events in the order the ranges refer to (the
        input itself when no sort was needed), the ranges (intp), and the counts
        ``[J, P*H*W]`` in the smallest unsigned dtype that holds the longest frame's length.

    Raises:
        ValueError: naming the lowest-index event outside the sensor among those validated
            (x checked before y before p).
    """
    ev = events
    w, h, p = sensor_size
    if check_all:
        _validate(ev, 0, ev.shape[0], sensor_size)
    if by_time and not is_sorted(ev["t"]):
        ev = ev[np.argsort(ev["t"], kind="stable")]
    lo, hi = checked_ranges(ranges, ev["t"])
    lengths = hi - lo
    longest = int(lengths.max()) if lengths.size else 0
    counts = np.zeros((lo.shape[0], p * h * w), dtype=smallest_uint(longest))
    if longest == 0:
        return ev, lo, hi, counts
    if not check_all:
        _validate(ev, int(lo.min()), int(hi.max()), sensor_size)
    # event index and frame index of every (frame, event) membership
    frame = np.repeat(np.arange(lo.shape[0]), lengths)
    first = np.cumsum(lengths) - lengths
    member = np.arange(int(lengths.sum())) - np.repeat(first - lo, lengths)
    sel = ev[member]
    pol = sel["p"].astype(np.intp) if p > 1 else np.zeros(sel.shape[0], np.intp)
    pixel = (pol * h + sel["y"].astype(np.intp)) * w + sel["x"].astype(np.intp)
    np.add.at(counts, (frame, pixel), 1)
    return ev, lo, hi, counts
