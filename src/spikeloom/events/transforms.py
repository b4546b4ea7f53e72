"""Event transforms as small frozen dataclasses: ``transform(events, rng=None)``.

Each transform stores its parameters as dataclass fields and calls a function of
:mod:`spikeloom.events.functional` (denoise, crops, flips, random drops), of
:mod:`spikeloom.events.frames` (:class:`ToFrame`, :class:`ToVoxelGrid`) or another transform
(:class:`Compose`, :class:`RandomApply`). Transforms pickle and copy freely (they hold no random
state), compare by value and have a stable :meth:`~EventTransform.cache_key`.

This module also re-exports the functions, slicers and frame builders, so that
``from spikeloom.events.transforms import Compose, Denoise, ToFrame, to_frame`` keeps working.

Randomness and DataLoader workers
---------------------------------
Random transforms draw from the ``rng`` passed **per call**: a ``np.random.Generator``, an int /
``SeedSequence`` seed, or ``None``. ``None`` creates a fresh generator from OS entropy at every
call, so forked DataLoader workers never share a stream (unlike the legacy global
``np.random`` state, which forked workers inherit identically), but results are then not
reproducible. For reproducible augmentation, derive a generator per sample in the dataset, e.g.
``rng = np.random.default_rng([base_seed, epoch, index])``; this is independent of the number of
workers. To apply a deterministic transform at random, wrap it:
``RandomApply(FlipLR(), p=0.5)``.

Disk caching
------------
Every transform has ``params()`` (its constructor arguments as a JSON-compatible dict) and
``cache_key()``, a stable string ``"spikeloom.<Class>/v<version>:<sorted JSON params>"`` (the
version changes whenever the output of a transform changes for the same parameters).
``is_random`` tells whether the output depends on ``rng``; random transforms should not be
cached.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import KW_ONLY, dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from ..ops.frames import speedups_enabled
from ._checks import (
    RngLike,
    as_generator,
    check_events,
    crop_size,
    int_param,
    opt_sensor_size,
    pair_param,
    prob_param,
)
from .frames import frame_slicer, normalise_dtype, to_frame, to_voxel_grid
from .functional import (
    center_crop,
    crop,
    denoise,
    downsample,
    drop_event,
    drop_time,
    flip_lr,
    flip_polarity,
    flip_ud,
    random_crop,
    time_jitter,
)
from .slicing import (
    SliceByEventBins,
    SliceByEventCount,
    SliceByTime,
    SliceByTimeBins,
    Slicer,
)

__all__ = [
    "CenterCrop",
    "Compose",
    "Crop",
    "Denoise",
    "Downsample",
    "DropEvent",
    "DropTime",
    "EventTransform",
    "FlipLR",
    "FlipPolarity",
    "FlipUD",
    "RandomApply",
    "RandomCrop",
    "RandomTemporalDelete",
    "RngLike",
    "SliceByEventBins",
    "SliceByEventCount",
    "SliceByTime",
    "SliceByTimeBins",
    "Slicer",
    "TimeJitter",
    "ToFrame",
    "ToVoxelGrid",
    "center_crop",
    "crop",
    "denoise",
    "downsample",
    "drop_event",
    "drop_time",
    "flip_lr",
    "flip_polarity",
    "flip_ud",
    "random_crop",
    "speedups_enabled",
    "time_jitter",
    "to_frame",
    "to_voxel_grid",
]


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


class EventTransform:
    """Base of the dataclass transforms: ``params()``, ``cache_key()``, ``is_random``.

    To add a transform, derive a (frozen) ``@dataclass`` from this class whose fields are its
    parameters and implement ``__call__(self, events, rng=None)``; raise ``version`` whenever
    the output for the same parameters changes, so that disk caches are invalidated.
    """

    version: ClassVar[int] = 1

    @property
    def is_random(self) -> bool:
        """Whether the output depends on the ``rng`` argument."""
        return False

    def params(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-compatible dict (tuples become lists)."""
        if not dataclasses.is_dataclass(self):
            raise TypeError(
                f"{type(self).__name__} must be a @dataclass (its fields are the parameters) "
                f"or override params()"
            )
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def cache_key(self) -> str:
        """Stable string identifying class, version and all parameters."""
        body = json.dumps(self.params(), sort_keys=True, separators=(",", ":"))
        return f"spikeloom.{type(self).__name__}/v{self.version}:{body}"

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> Any:  # pragma: no cover
        raise NotImplementedError


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class ToFrame(EventTransform):
    """Transform form of :func:`to_frame` (same arguments; ``dtype`` is stored by name)."""

    sensor_size: tuple[int, int, int] | None = None
    _: KW_ONLY
    time_window: int | None = None
    n_time_bins: int | None = None
    event_count: int | None = None
    n_event_bins: int | None = None
    overlap: int = 0
    include_incomplete: bool = True
    n_frames: int | None = None
    start_time: int | None = None
    time_bins_rule: Literal["exact", "floor"] = "exact"
    dtype: str | None = None

    _SLICING: ClassVar[tuple[str, ...]] = (
        "time_window", "n_time_bins", "event_count", "n_event_bins", "overlap",
        "include_incomplete", "n_frames", "start_time", "time_bins_rule",
    )

    def __post_init__(self) -> None:
        _set(self, "sensor_size", opt_sensor_size(self.sensor_size))
        d = normalise_dtype(self.dtype)
        _set(self, "dtype", None if d is None else d.name)
        for name in self._SLICING:  # numpy ints -> int (stable repr / keys)
            value = getattr(self, name)
            if isinstance(value, np.integer):
                _set(self, name, int(value))
        _ = self.slicer  # validates the options now rather than at the first call

    @property
    def slicer(self) -> Slicer:
        """The :mod:`~spikeloom.events.slicing` slicer these options describe."""
        return frame_slicer(**{name: getattr(self, name) for name in self._SLICING})

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return to_frame(events, self.sensor_size, dtype=self.dtype, slicer=self.slicer)


