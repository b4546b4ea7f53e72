"""Event-stream transforms: binning into frames / voxel grids, denoising and augmentations.

Two layers, in the style of ``tonic.transforms``:

* a **functional core** of plain functions (:func:`to_frame`, :func:`to_voxel_grid`,
  :func:`denoise`, :func:`downsample`, :func:`crop`, :func:`flip_lr`, ...), and
* small picklable **dataclass transforms** (:class:`ToFrame`, :class:`Denoise`,
  :class:`RandomCrop`, ...) whose ``__call__(events, rng=None)`` calls the function, chained with
  :class:`Compose`.

Inputs are 1-D structured arrays of :data:`~spikeloom.events.core.EVENT_DTYPE`
(``x, y: uint16``, ``p: uint8`` with 1 = ON / 0 = OFF, ``t: int64`` µs), either an
:class:`~spikeloom.events.core.EventArray` (which carries ``sensor_size = (W, H, P)``) or a plain
array together with an explicit ``sensor_size``. When both are given they must agree.

Conventions kept by every transform:

* The input is never modified; a new array is returned (also when nothing changes).
* The dtype is kept. An ``EventArray`` input gives an ``EventArray`` output carrying the
  (possibly updated) sensor size, so that a :class:`Compose` pipeline propagates it; the
  transforms that take a ``sensor_size`` argument (crop, flip, downsample) also return an
  ``EventArray`` when it is given. Otherwise plain arrays stay plain.
* Empty event arrays are valid input everywhere.
* Frames are ``[T, P, H, W]`` with channel index = polarity value (0 = OFF, 1 = ON); a sensor
  with ``P == 1`` merges both polarities into channel 0.

Randomness and DataLoader workers
---------------------------------
Random transforms draw from the ``rng`` passed **per call**: a ``np.random.Generator``, an int /
``SeedSequence`` seed, or ``None``. ``None`` creates a fresh generator from OS entropy at every
call, so forked DataLoader workers never share a stream (unlike the legacy global
``np.random`` state, which forked workers inherit identically), but results are then not
reproducible. For reproducible augmentation, derive a generator per sample in the dataset, e.g.
``rng = np.random.default_rng([base_seed, epoch, index])``; this is independent of the number of
workers. The transform objects hold no random state, so they pickle and copy freely.

Disk caching
------------
Every transform has ``params()`` (its constructor arguments as a JSON-compatible dict) and
``cache_key()``, a stable string ``"spikeloom.<Class>/v<version>:<sorted JSON params>"`` (the
version changes whenever the output of a transform changes for the same parameters).
``is_random`` tells whether the output depends on ``rng``; random transforms should not be
cached.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from .core import EVENT_DTYPE, EventArray, SensorSize, check_sensor_size

try:  # optional C kernels (built by setup.py when a compiler is available)
    from . import _speedups
except ImportError:  # pragma: no cover - depends on the build
    _speedups = None

__all__ = [
    "CenterCrop",
    "Compose",
    "Crop",
    "Denoise",
    "Downsample",
    "DropEvent",
    "DropTime",
    "EventTransform",
    "FlipLR",
    "FlipPolarity",
    "FlipUD",
    "RandomCrop",
    "RandomTemporalDelete",
    "TimeJitter",
    "ToFrame",
    "ToVoxelGrid",
    "center_crop",
    "crop",
    "denoise",
    "downsample",
    "drop_event",
    "drop_time",
    "flip_lr",
    "flip_polarity",
    "flip_ud",
    "random_crop",
    "speedups_enabled",
    "time_jitter",
    "to_frame",
    "to_voxel_grid",
]

RngLike = np.random.Generator | np.random.SeedSequence | int | None
"""What the ``rng`` argument of random transforms accepts (see the module docstring)."""

_CHUNK = 16384
"""Events per chunk in the pixel-index pass: the chunk's records (13 B each) and temporaries
stay in the L2 cache, so each record is fetched from memory once instead of once per field."""

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

_NO_SPEEDUPS_ENV = "SPIKELOOM_NO_SPEEDUPS"


def speedups_enabled() -> bool:
    """Whether :func:`to_frame` uses the C extension ``spikeloom.events._speedups``.

    True when the extension was built (it is optional: an install without a C compiler falls
    back to numpy) and the environment variable ``SPIKELOOM_NO_SPEEDUPS`` is unset, empty or
    ``"0"``; any other value (e.g. ``1``) forces the numpy code path. The variable is read at
    every call. Both paths give identical frames, dtypes and error messages.
    """
    return _speedups is not None and os.environ.get(_NO_SPEEDUPS_ENV, "") in ("", "0")


# ------------------------------------------------------------------------------------------
# validation helpers
# ------------------------------------------------------------------------------------------


def _check_events(events: Any) -> np.ndarray:
    """Return ``events`` if it is a 1-D array of EVENT_DTYPE, else raise a helpful error."""
    if not isinstance(events, np.ndarray):
        raise TypeError(
            f"events must be a numpy structured array of EVENT_DTYPE, got "
            f"{type(events).__name__}; build one with spikeloom.events.core.make_events"
        )
    if events.dtype != EVENT_DTYPE:
        raise TypeError(
            f"events must have dtype EVENT_DTYPE {EVENT_DTYPE}, got {events.dtype}; convert "
            f"with spikeloom.events.core.as_events(arr, sensor_size)"
        )
    if events.ndim != 1:
        raise ValueError(f"events must be 1-D [N], got shape {events.shape}")
    return events


def _known_sensor_size(events: np.ndarray, sensor_size: Any) -> SensorSize | None:
    """Sensor size from the argument and/or the EventArray; None when neither has one."""
    own = getattr(events, "sensor_size", None)
    own = check_sensor_size(own) if own is not None else None
    if sensor_size is None:
        return own
    given = check_sensor_size(sensor_size)
    if own is not None and own != given:
        raise ValueError(
            f"sensor_size={given} contradicts the EventArray's sensor_size={own}; drop the "
            f"argument or fix the pipeline (e.g. a Downsample/Crop before this transform)"
        )
    return given


def _require_sensor_size(events: np.ndarray, sensor_size: Any, what: str) -> SensorSize:
    size = _known_sensor_size(events, sensor_size)
    if size is None:
        raise ValueError(
            f"{what} needs the sensor size: pass sensor_size=(W, H, P) or use an EventArray"
        )
    return size


def _as_event_output(arr: np.ndarray, sensor_size: SensorSize | None) -> np.ndarray:
    """Return ``arr`` as an EventArray carrying ``sensor_size`` (plain array if unknown)."""
    if sensor_size is None:
        return arr.view(np.ndarray) if isinstance(arr, EventArray) else arr
    out = arr.view(EventArray)
    out.sensor_size = sensor_size
    return out


def _int_param(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if int(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _prob_param(value: Any, name: str) -> float:
    v = float(value)
    if not 0.0 <= v <= 1.0 or math.isnan(v):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return v


def _as_generator(rng: RngLike) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer, np.random.SeedSequence)):
        return np.random.default_rng(rng)
    raise TypeError(
        f"rng must be a numpy Generator, an int seed, a SeedSequence or None, got {rng!r}"
    )


def _first_bad(col: np.ndarray, limit: int) -> int:
    return int(np.flatnonzero(col >= limit)[0])


def _check_sorted(t: np.ndarray) -> bool:
    """True when ``t`` is non-decreasing (works on strided field views, no copy)."""
    return t.shape[0] < 2 or not bool(np.any(t[1:] < t[:-1]))


def _lower_bound(t: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``np.searchsorted(t, values, 'left')`` for sorted ``t``, without copying strided ``t``.

    ``np.searchsorted`` copies a non-contiguous haystack (the ``t`` field of a structured array
    has a 13-byte stride) into a contiguous buffer first; for a few bin edges a vectorised
    bisection with ``log2(N)`` small gathers is much cheaper.
    """
    values = np.asarray(values, dtype=np.int64)
    n = t.shape[0]
    if t.strides[0] == t.itemsize or values.size > 64:
        return np.searchsorted(t, values, side="left").astype(np.intp)
    lo = np.zeros(values.shape, np.intp)
    hi = np.full(values.shape, n, np.intp)
    if n == 0:
        return lo
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) >> 1
        right = active & (t[np.minimum(mid, n - 1)] < values)
        lo = np.where(right, mid + 1, lo)
        hi = np.where(active & ~right, mid, hi)


