"""DVS128 Gesture (Amir et al., CVPR 2017) as a dataset of event frames."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..events import EventArray, read_aedat31, read_gesture_labels, sort_by_time
from .base import EventDataset, Part, PathLike, fmt_size, positive_int

__all__ = ["DVSGesture", "GESTURE_CLASSES", "read_dvs_gesture"]


def read_dvs_gesture(
    aedat_path: PathLike,
    labels_csv: PathLike,
    strict: bool = True,
    *,
    relative_time: bool = False,
    sensor_size: Sequence[int] | None = (128, 128, 2),
) -> list[tuple[EventArray, int]]:
    """One DVS128 Gesture recording (Amir et al. 2017) cut into its labelled gestures.

    Dataset convention (not stored in the recording, which is one unlabelled stream: that is
    what :func:`~spikeloom.events.read_aedat31` and :func:`~spikeloom.events.read_events`
    return): gesture ``k`` is row ``k`` of the CSV (:func:`~spikeloom.events.read_gesture_labels`),
    the events with ``start <= t < end`` of the recording sorted by time (two binary searches),
    and its label is the **0-based** ``class - 1`` (0 = hand clap ... 10 = other gestures).
    :class:`DVSGesture` builds its samples with this function; it is also importable as
    ``spikeloom.events.read_dvs_gesture``.

    Args:
        aedat_path: the AEDAT 3.1 recording.
        labels_csv: its ``*_labels.csv``.
        strict: see :func:`~spikeloom.events.read_aedat31`.
        relative_time: subtract each gesture's ``start`` (µs) from its timestamps.
        sensor_size: default (128, 128, 2); ``None`` takes it from the header.

    Returns:
        ``[(events, label), ...]`` in CSV order: ``events`` an EventArray (a copy, timestamps
        absolute unless ``relative_time``), ``label`` in 0..10.
    """
    events = sort_by_time(read_aedat31(aedat_path, strict, sensor_size=sensor_size))
    rows = read_gesture_labels(labels_csv)
    lo = np.searchsorted(events["t"], rows["start"], side="left")
    hi = np.searchsorted(events["t"], rows["end"], side="left")
    out: list[tuple[EventArray, int]] = []
    for (label, start, _end), a, b in zip(rows.tolist(), lo.tolist(), hi.tolist()):
        seg = events[a:b].copy()
        if relative_time:
            seg["t"] -= start
        out.append((seg, int(label) - 1))
    return out


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
    (:func:`read_dvs_gesture`); label = CSV class − 1 (0 = hand clap ...
    10 = other gestures). Samples are ordered by the list file, then CSV row. The train/val
    split is stratified by gesture class over samples, so one recording can contribute to both
    (validation is then slightly optimistic compared with an unseen-subject test).

    Default frames (TA-SNN, Yao et al. 2021, arXiv:2107.11711): spatial downsampling 128→32
    by integer division of the coordinates (``downsample=4``), then ``T`` (default 60)
    windows of ``dt_us`` (default 1000 µs = 1 ms) starting at the sample's first event,
    counts, ``[T, 2, 32, 32]``; later events are not used (the "first T·dt" protocol). The
    (dt, T) behind TA-SNN's headline number is not confirmed by the paper: both are options.

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
        self.dt_us = positive_int("dt_us", dt_us)
        self.downsample = positive_int("downsample", downsample)
        self._memo: tuple[str, list[EventArray]] | None = None
        super().__init__(root, split, **kwargs)

    def _list_part(self, part: str) -> Part:
        list_name = "trials_to_train.txt" if part == "train" else "trials_to_test.txt"
        list_file = self.root / list_name
        if not list_file.is_file():
            raise self._missing(f"ROOT/{list_name} does not exist")
        names = [ln.strip() for ln in list_file.read_text().splitlines() if ln.strip()]
        missing = []
        for n in names:
            aedat = self.root / n
            csv = self.root / f"{Path(n).stem}_labels.csv"
            for f in (aedat, csv):
                if not f.is_file():
                    missing.append(f"ROOT/{f.name}")
        if missing:
            more = f" and {len(missing) - 6} more" if len(missing) > 6 else ""
            raise self._missing(
                f"{len(missing)} file(s) listed in ROOT/{list_name} are missing: "
                f"{', '.join(missing[:6])}{more}"
            )
        samples, labels, ids = [], [], []
        for n in names:
            aedat = self.root / n
            csv = self.root / f"{Path(n).stem}_labels.csv"
            rows = read_gesture_labels(csv)
            size = fmt_size(aedat)
            for k, (cls, start, end) in enumerate(rows.tolist()):
                samples.append((str(aedat), str(csv), k))
                labels.append(int(cls) - 1)
                ids.append(f"{n}:{size}#{k}:{start}-{end}")
        return Part(samples, np.asarray(labels, dtype=np.int64), ids)

    def _read(self, sample: tuple[str, str, int]) -> EventArray:
        aedat, csv, k = sample
        if self._memo is None or self._memo[0] != aedat:
            # one recording holds ~10 gestures: keep its slices for the next samples
            self._memo = (aedat, [ev for ev, _ in read_dvs_gesture(aedat, csv)])
        return self._memo[1][k].copy()

    def _reader_key(self) -> str:
        return "read_dvs_gesture/absolute-time"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_memo"] = None
        return state
