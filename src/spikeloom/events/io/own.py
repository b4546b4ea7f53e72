"""spikeloom's own event files: :func:`save_events` / :func:`load_events` (``.npz`` or ``.h5``).

Layout: columns ``x, y, p, t`` (the :data:`~spikeloom.events.core.EVENT_DTYPE` types),
``sensor_size`` ``[3]``, ``format = "spikeloom-events"`` and ``version = 1`` (in ``.h5``:
datasets plus root attributes).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...atomic import atomic_write
from ...errors import EventFileError
from ..core import EventArray, as_events, make_events
from ._common import PathLike, _h5_probe, _read_npz, _zip_members
from ._hdf5 import h5_dataset, h5_errors, h5_open
from .formats import register_format

__all__ = ["load_events", "save_events"]

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
    return atomic_write(dest, write, make_dirs=False)


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
            data = _read_npz(p)
            fmt = str(data.get("format", ""))
        elif suffix in _H5_SUFFIXES:
            data, fmt = _read_own_h5(p)
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
    try:
        size = tuple(int(v) for v in np.asarray(data["sensor_size"]).ravel())
    except (ValueError, TypeError, OverflowError) as exc:
        raise EventFileError(p, None, f"bad sensor_size {data['sensor_size']!r}: {exc}") from None
    try:
        return make_events(data["x"], data["y"], data["p"], data["t"], size)
    except (ValueError, TypeError, OverflowError) as exc:
        raise EventFileError(p, None, f"invalid events: {exc}") from None


def _read_own_h5(p: Path) -> tuple[dict[str, Any], str]:
    """Columns, sensor size and format tag of an own ``.h5`` (structure checked first)."""
    with h5_open(p) as f:
        with h5_errors(p, "cannot read the file"):
            fmt = _h5_format_tag(f)
            if fmt != _OWN_FORMAT:
                return {}, fmt
            cols = {k: h5_dataset(p, f, k, ndim=1, kinds="iu") for k in ("x", "y", "p", "t")}
            data: dict[str, Any] = {k: ds[()] for k, ds in cols.items()}
            if "sensor_size" in f.attrs:
                data["sensor_size"] = np.asarray(f.attrs["sensor_size"])
    return data, fmt


def _h5_format_tag(f: Any) -> str:
    import h5py

    if "format" not in f.attrs:
        return ""
    kind = f.attrs.get_id("format").get_type()
    if not isinstance(kind, h5py.h5t.TypeStringID):  # reading a damaged type can segfault
        return f"<a {type(kind).__name__} attribute, not a string>"
    tag = f.attrs["format"]
    return tag.decode() if isinstance(tag, bytes) else str(tag)


def _is_own(path: Path, head: bytes) -> bool:
    if {"format.npy", "t.npy"} <= _zip_members(path, head):
        return True
    return _h5_probe(path, head, lambda f: _h5_format_tag(f) == _OWN_FORMAT)


register_format(
    "spikeloom",
    load_events,
    aliases=("own",),
    suffixes=(".npz", *_H5_SUFFIXES),
    sniff=_is_own,
    magic_text=f"zip or HDF5 tagged format={_OWN_FORMAT!r}",
    description="spikeloom's own event file (save_events)",
    hint="load_events(path)",
)