def _clip_i64(values: Sequence[int]) -> np.ndarray:
    return np.array([min(max(int(v), _INT64_MIN), _INT64_MAX) for v in values], dtype=np.int64)


# ------------------------------------------------------------------------------------------
# frames
# ------------------------------------------------------------------------------------------

_UINTS = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.uint32), np.dtype(np.uint64))


def _smallest_uint(max_value: int) -> np.dtype:
    for d in _UINTS:
        if max_value <= np.iinfo(d).max:
            return d
    raise OverflowError(f"count {max_value} exceeds uint64")  # pragma: no cover


def _dtype_capacity(dtype: np.dtype) -> int:
    """Largest count the dtype represents exactly."""
    if dtype.kind in "ui":
        return int(np.iinfo(dtype).max)
    if dtype.kind == "f":
        return 2 ** (np.finfo(dtype).nmant + 1)
    raise TypeError(
        f"frame dtype must be an integer or float type, got {dtype}; for binary frames use "
        f"`frames > 0` on the counts"
    )


def _normalise_dtype(dtype: Any) -> np.dtype | None:
    if dtype is None:
        return None
    d = np.dtype(dtype)
    _dtype_capacity(d)  # raises for bool, complex, structured, ...
    return d


_FrameMode = Literal["time_window", "n_time_bins", "event_count", "n_event_bins"]


def _check_frame_options(
    time_window: Any,
    n_time_bins: Any,
    event_count: Any,
    n_event_bins: Any,
    overlap: Any,
    include_incomplete: bool,
    n_frames: Any,
    start_time: Any,
    time_bins_rule: str,
) -> tuple[_FrameMode, int]:
    """Validate the slicing options; return the mode and its size parameter."""
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
    mode: _FrameMode = chosen[0]  # type: ignore[assignment]
    size = _int_param(given[mode], mode, 1)
    ov = _int_param(overlap, "overlap", 0)
    if mode in ("time_window", "event_count"):
        if ov >= size:
            raise ValueError(f"overlap ({ov}) must be smaller than {mode} ({size})")
    elif ov:
        raise ValueError(
            f"overlap is not supported with {mode}; use time_window or event_count for "
            f"overlapping windows"
        )
    if n_frames is not None:
        if mode not in ("time_window", "event_count"):
            raise ValueError(f"n_frames only applies to time_window/event_count, not {mode}")
        _int_param(n_frames, "n_frames", 0)
        if not include_incomplete:
            raise ValueError(
                "include_incomplete=False has no effect with a fixed n_frames (frames past the "
                "end are zero-padded); drop one of the two options"
            )
    if start_time is not None:
        if mode not in ("time_window", "n_time_bins"):
            raise ValueError("start_time only applies to time_window and n_time_bins")
        _int_param(start_time, "start_time", _INT64_MIN)
    if time_bins_rule not in ("exact", "floor"):
        raise ValueError(f"time_bins_rule must be 'exact' or 'floor', got {time_bins_rule!r}")
    if time_bins_rule != "exact" and mode != "n_time_bins":
        raise ValueError(f"time_bins_rule only applies to n_time_bins, not {mode}")
    return mode, size


