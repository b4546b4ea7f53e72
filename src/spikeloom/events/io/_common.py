"""Helpers shared by the format modules of :mod:`spikeloom.events.io`.

Reading a whole file into memory, reporting damage (raise, or warn and keep the valid prefix),
splitting the ``#`` text header of jAER/cAER files from the binary payload, and the small
content probes (zip and HDF5 signatures) used to tell formats apart.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import EventFileError, EventFileWarning

PathLike = str | os.PathLike

ZIP_MAGIC = b"PK\x03\x04"
"""First bytes of a zip archive (every ``.npz``)."""
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
"""HDF5 format signature (at byte 0 unless the file has a user block)."""


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


def _read_bytes(path: PathLike) -> bytes:
    """The whole file; ``FileNotFoundError`` naming it when it does not exist."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"event file {p} does not exist")
    return p.read_bytes()


def _first_true(mask: np.ndarray) -> int:
    """Index of the first True of a boolean array, or -1."""
    idx = np.flatnonzero(mask)
    return int(idx[0]) if idx.size else -1


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


def _check_header_lines(lines: Sequence[str]) -> None:
    """Raise ``ValueError`` unless every extra header line starts with ``#`` and has no newline."""
    for line in lines:
        if not line.startswith("#") or "\n" in line:
            raise ValueError(f"header lines must start with '#' and hold no newline: {line!r}")


def _zip_members(path: PathLike, head: bytes) -> set[str]:
    """Member names of a zip archive (``.npz``), or an empty set when it is not one."""
    if not head.startswith(ZIP_MAGIC):
        return set()
    try:
        with zipfile.ZipFile(path) as z:
            return set(z.namelist())
    except (zipfile.BadZipFile, OSError):
        return set()


def _h5_probe(path: PathLike, head: bytes, test: Callable[[Any], bool]) -> bool:
    """``test(h5py.File)`` for an HDF5 file; False when not HDF5 or h5py is missing."""
    if not head.startswith(HDF5_MAGIC):
        return False
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return bool(test(f))
    except (ImportError, OSError):
        return False
