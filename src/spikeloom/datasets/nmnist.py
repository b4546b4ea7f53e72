"""N-MNIST (Orchard et al. 2015, doi:10.3389/fnins.2015.00437) as a dataset of event frames."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..events import EventArray, read_nmnist_bin
from .base import EventDataset, Part, PathLike, positive_int

__all__ = ["NMNIST"]


class NMNIST(EventDataset):
    """N-MNIST (Orchard et al. 2015): 34×34 ATIS recordings of MNIST digits, 3 saccades each.

    Layout (the published ``Train.zip`` and ``Test.zip``)::

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

    With ``dt_us`` the frames are instead ``T`` windows of ``dt_us`` microseconds starting at
    each recording's first event (events after ``T·dt_us`` are dropped), the frame-width
    setting of the SNN-vs-RNN protocol (He et al. 2020: ``T = 15`` frames of 5 ms). Frames of
    another width (``spikeloom eval RUN_DIR --dataset-arg dt_us=...``) test robustness to dt.

    Args:
        root, split, transform, T, cache_dir, val_fraction, seed, augment_shift:
            see :class:`EventDataset`.
        downsample: spatial factor of the default transform (default 1).
        dt_us: frame width in microseconds (``None``: ``T`` equal bins over the recording).
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
    sensor_size = (34, 34, 2)
    classes = tuple(str(d) for d in range(10))

    def __init__(
        self, root: PathLike, split: str = "train", *, downsample: int = 1,
        dt_us: int | None = None, **kwargs: Any
    ) -> None:
        self.downsample = positive_int("downsample", downsample)
        self.dt_us = positive_int("dt_us", dt_us, optional=True)
        super().__init__(root, split, **kwargs)

    def _list_part(self, part: str) -> Part:
        sub = "Train" if part == "train" else "Test"
        folder = self.root / sub
        if not folder.is_dir():
            raise self._missing(f"folder ROOT/{sub} does not exist")
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
            raise self._missing(f"ROOT/{sub} holds no <digit>/*.bin files")
        return Part(samples, np.asarray(labels, dtype=np.int64), ids)

    def _read(self, sample: Path) -> EventArray:
        return read_nmnist_bin(sample)
