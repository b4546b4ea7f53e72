"""Readers and writers for event files (and the MNIST IDX reader).

Every reader returns an :class:`~spikeloom.events.core.EventArray` (fields ``x, y, p, t``, sensor
size ``(W, H, P)``) and decodes with vectorised numpy: the only Python loops run once per file
header line or per packet (AEDAT 3.1/4), never per event.

Formats (spec §5 and §11 of ``snn.md``):

* N-MNIST / N-Caltech101 ``.bin`` (ATIS, 5-byte records): :func:`read_nmnist_bin`,
  :func:`read_ncaltech101_bin`, :func:`write_nmnist_bin`.
* AEDAT 2.0 (jAER; DVS128, DAVIS): :func:`read_aedat2_header`, :func:`read_aedat2`,
  :func:`write_aedat2`, :func:`read_cifar10dvs`.
* AEDAT 3.1 (cAER; DVS128 Gesture): :func:`read_aedat31`, :func:`write_aedat31`,
  :func:`read_gesture_labels`, :func:`read_dvs_gesture`.
* AEDAT 4.0 (DV): :func:`read_aedat4` (packet framing parsed here, payloads decoded with the
  ``aedat`` package).
* SHD ``.h5``: :class:`SHDFile`, :func:`read_shd`.
* ES-ImageNet ``.npz``: :func:`read_es_imagenet_npz`, :func:`write_es_imagenet_npz`.
* spikeloom's own ``.npz`` / ``.h5``: :func:`save_events`, :func:`load_events`.
* MNIST IDX (``.gz`` or raw): :func:`read_idx`.

Damaged files raise :class:`EventFileError` (a ``ValueError``) naming the file, the byte offset
and what was expected. Readers with ``strict=False`` instead return the valid prefix (every
event before the first damaged record/packet) and emit an :class:`EventFileWarning`. No reader
ever returns a partial result silently.

All writers are atomic: they write a temporary file in the destination directory and move it
into place with :func:`os.replace`, so a crash never leaves a half-written file under the
final name.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import struct
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..atomic import atomic_write
from .core import (
    EVENT_DTYPE,
    EventArray,
    SensorSize,
    as_events,
    check_sensor_size,
    make_events,
    sort_by_time,
)

PathLike = str | os.PathLike

__all__ = [
    "AEDAT2_CAMERAS",
    "ATIS_OVERFLOW_INCREMENT",
    "ATIS_OVERFLOW_Y",
    "ES_IMAGENET_SENSOR",
    "NCALTECH101_SENSOR",
    "NMNIST_SENSOR",
    "SHD_SENSOR",
    "Aedat2Header",
    "EventFileError",
    "EventFileWarning",
    "GESTURE_LABEL_DTYPE",
    "SHDFile",
    "load_events",
    "read_aedat2",
    "read_aedat2_header",
    "read_aedat31",
    "read_aedat4",
    "read_cifar10dvs",
    "read_dvs_gesture",
    "read_es_imagenet_npz",
    "read_gesture_labels",
    "read_idx",
    "read_ncaltech101_bin",
    "read_nmnist_bin",
    "read_shd",
    "save_events",
    "write_aedat2",
    "write_aedat31",
    "write_es_imagenet_npz",
    "write_nmnist_bin",
]


# ------------------------------------------------------------------------------------------
# errors and small helpers
# ------------------------------------------------------------------------------------------


class EventFileError(ValueError):
    """A file is damaged, truncated or not in the expected format.

    Attributes:
        path: the file.
        offset: byte offset of the problem (``None`` when not meaningful, e.g. inside a zip).
        detail: what was found and what was expected.
    """

    def __init__(self, path: PathLike, offset: int | None, detail: str) -> None:
        self.path = str(path)
        self.offset = offset
        self.detail = detail
        where = f" at byte {offset}" if offset is not None else ""
        super().__init__(f"{self.path}{where}: {detail}")


class EventFileWarning(UserWarning):
    """Emitted by ``strict=False`` readers that return only the valid prefix of a file."""


def _damaged(path: PathLike, offset: int | None, detail: str, strict: bool, n_valid: int) -> None:
    """Raise (strict) or warn that only ``n_valid`` leading events are returned."""
    err = EventFileError(path, offset, detail)
    if strict:
        raise err
    warnings.warn(
        f"{err}; strict=False: returning the {n_valid} valid events before this point",
        EventFileWarning,
        stacklevel=3,
    )


def _atomic_write(path: PathLike, write: Callable[[io.BufferedWriter], None]) -> Path:
    """Call ``write(fh)`` on a temp file beside ``path`` and ``os.replace`` it into place."""
    return atomic_write(path, write, make_dirs=False)


def _read_bytes(path: PathLike) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"event file {p} does not exist")
    return p.read_bytes()


def _first_true(mask: np.ndarray) -> int:
    """Index of the first True of a boolean array, or -1."""
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else -1


# ------------------------------------------------------------------------------------------
# N-MNIST / N-Caltech101 (ATIS .bin, 40-bit records)
# ------------------------------------------------------------------------------------------

NMNIST_SENSOR: SensorSize = (34, 34, 2)
NCALTECH101_SENSOR: SensorSize = (240, 180, 2)
ATIS_OVERFLOW_Y = 240
"""``y`` value that marks a timestamp-overflow record in the ATIS ``.bin`` format."""
ATIS_OVERFLOW_INCREMENT = 2**13
"""µs added to all later timestamps by each overflow record (value of the dataset authors'
reference readers ``Read_Ndataset.m`` / ``eventvision.py``)."""

_ATIS_RECORD = 5
_ATIS_TS_MAX = 2**23 - 1


def _read_atis(
    path: PathLike,
    sensor_size: Sequence[int] | None,
    strict: bool,
    overflow_y: int | None,
    overflow_increment: int,
) -> EventArray:
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
    """Read one N-MNIST ``.bin`` recording (spec §11.2).

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
    """Read one N-Caltech101 ``.bin`` recording: same 40-bit format as :func:`read_nmnist_bin`.

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
    return _atomic_write(path, lambda fh: fh.write(data))


# ------------------------------------------------------------------------------------------
# AEDAT 2.0 (jAER)
# ------------------------------------------------------------------------------------------

AEDAT2_CAMERAS: dict[str, SensorSize] = {
    "dvs128": (128, 128, 2),
    "davis346": (346, 260, 2),
    "davis240": (240, 180, 2),
}
"""Address layouts understood by :func:`read_aedat2` and their sensor sizes."""

_HEADER_OK_BYTES = np.zeros(256, dtype=bool)
_HEADER_OK_BYTES[0x20:0x7F] = True
_HEADER_OK_BYTES[0x80:] = True  # UTF-8 / Latin-1 text in preferences
_HEADER_OK_BYTES[[0x09, 0x0A, 0x0D]] = True


def _split_hash_header(buf: bytes) -> tuple[list[str], int]:
    """Split leading ``#`` text lines (jAER/cAER style) from the binary payload.

    A line counts as header when it starts with ``#``, ends with ``\\n`` and holds only text
    bytes (tab, CR, LF, 0x20-0x7E, >= 0x80); this protects against binary data that happens to
    start with the byte ``0x23``. Returns the decoded lines (without line ends) and the byte
    offset where the data begin.
    """
    lines: list[str] = []
    pos = 0
    n = len(buf)
    while pos < n and buf[pos : pos + 1] == b"#":
        end = buf.find(b"\n", pos)
        if end < 0:
            break
        line = buf[pos : end + 1]
        if not _HEADER_OK_BYTES[np.frombuffer(line, dtype=np.uint8)].all():
            break
        lines.append(line.decode("latin-1").rstrip("\r\n"))
        pos = end + 1
    return lines, pos


@dataclass
class Aedat2Header:
    """Parsed ASCII header of an AEDAT 1.0/2.0 file.

    Attributes:
        version: format version from the first line (``"2.0"``), ``None`` if absent (AEDAT 1).
        lines: all header lines without the ``\\r\\n``.
        data_offset: byte offset where the binary events start.
        properties: ``"# Key: value"`` lines as a dict (e.g. ``"AEChip"``, ``"Creation date"``).
    """

    version: str | None
    lines: list[str]
    data_offset: int
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def chip(self) -> str | None:
        """The jAER chip class from the ``AEChip`` line (e.g. ``...davis.Davis346red``)."""
        return self.properties.get("AEChip")


_PROP_RE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9 _\-]*?)\s*:\s*(.*)$")


def _parse_aedat2_header(buf: bytes) -> Aedat2Header:
    lines, offset = _split_hash_header(buf)
    version = None
    if lines and lines[0].startswith("#!AER-DAT"):
        version = lines[0][len("#!AER-DAT") :].strip()
    props: dict[str, str] = {}
    for line in lines[1:]:
        if line.startswith("#<") or line.startswith("#!"):
            continue
        m = _PROP_RE.match(line)
        if m and m.group(1) not in props:
            props[m.group(1)] = m.group(2).strip()
    return Aedat2Header(version=version, lines=lines, data_offset=offset, properties=props)


def read_aedat2_header(path: PathLike) -> Aedat2Header:
    """Parse the ``#`` header of an AEDAT 2.0 file (no events are decoded).

    Raises:
        EventFileError: when the file is not AEDAT 1/2 (e.g. an AEDAT 3.1/4 file).
    """
    buf = _read_bytes(path)
    header = _parse_aedat2_header(buf)
    if header.version is not None and not header.version.startswith(("1", "2")):
        raise EventFileError(
            path, 0, f"this is AEDAT {header.version}, expected AEDAT 2.0 (use another reader)"
        )
    return header


def _camera_from_header(header: Aedat2Header, path: PathLike) -> str:
    chip = (header.chip or "").lower()
    if "dvs128" in chip:
        return "dvs128"
    if "davis346" in chip:
        return "davis346"
    if "davis240" in chip:
        return "davis240"
    raise EventFileError(
        path,
        None,
        f"cannot tell the camera from the header (AEChip={header.chip!r}); pass "
        f"camera= one of {sorted(AEDAT2_CAMERAS)}",
    )


_AEDAT2_EVENT = np.dtype([("a", ">u4"), ("t", ">u4")])


def read_aedat2(
    path: PathLike,
    camera: Literal["auto", "dvs128", "davis346", "davis240"] = "auto",
    strict: bool = True,
    *,
    keep_special: bool = False,
) -> EventArray:
    """Read the polarity events of an AEDAT 2.0 file (spec §11.3).

    Payload after the ``#`` header: 8-byte big-endian pairs ``uint32 address, uint32 t (µs)``.
    Address layouts (raw values are returned, no flips):

    * ``"dvs128"``: ``p = a & 1``, ``x = (a >> 1) & 0x7F``, ``y = (a >> 8) & 0x7F``; bit 15 marks
      an external (special) event, dropped unless ``keep_special``. **The meaning of raw bit 0
      differs between tools** (jAER treats 1 as OFF for the DVS128); ``p`` is the raw bit
      here. :func:`read_cifar10dvs` applies SpikingJelly's documented mapping.
    * ``"davis346"`` / ``"davis240"``: ``y = (a >> 22) & 0x1FF``, ``x = (a >> 12) & 0x3FF``,
      ``p = (a >> 11) & 1`` (1 = ON in jAER); bit 31 = APS/IMU sample and bit 10 = special
      event; only addresses with both bits clear are polarity events (the others are dropped).
      jAER puts the DAVIS origin at the bottom-left (y grows upwards); values are raw.

    Args:
        path: the file.
        camera: address layout, or ``"auto"`` to take it from the ``AEChip`` header line.
        strict: raise :class:`EventFileError` when the payload ends mid-record; with ``False``
            return the complete records and warn.
        keep_special: DVS128 only: keep external events (their x/y/p are meaningless).

    Returns:
        EventArray ``[N]`` (sensor size from :data:`AEDAT2_CAMERAS`), in file order.
        A header-only file gives 0 events.
    """
    buf = _read_bytes(path)
    header = _parse_aedat2_header(buf)
    if header.version is not None and not header.version.startswith("2"):
        raise EventFileError(
            path,
            0,
            f"header says AEDAT {header.version}; this reader handles AEDAT 2.0 "
            f"(8-byte events) only",
        )
    if camera == "auto":
        camera = _camera_from_header(header, path)  # type: ignore[assignment]
    if camera not in AEDAT2_CAMERAS:
        raise ValueError(
            f"camera must be 'auto' or one of {sorted(AEDAT2_CAMERAS)}, got {camera!r}"
        )
    size = AEDAT2_CAMERAS[camera]
    start = header.data_offset
    n_bytes = len(buf) - start
    n = n_bytes // _AEDAT2_EVENT.itemsize
    if n_bytes % _AEDAT2_EVENT.itemsize:
        end = start + n * _AEDAT2_EVENT.itemsize
        _damaged(
            path,
            end,
            f"event payload of {n_bytes} bytes (from byte {start}) is not a multiple of 8: "
            f"truncated record at byte {end}",
            strict,
            n,
        )
    rec = np.frombuffer(buf, dtype=_AEDAT2_EVENT, count=n, offset=start)
    a = rec["a"].astype(np.uint32)
    t = rec["t"].astype(np.int64)
    if camera == "dvs128":
        keep = None if keep_special else (a & 0x8000) == 0
        x = (a >> 1) & 0x7F
        y = (a >> 8) & 0x7F
        p = a & 1
    else:
        keep = (a & 0x80000400) == 0
        x = (a >> 12) & 0x3FF
        y = (a >> 22) & 0x1FF
        p = (a >> 11) & 1
    bad = (x >= size[0]) | (y >= size[1])
    if keep is not None:
        bad &= keep
    i = _first_true(bad)
    if i >= 0:
        raise EventFileError(
            path,
            start + i * _AEDAT2_EVENT.itemsize,
            f"polarity event with x={x[i]}, y={y[i]} outside the {camera} sensor {size}: "
            f"wrong camera= layout?",
        )
    if keep is not None:
        x, y, p, t = x[keep], y[keep], p[keep], t[keep]
    return make_events(x, y, p, t, size, validate=False)


def read_cifar10dvs(
    path: PathLike,
    orientation: Literal["spikingjelly", "raw"] = "spikingjelly",
    strict: bool = True,
) -> EventArray:
    """Read one CIFAR10-DVS recording (AEDAT 2.0, DVS128 address layout), sensor (128, 128, 2).

    Args:
        path: the ``.aedat`` file.
        orientation: ``"spikingjelly"`` applies the mapping of SpikingJelly's reader (spec
            §11.3): ``x = 127 - y_raw``, ``y = 127 - x_raw``, ``p = 1 - p_raw`` (upright images,
            ON = 1). ``"raw"`` returns the raw DVS128 fields unchanged.
        strict: see :func:`read_aedat2`.

    Not tested on a real CIFAR10-DVS file (none available); tested on synthetic AEDAT 2.0 bytes.
    """
    ev = read_aedat2(path, camera="dvs128", strict=strict)
    if orientation == "raw":
        return ev
    if orientation != "spikingjelly":
        raise ValueError(f"orientation must be 'spikingjelly' or 'raw', got {orientation!r}")
    out = np.empty(ev.size, dtype=EVENT_DTYPE)
    out["x"] = 127 - ev["y"].astype(np.int64)
    out["y"] = 127 - ev["x"].astype(np.int64)
    out["p"] = 1 - ev["p"]
    out["t"] = ev["t"]
    return as_events(out, (128, 128, 2))


def write_aedat2(
    path: PathLike,
    events: Any,
    camera: Literal["dvs128", "davis346", "davis240"] = "dvs128",
    *,
    sensor_size: Sequence[int] | None = None,
    header_lines: Sequence[str] | None = None,
) -> Path:
    """Write events as an AEDAT 2.0 file with the given address layout (atomic).

    The header is ``#!AER-DAT2.0`` plus ``header_lines`` (each must start with ``#``; default:
    a format note and an ``AEChip`` line naming the layout so that ``camera="auto"`` works).
    Fields are written raw (the inverse of :func:`read_aedat2`); timestamps must fit uint32.
    """
    if camera not in AEDAT2_CAMERAS:
        raise ValueError(f"camera must be one of {sorted(AEDAT2_CAMERAS)}, got {camera!r}")
    ev = as_events(events, sensor_size)
    size = AEDAT2_CAMERAS[camera]
    x = ev["x"].astype(np.uint32)
    y = ev["y"].astype(np.uint32)
    p = ev["p"].astype(np.uint32)
    t = ev["t"]
    if ev.size:
        if x.max() >= size[0] or y.max() >= size[1] or p.max() > 1:
            raise ValueError(
                f"events do not fit the {camera} layout {size} (max x {x.max()}, "
                f"max y {y.max()}, max p {p.max()})"
            )
        if t.min() < 0 or t.max() > 0xFFFFFFFF:
            raise ValueError("AEDAT 2.0 timestamps are uint32 µs: t must be in [0, 2**32)")
    if camera == "dvs128":
        a = (y << 8) | (x << 1) | p
        chip = "ch.unizh.ini.jaer.chip.retina.DVS128"
    else:
        a = (y << 22) | (x << 12) | (p << 11)
        chip = (
            "eu.seebetter.ini.chips.davis.Davis346red"
            if camera == "davis346"
            else ("eu.seebetter.ini.chips.davis.Davis240C")
        )
    if header_lines is None:
        header_lines = [
            "# Data format is int32 address, int32 timestamp (8 bytes total), repeated for "
            "each event",
            "# Timestamps tick: 1 us",
            f"# AEChip: {chip}",
        ]
    for line in header_lines:
        if not line.startswith("#") or "\n" in line:
            raise ValueError(f"header lines must start with '#' and hold no newline: {line!r}")
    head = ("#!AER-DAT2.0\r\n" + "".join(f"{ln}\r\n" for ln in header_lines)).encode("latin-1")
    rec = np.empty(ev.size, dtype=_AEDAT2_EVENT)
    rec["a"] = a
    rec["t"] = t
    data = head + rec.tobytes()
    return _atomic_write(path, lambda fh: fh.write(data))


# ------------------------------------------------------------------------------------------
# AEDAT 3.1 (cAER / libcaer) and DVS128 Gesture
# ------------------------------------------------------------------------------------------

_AEDAT31_PACKET = np.dtype(
    [
        ("type", "<i2"),
        ("source", "<i2"),
        ("size", "<i4"),
        ("ts_offset", "<i4"),
        ("ts_overflow", "<i4"),
        ("capacity", "<i4"),
        ("number", "<i4"),
        ("valid", "<i4"),
    ]
)
_AEDAT31_POLARITY = 1
_AEDAT31_SOURCES: dict[str, SensorSize] = {
    "dvs128": (128, 128, 2),
    "davis346": (346, 260, 2),
    "davis240": (240, 180, 2),
    "dvxplorer": (640, 480, 2),
}


def _sensor_from_aedat31_header(lines: list[str]) -> SensorSize | None:
    for line in lines:
        if line.lower().startswith("#source"):
            low = line.lower().replace(" ", "")
            for name, size in _AEDAT31_SOURCES.items():
                if name in low:
                    return size
    return None


def read_aedat31(
    path: PathLike,
    strict: bool = True,
    *,
    sensor_size: Sequence[int] | None = None,
    payload_length: Literal["capacity", "number"] = "capacity",
    drop_invalid: bool = True,
) -> EventArray:
    """Read the polarity events of an AEDAT 3.1 file (spec §11.4).

    After the ``#`` header (``#!AER-DAT3.1`` ... ``#!END-HEADER``) come packets: a 28-byte
    little-endian header (eventType, eventSource, eventSize, eventTSOffset, eventTSOverflow,
    eventCapacity, eventNumber, eventValid) and the events. Packets are located with a loop
    over packet headers; all polarity events are then decoded in one vectorised gather.
    Polarity event: ``uint32 data, int32 timestamp``; ``valid = data & 1``,
    ``p = (data >> 1) & 1``, ``y = (data >> 2) & 0x7FFF``, ``x = (data >> 17) & 0x7FFF``,
    ``t = (eventTSOverflow << 31) | timestamp``. Packets of other types are skipped.

    Args:
        path: the ``.aedat`` file.
        strict: raise :class:`EventFileError` on a truncated/corrupt packet; ``False`` returns
            the events of the complete packets before it and warns.
        sensor_size: ``(W, H, P)``; ``None`` reads it from the ``#Source`` header line
            (DVS128 → (128, 128, 2), DAVIS346, DAVIS240, DVXplorer) and fails if unknown.
        payload_length: bytes skipped after a packet header: ``eventCapacity * eventSize``
            (``"capacity"``, SpikingJelly) or ``eventNumber * eventSize`` (``"number"``,
            TA-SNN). Which one is normative is unverified; they agree on the Gesture files.
            Only ``eventNumber`` events are decoded in either case.
        drop_invalid: drop events whose valid bit (bit 0) is 0.

    Returns:
        EventArray ``[N]`` in file order.
    """
    if payload_length not in ("capacity", "number"):
        raise ValueError(f"payload_length must be 'capacity' or 'number', got {payload_length!r}")
    buf = _read_bytes(path)
    lines, pos = _split_hash_header(buf)
    if not lines or not lines[0].startswith("#!AER-DAT3"):
        first = lines[0] if lines else buf[:16]
        raise EventFileError(path, 0, f"expected first line '#!AER-DAT3.1', got {first!r}")
    if "#!END-HEADER" not in lines:
        raise EventFileError(path, pos, "header has no '#!END-HEADER' line")
    if sensor_size is None:
        size = _sensor_from_aedat31_header(lines)
        if size is None:
            raise EventFileError(
                path, None, "no known '#Source' line in the header: pass sensor_size=(W, H, P)"
            )
    else:
        size = check_sensor_size(sensor_size)

    total = len(buf)
    hsize = _AEDAT31_PACKET.itemsize
    starts: list[int] = []
    counts: list[int] = []
    ev_sizes: list[int] = []
    ts_offsets: list[int] = []
    overflows: list[int] = []
    problem: tuple[int, str] | None = None
    while pos < total:
        if pos + hsize > total:
            problem = (pos, f"truncated packet header: {total - pos} bytes left, 28 expected")
            break
        h = np.frombuffer(buf, dtype=_AEDAT31_PACKET, count=1, offset=pos)[0]
        size_b, number, capacity = int(h["size"]), int(h["number"]), int(h["capacity"])
        if size_b <= 0 or number < 0 or capacity < number or not 0 <= h["ts_offset"] < size_b:
            problem = (
                pos,
                f"corrupt packet header (eventSize={size_b}, eventNumber={number}, "
                f"eventCapacity={capacity}, eventTSOffset={int(h['ts_offset'])}); expected "
                f"eventSize > 0, 0 <= eventNumber <= eventCapacity",
            )
            break
        n_payload = (capacity if payload_length == "capacity" else number) * size_b
        end = pos + hsize + n_payload
        if end > total:
            problem = (
                pos + hsize,
                f"packet payload truncated: header at byte {pos} announces {n_payload} bytes, "
                f"only {total - pos - hsize} left",
            )
            break
        if int(h["type"]) == _AEDAT31_POLARITY and number > 0:
            if size_b < 8:
                problem = (pos, f"polarity packet with eventSize={size_b}, expected >= 8")
                break
            starts.append(pos + hsize)
            counts.append(number)
            ev_sizes.append(size_b)
            ts_offsets.append(int(h["ts_offset"]))
            overflows.append(int(h["ts_overflow"]))
        pos = end
    if problem is not None:
        _damaged(path, problem[0], problem[1], strict, int(sum(counts)))

    n = int(sum(counts))
    if n == 0:
        return make_events([], [], [], [], size)
    cnt = np.asarray(counts, dtype=np.int64)
    first = np.cumsum(cnt) - cnt
    local = np.arange(n, dtype=np.int64) - np.repeat(first, cnt)
    base = np.repeat(np.asarray(starts, dtype=np.int64), cnt) + local * np.repeat(
        np.asarray(ev_sizes, dtype=np.int64), cnt
    )
    b = np.frombuffer(buf, dtype=np.uint8)

    def u32_at(off: np.ndarray) -> np.ndarray:
        return (
            b[off].astype(np.uint32)
            | (b[off + 1].astype(np.uint32) << 8)
            | (b[off + 2].astype(np.uint32) << 16)
            | (b[off + 3].astype(np.uint32) << 24)
        )

    data = u32_at(base)
    ts = u32_at(base + np.repeat(np.asarray(ts_offsets, dtype=np.int64), cnt)).view(np.int32)
    t = (np.repeat(np.asarray(overflows, dtype=np.int64), cnt) << 31) | ts.astype(np.int64)
    valid = (data & 1).astype(bool)
    p = (data >> 1) & 1
    y = (data >> 2) & 0x7FFF
    x = (data >> 17) & 0x7FFF
    bad = (ts < 0) | (x >= size[0]) | (y >= size[1])
    if drop_invalid:
        bad &= valid
    i = _first_true(bad)
    if i >= 0:
        raise EventFileError(
            path,
            int(base[i]),
            f"polarity event with x={x[i]}, y={y[i]}, timestamp={ts[i]}: expected x < "
            f"{size[0]}, y < {size[1]} and a non-negative timestamp (wrong sensor_size?)",
        )
    if drop_invalid:
        x, y, p, t = x[valid], y[valid], p[valid], t[valid]
    return make_events(x, y, p, t, size, validate=False)


def write_aedat31(
    path: PathLike,
    events: Any,
    sensor_size: Sequence[int] | None = None,
    *,
    packet_events: int = 4096,
    source: str = "DVS128",
    extra_header_lines: Sequence[str] = (),
) -> Path:
    """Write polarity events as an AEDAT 3.1 file (atomic), the inverse of :func:`read_aedat31`.

    Events are split into polarity packets of at most ``packet_events`` events, and a new
    packet starts whenever ``t >> 31`` (the eventTSOverflow) changes. Packets have
    eventSource 1, eventSize 8, eventTSOffset 4, capacity = number = valid. The header is
    ``#!AER-DAT3.1``, ``#Format: RAW``, ``#Source 1: <source>``, extra lines, ``#!END-HEADER``.
    """
    ev = as_events(events, sensor_size)
    if packet_events <= 0:
        raise ValueError(f"packet_events must be positive, got {packet_events}")
    x = ev["x"].astype(np.uint32)
    y = ev["y"].astype(np.uint32)
    p = ev["p"].astype(np.uint32)
    t = ev["t"].astype(np.int64)
    if ev.size:
        if x.max() > 0x7FFF or y.max() > 0x7FFF or p.max() > 1:
            raise ValueError("AEDAT 3.1 polarity events need x, y < 32768 and p in {0, 1}")
        if t.min() < 0:
            raise ValueError(f"timestamps must be >= 0, got min {t.min()}")
    for line in extra_header_lines:
        if not line.startswith("#") or "\n" in line:
            raise ValueError(f"header lines must start with '#' and hold no newline: {line!r}")
    head_lines = ["#!AER-DAT3.1", "#Format: RAW", f"#Source 1: {source}", *extra_header_lines]
    head_lines.append("#!END-HEADER")
    head = "".join(f"{ln}\r\n" for ln in head_lines).encode("latin-1")

    rec = np.empty(ev.size, dtype=[("data", "<u4"), ("ts", "<i4")])
    rec["data"] = (x << 17) | (y << 2) | (p << 1) | 1
    rec["ts"] = (t & 0x7FFFFFFF).astype(np.int32)
    epoch = t >> 31
    cuts = np.flatnonzero(np.diff(epoch)) + 1
    bounds = [0, *cuts.tolist(), ev.size]
    parts: list[bytes] = [head]
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        for s in range(lo, hi, packet_events):
            e = min(s + packet_events, hi)
            hdr = np.zeros(1, dtype=_AEDAT31_PACKET)
            hdr["type"], hdr["source"], hdr["size"], hdr["ts_offset"] = 1, 1, 8, 4
            hdr["ts_overflow"] = int(epoch[s])
            hdr["capacity"] = hdr["number"] = hdr["valid"] = e - s
            parts.append(hdr.tobytes())
            parts.append(rec[s:e].tobytes())
    data = b"".join(parts)
    return _atomic_write(path, lambda fh: fh.write(data))


GESTURE_LABEL_DTYPE = np.dtype([("label", "<i8"), ("start", "<i8"), ("end", "<i8")])


def read_gesture_labels(path: PathLike) -> np.ndarray:
    """Read a DVS128 Gesture label CSV (``class,startTime_usec,endTime_usec``).

    Returns:
        Structured array ``[K]`` with fields ``label`` (the CSV class, **1..11**), ``start``
        and ``end`` (µs, same clock as the events). Rows are kept in file order; repeated
        classes and overlapping intervals are allowed (they occur in the dataset).

    Raises:
        EventFileError: wrong header line, malformed row, class outside 1..11 or
            ``start >= end`` (the message gives the line number).
    """
    text = Path(path).read_text(encoding="utf-8-sig")
    rows = text.splitlines()
    if not rows or rows[0].replace(" ", "").lower() != "class,starttime_usec,endtime_usec":
        raise EventFileError(
            path,
            0,
            f"expected header 'class,startTime_usec,endTime_usec', got {rows[0] if rows else ''!r}",
        )
    out = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row.strip():
            continue
        parts = [s.strip() for s in row.split(",")]
        try:
            label, start, end = (int(v) for v in parts)
        except ValueError:
            raise EventFileError(
                path, None, f"line {lineno}: expected 3 integers 'class,start,end', got {row!r}"
            ) from None
        if not 1 <= label <= 11:
            raise EventFileError(path, None, f"line {lineno}: class {label} is not in 1..11")
        if start >= end:
            raise EventFileError(path, None, f"line {lineno}: start {start} >= end {end}")
        out.append((label, start, end))
    return np.array(out, dtype=GESTURE_LABEL_DTYPE)


def read_dvs_gesture(
    aedat_path: PathLike,
    labels_csv: PathLike,
    strict: bool = True,
    *,
    relative_time: bool = False,
    sensor_size: Sequence[int] | None = (128, 128, 2),
) -> list[tuple[EventArray, int]]:
    """Read one DVS128 Gesture recording and cut it into labelled gestures.

    Gesture ``k`` of the CSV is the events with ``start <= t < end`` (spec §11.5). The CSV
    class (1..11) is mapped to the **0-based label ``class - 1``** (0 = hand clap ...
    10 = other gestures).

    Args:
        aedat_path: the AEDAT 3.1 recording.
        labels_csv: its ``*_labels.csv``.
        strict: see :func:`read_aedat31`.
        relative_time: subtract each gesture's ``start`` from its timestamps.
        sensor_size: default (128, 128, 2); ``None`` takes it from the header.

    Returns:
        ``[(events, label), ...]`` in CSV order, ``events`` an EventArray, ``label`` in 0..10.
    """
    events = sort_by_time(read_aedat31(aedat_path, strict, sensor_size=sensor_size))
    labels = read_gesture_labels(labels_csv)
    t = events["t"]
    lo = np.searchsorted(t, labels["start"], side="left")
    hi = np.searchsorted(t, labels["end"], side="left")
    out: list[tuple[EventArray, int]] = []
    for (label, start, _end), a, b in zip(labels.tolist(), lo, hi):
        seg = events[a:b].copy()
        if relative_time:
            seg["t"] -= start
        out.append((seg, int(label) - 1))
    return out


# ------------------------------------------------------------------------------------------
# AEDAT 4.0 (DV)
# ------------------------------------------------------------------------------------------

_AEDAT4_MAGIC = b"#!AER-DAT4.0\r\n"


@dataclass
class Aedat4Layout:
    """Framing of an AEDAT 4.0 file, parsed without decompressing anything.

    Attributes:
        compression: 0 none, 1 LZ4, 2 LZ4_HIGH, 3 ZSTD, 4 ZSTD_HIGH.
        data_table_position: byte offset of the file data table, -1 if absent.
        info: the XML ``infoNode`` describing the streams.
        packets: ``[(stream_id, payload_offset, payload_size), ...]`` of complete packets.
        problem: ``(offset, detail)`` of the first framing error (truncation), or ``None``.
    """

    compression: int
    data_table_position: int
    info: str
    packets: list[tuple[int, int, int]]
    problem: tuple[int, str] | None


def _aedat4_layout(path: PathLike, buf: bytes) -> Aedat4Layout:
    m = len(_AEDAT4_MAGIC)
    if buf[:m] != _AEDAT4_MAGIC:
        raise EventFileError(path, 0, f"expected magic {_AEDAT4_MAGIC!r}, got {buf[:m]!r}")
    if len(buf) < m + 4:
        raise EventFileError(path, m, "file ends before the IOHeader length")
    (n,) = struct.unpack_from("<I", buf, m)
    if m + 4 + n > len(buf) or n < 8:
        raise EventFileError(
            path, m + 4, f"IOHeader announces {n} bytes but {len(buf) - m - 4} are left"
        )
    fb = buf[m + 4 : m + 4 + n]
    try:
        (root,) = struct.unpack_from("<I", fb, 0)
        if fb[4:8] != b"IOHE":
            raise EventFileError(path, m + 8, f"expected FlatBuffer id b'IOHE', got {fb[4:8]!r}")
        (vt_rel,) = struct.unpack_from("<i", fb, root)
        vt = root - vt_rel
        (vt_size,) = struct.unpack_from("<H", fb, vt)
        n_fields = (vt_size - 4) // 2
        offs = struct.unpack_from(f"<{n_fields}H", fb, vt + 4)
        compression = (
            struct.unpack_from("<i", fb, root + offs[0])[0] if n_fields > 0 and offs[0] else 0
        )
        dtp = struct.unpack_from("<q", fb, root + offs[1])[0] if n_fields > 1 and offs[1] else -1
        info = ""
        if n_fields > 2 and offs[2]:
            sp = root + offs[2]
            sp += struct.unpack_from("<I", fb, sp)[0]
            (slen,) = struct.unpack_from("<I", fb, sp)
            info = fb[sp + 4 : sp + 4 + slen].decode("utf-8", errors="replace")
    except struct.error as exc:
        raise EventFileError(path, m + 4, f"corrupt IOHeader FlatBuffer ({exc})") from None

    pos = m + 4 + n
    stop = len(buf) if dtp < 0 else min(dtp, len(buf))
    packets: list[tuple[int, int, int]] = []
    problem = None
    while pos < stop:
        if pos + 8 > stop:
            problem = (pos, f"truncated packet header: {stop - pos} bytes left, 8 expected")
            break
        sid, size = struct.unpack_from("<ii", buf, pos)
        if size < 0 or pos + 8 + size > stop:
            problem = (
                pos,
                f"packet of stream {sid} announces {size} bytes but only {stop - pos - 8} "
                f"are left (truncated file)",
            )
            break
        packets.append((sid, pos + 8, size))
        pos += 8 + size
    if problem is None and dtp >= len(buf):
        problem = (
            len(buf),
            f"file data table expected at byte {dtp} but the file ends (truncated)",
        )
    return Aedat4Layout(compression, dtp, info, packets, problem)


def read_aedat4(
    path: PathLike,
    strict: bool = True,
    *,
    stream_id: int | None = None,
) -> EventArray:
    """Read the polarity events of an AEDAT 4.0 file (spec §11.6).

    The packet framing (magic, IOHeader FlatBuffer with compression / data-table position /
    stream XML, then ``int32 stream id, int32 size`` packets) is checked here, so truncation
    is reported with its byte offset; payloads (LZ4/ZSTD FlatBuffers) are decoded with the
    ``aedat`` package (``aedat.Decoder``). Frames, IMU samples and triggers are skipped.

    Args:
        path: the ``.aedat4`` file.
        strict: raise :class:`EventFileError` on a truncated/corrupt file; ``False`` returns
            the events of the complete packets before the damage and warns.
        stream_id: the event stream to read; ``None`` takes the only ``events`` stream (error
            if there are several).

    Returns:
        EventArray ``[N]``, fields from the ``{t, x, y, on}`` structs (``p = on``), sensor
        size ``(sizeX, sizeY, 2)`` of the stream description.
    """
    import aedat  # the package is a declared dependency; imported lazily (Rust extension)

    buf = _read_bytes(path)
    layout = _aedat4_layout(path, buf)
    if layout.problem is not None and strict:
        raise EventFileError(path, *layout.problem)
    try:
        decoder = aedat.Decoder(str(path))
        streams = decoder.id_to_stream()
    except Exception as exc:  # the Rust decoder raises RuntimeError/OSError
        raise EventFileError(path, None, f"aedat could not open the file: {exc}") from None
    ev_streams = {k: v for k, v in streams.items() if v.get("type") == "events"}
    if stream_id is None:
        if len(ev_streams) != 1:
            raise EventFileError(
                path,
                None,
                f"expected exactly one 'events' stream, found {sorted(ev_streams)}; pass "
                f"stream_id=",
            )
        stream_id = next(iter(ev_streams))
    if stream_id not in ev_streams:
        raise EventFileError(
            path, None, f"stream {stream_id} is not an event stream (streams: {streams})"
        )
    desc = ev_streams[stream_id]
    size = check_sensor_size((int(desc["width"]), int(desc["height"]), 2))
    chunks: list[np.ndarray] = []
    failure: str | None = None
    try:
        for packet in decoder:
            if packet["stream_id"] == stream_id and "events" in packet:
                chunks.append(packet["events"])
    except Exception as exc:
        failure = str(exc)
    n_ok = int(sum(c.size for c in chunks))
    if failure is not None or layout.problem is not None:
        offset, detail = layout.problem if layout.problem is not None else (None, "")
        if failure is not None:
            detail = f"{detail}; decoder: {failure}" if detail else f"decoder failed: {failure}"
        _damaged(path, offset, detail, strict, n_ok)
    out = np.empty(n_ok, dtype=EVENT_DTYPE)
    pos = 0
    for c in chunks:
        sl = slice(pos, pos + c.size)
        out["t"][sl] = c["t"]
        out["x"][sl] = c["x"]
        out["y"][sl] = c["y"]
        out["p"][sl] = c["on"]
        pos += c.size
    try:
        return as_events(out, size)
    except ValueError as exc:
        raise EventFileError(path, None, f"event outside the declared stream size: {exc}") from None


# ------------------------------------------------------------------------------------------
# SHD (Spiking Heidelberg Digits, HDF5)
# ------------------------------------------------------------------------------------------

SHD_SENSOR: SensorSize = (700, 1, 1)


class SHDFile:
    """Index-based access to an SHD ``.h5`` file, without loading everything (spec §11.7).

    Layout: ``spikes/times`` (variable-length float arrays, seconds), ``spikes/units``
    (variable-length int arrays, channel 0..699), ``labels`` ``[K]`` (0..19).

    ``shd[i]`` returns ``(events, label)``: ``events`` is an EventArray with ``x = unit``,
    ``y = 0``, ``p = 0``, ``t = round(time * 1e6)`` µs (int64), sensor ``(700, 1, 1)``; events
    keep the file order. The HDF5 file is opened on first access in each process (safe with
    ``DataLoader`` workers) and can be closed with :meth:`close` or a ``with`` block.
    """

    def __init__(self, path: PathLike, *, n_channels: int = 700) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"SHD file {self.path} does not exist")
        self.sensor_size: SensorSize = check_sensor_size((n_channels, 1, 1))
        self._h5: Any = None
        self._pid: int | None = None
        f = self._file()
        for key in ("spikes/times", "spikes/units", "labels"):
            if key not in f:
                raise EventFileError(self.path, None, f"missing dataset '{key}' (not an SHD file?)")
        n_t, n_u, n_l = len(f["spikes/times"]), len(f["spikes/units"]), len(f["labels"])
        if not n_t == n_u == n_l:
            raise EventFileError(
                self.path,
                None,
                f"spikes/times ({n_t}), spikes/units ({n_u}) and labels ({n_l}) differ in length",
            )
        self._len = n_l

    def _file(self) -> Any:
        import h5py

        if self._h5 is None or self._pid != os.getpid():
            try:
                self._h5 = h5py.File(self.path, "r")
            except OSError as exc:
                raise EventFileError(self.path, None, f"cannot open as HDF5: {exc}") from None
            self._pid = os.getpid()
        return self._h5

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> tuple[EventArray, int]:
        i = int(index)
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError(f"sample {index} out of range for {self._len} samples")
        f = self._file()
        times = np.asarray(f["spikes/times"][i], dtype=np.float64)
        units = np.asarray(f["spikes/units"][i])
        label = int(f["labels"][i])
        if times.shape != units.shape:
            raise EventFileError(
                self.path,
                None,
                f"sample {i}: {times.size} spike times but {units.size} units",
            )
        if times.size and (not np.all(np.isfinite(times)) or times.min() < 0):
            raise EventFileError(self.path, None, f"sample {i}: negative or non-finite times")
        if units.size and (units.min() < 0 or units.max() >= self.sensor_size[0]):
            raise EventFileError(
                self.path,
                None,
                f"sample {i}: unit ids {units.min()}..{units.max()} outside 0.."
                f"{self.sensor_size[0] - 1}",
            )
        t = np.rint(times * 1e6).astype(np.int64)
        zeros = np.zeros(t.size, dtype=np.uint8)
        return make_events(units, zeros, zeros, t, self.sensor_size, validate=False), label

    def __iter__(self) -> Iterator[tuple[EventArray, int]]:
        for i in range(self._len):
            yield self[i]

    @property
    def labels(self) -> np.ndarray:
        """All labels ``[K]`` (int64)."""
        return np.asarray(self._file()["labels"][:], dtype=np.int64)

    def close(self) -> None:
        """Close the HDF5 handle (reopened automatically on the next access)."""
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def __enter__(self) -> SHDFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_h5"] = None
        state["_pid"] = None
        return state


def read_shd(path: PathLike, *, n_channels: int = 700) -> SHDFile:
    """Open an SHD ``.h5`` file for indexed access; see :class:`SHDFile`."""
    return SHDFile(path, n_channels=n_channels)


# ------------------------------------------------------------------------------------------
# ES-ImageNet (.npz with pos/neg)
# ------------------------------------------------------------------------------------------

ES_IMAGENET_SENSOR: SensorSize = (256, 256, 2)


def _es_columns(name: str, a: Any) -> np.ndarray:
    """Validate an ES-ImageNet ``[n, 3]`` (row, col, t) array; return it as int64.

    Raises:
        ValueError: wrong shape or dtype, row/col outside 0..255 or t outside 1..8.
    """
    a = np.asarray(a)
    if a.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    if a.ndim != 2 or a.shape[1] != 3:
        raise ValueError(f"array '{name}' has shape {a.shape}, expected [n, 3] (row, col, t)")
    if a.dtype.kind not in "iu":
        raise ValueError(f"array '{name}' has dtype {a.dtype}, expected integers (uint8)")
    a = a.astype(np.int64)
    if a[:, :2].min() < 0 or a[:, :2].max() > 255:
        raise ValueError(f"array '{name}' has row/col outside 0..255")
    if a[:, 2].min() < 1 or a[:, 2].max() > 8:
        raise ValueError(f"array '{name}' has t outside 1..8 ({a[:, 2].min()}..{a[:, 2].max()})")
    return a


def read_es_imagenet_npz(path: PathLike, centre: tuple[int, int] | None = None) -> EventArray:
    """Read one ES-ImageNet sample (spec §5, step 11).

    The file holds ``pos`` and ``neg``, uint8 ``[n, 3]`` arrays of ``(row, col, t)`` with the
    step ``t`` in 1..8. Events get ``x = col``, ``y = row``, ``p = 1`` for ``pos`` (ON) and
    ``0`` for ``neg`` (OFF), and **``t`` = the step index 1..8, not microseconds**. Events are
    sorted by step (stable: within a step, ON before OFF, file order kept). Sensor size
    ``(256, 256, 2)``; coordinates are the converter's canvas coordinates, in 17..239
    after its crop. This is SpikingJelly's convention (no centring shift, no crop).

    Args:
        path: the ``.npz``.
        centre: ``(h, w)`` of the resized image (from ``trainlabel.txt``/``vallabel.txt``):
            apply the authors' loader shift ``row += (254 - h) // 2``, ``col += (254 - w) // 2``
            (centring). The ``[16:240]`` crop of that loader is left to the frame conversion.

    Returns:
        EventArray ``[N]`` with N = len(pos) + len(neg).
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("pos", "neg") if k not in z.files]
            if missing:
                raise EventFileError(
                    path, None, f"missing arrays {missing} (has {z.files}); not ES-ImageNet?"
                )
            pos = _es_columns("pos", z["pos"])
            neg = _es_columns("neg", z["neg"])
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, EventFileError):
            raise
        raise EventFileError(path, None, f"not a readable ES-ImageNet .npz ({exc})") from None
    both = np.concatenate([pos, neg])
    p = np.concatenate([np.ones(len(pos), np.uint8), np.zeros(len(neg), np.uint8)])
    row, col, t = both[:, 0], both[:, 1], both[:, 2]
    if centre is not None:
        h, w = (int(v) for v in centre)
        if not (1 <= h <= 254 and 1 <= w <= 254):
            raise ValueError(f"centre=(h, w) must be in 1..254, got {centre}")
        row = row + (254 - h) // 2
        col = col + (254 - w) // 2
    order = np.argsort(t, kind="stable")
    return make_events(col[order], row[order], p[order], t[order], ES_IMAGENET_SENSOR)


