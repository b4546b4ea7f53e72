"""The ES-ImageNet conversion geometry as one frozen record.

ES-ImageNet (Lin et al. 2021, arXiv:2110.12211) converts ImageNet photos to events with ODG:
resize so that the longer side is 254 pixels, move the image along a 9-position trajectory on a
canvas padded by 4 pixels, threshold consecutive differences at 0.18, keep the events with
``16 < row, col < 240`` and drop images with fewer than 1000 events; the authors' loader then
centres the image and keeps rows/cols ``16:240`` (224x224 frames). :data:`ES_IMAGENET` holds
these numbers; the ``ES_IMAGENET_*`` constants are aliases of its fields.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = [
    "ES_IMAGENET",
    "ES_IMAGENET_CROP",
    "ES_IMAGENET_MIN_EVENTS",
    "ES_IMAGENET_SIZE",
    "ES_IMAGENET_THRESHOLD",
    "ES_IMAGENET_TRAJECTORY",
    "ES_IMAGENET_WINDOW",
    "ESImageNetGeometry",
    "check_trajectory",
    "normalise_crop",
    "normalise_window",
]

Trajectory = tuple[tuple[int, int], ...]


def check_trajectory(trajectory: Sequence[Sequence[int]], pad: int) -> Trajectory:
    """The trajectory as a tuple of ``(row, col)`` int pairs, all offsets in ``[0, pad]``."""
    traj = tuple((int(r), int(c)) for r, c in trajectory)
    if len(traj) < 2:
        raise ValueError("trajectory needs at least 2 positions (T = len(trajectory) - 1)")
    lo = min(min(r, c) for r, c in traj)
    hi = max(max(r, c) for r, c in traj)
    if lo < 0 or hi > pad:
        raise ValueError(
            f"trajectory offsets must lie in [0, pad={pad}], got range [{lo}, {hi}]; "
            "increase pad or shift the trajectory"
        )
    return traj


def normalise_crop(crop: Sequence[int] | None) -> tuple[int, int] | None:
    """``None`` or ``(lo, hi)`` with ``lo < hi`` (events kept when ``lo < row, col < hi``)."""
    if crop is None:
        return None
    lo, hi = (int(x) for x in crop)
    if lo >= hi:
        raise ValueError(f"crop must be (lo, hi) with lo < hi, got {crop}")
    return lo, hi


def normalise_window(window: Sequence[int] | None) -> tuple[int, int] | None:
    """``None`` or ``(lo, hi)`` with ``0 <= lo < hi`` (frame rows/cols ``lo:hi``)."""
    if window is None:
        return None
    lo, hi = (int(x) for x in window)
    if not 0 <= lo < hi:
        raise ValueError(f"window must be (lo, hi) with 0 <= lo < hi, got {window}")
    return lo, hi


@dataclass(frozen=True)
class ESImageNetGeometry:
    """Every number of the ES-ImageNet conversion and loading (Lin et al. 2021, arXiv:2110.12211).

    Attributes:
        size: longer image side after the nearest-neighbour resize (pixels).
        trajectory: ``T + 1`` ``(row, col)`` offsets of the image's top-left corner on the
            canvas, one per position; ``T = len(trajectory) - 1`` event steps.
        threshold: strict event threshold on intensity differences in ``[0, 1]``.
        crop: converter crop ``(lo, hi)``: events are kept when ``lo < row < hi`` and
            ``lo < col < hi`` (canvas coordinates); ``None`` keeps all.
        window: loader window ``(lo, hi)``: frame rows/cols ``lo:hi`` of the centred
            ``size x size`` canvas (``hi - lo`` pixels); ``None`` means ``(1, size + 1)``.
        min_events: images with fewer events (ON + OFF, after the crop) are discarded.
        pad: canvas margin: the canvas of an ``h x w`` image is ``(h + pad) x (w + pad)``.
    """

    size: int = 254
    trajectory: Trajectory = field(
        default=((1, 0), (0, 2), (2, 1), (1, 0), (0, 1), (2, 2), (1, 0), (1, 1), (2, 1))
    )
    threshold: float = 0.18
    crop: tuple[int, int] | None = (16, 240)
    window: tuple[int, int] | None = (16, 240)
    min_events: int = 1000
    pad: int = 4

    def __post_init__(self) -> None:
        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        if int(self.size) <= 0 or int(self.pad) < 0:
            raise ValueError(f"size must be > 0 and pad >= 0, got {self.size}, {self.pad}")
        put("size", int(self.size))
        put("pad", int(self.pad))
        put("trajectory", check_trajectory(self.trajectory, self.pad))
        threshold = float(self.threshold)
        if not (math.isfinite(threshold) and threshold >= 0):
            raise ValueError(f"threshold must be a finite number >= 0, got {self.threshold!r}")
        put("threshold", threshold)
        put("crop", normalise_crop(self.crop))
        put("window", normalise_window(self.window))
        if int(self.min_events) < 0:
            raise ValueError(f"min_events must be >= 0, got {self.min_events}")
        put("min_events", int(self.min_events))

    @property
    def steps(self) -> int:
        """Number of event steps ``T`` (8 for ES-ImageNet)."""
        return len(self.trajectory) - 1

    @property
    def frame_side(self) -> int:
        """Side of the loaded frames in pixels (224 for ES-ImageNet)."""
        lo, hi = self.window if self.window is not None else (1, self.size + 1)
        return hi - lo

    @property
    def canvas_side(self) -> int:
        """Side of the canvas of a ``size``-pixel image: event coordinates lie below it."""
        return self.size + self.pad

    def kept_fraction(self) -> float:
        """Share of the image's rows (and columns) inside the crop (the image sits at offset
        ``pad / 2`` on the canvas); 1 without a crop."""
        if self.crop is None:
            return 1.0
        lo, hi = self.pad // 2, self.pad // 2 + self.size
        return max(0, min(self.crop[1], hi) - max(self.crop[0], lo)) / self.size

    def replace(self, **changes: Any) -> ESImageNetGeometry:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


ES_IMAGENET = ESImageNetGeometry()
"""The geometry of the released ES-ImageNet dataset."""

ES_IMAGENET_TRAJECTORY: Trajectory = ES_IMAGENET.trajectory
"""Alias of ``ES_IMAGENET.trajectory``: offsets at t = 0..8."""
ES_IMAGENET_SIZE: int = ES_IMAGENET.size
"""Alias of ``ES_IMAGENET.size`` (254)."""
ES_IMAGENET_THRESHOLD: float = ES_IMAGENET.threshold
"""Alias of ``ES_IMAGENET.threshold`` (0.18, strict)."""
ES_IMAGENET_CROP: tuple[int, int] = ES_IMAGENET.crop  # type: ignore[assignment]
"""Alias of ``ES_IMAGENET.crop``: events kept when ``16 < row, col < 240``."""
ES_IMAGENET_WINDOW: tuple[int, int] = ES_IMAGENET.window  # type: ignore[assignment]
"""Alias of ``ES_IMAGENET.window``: frame rows/cols ``16:240`` -> 224x224."""
ES_IMAGENET_MIN_EVENTS: int = ES_IMAGENET.min_events
"""Alias of ``ES_IMAGENET.min_events`` (1000)."""
