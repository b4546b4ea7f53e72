"""Event streams: the event-array type, file readers/writers, transforms and ODG conversion.

* :mod:`spikeloom.events.core` — :class:`EventArray` (structured ``x, y, p, t`` + sensor size).
* :mod:`spikeloom.events.io` — readers/writers for N-MNIST/N-Caltech101 ``.bin``, AEDAT 2/3.1/4,
  SHD ``.h5``, ES-ImageNet ``.npz`` and spikeloom's own ``.npz/.h5``; :func:`read_events` picks
  the reader of any of them. They return what the file holds; the dataset conventions live in
  :mod:`spikeloom.datasets` (``read_cifar10dvs`` and ``read_dvs_gesture`` are importable from
  here too).
* :mod:`spikeloom.events.slicing` — slicers (by time, time bins, event count, event bins).
* :mod:`spikeloom.events.frames` — events to count frames (:func:`to_frame`) and voxel grids.
* :mod:`spikeloom.events.functional` — event functions (denoise, downsample, crops, flips, ...).
* :mod:`spikeloom.events.transforms` — the same as frozen dataclass transforms, ``Compose``,
  ``RandomApply``.
* :mod:`spikeloom.events.odg` — ODG conversion of images (ES-ImageNet) and Edge-Integral.
"""

from . import io as _io
from .core import (
    EVENT_DTYPE,
    TENSOR_COLUMNS,
    EventArray,
    SensorSize,
    as_events,
    check_sensor_size,
    concatenate,
    from_tensor,
    make_events,
    sort_by_time,
    to_tensor,
)
from .io import (
    EventFileError,
    EventFileWarning,
    SHDFile,
    load_events,
    read_aedat2,
    read_aedat2_header,
    read_aedat4,
    read_aedat31,
    read_es_imagenet_npz,
    read_events,
    read_gesture_labels,
    read_idx,
    read_ncaltech101_bin,
    read_nmnist_bin,
    read_shd,
    save_events,
    write_aedat2,
    write_aedat31,
    write_es_imagenet_npz,
    write_nmnist_bin,
)
from .odg import (
    ES_IMAGENET,
    ES_IMAGENET_TRAJECTORY,
    ESImageNetGeometry,
    ODGResult,
    convert_image,
    edge_integral,
    odg,
    odg_batch,
    odg_frames,
    resize_longer_side,
    value_channel,
)
from .slicing import SliceByEventBins, SliceByEventCount, SliceByTime, SliceByTimeBins
from .transforms import Compose, RandomApply, ToFrame, ToVoxelGrid, to_frame, to_voxel_grid

__all__ = [
    "ES_IMAGENET_TRAJECTORY", "ODGResult", "convert_image", "edge_integral", "odg", "odg_batch",
    "odg_frames", "resize_longer_side", "value_channel",
    "ES_IMAGENET", "ESImageNetGeometry",
    "Compose", "RandomApply", "ToFrame", "ToVoxelGrid", "to_frame", "to_voxel_grid",
    "SliceByEventBins", "SliceByEventCount", "SliceByTime", "SliceByTimeBins",
    "EVENT_DTYPE", "TENSOR_COLUMNS", "EventArray", "SensorSize", "as_events", "check_sensor_size",
    "concatenate", "from_tensor", "make_events", "sort_by_time", "to_tensor",
    "EventFileError", "EventFileWarning", "SHDFile", "load_events", "read_aedat2",
    "read_aedat2_header", "read_aedat4", "read_aedat31", "read_cifar10dvs", "read_dvs_gesture",
    "read_es_imagenet_npz", "read_gesture_labels", "read_idx", "read_ncaltech101_bin",
    "read_nmnist_bin", "read_shd", "read_events", "save_events", "write_aedat2", "write_aedat31",
    "write_es_imagenet_npz", "write_nmnist_bin",
]


def __getattr__(name: str) -> object:
    """``read_cifar10dvs`` and ``read_dvs_gesture``: dataset readers loaded on first access.

    They apply dataset conventions and live in :mod:`spikeloom.datasets` (see
    :data:`spikeloom.events.io.DATASET_READERS`), which imports this package.
    """
    if name in _io.DATASET_READERS:
        return getattr(_io, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
