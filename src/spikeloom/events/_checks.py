"""Argument checks shared by the event functions, slicers, frame builders and transforms.

Private: the public modules (:mod:`.functional`, :mod:`.slicing`, :mod:`.frames`,
:mod:`.transforms`) validate their inputs with these helpers so that every function raises the
same, actionable message for the same mistake.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..ops.frames._shared import is_sorted as is_sorted  # re-exported
from .core import EVENT_DTYPE, EventArray, SensorSize, check_sensor_size

RngLike = np.random.Generator | np.random.SeedSequence | int | None
"""What the ``rng`` argument of random transforms accepts: a Generator, a seed or ``None``."""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def check_events(events: Any) -> np.ndarray:
    """Return ``events`` if it is a 1-D array ``[N]`` of EVENT_DTYPE, else raise a clear error."""
    if not isinstance(events, np.ndarray):
        raise TypeError(
            f"events must be a numpy structured array of EVENT_DTYPE, got "
            f"{type(events).__name__}; build one with spikeloom.events.core.make_events"
        )
    if events.dtype != EVENT_DTYPE:
        raise TypeError(
            f"events must have dtype EVENT_DTYPE {EVENT_DTYPE}, got {events.dtype}; convert "
            f"with spikeloom.events.core.as_events(arr, sensor_size)"
        )
    if events.ndim != 1:
        raise ValueError(f"events must be 1-D [N], got shape {events.shape}")
    return events


def known_sensor_size(events: np.ndarray, sensor_size: Any) -> SensorSize | None:
    """Sensor size ``(W, H, P)`` from the argument and/or the EventArray; None if neither."""
    own = getattr(events, "sensor_size", None)
    own = check_sensor_size(own) if own is not None else None
    if sensor_size is None:
        return own
    given = check_sensor_size(sensor_size)
    if own is not None and own != given:
        raise ValueError(
            f"sensor_size={given} contradicts the EventArray's sensor_size={own}; drop the "
            f"argument or fix the pipeline (e.g. a Downsample/Crop before this transform)"
        )
    return given


def require_sensor_size(events: np.ndarray, sensor_size: Any, what: str) -> SensorSize:
    """Like :func:`known_sensor_size`, but raise when the size is unknown."""
    size = known_sensor_size(events, sensor_size)
    if size is None:
        raise ValueError(
            f"{what} needs the sensor size: pass sensor_size=(W, H, P) or use an EventArray"
        )
    return size


def opt_sensor_size(value: Any) -> SensorSize | None:
    """``None`` or a validated ``(W, H, P)``."""
    return None if value is None else check_sensor_size(value)


def as_event_output(arr: np.ndarray, sensor_size: SensorSize | None) -> np.ndarray:
    """``arr`` as an EventArray carrying ``sensor_size`` (a plain array if it is unknown)."""
    if sensor_size is None:
        return arr.view(np.ndarray) if isinstance(arr, EventArray) else arr
    out = arr.view(EventArray)
    out.sensor_size = sensor_size
    return out


def int_param(value: Any, name: str, minimum: int) -> int:
    """``value`` as a Python int ``>= minimum`` (bools and floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    if int(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def prob_param(value: Any, name: str) -> float:
    """``value`` as a float in ``[0, 1]``."""
    v = float(value)
    if not 0.0 <= v <= 1.0 or math.isnan(v):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return v


def pair_param(value: Any, name: str, minimum: int) -> tuple[int, int]:
    """A pair of ints, each ``>= minimum``."""
    try:
        items = tuple(value)
    except TypeError:
        items = ()
    if len(items) != 2:
        raise ValueError(f"{name} must be a pair of ints, got {value!r}")
    return int_param(items[0], name, minimum), int_param(items[1], name, minimum)


def crop_size(size: int | Sequence[int]) -> tuple[int, int]:
    """A crop size given as one int (square) or as ``(w, h)``."""
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        return (int_param(size, "size", 1),) * 2
    return pair_param(size, "size", 1)


def as_generator(rng: RngLike) -> np.random.Generator:
    """A numpy Generator from ``rng`` (a fresh OS-entropy one for ``None``)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer, np.random.SeedSequence)):
        return np.random.default_rng(rng)
    raise TypeError(
        f"rng must be a numpy Generator, an int seed, a SeedSequence or None, got {rng!r}"
    )
