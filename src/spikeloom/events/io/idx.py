"""MNIST IDX files (``.gz`` or raw): :func:`read_idx`.

The IDX format is the one of the MNIST database (LeCun, Bottou, Bengio and Haffner,
"Gradient-based learning applied to document recognition", Proc. IEEE 1998; file layout
described on the MNIST page, yann.lecun.com/exdb/mnist). These files hold arrays, not events,
so :func:`~spikeloom.events.io.read_events` does not read them.
"""

from __future__ import annotations

import gzip
import struct
import zlib

import numpy as np

from ...errors import EventFileError
from ._common import PathLike, _read_bytes

__all__ = ["read_idx"]

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
