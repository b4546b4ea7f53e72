"""Helpers shared by the format modules of :mod:`spikeloom.events.io`.

Reading a whole file into memory, reporting damage (raise, or warn and keep the valid prefix),
splitting the ``#`` text header of jAER/cAER files from the binary payload, and the small
content probes (zip and HDF5 signatures) used to tell formats apart.
"""

from __future__ import annotations

import ast
import os
import warnings
import zipfile
from collections.abc import Callable, Collection, Sequence
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
    except Exception:  # noqa: BLE001 - BadZipFile, NotImplementedError...: not a usable zip
        return set()


def _h5_probe(path: PathLike, head: bytes, test: Callable[[Any], bool]) -> bool:
    """``test(h5py.File)`` for an HDF5 file; False when not HDF5 or h5py is missing."""
    if not head.startswith(HDF5_MAGIC):
        return False
    from ._hdf5 import check_global_heaps

    check_global_heaps(path)  # a damaged heap would hang the library: EventFileError
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return bool(test(f))
    except Exception:  # noqa: BLE001 - damaged or not ours: the probe says no
        return False


_NPY_MAGIC = b"\x93NUMPY"
_MAX_DEFLATE_RATIO = 1100  # deflate cannot expand more than ~1032:1


def _npy_header(path: PathLike, name: str, head: bytes) -> tuple[np.dtype, tuple, bool, int]:
    """Parse the header of one ``.npy`` member ourselves: ``(dtype, shape, fortran, length)``.

    Only literal plain dtypes are accepted (no object arrays: a pickle in one of our files
    means damage, not a feature), so nothing in the header is executed or unpickled.
    """
    if head[:6] != _NPY_MAGIC or head[6:7] not in (b"\x01", b"\x02", b"\x03"):
        raise ValueError(f"member {name!r} is not a .npy array (magic {head[:8]!r})")
    if head[6] == 1:
        n, start = int.from_bytes(head[8:10], "little"), 10
    else:
        n, start = int.from_bytes(head[8:12], "little"), 12
    text = head[start : start + n]
    if len(text) < n:
        raise ValueError(f"member {name!r}: .npy header cut short")
    d = ast.literal_eval(text.decode("utf-8" if head[6] == 3 else "latin-1"))
    if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
        raise ValueError(f"member {name!r}: bad .npy header {text[:80]!r}")
    shape, fortran = d["shape"], d["fortran_order"]
    if not isinstance(shape, tuple) or not all(type(v) is int and v >= 0 for v in shape):
        raise ValueError(f"member {name!r}: bad shape {shape!r}")
    dtype = np.dtype(np.lib.format.descr_to_dtype(d["descr"]))
    if dtype.hasobject or dtype.itemsize == 0 or not isinstance(fortran, bool):
        raise ValueError(f"member {name!r}: dtype {dtype} cannot be an event column")
    return dtype, shape, fortran, start + n


def _npz_member(path: PathLike, z: zipfile.ZipFile, info: zipfile.ZipInfo, size: int) -> np.ndarray:
    """One ``.npy`` member, its sizes checked against the archive before anything is read."""
    name = info.filename
    ratio = 1 if info.compress_type == zipfile.ZIP_STORED else _MAX_DEFLATE_RATIO
    if info.compress_size > size or info.file_size > ratio * info.compress_size + 1024:
        raise ValueError(
            f"member {name!r} announces {info.file_size} bytes ({info.compress_size} stored) "
            f"in a file of {size} bytes"
        )
    with z.open(info) as fh:
        dtype, shape, fortran, start = _npy_header(
            path, name, fh.read(min(info.file_size, 65536 + 12))
        )
    count = int(np.prod(shape, dtype=object))
    if start + count * dtype.itemsize != info.file_size:
        raise ValueError(
            f"member {name!r}: header says {shape} of {dtype} but holds "
            f"{info.file_size - start} data bytes"
        )
    data = z.read(info)  # the whole member: checks its CRC
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=start)
    return arr.reshape(shape, order="F" if fortran else "C")


def _read_npz(path: PathLike, names: Collection[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` (all, or those in ``names``), read without pickles.

    Raises:
        EventFileError: the archive or one of its members is damaged (whatever the zip,
            zlib or header parsing raised, with its type in the message).
    """
    try:
        size = Path(path).stat().st_size
        with zipfile.ZipFile(path) as z:
            out = {}
            for info in z.infolist():
                key = info.filename[:-4] if info.filename.endswith(".npy") else None
                if key is None or (names is not None and key not in names):
                    continue
                out[key] = _npz_member(path, z, info, size)
            return out
    except (RecursionError, MemoryError) as exc:
        raise EventFileError(path, None, f"damaged .npz ({type(exc).__name__})") from None
    except Exception as exc:  # zipfile, zlib, ast, tokenize, struct...: all mean damage here
        if isinstance(exc, FileNotFoundError | EventFileError):
            raise
        detail = f"{type(exc).__name__}: {exc}"[:300]
        raise EventFileError(path, None, f"damaged .npz file ({detail})") from None
