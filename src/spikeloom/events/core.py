"""The event-array type shared by every reader, transform and dataset.

An event stream is a numpy structured array with the fields

==========  =========  ==========================================================
field       dtype      meaning
==========  =========  ==========================================================
``x``       ``<u2``    column (0 .. W-1)
``y``       ``<u2``    row (0 .. H-1)
``p``       ``u1``     polarity: 1 = ON (brightening), 0 = OFF (darkening)
``t``       ``<i8``    timestamp in microseconds
==========  =========  ==========================================================

:class:`EventArray` is an ``ndarray`` subclass of that dtype that also carries the
sensor size ``(W, H, P)``. Every function of the library that takes events accepts either an
:class:`EventArray` or a plain structured array of :data:`EVENT_DTYPE` together with an explicit
``sensor_size``; :func:`as_events` performs that normalisation.

Tensor interchange (:func:`to_tensor` / :func:`from_tensor`) uses an ``int64`` tensor of shape
``[N, 4]`` whose columns are, in this order, **(t, x, y, p)**.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

EVENT_DTYPE = np.dtype([("x", "<u2"), ("y", "<u2"), ("p", "u1"), ("t", "<i8")])

SensorSize = tuple[int, int, int]
"""``(W, H, P)``: sensor width, height and number of polarities."""

TENSOR_COLUMNS: tuple[str, str, str, str] = ("t", "x", "y", "p")
"""Column order of the ``[N, 4]`` tensors made by :func:`to_tensor`."""

_U16_MAX = int(np.iinfo(np.uint16).max)
_U8_MAX = int(np.iinfo(np.uint8).max)

__all__ = [
    "EVENT_DTYPE",
    "TENSOR_COLUMNS",
    "EventArray",
    "SensorSize",
    "as_events",
    "check_sensor_size",
    "concatenate",
    "from_tensor",
    "make_events",
    "sort_by_time",
    "to_tensor",
]


def check_sensor_size(sensor_size: Any) -> SensorSize:
    """Validate ``sensor_size`` and return it as a tuple of three positive Python ints.

    Args:
        sensor_size: ``(W, H, P)``; W and H at most 65536 (the ``x``/``y`` fields are uint16),
            P at most 256 (the ``p`` field is uint8).

    Raises:
        ValueError: when it is not three positive integers in those ranges.
    """
    try:
        values = tuple(sensor_size)
    except TypeError:
        raise ValueError(
            f"sensor_size must be a (W, H, P) tuple of 3 positive ints, got {sensor_size!r}"
        ) from None
    if len(values) != 3:
        raise ValueError(
            f"sensor_size must have 3 entries (W, H, P), got {len(values)}: {sensor_size!r}"
        )
    out = []
    for name, v in zip(("W", "H", "P"), values):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) <= 0:
            raise ValueError(
                f"sensor_size {name} must be a positive int, got {v!r} in {sensor_size!r}"
            )
        out.append(int(v))
    w, h, p = out
    if w > _U16_MAX + 1 or h > _U16_MAX + 1:
        raise ValueError(f"sensor_size W and H must be <= 65536 (uint16 coords), got {values}")
    if p > _U8_MAX + 1:
        raise ValueError(f"sensor_size P must be <= 256 (uint8 polarity), got {p}")
    return (w, h, p)


def _check_ranges(arr: np.ndarray, sensor_size: SensorSize) -> None:
    """Raise ValueError if any coordinate of the structured ``arr`` lies outside the sensor."""
    if arr.size == 0:
        return
    w, h, p = sensor_size
    for field, limit, label in (("x", w, "W"), ("y", h, "H"), ("p", p, "P")):
        col = arr[field]
        bad = np.flatnonzero(col >= limit)
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"event {i} has {field}={int(col[i])} but the sensor size {sensor_size} allows "
                f"{field} < {label}={limit} ({bad.size} events out of range); pass the right "
                f"sensor_size or filter the events first"
            )


class EventArray(np.ndarray):
    """Structured event array of :data:`EVENT_DTYPE` that remembers its sensor size.

    Shape ``[N]`` (one-dimensional), fields ``x, y, p, t`` (see the module docstring). The
    attribute :attr:`sensor_size` ``(W, H, P)`` survives slicing, boolean/fancy indexing,
    ``copy()``, ``np.sort`` and pickling. Selecting a field (``ev["t"]``) returns a plain
    ``np.ndarray`` view, not an ``EventArray``.

    Build one with :func:`make_events` (from columns, validated) or :func:`as_events` (from an
    existing structured array); the constructor ``EventArray(data, sensor_size)`` does the same
    as :func:`as_events`.
    """

    sensor_size: SensorSize | None

    def __new__(cls, data: Any, sensor_size: Sequence[int]) -> EventArray:
        return as_events(data, sensor_size)

    def __array_finalize__(self, obj: Any) -> None:
        self.sensor_size = getattr(obj, "sensor_size", None)

    def __getitem__(self, key: Any) -> Any:
        out = super().__getitem__(key)
        if isinstance(out, np.ndarray) and out.dtype != EVENT_DTYPE:
            return out.view(np.ndarray)
        return out

    def __reduce__(self) -> tuple[Any, ...]:
        func, args, state = super().__reduce__()[:3]
        return func, args, (state, self.sensor_size)

    def __setstate__(self, state: Any) -> None:
        nd_state, sensor_size = state
        super().__setstate__(nd_state)
        self.sensor_size = sensor_size

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        # Ufunc results (comparisons, ...) are never event streams: return plain ndarrays.
        plain = tuple(i.view(np.ndarray) if isinstance(i, EventArray) else i for i in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(
                o.view(np.ndarray) if isinstance(o, EventArray) else o for o in kwargs["out"]
            )
        return getattr(ufunc, method)(*plain, **kwargs)

    def __repr__(self) -> str:
        body = np.array2string(self.view(np.ndarray), separator=", ", threshold=6)
        return f"EventArray({body}, n={self.size}, sensor_size={self.sensor_size})"

    def __str__(self) -> str:
        return self.__repr__()

    @property
    def duration(self) -> int:
        """``t.max() - t.min()`` in µs (0 for an empty array)."""
        if self.size == 0:
            return 0
        t = self["t"]
        return int(t.max() - t.min())


def _new_event_array(arr: np.ndarray, sensor_size: SensorSize) -> EventArray:
    out = arr.view(EventArray)
    out.sensor_size = sensor_size
    return out


def make_events(
    x: Any, y: Any, p: Any, t: Any, sensor_size: Sequence[int], *, validate: bool = True
) -> EventArray:
    """Build an :class:`EventArray` from four equally long 1-D columns.

    Args:
        x: columns ``[N]``, integers in ``0 .. W-1``.
        y: rows ``[N]``, integers in ``0 .. H-1``.
        p: polarities ``[N]`` (ints or bools), ``0 .. P-1``.
        t: timestamps ``[N]`` in µs; integer, or float holding whole numbers.
        sensor_size: ``(W, H, P)``.
        validate: check the ranges (vectorised; turn off only for data already checked).

    Returns:
        EventArray of shape ``[N]``.

    Raises:
        ValueError: mismatched lengths, negative or out-of-range values, non-integral times.
    """
    size = check_sensor_size(sensor_size)
    cols = {}
    for name, val in (("x", x), ("y", y), ("p", p), ("t", t)):
        a = np.asarray(val)
        if a.ndim != 1:
            raise ValueError(f"{name} must be 1-D [N], got shape {a.shape}")
        if a.dtype == np.bool_:
            a = a.astype(np.uint8)
        if a.dtype.kind == "f":
            if a.size and not np.all(np.isfinite(a) & (a == np.round(a))):
                raise ValueError(
                    f"{name} has non-integral or non-finite values; round them first "
                    f"(timestamps are integer microseconds)"
                )
        elif a.dtype.kind not in "iu" and a.size:
            raise ValueError(f"{name} must hold integers, got dtype {a.dtype}")
        cols[name] = a
    n = cols["x"].shape[0]
    lengths = {k: v.shape[0] for k, v in cols.items()}
    if any(v != n for v in lengths.values()):
        raise ValueError(f"x, y, p, t must have the same length, got {lengths}")
    if validate and n:
        for name in ("x", "y", "p"):
            a = cols[name]
            if a.min() < 0:
                raise ValueError(f"{name} has negative values (min {a.min()}); must be >= 0")
        w, h, pp = size
        for name, limit, label in (("x", w, "W"), ("y", h, "H"), ("p", pp, "P")):
            a = cols[name]
            if a.max() >= limit:
                i = int(np.argmax(a >= limit))
                raise ValueError(
                    f"event {i} has {name}={a[i]} but the sensor size {size} allows "
                    f"{name} < {label}={limit}"
                )
        if cols["t"].dtype.kind == "u" and cols["t"].max() > np.iinfo(np.int64).max:
            raise ValueError("t values exceed the int64 range")
    out = np.empty(n, dtype=EVENT_DTYPE)
    for name in ("x", "y", "p", "t"):
        out[name] = cols[name]
    return _new_event_array(out, size)


def as_events(arr: Any, sensor_size: Sequence[int] | None = None) -> EventArray:
    """Return ``arr`` as an :class:`EventArray` (no copy when it already is one).

    Args:
        arr: an :class:`EventArray`, or a 1-D structured array with (at least) integer/bool
            fields ``x, y, p, t`` (any order, any integer widths, e.g. tonic's dtype).
        sensor_size: ``(W, H, P)``. Required for plain arrays; for an :class:`EventArray` it
            may be given to override (the ranges are then re-checked).

    Returns:
        EventArray ``[N]``. Coordinates are checked against the sensor size (vectorised).

    Raises:
        ValueError: missing sensor size, wrong fields, or coordinates outside the sensor.
    """
    if isinstance(arr, EventArray) and sensor_size is None:
        if arr.sensor_size is None:
            raise ValueError(
                "this EventArray has no sensor_size; pass sensor_size=(W, H, P) explicitly"
            )
        return arr
    if sensor_size is None:
        raise ValueError(
            "a plain structured array carries no sensor size: pass sensor_size=(W, H, P) "
            "or use an EventArray"
        )
    size = check_sensor_size(sensor_size)
    a = np.asarray(arr)
    if a.dtype.names is None:
        raise ValueError(
            f"expected a structured array with fields x, y, p, t, got dtype {a.dtype}; use "
            f"make_events(x, y, p, t, sensor_size) for separate columns"
        )
    if a.ndim != 1:
        raise ValueError(f"event arrays must be 1-D [N], got shape {a.shape}")
    missing = [f for f in ("x", "y", "p", "t") if f not in a.dtype.names]
    if missing:
        raise ValueError(f"structured array lacks fields {missing}; it has {a.dtype.names}")
    if a.dtype == EVENT_DTYPE:
        out = a.view(np.ndarray)
        _check_ranges(out, size)
        return _new_event_array(out, size)
    return make_events(a["x"], a["y"], a["p"], a["t"], size)


def to_tensor(events: Any, sensor_size: Sequence[int] | None = None) -> torch.Tensor:
    """Events → ``int64`` tensor ``[N, 4]`` with columns **(t, x, y, p)** (:data:`TENSOR_COLUMNS`).

    One column copy per field, no per-event work. ``sensor_size`` is only needed for plain
    structured arrays (it is used for validation, then dropped: keep it yourself).
    """
    ev = as_events(events, sensor_size)
    out = np.empty((ev.shape[0], 4), dtype=np.int64)
    for j, name in enumerate(TENSOR_COLUMNS):
        out[:, j] = ev[name]
    return torch.from_numpy(out)


def from_tensor(tensor: torch.Tensor, sensor_size: Sequence[int]) -> EventArray:
    """Inverse of :func:`to_tensor`: ``[N, 4]`` tensor with columns (t, x, y, p) → EventArray.

    Accepts any integer dtype and device (copied to CPU). Values are range-checked.
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor [N, 4], got {type(tensor).__name__}")
    if tensor.ndim != 2 or tensor.shape[1] != 4:
        raise ValueError(
            f"expected a tensor of shape [N, 4] (t, x, y, p), got {tuple(tensor.shape)}"
        )
    if tensor.is_floating_point() or tensor.is_complex():
        raise ValueError(f"expected an integer tensor, got dtype {tensor.dtype}")
    a = tensor.detach().to("cpu", torch.int64).numpy()
    return make_events(a[:, 1], a[:, 2], a[:, 3], a[:, 0], sensor_size)


def concatenate(arrays: Iterable[Any], sensor_size: Sequence[int] | None = None) -> EventArray:
    """Concatenate event arrays that share one sensor size (order kept, no sorting).

    Args:
        arrays: EventArrays (or plain structured arrays, then ``sensor_size`` is required).
        sensor_size: the common sensor size; if ``None`` it is taken from the EventArrays,
            which must all agree.

    Raises:
        ValueError: when the sensor sizes disagree or none can be determined.
    """
    items = list(arrays)
    if sensor_size is None:
        sizes = {a.sensor_size for a in items if isinstance(a, EventArray)}
        sizes.discard(None)
        if len(sizes) > 1:
            raise ValueError(f"cannot concatenate events of different sensor sizes: {sizes}")
        if not sizes:
            raise ValueError("no sensor size known: pass sensor_size=(W, H, P)")
        size = sizes.pop()
    else:
        size = check_sensor_size(sensor_size)
    parts = [as_events(a, size).view(np.ndarray) for a in items]
    data = np.concatenate(parts) if parts else np.empty(0, dtype=EVENT_DTYPE)
    return _new_event_array(data, size)


def sort_by_time(events: Any, sensor_size: Sequence[int] | None = None) -> EventArray:
    """Return the events sorted by ``t`` (stable: equal times keep their order)."""
    ev = as_events(events, sensor_size)
    t = ev["t"]
    if t.size < 2 or bool(np.all(t[1:] >= t[:-1])):
        return ev
    return ev[np.argsort(t, kind="stable")]