@dataclass(frozen=True)
class ToVoxelGrid(EventTransform):
    """Transform form of :func:`to_voxel_grid`; output float32 ``[B, 1, H, W]``."""

    sensor_size: tuple[int, int, int] | None = None
    _: KW_ONLY
    n_time_bins: int

    def __post_init__(self) -> None:
        _set(self, "sensor_size", opt_sensor_size(self.sensor_size))
        int_param(self.n_time_bins, "n_time_bins", 1)

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return to_voxel_grid(events, self.sensor_size, n_time_bins=self.n_time_bins)


@dataclass(frozen=True)
class Denoise(EventTransform):
    """Transform form of :func:`denoise` (needs no sensor size)."""

    filter_time: int = 10000
    connectivity: int = 8

    def __post_init__(self) -> None:
        int_param(self.filter_time, "filter_time", 1)
        if self.connectivity not in (4, 8):
            raise ValueError(f"connectivity must be 4 or 8, got {self.connectivity!r}")

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return denoise(events, self.filter_time, connectivity=self.connectivity)


@dataclass(frozen=True)
class Downsample(EventTransform):
    """Transform form of :func:`downsample`."""

    spatial_factor: int = 1
    time_factor: int = 1
    _: KW_ONLY
    sensor_size: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        int_param(self.spatial_factor, "spatial_factor", 1)
        int_param(self.time_factor, "time_factor", 1)
        _set(self, "sensor_size", opt_sensor_size(self.sensor_size))

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return downsample(
            events, self.spatial_factor, self.time_factor, sensor_size=self.sensor_size
        )


@dataclass(frozen=True)
class Crop(EventTransform):
    """Transform form of :func:`crop`: window ``origin=(x0, y0)``, ``size=(w, h)``."""

    origin: tuple[int, int]
    size: tuple[int, int]
    _: KW_ONLY
    sensor_size: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        _set(self, "origin", pair_param(self.origin, "origin", 0))
        _set(self, "size", crop_size(self.size))
        _set(self, "sensor_size", opt_sensor_size(self.sensor_size))

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return crop(events, self.origin, self.size, sensor_size=self.sensor_size)


@dataclass(frozen=True)
class _SizedCrop(EventTransform):
    """Shared fields of :class:`CenterCrop` / :class:`RandomCrop`: a window ``size``."""

    size: tuple[int, int]
    _: KW_ONLY
    sensor_size: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        _set(self, "size", crop_size(self.size))
        _set(self, "sensor_size", opt_sensor_size(self.sensor_size))


class CenterCrop(_SizedCrop):
    """Transform form of :func:`center_crop`; ``size`` is an int or ``(w, h)``."""

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return center_crop(events, self.size, sensor_size=self.sensor_size)


class RandomCrop(_SizedCrop):
    """Transform form of :func:`random_crop`; ``size`` is an int or ``(w, h)``."""

    @property
    def is_random(self) -> bool:
        return True

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return random_crop(events, self.size, sensor_size=self.sensor_size, rng=rng)