def _time_slices(
    t: np.ndarray,
    mode: _FrameMode,
    size: int,
    overlap: int,
    include_incomplete: bool,
    n_frames: int | None,
    start_time: int | None,
    rule: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Index ranges [lo_j, hi_j) of each frame on sorted timestamps ``t``."""
    n = t.shape[0]
    t0 = int(start_time) if start_time is not None else (int(t[0]) if n else 0)
    t_last = int(t[-1]) if n else t0 - 1
    span = t_last - t0 + 1  # µs covered by [t0, t_last], inclusive; <= 0 when no event
    if mode == "time_window":
        stride = size - overlap
        if n_frames is not None:
            n_win = n_frames
        elif span <= 0:
            n_win = 0
        elif include_incomplete:
            n_win = 1 if span <= size else -(-(span - size) // stride) + 1
        else:
            n_win = (span - size) // stride + 1 if span >= size else 0
        starts = [t0 + j * stride for j in range(n_win)]
        lo = _lower_bound(t, _clip_i64(starts))
        hi = _lower_bound(t, _clip_i64([s + size for s in starts]))
        return lo, hi
    # n_time_bins
    m = size
    if span <= 0:
        z = np.zeros(m, np.intp)
        return z, z.copy()
    if rule == "exact":
        # frame j: j*span/m <= t - t0 < (j+1)*span/m  <=>  t - t0 >= ceil(j*span/m) ...
        edges = [t0 + -(-(j * span) // m) for j in range(m + 1)]
        bounds = _lower_bound(t, _clip_i64(edges))
        bounds[-1] = n  # edge m is t_last + 1
    else:
        # spec 11.1 / SpikingJelly: dT = floor((t_last - t0)/m), last frame takes the rest
        dt = (t_last - t0) // m
        bounds = np.empty(m + 1, np.intp)
        bounds[:m] = _lower_bound(t, _clip_i64([t0 + j * dt for j in range(m)]))
        bounds[m] = n
    return bounds[:-1].copy(), bounds[1:].copy()


def _count_slices(
    n: int,
    mode: _FrameMode,
    size: int,
    overlap: int,
    include_incomplete: bool,
    n_frames: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Index ranges [lo_j, hi_j) of each frame for the event-index modes."""
    if mode == "n_event_bins":
        m = size
        base = n // m
        lo = np.arange(m, dtype=np.intp) * base
        hi = lo + base
        hi[-1] = n
        return lo, hi
    stride = size - overlap
    if n_frames is not None:
        n_win = n_frames
    elif n == 0:
        n_win = 0
    elif include_incomplete:
        n_win = 1 if n <= size else -(-(n - size) // stride) + 1
    else:
        n_win = (n - size) // stride + 1 if n >= size else 0
    lo = np.minimum(np.arange(n_win, dtype=np.intp) * stride, n)
    hi = np.minimum(lo + size, n)
    return lo, hi


def _event_error(ev: np.ndarray, i: int, size: SensorSize, use_p: bool = True) -> ValueError:
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


def _range_error(
    ev: np.ndarray, lo: int, hi: int, size: SensorSize, use_p: bool = True
) -> ValueError:
    """The error for the first out-of-range event in ``lo..hi-1`` (cold path, one must exist).

    Both code paths of :func:`to_frame` report the first bad event (lowest index) of the
    range of events they validate, so they raise the same message.
    """
    w, h, p = size
    bad = ev["x"][lo:hi] >= w
    bad |= ev["y"][lo:hi] >= h
    if use_p and p > 1:
        bad |= ev["p"][lo:hi] >= p
    return _event_error(ev, lo + int(np.argmax(bad)), size, use_p)


def _pixel_index(
    ev: np.ndarray,
    lo: int,
    hi: int,
    sensor_size: SensorSize,
    *,
    use_p: bool = True,
    check_time: bool = False,
) -> tuple[np.ndarray, bool]:
    """``p*H*W + y*W + x`` (intp) for events ``lo..hi-1``, with x/y range checks.

    Works chunk by chunk so that the strided field reads hit the cache (see ``_CHUNK``); the
    range checks run on the contiguous intermediates (an error names the first bad event of
    ``lo..hi-1``, see :func:`_range_error`). With ``check_time`` it also tells whether
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
    tmp = np.empty(min(n, _CHUNK), dtype=np.intp)
    less = np.empty(min(n, _CHUNK), dtype=bool) if check_time else None
    hw = h * w
    in_order = True
    prev_t = ts_all[lo]
    for s in range(lo, hi, _CHUNK):
        e = min(hi, s + _CHUNK)
        o = out[s - lo : e - lo]
        a = tmp[: e - s]
        np.multiply(ys_all[s:e], w, out=o, dtype=np.intp)
        np.copyto(a, xs_all[s:e])
        if o.max() >= hw or a.max() >= w:
            raise _range_error(ev, lo, hi, sensor_size, use_p)
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


def _frame_buffer(lo: np.ndarray, hi: np.ndarray, phw: int) -> np.ndarray:
    """Zeroed counts ``[J, P*H*W]`` in the smallest uint able to hold the longest frame's
    length, the largest count any pixel can reach (so no overflow is possible)."""
    bound = int((hi - lo).max()) if lo.shape[0] else 0
    return np.zeros((lo.shape[0], phw), dtype=_smallest_uint(bound))


def _count_frames(
    ev: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    sensor_size: SensorSize,
    disjoint: bool,
    idx_all: np.ndarray | None = None,
) -> np.ndarray:
    """numpy path: per-frame pixel counts ``[J, P*H*W]`` (dtype from :func:`_frame_buffer`).

    ``idx_all``: pixel indices of all events when already computed, x/y-checked (else
    computed here for the events that fall in some frame). Validated events: all of them
    when ``idx_all`` is given, else those of ``lo.min()..hi.max()-1`` (the union of the
    frames); an error names the first bad one.
    """
    w, h, p = sensor_size
    phw = p * h * w
    n_frames = lo.shape[0]
    lengths = hi - lo
    out = _frame_buffer(lo, hi, phw)
    if idx_all is not None and p > 1:
        # polarities of the events outside every frame (those inside are checked below)
        used = (int(lo.min()), int(hi.max())) if n_frames else (0, 0)
        for part in (idx_all[: used[0]], idx_all[used[1] :]):
            if part.size and int(part.max()) >= phw:
                raise _range_error(ev, 0, ev.shape[0], sensor_size)
    if not out.size or not int(lengths.max()):
        return out
    used_lo, used_hi = int(lo.min()), int(hi.max())
    if idx_all is None:
        idx = _pixel_index(ev, used_lo, used_hi, sensor_size)[0]
        chk_lo, chk_hi = used_lo, used_hi
    else:
        idx = idx_all[used_lo:used_hi]
        chk_lo, chk_hi = 0, ev.shape[0]
    n_used = used_hi - used_lo
    if disjoint and n_frames > 1 and n_used < n_frames * phw:
        # Sparse frames (fewer events than frame cells). Disjoint frames are consecutive
        # index ranges, so a per-event frame offset turns all of them into one index space.
        if p > 1 and idx.max() >= phw:
            raise _range_error(ev, chk_lo, chk_hi, sensor_size)
        offsets = np.repeat(np.arange(n_frames, dtype=np.intp) * phw, lengths)
        if n_frames * phw > 16 * n_used:
            # very sparse: sort-based counting costs O(N log N) and touches only the
            # non-zero cells, instead of O(J * PHW) for bincount's dense int64 output
            cells, counts = np.unique(idx + offsets, return_counts=True)
            out.reshape(-1)[cells] = counts
            return out
        # moderately sparse: one bincount per group of frames (int64 buffer <= 8 MB) instead
        # of one length-PHW bincount per frame
        group = max(1, (1 << 20) // phw)
        for g0 in range(0, n_frames, group):
            g1 = min(n_frames, g0 + group)
            a, b = int(lo[g0]) - used_lo, int(hi[g1 - 1]) - used_lo
            if b > a:
                sub = idx[a:b] + (offsets[a:b] - g0 * phw)
                out[g0:g1] = np.bincount(sub, minlength=(g1 - g0) * phw).reshape(g1 - g0, phw)
        return out
    for j in range(n_frames):
        a, b = int(lo[j]) - used_lo, int(hi[j]) - used_lo
        if b <= a:
            continue
        c = np.bincount(idx[a:b], minlength=phw)
        if c.shape[0] != phw:
            raise _range_error(ev, chk_lo, chk_hi, sensor_size)
        out[j] = c
    return out


def _count_frames_c(
    ev: np.ndarray, lo: np.ndarray, hi: np.ndarray, sensor_size: SensorSize
) -> np.ndarray:
    """C path of :func:`_count_frames`: one pass over the events of each frame.

    Validates the events of the frames (the union ``lo.min()..hi.max()-1``); the C loop
    returns the first bad event in frame order, which is the lowest bad index of the union
    because ``lo`` and ``hi`` are non-decreasing.
    """
    w, h, p = sensor_size
    out = _frame_buffer(lo, hi, p * h * w)
    if not out.size or not int((hi - lo).max()):
        return out
    bad, _ = _speedups.count_frames(
        ev,
        np.ascontiguousarray(lo, dtype=np.int64),
        np.ascontiguousarray(hi, dtype=np.int64),
        w,
        h,
        p,
        out,
    )
    if bad >= 0:
        raise _event_error(ev, bad, sensor_size)
    return out


_Slicer = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _time_frames_numpy(
    ev: np.ndarray, size: SensorSize, slices: _Slicer, full: bool, disjoint: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """numpy path of the time modes: ``(events sorted by t, lo, hi, counts [J, P*H*W])``."""
    n = ev.shape[0]
    w, h, p = size
    t = ev["t"]
    idx_all = None
    if full:
        # index pass, x/y checks and order check in one sweep
        idx_all, in_order = _pixel_index(ev, 0, n, size, check_time=True)
        if not in_order and p > 1 and n and int(idx_all.max()) >= p * h * w:
            raise _range_error(ev, 0, n, size)  # polarity, before reordering
    else:
        in_order = _check_sorted(t)
    if not in_order:
        order = np.argsort(t, kind="stable")
        ev = ev[order]
        t = ev["t"]
        idx_all = None if idx_all is None else idx_all[order]
    lo, hi = slices(t)
    return ev, lo, hi, _count_frames(ev, lo, hi, size, disjoint=disjoint, idx_all=idx_all)


def _time_frames_c(
    ev: np.ndarray, size: SensorSize, slices: _Slicer, full: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """C path of the time modes, same contract as :func:`_time_frames_numpy`.

    Optimistic single pass: slice as if ``t`` were sorted (the bisection still yields valid
    index ranges when it is not), then count with the order check inside the counting loop;
    the few events outside every frame are checked by ``scan_events``. Any problem (unsorted
    input, an out-of-range event) discards the counts and takes the robust route: one scan
    over all events in input order, a stable sort if needed, slicing, counting (which raises
    the range error of the frames' events).
    """
    n = ev.shape[0]
    w, h, p = size
    lo, hi = slices(ev["t"])
    counts = _count_sorted_c(ev, lo, hi, size, check_all=full)
    if counts is not None:
        return ev, lo, hi, counts
    unsorted_at, bad_at = _speedups.scan_events(ev, 0, n, w, h, p)
    if full and bad_at >= 0:
        raise _event_error(ev, bad_at, size)
    if unsorted_at >= 0:
        ev = ev[np.argsort(ev["t"], kind="stable")]
        lo, hi = slices(ev["t"])
    return ev, lo, hi, _count_frames_c(ev, lo, hi, size)


def _count_sorted_c(
    ev: np.ndarray, lo: np.ndarray, hi: np.ndarray, size: SensorSize, check_all: bool
) -> np.ndarray | None:
    """Counts ``[J, P*H*W]`` if ``t`` is non-decreasing over all events and no validated
    event is out of range (all events with ``check_all``, else those of the frames);
    ``None`` otherwise."""
    n = ev.shape[0]
    w, h, p = size
    out = _frame_buffer(lo, hi, p * h * w)
    rest: tuple[tuple[int, int], ...] = ((0, n),)
    if out.size and int((hi - lo).max()):
        a, b = int(lo[0]), int(hi[-1])
        # the frames must cover [a, b) without gaps for the order check to see every pair
        if lo.shape[0] > 1 and not (
            (lo[1:] >= lo[:-1]).all() and (hi[1:] >= hi[:-1]).all() and (lo[1:] <= hi[:-1]).all()
        ):
            return None
        bad, unsorted = _speedups.count_frames(
            ev,
            np.ascontiguousarray(lo, dtype=np.int64),
            np.ascontiguousarray(hi, dtype=np.int64),
            w,
            h,
            p,
            out,
            True,
        )
        if bad >= 0 or unsorted >= 0:
            return None
        # events before and after the frames; count_frames checked the pair (a-1, a)
        rest = ((0, a), (max(b - 1, 0), n))
    for s, e in rest:
        if e > s:
            unsorted, bad = _speedups.scan_events(ev, s, e, w, h, p)
            if unsorted >= 0 or (check_all and bad >= 0):
                return None
    return out


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
) -> np.ndarray:
    """Accumulate events into per-pixel count frames ``[T, P, H, W]``.

    Exactly one slicing mode must be given. ``t0`` is ``start_time`` if given, else the first
    timestamp; ``t_last`` is the last timestamp; times are integer µs.

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
      counts). ``time_bins_rule="floor"``: spec §11.1 / SpikingJelly rule,
      ``dT = floor((t_last - t0)/M)``, frame ``j`` holds ``t0 + j*dT <= t < t0 + (j+1)*dT``
      and the last frame takes everything from ``t0 + (M-1)*dT`` on.
    * ``event_count=N``: windows of ``N`` consecutive events with a stride of
      ``N - overlap`` events (``overlap`` in events, ``0 <= overlap < N``). By default
      (``include_incomplete=True``) the last, possibly shorter window is kept so that every
      event counts; ``False`` drops incomplete windows. ``n_frames`` fixes the number.
    * ``n_event_bins=M``: ``M`` frames by event index (spec §11.1, SpikingJelly): with
      ``B = floor(N/M)``, frame ``j`` holds events ``[j*B, (j+1)*B)`` and the last frame also
      takes the remainder (all events when ``N < M``).

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

    Speed: when the optional C extension ``spikeloom.events._speedups`` is built (see
    :func:`speedups_enabled`), the counting is one pass over the packed records per frame
    (~180 M events/s on one core for 2 M events, 16 bins, 128x128x2, against ~70 M on the
    numpy path). ``SPIKELOOM_NO_SPEEDUPS=1`` forces the numpy path; both give identical
    frames, dtypes and errors.

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

    Returns:
        ``np.ndarray`` of shape ``[T, P, H, W]``. ``T = 0`` is possible for ``time_window`` /
        ``event_count`` on empty input without ``n_frames``.

    Raises:
        ValueError: bad option combination, or an event outside the sensor.
        OverflowError: a forced ``dtype`` cannot hold the counts.
    """
    ev = _check_events(events)
    size3 = _require_sensor_size(ev, sensor_size, "to_frame")
    mode, size = _check_frame_options(
        time_window,
        n_time_bins,
        event_count,
        n_event_bins,
        overlap,
        include_incomplete,
        n_frames,
        start_time,
        time_bins_rule,
    )
    forced = _normalise_dtype(dtype)
    ov = int(overlap)
    nf = None if n_frames is None else int(n_frames)
    n = ev.shape[0]
    use_c = speedups_enabled()
    if mode in ("time_window", "n_time_bins"):
        # With neither n_frames nor start_time (nearly) every event is used and all events
        # are validated, in input order. Otherwise (maybe only a short prefix is used,
        # TA-SNN) only the events of the frames are validated (after sorting, if needed).
        full = nf is None and start_time is None
        st = None if start_time is None else int(start_time)

        def slices(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return _time_slices(t, mode, size, ov, include_incomplete, nf, st, time_bins_rule)

        if use_c:
            ev, lo, hi, counts = _time_frames_c(ev, size3, slices, full)
        else:
            ev, lo, hi, counts = _time_frames_numpy(ev, size3, slices, full, ov == 0)
    else:
        lo, hi = _count_slices(n, mode, size, ov, include_incomplete, nf)
        if use_c:
            counts = _count_frames_c(ev, lo, hi, size3)
        else:
            counts = _count_frames(ev, lo, hi, size3, disjoint=(ov == 0))
    w, h, p = size3
    if forced is None:
        if counts.dtype.itemsize > 1:
            best = _smallest_uint(int(counts.max()))
            if best.itemsize < counts.dtype.itemsize:
                counts = counts.astype(best)
    else:
        cap = _dtype_capacity(forced)
        if np.iinfo(counts.dtype).max > cap and counts.size:
            m = int(counts.max())
            if m > cap:
                raise OverflowError(
                    f"a pixel holds {m} events but dtype {forced} represents counts only up to "
                    f"{cap} exactly; use a wider dtype or dtype=None (automatic)"
                )
        counts = counts.astype(forced, copy=False)
    return counts.reshape(lo.shape[0], p, h, w)


def to_voxel_grid(
    events: np.ndarray, sensor_size: Sequence[int] | None = None, n_time_bins: int | None = None
) -> np.ndarray:
    """Event voxel grid with bilinear interpolation in time (Zhu et al. 2019; E2VID).

    With ``t0 = min t``, ``t1 = max t`` and ``B = n_time_bins``, each event gets the normalised
    time ``tn = (B - 1) * (t - t0) / (t1 - t0)`` (``tn = 0`` when ``t1 == t0``) and the value
    ``+1`` (ON, p=1) or ``-1`` (OFF, p=0); it adds ``v * max(0, 1 - |b - tn|)`` to bin ``b``
    at its pixel, i.e. it is split between bins ``floor(tn)`` and ``floor(tn) + 1``. Hence
    the grid sums to ``#ON - #OFF``. Timestamps need not be sorted. Any polarity ``> 0``
    counts as ON.

    Args:
        events: structured array ``[N]`` of EVENT_DTYPE.
        sensor_size: ``(W, H, P)``; optional for an EventArray (P is not used).
        n_time_bins: ``B >= 1`` (required; it has a default only so that an EventArray can
            be passed as ``to_voxel_grid(events, n_time_bins=B)``).

    Returns:
        float32 array ``[B, 1, H, W]`` (time-major, one channel).
    """
    ev = _check_events(events)
    size3 = _require_sensor_size(ev, sensor_size, "to_voxel_grid")
    b = _int_param(n_time_bins, "n_time_bins", 1)
    w, h, _ = size3
    hw = h * w
    n = ev.shape[0]
    if n == 0:
        return np.zeros((b, 1, h, w), dtype=np.float32)
    pix = _pixel_index(ev, 0, n, size3, use_p=False)[0]
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


# ------------------------------------------------------------------------------------------
# event -> event transforms (functional)
# ------------------------------------------------------------------------------------------


def denoise(events: np.ndarray, filter_time: int = 10000, *, connectivity: int = 8) -> np.ndarray:
    """Background-activity filter: keep an event only if a neighbouring pixel fired recently.

    Event ``i`` at ``(x, y, t)`` is kept iff one of its ``connectivity`` neighbours (8: the
    3x3 ring; 4: left/right/up/down; never the pixel itself; both polarities) has an earlier
    event ``k < i`` in the stream with ``t - t_k < filter_time``. This is exactly the
    sequential "last timestamp per pixel" filter, evaluated without a per-event loop: events
    are sorted by (pixel, index) once, and for each neighbour offset one ``searchsorted``
    finds, for every event, the latest earlier event of that neighbour pixel.

    Differences from ``tonic.functional.denoise_numpy``: Tonic uses 4 neighbours
    (``connectivity=4`` here) and initialises its memory to ``filter_time``, which lets every
    event with ``t < filter_time`` pass; here a pixel that never fired has no memory.
    Simultaneous neighbour events count only if they come earlier in the stream.

    Args:
        events: structured array ``[N]``, timestamps non-decreasing.
        filter_time: µs, ``> 0``.
        connectivity: 8 or 4.

    Returns:
        The kept events ``[K]`` in their original order (same type and dtype).

    Cost: one O(N log N) sort plus ``connectivity`` searchsorted passes.
    """
    ev = _check_events(events)
    ft = _int_param(filter_time, "filter_time", 1)
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    n = ev.shape[0]
    if n == 0:
        return ev.copy()
    t = ev["t"]
    if not _check_sorted(t):
        raise ValueError(
            "denoise needs events sorted by time; sort first with "
            "spikeloom.events.core.sort_by_time(events) or events[np.argsort(events['t'], "
            "kind='stable')]"
        )
    x = ev["x"].astype(np.int64)
    y = ev["y"].astype(np.int64)
    # Linear pixel index with one empty padding column (x = max+1) and row (y = max+1): a +1
    # neighbour of the last column/row is then an empty pixel, never a wrapped-around one.
    width = int(x.max()) + 2
    height = int(y.max()) + 2
    if width * height * n >= 2**62:
        raise ValueError(
            f"denoise: {n} events on a {width}x{height} grid overflow its 64-bit sort keys; "
            f"denoise shorter pieces of the stream"
        )
    pix = y * width + x
    key = np.sort(pix * n + np.arange(n, dtype=np.int64))  # unique keys: (pixel, index)
    spix = key // n
    order = key - spix * n
    sx = spix % width
    sy = spix // width
    st = t[order]
    offsets = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if connectivity == 8:
        offsets += [(-1, -1), (1, -1), (-1, 1), (1, 1)]
    keep_sorted = np.zeros(n, dtype=bool)
    for dx, dy in offsets:
        shift = (dy * width + dx) * n
        pos = np.searchsorted(key, key + shift, side="left") - 1  # latest key before query
        posc = np.maximum(pos, 0)
        # the latest key below the query belongs to the neighbour pixel iff it is >= qpix * n
        ok = (pos >= 0) & (key[posc] >= (spix + (dy * width + dx)) * n)
        ok &= st - st[posc] < ft
        if dx < 0:
            ok &= sx > 0
        if dy < 0:
            ok &= sy > 0
        keep_sorted |= ok
    keep = np.empty(n, dtype=bool)
    keep[order] = keep_sorted
    return ev[keep]


def downsample(
    events: np.ndarray,
    spatial_factor: int = 1,
    time_factor: int = 1,
    *,
    sensor_size: Sequence[int] | None = None,
) -> np.ndarray:
    """Reduce resolution: ``x // f``, ``y // f`` and ``t // tf * tf``.

    The new sensor size is ``(ceil(W/f), ceil(H/f), P)`` (equal to ``W // f`` when ``f``
    divides ``W``, e.g. 128 → 32 with ``f = 4`` as in TA-SNN; rounding up keeps the events of a
    partial last block inside the sensor). Timestamps stay in µs and are quantised to
    multiples of ``time_factor`` (floor), so several events may share one timestamp;
    ``time_factor = 1`` leaves them unchanged. Nothing is merged: the event count is kept.
    """
    ev = _check_events(events)
    f = _int_param(spatial_factor, "spatial_factor", 1)
    tf = _int_param(time_factor, "time_factor", 1)
    size = _known_sensor_size(ev, sensor_size)
    out = ev.copy()
    if f > 1:  # integer division in int64: f may exceed the uint16 range
        out["x"] = ev["x"].astype(np.int64) // f
        out["y"] = ev["y"].astype(np.int64) // f
    if tf > 1:
        t = out["t"]
        t //= tf
        t *= tf
    new_size = None if size is None else (-(-size[0] // f), -(-size[1] // f), size[2])
    return _as_event_output(out, new_size)


def crop(
    events: np.ndarray,
    origin: Sequence[int],
    size: Sequence[int],
    *,
    sensor_size: Sequence[int] | None = None,
) -> np.ndarray:
    """Keep events with ``x0 <= x < x0 + w`` and ``y0 <= y < y0 + h`` and shift them to 0.

    Args:
        events: structured array ``[N]``.
        origin: ``(x0, y0)`` top-left corner (may lie partly outside the sensor).
        size: ``(w, h)`` of the window.
        sensor_size: optional; the output sensor size is ``(w, h, P)``.
    """
    ev = _check_events(events)
    x0, y0 = _pair(origin, "origin", 0)
    w, h = _pair(size, "size", 1)
    if w > 65536 or h > 65536:
        raise ValueError(f"crop size {(w, h)} exceeds 65536 (x/y are uint16)")
    known = _known_sensor_size(ev, sensor_size)
    x, y = ev["x"], ev["y"]
    mask = (x >= x0) & (x < x0 + w) & (y >= y0) & (y < y0 + h)
    out = ev[mask]
    if out.size:  # x >= x0 and y >= y0 here, so no wrap-around
        out["x"] -= x0
        out["y"] -= y0
    return _as_event_output(out, None if known is None else (w, h, known[2]))


def _pair(value: Any, name: str, minimum: int) -> tuple[int, int]:
    try:
        items = tuple(value)
    except TypeError:
        items = ()
    if len(items) != 2:
        raise ValueError(f"{name} must be a pair of ints, got {value!r}")
    return _int_param(items[0], name, minimum), _int_param(items[1], name, minimum)


def _crop_size(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        return (_int_param(size, "size", 1),) * 2
    return _pair(size, "size", 1)


def center_crop(
    events: np.ndarray, size: int | Sequence[int], *, sensor_size: Sequence[int] | None = None
) -> np.ndarray:
    """:func:`crop` of a ``(w, h)`` (or ``size x size``) window centred on the sensor.

    The origin is ``((W - w) // 2, (H - h) // 2)``; the window must fit in the sensor.
    """
    ev = _check_events(events)
    known = _require_sensor_size(ev, sensor_size, "center_crop")
    w, h = _crop_size(size)
    if w > known[0] or h > known[1]:
        raise ValueError(f"crop size {(w, h)} is larger than the sensor {known[:2]}")
    return crop(ev, ((known[0] - w) // 2, (known[1] - h) // 2), (w, h), sensor_size=known)


def random_crop(
    events: np.ndarray,
    size: int | Sequence[int],
    *,
    sensor_size: Sequence[int] | None = None,
    rng: RngLike = None,
) -> np.ndarray:
    """:func:`crop` of a ``(w, h)`` window at a uniformly random position inside the sensor."""
    ev = _check_events(events)
    known = _require_sensor_size(ev, sensor_size, "random_crop")
    w, h = _crop_size(size)
    if w > known[0] or h > known[1]:
        raise ValueError(f"crop size {(w, h)} is larger than the sensor {known[:2]}")
    g = _as_generator(rng)
    x0 = int(g.integers(0, known[0] - w + 1))
    y0 = int(g.integers(0, known[1] - h + 1))
    return crop(ev, (x0, y0), (w, h), sensor_size=known)


def _flip(events: np.ndarray, field: str, limit_index: int, sensor_size: Any) -> np.ndarray:
    ev = _check_events(events)
    known = _require_sensor_size(ev, sensor_size, f"flip of {field}")
    limit = known[limit_index]
    col = ev[field]
    if col.size and col.max() >= limit:
        i = _first_bad(col, limit)
        raise ValueError(f"event {i} has {field}={int(col[i])} outside the sensor {known}")
    out = ev.copy()
    out[field] = (limit - 1) - out[field]
    return _as_event_output(out, known)


def flip_lr(events: np.ndarray, *, sensor_size: Sequence[int] | None = None) -> np.ndarray:
    """Mirror left-right: ``x -> W - 1 - x``."""
    return _flip(events, "x", 0, sensor_size)


def flip_ud(events: np.ndarray, *, sensor_size: Sequence[int] | None = None) -> np.ndarray:
    """Mirror up-down: ``y -> H - 1 - y``."""
    return _flip(events, "y", 1, sensor_size)


def flip_polarity(events: np.ndarray) -> np.ndarray:
    """Swap ON and OFF: ``p -> 1 - p`` (polarities must be 0 or 1)."""
    ev = _check_events(events)
    p = ev["p"]
    if p.size and p.max() > 1:
        i = _first_bad(p, 2)
        raise ValueError(f"flip_polarity needs p in {{0, 1}}; event {i} has p={int(p[i])}")
    out = ev.copy()
    out["p"] = 1 - out["p"]
    return out


def drop_event(events: np.ndarray, p: float, *, rng: RngLike = None) -> np.ndarray:
    """Drop exactly ``round(p * N)`` events chosen uniformly at random (order kept)."""
    ev = _check_events(events)
    prob = _prob_param(p, "p")
    n = ev.shape[0]
    n_drop = int(round(prob * n))
    if n_drop == 0:
        return ev.copy()
    g = _as_generator(rng)
    keep = np.ones(n, dtype=bool)
    keep[g.choice(n, size=n_drop, replace=False)] = False
    return ev[keep]


def time_jitter(
    events: np.ndarray,
    std: float,
    *,
    clip_negative: bool = True,
    sort: bool = True,
    rng: RngLike = None,
) -> np.ndarray:
    """Add Gaussian noise ``N(0, std²)`` (µs, rounded to whole µs) to every timestamp.

    Args:
        std: standard deviation in µs (``>= 0``).
        clip_negative: remove events whose new timestamp is negative (as Tonic does).
        sort: re-sort by time (stable) so that time-based binning stays fast. Tonic's default
            is ``False``; ours is ``True``.
    """
    ev = _check_events(events)
    s = float(std)
    if not s >= 0.0:
        raise ValueError(f"std must be >= 0, got {std!r}")
    out = ev.copy()
    if s > 0 and out.shape[0]:
        g = _as_generator(rng)
        out["t"] += np.rint(g.normal(0.0, s, size=out.shape[0])).astype(np.int64)
    if clip_negative:
        out = out[out["t"] >= 0]
    if sort and not _check_sorted(out["t"]):
        out = out[np.argsort(out["t"], kind="stable")]
    return out


def drop_time(events: np.ndarray, fraction: float, *, rng: RngLike = None) -> np.ndarray:
    """Delete all events of one random time interval covering ``fraction`` of the recording.

    With ``span = t_max - t_min + 1`` µs and ``d = round(fraction * span)``, a start ``a`` is
    drawn uniformly from ``t_min .. t_min + span - d`` and the events with ``a <= t < a + d``
    are removed (``fraction = 1`` removes all, ``0`` none).
    """
    ev = _check_events(events)
    fr = _prob_param(fraction, "fraction")
    if ev.shape[0] == 0:
        return ev.copy()
    t = ev["t"]
    t_min = int(t.min())
    span = int(t.max()) - t_min + 1
    d = int(round(fr * span))
    if d == 0:
        return ev.copy()
    g = _as_generator(rng)
    a = t_min + int(g.integers(0, span - d + 1))
    return ev[(t < a) | (t >= a + d)]


# ------------------------------------------------------------------------------------------
# dataclass transforms
# ------------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


class EventTransform:
    """Base of the dataclass transforms: ``params()``, ``cache_key()``, ``is_random``.

    To add a transform, derive a (frozen) ``@dataclass`` from this class whose fields are its
    parameters and implement ``__call__(self, events, rng=None)``; raise ``version`` whenever
    the output for the same parameters changes, so that disk caches are invalidated.
    """

    version: ClassVar[int] = 1

    @property
    def is_random(self) -> bool:
        """Whether the output depends on the ``rng`` argument."""
        return False

    def params(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-compatible dict (tuples become lists)."""
        if not dataclasses.is_dataclass(self):
            raise TypeError(
                f"{type(self).__name__} must be a @dataclass (its fields are the parameters) "
                f"or override params()"
            )
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def cache_key(self) -> str:
        """Stable string identifying class, version and all parameters."""
        body = json.dumps(self.params(), sort_keys=True, separators=(",", ":"))
        return f"spikeloom.{type(self).__name__}/v{self.version}:{body}"

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> Any:  # pragma: no cover
        raise NotImplementedError


def _opt_size(value: Any) -> SensorSize | None:
    return None if value is None else check_sensor_size(value)


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class ToFrame(EventTransform):
    """Transform form of :func:`to_frame` (same arguments; ``dtype`` is stored by name)."""

    sensor_size: tuple[int, int, int] | None = None
    _: KW_ONLY
    time_window: int | None = None
    n_time_bins: int | None = None
    event_count: int | None = None
    n_event_bins: int | None = None
    overlap: int = 0
    include_incomplete: bool = True
    n_frames: int | None = None
    start_time: int | None = None
    time_bins_rule: Literal["exact", "floor"] = "exact"
    dtype: str | None = None

    def __post_init__(self) -> None:
        _set(self, "sensor_size", _opt_size(self.sensor_size))
        d = _normalise_dtype(self.dtype)
        _set(self, "dtype", None if d is None else d.name)
        for name in (
            "time_window",
            "n_time_bins",
            "event_count",
            "n_event_bins",
            "overlap",
            "n_frames",
            "start_time",
        ):  # numpy ints -> int (stable repr / keys)
            value = getattr(self, name)
            if isinstance(value, np.integer):
                _set(self, name, int(value))
        _check_frame_options(
            self.time_window,
            self.n_time_bins,
            self.event_count,
            self.n_event_bins,
            self.overlap,
            self.include_incomplete,
            self.n_frames,
            self.start_time,
            self.time_bins_rule,
        )

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return to_frame(
            events,
            self.sensor_size,
            time_window=self.time_window,
            n_time_bins=self.n_time_bins,
            event_count=self.event_count,
            n_event_bins=self.n_event_bins,
            overlap=self.overlap,
            include_incomplete=self.include_incomplete,
            n_frames=self.n_frames,
            start_time=self.start_time,
            time_bins_rule=self.time_bins_rule,
            dtype=self.dtype,
        )


@dataclass(frozen=True)
class ToVoxelGrid(EventTransform):
    """Transform form of :func:`to_voxel_grid`; output float32 ``[B, 1, H, W]``."""

    sensor_size: tuple[int, int, int] | None = None
    _: KW_ONLY
    n_time_bins: int

    def __post_init__(self) -> None:
        _set(self, "sensor_size", _opt_size(self.sensor_size))
        _int_param(self.n_time_bins, "n_time_bins", 1)

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return to_voxel_grid(events, self.sensor_size, n_time_bins=self.n_time_bins)


@dataclass(frozen=True)
class Denoise(EventTransform):
    """Transform form of :func:`denoise` (needs no sensor size)."""

    filter_time: int = 10000
    connectivity: int = 8

    def __post_init__(self) -> None:
        _int_param(self.filter_time, "filter_time", 1)
        if self.connectivity not in (4, 8):
            raise ValueError(f"connectivity must be 4 or 8, got {self.connectivity!r}")

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return denoise(events, self.filter_time, connectivity=self.connectivity)


@dataclass(frozen=True)
class Downsample(EventTransform):
    """Transform form of :func:`downsample`."""

    spatial_factor: int = 1
    time_factor: int = 1
    _: KW_ONLY
    sensor_size: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        _int_param(self.spatial_factor, "spatial_factor", 1)
        _int_param(self.time_factor, "time_factor", 1)
        _set(self, "sensor_size", _opt_size(self.sensor_size))

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return downsample(
            events, self.spatial_factor, self.time_factor, sensor_size=self.sensor_size
        )


@dataclass(frozen=True)
class Crop(EventTransform):
    """Transform form of :func:`crop`: window ``origin=(x0, y0)``, ``size=(w, h)``."""

    origin: tuple[int, int]
    size: tuple[int, int]
    _: KW_ONLY
    sensor_size: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        _set(self, "origin", _pair(self.origin, "origin", 0))
        _set(self, "size", _crop_size(self.size))
        _set(self, "sensor_size", _opt_size(self.sensor_size))

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return crop(events, self.origin, self.size, sensor_size=self.sensor_size)


@dataclass(frozen=True)
class CenterCrop(EventTransform):
    """Transform form of :func:`center_crop`; ``size`` is an int or ``(w, h)``."""

    size: tuple[int, int]
    _: KW_ONLY
    sensor_size: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        _set(self, "size", _crop_size(self.size))
        _set(self, "sensor_size", _opt_size(self.sensor_size))

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return center_crop(events, self.size, sensor_size=self.sensor_size)


@dataclass(frozen=True)
class RandomCrop(EventTransform):
    """Transform form of :func:`random_crop`; ``size`` is an int or ``(w, h)``."""

    size: tuple[int, int]
    _: KW_ONLY
    sensor_size: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        _set(self, "size", _crop_size(self.size))
        _set(self, "sensor_size", _opt_size(self.sensor_size))

    @property
    def is_random(self) -> bool:
        return True

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return random_crop(events, self.size, sensor_size=self.sensor_size, rng=rng)


def _unchanged(events: np.ndarray, sensor_size: Any) -> np.ndarray:
    ev = _check_events(events)
    return _as_event_output(ev.copy(), _known_sensor_size(ev, sensor_size))


def _apply_with_prob(p: float, rng: RngLike) -> bool:
    if p >= 1.0:
        return True
    if p <= 0.0:
        return False
    return bool(_as_generator(rng).random() < p)


@dataclass(frozen=True)
class _SpatialFlip(EventTransform):
    """Shared body of :class:`FlipLR` / :class:`FlipUD`: ``_flip`` with probability ``p``."""

    sensor_size: tuple[int, int, int] | None = None
    _: KW_ONLY
    p: float = 1.0

    def __post_init__(self) -> None:
        _set(self, "sensor_size", _opt_size(self.sensor_size))
        _set(self, "p", _prob_param(self.p, "p"))

    @property
    def is_random(self) -> bool:
        return 0.0 < self.p < 1.0

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        if _apply_with_prob(self.p, rng):
            return type(self)._flip(events, sensor_size=self.sensor_size)
        return _unchanged(events, self.sensor_size)


class FlipLR(_SpatialFlip):
    """:func:`flip_lr`, applied with probability ``p`` (``p=1``: always, deterministic)."""

    _flip = staticmethod(flip_lr)


class FlipUD(_SpatialFlip):
    """:func:`flip_ud`, applied with probability ``p`` (``p=1``: always, deterministic)."""

    _flip = staticmethod(flip_ud)


@dataclass(frozen=True)
class FlipPolarity(EventTransform):
    """:func:`flip_polarity`, applied with probability ``p`` (``p=1``: always)."""

    p: float = 1.0

    def __post_init__(self) -> None:
        _set(self, "p", _prob_param(self.p, "p"))

    @property
    def is_random(self) -> bool:
        return 0.0 < self.p < 1.0

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        if _apply_with_prob(self.p, rng):
            return flip_polarity(events)
        return _check_events(events).copy()


@dataclass(frozen=True)
class DropEvent(EventTransform):
    """Transform form of :func:`drop_event`: drop a fraction ``p`` of the events."""

    p: float = 0.1

    def __post_init__(self) -> None:
        _set(self, "p", _prob_param(self.p, "p"))

    @property
    def is_random(self) -> bool:
        return 0.0 < self.p < 1.0

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return drop_event(events, self.p, rng=rng)


@dataclass(frozen=True)
class TimeJitter(EventTransform):
    """Transform form of :func:`time_jitter`."""

    std: float = 1.0
    clip_negative: bool = True
    sort: bool = True

    def __post_init__(self) -> None:
        if not float(self.std) >= 0.0:
            raise ValueError(f"std must be >= 0, got {self.std!r}")
        _set(self, "std", float(self.std))

    @property
    def is_random(self) -> bool:
        return self.std > 0.0

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return time_jitter(
            events, self.std, clip_negative=self.clip_negative, sort=self.sort, rng=rng
        )


@dataclass(frozen=True)
class DropTime(EventTransform):
    """Transform form of :func:`drop_time`: delete a random interval of ``fraction`` of the
    recording's duration. Alias: :data:`RandomTemporalDelete`."""

    fraction: float = 0.1

    def __post_init__(self) -> None:
        _set(self, "fraction", _prob_param(self.fraction, "fraction"))

    @property
    def is_random(self) -> bool:
        return 0.0 < self.fraction < 1.0

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return drop_time(events, self.fraction, rng=rng)


RandomTemporalDelete = DropTime
"""Alias of :class:`DropTime`."""


@dataclass(frozen=True)
class Compose(EventTransform):
    """Apply transforms in order: ``Compose([Denoise(), Downsample(4), ToFrame(...)])``.

    ``__call__(events, rng=None)`` turns ``rng`` into one Generator and passes it to every
    child, so a seed reproduces the whole pipeline. Children must be :class:`EventTransform`
    objects (plain callables would break pickling and cache keys).
    """

    transforms: tuple[EventTransform, ...]

    def __post_init__(self) -> None:
        items = tuple(self.transforms)
        for tr in items:
            if not isinstance(tr, EventTransform):
                raise TypeError(
                    f"Compose takes spikeloom EventTransform objects, got {tr!r}; wrap custom "
                    f"code in a small dataclass deriving from EventTransform"
                )
        _set(self, "transforms", items)

    @property
    def is_random(self) -> bool:
        return any(tr.is_random for tr in self.transforms)

    def params(self) -> dict[str, Any]:
        return {
            "transforms": [
                {"name": type(tr).__name__, "version": tr.version, "params": tr.params()}
                for tr in self.transforms
            ]
        }

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> Any:
        g = _as_generator(rng) if self.is_random else None
        out: Any = events
        for tr in self.transforms:
            out = tr(out, rng=g)
        return out

    def __len__(self) -> int:
        return len(self.transforms)

    def __getitem__(self, i: int) -> EventTransform:
        return self.transforms[i]
