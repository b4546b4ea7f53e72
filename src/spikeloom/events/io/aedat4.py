"""AEDAT 4.0 files (iniVation DV): packet framing parsed here, payloads decoded by ``aedat``.

Format (iniVation, "AEDAT 4.0", docs.inivation.com): the line ``#!AER-DAT4.0\\r\\n``, a
size-prefixed FlatBuffer ``IOHeader`` (compression, data-table position, XML stream
description), then ``int32 stream id, int32 size`` packets of compressed FlatBuffers. The
payloads are decoded with the ``aedat`` package (PyPI ``aedat``, a Rust extension), imported
only when a file is read.
"""

from __future__ import annotations

import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np

from ...errors import EventFileError
from ..core import EVENT_DTYPE, EventArray, as_events, check_sensor_size
from ._common import PathLike, _damaged, _read_bytes
from .formats import register_format

__all__ = ["Aedat4Layout", "read_aedat4"]

_AEDAT4_MAGIC = b"#!AER-DAT4.0\r\n"
_COMPRESSIONS = (0, 1, 2, 3, 4)
_T_MAX = 2**63 - 1
_NOT_DAMAGE = (KeyboardInterrupt, SystemExit, GeneratorExit)
"""Base exceptions let through; any other (Rust panics are BaseException) means damage."""


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


def _parse_ioheader(path: PathLike, fb: bytes, base: int) -> tuple[int, int, str]:
    """``(compression, data table position, XML info)`` of the IOHeader FlatBuffer ``fb``.

    ``base`` is the byte offset of ``fb`` in the file (for the error messages). The XML
    stream description must be ASCII and well-formed: the ``aedat`` decoder panics, or
    aborts the process, on other bytes there.
    """
    try:
        (root,) = struct.unpack_from("<I", fb, 0)
        if fb[4:8] != b"IOHE":
            raise EventFileError(path, base + 4, f"expected FlatBuffer id b'IOHE', got {fb[4:8]!r}")
        (vt_rel,) = struct.unpack_from("<i", fb, root)
        vt = root - vt_rel
        if not 0 <= vt < len(fb):
            raise struct.error(f"vtable offset {vt} outside the IOHeader")
        (vt_size,) = struct.unpack_from("<H", fb, vt)
        n_fields = (vt_size - 4) // 2
        offs = struct.unpack_from(f"<{max(n_fields, 0)}H", fb, vt + 4)
        compression = (
            struct.unpack_from("<i", fb, root + offs[0])[0] if n_fields > 0 and offs[0] else 0
        )
        dtp = struct.unpack_from("<q", fb, root + offs[1])[0] if n_fields > 1 and offs[1] else -1
        info_at, raw_info = -1, b""
        if n_fields > 2 and offs[2]:
            sp = root + offs[2]
            sp += struct.unpack_from("<I", fb, sp)[0]
            (slen,) = struct.unpack_from("<I", fb, sp)
            info_at, raw_info = sp + 4, fb[sp + 4 : sp + 4 + slen]
            if len(raw_info) != slen:
                raise struct.error(f"info string of {slen} bytes runs past the IOHeader")
    except struct.error as exc:
        raise EventFileError(path, base, f"corrupt IOHeader FlatBuffer ({exc})") from None
    if compression not in _COMPRESSIONS:
        raise EventFileError(path, base, f"unknown compression {compression} in the IOHeader")
    return compression, dtp, _check_info(path, raw_info, base + info_at)


def _check_info(path: PathLike, raw: bytes, offset: int) -> str:
    """The XML stream description, checked to be ASCII and well-formed XML."""
    bad = next((i for i, b in enumerate(raw) if b > 0x7E or (b < 0x20 and b not in b"\t\r\n")), -1)
    if bad >= 0:
        raise EventFileError(
            path,
            offset + bad,
            f"byte 0x{raw[bad]:02X} in the XML stream description (damaged header; the "
            f"'aedat' decoder needs plain ASCII there)",
        )
    if not raw:
        raise EventFileError(path, None, "the IOHeader has no stream description")
    info = raw.decode("ascii")
    try:
        ElementTree.fromstring(info)
    except ElementTree.ParseError as exc:
        line, col = exc.position
        raise EventFileError(
            path, offset, f"malformed XML stream description (line {line}, column {col})"
        ) from None
    return info


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
    compression, dtp, info = _parse_ioheader(path, buf[m + 4 : m + 4 + n], m + 4)
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


def _import_aedat() -> Any:
    """The ``aedat`` module, imported on first use (a Rust extension)."""
    try:
        import aedat
    except ImportError as exc:
        raise ImportError(
            f"reading AEDAT 4.0 files needs the 'aedat' package: pip install aedat ({exc})"
        ) from exc
    return aedat


def _event_stream(
    path: PathLike, streams: dict[int, dict[str, Any]], stream_id: int | None
) -> tuple[int, dict[str, Any]]:
    """``(id, description)`` of the event stream to read: ``stream_id`` or the only one."""
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
    return stream_id, ev_streams[stream_id]


