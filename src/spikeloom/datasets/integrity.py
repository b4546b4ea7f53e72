"""Integrity records of the frame cache: what a cached entry was computed from, and checksums.

Every entry of a :class:`~spikeloom.datasets.cache.FrameCache` carries a small JSON record
(:func:`entry_record`): the cache key and sample index it belongs to, the frames' shape, dtype
and BLAKE2b checksum, and (for dataset samples) the identity of its source — the sample's id
string and, per source file, its ``stat`` signature and a BLAKE2b hash of its bytes
(:class:`SampleSource`, :func:`describe_source`). :func:`entry_problem` checks an entry read
back against that record; :func:`source_changed` tells whether the source files still hold
the content the frames were computed from.

Source check, fast path: size, ``mtime_ns``, inode and ``ctime_ns`` equal to the record, and
the hash taken more than :data:`RACY_NS` after the file's last change (``ctime``). Any write
to a file, and any ``os.utime`` that puts its mtime back, sets its ctime to the current time,
so an unchanged signature means unchanged bytes — except for a change within the timestamp
granularity of the hash itself, which is why a "racy" record (hash taken too soon after the
change) is never trusted on its signature. Otherwise the file is hashed again (once per
process and signature, :class:`_DigestMemo`) and compared with the recorded hash: a copied or
touched but identical file keeps its entries, a changed one does not.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ENTRY_FORMAT",
    "RACY_NS",
    "SampleSource",
    "array_checksum",
    "describe_source",
    "entry_problem",
    "entry_record",
    "file_digest",
    "parse_record",
    "source_changed",
    "source_problem",
]

ENTRY_FORMAT = 1
"""Version of the integrity record stored with each cache entry."""

RACY_NS = 2_000_000_000
"""A file hashed less than this many ns after its last change (``ctime``) is re-hashed on every
check: a further change within the file system's timestamp granularity could leave its
``stat`` signature unchanged."""

_CHUNK = 1 << 20


@dataclass(frozen=True)
class SampleSource:
    """What one dataset sample is computed from.

    Attributes:
        id: the sample's identity within its dataset part (e.g. ``"Train/3/00012.bin:25140"``).
        files: the source files whose bytes determine the frames (empty: identity only).
    """

    id: str
    files: tuple[Path, ...] = field(default_factory=tuple)


def file_digest(path: str | os.PathLike) -> str:
    """BLAKE2b (16-byte digest, hex) of the bytes of ``path``."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def array_checksum(arr: np.ndarray) -> str:
    """BLAKE2b (16-byte digest, hex) of the bytes of ``arr`` in C order."""
    return hashlib.blake2b(np.ascontiguousarray(arr).tobytes(), digest_size=16).hexdigest()


def _signature(st: os.stat_result) -> list[int]:
    return [int(st.st_size), int(st.st_mtime_ns), int(st.st_ino), int(st.st_ctime_ns)]


class _DigestMemo:
    """File hashes of this process, by path and ``stat`` signature (non-racy files only)."""

    limit = 200_000

    def __init__(self) -> None:
        self._memo: dict[tuple[Any, ...], str] = {}

    def digest(self, path: Path, st: os.stat_result) -> str:
        key = (str(path), *_signature(st))
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        out = file_digest(path)
        if time.time_ns() - int(st.st_ctime_ns) > RACY_NS:
            if len(self._memo) >= self.limit:
                self._memo.clear()
            self._memo[key] = out
        return out


_MEMO = _DigestMemo()


def describe_source(source: SampleSource | None) -> dict[str, Any] | None:
    """The source part of an entry's record: id, and per file its signature and hash.

    Call it *before* computing the frames: a file changed while they are computed then has a
    newer ``ctime`` than its record and is checked again by content on the next read.

    Raises:
        OSError: a source file cannot be read.
    """
    if source is None:
        return None
    files = []
    for path in source.files:
        st = os.stat(path)
        digest = _MEMO.digest(Path(path), st)
        files.append({"stat": _signature(st), "blake2b": digest, "hashed_ns": time.time_ns()})
    return {"id": str(source.id), "files": files}


def source_problem(record: Any, source: SampleSource) -> str | None:
    """Why ``record`` (from :func:`describe_source`) is not a record of ``source``, or ``None``.

    This is about identity only (another sample's entry, a malformed record); whether the
    source files still hold the recorded bytes is :func:`source_changed`.
    """
    if not isinstance(record, dict):
        return "it has no record of its source sample"
    if record.get("id") != str(source.id):
        return f"it belongs to sample {record.get('id')!r}, not {source.id!r}"
    files = record.get("files")
    if (
        not isinstance(files, list)
        or len(files) != len(source.files)
        or not all(isinstance(f, dict) for f in files)
    ):
        return "its record of the source files does not match the sample"
    return None


def source_changed(record: dict[str, Any], source: SampleSource) -> str | None:
    """Which source file of ``source`` no longer holds the bytes ``record`` describes, or ``None``.

    ``record`` must have passed :func:`source_problem`. A file that cannot be read counts as
    changed.
    """
    for path, rec in zip(source.files, record["files"]):
        try:
            st = os.stat(path)
            if (
                rec.get("stat") == _signature(st)
                and int(rec.get("hashed_ns", 0)) - int(st.st_ctime_ns) > RACY_NS
            ):
                continue
            if _MEMO.digest(Path(path), st) != rec.get("blake2b"):
                return f"its source file {path} changed"
        except OSError as exc:
            return f"its source file {path} cannot be read ({exc.strerror or exc})"
    return None


def entry_record(
    key: str, index: int, arr: np.ndarray, source: dict[str, Any] | None
) -> bytes:
    """The JSON record stored with cache entry ``index`` of folder ``key`` (UTF-8 bytes)."""
    body = {
        "format": ENTRY_FORMAT,
        "key": key,
        "index": int(index),
        "shape": list(arr.shape),
        "dtype": arr.dtype.str,
        "blake2b": array_checksum(arr),
        "source": source,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def parse_record(raw: bytes | None) -> dict[str, Any] | None:
    """The record stored with an entry as a dict, or ``None`` (absent or unreadable)."""
    if raw is None:
        return None
    try:
        rec = json.loads(bytes(raw).decode())
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("format") != ENTRY_FORMAT:
        return None
    return rec


def entry_problem(
    rec: dict[str, Any] | None,
    arr: np.ndarray,
    *,
    key: str,
    index: int,
    shape: tuple[int, ...] | None = None,
) -> str | None:
    """What is wrong with entry ``index`` of folder ``key`` read back as ``arr``, or ``None``.

    Args:
        rec: the entry's record (:func:`parse_record`), ``None`` when it has none.
        arr: the frames read from the entry.
        key: the cache folder's key.
        index: the sample index the entry was read for.
        shape: the frame shape the dataset produces, if known.
    """
    if rec is None:
        return "it has no readable integrity record (checksum, shape, sample)"
    if rec.get("key") != key or rec.get("index") != int(index):
        return (
            f"it holds sample {rec.get('index')!r} of cache {rec.get('key')!r}, not sample "
            f"{int(index)} of {key!r}"
        )
    if rec.get("shape") != list(arr.shape) or rec.get("dtype") != arr.dtype.str:
        return (
            f"its frames have shape {tuple(arr.shape)} {arr.dtype}, the record says "
            f"{rec.get('shape')} {rec.get('dtype')}"
        )
    if rec.get("blake2b") != array_checksum(arr):
        return "its frames do not match their checksum (changed on disk)"
    if shape is not None and tuple(arr.shape) != tuple(shape):
        return f"its frames have shape {tuple(arr.shape)}, the dataset makes {tuple(shape)}"
    return None
