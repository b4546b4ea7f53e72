"""On-disk cache of preprocessed event frames (one ``.npy``/``.npz`` file per sample).

:class:`CachedDataset` wraps any dataset of per-index frames (``dataset[i] -> frames``) with
this cache; the event datasets (:mod:`.base`) use it with a key made of their file list, the
transform's ``cache_key()`` and the reader options. :class:`FrameCache` is the folder itself.

Layout::

    CACHE_DIR/<dataset>/<key>/
        meta.json          what the key stands for (dataset, transform, dtype, version, ...)
        0000000.npy        frames of sample 0 of the source part (compact integer dtype),
                           followed by the entry's integrity record
        0000001.npy        ...

``key`` is a hash of the dataset name, the list of source files (names and sizes) the sample
indices refer to, the transform's ``cache_key()``, the output dtype and :data:`CACHE_VERSION`
(:func:`make_cache_key`), so changing any of them selects a fresh folder.

Each entry also carries an integrity record (:mod:`.integrity`), checked on every read: the key
and index it belongs to, the frames' shape, dtype and BLAKE2b checksum, and for dataset samples
the sample's id and, per source file, its ``stat`` signature (size, mtime, inode, ctime) and
BLAKE2b content hash, taken when the frames were computed. A damaged entry, a changed byte or
zeroed region, a wrong-shape array, or another sample's (or another cache's) entry is never
returned: it is reported with one ``RuntimeWarning`` naming the file, deleted and recomputed.
An entry whose source file no longer holds the same bytes (even with the same size and mtime)
is recomputed silently. Unchanged sources cost one ``stat`` per read; a file is hashed again
only when its signature changed (then once per process). An uncompressed entry is a ``.npy``
file followed by the record (JSON), its length (8 bytes, little-endian) and ``SLFCREC1``
(``np.load`` reads the frames and ignores the rest); a compressed entry is an ``.npz`` with
members ``frames`` and ``record``.

Writes are atomic (:func:`spikeloom.atomic.atomic_write`): a sample is written to a temporary
file in the same folder (named ``.<file>.<host>.<pid>.<random>.tmp``) and moved into place with
:func:`os.replace`. An
interrupted run therefore leaves no partial sample under its final name, only a temporary file,
which is ignored by readers and removed by the next :class:`FrameCache` opened on that folder
(when its process is dead, or when it is older than ``stale_after`` seconds); a re-run computes
only the samples that are missing. Several DataLoader workers or processes may fill the same
cache at once: each writes its own temporary file and the rename is atomic, so concurrent
writers of one sample simply replace identical content (last writer wins).

Frames are stored in the most compact dtype that holds them exactly (``uint8``/``uint16``/
``uint32`` for non-negative integer counts, signed types for signed integers, the original
float dtype otherwise); readers convert back to the dataset's output dtype.

The default cache folder is ``$SPIKELOOM_CACHE`` if set, else ``~/.cache/spikeloom``;
``cache_dir=False`` disables caching (see :func:`resolve_cache_dir`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import warnings
import zipfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..atomic import atomic_write, clean_stale_temps
from .integrity import (
    SampleSource,
    describe_source,
    entry_problem,
    entry_record,
    parse_record,
    source_changed,
    source_problem,
)

__all__ = [
    "CACHE_ENV",
    "CACHE_VERSION",
    "CachedDataset",
    "FrameCache",
    "SampleSource",
    "compact_array",
    "default_cache_dir",
    "make_cache_key",
    "resolve_cache_dir",
    "transform_cache_key",
]

CACHE_ENV = "SPIKELOOM_CACHE"
"""Environment variable that overrides the default cache folder."""

CACHE_VERSION = 2
"""Bumped whenever the cache file format or the meaning of a cached sample changes (2: every
entry carries an integrity record, see :mod:`.integrity`)."""

_TRAILER_MAGIC = b"SLFCREC1"
"""End of an uncompressed entry: ``.npy`` bytes, record JSON, record length (8 bytes LE), this."""


def default_cache_dir() -> Path:
    """``$SPIKELOOM_CACHE`` if set (and not empty), else ``~/.cache/spikeloom``."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "spikeloom"


