"""N-Caltech101 (Orchard et al. 2015, doi:10.3389/fnins.2015.00437) as a dataset of frames."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..events import EventArray, read_ncaltech101_bin
from .base import EventDataset, Part, PathLike, fmt_size, natural_key, positive_int
from .splits import stratified_split

__all__ = ["NCaltech101"]


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
    sensor_size = (240, 180, 2)
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
        self.downsample = positive_int("downsample", downsample)
        self.test_fraction = float(test_fraction)
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
        self.test_seed = int(test_seed)
        self.exclude = tuple(exclude)
        super().__init__(root, split, **kwargs)

    def _folder(self) -> Path:
        sub = self.root / "Caltech101"
        return sub if sub.is_dir() else self.root

    def _list_part(self, part: str) -> Part:
        folder = self._folder()
        cats = sorted(
            p.name for p in folder.iterdir() if p.is_dir() and p.name not in self.exclude
            and any(p.glob("*.bin"))
        )
        if not cats:
            raise self._missing(f"no <category>/*.bin under {folder}")
        self.classes = tuple(cats)
        samples, labels, ids = [], [], []
        for label, c in enumerate(cats):
            for f in sorted((folder / c).glob("*.bin"), key=lambda p: natural_key(p.name)):
                samples.append(f)
                labels.append(label)
                ids.append(f"{c}/{f.name}:{fmt_size(f)}")
        return Part(samples, np.asarray(labels, dtype=np.int64), ids)

    def _test_positions(self, labels: np.ndarray) -> np.ndarray:
        _, test = stratified_split(labels, self.test_fraction, self.test_seed)
        return test

    def _read(self, sample: Path) -> EventArray:
        return read_ncaltech101_bin(sample)
