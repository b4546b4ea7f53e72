"""Readers and writers for event files (and the MNIST IDX reader), one module per format.

Every reader returns an :class:`~spikeloom.events.core.EventArray` (fields ``x, y, p, t``,
sensor size ``(W, H, P)``) and decodes with vectorised numpy: the only Python loops run once
per file header line or per packet (AEDAT 3.1/4), never per event.

:func:`read_events` reads a file of any of these formats, choosing the reader by content
(magic bytes) and suffix (see :mod:`spikeloom.events.io.formats`); it returns what the file
holds, without dataset conventions.

Modules:

* :mod:`~spikeloom.events.io.atis`: N-MNIST / N-Caltech101 ``.bin`` (ATIS, 5-byte records):
  :func:`read_nmnist_bin`, :func:`read_ncaltech101_bin`, :func:`write_nmnist_bin`.
* :mod:`~spikeloom.events.io.aedat2`: AEDAT 2.0 (jAER; DVS128, DAVIS):
  :func:`read_aedat2_header`, :func:`read_aedat2`, :func:`write_aedat2`.
* :mod:`~spikeloom.events.io.aedat31`: AEDAT 3.1 (cAER; DVS128 Gesture):
  :func:`read_aedat31`, :func:`write_aedat31`, :func:`read_gesture_labels` (the label CSV).
* :mod:`~spikeloom.events.io.aedat4`: AEDAT 4.0 (DV): :func:`read_aedat4` (packet framing
  parsed here, payloads decoded with the ``aedat`` package).
* :mod:`~spikeloom.events.io.shd`: SHD ``.h5``: :class:`SHDFile`, :func:`read_shd`.
* :mod:`~spikeloom.events.io.es_imagenet`: ES-ImageNet ``.npz``:
  :func:`read_es_imagenet_npz`, :func:`write_es_imagenet_npz`.
* :mod:`~spikeloom.events.io.own`: spikeloom's own ``.npz`` / ``.h5``: :func:`save_events`,
  :func:`load_events`.
* :mod:`~spikeloom.events.io.idx`: MNIST IDX (``.gz`` or raw): :func:`read_idx`.

Dataset conventions are not applied by these readers; they live with the datasets. For
convenience two of them are importable from here (and from :mod:`spikeloom.events`), loaded
from their dataset modules on first access: ``read_cifar10dvs`` (the CIFAR10-DVS axis remap,
:mod:`spikeloom.datasets.cifar10dvs`) and ``read_dvs_gesture`` (DVS128 Gesture recordings cut
into labelled gestures, :mod:`spikeloom.datasets.dvsgesture`). The ES-ImageNet centring is
``read_es_imagenet_npz(path, centre=(h, w))``
(:func:`spikeloom.datasets.esimagenet.centre_es_imagenet`).

Damaged files raise :class:`~spikeloom.errors.EventFileError` (a ``ValueError``) naming the
file, the byte offset and what was expected. Readers with ``strict=False`` instead return the
valid prefix (every event before the first damaged record/packet) and emit an
:class:`~spikeloom.errors.EventFileWarning`. No reader ever returns a partial result silently.

All writers are atomic (:func:`spikeloom.atomic.atomic_write`): they write a temporary file in
the destination directory and move it into place, so a crash never leaves a half-written file
under the final name.
"""

from __future__ import annotations

import importlib
from typing import Any

from ...errors import EventFileError, EventFileWarning
from ._common import PathLike
from .aedat2 import (
    AEDAT2_CAMERAS,
    Aedat2Header,
    read_aedat2,
    read_aedat2_header,
    write_aedat2,
)
from .aedat4 import Aedat4Layout, read_aedat4
from .aedat31 import (
    GESTURE_LABEL_DTYPE,
    read_aedat31,
    read_gesture_labels,
    write_aedat31,
)
from .atis import (
    ATIS_OVERFLOW_INCREMENT,
    ATIS_OVERFLOW_Y,
    NCALTECH101_SENSOR,
    NMNIST_SENSOR,
    read_ncaltech101_bin,
    read_nmnist_bin,
    write_nmnist_bin,
)
from .es_imagenet import ES_IMAGENET_SENSOR, read_es_imagenet_npz, write_es_imagenet_npz
from .formats import FORMATS, detect_format, read_events, register_format
from .idx import read_idx
from .own import load_events, save_events
from .shd import SHD_SENSOR, SHDFile, read_shd

__all__ = [
    "AEDAT2_CAMERAS",
    "ATIS_OVERFLOW_INCREMENT",
    "DATASET_READERS",
    "ATIS_OVERFLOW_Y",
    "ES_IMAGENET_SENSOR",
    "FORMATS",
    "NCALTECH101_SENSOR",
    "NMNIST_SENSOR",
    "SHD_SENSOR",
    "Aedat2Header",
    "Aedat4Layout",
    "EventFileError",
    "EventFileWarning",
    "GESTURE_LABEL_DTYPE",
    "PathLike",
    "SHDFile",
    "detect_format",
    "load_events",
    "read_aedat2",
    "read_aedat2_header",
    "read_aedat31",
    "read_aedat4",
    "read_cifar10dvs",
    "read_dvs_gesture",
    "read_es_imagenet_npz",
    "read_events",
    "read_gesture_labels",
    "read_idx",
    "read_ncaltech101_bin",
    "read_nmnist_bin",
    "read_shd",
    "register_format",
    "save_events",
    "write_aedat2",
    "write_aedat31",
    "write_es_imagenet_npz",
    "write_nmnist_bin",
]

DATASET_READERS = {
    "read_cifar10dvs": "spikeloom.datasets.cifar10dvs",
    "read_dvs_gesture": "spikeloom.datasets.dvsgesture",
}
"""Readers that apply a dataset's convention: name -> the dataset module defining it."""


def __getattr__(name: str) -> Any:
    """The :data:`DATASET_READERS`, imported from their dataset modules on first access.

    Lazy (PEP 562) because :mod:`spikeloom.datasets` imports :mod:`spikeloom.events`.
    """
    if name in DATASET_READERS:
        return getattr(importlib.import_module(DATASET_READERS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