def write_es_imagenet_npz(path: PathLike, pos: Any, neg: Any) -> Path:
    """Write an ES-ImageNet sample: ``np.savez_compressed(pos=..., neg=...)`` (atomic).

    Args:
        pos: ``[n, 3]`` integer ``(row, col, t)`` of ON events, values 0..255 and t in 1..8.
        neg: same for OFF events.
    """
    arrays = {}
    for name, a in (("pos", pos), ("neg", neg)):
        arrays[name] = _es_columns(name, a).astype(np.uint8)

    def write(fh: io.BufferedWriter) -> None:
        np.savez_compressed(fh, **arrays)

    return _atomic_write(path, write)


# ------------------------------------------------------------------------------------------
# spikeloom's own format (.npz / .h5)
# ------------------------------------------------------------------------------------------

_OWN_FORMAT = "spikeloom-events"
_OWN_VERSION = 1
_H5_SUFFIXES = (".h5", ".hdf5")


def save_events(
    path: PathLike,
    events: Any,
    sensor_size: Sequence[int] | None = None,
    *,
    compress: bool = False,
) -> Path:
    """Save events with their sensor size to ``.npz`` or ``.h5`` (chosen by suffix; atomic).

    Layout: columns ``x, y, p, t`` (the :data:`EVENT_DTYPE` types), ``sensor_size`` ``[3]``,
    ``format = "spikeloom-events"`` and ``version = 1`` (``.h5``: datasets + root attributes).

    Args:
        path: destination, suffix ``.npz``, ``.h5`` or ``.hdf5``.
        events: EventArray (or structured array + ``sensor_size``).
        compress: zip-deflate (``.npz``) or gzip (``.h5``) the columns.
    """
    ev = as_events(events, sensor_size)
    dest = Path(path)
    suffix = dest.suffix.lower()
    cols = {name: np.ascontiguousarray(ev[name]) for name in ("x", "y", "p", "t")}
    size = np.asarray(ev.sensor_size, dtype=np.int64)
    if suffix == ".npz":

        def write(fh: io.BufferedWriter) -> None:
            saver = np.savez_compressed if compress else np.savez
            saver(
                fh,
                sensor_size=size,
                format=np.str_(_OWN_FORMAT),
                version=np.int64(_OWN_VERSION),
                **cols,
            )

    elif suffix in _H5_SUFFIXES:
        import h5py

        def write(fh: io.BufferedWriter) -> None:
            with h5py.File(fh, "w") as f:
                f.attrs["format"] = _OWN_FORMAT
                f.attrs["version"] = _OWN_VERSION
                f.attrs["sensor_size"] = size
                for name, col in cols.items():
                    f.create_dataset(name, data=col, compression="gzip" if compress else None)

    else:
        raise ValueError(f"unknown suffix {dest.suffix!r} for {dest}: use .npz, .h5 or .hdf5")
    return _atomic_write(dest, write)


