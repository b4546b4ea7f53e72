"""The shared base of the event datasets: splits, default frames, caching, augmentation.

Every event dataset is built as ``Cls(root, split, *, transform=None, T=None, cache_dir=None,
val_fraction=0.1, seed=0, augment_shift=0, ...)`` and yields ``(frames, label)``: ``frames`` a
float32 tensor ``[T, C, H, W]`` (time first, channel = polarity value, 0 = OFF and 1 = ON),
``label`` an int. It also offers ``events(i)`` (the raw
:class:`~spikeloom.events.core.EventArray` of sample ``i``), ``labels`` (``[N]`` int64),
``num_classes``, ``classes`` (names where known), ``sensor_size`` (``(W, H, P)`` of the raw
events) and ``spec`` (a :class:`~spikeloom.datasets.spec.DataSpec` computed from the options,
without reading a sample).

Splits
------
* ``"train"`` / ``"val"``: a fixed, seeded, stratified split of the official *training* files
  (:func:`~spikeloom.datasets.splits.stratified_split`): for each class the members (in the
  sorted file order) are permuted with ``numpy.random.default_rng(seed)`` and the first ones go
  to validation; the per-class validation counts are ``val_fraction * n_c`` rounded by the
  largest-remainder rule, so that the total is exactly ``round(val_fraction * N)``.
* ``"test"``: the official test set. Datasets without one use a documented fixed rule that
  never depends on ``seed`` (see :meth:`EventDataset._test_positions`).

Construction order
------------------
The base constructor only checks and stores its arguments: it calls no subclass hook. The
hooks (:meth:`~EventDataset.default_transform`, :meth:`~EventDataset._list_part`, ...) run in
:meth:`~EventDataset._setup`, which the metaclass calls once the whole ``__init__`` chain has
returned, so a subclass may set its attributes before or after ``super().__init__``.

Frames and the cache
--------------------
``transform`` maps an EventArray to frames ``[T, C, H, W]`` (numpy or torch); the default is
:func:`default_frames` with the dataset's options. Deterministic transforms (anything with
``cache_key()`` or ``params()``) are cached on disk by
:class:`~spikeloom.datasets.cache.FrameCache` under ``cache_dir/<name>/<key>/`` (default folder
``$SPIKELOOM_CACHE`` or ``~/.cache/spikeloom``; ``cache_dir=False`` disables it); ``train``
and ``val`` share one cache. Random transforms (``is_random``) and plain functions are never
cached (a warning says so when a cache was asked for). Each entry is tied to its sample's
source files (:meth:`~EventDataset._source_files`) by their content and checked on every read
(see :mod:`~spikeloom.datasets.cache`): a changed source file gives recomputed frames, a damaged
or foreign entry is warned about and recomputed.

``augment_shift=s`` (train split only) translates the frames of every training sample by a
random integer offset in ``[-s, s]`` pixels along x and y (zero fill), drawn from torch's global
RNG, which :func:`spikeloom.train.train` seeds and checkpoints.

spikeloom never downloads data: missing files raise
:class:`~spikeloom.errors.MissingDataError` (a ``FileNotFoundError``) naming the expected
layout and where the dataset is published.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import ConfigError, MissingDataError
from ..events.core import EventArray, SensorSize
from ..events.transforms import Compose, Downsample, RngLike, ToFrame
from .cache import (
    CACHE_VERSION,
    CachedDataset,
    FrameCache,
    make_cache_key,
    resolve_cache_dir,
    transform_cache_key,
)
from .integrity import SampleSource
from .spec import DataSpec
from .splits import stratified_split

__all__ = [
    "SPLITS",
    "EventDataset",
    "Part",
    "default_frames",
    "fmt_size",
    "missing_error",
    "natural_key",
    "positive_int",
    "shift_frames",
]

SPLITS = ("train", "val", "test")
PathLike = str | os.PathLike


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def default_frames(
    T: int, *, downsample: int = 1, dt_us: int | None = None, start_time: int | None = None
) -> Callable[..., Any]:
    """The default event -> frames transform of the event datasets (output ``[T, P, H, W]``).

    Args:
        T: number of frames.
        downsample: spatial factor ``f``; ``> 1`` divides the coordinates by ``f`` first
            (:class:`~spikeloom.events.transforms.Downsample`), giving ``ceil(H/f) x ceil(W/f)``.
        dt_us: ``None``: ``T`` equal time bins over each recording (first to last event, every
            event counted once); otherwise ``T`` windows of ``dt_us`` microseconds.
        start_time: start of the first window (µs) when ``dt_us`` is given; ``None`` = the
            sample's first event.
    """
    if dt_us is None:
        to_frame = ToFrame(n_time_bins=T)
    else:
        to_frame = ToFrame(time_window=dt_us, n_frames=T, start_time=start_time)
    if downsample == 1:
        return to_frame
    return Compose((Downsample(downsample), to_frame))


def positive_int(name: str, value: Any, *, optional: bool = False) -> int | None:
    """``int(value)`` after checking that it is an integer >= 1 (``None`` passes if ``optional``).

    Raises:
        ValueError: naming the option, e.g. ``"downsample must be an int >= 1, got 0"``.
    """
    if value is None and optional:
        return None
    try:
        v = None if isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        v = None
    if v is None or v < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return v


def shift_frames(x: Tensor, dx: int, dy: int) -> Tensor:
    """Translate frames ``[..., H, W]`` by ``dx`` columns and ``dy`` rows, filling with zeros.

    ``out[..., r, c] = x[..., r - dy, c - dx]`` where that index is inside, else 0.
    """
    h, w = x.shape[-2], x.shape[-1]
    s = max(abs(int(dx)), abs(int(dy)))
    if s == 0:
        return x
    padded = F.pad(x, (s, s, s, s))
    r0, c0 = s - int(dy), s - int(dx)
    return padded[..., r0 : r0 + h, c0 : c0 + w]


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders ``a_2`` before ``a_10``."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def fmt_size(path: Path) -> str:
    """The size of ``path`` in bytes as text (``"?"`` when it cannot be read)."""
    try:
        return str(path.stat().st_size)
    except OSError:
        return "?"


def missing_error(
    title: str, root: Path, layout: Sequence[str], problem: str, source: str
) -> MissingDataError:
    """The error for missing dataset files: the problem, the expected layout, the source."""
    lines = [
        f"{title} files not found: {problem}.",
        f"Expected under ROOT = {root}:",
        *(f"  {ln}" for ln in layout),
        f"Get the dataset from {source}, unpack it into that layout and pass root=ROOT "
        f"(or --root ROOT). spikeloom never downloads data.",
    ]
    return MissingDataError("\n".join(lines))


@dataclass
class Part:
    """The samples of one official part (training files, test files or all files).

    Attributes:
        samples: what :meth:`EventDataset._read` takes, one per sample.
        labels: ``[N]`` int64 labels.
        ids: one string per sample naming its source (path and size), for the cache key.
    """

    samples: list[Any]
    labels: np.ndarray
    ids: list[str]


class _PartFrames:
    """The frames of a dataset's official part by position (what :class:`CachedDataset` wraps)."""

    def __init__(self, dataset: EventDataset, n: int) -> None:
        self.dataset, self.n = dataset, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, pos: int) -> np.ndarray:
        return self.dataset.compute_frames(pos)


