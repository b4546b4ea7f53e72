"""Public neuromorphic datasets as torch Datasets of event frames, with an on-disk frame cache.

* :class:`NMNIST` (``"nmnist"``): 34×34×2 ATIS, 10 classes, official ``Test/``; default
  frames: ``T = 12`` equal time bins over each recording.
* :class:`DVSGesture` (``"dvsgesture"``): 128×128×2 DVS, 11 classes, official
  ``trials_to_test.txt``; default: 128→32, ``T = 60`` windows of 1 ms from the first event.
* :class:`CIFAR10DVS` (``"cifar10dvs"``): 128×128×2, 10 classes, no official split (last 100
  recordings per class = test); default: ``T = 10`` time bins over each recording.
* :class:`NCaltech101` (``"ncaltech101"``): 240×180×2, one class per category folder, no
  official split (seeded 20 % per class = test); default: ``T = 10`` time bins.
* :class:`SHD` (``"shd"``): 700 channels (sensor 700×1×1), 20 classes, official
  ``shd_test.h5``; default: ``T = 100`` windows of 10 ms from ``t = 0``.
* :class:`ESImageNet` (``"esimagenet"``): 256×256×2 ODG events, 1000 classes, official ``val/``
  (our ``test``); frames: the 8 ODG steps, 224×224 crop, binary.

Every dataset is built as ``Cls(root, split, *, transform=None, T=None, cache_dir=None,
val_fraction=0.1, seed=0, ...)`` and yields ``(frames, label)``: ``frames`` a float32 tensor
``[T, C, H, W]`` (time first, channel = polarity value, 0 = OFF and 1 = ON), ``label`` an int.
It also offers ``events(i)`` (the raw :class:`~spikeloom.events.core.EventArray` of sample
``i``), ``labels`` (``[N]`` int64), ``num_classes``, ``classes`` (names where known) and
``sensor_size`` (``(W, H, P)`` of the raw events).

Splits
------
* ``"train"`` / ``"val"``: a fixed, seeded, stratified split of the official *training* files
  (:func:`stratified_split`): for each class the members (in the sorted file order) are
  permuted with ``numpy.random.default_rng(seed)`` and the first ones go to validation; the
  per-class validation counts are ``val_fraction·n_c`` rounded by the largest-remainder rule, so
  that the total is exactly ``round(val_fraction·N)``. ``train`` and ``val`` are disjoint and
  together hold every training file; they depend only on ``(file list, val_fraction, seed)``.
* ``"test"``: the official test set. Datasets without one use a documented fixed rule that never
  depends on ``seed`` (CIFAR10-DVS: the last 100 recordings of each class by file number, the
  PLIF/TA-SNN convention of spec §11.3; N-Caltech101: a stratified split with ``test_seed``).

Frames and the cache
--------------------
``transform`` maps an EventArray to frames ``[T, C, H, W]`` (numpy or torch). The default of
each dataset is listed above and in its docstring; ``T`` only changes the default transform and
cannot be combined with a custom one. Deterministic transforms (those of
:mod:`spikeloom.events.transforms`, anything with ``cache_key()`` or ``params()``) are cached on
disk by :class:`~spikeloom.datasets.cache.FrameCache` under ``cache_dir/<name>/<key>/`` (default
folder ``$SPIKELOOM_CACHE`` or ``~/.cache/spikeloom``; ``cache_dir=False`` disables it), one
compact integer file per sample; ``train`` and ``val`` share one cache. Random transforms
(``is_random``) and plain functions are never cached (a warning says so when a cache was
asked for). :meth:`EventDataset.prepare` fills the cache ahead of training.

``augment_shift=s`` (train split only) translates the frames of every training sample by a
random integer offset in ``[-s, s]`` pixels along x and y (zero fill), drawn from torch's global
RNG, which :func:`spikeloom.train.train` seeds and checkpoints.

spikeloom never downloads data: a missing file raises ``FileNotFoundError`` naming the expected
layout and where the dataset is published.

Tested data: N-MNIST on 1,100 real recordings (``shared/data/nmnist``). DVS128 Gesture,
CIFAR10-DVS, N-Caltech101, SHD and ES-ImageNet were tested on synthetic files built from the
byte layouts of spec §5/§11 (no real sample is available to the project).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import ConfigError
from ..events.core import EventArray, SensorSize
from ..events.io import (
    ES_IMAGENET_SENSOR,
    NCALTECH101_SENSOR,
    NMNIST_SENSOR,
    read_cifar10dvs,
    read_dvs_gesture,
    read_es_imagenet_npz,
    read_gesture_labels,
    read_ncaltech101_bin,
    read_nmnist_bin,
    read_shd,
)
from ..events.transforms import Compose, Downsample, EventTransform, RngLike, ToFrame
from .cache import FrameCache, make_cache_key, resolve_cache_dir, transform_cache_key
from .spec import DataSpec

__all__ = [
    "CIFAR10DVS",
    "DVSGesture",
    "ESImageNet",
    "ESImageNetToFrame",
    "EventDataset",
    "NCaltech101",
    "NMNIST",
    "SHD",
    "SPLITS",
    "shift_frames",
    "stratified_split",
]

SPLITS = ("train", "val", "test")
PathLike = str | os.PathLike


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def stratified_split(
    labels: Sequence[int] | np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split of positions ``0..N-1`` into (train, val).

    For each class ``c`` (ascending), its positions are permuted with one
    ``numpy.random.default_rng(seed)`` generator (classes drawn in ascending order) and the
    first ``k_c`` go to validation. ``k_c`` = ``floor(val_fraction·n_c)`` plus one for the
    classes with the largest fractional parts (ties: smaller class first) until the total is
    ``floor(val_fraction·N + 0.5)`` (largest-remainder rounding), never more than ``n_c``.

    Args:
        labels: ``[N]`` integer labels.
        val_fraction: in ``[0, 1)``.
        seed: the generator seed.

    Returns:
        ``(train, val)``: sorted int64 position arrays, disjoint, together ``0..N-1``.
    """
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D [N], got shape {y.shape}")
    f = float(val_fraction)
    if not 0.0 <= f < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    n = y.shape[0]
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(y, kind="stable")
    classes, starts, counts = np.unique(y[order], return_index=True, return_counts=True)
    quota = f * counts
    k = np.floor(quota).astype(np.int64)
    target = int(np.floor(f * n + 0.5))
    extra = target - int(k.sum())
    if extra > 0:
        frac = quota - k
        room = k < counts
        rank = np.lexsort((np.arange(classes.size), -frac))  # largest fraction, then class
        rank = rank[room[rank]][:extra]
        k[rank] += 1
    rng = np.random.default_rng(int(seed))
    val_parts = []
    for s, c, kk in zip(starts.tolist(), counts.tolist(), k.tolist()):
        members = order[s : s + c]
        perm = rng.permutation(c)
        val_parts.append(members[perm[:kk]])
    val = np.sort(np.concatenate(val_parts)).astype(np.int64)
    mask = np.ones(n, dtype=bool)
    mask[val] = False
    return np.flatnonzero(mask).astype(np.int64), val


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


