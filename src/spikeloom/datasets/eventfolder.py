"""Bring your own event data: class sub-folders of event files in any format spikeloom reads.

Two layouts are recognised::

    ROOT/<class>/<file>                 one folder per class; train/val/test are a seeded,
                                        stratified split (test_fraction, val_fraction)
    ROOT/train/<class>/<file>           ``spikeloom convert`` output (and any tree like it):
    ROOT/val/<file>                     ``val`` (if present) is the test split; validation
    ROOT/trainlabel.txt, vallabel.txt   is split off ``train``. Labels come from the label
    ROOT/meta.json                      files (``<path> <label> ...`` lines) when present,
                                        else from the class folders

Files are read with :func:`spikeloom.events.read_events` (N-MNIST ``.bin``, AEDAT, ES-ImageNet
``.npz``, spikeloom's own ``.npz``/``.h5``, ...). Classes are the sub-folder names in natural
order, except that folders all named ``class<k>`` (``spikeloom convert``) get label ``k``.
The sensor size comes from ``sensor_size=``, else from ``meta.json`` (written by
``spikeloom convert``), else from one scan of the part's files (largest x, y and polarity
seen), which is said in a warning because it reads every file once.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..events import EventArray, read_events
from ..events.core import as_events, check_sensor_size
from .base import EventDataset, Part, PathLike, natural_key, positive_int
from .splits import stratified_split

__all__ = ["EventFolder"]

_CLASS_K = re.compile(r"^class(\d+)$")


class EventFolder(EventDataset):
    """A dataset of event files sorted into class folders (see the module docstring).

    Default frames: ``T`` (default 8) equal time bins over each recording, per-pixel counts,
    ``[T, P, H, W]`` from the sensor size divided by ``downsample``.

    Args:
        root, split, transform, T, cache_dir, val_fraction, seed, augment_shift:
            see :class:`~spikeloom.datasets.base.EventDataset`.
        downsample: spatial factor of the default transform (default 1).
        test_fraction: share of the files used for testing when the folder has no ``val``
            part (a fixed split, seed 0, independent of ``seed``).
        sensor_size: ``(W, H, P)`` of the recordings; default from ``meta.json`` or a scan.
    """

    name = "eventfolder"
    title = "event folder"
    source = "your own recordings, or the output of `spikeloom convert`"
    layout = (
        "ROOT/<class>/<event file>   (one folder per class; any format read_events reads)",
        "or ROOT/train/<class>/... and ROOT/val/<class>/... (spikeloom convert output)",
    )
    default_T = 8

    def __init__(self, root: PathLike, split: str = "train", *, downsample: int = 1,
                 test_fraction: float = 0.2, sensor_size: Any = None, **kwargs: Any) -> None:
        self.downsample = positive_int("downsample", downsample)
        if not 0.0 < float(test_fraction) < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
        self.test_fraction = float(test_fraction)
        base = Path(root).expanduser()
        self._tree = (base / "train").is_dir()
        self.official_test = self._tree and (base / "val").is_dir()
        self._sensor = None if sensor_size is None else check_sensor_size(sensor_size)
        super().__init__(root, split, **kwargs)

    @property  # type: ignore[override]
    def sensor_size(self) -> tuple[int, int, int]:
        """``(W, H, P)``: given, from ``meta.json``, or found by one scan (then remembered)."""
        if self._sensor is None:
            self._sensor = self._meta_size() or self._scan_size()
        return self._sensor

    def _reader_key(self) -> str:
        return f"sensor:{'x'.join(map(str, self.sensor_size))}"

    # ------------------------------------------------------------------ listing

    def _folder(self, part: str) -> Path:
        if not self._tree:
            return self.root
        return self.root / ("val" if part == "test" else "train")

    def _class_dirs(self, folder: Path) -> list[Path]:
        return sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")),
                      key=lambda d: natural_key(d.name))

    def _label_map(self) -> dict[str, int]:
        names = [d.name for d in self._class_dirs(self._folder("train"))]
        ks = [_CLASS_K.match(n) for n in names]
        if names and all(ks):
            top = max(int(m.group(1)) for m in ks)
            self.classes = tuple(f"class{k}" for k in range(top + 1))
        else:
            self.classes = tuple(names)
        return {n: i for i, n in enumerate(self.classes)}

    def _label_file(self, part: str) -> Path | None:
        if not self._tree:
            return None
        path = self.root / f"{'val' if part == 'test' else 'train'}label.txt"
        return path if path.is_file() else None

    def _from_label_file(self, folder: Path, path: Path) -> Part:
        samples, labels, ids = [], [], []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 2 or not fields[1].isdigit():
                raise ValueError(f"{path}:{n}: expected '<path> <label> ...', got {line!r}")
            f = folder / fields[0]
            samples.append(f)
            labels.append(int(fields[1]))
            ids.append(f"{f.relative_to(self.root)}:{f.stat().st_size if f.exists() else -1}")
        train_file = self._label_file("train")
        top = max(int(ln.split()[1]) for ln in train_file.read_text().splitlines() if ln.strip())
        self.classes = tuple(f"class{k}" for k in range(max(top, max(labels, default=0)) + 1))
        return Part(samples, np.asarray(labels, dtype=np.int64), ids)

    def _list_part(self, part: str) -> Part:
        folder = self._folder(part)
        if not folder.is_dir():
            raise self._missing(f"{folder} does not exist")
        label_file = self._label_file(part)
        if label_file is not None and self._label_file("train") is not None:
            return self._from_label_file(folder, label_file)
        labels_of = self._label_map()
        samples, labels, ids = [], [], []
        for d in self._class_dirs(folder):
            if d.name not in labels_of:
                raise ValueError(f"{d}: class folder {d.name!r} is not among the training "
                                 f"classes {list(self.classes)}")
            files = sorted((f for f in d.iterdir() if f.is_file() and not f.name.startswith(".")),
                           key=lambda f: natural_key(f.name))
            for f in files:
                samples.append(f)
                labels.append(labels_of[d.name])
                ids.append(f"{f.relative_to(self.root)}:{f.stat().st_size}")
        if not samples:
            raise self._missing(f"{folder} holds no <class>/<file> event files")
        return Part(samples, np.asarray(labels, dtype=np.int64), ids)

    def _test_positions(self, labels: np.ndarray) -> np.ndarray:
        _, test = stratified_split(labels, self.test_fraction, 0)
        return test

    # ------------------------------------------------------------------ sensor size

    def _meta_size(self) -> tuple[int, int, int] | None:
        path = self.root / "meta.json"
        if not path.is_file():
            return None
        size = json.loads(path.read_text()).get("sensor_size")
        return None if size is None else check_sensor_size(size)

    def _scan_size(self) -> tuple[int, int, int]:
        warnings.warn(
            f"{self.root}: no sensor_size= and no meta.json; scanning the {len(self._samples)} "
            f"files of this split once to find it (pass sensor_size=(W, H, P) to skip)",
            UserWarning, stacklevel=3,
        )
        w = h = p = 1
        for f in self._samples:
            ev = np.asarray(read_events(f))
            if len(ev):
                w, h = max(w, int(ev["x"].max()) + 1), max(h, int(ev["y"].max()) + 1)
                p = max(p, int(ev["p"].max()) + 1)
        return w, h, max(p, 2)

    def _read(self, sample: Path) -> EventArray:
        return as_events(np.asarray(read_events(sample)), self.sensor_size)