def load_events(path: PathLike) -> EventArray:
    """Load events written by :func:`save_events` (``.npz`` or ``.h5``), validating them.

    Raises:
        EventFileError: unreadable/damaged file, missing columns, wrong format tag or
            unequal column lengths.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"event file {p} does not exist")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
            fmt = str(data.get("format", ""))
        elif suffix in _H5_SUFFIXES:
            import h5py

            with h5py.File(p, "r") as f:
                data = {k: f[k][()] for k in ("x", "y", "p", "t") if k in f}
                fmt = f.attrs.get("format", "")
                fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
                if "sensor_size" in f.attrs:
                    data["sensor_size"] = np.asarray(f.attrs["sensor_size"])
        else:
            raise ValueError(f"unknown suffix {p.suffix!r} for {p}: use .npz, .h5 or .hdf5")
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
        raise EventFileError(p, None, f"cannot read the file ({exc}); truncated?") from None
    if fmt != _OWN_FORMAT:
        raise EventFileError(p, None, f"format tag is {fmt!r}, expected {_OWN_FORMAT!r}")
    missing = [k for k in ("x", "y", "p", "t", "sensor_size") if k not in data]
    if missing:
        raise EventFileError(p, None, f"missing {missing}")
    lengths = {k: np.shape(data[k]) for k in ("x", "y", "p", "t")}
    if len(set(lengths.values())) != 1:
        raise EventFileError(p, None, f"columns have different shapes {lengths}")
    size = tuple(int(v) for v in np.asarray(data["sensor_size"]).ravel())
    try:
        return make_events(data["x"], data["y"], data["p"], data["t"], size)
    except ValueError as exc:
        raise EventFileError(p, None, f"invalid events: {exc}") from None


# ------------------------------------------------------------------------------------------
# MNIST IDX
# ------------------------------------------------------------------------------------------

_IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (MNIST format), gzip-compressed (detected by magic) or raw.

    Header (big-endian): two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions ``d``, then ``d``
    uint32 sizes; the data follow in C order.

    Returns:
        Array of shape ``(n0, ..., n_{d-1})`` in native byte order (MNIST images:
        ``[N, 28, 28]`` uint8; labels ``[N]`` uint8).

    Raises:
        EventFileError: bad magic, unknown type, truncated gzip stream or payload size that
            does not match the header.
    """
    raw = _read_bytes(path)
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise EventFileError(path, None, f"corrupt or truncated gzip stream ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise EventFileError(path, 0, f"expected IDX magic 00 00 <type> <ndim>, got {raw[:4]!r}")
    dtype = _IDX_TYPES.get(raw[2])
    if dtype is None:
        raise EventFileError(path, 2, f"unknown IDX data type 0x{raw[2]:02X}")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise EventFileError(path, 4, f"header needs {4 * ndim} bytes of dimensions")
    shape = struct.unpack_from(f">{ndim}I", raw, 4)
    start = 4 + 4 * ndim
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - start != expected:
        raise EventFileError(
            path,
            start,
            f"payload is {len(raw) - start} bytes but the header shape {shape} of {dtype} "
            f"needs {expected} (truncated or not IDX)",
        )
    arr = np.frombuffer(raw, dtype=dtype, count=expected // dtype.itemsize, offset=start)
    return arr.reshape(shape).astype(dtype.newbyteorder("="))
