"""Slicers: small frozen objects that cut an event stream into (possibly overlapping) slices.

A slicer's :meth:`indices` takes a time-sorted event array ``[N]`` (or its timestamps) and
returns two intp vectors ``(start [J], stop [J])``: slice ``j`` holds the events
``start[j] .. stop[j]-1``. Starts and stops are non-decreasing and consecutive slices leave no
gap (``start[j+1] <= stop[j]``); slices may overlap or be empty. Slicing never copies events.

============================================  ================================================
:class:`SliceByTime` ``(window, overlap)``    windows of ``window`` µs, stride
                                              ``window - overlap``, covering the recording
:class:`SliceByTimeBins` ``(n)``              ``n`` slices of equal duration
:class:`SliceByEventCount` ``(count, overlap)``  windows of ``count`` events, stride
                                              ``count - overlap``
:class:`SliceByEventBins` ``(n)``             ``n`` slices of ``floor(N/n)`` events, the last
                                              one takes the remainder
============================================  ================================================

:func:`~spikeloom.events.frames.to_frame` builds one from its keywords (``time_window``,
``n_time_bins``, ``event_count``, ``n_event_bins``) or takes one as ``slicer=``. The exact
rules are in each class's docstring; ``to_frame``'s docstring has the same rules in its terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

import numpy as np

from ._checks import INT64_MAX, INT64_MIN, int_param

__all__ = [
    "SliceByEventBins",
    "SliceByEventCount",
    "SliceByTime",
    "SliceByTimeBins",
    "Slicer",
]


class Slicer(Protocol):
    """What :func:`~spikeloom.events.frames.to_frame` needs from a slicer."""

    by_time: ClassVar[bool]
    """True when the slices depend on the timestamps (the events must be sorted by time)."""

    def indices(self, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(start [J], stop [J])`` for a time-sorted event array (or its timestamps)."""
        ...  # pragma: no cover


def _timestamps(events: np.ndarray) -> np.ndarray:
    """The timestamps ``t`` of an event array, or ``events`` itself if it is a 1-D vector."""
    if events.dtype.names:
        return events["t"]
    if events.ndim != 1:
        raise ValueError(f"expected events [N] or timestamps [N], got shape {events.shape}")
    return events


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
    return np.array([min(max(int(v), INT64_MIN), INT64_MAX) for v in values], dtype=np.int64)


