"""The ``numpy`` backend of the frame-counting operator: vectorised, no compiler needed.

One chunked pass computes the pixel indices, the range checks and (for time slicing) the order
check; counting then picks one of three strategies by density: one ``bincount`` per frame
(dense frames), one ``bincount`` per group of consecutive frames (moderately sparse), or a sort
with ``np.unique`` (very sparse, e.g. thousands of short windows).
"""

from __future__ import annotations

import numpy as np

from ._shared import (
    Ranges,
    SensorSize,
    checked_ranges,
    frame_buffer,
    is_sorted,
    pixel_index,
    range_error,
)


def _count_contiguous(
    idx: np.ndarray, lo: np.ndarray, hi: np.ndarray, out: np.ndarray, used_lo: int
) -> np.ndarray:
    """Counts of frames that are consecutive index ranges (``lo[j+1] == hi[j]``).

    A per-event frame offset turns all frames into one index space, counted at once.
    """
    n_frames, phw = out.shape
    n_used = idx.shape[0]
    offsets = np.repeat(np.arange(n_frames, dtype=np.intp) * phw, hi - lo)
    if n_frames * phw > 16 * n_used:
        # very sparse: sort-based counting costs O(N log N) and touches only the non-zero
        # cells, instead of O(J * PHW) for bincount's dense int64 output
        cells, counts = np.unique(idx + offsets, return_counts=True)
        out.reshape(-1)[cells] = counts
        return out
    # moderately sparse: one bincount per group of frames (int64 buffer <= 8 MB) instead of
    # one length-PHW bincount per frame
    group = max(1, (1 << 20) // phw)
    for g0 in range(0, n_frames, group):
        g1 = min(n_frames, g0 + group)
        a, b = int(lo[g0]) - used_lo, int(hi[g1 - 1]) - used_lo
        if b > a:
            sub = idx[a:b] + (offsets[a:b] - g0 * phw)
            out[g0:g1] = np.bincount(sub, minlength=(g1 - g0) * phw).reshape(g1 - g0, phw)
    return out


def count_ranges(
    ev: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    sensor_size: SensorSize,
    idx_all: np.ndarray | None = None,
) -> np.ndarray:
    """Per-frame pixel counts ``[J, P*H*W]`` for fixed ranges (dtype from ``frame_buffer``).

    ``idx_all``: pixel indices of all events when already computed, x/y-checked (else
    computed here for the events from ``lo.min()`` to ``hi.max()``). Validated events: all of
    them when ``idx_all`` is given, else those of ``lo.min()..hi.max()-1``; an error names the
    first bad one.
    """
    w, h, p = sensor_size
    phw = p * h * w
    n_frames = lo.shape[0]
    out = frame_buffer(lo, hi, phw)
    if idx_all is not None and p > 1:
        # polarities of the events outside every frame (those inside are checked below)
        used = (int(lo.min()), int(hi.max())) if n_frames else (0, 0)
        for part in (idx_all[: used[0]], idx_all[used[1] :]):
            if part.size and int(part.max()) >= phw:
                raise range_error(ev, 0, ev.shape[0], sensor_size)
    if not out.size or not int((hi - lo).max()):
        return out
    used_lo, used_hi = int(lo.min()), int(hi.max())
    if idx_all is None:
        idx = pixel_index(ev, used_lo, used_hi, sensor_size)[0]
        chk_lo, chk_hi = used_lo, used_hi
    else:
        idx = idx_all[used_lo:used_hi]
        chk_lo, chk_hi = 0, ev.shape[0]
    contiguous = n_frames > 1 and bool((lo[1:] == hi[:-1]).all())
    if contiguous and idx.shape[0] < n_frames * phw:
        # sparse frames (fewer events than frame cells)
        if p > 1 and idx.max() >= phw:
            raise range_error(ev, chk_lo, chk_hi, sensor_size)
        return _count_contiguous(idx, lo, hi, out, used_lo)
    for j in range(n_frames):
        a, b = int(lo[j]) - used_lo, int(hi[j]) - used_lo
        if b <= a:
            continue
        c = np.bincount(idx[a:b], minlength=phw)
        if c.shape[0] != phw:
            raise range_error(ev, chk_lo, chk_hi, sensor_size)
        out[j] = c
    return out


def frames_numpy(
    events: np.ndarray,
    ranges: Ranges,
    sensor_size: SensorSize,
    *,
    by_time: bool,
    check_all: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """numpy backend; same contract as :func:`~spikeloom.ops.frames.reference.frames_reference`.

    With ``check_all`` the index pass, the x/y checks and the order check share one sweep over
    the records, and the indices are reordered with the events instead of recomputed.
    """
    ev = events
    n = ev.shape[0]
    w, h, p = sensor_size
    idx_all = None
    in_order = True
    if check_all:
        idx_all, in_order = pixel_index(ev, 0, n, sensor_size, check_time=by_time)
        if not in_order and p > 1 and n and int(idx_all.max()) >= p * h * w:
            raise range_error(ev, 0, n, sensor_size)  # polarity, before reordering
    elif by_time:
        in_order = is_sorted(ev["t"])
    if not in_order:
        order = np.argsort(ev["t"], kind="stable")
        ev = ev[order]
        idx_all = None if idx_all is None else idx_all[order]
    lo, hi = checked_ranges(ranges, ev["t"])
    return ev, lo, hi, count_ranges(ev, lo, hi, sensor_size, idx_all)
