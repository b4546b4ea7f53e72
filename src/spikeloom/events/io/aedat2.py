"""AEDAT 2.0 files (jAER; DVS128, DAVIS240/346 address layouts).

Format: an ASCII header of ``#`` lines starting with ``#!AER-DAT2.0``, then 8-byte big-endian
``uint32 address, uint32 timestamp (µs)`` pairs, as documented by iniVation ("AEDAT file
formats", docs.inivation.com) and implemented in jAER. CIFAR10-DVS (Li, Liu, Ji, Li and Shi,
"CIFAR10-DVS: An Event-Stream Dataset for Object Classification", Frontiers in Neuroscience
11:309, 2017) is stored in this format with the DVS128 address layout; its axis remap is a
dataset convention, applied by :func:`spikeloom.datasets.cifar10dvs.read_cifar10dvs`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ...atomic import atomic_write
from ...errors import EventFileError
from ..core import EventArray, SensorSize, as_events, make_events
from ._common import (
    _HEADER_OK_BYTES,
    PathLike,
    _check_header_lines,
    _damaged,
    _first_true,
    _read_bytes,
    _split_hash_header,
)
from .formats import register_format

__all__ = [
    "AEDAT2_CAMERAS",
    "Aedat2Header",
    "read_aedat2",
    "read_aedat2_header",
    "write_aedat2",
]

AEDAT2_CAMERAS: dict[str, SensorSize] = {
    "dvs128": (128, 128, 2),
    "davis346": (346, 260, 2),
    "davis240": (240, 180, 2),
}
"""Address layouts understood by :func:`read_aedat2` and their sensor sizes."""


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


def _check_header_complete(path: PathLike, buf: bytes, header: Aedat2Header) -> None:
    """Raise unless the file starts with ``#!AER-DAT`` and its ``#`` header is complete.

    A file cut inside the header would otherwise have the partial header line decoded as
    events: the payload may not start with an unterminated ``#`` text line.
    """
    if header.version is None:
        raise EventFileError(
            path, 0, f"expected a '#!AER-DAT2.0' header line, got {buf[:16]!r} (not AEDAT 2.0?)"
        )
    rest = buf[header.data_offset :]
    if rest[:1] == b"#" and b"\n" not in rest:
        text = _HEADER_OK_BYTES[np.frombuffer(rest, dtype=np.uint8)].all()
        if text:
            raise EventFileError(
                path,
                header.data_offset,
                f"the file ends inside the header (unterminated line {rest[:40]!r}): truncated",
            )


def read_aedat2(
    path: PathLike,
    camera: Literal["auto", "dvs128", "davis346", "davis240"] = "auto",
    strict: bool = True,
    *,
    keep_special: bool = False,
) -> EventArray:
    """Read the polarity events of an AEDAT 2.0 file.

    Payload after the ``#`` header: 8-byte big-endian pairs ``uint32 address, uint32 t (µs)``.
    Address layouts (raw values are returned, no flips):

    * ``"dvs128"``: ``p = a & 1``, ``x = (a >> 1) & 0x7F``, ``y = (a >> 8) & 0x7F``; bit 15 marks
      an external (special) event, dropped unless ``keep_special``. **The meaning of raw bit 0
      differs between tools** (jAER treats 1 as OFF for the DVS128); ``p`` is the raw bit
      here. :func:`spikeloom.datasets.cifar10dvs.read_cifar10dvs` applies SpikingJelly's
      documented mapping.
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
    _check_header_complete(path, buf, header)
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
    return _decode_aedat2(path, rec, start, camera, keep_special)


def _decode_aedat2(
    path: PathLike, rec: np.ndarray, start: int, camera: str, keep_special: bool
) -> EventArray:
    """Polarity events of the ``(address, t)`` records (payload from byte ``start``)."""
    size = AEDAT2_CAMERAS[camera]
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
    _check_header_lines(header_lines)
    head = ("#!AER-DAT2.0\r\n" + "".join(f"{ln}\r\n" for ln in header_lines)).encode("latin-1")
    rec = np.empty(ev.size, dtype=_AEDAT2_EVENT)
    rec["a"] = a
    rec["t"] = t
    data = head + rec.tobytes()
    return atomic_write(path, lambda fh: fh.write(data), make_dirs=False)


register_format(
    "aedat2",
    read_aedat2,
    suffixes=(".aedat", ".dat"),
    magic=b"#!AER-DAT2",
    magic_text="'#!AER-DAT2.0' first line",
    description="AEDAT 2.0 (jAER; CIFAR10-DVS)",
    hint="read_aedat2(path, camera='dvs128' | 'davis346' | 'davis240'), read_cifar10dvs(path)",
)
