"""Reading HDF5 event files defensively (``h5py``), shared by the SHD and own-format readers.

The HDF5 library trusts the file: a damaged global heap (where variable-length data such as
SHD spike trains and string attributes live) can make it loop forever, and damaged metadata
surfaces as ``KeyError``/``OSError``/``RuntimeError``/``ValueError`` from ``h5py``. These
helpers check the global heaps before the library reads them, check each dataset's kind,
shape, dtype and size before reading it, and turn whatever ``h5py`` raises into
:class:`~spikeloom.errors.EventFileError` naming the file.
"""

from __future__ import annotations

import mmap
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import EventFileError
from ._common import PathLike

_GCOL = b"GCOL"
_GCOL_HEADER = 16  # signature, version, 3 reserved, collection size (8)
_GOBJ_HEADER = 16  # heap object index (2), reference count (2), reserved (4), size (8)


def _walk_global_heap(
    path: PathLike, mm: Any, pos: int, objects: dict[tuple[int, int], tuple[int, int]]
) -> None:
    """Walk the objects of the global heap collection at ``pos`` as the HDF5 library does.

    The library advances by each object's (aligned) size; an object of size 0 with index 0
    makes it loop forever and a size past the collection makes its pointer arithmetic
    wrap. Both are rejected here, with the offset of the object.
    """
    n = len(mm)
    if pos + _GCOL_HEADER > n:
        return
    end = pos + int.from_bytes(mm[pos + 8 : pos + 16], "little")
    if end > n or end < pos + _GCOL_HEADER:
        return  # the library fails to read such a collection (no loop)
    p = pos + _GCOL_HEADER
    while p + _GOBJ_HEADER <= end:
        idx = int.from_bytes(mm[p : p + 2], "little")
        size = int.from_bytes(mm[p + 8 : p + 16], "little")
        need = size if idx == 0 else _GOBJ_HEADER + ((size + 7) & ~7)
        if need <= 0 or need > end - p:
            raise EventFileError(
                path,
                p,
                f"corrupt HDF5 global heap object (index {idx}, size {size}) in the "
                f"collection at byte {pos}: the file is damaged",
            )
        if idx > 0:
            objects[(pos, idx)] = (p + _GOBJ_HEADER, size)
        p += need