def resolve_cache_dir(cache_dir: str | os.PathLike | bool | None) -> Path | None:
    """Turn a dataset's ``cache_dir`` argument into a folder, or ``None`` (no caching).

    Args:
        cache_dir: ``None`` or ``True``: :func:`default_cache_dir`; ``False``: disabled;
            a path: that folder (created on first write).
    """
    if cache_dir is None or cache_dir is True:
        return default_cache_dir()
    if cache_dir is False:
        return None
    if isinstance(cache_dir, (str, os.PathLike)):
        if str(cache_dir) == "":
            raise ValueError("cache_dir is an empty string; pass a folder, None or False")
        return Path(cache_dir).expanduser()
    raise TypeError(
        f"cache_dir must be a folder path, None (default folder) or False (no cache), got "
        f"{cache_dir!r}"
    )


def transform_cache_key(transform: Any) -> str | None:
    """A stable string describing ``transform`` for the cache key, or ``None`` if unknown.

    Uses ``transform.cache_key()`` if it exists, else a JSON dump of ``transform.params()``
    (prefixed with the class name). Plain functions and lambdas have neither and give ``None``:
    their output cannot be cached safely.
    """
    if transform is None:
        return "none"
    fn = getattr(transform, "cache_key", None)
    if callable(fn):
        key = fn()
        if not isinstance(key, str) or not key:
            raise TypeError(f"{type(transform).__name__}.cache_key() must return a string")
        return key
    params = getattr(transform, "params", None)
    if callable(params):
        body = json.dumps(params(), sort_keys=True, separators=(",", ":"), default=str)
        return f"{type(transform).__module__}.{type(transform).__qualname__}:{body}"
    return None


def make_cache_key(
    dataset: str,
    files: Iterable[str],
    transform_key: str,
    dtype: Any,
    version: int = CACHE_VERSION,
) -> str:
    """Hash (24 hex digits of SHA-256) of everything that determines the cached frames.

    Args:
        dataset: dataset name (e.g. ``"nmnist"``).
        files: one string per sample of the source part, in index order (e.g.
            ``"Train/0/00002.bin:25140"``: relative path and size); sample ``i`` of the cache
            is the ``i``-th entry.
        transform_key: :func:`transform_cache_key` of the frame transform.
        dtype: the frames' output dtype (e.g. ``"float32"``).
        version: :data:`CACHE_VERSION` (or a dataset-specific version).
    """
    h = hashlib.sha256()
    for part in (f"spikeloom-cache/{int(version)}", dataset, transform_key, np.dtype(dtype).str):
        h.update(part.encode())
        h.update(b"\0")
    n = 0
    for f in files:
        h.update(str(f).encode())
        h.update(b"\n")
        n += 1
    h.update(f"n={n}".encode())
    return h.hexdigest()[:24]


def compact_array(frames: np.ndarray) -> np.ndarray:
    """Return ``frames`` in the smallest dtype that represents every value exactly.

    Non-negative integer values (also stored as floats) → ``uint8``/``uint16``/``uint32``;
    integers with negatives → ``int8``/``int16``/``int32``; anything else (fractions, NaN,
    huge values) keeps its dtype. Booleans become ``uint8``.
    """
    a = np.asarray(frames)
    if a.dtype == np.bool_:
        return a.astype(np.uint8)
    if a.size == 0 or a.dtype.kind not in "uif":
        return a
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.array_equal(a, np.round(a)):
            return a
    lo, hi = a.min(), a.max()
    candidates = (np.uint8, np.uint16, np.uint32) if lo >= 0 else (np.int8, np.int16, np.int32)
    for d in candidates:
        info = np.iinfo(d)
        if info.min <= lo and hi <= info.max:
            if np.dtype(d).itemsize < a.dtype.itemsize or a.dtype.kind == "f":
                return a.astype(d)
            return a
    return a


