"""Pieces shared by every backend of the frame-counting operator.

The counter dtype rule, the pixel index ``p*H*W + y*W + x`` and the out-of-range error messages
live here once, so that all backends produce identical frames, dtypes and errors. This module
imports nothing from :mod:`spikeloom.events` (the events package imports the operator).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SensorSize = tuple[int, int, int]
Ranges = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``ranges(t)``: per-frame event index ranges ``(start [J], stop [J])`` for timestamps ``t``."""

CHUNK = 16384
"""Events per chunk in the pixel-index pass: the chunk's records (13 B each) and temporaries
stay in the L2 cache, so each record is fetched from memory once instead of once per field."""

_UINTS = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.uint32), np.dtype(np.uint64))


def smallest_uint(max_value: int) -> np.dtype:
    """The narrowest unsigned integer dtype that holds ``max_value``."""
    for d in _UINTS:
        if max_value <= np.iinfo(d).max:
            return d
    raise OverflowError(f"count {max_value} exceeds uint64")  # pragma: no cover


def frame_buffer(lo: np.ndarray, hi: np.ndarray, phw: int) -> np.ndarray:
    """Zeroed counts ``[J, P*H*W]`` in the smallest uint able to hold the longest frame's
    length, the largest count any pixel can reach (so no overflow is possible)."""
    bound = int((hi - lo).max()) if lo.shape[0] else 0
    return np.zeros((lo.shape[0], phw), dtype=smallest_uint(bound))


def as_ranges(ranges: Ranges, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ranges(t)`` as two intp vectors ``(lo, hi)`` of equal length (not range-checked)."""
    lo, hi = ranges(t)
    lo = np.asarray(lo, dtype=np.intp).reshape(-1)
    hi = np.asarray(hi, dtype=np.intp).reshape(-1)
    if lo.shape != hi.shape:
        raise ValueError(f"start and stop must have the same length, got {lo.shape} and {hi.shape}")
    return lo, hi


def ranges_ok(lo: np.ndarray, hi: np.ndarray, n: int) -> bool:
    """Whether the ranges satisfy the operator's contract on ``n`` events: ``0 <= lo <= hi
    <= n``, ``lo`` and ``hi`` non-decreasing and no gap (``lo[j+1] <= hi[j]``)."""
    if not lo.size:
        return True
    return bool(
        lo[0] >= 0
        and hi[-1] <= n
        and (lo <= hi).all()
        and (lo[1:] >= lo[:-1]).all()
        and (hi[1:] >= hi[:-1]).all()
        and (lo[1:] <= hi[:-1]).all()
    )


def checked_ranges(ranges: Ranges, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`as_ranges`, raising ValueError when they break the contract of :func:`ranges_ok`."""
    lo, hi = as_ranges(ranges, t)
    if not ranges_ok(lo, hi, t.shape[0]):
        raise ValueError(
            f"frame ranges must satisfy 0 <= start <= stop <= N = {t.shape[0]}, be "
            f"non-decreasing and leave no gap (start[j+1] <= stop[j])"
        )
    return lo, hi


def is_sorted(t: np.ndarray) -> bool:
    """True when ``t`` is non-decreasing (works on strided field views, no copy)."""
    return t.shape[0] < 2 or not bool(np.any(t[1:] < t[:-1]))


def event_error(ev: np.ndarray, i: int, size: SensorSize, use_p: bool = True) -> ValueError:
    """The error for event ``i``, naming its first out-of-range field (x, then y, then p)."""
    w, h, p = size
    x, y, pol = int(ev["x"][i]), int(ev["y"][i]), int(ev["p"][i])
    hint = "pass the right sensor_size or crop/filter the events first"
    if x >= w:
        return ValueError(f"event {i} has x={x} >= W={w} (sensor_size {size}); {hint}")
    if y >= h:
        return ValueError(f"event {i} has y={y} >= H={h} (sensor_size {size}); {hint}")
    if use_p and p > 1 and pol >= p:
        return ValueError(
            f"event {i} has p={pol} >= P={p} (sensor_size {size}); polarities must be 0 "
            f"(OFF) or 1 (ON) for P=2, or use P=1 to merge them"
        )
    raise AssertionError(f"event {i} is inside sensor_size {size}")  # pragma: no cover


def first_bad(ev: np.ndarray, lo: int, hi: int, size: SensorSize, use_p: bool = True) -> int:
    """Index of the first event of ``lo..hi-1`` outside the sensor, or -1."""
    w, h, p = size
    bad = ev["x"][lo:hi] >= w
    bad |= ev["y"][lo:hi] >= h
    if use_p and p > 1:
        bad |= ev["p"][lo:hi] >= p
    i = int(np.argmax(bad)) if bad.size else 0
    return lo + i if bad.size and bad[i] else -1


def range_error(
    ev: np.ndarray, lo: int, hi: int, size: SensorSize, use_p: bool = True
) -> ValueError:
    """The error for the first out-of-range event in ``lo..hi-1`` (cold path, one must exist).

    Every backend reports the first bad event (lowest index) of the range of events it
    validates, so all raise the same message.
    """
    return event_error(ev, first_bad(ev, lo, hi, size, use_p), size, use_p)


def pixel_index(
    ev: np.ndarray,
    lo: int,
    hi: int,
    sensor_size: SensorSize,
    *,
    use_p: bool = True,
    check_time: bool = False,
) -> tuple[np.ndarray, bool]:
    """``p*H*W + y*W + x`` (intp ``[hi - lo]``) for events ``lo..hi-1``, with x/y range checks.

    Works chunk by chunk so that the strided field reads hit the cache (see :data:`CHUNK`); the
    range checks run on the contiguous intermediates (an error names the first bad event of
    ``lo..hi-1``, see :func:`range_error`). With ``check_time`` it also tells whether
    ``t[lo:hi]`` is non-decreasing (the records are in cache then, which is cheaper than a
    separate pass); otherwise the flag is True. Polarity is checked by the caller (indices
    ``>= P*H*W``, e.g. through the length of the ``bincount`` result).
    """
    w, h, p = sensor_size
    n = hi - lo
    out = np.empty(n, dtype=np.intp)
    if n == 0:
        return out, True
    xs_all, ys_all, ps_all, ts_all = ev["x"], ev["y"], ev["p"], ev["t"]
    tmp = np.empty(min(n, CHUNK), dtype=np.intp)
    less = np.empty(min(n, CHUNK), dtype=bool) if check_time else None
    hw = h * w
    in_order = True
    prev_t = ts_all[lo]
    for s in range(lo, hi, CHUNK):
        e = min(hi, s + CHUNK)
        o = out[s - lo : e - lo]
        a = tmp[: e - s]
        np.multiply(ys_all[s:e], w, out=o, dtype=np.intp)
        np.copyto(a, xs_all[s:e])
        if o.max() >= hw or a.max() >= w:
            raise range_error(ev, lo, hi, sensor_size, use_p)
        o += a
        if use_p and p > 1:
            np.multiply(ps_all[s:e], hw, out=a, dtype=np.intp)
            o += a
        if less is not None and in_order:
            ts = ts_all[s:e]
            m = less[: e - s - 1]
            np.less(ts[1:], ts[:-1], out=m)
            in_order = not (ts[0] < prev_t or m.any())
            prev_t = ts[-1]
    return out, in_order