def check_global_heaps(path: PathLike) -> dict[tuple[int, int], tuple[int, int]]:
    """Raise :class:`EventFileError` when a global heap collection of the file is damaged.

    Returns:
        ``{(collection offset, object index): (data offset, size)}`` of the heap objects.
    """
    p = Path(path)
    if p.stat().st_size == 0:
        raise EventFileError(p, 0, "empty file, expected HDF5")
    with open(p, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        objects: dict[tuple[int, int], tuple[int, int]] = {}
        pos = mm.find(_GCOL)
        while pos >= 0:
            _walk_global_heap(p, mm, pos, objects)
            pos = mm.find(_GCOL, pos + 1)
    return objects


@contextmanager
def h5_errors(path: PathLike, what: str) -> Iterator[None]:
    """Turn what ``h5py``/HDF5 raise while doing ``what`` into :class:`EventFileError`."""
    try:
        yield
    except EventFileError:
        raise
    except (MemoryError, RecursionError) as exc:
        raise EventFileError(path, None, f"{what}: {type(exc).__name__} (damaged file?)") from None
    except Exception as exc:  # KeyError, OSError, RuntimeError, ValueError, TypeError...
        detail = f"{type(exc).__name__}: {exc}"[:300]
        raise EventFileError(path, None, f"{what}: damaged HDF5 file ({detail})") from None


def h5_open(path: PathLike) -> Any:
    """``h5py.File(path, "r")`` after :func:`check_global_heaps`; errors as EventFileError."""
    import h5py

    check_global_heaps(path)
    with h5_errors(path, "cannot open as HDF5"):
        return h5py.File(path, "r")


def h5_dataset(
    path: PathLike, f: Any, key: str, *, ndim: int, kinds: str, vlen: bool = False
) -> Any:
    """The dataset ``f[key]`` after checking its kind, rank, dtype and size (nothing is read).

    Args:
        kinds: allowed numpy dtype kinds of the elements (of the vlen base type if ``vlen``).
        vlen: the elements are variable-length arrays (SHD spike trains).
    """
    import h5py

    with h5_errors(path, f"cannot read '{key}'"):
        if key not in f:
            raise EventFileError(path, None, f"missing dataset '{key}'")
        ds = f[key]
        if not isinstance(ds, h5py.Dataset):
            raise EventFileError(path, None, f"'{key}' is a {type(ds).__name__}, not a dataset")
        base = h5py.check_vlen_dtype(ds.dtype) if vlen else ds.dtype
        if base is None or np.dtype(base).kind not in kinds or len(ds.shape) != ndim:
            raise EventFileError(
                path,
                None,
                f"dataset '{key}' has shape {ds.shape} and dtype {ds.dtype}; expected "
                f"{ndim}-D {'variable-length ' if vlen else ''}arrays of kind {kinds!r}",
            )
        n_items = int(np.prod(ds.shape, dtype=object))
        stored = int(ds.id.get_storage_size())
        file_size = Path(path).stat().st_size
        limit = 100 * file_size if vlen else max(1100 * file_size, 1 << 20)
        if n_items * (1 if vlen else ds.dtype.itemsize) > limit or stored > file_size:
            raise EventFileError(
                path,
                None,
                f"dataset '{key}' announces {ds.shape} items ({stored} bytes stored) in a "
                f"file of {file_size} bytes: damaged",
            )
        return ds


_HVL = np.dtype([("n", "<u4"), ("addr", "<u8"), ("idx", "<u4")])
"""On-disk reference of one variable-length sequence: length, heap collection, object."""


def _chunked_refs(path: PathLike, ds: Any) -> np.ndarray | None:
    """On-disk references of a 1-D chunked vlen dataset (raw chunks, inflated here), or
    ``None`` for filters other than gzip (read through ``h5py`` then)."""
    if ds.chunks is None or len(ds.chunks) != 1 or ds.compression not in (None, "gzip"):
        return None
    if ds.shuffle or ds.fletcher32 or ds.scaleoffset is not None:
        return None
    n, cs = len(ds), int(ds.chunks[0])
    parts = []
    for start in range(0, n, cs):
        mask, data = ds.id.read_direct_chunk((start,))
        if ds.compression == "gzip" and not mask & 1:
            inflate = zlib.decompressobj()
            data = inflate.decompress(data, cs * _HVL.itemsize + 1)
        if len(data) != cs * _HVL.itemsize:
            raise EventFileError(
                path, None, f"chunk at element {start} holds {len(data)} bytes, expected {cs * 16}"
            )
        parts.append(np.frombuffer(data, dtype=_HVL)[: n - start])
    return np.concatenate(parts) if parts else np.zeros(0, dtype=_HVL)


class VlenColumn:
    """Elements of a 1-D variable-length dataset, read from the global heap without HDF5.

    For a contiguous or chunked (optionally gzip) dataset in a file without user block, each
    element's on-disk reference (length, collection offset, object index) is checked against
    the global heap objects found by :func:`check_global_heaps` and the bytes are read
    directly (the HDF5 library crashes on some damaged type or reference data). Other
    filters are read through ``h5py``, errors as :class:`EventFileError`.
    """

    def __init__(self, path: PathLike, f: Any, key: str, base: np.dtype) -> None:
        self.path, self.key, self.base = Path(path), key, np.dtype(base)
        self.refs: np.ndarray | None = None
        with h5_errors(path, f"cannot read '{key}'"):
            ds = f[key]
            n, off = len(ds), ds.id.get_offset()
            stored = int(ds.id.get_storage_size())
            if f.userblock_size != 0:
                return
            if off is None:
                self.refs = _chunked_refs(path, ds)
                if self.refs is not None:
                    self.offset, self.heap = None, check_global_heaps(path)
                return
        if stored != n * _HVL.itemsize or off + stored > self.path.stat().st_size:
            raise EventFileError(
                path, off, f"'{key}': {stored} bytes of references stored for {n} elements"
            )
        with open(self.path, "rb") as fh:
            fh.seek(off)
            self.refs = np.frombuffer(fh.read(stored), dtype=_HVL)
        self.offset = off
        self.heap = check_global_heaps(path)

    def read(self, f: Any, i: int) -> np.ndarray:
        """Element ``i`` as a 1-D array of the base dtype."""
        if self.refs is None:
            with h5_errors(self.path, f"cannot read element {i} of '{self.key}'"):
                return np.asarray(f[self.key][i])
        n, addr, idx = (int(v) for v in self.refs[i].tolist())
        if n == 0:
            return np.zeros(0, dtype=self.base)
        obj = self.heap.get((addr, idx))
        if obj is None or obj[1] != n * self.base.itemsize:
            raise EventFileError(
                self.path,
                None if self.offset is None else self.offset + i * _HVL.itemsize,
                f"element {i} of '{self.key}' refers to {n} values in heap object "
                f"({addr}, {idx}), which is {'missing' if obj is None else f'{obj[1]} bytes'}",
            )
        with open(self.path, "rb") as fh:
            fh.seek(obj[0])
            return np.frombuffer(fh.read(obj[1]), dtype=self.base)
