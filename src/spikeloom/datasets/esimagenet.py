"""ES-ImageNet (Lin et al. 2021, arXiv:2110.12211) as a dataset of event frames."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..events import EventArray, make_events, read_es_imagenet_npz
from ..events.frames import to_frame
from ..events.transforms import EventTransform, RngLike
from .base import EventDataset, Part, PathLike

__all__ = ["ESImageNet", "ESImageNetToFrame", "centre_es_imagenet"]


def centre_es_imagenet(events: EventArray, h: int, w: int) -> EventArray:
    """Shift the events of a ``(h, w)`` image to the authors' centred canvas.

    The loader of Lin et al. (2021, arXiv:2110.12211) centres each resized image on the
    254-pixel canvas: ``row += (254 - h) // 2``, ``col += (254 - w) // 2``; ``h`` and ``w``
    come from ``trainlabel.txt``/``vallabel.txt`` (the files do not store them). Event order,
    polarity, step ``t`` and the sensor ``(256, 256, 2)`` are kept.
    """
    h, w = int(h), int(w)
    if not (1 <= h <= 254 and 1 <= w <= 254):
        raise ValueError(f"centre=(h, w) must be in 1..254, got {(h, w)}")
    x = events["x"].astype(np.int64) + (254 - w) // 2
    y = events["y"].astype(np.int64) + (254 - h) // 2
    return make_events(x, y, events["p"], events["t"], (256, 256, 2))


@dataclass(frozen=True)
class ESImageNetToFrame(EventTransform):
    """ES-ImageNet events → the authors' frames (Lin et al. 2021, arXiv:2110.12211).

    Input: events of :func:`~spikeloom.events.read_es_imagenet_npz` shifted to the centred
    canvas by :func:`centre_es_imagenet`, ``t`` = ODG step 1..8. Output ``[8, 2, S, S]``
    uint8: frame ``t - 1``, channel = polarity (**1 = ON, 0 = OFF**, the project convention;
    the authors' loader puts ON in channel 0), value 1 where at least one event fell
    (``binary=True``, the authors' loader) or the event count. ``crop=True`` keeps canvas rows
    and columns 16..239 (``S = 224``, the authors' ``[16:240]`` crop); ``False`` keeps the
    256×256 canvas. The counts come from :func:`spikeloom.events.to_frame` (windows of one
    step from step 1), the library's one frame builder.
    """

    crop: bool = True
    binary: bool = True

    def __call__(self, events: np.ndarray, rng: RngLike = None) -> np.ndarray:
        ev = np.asarray(events)
        t = ev["t"].astype(np.int64)
        if t.size and (t.min() < 1 or t.max() > 8):
            raise ValueError(
                f"ES-ImageNet events must have t = ODG step 1..8, got {t.min()}..{t.max()}; "
                f"read them with read_es_imagenet_npz"
            )
        x = ev["x"].astype(np.int64)
        y = ev["y"].astype(np.int64)
        p = ev["p"].astype(np.int64)
        if p.size and p.max() > 1:
            raise ValueError("ES-ImageNet events must have p in {0, 1}")
        size = 256
        if self.crop:
            keep = (x >= 16) & (x < 240) & (y >= 16) & (y < 240)
            x, y, p, t = x[keep] - 16, y[keep] - 16, p[keep], t[keep]
            size = 224
        elif x.size and (x.max() >= 256 or y.max() >= 256):
            raise ValueError("ES-ImageNet events must lie in the 256x256 canvas")
        frame_events = make_events(x, y, p, t, (size, size, 2), validate=False)
        # one frame per ODG step: windows of 1 step from step 1 (the one frame builder)
        counts = to_frame(frame_events, (size, size, 2), time_window=1, start_time=1, n_frames=8)
        if self.binary:
            return (counts > 0).astype(np.uint8)
        return counts.astype(np.uint16 if counts.max(initial=0) > 255 else np.uint8)


class ESImageNet(EventDataset):
    """ES-ImageNet (Lin et al. 2021): ImageNet converted to 8-step ODG events, 1000 classes.

    Layout (Lin et al. 2021; the authors' ``es_imagenet.py`` resolves names the same way)::

        ROOT/trainlabel.txt     "<path> <label 0..999> <h> <w>" per line
        ROOT/vallabel.txt
        ROOT/train/<path>       class{label}/class{label}_{k}.npz  (pos/neg uint8 [n, 3])
        ROOT/val/<path>         ILSVRC2012_val_XXXXXXXX.npz

    ``<path>`` is relative to ``ROOT/train`` (``ROOT/val``) and its extension is replaced by
    ``.npz``. ``"test"`` is the official validation set (``vallabel.txt``); ``"train"``/``"val"``
    split ``trainlabel.txt`` (stratified, seeded). Sample files are only opened when read.

    Frames: :class:`ESImageNetToFrame` (binary, 224×224 crop after the authors' centring by
    ``(h, w)``), ``[8, 2, 224, 224]``; ``T`` must be 8 (the ODG steps). Classes are named by
    their label number (the files hold no synset names). The cache is stored compressed.

    Not tested on real files (none available): tested with a tiny synthetic tree in this
    layout written by :func:`~spikeloom.events.io.write_es_imagenet_npz`.
    """

    name = "esimagenet"
    title = "ES-ImageNet"
    source = (
        "the links in https://github.com/lyh983012/ES-imagenet-master (Lin et al., Front. "
        "Neurosci. 15:726582, 2021, doi:10.3389/fnins.2021.726582)"
    )
    layout = (
        "ROOT/trainlabel.txt and ROOT/vallabel.txt  ('<path> <label> <h> <w>' lines)",
        "ROOT/train/<path>.npz                      (e.g. class0/class0_1.npz)",
        "ROOT/val/<path>.npz                        (e.g. ILSVRC2012_val_00000001.npz)",
    )
    default_T = 8
    cache_compress = True
    sensor_size = (256, 256, 2)
    classes = tuple(str(i) for i in range(1000))

    def __init__(self, root: PathLike, split: str = "train", **kwargs: Any) -> None:
        T = kwargs.get("T")
        if T is not None and int(T) != 8:
            raise ValueError(f"ES-ImageNet has exactly 8 time steps (ODG steps); got T={T}")
        super().__init__(root, split, **kwargs)

    def default_transform(self) -> Callable[..., Any]:
        return ESImageNetToFrame()

    def default_frame_shape(self) -> tuple[int, int, int, int]:
        return (8, 2, 224, 224)

    def _list_part(self, part: str) -> Part:
        label_name, sub = ("trainlabel.txt", "train") if part == "train" else ("vallabel.txt",
                                                                                "val")
        label_file = self.root / label_name
        for f, what in ((label_file, f"ROOT/{label_name}"), (self.root / sub, f"ROOT/{sub}/")):
            if not f.exists():
                raise self._missing(f"{what} does not exist")
        samples, labels, ids = [], [], []
        folder = self.root / sub
        for lineno, line in enumerate(label_file.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 4:
                raise ValueError(
                    f"{label_file}:{lineno}: expected '<path> <label> <h> <w>', got {line!r}"
                )
            rel, label, h, w = parts[0], int(parts[1]), int(parts[2]), int(parts[3])
            if not 0 <= label < 1000:
                raise ValueError(f"{label_file}:{lineno}: label {label} is not in 0..999")
            rel_npz = str(Path(rel).with_suffix(".npz"))
            samples.append((folder / rel_npz, h, w))
            labels.append(label)
            ids.append(f"{sub}/{rel_npz}:{label}:{h}:{w}")
        if samples and not samples[0][0].is_file():
            first = samples[0][0]
            raise self._missing(f"{first} (first entry of ROOT/{label_name}) does not exist")
        return Part(samples, np.asarray(labels, dtype=np.int64), ids)

    def _read(self, sample: tuple[Path, int, int]) -> EventArray:
        path, h, w = sample
        if not Path(path).is_file():
            raise self._missing(f"{path} does not exist")
        return centre_es_imagenet(read_es_imagenet_npz(path), h, w)

    def _reader_key(self) -> str:
        return "read_es_imagenet_npz/centred"
