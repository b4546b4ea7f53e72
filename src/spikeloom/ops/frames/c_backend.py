"""The ``c`` backend of the frame-counting operator: one pass over the packed event records.

It wraps the optional extension ``spikeloom.ops.frames._speedups`` (``_speedups.c``, built by
``setup.py`` when a C compiler is available). :data:`speedups` is ``None`` when the extension
is not built; :func:`unavailable_reason` then says so and the dispatcher skips this backend.
"""

from __future__ import annotations

import numpy as np

from ._shared import (
    Ranges,
    SensorSize,
    as_ranges,
    checked_ranges,
    event_error,
    frame_buffer,
    ranges_ok,
)

try:  # optional C kernels (built by setup.py when a compiler is available)
    from . import _speedups as speedups
except ImportError as _exc:  # pragma: no cover - depends on the build
    speedups = None
    _IMPORT_ERROR: str | None = str(_exc)
else:
    _IMPORT_ERROR = None


def unavailable_reason() -> str | None:
    """``None`` when the extension imports, else why the ``c`` backend cannot run."""
    if speedups is not None:
        return None
    why = f" ({_IMPORT_ERROR})" if _IMPORT_ERROR else ""
    return (
        f"the C extension spikeloom.ops.frames._speedups is not built{why}; reinstall with a "
        f"C compiler (pip install -e .) or use the numpy backend"
    )


def _kernel(ev: np.ndarray, lo: np.ndarray, hi: np.ndarray, size: SensorSize, out: np.ndarray,
            check_order: bool = False) -> tuple[int, int]:
    w, h, p = size
    return speedups.count_frames(
        ev,
        np.ascontiguousarray(lo, dtype=np.int64),
        np.ascontiguousarray(hi, dtype=np.int64),
        w,
        h,
        p,
        out,
        check_order,
    )


def count_ranges(
    ev: np.ndarray, lo: np.ndarray, hi: np.ndarray, sensor_size: SensorSize
) -> np.ndarray:
    """Counts ``[J, P*H*W]`` of fixed ranges, one pass over the events of each frame.

    Validates the events of the frames; the C loop returns the first bad event in frame order,
    which is the lowest bad index because the ranges are non-decreasing without gaps.
    """
    w, h, p = sensor_size
    out = frame_buffer(lo, hi, p * h * w)
    if not out.size or not int((hi - lo).max()):
        return out
    bad, _ = _kernel(ev, lo, hi, sensor_size, out)
    if bad >= 0:
        raise event_error(ev, bad, sensor_size)
    return out


def _count_sorted(
    ev: np.ndarray, lo: np.ndarray, hi: np.ndarray, size: SensorSize, check_all: bool
) -> np.ndarray | None:
    """Counts ``[J, P*H*W]`` if ``t`` is non-decreasing over all events and no validated
    event is out of range (all events with ``check_all``, else those of the frames);
    ``None`` otherwise (also when the ranges, computed on maybe unsorted times, are unusable)."""
    n = ev.shape[0]
    w, h, p = size
    if not ranges_ok(lo, hi, n):
        return None
    out = frame_buffer(lo, hi, p * h * w)
    rest: tuple[tuple[int, int], ...] = ((0, n),)
    if out.size and int((hi - lo).max()):
        a, b = int(lo[0]), int(hi[-1])
        bad, unsorted = _kernel(ev, lo, hi, size, out, True)
        if bad >= 0 or unsorted >= 0:
            return None
        # events before and after the frames; count_frames checked the pair (a-1, a)
        rest = ((0, a), (max(b - 1, 0), n))
    for s, e in rest:
        if e > s:
            unsorted, bad = speedups.scan_events(ev, s, e, w, h, p)
            if unsorted >= 0 or (check_all and bad >= 0):
                return None
    return out


def frames_c(
    events: np.ndarray,
    ranges: Ranges,
    sensor_size: SensorSize,
    *,
    by_time: bool,
    check_all: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """C backend; same contract as :func:`~spikeloom.ops.frames.reference.frames_reference`.

    Time slicing is optimistic: slice as if ``t`` were sorted, then count with the order check
    inside the counting loop; the few events outside every frame are checked by
    ``scan_events``. Any problem (unsorted input, an out-of-range event) discards the counts
    and takes the robust route: one scan over all events in input order, a stable sort if
    needed, slicing, counting (which raises the range error of the frames' events).
    """
    ev = events
    n = ev.shape[0]
    w, h, p = sensor_size
    if by_time:
        lo, hi = as_ranges(ranges, ev["t"])
        counts = _count_sorted(ev, lo, hi, sensor_size, check_all)
        if counts is not None:
            return ev, lo, hi, counts
    if n and (by_time or check_all):
        unsorted_at, bad_at = speedups.scan_events(ev, 0, n, w, h, p)
        if check_all and bad_at >= 0:
            raise event_error(ev, bad_at, sensor_size)
        if by_time and unsorted_at >= 0:
            ev = ev[np.argsort(ev["t"], kind="stable")]
    lo, hi = checked_ranges(ranges, ev["t"])
    return ev, lo, hi, count_ranges(ev, lo, hi, sensor_size)