class FrameCache:
    """Per-sample frame files under ``root/<dataset>/<key>/`` (see the module docstring).

    Args:
        root: the cache folder (e.g. :func:`default_cache_dir`).
        dataset: dataset name (first path component).
        key: :func:`make_cache_key` result (second path component).
        meta: JSON-compatible description written once to ``meta.json`` (for humans).
        compress: store ``np.savez_compressed`` files (``.npz``) instead of raw ``.npy``;
            worth it for sparse binary frames (ES-ImageNet), slower to read otherwise.
        stale_after: seconds after which a leftover temporary file of another host (or of an
            unknown owner) is considered abandoned and removed.
        fsync: ``fsync`` each file before renaming it. Off by default: a killed process
            never leaves a partial file either way (the rename comes after the write); fsync
            only matters for power loss, and a damaged file is detected on read and rebuilt.

    Usage::

        cache = FrameCache(default_cache_dir(), "nmnist", key)
        frames = cache.get_or_compute(i, lambda: transform(read(i)))
    """

    def __init__(
        self,
        root: str | os.PathLike,
        dataset: str,
        key: str,
        *,
        meta: dict[str, Any] | None = None,
        compress: bool = False,
        stale_after: float = 3600.0,
        fsync: bool = False,
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", dataset) or dataset in (".", ".."):
            raise ValueError(f"dataset name {dataset!r} must be a plain folder name")
        if not re.fullmatch(r"[A-Za-z0-9_-]+", key):
            raise ValueError(f"cache key {key!r} must be a plain folder name (hex digest)")
        self.root = Path(root)
        self.dataset = dataset
        self.key = key
        self.folder = self.root / dataset / key
        self.compress = bool(compress)
        self.suffix = ".npz" if self.compress else ".npy"
        self.stale_after = float(stale_after)
        self.fsync = bool(fsync)
        self._warned: set[str] = set()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(
                f"cannot create the frame cache folder {self.folder} ({exc}); pass another "
                f"cache_dir=..., set ${CACHE_ENV}, or disable caching with cache_dir=False"
            ) from exc
        if meta is not None and not (self.folder / "meta.json").exists():
            body = dict(meta, key=key, dataset=dataset, cache_version=CACHE_VERSION,
                        compress=self.compress)
            text = json.dumps(body, indent=2, sort_keys=True, default=str).encode()
            self._write(self.folder / "meta.json", lambda fh: fh.write(text))
        self.clean_stale_temps()

    # ---------------------------------------------------------------- paths and housekeeping

    def path(self, index: int) -> Path:
        """File of sample ``index`` (it may not exist yet)."""
        i = int(index)
        if i < 0:
            raise IndexError(f"cache index must be >= 0, got {index}")
        return self.folder / f"{i:07d}{self.suffix}"

    def __contains__(self, index: int) -> bool:
        return self.path(index).is_file()

    def cached_indices(self) -> list[int]:
        """Indices of the samples present (complete files only)."""
        out = []
        for p in self.folder.glob(f"*{self.suffix}"):
            if p.stem.isdigit():
                out.append(int(p.stem))
        return sorted(out)

    def temp_files(self) -> list[Path]:
        """Temporary files currently in the folder (in-flight or abandoned writes)."""
        return sorted(p for p in self.folder.glob(".*.tmp") if p.is_file())

    def clean_stale_temps(self) -> int:
        """Remove abandoned temporary files; return how many were removed.

        A temporary file is abandoned when it was written by a process of this host that no
        longer runs, or (other hosts, unrecognised names) when it is older than
        ``stale_after`` seconds. Temporary files of live writers are left alone.
        """
        return clean_stale_temps(self.folder, stale_after=self.stale_after)

    def clear(self) -> None:
        """Delete every cached sample of this key (not the folder itself)."""
        for p in list(self.folder.glob(f"*{self.suffix}")) + self.temp_files():
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    # ---------------------------------------------------------------- read / write

    def _write(self, dest: Path, write: Callable[[Any], Any]) -> None:
        """:func:`spikeloom.atomic.atomic_write` with this cache's ``fsync`` setting: its one
        temp-name scheme (host and pid in the name) lets :meth:`clean_stale_temps` tell
        abandoned files from in-flight writes of live processes."""
        atomic_write(dest, write, fsync=self.fsync, make_dirs=False)

    def _read_entry(self, p: Path) -> tuple[np.ndarray, dict[str, Any] | None]:
        """Frames and record of the entry file ``p`` (raises on a damaged file)."""
        data = p.read_bytes()
        if self.compress:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                arr = z["frames"]
                raw = z["record"].tobytes() if "record" in z.files else None
            return arr, parse_record(raw)
        raw = None
        tail = len(_TRAILER_MAGIC) + 8
        if len(data) >= tail and data[-len(_TRAILER_MAGIC):] == _TRAILER_MAGIC:
            n = int.from_bytes(data[-tail:-len(_TRAILER_MAGIC)], "little")
            if 0 <= n <= len(data) - tail:
                raw = data[len(data) - tail - n : len(data) - tail]
                data = data[: len(data) - tail - n]
        return np.load(io.BytesIO(data), allow_pickle=False), parse_record(raw)

    def _reject(self, p: Path, problem: str, *, remove: bool) -> None:
        """Warn once per file (naming it) that entry ``p`` is not used; delete it if asked."""
        if str(p) not in self._warned:
            self._warned.add(str(p))
            warnings.warn(
                f"frame cache file {p} is not used: {problem}; it is recomputed",
                RuntimeWarning,
                stacklevel=4,
            )
        if remove:
            try:
                p.unlink()
            except FileNotFoundError:
                pass

    def load(
        self,
        index: int,
        *,
        source: SampleSource | None = None,
        shape: tuple[int, ...] | None = None,
    ) -> np.ndarray | None:
        """The cached frames of sample ``index``, or ``None`` when absent or not valid.

        Every read is checked against the entry's record (see :mod:`.integrity`): the key and
        index it belongs to, its shape, dtype and checksum, ``shape`` if given, and with
        ``source`` that it was computed from that sample and that the source files still hold
        the same bytes. A damaged or foreign entry is reported with a warning (once per file,
        naming it), deleted and treated as absent, so the caller recomputes it; an entry whose
        source changed is silently treated as absent (it is replaced on the next save).

        Args:
            index: sample index.
            source: what the sample is computed from (:class:`~.integrity.SampleSource`).
            shape: the frame shape the caller expects, if known.
        """
        p = self.path(index)
        try:
            arr, rec = self._read_entry(p)
        except FileNotFoundError:
            return None
        except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            self._reject(p, f"the file is damaged ({exc})", remove=True)
            return None
        problem = entry_problem(rec, arr, key=self.key, index=index, shape=shape)
        if problem is None and source is not None and rec is not None:
            problem = source_problem(rec.get("source"), source)
            if problem is None and source_changed(rec["source"], source) is not None:
                return None  # the source changed since: recompute, no warning
        if problem is not None:
            self._reject(p, problem, remove=True)
            return None
        return arr

    def save(
        self, index: int, frames: np.ndarray, *, source: dict[str, Any] | None = None
    ) -> Path:
        """Store ``frames`` for sample ``index`` atomically (compact dtype); return the path.

        Args:
            index: sample index.
            frames: the frames.
            source: the source record of the sample (:func:`~.integrity.describe_source`,
                taken before the frames were computed), or ``None``.
        """
        arr = np.ascontiguousarray(compact_array(np.asarray(frames)))
        record = entry_record(self.key, index, arr, source)
        dest = self.path(index)
        if self.compress:
            rec_arr = np.frombuffer(record, dtype=np.uint8)
            self._write(dest, lambda fh: np.savez_compressed(fh, frames=arr, record=rec_arr))
        else:

            def write(fh: Any) -> None:
                np.save(fh, arr, allow_pickle=False)
                fh.write(record)
                fh.write(len(record).to_bytes(8, "little"))
                fh.write(_TRAILER_MAGIC)

            self._write(dest, write)
        return dest

    def get_or_compute(
        self,
        index: int,
        compute: Callable[[], np.ndarray],
        *,
        source: SampleSource | None = None,
        shape: tuple[int, ...] | None = None,
    ) -> np.ndarray:
        """Cached frames of ``index``; on a miss call ``compute()``, store and return its result.

        The returned array is the *stored* (compact) one in both cases, so a hit and a miss
        give identical values and dtypes. ``source`` and ``shape`` are checked as in
        :meth:`load`; on a miss the source files are described (hashed) before ``compute()``.
        """
        hit = self.load(index, source=source, shape=shape)
        if hit is not None:
            return hit
        try:
            record = describe_source(source)
        except OSError:
            # a source file cannot be read: let compute() raise the reader's own error, and
            # store nothing (an entry without its source record could never be checked)
            return compact_array(np.asarray(compute()))
        arr = compact_array(np.asarray(compute()))
        self.save(index, arr, source=record)
        return arr

    def __repr__(self) -> str:
        return f"FrameCache({str(self.folder)!r}, compress={self.compress})"


class CachedDataset(Dataset):
    """Frames of a dataset cached on disk per index: ``cached[i]`` is ``dataset[i]``, stored.

    ``dataset[i]`` must return frames (numpy or torch) and be deterministic for a given ``key``
    (the caller hashes whatever determines the frames into ``key``, e.g. with
    :func:`make_cache_key`). The first access of ``i`` computes and stores the frames; later
    accesses (in any process) read them back, in the compact stored dtype
    (:func:`compact_array`), so a hit and a miss give identical values.

    Args:
        dataset: anything with ``__len__`` and ``__getitem__(i) -> frames``.
        cache_dir: cache folder (see :func:`resolve_cache_dir`; ``False`` = no caching, then
            ``cached[i]`` computes every time).
        name: dataset name (first folder level under ``cache_dir``).
        key: what the frames depend on (second folder level).
        meta: JSON-compatible description written to ``meta.json``.
        compress: store compressed ``.npz`` files.
        sources: ``sources(i)`` is the :class:`~.integrity.SampleSource` of index ``i``
            (its id and source files): entries are then tied to that sample and recomputed
            when its files' bytes change. ``None``: entries are checked against their index,
            shape and checksum only.
        frame_shape: ``frame_shape()`` is the shape every frame array has (or ``None`` when
            unknown); called once, on first access. Entries of another shape are rejected.

    Example::

        cached = CachedDataset(frames_by_index, cache_dir="~/.cache/spikeloom", name="toy",
                               key=make_cache_key("toy", ids, transform_key, "float32"))
        x = cached[3]
    """

    def __init__(
        self,
        dataset: Any,
        *,
        cache_dir: str | os.PathLike | bool | None,
        name: str,
        key: str,
        meta: dict[str, Any] | None = None,
        compress: bool = False,
        sources: Callable[[int], SampleSource] | None = None,
        frame_shape: Callable[[], tuple[int, ...] | None] | None = None,
    ) -> None:
        self.dataset = dataset
        self.root = resolve_cache_dir(cache_dir)
        self.name, self.key, self.meta, self.compress = name, key, meta, bool(compress)
        self.sources, self.frame_shape = sources, frame_shape
        self._shape: tuple[tuple[int, ...] | None] | None = None
        self._cache: FrameCache | None = None

    @property
    def cache(self) -> FrameCache | None:
        """The :class:`FrameCache` (its folder is created on first use), or ``None``."""
        if self.root is None:
            return None
        if self._cache is None:
            self._cache = FrameCache(
                self.root, self.name, self.key, meta=self.meta, compress=self.compress
            )
        return self._cache

    def __len__(self) -> int:
        return len(self.dataset)

    def _compute(self, i: int) -> np.ndarray:
        out = self.dataset[i]
        if isinstance(out, torch.Tensor):
            out = out.detach().cpu().numpy()
        return np.asarray(out)

    def _get(self, cache: FrameCache, i: int) -> np.ndarray:
        if self._shape is None:
            self._shape = (None if self.frame_shape is None else self.frame_shape(),)
        source = None if self.sources is None else self.sources(i)
        return cache.get_or_compute(
            i, lambda: self._compute(i), source=source, shape=self._shape[0]
        )

    def __getitem__(self, i: int) -> np.ndarray:
        cache = self.cache
        if cache is None:
            return self._compute(i)
        return self._get(cache, int(i))

    def prepare(
        self, indices: Sequence[int] | None = None, *, progress: bool = False, desc: str = ""
    ) -> int:
        """Compute and store the frames of ``indices`` (default: all) not cached yet.

        Returns the number computed (0 without a cache); an interrupted call can be repeated.
        Entries already present are not read here: they are verified when they are read
        (and recomputed then if damaged or stale).
        """
        cache = self.cache
        if cache is None:
            return 0
        from tqdm.auto import tqdm

        done = set(cache.cached_indices())
        wanted = range(len(self)) if indices is None else indices
        todo = [int(i) for i in wanted if int(i) not in done]
        for i in tqdm(todo, desc=desc or f"caching {self.name}", disable=not progress):
            self._get(cache, i)
        return len(todo)

    def __repr__(self) -> str:
        return f"CachedDataset({self.dataset!r}, cache={self.cache!r})"
