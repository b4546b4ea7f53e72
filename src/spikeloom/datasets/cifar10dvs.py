"""CIFAR10-DVS (Li et al. 2017, doi:10.3389/fnins.2017.00309) as a dataset of event frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..events import EventArray, make_events, read_aedat2
from .base import EventDataset, Part, PathLike, fmt_size, natural_key, positive_int
from .splits import stratified_split

__all__ = ["CIFAR10DVS", "CIFAR10_CLASSES", "read_cifar10dvs", "spikingjelly_orientation"]


def spikingjelly_orientation(events: EventArray) -> EventArray:
    """Raw DVS128 events of a CIFAR10-DVS file -> upright images with ON = 1.

    The remap of SpikingJelly's CIFAR10-DVS loader (Fang et al. 2021, arXiv:2007.05785):
    ``x = 127 - y_raw``, ``y = 127 - x_raw``, ``p = 1 - p_raw``; ``t`` unchanged. Sensor
    ``(128, 128, 2)``.
    """
    x = events["x"].astype(np.int64)
    y = events["y"].astype(np.int64)
    p = events["p"].astype(np.int64)
    return make_events(127 - y, 127 - x, 1 - p, events["t"], (128, 128, 2))


def read_cifar10dvs(
    path: PathLike,
    orientation: Literal["spikingjelly", "raw"] = "spikingjelly",
    strict: bool = True,
) -> EventArray:
    """One CIFAR10-DVS recording (AEDAT 2.0, DVS128 address layout), sensor (128, 128, 2).

    Dataset convention: with ``orientation="spikingjelly"`` (the default) the events are
    remapped by :func:`spikingjelly_orientation` (upright images, ON = 1). The file itself
    holds the raw DVS128 fields, which is what ``orientation="raw"``,
    :func:`~spikeloom.events.read_aedat2` and :func:`~spikeloom.events.read_events` return.
    :class:`CIFAR10DVS` reads its samples with this function; it is also importable as
    ``spikeloom.events.read_cifar10dvs``.

    Args:
        path: the ``.aedat`` file.
        orientation: ``"spikingjelly"`` or ``"raw"``.
        strict: see :func:`~spikeloom.events.read_aedat2`.

    Not tested on a real CIFAR10-DVS file (none available); tested on synthetic AEDAT 2.0 bytes.
    """
    if orientation not in ("spikingjelly", "raw"):
        raise ValueError(f"orientation must be 'spikingjelly' or 'raw', got {orientation!r}")
    ev = read_aedat2(path, camera="dvs128", strict=strict)
    return ev if orientation == "raw" else spikingjelly_orientation(ev)


CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)


class CIFAR10DVS(EventDataset):
    """CIFAR10-DVS (Li et al. 2017): 10 × 1000 DVS128 recordings of moving CIFAR-10 images.

    Layout (the unpacked per-class archives)::

        ROOT/<class>/cifar10_<class>_<k>.aedat    class in airplane, automobile, bird, cat,
                                                  deer, dog, frog, horse, ship, truck

    Files of a class are ordered by their number ``k`` (natural order). Events are read with
    :func:`read_cifar10dvs`: the raw DVS128 fields (:func:`~spikeloom.events.read_aedat2`)
    and, with ``orientation="spikingjelly"`` (default), remapped by
    :func:`spikingjelly_orientation` (upright images, ON = 1).

    No official split exists. ``split_rule="last100"`` (default; the convention of PLIF,
    Fang et al. 2021, arXiv:2007.05785, and TA-SNN, Yao et al. 2021, arXiv:2107.11711):
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
        self.test_per_class = positive_int("test_per_class", test_per_class)
        self.test_fraction = float(test_fraction)
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
        self.test_seed = int(test_seed)
        self.dt_us = positive_int("dt_us", dt_us, optional=True)
        self.downsample = positive_int("downsample", downsample)
        self.orientation = orientation
        super().__init__(root, split, **kwargs)

    def _list_part(self, part: str) -> Part:
        missing = [c for c in self.classes if not (self.root / c).is_dir()]
        if missing:
            folders = ", ".join("ROOT/" + m for m in missing)
            raise self._missing(f"class folder(s) {folders} do not exist")
        samples, labels, ids = [], [], []
        for label, c in enumerate(self.classes):
            files = sorted((self.root / c).glob("*.aedat"), key=lambda p: natural_key(p.name))
            if self.split_rule == "last100" and len(files) <= self.test_per_class:
                raise ValueError(
                    f"{self.title}: ROOT/{c} has {len(files)} recordings, but split_rule="
                    f"'last100' keeps the last {self.test_per_class} for testing; the full "
                    f"dataset has 1000 per class (use test_per_class= or split_rule='seeded')"
                )
            for f in files:
                samples.append(f)
                labels.append(label)
                ids.append(f"{c}/{f.name}:{fmt_size(f)}")
        return Part(samples, np.asarray(labels, dtype=np.int64), ids)

    def _test_positions(self, labels: np.ndarray) -> np.ndarray:
        if self.split_rule == "seeded":
            return stratified_split(labels, self.test_fraction, self.test_seed)[1]
        out = []
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)  # already in file-number order
            out.append(members[-self.test_per_class :])
        return np.concatenate(out)

    def _read(self, sample: Path) -> EventArray:
        return read_cifar10dvs(sample, self.orientation)

    def _reader_key(self) -> str:
        return f"read_cifar10dvs/{self.orientation}"
