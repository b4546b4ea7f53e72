"""N-MNIST / N-Caltech101 ATIS ``.bin`` files (40-bit records): read and write.

Both datasets were recorded with an ATIS camera moved in three saccades in front of a screen
(Orchard, Jayawant, Cohen and Thakor, "Converting static image datasets to spiking neuromorphic
datasets using saccades", Frontiers in Neuroscience 9:437, 2015) and share this file format.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ...atomic import atomic_write
from ..core import EVENT_DTYPE, EventArray, SensorSize, as_events, check_sensor_size
from ._common import PathLike, _damaged, _first_true, _read_bytes
from .formats import register_format

__all__ = [
    "ATIS_OVERFLOW_INCREMENT",
    "ATIS_OVERFLOW_Y",
    "NCALTECH101_SENSOR",
    "NMNIST_SENSOR",
    "read_ncaltech101_bin",
    "read_nmnist_bin",
    "write_nmnist_bin",
]

NMNIST_SENSOR: SensorSize = (34, 34, 2)
NCALTECH101_SENSOR: SensorSize = (240, 180, 2)
ATIS_OVERFLOW_Y = 240
"""``y`` value that marks a timestamp-overflow record in the ATIS ``.bin`` format."""
ATIS_OVERFLOW_INCREMENT = 2**13
"""µs added to all later timestamps by each overflow record (value of the dataset authors'
reference readers ``Read_Ndataset.m`` / ``eventvision.py``)."""

_ATIS_RECORD = 5
_ATIS_TS_MAX = 2**23 - 1


_SMALLEST = "smallest"  # sensor_size: N-MNIST's if every event fits, else N-Caltech101's


def _read_atis(
    path: PathLike,
    sensor_size: Sequence[int] | str | None,
    strict: bool,
    overflow_y: int | None,
    overflow_increment: int,
) -> EventArray:
    """Decode an ATIS ``.bin`` file; see :func:`read_nmnist_bin` for the record layout."""
    raw = np.frombuffer(_read_bytes(path), dtype=np.uint8)
    n_rec = raw.size // _ATIS_RECORD
    rec = raw[: n_rec * _ATIS_RECORD].reshape(n_rec, _ATIS_RECORD)
    x = rec[:, 0]
    y = rec[:, 1]
    p = rec[:, 2] >> 7
    ts = (
        ((rec[:, 2] & 0x7F).astype(np.int64) << 16)
        | (rec[:, 3].astype(np.int64) << 8)
        | rec[:, 4].astype(np.int64)
    )
    if overflow_y is not None:
        is_overflow = y == overflow_y
        if is_overflow.any():
            # Each marker adds the increment to its own and every later timestamp.
            ts = ts + np.cumsum(is_overflow, dtype=np.int64) * int(overflow_increment)
    else:
        is_overflow = np.zeros(n_rec, dtype=bool)

    if isinstance(sensor_size, str):  # _SMALLEST (read_events): the file holds no size
        ev_x, ev_y = (x[~is_overflow], y[~is_overflow]) if is_overflow.any() else (x, y)
        fits = ev_x.size == 0 or (ev_x.max() < NMNIST_SENSOR[0] and ev_y.max() < NMNIST_SENSOR[1])
        sensor_size = NMNIST_SENSOR if fits else NCALTECH101_SENSOR
    # Find the first damaged record (out-of-range coordinate) and the truncated tail.
    problems: list[tuple[int, int, str]] = []  # (record index, byte offset, detail)
    if sensor_size is not None:
        size = check_sensor_size(sensor_size)
        bad = ((x >= size[0]) | (y >= size[1]) | (p >= size[2])) & ~is_overflow
        i = _first_true(bad)
        if i >= 0:
            problems.append(
                (
                    i,
                    i * _ATIS_RECORD,
                    f"record {i} has x={x[i]}, y={y[i]}, p={p[i]} outside the sensor size "
                    f"{size} (wrong sensor_size or not an ATIS .bin file?)",
                )
            )
    if raw.size % _ATIS_RECORD:
        problems.append(
            (
                n_rec,
                n_rec * _ATIS_RECORD,
                f"file size {raw.size} is not a multiple of {_ATIS_RECORD} bytes: truncated "
                f"record at byte {n_rec * _ATIS_RECORD}",
            )
        )
    n_ok = n_rec
    if problems:
        i, off, detail = min(problems)
        n_ok = i
        keep_pref = ~is_overflow[:n_ok]
        _damaged(path, off, detail, strict, int(keep_pref.sum()))
    keep = ~is_overflow[:n_ok]
    x, y, p, ts = x[:n_ok][keep], y[:n_ok][keep], p[:n_ok][keep], ts[:n_ok][keep]
    if sensor_size is None:
        size = (int(x.max()) + 1 if x.size else 1, int(y.max()) + 1 if y.size else 1, 2)
    out = np.empty(x.size, dtype=EVENT_DTYPE)
    out["x"], out["y"], out["p"], out["t"] = x, y, p, ts
    ev = out.view(EventArray)
    ev.sensor_size = size
    return ev


def read_nmnist_bin(
    path: PathLike,
    strict: bool = True,
    *,
    sensor_size: Sequence[int] | None = NMNIST_SENSOR,
    overflow_y: int | None = ATIS_OVERFLOW_Y,
    overflow_increment: int = ATIS_OVERFLOW_INCREMENT,
) -> EventArray:
    """Read one N-MNIST ``.bin`` recording (Orchard et al. 2015).

    Record layout (5 bytes, big-endian bit order): byte 0 = x, byte 1 = y, bit 7 of byte 2 =
    polarity (1 = ON), the remaining 23 bits (byte 2 bits 6..0, byte 3, byte 4) = timestamp
    in µs.

    Timestamp overflow: following the dataset authors' reference readers (Orchard's
    ``Read_Ndataset.m`` and ``eventvision.py``), a record whose ``y`` equals ``overflow_y``
    (240) is not an event but a marker; it adds ``overflow_increment`` (2**13 µs in those
    readers, even though the field has 23 bits; we reproduce that value) to its own and all
    later timestamps, and is dropped. Set ``overflow_y=None`` to disable. None of the
    shared N-MNIST recordings contains such a marker (their timestamps stay below 2**23).

    Args:
        path: the ``.bin`` file.
        strict: raise :class:`EventFileError` on a truncated file or an out-of-range record;
            with ``False`` return the events before it and warn.
        sensor_size: ``(W, H, P)`` used for validation and stored on the result; ``None``
            infers ``(max x + 1, max y + 1, 2)`` (no range check).
        overflow_y: marker ``y`` value (see above) or ``None``.
        overflow_increment: µs added per marker.

    Returns:
        EventArray ``[N]`` in file order (N-MNIST files are time-sorted), sensor ``(34, 34, 2)``.
    """
    return _read_atis(path, sensor_size, strict, overflow_y, overflow_increment)


def read_ncaltech101_bin(
    path: PathLike,
    strict: bool = True,
    *,
    sensor_size: Sequence[int] | None = NCALTECH101_SENSOR,
    overflow_y: int | None = ATIS_OVERFLOW_Y,
    overflow_increment: int = ATIS_OVERFLOW_INCREMENT,
) -> EventArray:
    """Read one N-Caltech101 ``.bin`` recording (Orchard et al. 2015).

    Same 40-bit format as :func:`read_nmnist_bin`.

    The default sensor size is ``(240, 180, 2)`` (the size other tools use for N-Caltech101;
    individual recordings are smaller). ``sensor_size=None`` infers ``(max x+1, max y+1, 2)``.
    Not tested on real N-Caltech101 files (none available); the format is the N-MNIST one.
    """
    return _read_atis(path, sensor_size, strict, overflow_y, overflow_increment)


def write_nmnist_bin(
    path: PathLike,
    events: Any,
    sensor_size: Sequence[int] | None = None,
    *,
    overflow: Literal["error", "marker"] = "error",
    overflow_y: int = ATIS_OVERFLOW_Y,
    overflow_increment: int = ATIS_OVERFLOW_INCREMENT,
) -> Path:
    """Write events in the N-MNIST / N-Caltech101 40-bit ``.bin`` format (atomically).

    Args:
        path: destination file.
        events: EventArray (or structured array + ``sensor_size``); x, y < 256, p in {0, 1},
            t >= 0. Written in the given order.
        sensor_size: for plain structured arrays.
        overflow: timestamps above 2**23 - 1 µs either raise (``"error"``) or are encoded with
            overflow markers (``"marker"``: records with ``y = overflow_y`` inserted before the
            first event that needs them, each worth ``overflow_increment`` µs, as decoded by
            :func:`read_nmnist_bin`; then the events must be sorted by time).
        overflow_y: marker ``y`` value; no event may have this ``y``.
        overflow_increment: µs per marker.

    Returns:
        The path written.
    """
    ev = as_events(events, sensor_size)
    x = ev["x"].astype(np.int64)
    y = ev["y"].astype(np.int64)
    p = ev["p"].astype(np.int64)
    t = ev["t"].astype(np.int64)
    if x.size:
        if x.max() > 255 or y.max() > 255:
            raise ValueError("the ATIS .bin format stores x and y in one byte each (< 256)")
        if p.max() > 1:
            raise ValueError("the ATIS .bin format stores one polarity bit (p in {0, 1})")
        if t.min() < 0:
            raise ValueError(f"timestamps must be >= 0, got min {t.min()}")
        if np.any(y == overflow_y):
            raise ValueError(
                f"an event has y={overflow_y}, which readers treat as an overflow marker"
            )
    k = np.zeros(t.size, dtype=np.int64)
    if t.size and t.max() > _ATIS_TS_MAX:
        if overflow == "error":
            raise ValueError(
                f"timestamp {t.max()} µs does not fit the 23-bit field (max {_ATIS_TS_MAX}); "
                f"pass overflow='marker' to encode overflow records"
            )
        if overflow != "marker":
            raise ValueError(f"overflow must be 'error' or 'marker', got {overflow!r}")
        if np.any(np.diff(t) < 0):
            raise ValueError("overflow='marker' needs events sorted by time")
        inc = int(overflow_increment)
        k = np.maximum(0, -((-(t - _ATIS_TS_MAX)) // inc))  # ceil((t - max) / inc), >= 0
    n_markers = int(k[-1]) if k.size else 0
    n_total = t.size + n_markers
    rec = np.zeros((n_total, _ATIS_RECORD), dtype=np.uint8)
    ev_pos = np.arange(t.size, dtype=np.int64) + k
    ts = t - k * int(overflow_increment)
    rec[ev_pos, 0] = x
    rec[ev_pos, 1] = y
    rec[ev_pos, 2] = (p << 7) | ((ts >> 16) & 0x7F)
    rec[ev_pos, 3] = (ts >> 8) & 0xFF
    rec[ev_pos, 4] = ts & 0xFF
    if n_markers:
        j = np.arange(1, n_markers + 1)
        marker_pos = np.searchsorted(k, j, side="left") + (j - 1)
        rec[marker_pos, 1] = overflow_y
    data = rec.tobytes()
    return atomic_write(path, lambda fh: fh.write(data), make_dirs=False)


def _read_atis_any(path: PathLike, strict: bool = True, **kwargs: Any) -> EventArray:
    """The :func:`~spikeloom.events.io.read_events` reader of ``.bin`` files.

    Decodes like :func:`read_nmnist_bin`; the sensor size (the file does not store one) is
    N-MNIST's ``(34, 34, 2)`` when every event fits it, else N-Caltech101's ``(240, 180, 2)``.
    Keyword arguments are those of :func:`read_nmnist_bin`.
    """
    return _read_atis(
        path,
        kwargs.pop("sensor_size", _SMALLEST),
        strict,
        kwargs.pop("overflow_y", ATIS_OVERFLOW_Y),
        kwargs.pop("overflow_increment", ATIS_OVERFLOW_INCREMENT),
        **kwargs,
    )


register_format(
    "atis",
    _read_atis_any,
    aliases=("nmnist", "n_mnist", "ncaltech101", "n_caltech101"),
    suffixes=(".bin",),
    description="N-MNIST / N-Caltech101 ATIS 40-bit records",
    hint="read_nmnist_bin(path) or read_ncaltech101_bin(path)",
)