class _SetupAfterInit(type):
    """Metaclass: call ``obj._setup()`` once the whole ``__init__`` chain has returned."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        obj = super().__call__(*args, **kwargs)
        obj._setup()
        return obj


# ------------------------------------------------------------------------------------------
# base class
# ------------------------------------------------------------------------------------------


class EventDataset(Dataset, metaclass=_SetupAfterInit):
    """Base of the event datasets (see the module docstring).

    Subclasses set the class attributes and implement :meth:`_list_part` (the samples of an
    official part) and :meth:`_read` (one sample's events); the default frames come from
    :func:`default_frames` with the class's ``downsample``, ``dt_us`` and ``frames_start``
    (override :meth:`default_transform` and :meth:`default_frame_shape` for other frames).

    Args:
        root: dataset folder (layout in each subclass's docstring).
        split: ``"train"``, ``"val"`` or ``"test"``.
        transform: events -> frames ``[T, C, H, W]``; ``None`` uses :meth:`default_transform`.
        T: number of frames of the default transform (``None``: the dataset default). Giving
            both ``T`` and ``transform`` is an error (``T`` would be ignored).
        cache_dir: frame cache folder; ``None`` = default folder, ``False`` = no cache.
        val_fraction: share of the training files used for validation, in ``[0, 1)``.
        seed: seed of the train/val split.
        augment_shift: random translation (pixels) of training frames; 0 = off; ignored for
            ``val`` and ``test``.
    """

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    source: ClassVar[str] = ""
    layout: ClassVar[tuple[str, ...]] = ()
    default_T: ClassVar[int] = 10
    official_test: ClassVar[bool] = True
    cache_version: ClassVar[int] = 1
    cache_compress: ClassVar[bool] = False
    frames_start: ClassVar[int | None] = None
    downsample: int = 1
    dt_us: int | None = None
    sensor_size: SensorSize
    classes: tuple[str, ...]

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        *,
        transform: Callable[..., Any] | None = None,
        T: int | None = None,
        cache_dir: PathLike | bool | None = None,
        val_fraction: float = 0.1,
        seed: int = 0,
        augment_shift: int = 0,
    ) -> None:
        if root is None:
            raise ValueError(f"{self.title} needs root= (the dataset folder)")
        self.root = Path(root).expanduser()
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.split = split
        vf = float(val_fraction)
        if not 0.0 <= vf < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
        if split == "val" and vf == 0.0:
            raise ValueError("split='val' with val_fraction=0 is empty; use val_fraction > 0")
        self.val_fraction = vf
        self.seed = int(seed)
        if isinstance(augment_shift, bool) or int(augment_shift) < 0:
            raise ValueError(f"augment_shift must be an int >= 0, got {augment_shift!r}")
        self.augment_shift = int(augment_shift)
        if transform is not None and T is not None:
            raise ValueError(
                "give either T (frames of the default transform) or transform, not both: "
                "T would be ignored by a custom transform"
            )
        T = positive_int("T", T, optional=True)
        self.T = T if T is not None else (self.default_T if transform is None else None)
        self._default_frames = transform is None
        self.transform = transform
        self._cache_dir = cache_dir

    def _setup(self) -> None:
        """List the samples, split them and set up the cache (after every ``__init__``)."""
        if self.transform is None:
            self.transform = self.default_transform()
        if not self.root.is_dir():
            raise self._missing(f"{self.root} is not a folder")
        self._part_name = self._part_for(self.split)
        part = self._list_part(self._part_name)
        if len(part.samples) == 0:
            raise self._missing(f"no samples of the '{self._part_name}' part were found")
        self._samples = part.samples
        self._part_labels = np.asarray(part.labels, dtype=np.int64)
        self.indices = self._split_indices(self.split, self._part_labels)
        self.labels = self._part_labels[self.indices]
        self._ids = list(part.ids)
        self._store = self._frame_store(part.ids)

    def _frame_store(self, ids: list[str]) -> CachedDataset | None:
        """The on-disk cache of the part's frames, or ``None`` (caching off or impossible)."""
        root = resolve_cache_dir(self._cache_dir)
        if root is None:
            return None
        reason = None
        if getattr(self.transform, "is_random", False):
            reason = "the transform is random (is_random=True)"
        tkey = transform_cache_key(self.transform)
        if tkey is None:
            reason = (
                f"the transform {self.transform!r} has no cache_key() or params(); use a "
                f"spikeloom.events.transforms EventTransform"
            )
        if reason is not None:
            if self._cache_dir not in (None, False):
                warnings.warn(
                    f"{self.title}: frames are not cached because {reason}", UserWarning,
                    stacklevel=5,
                )
            return None
        full = f"{tkey}|reader:{self._reader_key()}|part:{self._part_name}"
        key = make_cache_key(
            self.name, ids, full, np.float32, version=1000 * self.cache_version + CACHE_VERSION
        )
        meta = {
            "title": self.title, "root": str(self.root), "part": self._part_name,
            "n_samples": len(ids), "transform": tkey, "reader": self._reader_key(),
            "dtype": "float32",
        }
        return CachedDataset(
            _PartFrames(self, len(ids)), cache_dir=root, name=self.name, key=key, meta=meta,
            compress=self.cache_compress, sources=self._sample_source,
            frame_shape=self._cached_frame_shape,
        )

    def _sample_source(self, pos: int) -> SampleSource:
        """Id and source files of sample ``pos`` of the part (what its cache entry is tied to)."""
        return SampleSource(self._ids[pos], self._source_files(self._samples[pos]))

    def _cached_frame_shape(self) -> tuple[int, ...] | None:
        """Shape of every cached frame array: the default frames' shape, else unknown."""
        return tuple(self.default_frame_shape()) if self._default_frames else None

    # ---------------------------------------------------------------- subclass interface

    def default_transform(self) -> Callable[..., Any]:
        """The frames of this dataset when no ``transform`` is given (:func:`default_frames`)."""
        return default_frames(
            self.T, downsample=self.downsample, dt_us=self.dt_us, start_time=self.frames_start
        )

    def default_frame_shape(self) -> tuple[int, int, int, int]:
        """Shape ``(T, C, H, W)`` of the default frames, from the sensor size and options.

        ``C`` = polarities, ``H``/``W`` = the sensor size divided by ``downsample`` (rounded
        up, as :class:`~spikeloom.events.transforms.Downsample` maps ``0..n-1`` to
        ``0..ceil(n/f)-1``).
        """
        w, h, p = self.sensor_size
        f = int(self.downsample)
        return (int(self.T), int(p), -(-int(h) // f), -(-int(w) // f))

    def _list_part(self, part: str) -> Part:  # pragma: no cover - abstract
        raise NotImplementedError

    def _read(self, sample: Any) -> EventArray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _source_files(self, sample: Any) -> tuple[Path, ...]:
        """The files whose bytes determine the frames of ``sample`` (for the cache).

        Default: the sample itself when it is a path, or the path items of a tuple sample
        (e.g. ``(recording, labels_csv, k)``). Override when a sample names its file otherwise.
        """
        items = sample if isinstance(sample, tuple) else (sample,)
        return tuple(Path(x) for x in items if isinstance(x, (str, os.PathLike)))

    def _missing(self, problem: str) -> MissingDataError:
        """The error for missing files of this dataset (:func:`missing_error`)."""
        return missing_error(self.title, self.root, self.layout, problem, self.source)

    def _reader_key(self) -> str:
        """Options of the reader that change the events (part of the cache key)."""
        return ""

    def _part_for(self, split: str) -> str:
        if not self.official_test:
            return "all"
        return "test" if split == "test" else "train"

    def _test_positions(self, labels: np.ndarray) -> np.ndarray:  # pragma: no cover
        """Test positions within the ``"all"`` part (datasets without an official test)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- splits

    def _split_indices(self, split: str, labels: np.ndarray) -> np.ndarray:
        if self.official_test:
            if split == "test":
                return np.arange(labels.shape[0], dtype=np.int64)
            pool = np.arange(labels.shape[0], dtype=np.int64)
        else:
            test = np.sort(np.asarray(self._test_positions(labels), dtype=np.int64))
            if split == "test":
                return test
            mask = np.ones(labels.shape[0], dtype=bool)
            mask[test] = False
            pool = np.flatnonzero(mask).astype(np.int64)
        tr, va = stratified_split(labels[pool], self.val_fraction, self.seed)
        return pool[tr] if split == "train" else pool[va]

    # ---------------------------------------------------------------- access

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def spec(self) -> DataSpec:
        """The :class:`DataSpec` of the samples, computed without reading a sample.

        Raises:
            ConfigError: with a custom ``transform`` (its output shape is not known).
        """
        if not self._default_frames:
            raise ConfigError(
                f"{self.title}: the spec is only known for the default frames; a custom "
                f"transform's output shape is not (build the model with explicit sizes)"
            )
        T, C, H, W = self.default_frame_shape()
        return DataSpec("frames", self.num_classes, T=T, channels=C, size=(H, W))

    @property
    def cache(self) -> FrameCache | None:
        """The :class:`~spikeloom.datasets.cache.FrameCache` of this dataset, or ``None``."""
        return None if self._store is None else self._store.cache

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def _check_index(self, i: int) -> int:
        n = len(self)
        j = int(i)
        if j < 0:
            j += n
        if not 0 <= j < n:
            raise IndexError(f"index {i} out of range for {n} samples ({self.split} split)")
        return j

    def events(self, i: int) -> EventArray:
        """Raw events of sample ``i`` of this split (an EventArray with ``sensor_size``)."""
        return self._read(self._samples[int(self.indices[self._check_index(i)])])

    def compute_frames(self, pos: int, rng: RngLike = None) -> np.ndarray:
        """Frames ``[T, C, H, W]`` of sample ``pos`` of the official part (not cached)."""
        ev = self._read(self._samples[pos])
        if getattr(self.transform, "is_random", False):
            out = self.transform(ev, rng=rng)
        else:
            out = self.transform(ev)
        if isinstance(out, Tensor):
            out = out.detach().cpu().numpy()
        out = np.asarray(out)
        if out.ndim != 4:
            raise ValueError(
                f"{self.title}: the transform returned shape {out.shape}; datasets must yield "
                f"frames [T, C, H, W] (e.g. spikeloom.events.transforms.ToFrame)"
            )
        return out

    def frames(self, i: int) -> np.ndarray:
        """Frames of sample ``i`` as stored (compact dtype; cached), before augmentation."""
        pos = int(self.indices[self._check_index(i)])
        if self._store is None:
            rng = None
            if getattr(self.transform, "is_random", False):
                rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
            return self.compute_frames(pos, rng)
        return self._store[pos]

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        j = self._check_index(i)
        x = torch.from_numpy(np.asarray(self.frames(j), dtype=np.float32))
        if self.augment_shift and self.split == "train":
            s = self.augment_shift
            dx, dy = (int(v) for v in torch.randint(-s, s + 1, (2,)))
            x = shift_frames(x, dx, dy)
        return x, int(self.labels[j])

    def prepare(self, progress: bool = False) -> int:
        """Compute and cache the frames of every sample of this split not cached yet.

        Returns the number of samples computed (0 when everything was cached or caching is
        off). An interrupted call can simply be repeated: it continues where it stopped.
        """
        if self._store is None:
            return 0
        return self._store.prepare(
            self.indices.tolist(), progress=progress, desc=f"caching {self.name} {self.split}"
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, n={len(self)}, "
            f"T={self.T}, transform={self.transform!r}, cache={self.cache!r})"
        )
