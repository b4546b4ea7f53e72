"""Events to dense tensors: count frames (:func:`to_frame`) and voxel grids (:func:`to_voxel_grid`).

Frames are ``[T, P, H, W]`` with channel index = polarity value (0 = OFF, 1 = ON); a sensor with
``P == 1`` merges both polarities into channel 0. Slicing into ``T`` frames is done by a slicer
of :mod:`spikeloom.events.slicing`, counting by the frame-counting operator
:mod:`spikeloom.ops.frames` (C or numpy backend). This is the one frame builder of the library:
ODG frames (:mod:`spikeloom.events.odg`) are built with it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ..ops.frames import count_frames
from ..ops.frames._shared import pixel_index, smallest_uint
from ._checks import INT64_MIN, check_events, int_param, require_sensor_size
from .slicing import SliceByEventBins, SliceByEventCount, SliceByTime, SliceByTimeBins, Slicer

__all__ = ["frame_slicer", "to_frame", "to_voxel_grid"]


def dtype_capacity(dtype: np.dtype) -> int:
    """Largest count ``dtype`` represents exactly (integers: max; floats: ``2**(mant+1)``)."""
    if dtype.kind in "ui":
        return int(np.iinfo(dtype).max)
    if dtype.kind == "f":
        return 2 ** (np.finfo(dtype).nmant + 1)
    raise TypeError(
        f"frame dtype must be an integer or float type, got {dtype}; for binary frames use "
        f"`frames > 0` on the counts"
    )


def normalise_dtype(dtype: Any) -> np.dtype | None:
    """``None`` or a numpy dtype that can hold counts (raises for bool, complex, ...)."""
    if dtype is None:
        return None
    d = np.dtype(dtype)
    dtype_capacity(d)
    return d


def _finish_dtype(counts: np.ndarray, forced: np.dtype | None) -> np.ndarray:
    """Counts in ``forced`` (checked to be exact) or in the smallest uint holding the max."""
    if forced is None:
        if counts.dtype.itemsize > 1:
            best = smallest_uint(int(counts.max()))
            if best.itemsize < counts.dtype.itemsize:
                counts = counts.astype(best)
        return counts
    cap = dtype_capacity(forced)
    if np.iinfo(counts.dtype).max > cap and counts.size:
        m = int(counts.max())
        if m > cap:
            raise OverflowError(
                f"a pixel holds {m} events but dtype {forced} represents counts only up to "
                f"{cap} exactly; use a wider dtype or dtype=None (automatic)"
            )
    return counts.astype(forced, copy=False)


def frame_slicer(
    *,
    time_window: Any = None,
    n_time_bins: Any = None,
    event_count: Any = None,
    n_event_bins: Any = None,
    overlap: Any = 0,
    include_incomplete: bool = True,
    n_frames: Any = None,
    start_time: Any = None,
    time_bins_rule: str = "exact",
) -> Slicer:
    """The slicer that :func:`to_frame`'s keywords describe (validated; see :func:`to_frame`).

    Raises:
        ValueError: not exactly one mode, or options that do not apply to the mode.
        TypeError: a non-integer size.
    """
    given = {
        "time_window": time_window,
        "n_time_bins": n_time_bins,
        "event_count": event_count,
        "n_event_bins": n_event_bins,
    }
    chosen = [k for k, v in given.items() if v is not None]
    if len(chosen) != 1:
        raise ValueError(
            "give exactly one of time_window, n_time_bins, event_count, n_event_bins; got "
            + (", ".join(chosen) if chosen else "none")
        )
    mode = chosen[0]
    size = int_param(given[mode], mode, 1)
    ov = int_param(overlap, "overlap", 0)
    windows = mode in ("time_window", "event_count")
    if ov and not windows:
        raise ValueError(
            f"overlap is not supported with {mode}; use time_window or event_count for "
            f"overlapping windows"
        )
    if n_frames is not None and not windows:
        raise ValueError(f"n_frames only applies to time_window/event_count, not {mode}")
    if start_time is not None:
        if mode not in ("time_window", "n_time_bins"):
            raise ValueError("start_time only applies to time_window and n_time_bins")
        start_time = int_param(start_time, "start_time", INT64_MIN)
    if time_bins_rule not in ("exact", "floor"):
        raise ValueError(f"time_bins_rule must be 'exact' or 'floor', got {time_bins_rule!r}")
    if time_bins_rule != "exact" and mode != "n_time_bins":
        raise ValueError(f"time_bins_rule only applies to n_time_bins, not {mode}")
    if n_frames is not None:
        n_frames = int_param(n_frames, "n_frames", 0)
    if mode == "time_window":
        return SliceByTime(size, ov, include_incomplete, n_frames, start_time)
    if mode == "event_count":
        return SliceByEventCount(size, ov, include_incomplete, n_frames)
    if mode == "n_time_bins":
        return SliceByTimeBins(size, start_time, time_bins_rule)  # type: ignore[arg-type]
    return SliceByEventBins(size)


def _checks_every_event(slicer: Slicer) -> bool:
    """Time slicing that covers the recording (no fixed count, no start time) validates
    every event; otherwise only the events of the frames are validated."""
    return bool(
        slicer.by_time
        and getattr(slicer, "n_slices", None) is None
        and getattr(slicer, "start_time", None) is None
    )


def to_frame(
    events: np.ndarray,
    sensor_size: Sequence[int] | None = None,
    *,
    time_window: int | None = None,
    n_time_bins: int | None = None,
    event_count: int | None = None,
    n_event_bins: int | None = None,
    overlap: int = 0,
    include_incomplete: bool = True,
    n_frames: int | None = None,
    start_time: int | None = None,
    time_bins_rule: Literal["exact", "floor"] = "exact",
    dtype: Any = None,
    slicer: Slicer | None = None,
) -> np.ndarray:
    """Accumulate events into per-pixel count frames ``[T, P, H, W]``.

    Exactly one slicing mode must be given (or a ``slicer``). ``t0`` is ``start_time`` if given,
    else the first timestamp; ``t_last`` is the last timestamp; times are integer µs.

    * ``time_window=dt``: frame ``j`` holds the events with
      ``t0 + j*s <= t < t0 + j*s + dt`` where the stride ``s = dt - overlap`` (``overlap`` in µs,
      ``0 <= overlap < dt``). The frames cover the whole recording: ``T`` is the smallest
      number of windows whose union contains ``[t0, t_last]`` (``T = floor((t_last-t0)/dt) + 1``
      without overlap), so the last event always lands in a frame. With
      ``include_incomplete=False`` only windows lying entirely in ``[t0, t_last]`` (i.e.
      ``end - 1 <= t_last``) are kept, which may drop the tail. ``n_frames=T`` instead fixes
      the number of frames to exactly ``T`` windows from ``t0`` (later events are ignored,
      missing frames are zero), the TA-SNN protocol "first T·dt of the recording".
    * ``n_time_bins=M``: ``M`` frames. ``time_bins_rule="exact"`` (default): equal durations
      spanning ``[t0, t_last]`` inclusive, i.e. ``span = t_last - t0 + 1`` µs and frame
      ``j`` holds ``j*span/M <= t - t0 < (j+1)*span/M`` (exact rational edges, the last event
      counts). ``time_bins_rule="floor"`` (SpikingJelly's rule):
      ``dT = floor((t_last - t0)/M)``, frame ``j`` holds ``t0 + j*dT <= t < t0 + (j+1)*dT``
      and the last frame takes everything from ``t0 + (M-1)*dT`` on.
    * ``event_count=N``: windows of ``N`` consecutive events with a stride of
      ``N - overlap`` events (``overlap`` in events, ``0 <= overlap < N``). By default
      (``include_incomplete=True``) the last, possibly shorter window is kept so that every
      event counts; ``False`` drops incomplete windows. ``n_frames`` fixes the number.
    * ``n_event_bins=M``: ``M`` frames by event index (SpikingJelly's rule): with
      ``B = floor(N/M)``, frame ``j`` holds events ``[j*B, (j+1)*B)`` and the last frame also
      takes the remainder (all events when ``N < M``).
    * ``slicer=``: any slicer of :mod:`spikeloom.events.slicing` (the four modes above are
      :class:`SliceByTime`, :class:`SliceByTimeBins`, :class:`SliceByEventCount`,
      :class:`SliceByEventBins`); no other slicing keyword may be given with it.

    With ``overlap=0`` the frames partition the counted events, so ``frames.sum()`` equals
    the number of events (all of them unless ``n_frames``/``start_time``/
    ``include_incomplete=False`` cut some). With overlap an event is counted once per window
    that contains it. ``overlap`` is not supported with ``n_time_bins``/``n_event_bins``.

    Time modes need non-decreasing timestamps; unsorted input is sorted internally with a
    stable argsort (correct but slower). Events before ``start_time`` are ignored.

    Validation: every event is checked against the sensor size in the time modes without
    ``n_frames``/``start_time``; otherwise (and in the event-index modes) the events of the
    frames are. An error names the first (lowest-index) bad event of those, x before y
    before p for that event; with ``n_frames``/``start_time`` the index refers to the time
    order when the input had to be sorted.

    Speed: counting is the frame operator :mod:`spikeloom.ops.frames`. Its ``c`` backend (the
    optional C extension, built at install when a compiler is present) makes one pass over the
    packed records per frame; the ``numpy`` backend is the fallback.
    ``SPIKELOOM_BACKEND_FRAMES=c|numpy|reference`` forces a backend and
    ``SPIKELOOM_NO_SPEEDUPS=1`` forces numpy; all give identical frames, dtypes and errors.

    Args:
        events: structured array ``[N]`` of EVENT_DTYPE (EventArray or plain).
        sensor_size: ``(W, H, P)``; optional for an EventArray. With ``P == 1`` both
            polarities are merged into channel 0.
        time_window, n_time_bins, event_count, n_event_bins: the slicing mode (one of them).
        overlap: overlap of consecutive windows (µs for time_window, events for event_count).
        include_incomplete: keep the last, incomplete window (time_window/event_count).
        n_frames: fixed number of frames for time_window/event_count (truncate / zero-pad).
        start_time: ``t0`` in µs for the time modes (default: first timestamp).
        time_bins_rule: ``"exact"`` or ``"floor"`` for ``n_time_bins`` (see above).
        dtype: output dtype. ``None`` picks the smallest unsigned integer type that holds the
            largest count (uint8 when all counts <= 255, ...). A forced dtype (integer or float)
            raises :class:`OverflowError` if some count does not fit exactly, never wraps.
            Note: the automatic dtype depends on the data; for datasets that are batched,
            force one (e.g. ``np.uint16`` or ``np.float32``) so all samples agree.
        slicer: a slicer object instead of the slicing keywords.

    Returns:
        ``np.ndarray`` of shape ``[T, P, H, W]``. ``T = 0`` is possible for ``time_window`` /
        ``event_count`` on empty input without ``n_frames``.

    Raises:
        ValueError: bad option combination, or an event outside the sensor.
        OverflowError: a forced ``dtype`` cannot hold the counts.
    """
    ev = check_events(events)
    size3 = require_sensor_size(ev, sensor_size, "to_frame")
    keywords = dict(
        time_window=time_window, n_time_bins=n_time_bins, event_count=event_count,
        n_event_bins=n_event_bins, overlap=overlap, include_incomplete=include_incomplete,
        n_frames=n_frames, start_time=start_time, time_bins_rule=time_bins_rule,
    )
    if slicer is None:
        slicer = frame_slicer(**keywords)  # type: ignore[arg-type]
    else:
        defaults = dict(overlap=0, include_incomplete=True, time_bins_rule="exact")
        extra = [k for k, v in keywords.items() if v != defaults.get(k)]
        if extra:
            raise ValueError(f"give either slicer= or the slicing keywords, not both: {extra}")
    forced = normalise_dtype(dtype)
    _, lo, _, counts = count_frames(
        ev, slicer.indices, size3, by_time=slicer.by_time, check_all=_checks_every_event(slicer)
    )
    w, h, p = size3
    return _finish_dtype(counts, forced).reshape(lo.shape[0], p, h, w)


def to_voxel_grid(
    events: np.ndarray, sensor_size: Sequence[int] | None = None, n_time_bins: int | None = None
) -> np.ndarray:
    """Event voxel grid ``[B, 1, H, W]`` (float32) with bilinear interpolation in time.

    The representation of Zhu et al. 2019 (arXiv:1812.08156), used by E2VID (Rebecq et al.
    2019, arXiv:1904.08298). With ``t0 = min t``, ``t1 = max t`` and ``B = n_time_bins``, each
    event gets the normalised time ``tn = (B - 1) * (t - t0) / (t1 - t0)`` (``tn = 0`` when
    ``t1 == t0``) and the value ``+1`` (ON, p=1) or ``-1`` (OFF, p=0); it adds
    ``v * max(0, 1 - |b - tn|)`` to bin ``b`` at its pixel, i.e. it is split between bins
    ``floor(tn)`` and ``floor(tn) + 1``. Hence the grid sums to ``#ON - #OFF``. Timestamps need
    not be sorted. Any polarity ``> 0`` counts as ON.

    Args:
        events: structured array ``[N]`` of EVENT_DTYPE.
        sensor_size: ``(W, H, P)``; optional for an EventArray (P is not used).
        n_time_bins: ``B >= 1`` (required; it has a default only so that an EventArray can
            be passed as ``to_voxel_grid(events, n_time_bins=B)``).

    Returns:
        float32 array ``[B, 1, H, W]`` (time-major, one channel).
    """
    ev = check_events(events)
    size3 = require_sensor_size(ev, sensor_size, "to_voxel_grid")
    b = int_param(n_time_bins, "n_time_bins", 1)
    w, h, _ = size3
    hw = h * w
    n = ev.shape[0]
    if n == 0:
        return np.zeros((b, 1, h, w), dtype=np.float32)
    pix = pixel_index(ev, 0, n, size3, use_p=False)[0]
    t = ev["t"]
    t0, t1 = int(t.min()), int(t.max())
    if t1 > t0:
        # multiply before dividing: exact integers in float64, so bin edges are hit exactly
        tn = (t - t0).astype(np.float64) * (b - 1)
        tn /= t1 - t0
    else:
        tn = np.zeros(n, dtype=np.float64)
    left = np.floor(tn)
    frac = tn - left
    val = np.where(ev["p"] > 0, 1.0, -1.0)
    flat = left.astype(np.intp) * hw + pix
    grid = np.bincount(flat, weights=val * (1.0 - frac), minlength=(b + 1) * hw)
    grid += np.bincount(flat + hw, weights=val * frac, minlength=(b + 1) * hw)
    # bin B only ever receives weight 0 (frac = 0 when tn = B-1); drop it
    return grid[: b * hw].astype(np.float32).reshape(b, 1, h, w)