def _natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders ``a_2`` before ``a_10``."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name))


def _fmt_size(path: Path) -> str:
    try:
        return str(path.stat().st_size)
    except OSError:
        return "?"


def _missing_error(
    title: str, root: Path, layout: Sequence[str], problem: str, source: str
) -> FileNotFoundError:
    lines = [
        f"{title} files not found: {problem}.",
        f"Expected under ROOT = {root}:",
        *(f"  {ln}" for ln in layout),
        f"Get the dataset from {source}, unpack it into that layout and pass root=ROOT "
        f"(or --root ROOT). spikeloom never downloads data.",
    ]
    return FileNotFoundError("\n".join(lines))


@dataclass
class _Part:
    """The samples of one official part (training files, test files or all files)."""

    samples: list[Any]
    labels: np.ndarray
    ids: list[str]


# ------------------------------------------------------------------------------------------
# base class
# ------------------------------------------------------------------------------------------


class EventDataset(Dataset):
    """Base of the event datasets: splits, default frames, caching, augmentation.

    Subclasses set the class attributes and implement :meth:`_list_part` (the samples of an
    official part) and :meth:`_read` (one sample's events), plus :meth:`default_transform`.

    Args:
        root: dataset folder (layout in each subclass's docstring).
        split: ``"train"``, ``"val"`` or ``"test"`` (see the module docstring).
        transform: events → frames ``[T, C, H, W]``; ``None`` uses :meth:`default_transform`.
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
        if T is not None and (isinstance(T, bool) or int(T) < 1):
            raise ValueError(f"T must be a positive int, got {T!r}")
        self.T = int(T) if T is not None else (self.default_T if transform is None else None)
        self._default_frames = transform is None
        self.transform = transform if transform is not None else self.default_transform()

        if not self.root.is_dir():
            raise _missing_error(
                self.title, self.root, self.layout, f"{self.root} is not a folder", self.source
            )
        self._part_name = self._part_for(split)
        part = self._list_part(self._part_name)
        if len(part.samples) == 0:
            raise _missing_error(
                self.title, self.root, self.layout,
                f"no samples of the '{self._part_name}' part were found", self.source,
            )
        self._samples = part.samples
        self._part_labels = np.asarray(part.labels, dtype=np.int64)
        self.indices = self._split_indices(split, self._part_labels)
        self.labels = self._part_labels[self.indices]
        self._cache_root = resolve_cache_dir(cache_dir)
        self._cache_key: str | None = None
        self._cache: FrameCache | None = None
        self._setup_cache(part.ids, explicit=cache_dir not in (None, False))

    # ---------------------------------------------------------------- subclass interface

    def default_transform(self) -> Callable[..., Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _list_part(self, part: str) -> _Part:  # pragma: no cover - abstract
        raise NotImplementedError

    def _read(self, sample: Any) -> EventArray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _reader_key(self) -> str:
        """Options of the reader that change the events (part of the cache key)."""
        return ""

    def _part_for(self, split: str) -> str:
        if not self.official_test:
            return "all"
        return "test" if split == "test" else "train"

    def _test_positions(self, labels: np.ndarray) -> np.ndarray:  # pragma: no cover
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

    # ---------------------------------------------------------------- cache

    def _setup_cache(self, ids: list[str], explicit: bool) -> None:
        if self._cache_root is None:
            return
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
            if explicit:
                warnings.warn(
                    f"{self.title}: frames are not cached because {reason}", UserWarning,
                    stacklevel=3,
                )
            self._cache_root = None
            return
        full = f"{tkey}|reader:{self._reader_key()}|part:{self._part_name}"
        self._cache_key = make_cache_key(
            self.name, ids, full, np.float32, version=1000 * self.cache_version + 1
        )
        self._cache_meta = {
            "title": self.title,
            "root": str(self.root),
            "part": self._part_name,
            "n_samples": len(ids),
            "transform": tkey,
            "reader": self._reader_key(),
            "dtype": "float32",
        }

    @property
    def cache(self) -> FrameCache | None:
        """The :class:`FrameCache` of this dataset (created on first use), or ``None``."""
        if self._cache_root is None or self._cache_key is None:
            return None
        if self._cache is None:
            self._cache = FrameCache(
                self._cache_root, self.name, self._cache_key, meta=self._cache_meta,
                compress=self.cache_compress,
            )
        return self._cache

    # ---------------------------------------------------------------- access

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def default_frame_shape(self) -> tuple[int, int, int, int]:
        """Shape ``(T, C, H, W)`` of the default frames, from the sensor size and options.

        ``C`` = polarities, ``H``/``W`` = the sensor size divided by ``downsample`` (rounded
        up, as :class:`~spikeloom.events.transforms.Downsample` maps ``0..n-1`` to
        ``0..ceil(n/f)-1``).
        """
        w, h, p = self.sensor_size
        f = int(getattr(self, "downsample", 1))
        return (int(self.T), int(p), -(-int(h) // f), -(-int(w) // f))

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

    def _compute(self, pos: int, rng: RngLike = None) -> np.ndarray:
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
        cache = self.cache
        if cache is None:
            rng = None
            if getattr(self.transform, "is_random", False):
                rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
            return self._compute(pos, rng)
        return cache.get_or_compute(pos, lambda: self._compute(pos))

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
        cache = self.cache
        if cache is None:
            return 0
        from tqdm.auto import tqdm

        done = set(cache.cached_indices())
        todo = [i for i in range(len(self)) if int(self.indices[i]) not in done]
        for i in tqdm(todo, desc=f"caching {self.name} {self.split}", disable=not progress):
            pos = int(self.indices[i])
            cache.get_or_compute(pos, lambda pos=pos: self._compute(pos))
        return len(todo)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, n={len(self)}, "
            f"T={self.T}, transform={self.transform!r}, cache={self.cache!r})"
        )


# ------------------------------------------------------------------------------------------
# N-MNIST and N-Caltech101 (ATIS .bin)
# ------------------------------------------------------------------------------------------


class NMNIST(EventDataset):
    """N-MNIST (Orchard et al. 2015): 34×34 ATIS recordings of MNIST digits, 3 saccades each.

    Layout (spec §11.2)::

        ROOT/Train/<digit 0-9>/<id>.bin    60,000 training recordings
        ROOT/Test/<digit 0-9>/<id>.bin     10,000 test recordings

    The label is the digit folder name. Files are ordered by relative path.

    Default frames: ``T`` (default 12, the value chosen on validation data for
    ``configs/nmnist.yaml``) equal time bins spanning each recording from its first to
    its last event (:class:`~spikeloom.events.transforms.ToFrame` with ``n_time_bins=T``, the
    "exact" rule), per-pixel event counts, ``[T, 2, 34, 34]``; every event is counted once, so
    the frames sum to the number of events.

    With ``downsample = f > 1`` the coordinates are first divided by ``f`` (integer division,
    :class:`~spikeloom.events.transforms.Downsample`): frames ``[T, 2, ceil(34/f), ceil(34/f)]``
    (17×17 for ``f = 2``), still one count per event.

    Args:
        root, split, transform, T, cache_dir, val_fraction, seed, augment_shift:
            see :class:`EventDataset`.
        downsample: spatial factor of the default transform (default 1).
    """

    name = "nmnist"
    title = "N-MNIST"
    source = (
        "https://www.garrickorchard.com/datasets/n-mnist (Orchard et al., Front. Neurosci. "
        "9:437, 2015, doi:10.3389/fnins.2015.00437; Train.zip and Test.zip)"
    )
    layout = (
        "ROOT/Train/<digit 0-9>/*.bin   (training recordings, one folder per digit)",
        "ROOT/Test/<digit 0-9>/*.bin    (test recordings)",
    )
    default_T = 12
    sensor_size = NMNIST_SENSOR
    classes = tuple(str(d) for d in range(10))

    def __init__(
        self, root: PathLike, split: str = "train", *, downsample: int = 1, **kwargs: Any
    ) -> None:
        if isinstance(downsample, bool) or int(downsample) < 1:
            raise ValueError(f"downsample must be an int >= 1, got {downsample!r}")
        self.downsample = int(downsample)
        super().__init__(root, split, **kwargs)

    def default_transform(self) -> Callable[..., Any]:
        if self.downsample == 1:
            return ToFrame(n_time_bins=self.T)
        return Compose((Downsample(self.downsample), ToFrame(n_time_bins=self.T)))

    def _list_part(self, part: str) -> _Part:
        sub = "Train" if part == "train" else "Test"
        folder = self.root / sub
        if not folder.is_dir():
            raise _missing_error(
                self.title, self.root, self.layout, f"folder ROOT/{sub} does not exist",
                self.source,
            )
        samples: list[Path] = []
        labels: list[int] = []
        ids: list[str] = []
        for d in sorted(p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()):
            label = int(d.name)
            if label >= len(self.classes):
                raise ValueError(f"{d}: digit folder name {d.name!r} is not 0..9")
            with os.scandir(d) as it:
                entries = sorted((e for e in it if e.name.endswith(".bin")), key=lambda e: e.name)
            for e in entries:
                samples.append(Path(e.path))
                labels.append(label)
                ids.append(f"{sub}/{d.name}/{e.name}:{e.stat().st_size}")
        if not samples:
            raise _missing_error(
                self.title, self.root, self.layout,
                f"ROOT/{sub} holds no <digit>/*.bin files", self.source,
            )
        return _Part(samples, np.asarray(labels, dtype=np.int64), ids)

    def _read(self, sample: Path) -> EventArray:
        return read_nmnist_bin(sample)


class NCaltech101(EventDataset):
    """N-Caltech101 (Orchard et al. 2015): ATIS recordings of Caltech101 images.

    Layout (the unpacked ``Caltech101.zip``)::

        ROOT/<category>/image_<k>.bin     (or ROOT/Caltech101/<category>/...)

    Classes are the category folder names in sorted order (``BACKGROUND_Google`` included
    unless listed in ``exclude``). The recordings use the N-MNIST 40-bit format; the sensor
    size is taken as ``(240, 180, 2)`` (individual recordings are smaller).

    There is no official test split: ``"test"`` is a fixed stratified split of
    ``test_fraction`` (default 0.2) of every class drawn with ``test_seed`` (default 0, kept
    independent of ``seed`` so that the test set never changes with the validation seed);
    ``"train"``/``"val"`` split the remaining files.

    Default frames: ``T`` (default 10) equal time bins over each recording, counts,
    ``[T, 2, 180/f, 240/f]`` after integer-division downsampling by ``downsample = f``
    (default 1).

    Not tested on real N-Caltech101 files (none available); synthetic ``.bin`` files only.
    """

    name = "ncaltech101"
    title = "N-Caltech101"
    source = (
        "https://www.garrickorchard.com/datasets/n-caltech101 (Orchard et al., Front. "
        "Neurosci. 9:437, 2015, doi:10.3389/fnins.2015.00437; Caltech101.zip)"
    )
    layout = ("ROOT/<category>/image_*.bin   (one folder per category; or ROOT/Caltech101/...)",)
    default_T = 10
    official_test = False
    sensor_size = NCALTECH101_SENSOR
    classes: tuple[str, ...] = ()  # the category folders found (set when listing)

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        *,
        downsample: int = 1,
        test_fraction: float = 0.2,
        test_seed: int = 0,
        exclude: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        self.downsample = int(downsample)
        if self.downsample < 1:
            raise ValueError(f"downsample must be >= 1, got {downsample!r}")
        self.test_fraction = float(test_fraction)
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
        self.test_seed = int(test_seed)
        self.exclude = tuple(exclude)
        super().__init__(root, split, **kwargs)

    def default_transform(self) -> Callable[..., Any]:
        if self.downsample == 1:
            return ToFrame(n_time_bins=self.T)
        return Compose((Downsample(self.downsample), ToFrame(n_time_bins=self.T)))

    def _folder(self) -> Path:
        sub = self.root / "Caltech101"
        return sub if sub.is_dir() else self.root

    def _list_part(self, part: str) -> _Part:
        folder = self._folder()
        cats = sorted(
            p.name for p in folder.iterdir() if p.is_dir() and p.name not in self.exclude
            and any(p.glob("*.bin"))
        )
        if not cats:
            raise _missing_error(
                self.title, self.root, self.layout, f"no <category>/*.bin under {folder}",
                self.source,
            )
        self.classes = tuple(cats)
        samples, labels, ids = [], [], []
        for label, c in enumerate(cats):
            for f in sorted((folder / c).glob("*.bin"), key=lambda p: _natural_key(p.name)):
                samples.append(f)
                labels.append(label)
                ids.append(f"{c}/{f.name}:{_fmt_size(f)}")
        return _Part(samples, np.asarray(labels, dtype=np.int64), ids)

    def _test_positions(self, labels: np.ndarray) -> np.ndarray:
        _, test = stratified_split(labels, self.test_fraction, self.test_seed)
        return test

    def _read(self, sample: Path) -> EventArray:
        return read_ncaltech101_bin(sample)


# ------------------------------------------------------------------------------------------
# DVS128 Gesture (AEDAT 3.1 + label CSVs)
# ------------------------------------------------------------------------------------------

GESTURE_CLASSES = (
    "hand clap",
    "right hand wave",
    "left hand wave",
    "right arm clockwise",
    "right arm counter-clockwise",
    "left arm clockwise",
    "left arm counter-clockwise",
    "arm roll",
    "air drums",
    "air guitar",
    "other gestures",
)


class DVSGesture(EventDataset):
    """DVS128 Gesture (Amir et al. 2017): 11 hand/arm gestures, 29 subjects, 128×128 DVS.

    Layout (the unpacked ``DvsGesture.tar.gz``)::

        ROOT/trials_to_train.txt          one recording file name per line (users 01-23)
        ROOT/trials_to_test.txt           (users 24-29)
        ROOT/userXX_<lighting>.aedat      AEDAT 3.1 recordings
        ROOT/userXX_<lighting>_labels.csv class,startTime_usec,endTime_usec

    One sample = one CSV row: the events with ``start <= t < end`` of its recording
    (:func:`~spikeloom.events.io.read_dvs_gesture`); label = CSV class − 1 (0 = hand clap ...
    10 = other gestures). Samples are ordered by the list file, then CSV row. The train/val
    split is stratified by gesture class over samples, so one recording can contribute to both
    (validation is then slightly optimistic compared with an unseen-subject test).

    Default frames (TA-SNN, spec §4): spatial downsampling 128→32 by integer division of the
    coordinates (``downsample=4``), then ``T`` (default 60) windows of ``dt_us`` (default
    1000 µs = 1 ms) starting at the sample's first event, counts, ``[T, 2, 32, 32]``; later
    events are not used (the "first T·dt" protocol). The (dt, T) behind TA-SNN's headline
    number is not confirmed (spec §4): both are options.

    Not tested on real recordings (none available to the project): tested from the byte layout
    with synthetic AEDAT 3.1 files written by :func:`~spikeloom.events.io.write_aedat31` and
    the real ``user01_natural_labels.csv``.
    """

    name = "dvsgesture"
    title = "DVS128 Gesture"
    source = (
        "https://research.ibm.com/interactive/dvsgesture/ (Amir et al., CVPR 2017, "
        "doi:10.1109/CVPR.2017.781; DvsGesture.tar.gz, CC BY 4.0)"
    )
    layout = (
        "ROOT/trials_to_train.txt and ROOT/trials_to_test.txt (lists of .aedat file names)",
        "ROOT/userXX_<lighting>.aedat             (AEDAT 3.1 recordings)",
        "ROOT/userXX_<lighting>_labels.csv        (class,startTime_usec,endTime_usec)",
    )
    default_T = 60
    sensor_size = (128, 128, 2)
    classes = GESTURE_CLASSES

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        *,
        dt_us: int = 1000,
        downsample: int = 4,
        **kwargs: Any,
    ) -> None:
        self.dt_us = int(dt_us)
        self.downsample = int(downsample)
        if self.dt_us < 1 or self.downsample < 1:
            raise ValueError(f"dt_us and downsample must be >= 1, got {dt_us!r}, {downsample!r}")
        self._memo: tuple[str, list[tuple[EventArray, int]]] | None = None
        super().__init__(root, split, **kwargs)

    def default_transform(self) -> Callable[..., Any]:
        to_frame = ToFrame(time_window=self.dt_us, n_frames=self.T)
        if self.downsample == 1:
            return to_frame
        return Compose((Downsample(self.downsample), to_frame))

    def _list_part(self, part: str) -> _Part:
        list_name = "trials_to_train.txt" if part == "train" else "trials_to_test.txt"
        list_file = self.root / list_name
        if not list_file.is_file():
            raise _missing_error(
                self.title, self.root, self.layout, f"ROOT/{list_name} does not exist",
                self.source,
            )
        names = [ln.strip() for ln in list_file.read_text().splitlines() if ln.strip()]
        missing = []
        for n in names:
            aedat = self.root / n
            csv = self.root / f"{Path(n).stem}_labels.csv"
            for f in (aedat, csv):
                if not f.is_file():
                    missing.append(f"ROOT/{f.name}")
        if missing:
            shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if
                                              len(missing) > 6 else "")
            raise _missing_error(
                self.title, self.root, self.layout,
                f"{len(missing)} file(s) listed in ROOT/{list_name} are missing: {shown}",
                self.source,
            )
        samples, labels, ids = [], [], []
        for n in names:
            aedat = self.root / n
            csv = self.root / f"{Path(n).stem}_labels.csv"
            rows = read_gesture_labels(csv)
            size = _fmt_size(aedat)
            for k, (cls, start, end) in enumerate(rows.tolist()):
                samples.append((str(aedat), str(csv), k))
                labels.append(int(cls) - 1)
                ids.append(f"{n}:{size}#{k}:{start}-{end}")
        return _Part(samples, np.asarray(labels, dtype=np.int64), ids)

    def _read(self, sample: tuple[str, str, int]) -> EventArray:
        aedat, csv, k = sample
        if self._memo is None or self._memo[0] != aedat:
            # one recording holds ~10 gestures: keep its slices for the next samples
            self._memo = (aedat, read_dvs_gesture(aedat, csv))
        return self._memo[1][k][0].copy()

    def _reader_key(self) -> str:
        return "read_dvs_gesture/absolute-time"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_memo"] = None
        return state


# ------------------------------------------------------------------------------------------
# CIFAR10-DVS (AEDAT 2.0)
# ------------------------------------------------------------------------------------------

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)


class CIFAR10DVS(EventDataset):
    """CIFAR10-DVS (Li et al. 2017): 10 × 1000 DVS128 recordings of moving CIFAR-10 images.

    Layout (the unpacked per-class archives)::

        ROOT/<class>/cifar10_<class>_<k>.aedat    class in airplane, automobile, bird, cat,
                                                  deer, dog, frog, horse, ship, truck

    Files of a class are ordered by their number ``k`` (natural order). Events are read with
    :func:`~spikeloom.events.io.read_cifar10dvs` (``orientation="spikingjelly"`` by default:
    upright images, ON = 1).

    No official split exists. ``split_rule="last100"`` (default; PLIF and TA-SNN, spec §11.3):
    the last ``test_per_class`` (100) recordings of each class are the test set, the first 900
    are the training files. ``split_rule="seeded"``: a stratified ``test_fraction`` (0.1) split
    drawn with ``test_seed`` (0). Either way the test set does not depend on ``seed``.

    Default frames: ``T`` (default 10) equal time bins over each recording, counts,
    ``[T, 2, 128/f, 128/f]`` with ``downsample = f`` (default 1). TA-SNN instead used 1 ms
    windows from the start (pass ``dt_us=1000``: ``T`` windows of ``dt_us``).

    Not tested on real recordings (none available): tested from the byte layout with synthetic
    AEDAT 2.0 files written by :func:`~spikeloom.events.io.write_aedat2`.
    """

    name = "cifar10dvs"
    title = "CIFAR10-DVS"
    source = (
        "https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671 (Li et al., Front. "
        "Neurosci. 11:309, 2017, doi:10.3389/fnins.2017.00309; data "
        "doi:10.6084/m9.figshare.4724671)"
    )
    layout = (
        "ROOT/<class>/*.aedat   (AEDAT 2.0; class in " + ", ".join(CIFAR10_CLASSES) + ")",
    )
    default_T = 10
    official_test = False
    sensor_size = (128, 128, 2)
    classes = CIFAR10_CLASSES

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        *,
        split_rule: Literal["last100", "seeded"] = "last100",
        test_per_class: int = 100,
        test_fraction: float = 0.1,
        test_seed: int = 0,
        dt_us: int | None = None,
        downsample: int = 1,
        orientation: Literal["spikingjelly", "raw"] = "spikingjelly",
        **kwargs: Any,
    ) -> None:
        if split_rule not in ("last100", "seeded"):
            raise ValueError(f"split_rule must be 'last100' or 'seeded', got {split_rule!r}")
        if orientation not in ("spikingjelly", "raw"):
            raise ValueError(f"orientation must be 'spikingjelly' or 'raw', got {orientation!r}")
        self.split_rule = split_rule
        self.test_per_class = int(test_per_class)
        self.test_fraction = float(test_fraction)
        self.test_seed = int(test_seed)
        self.dt_us = None if dt_us is None else int(dt_us)
        self.downsample = int(downsample)
        self.orientation = orientation
        if self.test_per_class < 1 or not 0.0 < self.test_fraction < 1.0:
            raise ValueError("test_per_class must be >= 1 and test_fraction in (0, 1)")
        if self.downsample < 1 or (self.dt_us is not None and self.dt_us < 1):
            raise ValueError("downsample and dt_us must be >= 1")
        super().__init__(root, split, **kwargs)

    def default_transform(self) -> Callable[..., Any]:
        if self.dt_us is None:
            to_frame = ToFrame(n_time_bins=self.T)
        else:
            to_frame = ToFrame(time_window=self.dt_us, n_frames=self.T)
        if self.downsample == 1:
            return to_frame
        return Compose((Downsample(self.downsample), to_frame))

    def _list_part(self, part: str) -> _Part:
        missing = [c for c in self.classes if not (self.root / c).is_dir()]
        if missing:
            raise _missing_error(
                self.title, self.root, self.layout,
                f"class folder(s) {', '.join('ROOT/' + m for m in missing)} do not exist",
                self.source,
            )
        samples, labels, ids = [], [], []
        for label, c in enumerate(self.classes):
            files = sorted((self.root / c).glob("*.aedat"), key=lambda p: _natural_key(p.name))
            if self.split_rule == "last100" and len(files) <= self.test_per_class:
                raise ValueError(
                    f"{self.title}: ROOT/{c} has {len(files)} recordings, but split_rule="
                    f"'last100' keeps the last {self.test_per_class} for testing; the full "
                    f"dataset has 1000 per class (use test_per_class= or split_rule='seeded')"
                )
            for f in files:
                samples.append(f)
                labels.append(label)
                ids.append(f"{c}/{f.name}:{_fmt_size(f)}")
        return _Part(samples, np.asarray(labels, dtype=np.int64), ids)

    def _test_positions(self, labels: np.ndarray) -> np.ndarray:
        if self.split_rule == "seeded":
            return stratified_split(labels, self.test_fraction, self.test_seed)[1]
        out = []
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)  # already in file-number order
            out.append(members[-self.test_per_class :])
        return np.concatenate(out)

    def _read(self, sample: Path) -> EventArray:
        return read_cifar10dvs(sample, orientation=self.orientation)

    def _reader_key(self) -> str:
        return f"read_cifar10dvs/{self.orientation}"


# ------------------------------------------------------------------------------------------
# SHD (HDF5)
# ------------------------------------------------------------------------------------------


class SHD(EventDataset):
    """Spiking Heidelberg Digits (Cramer et al. 2020): spoken digits 0-9 in English and German
    as spikes of 700 cochlea-model channels.

    Layout::

        ROOT/shd_train.h5     8,156 samples   (gunzip the downloaded shd_train.h5.gz)
        ROOT/shd_test.h5      2,264 samples

    Each file (spec §11.7) holds ``spikes/times`` (variable-length float seconds),
    ``spikes/units`` (channel ids 0..699) and ``labels`` (0..19); events come from
    :class:`~spikeloom.events.io.SHDFile` (``x`` = channel, ``t`` in µs, sensor
    ``(700, 1, 1)``). Class names come from ``extra/keys`` when present.

    Default frames: ``T`` (default 100) windows of ``dt_us`` (default 10,000 µs) starting at
    ``t = 0`` (the recording start, not the first spike), i.e. the first second, per-channel
    spike counts ``[T, 1, 1, 700]`` (``output="frames"``, default) or ``[T, 700]``
    (``output="sequence"``, spec kind ``"sequence"``). TA-SNN's configuration (spec §4) is ``T=10``,
    ``dt_us=4000``.

    Not tested on the real files (none available): tested with a small synthetic ``.h5`` in the
    documented layout.
    """

    name = "shd"
    title = "SHD"
    source = (
        "https://zenkelab.org/resources/spiking-heidelberg-datasets-shd/ (Cramer et al., "
        "IEEE TNNLS 2022, doi:10.1109/TNNLS.2020.3044364)"
    )
    layout = (
        "ROOT/shd_train.h5   (training set; gunzip shd_train.h5.gz)",
        "ROOT/shd_test.h5    (test set; gunzip shd_test.h5.gz)",
    )
    default_T = 100
    sensor_size = (700, 1, 1)
    classes = tuple(str(i) for i in range(20))

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        *,
        dt_us: int = 10_000,
        output: Literal["frames", "sequence"] = "frames",
        **kwargs: Any,
    ) -> None:
        self.dt_us = int(dt_us)
        if self.dt_us < 1:
            raise ValueError(f"dt_us must be >= 1, got {dt_us!r}")
        if output not in ("frames", "sequence"):
            raise ValueError(f"output must be 'frames' or 'sequence', got {output!r}")
        self.output = output
        self._files: dict[str, Any] = {}
        super().__init__(root, split, **kwargs)

    def default_transform(self) -> Callable[..., Any]:
        return ToFrame(time_window=self.dt_us, n_frames=self.T, start_time=0)

    @property
    def spec(self) -> DataSpec:
        """``frames`` ``[T, 1, 1, 700]`` (default) or ``sequence`` ``[T, 700]``."""
        frames = super().spec
        if self.output == "frames":
            return frames
        return DataSpec("sequence", frames.num_classes, T=frames.T, channels=700, features=700)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        x, y = super().__getitem__(i)
        if self.output == "sequence":
            x = x.reshape(x.shape[0], -1)
        return x, y

    def _file(self, part: str) -> Any:
        if part not in self._files:
            self._files[part] = read_shd(self.root / f"shd_{part}.h5")
        return self._files[part]

    def _list_part(self, part: str) -> _Part:
        name = f"shd_{part}.h5"
        path = self.root / name
        if not path.is_file():
            hint = (
                f"ROOT/{name} does not exist (ROOT/{name}.gz is there: gunzip it first)"
                if (self.root / f"{name}.gz").is_file()
                else f"ROOT/{name} does not exist"
            )
            raise _missing_error(self.title, self.root, self.layout, hint, self.source)
        shd = self._file(part)
        labels = shd.labels
        import h5py

        with h5py.File(path, "r") as f:
            raw_keys = f["extra/keys"][:] if "extra/keys" in f else []
        keys = [k.decode() if isinstance(k, bytes) else str(k) for k in raw_keys]
        if keys and len(keys) >= int(labels.max(initial=0)) + 1:
            self.classes = tuple(keys)
        size = _fmt_size(path)
        ids = [f"{name}:{size}#{i}" for i in range(len(shd))]
        return _Part([(part, i) for i in range(len(shd))], labels, ids)

    def _read(self, sample: tuple[str, int]) -> EventArray:
        part, i = sample
        return self._file(part)[i][0]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_files"] = {}
        return state


# ------------------------------------------------------------------------------------------
# ES-ImageNet (.npz + label txt)
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ESImageNetToFrame(EventTransform):
    """ES-ImageNet events → the authors' frames (spec §5 "Loading to frames").

    Input: events of :func:`~spikeloom.events.io.read_es_imagenet_npz` with ``centre=(h, w)``
    (already shifted to the centred canvas), ``t`` = ODG step 1..8. Output ``[8, 2, S, S]``
    uint8: frame ``t - 1``, channel = polarity (**1 = ON, 0 = OFF**, the project convention;
    the authors' loader puts ON in channel 0), value 1 where at least one event fell
    (``binary=True``, the authors' loader) or the event count. ``crop=True`` keeps canvas rows
    and columns 16..239 (``S = 224``, the authors' ``[16:240]`` crop); ``False`` keeps the
    256×256 canvas.
    """

    crop: bool = True
    binary: bool = True

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        ev = np.asarray(events)
        t = ev["t"].astype(np.int64)
        if t.size and (t.min() < 1 or t.max() > 8):
            raise ValueError(
                f"ES-ImageNet events must have t = ODG step 1..8, got {t.min()}..{t.max()}; "
                f"read them with read_es_imagenet_npz"
            )
        x = ev["x"].astype(np.int64)
        y = ev["y"].astype(np.int64)
        p = ev["p"].astype(np.int64)
        if p.size and p.max() > 1:
            raise ValueError("ES-ImageNet events must have p in {0, 1}")
        size = 256
        if self.crop:
            keep = (x >= 16) & (x < 240) & (y >= 16) & (y < 240)
            x, y, p, t = x[keep] - 16, y[keep] - 16, p[keep], t[keep]
            size = 224
        elif x.size and (x.max() >= 256 or y.max() >= 256):
            raise ValueError("ES-ImageNet events must lie in the 256x256 canvas")
        flat = (((t - 1) * 2 + p) * size + y) * size + x
        counts = np.bincount(flat, minlength=8 * 2 * size * size)
        if self.binary:
            out = (counts > 0).astype(np.uint8)
        else:
            out = counts.astype(np.uint16 if counts.max(initial=0) > 255 else np.uint8)
        return out.reshape(8, 2, size, size)


class ESImageNet(EventDataset):
    """ES-ImageNet (Lin et al. 2021): ImageNet converted to 8-step ODG events, 1000 classes.

    Layout (spec §5; the authors' ``es_imagenet.py`` resolves names the same way)::

        ROOT/trainlabel.txt     "<path> <label 0..999> <h> <w>" per line
        ROOT/vallabel.txt
        ROOT/train/<path>       class{label}/class{label}_{k}.npz  (pos/neg uint8 [n, 3])
        ROOT/val/<path>         ILSVRC2012_val_XXXXXXXX.npz

    ``<path>`` is relative to ``ROOT/train`` (``ROOT/val``) and its extension is replaced by
    ``.npz``. ``"test"`` is the official validation set (``vallabel.txt``); ``"train"``/``"val"``
    split ``trainlabel.txt`` (stratified, seeded). Sample files are only opened when read.

    Frames: :class:`ESImageNetToFrame` (binary, 224×224 crop after the authors' centring by
    ``(h, w)``), ``[8, 2, 224, 224]``; ``T`` must be 8 (the ODG steps). Classes are named by
    their label number (the files hold no synset names). The cache is stored compressed.

    Not tested on real files (none available): tested with a tiny synthetic tree in the spec §5
    layout written by :func:`~spikeloom.events.io.write_es_imagenet_npz`.
    """

    name = "esimagenet"
    title = "ES-ImageNet"
    source = (
        "the links in https://github.com/lyh983012/ES-imagenet-master (Lin et al., Front. "
        "Neurosci. 15:726582, 2021, doi:10.3389/fnins.2021.726582)"
    )
    layout = (
        "ROOT/trainlabel.txt and ROOT/vallabel.txt  ('<path> <label> <h> <w>' lines)",
        "ROOT/train/<path>.npz                      (e.g. class0/class0_1.npz)",
        "ROOT/val/<path>.npz                        (e.g. ILSVRC2012_val_00000001.npz)",
    )
    default_T = 8
    cache_compress = True
    sensor_size = ES_IMAGENET_SENSOR
    classes = tuple(str(i) for i in range(1000))

    def __init__(self, root: PathLike, split: str = "train", **kwargs: Any) -> None:
        T = kwargs.get("T")
        if T is not None and int(T) != 8:
            raise ValueError(f"ES-ImageNet has exactly 8 time steps (ODG steps); got T={T}")
        super().__init__(root, split, **kwargs)

    def default_transform(self) -> Callable[..., Any]:
        return ESImageNetToFrame()

    def default_frame_shape(self) -> tuple[int, int, int, int]:
        return (8, 2, 224, 224)

    def _list_part(self, part: str) -> _Part:
        label_name, sub = ("trainlabel.txt", "train") if part == "train" else ("vallabel.txt",
                                                                                "val")
        label_file = self.root / label_name
        for f, what in ((label_file, f"ROOT/{label_name}"), (self.root / sub, f"ROOT/{sub}/")):
            if not f.exists():
                raise _missing_error(
                    self.title, self.root, self.layout, f"{what} does not exist", self.source
                )
        samples, labels, ids = [], [], []
        folder = self.root / sub
        for lineno, line in enumerate(label_file.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 4:
                raise ValueError(
                    f"{label_file}:{lineno}: expected '<path> <label> <h> <w>', got {line!r}"
                )
            rel, label, h, w = parts[0], int(parts[1]), int(parts[2]), int(parts[3])
            if not 0 <= label < 1000:
                raise ValueError(f"{label_file}:{lineno}: label {label} is not in 0..999")
            rel_npz = str(Path(rel).with_suffix(".npz"))
            samples.append((folder / rel_npz, h, w))
            labels.append(label)
            ids.append(f"{sub}/{rel_npz}:{label}:{h}:{w}")
        if samples and not samples[0][0].is_file():
            raise _missing_error(
                self.title, self.root, self.layout,
                f"{samples[0][0]} (first entry of ROOT/{label_name}) does not exist",
                self.source,
            )
        return _Part(samples, np.asarray(labels, dtype=np.int64), ids)

    def _read(self, sample: tuple[Path, int, int]) -> EventArray:
        path, h, w = sample
        if not Path(path).is_file():
            raise _missing_error(
                self.title, self.root, self.layout, f"{path} does not exist", self.source
            )
        return read_es_imagenet_npz(path, centre=(h, w))

    def _reader_key(self) -> str:
        return "read_es_imagenet_npz/centred"
