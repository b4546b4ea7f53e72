"""AEDAT 3.1 files (cAER / libcaer polarity packets) and the DVS128 Gesture recordings.

Format (iniVation, "AEDAT file formats", docs.inivation.com): an ASCII header from
``#!AER-DAT3.1`` to ``#!END-HEADER``, then packets, each a 28-byte little-endian header and
its events. DVS128 Gesture (Amir et al., "A Low Power, Fully Event-Based Gesture Recognition
System", CVPR 2017) stores each recording in this format, with a CSV of labelled intervals
(:func:`read_gesture_labels`); cutting a recording into labelled gestures is a dataset
convention, applied by :func:`spikeloom.datasets.dvsgesture.read_dvs_gesture`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ...atomic import atomic_write
from ...errors import EventFileError
from ..core import EventArray, SensorSize, as_events, check_sensor_size, make_events
from ._common import (
    PathLike,
    _check_header_lines,
    _damaged,
    _first_true,
    _read_bytes,
    _split_hash_header,
)
from .formats import register_format

__all__ = [
    "GESTURE_LABEL_DTYPE",
    "read_aedat31",
    "read_gesture_labels",
    "write_aedat31",
]

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
    """Read the polarity events of an AEDAT 3.1 file (e.g. a DVS128 Gesture recording).

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

    packets, problem = _scan_packets(buf, pos, payload_length)
    if problem is not None:
        _damaged(path, problem[0], problem[1], strict, int(packets[:, 1].sum()))
    return _decode_polarity(path, buf, packets, size, drop_invalid)


def _scan_packets(
    buf: bytes, pos: int, payload_length: str
) -> tuple[np.ndarray, tuple[int, str] | None]:
    """Walk the packet headers from byte ``pos`` (one Python step per packet, not per event).

    Returns:
        ``[K, 5]`` int64 rows ``(payload start, eventNumber, eventSize, eventTSOffset,
        eventTSOverflow)`` of the non-empty polarity packets before the first damaged packet,
        and ``(offset, detail)`` of that damage or ``None``.
    """
    total = len(buf)
    hsize = _AEDAT31_PACKET.itemsize
    rows: list[tuple[int, int, int, int, int]] = []
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
        if int(h["ts_overflow"]) < 0:
            problem = (
                pos,
                f"corrupt packet header: eventTSOverflow={int(h['ts_overflow'])} is negative "
                f"(it counts 2**31 µs epochs)",
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
            if size_b < 8 or int(h["ts_offset"]) > size_b - 4:
                problem = (
                    pos,
                    f"polarity packet with eventSize={size_b}, eventTSOffset="
                    f"{int(h['ts_offset'])}; expected eventSize >= 8 and a 4-byte timestamp "
                    f"inside the event",
                )
                break
            rows.append((pos + hsize, number, size_b, int(h["ts_offset"]), int(h["ts_overflow"])))
        pos = end
    return np.asarray(rows, dtype=np.int64).reshape(-1, 5), problem


def _decode_polarity(
    path: PathLike, buf: bytes, packets: np.ndarray, size: SensorSize, drop_invalid: bool
) -> EventArray:
    """Decode every polarity event of ``packets`` (from :func:`_scan_packets`) in one gather."""
    cnt = packets[:, 1]
    n = int(cnt.sum())
    if n == 0:
        return make_events([], [], [], [], size)
    first = np.cumsum(cnt) - cnt
    local = np.arange(n, dtype=np.int64) - np.repeat(first, cnt)
    base = np.repeat(packets[:, 0], cnt) + local * np.repeat(packets[:, 2], cnt)
    b = np.frombuffer(buf, dtype=np.uint8)

    def u32_at(off: np.ndarray) -> np.ndarray:
        return (
            b[off].astype(np.uint32)
            | (b[off + 1].astype(np.uint32) << 8)
            | (b[off + 2].astype(np.uint32) << 16)
            | (b[off + 3].astype(np.uint32) << 24)
        )

    data = u32_at(base)
    ts = u32_at(base + np.repeat(packets[:, 3], cnt)).view(np.int32)
    t = (np.repeat(packets[:, 4], cnt) << 31) | ts.astype(np.int64)
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
    _check_header_lines(extra_header_lines)
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
    return atomic_write(path, lambda fh: fh.write(data), make_dirs=False)


_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
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
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EventFileError(path, exc.start, f"not UTF-8 text ({exc.reason})") from None
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
        if not (_I64_MIN <= start <= _I64_MAX and _I64_MIN <= end <= _I64_MAX):
            raise EventFileError(path, None, f"line {lineno}: times do not fit int64: {row!r}")
        if start >= end:
            raise EventFileError(path, None, f"line {lineno}: start {start} >= end {end}")
        out.append((label, start, end))
    return np.array(out, dtype=GESTURE_LABEL_DTYPE)


register_format(
    "aedat31",
    read_aedat31,
    suffixes=(".aedat",),
    magic=b"#!AER-DAT3",
    magic_text="'#!AER-DAT3.1' first line",
    description="AEDAT 3.1 (cAER; DVS128 Gesture)",
    hint="read_aedat31(path, sensor_size=...), read_dvs_gesture(path, labels_csv)",
)
