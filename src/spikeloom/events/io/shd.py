"""Spiking Heidelberg Digits (SHD) ``.h5`` files.

SHD (Cramer, Stradmann, Schemmel and Zenke, "The Heidelberg Spiking Data Sets for the
Systematic Evaluation of Spiking Neural Networks", IEEE TNNLS 2020, arXiv:1910.07407) holds
spoken digits converted to spikes of 700 cochlear channels; one file holds many samples.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import EventFileError
from ..core import EventArray, SensorSize, check_sensor_size, make_events
from ._common import PathLike, _h5_probe
from ._hdf5 import VlenColumn, h5_dataset, h5_errors, h5_open
from .formats import register_format

__all__ = ["SHD_SENSOR", "SHDFile", "read_shd"]

SHD_SENSOR: SensorSize = (700, 1, 1)
_MAX_SECONDS = 1e9  # spike times beyond this (~31 years) are damage; µs must fit int64


class SHDFile:
    """Index-based access to an SHD ``.h5`` file (Cramer et al. 2020), loading one sample at a time.

    Layout: ``spikes/times`` (variable-length float arrays, seconds), ``spikes/units``
    (variable-length int arrays, channel 0..699), ``labels`` ``[K]`` (0..19).

    ``shd[i]`` returns ``(events, label)``: ``events`` is an EventArray with ``x = unit``,
    ``y = 0``, ``p = 0``, ``t = round(time * 1e6)`` µs (int64), sensor ``(700, 1, 1)``; events
    keep the file order. The HDF5 file is opened on first access in each process (safe with
    ``DataLoader`` workers) and can be closed with :meth:`close` or a ``with`` block.
    """

    def __init__(self, path: PathLike, *, n_channels: int = 700) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"SHD file {self.path} does not exist")
        self.sensor_size: SensorSize = check_sensor_size((n_channels, 1, 1))
        self._h5: Any = None
        self._pid: int | None = None
        import h5py

        f = self._file()
        with h5_errors(self.path, "cannot read the structure"):
            missing = [k for k in ("spikes/times", "spikes/units", "labels") if k not in f]
        if missing:
            raise EventFileError(self.path, None, f"missing dataset {missing} (not an SHD file?)")
        times = h5_dataset(self.path, f, "spikes/times", ndim=1, kinds="f", vlen=True)
        units = h5_dataset(self.path, f, "spikes/units", ndim=1, kinds="iu", vlen=True)
        labels = h5_dataset(self.path, f, "labels", ndim=1, kinds="iu")
        self._times = VlenColumn(self.path, f, "spikes/times", h5py.check_vlen_dtype(times.dtype))
        self._units = VlenColumn(self.path, f, "spikes/units", h5py.check_vlen_dtype(units.dtype))
        n_t, n_u, n_l = len(times), len(units), len(labels)
        if not n_t == n_u == n_l:
            raise EventFileError(
                self.path,
                None,
                f"spikes/times ({n_t}), spikes/units ({n_u}) and labels ({n_l}) differ in length",
            )
        self._len = n_l

    def _file(self) -> Any:
        if self._h5 is None or self._pid != os.getpid():
            self._h5 = h5_open(self.path)
            self._pid = os.getpid()
        return self._h5

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> tuple[EventArray, int]:
        i = int(index)
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError(f"sample {index} out of range for {self._len} samples")
        f = self._file()
        times = self._times.read(f, i).astype(np.float64)
        units = self._units.read(f, i)
        with h5_errors(self.path, f"cannot read sample {i}"):
            label = int(f["labels"][i])
        if times.shape != units.shape:
            raise EventFileError(
                self.path,
                None,
                f"sample {i}: {times.size} spike times but {units.size} units",
            )
        if times.size and (
            not np.all(np.isfinite(times)) or times.min() < 0 or times.max() > _MAX_SECONDS
        ):
            raise EventFileError(
                self.path,
                None,
                f"sample {i}: spike times must be finite, >= 0 and <= {_MAX_SECONDS:g} s "
                f"(got {times.min()}..{times.max()})",
            )
        if units.size and (units.min() < 0 or units.max() >= self.sensor_size[0]):
            raise EventFileError(
                self.path,
                None,
                f"sample {i}: unit ids {units.min()}..{units.max()} outside 0.."
                f"{self.sensor_size[0] - 1}",
            )
        t = np.rint(times * 1e6).astype(np.int64)
        zeros = np.zeros(t.size, dtype=np.uint8)
        return make_events(units, zeros, zeros, t, self.sensor_size, validate=False), label

    def __iter__(self) -> Iterator[tuple[EventArray, int]]:
        for i in range(self._len):
            yield self[i]

    @property
    def labels(self) -> np.ndarray:
        """All labels ``[K]`` (int64)."""
        f = self._file()
        with h5_errors(self.path, "cannot read the labels"):
            return np.asarray(f["labels"][:], dtype=np.int64)

    def close(self) -> None:
        """Close the HDF5 handle (reopened automatically on the next access)."""
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def __enter__(self) -> SHDFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_h5"] = None
        state["_pid"] = None
        return state


def read_shd(path: PathLike, *, n_channels: int = 700) -> SHDFile:
    """Open an SHD ``.h5`` file for indexed access; see :class:`SHDFile`.

    Returns:
        An :class:`SHDFile` of ``len`` K samples; ``shd[i]`` is ``(EventArray [N_i], label)``.
    """
    return SHDFile(path, n_channels=n_channels)


def _is_shd(path: Path, head: bytes) -> bool:
    return _h5_probe(path, head, lambda f: "spikes/times" in f and "spikes/units" in f)


register_format(
    "shd",
    read_shd,
    suffixes=(".h5", ".hdf5"),
    sniff=_is_shd,
    magic_text="HDF5 with 'spikes/times', 'spikes/units'",
    description="Spiking Heidelberg Digits (one file, many samples: returns an SHDFile)",
    hint="read_shd(path, n_channels=700)",
)
