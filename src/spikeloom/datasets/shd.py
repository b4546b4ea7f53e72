"""Spiking Heidelberg Digits (Cramer et al. 2020, arXiv:1910.07407) as a dataset of frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from torch import Tensor

from ..events import EventArray, read_shd
from .base import EventDataset, Part, PathLike, fmt_size, positive_int
from .spec import DataSpec

__all__ = ["SHD"]


class SHD(EventDataset):
    """Spiking Heidelberg Digits (Cramer et al. 2020): spoken digits 0-9 in English and German
    as spikes of 700 cochlea-model channels.

    Layout::

        ROOT/shd_train.h5     8,156 samples   (gunzip the downloaded shd_train.h5.gz)
        ROOT/shd_test.h5      2,264 samples

    Each file (Cramer et al. 2020, arXiv:1910.07407) holds ``spikes/times``
    (variable-length float seconds),
    ``spikes/units`` (channel ids 0..699) and ``labels`` (0..19); events come from
    :class:`~spikeloom.events.io.SHDFile` (``x`` = channel, ``t`` in µs, sensor
    ``(700, 1, 1)``). Class names come from ``extra/keys`` when present.

    Default frames: ``T`` (default 100) windows of ``dt_us`` (default 10,000 µs) starting at
    ``t = 0`` (the recording start, not the first spike), i.e. the first second, per-channel
    spike counts ``[T, 1, 1, 700]`` (``output="frames"``, default) or ``[T, 700]``
    (``output="sequence"``, spec kind ``"sequence"``). TA-SNN's configuration (Yao et al.
    2021) is ``T=10``, ``dt_us=4000``.

    Not tested on the real files (none available): tested with a small synthetic ``.h5`` in the
    documented layout.
    """

    name = "shd"
    title = "SHD"
    source = (
        "https://zenkelab.org/resources/spiking-heidelberg-datasets-shd/ (Cramer et al., "
        "IEEE TNNLS 2022, doi:10.1109/TNNLS.2020.3044364)"
    )
    layout = (
        "ROOT/shd_train.h5   (training set; gunzip shd_train.h5.gz)",
        "ROOT/shd_test.h5    (test set; gunzip shd_test.h5.gz)",
    )
    default_T = 100
    frames_start = 0  # windows from the recording start, not the first spike
    sensor_size = (700, 1, 1)
    classes = tuple(str(i) for i in range(20))

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        *,
        dt_us: int = 10_000,
        output: Literal["frames", "sequence"] = "frames",
        **kwargs: Any,
    ) -> None:
        self.dt_us = positive_int("dt_us", dt_us)
        if output not in ("frames", "sequence"):
            raise ValueError(f"output must be 'frames' or 'sequence', got {output!r}")
        self.output = output
        self._files: dict[str, Any] = {}
        super().__init__(root, split, **kwargs)

    @property
    def spec(self) -> DataSpec:
        """``frames`` ``[T, 1, 1, 700]`` (default) or ``sequence`` ``[T, 700]``."""
        frames = super().spec
        if self.output == "frames":
            return frames
        return DataSpec("sequence", frames.num_classes, T=frames.T, channels=700, features=700)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        x, y = super().__getitem__(i)
        if self.output == "sequence":
            x = x.reshape(x.shape[0], -1)
        return x, y

    def _file(self, part: str) -> Any:
        if part not in self._files:
            self._files[part] = read_shd(self.root / f"shd_{part}.h5")
        return self._files[part]

    def _list_part(self, part: str) -> Part:
        name = f"shd_{part}.h5"
        path = self.root / name
        if not path.is_file():
            hint = (
                f"ROOT/{name} does not exist (ROOT/{name}.gz is there: gunzip it first)"
                if (self.root / f"{name}.gz").is_file()
                else f"ROOT/{name} does not exist"
            )
            raise self._missing(hint)
        shd = self._file(part)
        labels = shd.labels
        import h5py

        with h5py.File(path, "r") as f:
            raw_keys = f["extra/keys"][:] if "extra/keys" in f else []
        keys = [k.decode() if isinstance(k, bytes) else str(k) for k in raw_keys]
        if keys and len(keys) >= int(labels.max(initial=0)) + 1:
            self.classes = tuple(keys)
        size = fmt_size(path)
        ids = [f"{name}:{size}#{i}" for i in range(len(shd))]
        return Part([(part, i) for i in range(len(shd))], labels, ids)

    def _source_files(self, sample: tuple[str, int]) -> tuple[Path, ...]:
        """The part's ``.h5`` file (every sample of a part is read from it)."""
        return (self.root / f"shd_{sample[0]}.h5",)

    def _read(self, sample: tuple[str, int]) -> EventArray:
        part, i = sample
        return self._file(part)[i][0]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_files"] = {}
        return state
