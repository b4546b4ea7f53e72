"""ODG conversion of still images into event streams (the ES-ImageNet method).

ES-ImageNet (Lin et al. 2021, arXiv:2110.12211) turns ImageNet photos into events with the
"omnidirectional discrete gradient" (ODG): the image moves along a 9-position trajectory and
thresholded differences between consecutive positions become ON/OFF events at 8 steps.

* :mod:`.geometry` — :class:`ESImageNetGeometry`, the one record of the conversion and loading
  numbers (:data:`ES_IMAGENET`; the ``ES_IMAGENET_*`` constants are aliases of its fields);
* :mod:`.image` — nearest-neighbour resizing and the value channel (:func:`resize_longer_side`,
  :func:`value_channel`, ...);
* :mod:`.generate` — :func:`odg` / :func:`odg_batch` returning
  :class:`~spikeloom.events.core.EventArray` s, :func:`to_pos_neg` (the ``.npz`` arrays),
  :func:`convert_image` / :class:`ODGResult` (the whole per-image pipeline);
* :mod:`.frames` — binary frames with the authors' loader geometry (:func:`odg_frames`,
  :func:`frames_from_masks`), built by :func:`spikeloom.events.frames.to_frame`;
* :mod:`.reconstruct` — :func:`edge_integral`.
"""

from .frames import Layout, frames_from_masks, mask_events, odg_frames
from .generate import ODGResult, convert_image, odg, odg_batch, to_pos_neg
from .geometry import (
    ES_IMAGENET,
    ES_IMAGENET_CROP,
    ES_IMAGENET_MIN_EVENTS,
    ES_IMAGENET_SIZE,
    ES_IMAGENET_THRESHOLD,
    ES_IMAGENET_TRAJECTORY,
    ES_IMAGENET_WINDOW,
    ESImageNetGeometry,
)
from .image import (
    Sampling,
    nearest_indices,
    resize_longer_side,
    resize_nearest,
    resized_shape,
    value_channel,
)
from .reconstruct import edge_integral

__all__ = [
    "ES_IMAGENET",
    "ES_IMAGENET_CROP",
    "ES_IMAGENET_MIN_EVENTS",
    "ES_IMAGENET_SIZE",
    "ES_IMAGENET_THRESHOLD",
    "ES_IMAGENET_TRAJECTORY",
    "ES_IMAGENET_WINDOW",
    "ESImageNetGeometry",
    "Layout",
    "ODGResult",
    "Sampling",
    "convert_image",
    "edge_integral",
    "frames_from_masks",
    "mask_events",
    "nearest_indices",
    "odg",
    "odg_batch",
    "odg_frames",
    "resize_longer_side",
    "resize_nearest",
    "resized_shape",
    "to_pos_neg",
    "value_channel",
]