def _n_windows(length: int, size: int, stride: int, include_incomplete: bool) -> int:
    """Windows of ``size`` with ``stride`` over ``length`` units (µs or events).

    With ``include_incomplete`` the smallest number whose union covers all ``length`` units,
    else the number lying entirely inside them.
    """
    if length <= 0:
        return 0
    if include_incomplete:
        return 1 if length <= size else -(-(length - size) // stride) + 1
    return (length - size) // stride + 1 if length >= size else 0


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def _check_overlap(obj: Any, size_name: str) -> None:
    _set(obj, "overlap", int_param(obj.overlap, "overlap", 0))
    size = getattr(obj, size_name)
    if obj.overlap >= size:
        raise ValueError(f"overlap ({obj.overlap}) must be smaller than {size_name} ({size})")


def _check_n_slices(obj: Any) -> None:
    if obj.n_slices is not None:
        _set(obj, "n_slices", int_param(obj.n_slices, "n_slices", 0))
        if not obj.include_incomplete:
            raise ValueError(
                "include_incomplete=False has no effect with a fixed number of slices "
                "(n_frames / n_slices: slices past the end are empty); drop one of the two options"
            )


@dataclass(frozen=True)
class SliceByTime:
    """Windows of ``window`` µs with a stride of ``window - overlap`` µs.

    With ``t0 = start_time`` (default: the first timestamp), window ``j`` holds the events with
    ``t0 + j*s <= t < t0 + j*s + window`` (``s = window - overlap``). By default the windows
    cover the whole recording: ``J`` is the smallest number whose union contains
    ``[t0, t_last]``, so the last event always lands in a window. ``include_incomplete=False``
    keeps only windows lying entirely in ``[t0, t_last]`` (``end - 1 <= t_last``).
    ``n_slices=J`` fixes the number of windows (later events are ignored, missing windows are
    empty). Events before ``start_time`` are ignored.

    Attributes:
        window: window length in µs (``>= 1``).
        overlap: overlap of consecutive windows in µs (``0 <= overlap < window``).
        include_incomplete: keep the last window even if it extends past ``t_last``.
        n_slices: fixed number of windows (``None``: cover the recording).
        start_time: ``t0`` in µs (``None``: the first timestamp).
    """

    window: int
    overlap: int = 0
    include_incomplete: bool = True
    n_slices: int | None = None
    start_time: int | None = None
    by_time: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _set(self, "window", int_param(self.window, "window", 1))
        _check_overlap(self, "window")
        _check_n_slices(self)
        if self.start_time is not None:
            _set(self, "start_time", int_param(self.start_time, "start_time", INT64_MIN))

    def indices(self, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(start [J], stop [J])`` for a time-sorted event array or timestamp vector ``[N]``."""
        t = _timestamps(events)
        n = t.shape[0]
        t0 = self.start_time if self.start_time is not None else (int(t[0]) if n else 0)
        span = (int(t[-1]) - t0 + 1) if n else 0  # µs in [t0, t_last]; <= 0 when no event
        stride = self.window - self.overlap
        if self.n_slices is not None:
            count = self.n_slices
        else:
            count = _n_windows(span, self.window, stride, self.include_incomplete)
        if count and INT64_MIN <= t0 and t0 + (count - 1) * stride + self.window <= INT64_MAX:
            starts = t0 + stride * np.arange(count, dtype=np.int64)  # no overflow possible
            ends = starts + self.window
        else:  # rare: edges past the int64 range, clipped in Python integers
            begin = [t0 + j * stride for j in range(count)]
            starts, ends = _clip_i64(begin), _clip_i64([s + self.window for s in begin])
        return _lower_bound(t, starts), _lower_bound(t, ends)


@dataclass(frozen=True)
class SliceByTimeBins:
    """``n`` slices of equal duration spanning ``[t0, t_last]``.

    ``t0 = start_time`` (default: the first timestamp; earlier events are ignored), ``t_last``
    the last timestamp. ``rule="exact"`` (default): with ``span = t_last - t0 + 1`` µs, slice
    ``j`` holds ``j*span/n <= t - t0 < (j+1)*span/n`` (exact rational edges, so the last event
    counts). ``rule="floor"`` (SpikingJelly's rule): ``dT = floor((t_last - t0)/n)``, slice
    ``j`` holds ``t0 + j*dT <= t < t0 + (j+1)*dT`` and the last slice takes everything from
    ``t0 + (n-1)*dT`` on. Without events (or with ``t0 > t_last``) all slices are empty.
    """

    n: int
    start_time: int | None = None
    rule: Literal["exact", "floor"] = "exact"
    by_time: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _set(self, "n", int_param(self.n, "n_time_bins", 1))
        if self.start_time is not None:
            _set(self, "start_time", int_param(self.start_time, "start_time", INT64_MIN))
        if self.rule not in ("exact", "floor"):
            raise ValueError(f"time_bins_rule must be 'exact' or 'floor', got {self.rule!r}")

    def indices(self, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(start [n], stop [n])`` for a time-sorted event array or timestamp vector ``[N]``."""
        t = _timestamps(events)
        size = t.shape[0]
        m = self.n
        t0 = self.start_time if self.start_time is not None else (int(t[0]) if size else 0)
        t_last = int(t[-1]) if size else t0 - 1
        span = t_last - t0 + 1
        if span <= 0:
            z = np.zeros(m, np.intp)
            return z, z.copy()
        if self.rule == "exact":
            # slice j: t - t0 >= ceil(j*span/m) and t - t0 < ceil((j+1)*span/m)
            edges = [t0 + -(-(j * span) // m) for j in range(m + 1)]
            bounds = _lower_bound(t, _clip_i64(edges))
            bounds[-1] = size  # edge m is t_last + 1
        else:
            dt = (t_last - t0) // m
            bounds = np.empty(m + 1, np.intp)
            bounds[:m] = _lower_bound(t, _clip_i64([t0 + j * dt for j in range(m)]))
            bounds[m] = size
        return bounds[:-1].copy(), bounds[1:].copy()


@dataclass(frozen=True)
class SliceByEventCount:
    """Windows of ``count`` consecutive events with a stride of ``count - overlap`` events.

    By default (``include_incomplete=True``) the last, possibly shorter window is kept so that
    every event is in some window; ``False`` drops incomplete windows. ``n_slices`` fixes the
    number of windows (missing ones are empty). Only the number of events is used.
    """

    count: int
    overlap: int = 0
    include_incomplete: bool = True
    n_slices: int | None = None
    by_time: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _set(self, "count", int_param(self.count, "event_count", 1))
        _check_overlap(self, "count")
        _check_n_slices(self)

    def indices(self, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(start [J], stop [J])`` for ``N = len(events)`` events."""
        n = _timestamps(events).shape[0]
        stride = self.count - self.overlap
        if self.n_slices is not None:
            n_win = self.n_slices
        else:
            n_win = _n_windows(n, self.count, stride, self.include_incomplete)
        lo = np.minimum(np.arange(n_win, dtype=np.intp) * stride, n)
        hi = np.minimum(lo + self.count, n)
        return lo, hi


@dataclass(frozen=True)
class SliceByEventBins:
    """``n`` slices by event index: with ``B = floor(N/n)``, slice ``j`` holds events
    ``[j*B, (j+1)*B)`` and the last slice also takes the remainder (all events when ``N < n``).
    """

    n: int
    by_time: ClassVar[bool] = False

    def __post_init__(self) -> None:
        _set(self, "n", int_param(self.n, "n_event_bins", 1))

    def indices(self, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(start [n], stop [n])`` for ``N = len(events)`` events."""
        size = _timestamps(events).shape[0]
        base = size // self.n
        lo = np.arange(self.n, dtype=np.intp) * base
        hi = lo + base
        hi[-1] = size
        return lo, hi