def read_aedat4(
    path: PathLike,
    strict: bool = True,
    *,
    stream_id: int | None = None,
) -> EventArray:
    """Read the polarity events of an AEDAT 4.0 file (needs the ``aedat`` package).

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

    Raises:
        ImportError: the ``aedat`` package is missing (the message says ``pip install aedat``).
        EventFileError: damaged file (``strict``), or no single event stream.
    """
    aedat = _import_aedat()
    buf = _read_bytes(path)
    layout = _aedat4_layout(path, buf)
    if layout.problem is not None and strict:
        raise EventFileError(path, *layout.problem)
    if layout.problem is None:
        size, chunks, failure = _decode(aedat, path, path, stream_id)
    else:  # the decoder gets only the packets validated above (a valid file prefix)
        last = layout.packets[-1] if layout.packets else None
        cut = last[1] + last[2] if last else len(_AEDAT4_MAGIC) + 4
        if last is None:
            (n,) = struct.unpack_from("<I", buf, len(_AEDAT4_MAGIC))
            cut += n
        with tempfile.TemporaryDirectory(prefix="spikeloom-aedat4-") as tmp:
            part = Path(tmp) / "valid-prefix.aedat4"
            part.write_bytes(buf[:cut])
            size, chunks, failure = _decode(aedat, path, part, stream_id)
    chunks, failure = _drop_negative_times(chunks, failure)
    n_ok = int(sum(c.size for c in chunks))
    if failure is not None or layout.problem is not None:
        offset, detail = layout.problem if layout.problem is not None else (None, "")
        if failure is not None:
            detail = f"{detail}; decoder: {failure}" if detail else f"decoder failed: {failure}"
        _damaged(path, offset, detail, strict, n_ok)
    out = np.empty(n_ok, dtype=EVENT_DTYPE)
    pos = 0
    try:
        for c in chunks:
            sl = slice(pos, pos + c.size)
            out["t"][sl] = c["t"]
            out["x"][sl] = c["x"]
            out["y"][sl] = c["y"]
            out["p"][sl] = c["on"]
            pos += c.size
        return as_events(out, size)
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise EventFileError(path, None, f"invalid events from the decoder: {exc}") from None


def _drop_negative_times(
    chunks: list[np.ndarray], failure: str | None
) -> tuple[list[np.ndarray], str | None]:
    """Keep the chunks before the first one holding a negative timestamp (a damaged payload
    that still decompressed); the failure text then says so."""
    for k, c in enumerate(chunks):
        try:
            t = c["t"]
            bad = bool(c.size) and (int(t.min()) < 0 or int(t.max()) > _T_MAX)
        except (KeyError, ValueError, TypeError, IndexError):
            bad = True
        if bad:
            detail = f"decoded packet {k} has a negative timestamp (or one past int64) or no 't'"
            return chunks[:k], detail if failure is None else f"{detail}; {failure}"
    return chunks, failure


def _decode(
    aedat: Any, path: PathLike, decode_path: PathLike, stream_id: int | None
) -> tuple[tuple[int, int, int], list[np.ndarray], str | None]:
    """Run the ``aedat`` decoder on ``decode_path``: sensor size, event chunks, failure.

    Whatever the decoder raises, Rust panics (``pyo3_runtime.PanicException``, a
    ``BaseException``) included, becomes :class:`EventFileError` naming ``path`` (opening)
    or the returned failure text (decoding: the chunks before it are kept).
    """
    try:
        decoder = aedat.Decoder(str(decode_path))
        streams = decoder.id_to_stream()
    except _NOT_DAMAGE:
        raise
    except BaseException as exc:  # noqa: BLE001 - RuntimeError, OSError, Rust panics
        raise EventFileError(
            path, None, f"aedat could not open the file: {type(exc).__name__}: {exc}"
        ) from None
    stream_id, desc = _event_stream(path, streams, stream_id)
    try:
        size = check_sensor_size((int(desc["width"]), int(desc["height"]), 2))
    except (KeyError, ValueError, TypeError, OverflowError) as exc:
        raise EventFileError(
            path, None, f"bad sensor size in the stream description: {exc}"
        ) from None
    chunks: list[np.ndarray] = []
    failure: str | None = None
    try:
        for packet in decoder:
            if packet["stream_id"] == stream_id and "events" in packet:
                chunks.append(packet["events"])
    except _NOT_DAMAGE:
        raise
    except BaseException as exc:  # noqa: BLE001
        failure = f"{type(exc).__name__}: {exc}"
    return size, chunks, failure


register_format(
    "aedat4",
    read_aedat4,
    suffixes=(".aedat4",),
    magic=b"#!AER-DAT4.0",
    magic_text="'#!AER-DAT4.0' first line",
    description="AEDAT 4.0 (iniVation DV)",
    hint="read_aedat4(path, stream_id=...)",
)