class _NoProbability:
    """Mixin of the transforms that lost their ``p`` field: point to :class:`RandomApply`."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if "p" in kwargs:
            raise TypeError(
                f"{cls.__name__} has no probability p any more; apply it at random with "
                f"RandomApply({cls.__name__}(...), p={kwargs['p']!r})"
            )
        return super().__new__(cls)


@dataclass(frozen=True)
class _SpatialFlip(_NoProbability, EventTransform):
    """Shared body of :class:`FlipLR` / :class:`FlipUD` (always applied; deterministic)."""

    sensor_size: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        _set(self, "sensor_size", opt_sensor_size(self.sensor_size))

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return type(self)._flip(events, sensor_size=self.sensor_size)


class FlipLR(_SpatialFlip):
    """:func:`flip_lr`; wrap it in :class:`RandomApply` to flip with a probability."""

    _flip = staticmethod(flip_lr)


class FlipUD(_SpatialFlip):
    """:func:`flip_ud`; wrap it in :class:`RandomApply` to flip with a probability."""

    _flip = staticmethod(flip_ud)


@dataclass(frozen=True)
class FlipPolarity(_NoProbability, EventTransform):
    """:func:`flip_polarity`; wrap it in :class:`RandomApply` to flip with a probability."""

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return flip_polarity(events)


@dataclass(frozen=True)
class DropEvent(EventTransform):
    """Transform form of :func:`drop_event`: drop a fraction ``p`` of the events."""

    p: float = 0.1

    def __post_init__(self) -> None:
        _set(self, "p", prob_param(self.p, "p"))

    @property
    def is_random(self) -> bool:
        return 0.0 < self.p < 1.0

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return drop_event(events, self.p, rng=rng)


@dataclass(frozen=True)
class TimeJitter(EventTransform):
    """Transform form of :func:`time_jitter`."""

    std: float = 1.0
    clip_negative: bool = True
    sort: bool = True

    def __post_init__(self) -> None:
        if not float(self.std) >= 0.0:
            raise ValueError(f"std must be >= 0, got {self.std!r}")
        _set(self, "std", float(self.std))

    @property
    def is_random(self) -> bool:
        return self.std > 0.0

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return time_jitter(
            events, self.std, clip_negative=self.clip_negative, sort=self.sort, rng=rng
        )


@dataclass(frozen=True)
class DropTime(EventTransform):
    """Transform form of :func:`drop_time`: delete a random interval of ``fraction`` of the
    recording's duration. Alias: :data:`RandomTemporalDelete`."""

    fraction: float = 0.1

    def __post_init__(self) -> None:
        _set(self, "fraction", prob_param(self.fraction, "fraction"))

    @property
    def is_random(self) -> bool:
        return 0.0 < self.fraction < 1.0

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        return drop_time(events, self.fraction, rng=rng)


RandomTemporalDelete = DropTime
"""Alias of :class:`DropTime`."""


@dataclass(frozen=True)
class Compose(EventTransform):
    """Apply transforms in order: ``Compose([Denoise(), Downsample(4), ToFrame(...)])``.

    ``__call__(events, rng=None)`` turns ``rng`` into one Generator and passes it to every
    child, so a seed reproduces the whole pipeline. Children must be :class:`EventTransform`
    objects (plain callables would break pickling and cache keys).
    """

    transforms: tuple[EventTransform, ...]

    def __post_init__(self) -> None:
        items = tuple(self.transforms)
        for tr in items:
            if not isinstance(tr, EventTransform):
                raise TypeError(
                    f"Compose takes spikeloom EventTransform objects, got {tr!r}; wrap custom "
                    f"code in a small dataclass deriving from EventTransform"
                )
        _set(self, "transforms", items)

    @property
    def is_random(self) -> bool:
        return any(tr.is_random for tr in self.transforms)

    def params(self) -> dict[str, Any]:
        return {
            "transforms": [
                {"name": type(tr).__name__, "version": tr.version, "params": tr.params()}
                for tr in self.transforms
            ]
        }

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> Any:
        g = as_generator(rng) if self.is_random else None
        out: Any = events
        for tr in self.transforms:
            out = tr(out, rng=g)
        return out

    def __len__(self) -> int:
        return len(self.transforms)

    def __getitem__(self, i: int) -> EventTransform:
        return self.transforms[i]


@dataclass(frozen=True)
class RandomApply(EventTransform):
    """Apply ``transform`` with probability ``p``, else return a copy of the input.

    One uniform draw ``u`` from the ``rng`` of the call decides (``u < p``: apply); the same
    generator is then passed to ``transform``, so a seed reproduces both. ``p = 1`` calls
    ``transform`` with the caller's ``rng`` unchanged (identical to ``transform`` alone) and
    ``p = 0`` never calls it; neither draws. Example: ``RandomApply(FlipLR(), p=0.5)``.

    ``is_random`` is true when ``0 < p < 1`` or when ``p > 0`` and ``transform`` is random.
    The cache key holds ``p`` and ``transform.cache_key()``.
    """

    transform: EventTransform
    p: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.transform, EventTransform):
            raise TypeError(
                f"RandomApply takes a spikeloom EventTransform, got {self.transform!r}; wrap "
                f"custom code in a small dataclass deriving from EventTransform"
            )
        _set(self, "p", prob_param(self.p, "p"))

    @property
    def is_random(self) -> bool:
        return 0.0 < self.p < 1.0 or (self.p > 0.0 and self.transform.is_random)

    def params(self) -> dict[str, Any]:
        return {"p": self.p, "transform": self.transform.cache_key()}

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> Any:
        if self.p >= 1.0:
            return self.transform(events, rng=rng)
        if self.p > 0.0:
            g = as_generator(rng)
            if g.random() < self.p:
                return self.transform(events, rng=g)
        return check_events(events).copy()

