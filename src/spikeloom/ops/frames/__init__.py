"""The frame-counting operator: events and per-frame index ranges -> per-pixel counts.

This is the kernel under :func:`spikeloom.events.frames.to_frame`. Given a structured event
array ``[N]``, a function ``ranges(t) -> (start [J], stop [J])`` giving the events of each frame
(a slicer of :mod:`spikeloom.events.slicing`) and the sensor size ``(W, H, P)``, it returns the
counts ``[J, P*H*W]`` in the smallest unsigned dtype that cannot overflow, after validating the
events against the sensor (an error names the first bad event). Time slicing sorts unsorted
input first (stable). The full contract is
:func:`~spikeloom.ops.frames.reference.frames_reference`.

Backends (``SPIKELOOM_BACKEND_FRAMES=c|numpy|reference`` forces one):

* ``c`` — one pass over the packed 13-byte records (:mod:`.c_backend`, the optional extension
  ``_speedups``); the default when it was built;
* ``numpy`` — chunked index pass and ``bincount`` (:mod:`.numpy_backend`); the fallback;
* ``reference`` — validate, sort, slice, ``np.add.at`` (:mod:`.reference`).

``SPIKELOOM_NO_SPEEDUPS=1`` (any value but empty or ``0``) is kept as an alias for
``SPIKELOOM_BACKEND_FRAMES=numpy`` when ``SPIKELOOM_BACKEND_FRAMES`` is not set. The variables
are read at every call. All backends give identical frames, dtypes and error messages.
"""

from __future__ import annotations

import os

import numpy as np

from ...errors import BackendError
from .._dispatch import Backend, env_var, get_backend, register_backend, select
from ._shared import Ranges, SensorSize
from .c_backend import frames_c, unavailable_reason
from .numpy_backend import frames_numpy
from .reference import frames_reference

__all__ = ["OP", "NO_SPEEDUPS_ENV", "count_frames", "select_backend", "speedups_enabled"]

OP = "frames"
NO_SPEEDUPS_ENV = "SPIKELOOM_NO_SPEEDUPS"

register_backend(OP, "reference", frames_reference, devices=("cpu",), priority=0)
register_backend(OP, "numpy", frames_numpy, devices=("cpu",), priority=10)
register_backend(OP, "c", frames_c, devices=("cpu",), priority=20,
                 is_available=unavailable_reason)


def select_backend() -> Backend:
    """The backend :func:`count_frames` uses now (see the module docstring for the variables).

    Raises:
        BackendError: ``SPIKELOOM_BACKEND_FRAMES`` names an unknown or unavailable backend.
    """
    if not os.environ.get(env_var(OP), "").strip() and os.environ.get(
        NO_SPEEDUPS_ENV, ""
    ) not in ("", "0"):
        return get_backend(OP, "numpy")
    return select(OP, "cpu")


def speedups_enabled() -> bool:
    """Whether :func:`count_frames` (hence ``to_frame``) uses the C backend now."""
    try:
        return select_backend().name == "c"
    except BackendError:
        return False


def count_frames(
    events: np.ndarray,
    ranges: Ranges,
    sensor_size: SensorSize,
    *,
    by_time: bool,
    check_all: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Count ``events`` into frames with the selected backend.

    Returns ``(events, start, stop, counts [J, P*H*W])``; see
    :func:`~spikeloom.ops.frames.reference.frames_reference` for the arguments.
    """
    return select_backend().fn(events, ranges, sensor_size, by_time=by_time, check_all=check_all)
