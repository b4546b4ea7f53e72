"""Compatibility module: the public event datasets, one per file since the refactor.

Import from :mod:`spikeloom.datasets` or the dataset's own module; these names stay importable
from here for older code (``from spikeloom.datasets.neuromorphic import NMNIST``).

* :class:`NMNIST` (:mod:`.nmnist`), :class:`NCaltech101` (:mod:`.ncaltech101`),
  :class:`DVSGesture` (:mod:`.dvsgesture`), :class:`CIFAR10DVS` (:mod:`.cifar10dvs`),
  :class:`SHD` (:mod:`.shd`), :class:`ESImageNet` and :class:`ESImageNetToFrame`
  (:mod:`.esimagenet`);
* :class:`EventDataset`, :func:`shift_frames`, :data:`SPLITS` (:mod:`.base`);
  :func:`stratified_split` (:mod:`.splits`).
"""

from __future__ import annotations

from .base import SPLITS, EventDataset, shift_frames
from .cifar10dvs import CIFAR10_CLASSES, CIFAR10DVS
from .dvsgesture import GESTURE_CLASSES, DVSGesture
from .esimagenet import ESImageNet, ESImageNetToFrame
from .ncaltech101 import NCaltech101
from .nmnist import NMNIST
from .shd import SHD
from .splits import stratified_split

__all__ = [
    "CIFAR10DVS",
    "CIFAR10_CLASSES",
    "DVSGesture",
    "ESImageNet",
    "ESImageNetToFrame",
    "EventDataset",
    "GESTURE_CLASSES",
    "NCaltech101",
    "NMNIST",
    "SHD",
    "SPLITS",
    "shift_frames",
    "stratified_split",
]
