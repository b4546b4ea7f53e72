"""Image preparation for ODG: nearest-neighbour resizing and the HSV value channel.

ES-ImageNet (Lin et al. 2021, arXiv:2110.12211) resizes each image so that its longer side is
254 pixels with ``torch.nn.functional.interpolate(mode="nearest")`` and converts it to the HSV
value channel (the maximum over the colour channels) scaled to ``[0, 1]``. The functions here
reproduce both bit for bit and offer two other nearest-neighbour rules.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
import torch

from .geometry import ES_IMAGENET

__all__ = [
    "Sampling",
    "max_over_channels",
    "nearest_indices",
    "resize_longer_side",
    "resize_nearest",
    "resized_shape",
    "value_channel",
]

Sampling = Literal["torch", "floor", "center"]

_U8_TO_UNIT = (np.arange(256, dtype=np.float64) / 255.0).astype(np.float32)


def resized_shape(h: int, w: int, size: int = ES_IMAGENET.size) -> tuple[int, int]:
    """Output ``(h, w)`` of the ES-ImageNet resize: longer side -> ``size``, other
    ``short*size//long``.

    The square case takes the "else" branch of the reference (``h = floor(h*size/w) = size``).
    Integer arithmetic, so no floating-point edge cases.
    """
    if h <= 0 or w <= 0:
        raise ValueError(f"image shape must be positive, got h={h}, w={w}")
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    if h > w:
        return size, max(w * size // h, 0)
    return h * size // w, size


@lru_cache(maxsize=256)
def _torch_nearest_index(n_in: int, n_out: int) -> np.ndarray:
    # The reference resizes a float64 tensor with F.interpolate(mode="nearest"); the index rule
    # it applies is floor(dst * scale) in the library's own floating-point arithmetic, which
    # differs from exact integer arithmetic for a few (mostly upsampling) size pairs. Sampling a
    # float64 ramp through the same call gives exactly the indices the reference used.
    ramp = torch.arange(n_in, dtype=torch.float64).view(1, 1, 1, n_in)
    idx = torch.nn.functional.interpolate(ramp, size=(1, n_out), mode="nearest")
    out = idx.view(-1).to(torch.int64).numpy().copy()
    out.setflags(write=False)
    return out


def nearest_indices(n_in: int, n_out: int, sampling: Sampling = "torch") -> np.ndarray:
    """Source index of every output pixel along one axis, shape ``[n_out]`` (int64).

    ``sampling``:

    * ``"torch"`` (default, faithful): the rule of ``torch.nn.functional.interpolate(...,
      mode="nearest")`` on a float64 tensor, which is what the authors' converter called
      (``src = floor(dst * in / out)`` evaluated in floating point). Obtained by resampling an
      index ramp with that very call, so it matches bit for bit in the installed torch version.
    * ``"floor"``: the same rule in exact integer arithmetic, ``src = (dst * in) // out`` (the
      mathematical OpenCV ``INTER_NEAREST`` rule). Identical to ``"torch"`` for every
      downscaling to 254 we checked (sides 255..1199); may differ by one pixel for a few
      upscaling ratios (e.g. 62 -> 56, 84 -> 200).
    * ``"center"``: pixel-centre sampling ``src = floor((dst + 0.5) * in / out)`` (PIL NEAREST,
      torch ``"nearest-exact"``); a deviation from the reference, symmetric for upscaling.
    """
    if n_in <= 0 or n_out <= 0:
        raise ValueError(f"axis lengths must be positive, got n_in={n_in}, n_out={n_out}")
    dst = np.arange(n_out, dtype=np.int64)
    if sampling == "torch":
        return _torch_nearest_index(int(n_in), int(n_out))
    if sampling == "floor":
        return np.minimum(dst * n_in // n_out, n_in - 1)
    if sampling == "center":
        return np.minimum((2 * dst + 1) * n_in // (2 * n_out), n_in - 1)
    raise ValueError(f"sampling must be 'torch', 'floor' or 'center', got {sampling!r}")


def resize_nearest(
    img: np.ndarray, out_h: int, out_w: int, *, sampling: Sampling = "torch"
) -> np.ndarray:
    """Nearest-neighbour resize of ``img`` ``[..., H, W]`` or ``[H, W, C]`` to ``out_h x out_w``.

    For a 3-D input whose last axis has length 1, 3 or 4 the layout is taken as ``[H, W, C]``
    (an image); any other input is ``[..., H, W]`` (e.g. a batch ``[N, H, W]``). Pure numpy
    gather with the per-axis index tables of :func:`nearest_indices`; dtype is preserved.
    """
    a = np.asarray(img)
    if a.ndim < 2:
        raise ValueError(f"expected an image of at least 2 dims, got shape {a.shape}")
    channels_last = a.ndim == 3 and a.shape[-1] in (1, 3, 4)
    h_ax, w_ax = (0, 1) if channels_last else (a.ndim - 2, a.ndim - 1)
    ri = nearest_indices(a.shape[h_ax], out_h, sampling)
    ci = nearest_indices(a.shape[w_ax], out_w, sampling)
    if channels_last:
        return a[ri][:, ci]
    return a[..., ri, :][..., ci]  # two 1-D gathers: ~6x faster than one 2-D fancy index


def resize_longer_side(
    img: np.ndarray, size: int = ES_IMAGENET.size, *, sampling: Sampling = "torch"
) -> np.ndarray:
    """Nearest-neighbour resize so that the longer side equals ``size`` (ES-ImageNet's rule).

    ``img``: ``[H, W]`` or ``[H, W, C]``. Returns ``[h, w]`` or ``[h, w, C]`` with
    ``(h, w) = resized_shape(H, W, size)`` (square images become ``size x size``). See
    :func:`nearest_indices` for the sampling rules (default ``"torch"``, as the reference).
    """
    a = np.asarray(img)
    if a.ndim not in (2, 3):
        raise ValueError(f"expected an image [H, W] or [H, W, C], got shape {a.shape}")
    h, w = resized_shape(a.shape[0], a.shape[1], size)
    if h == 0 or w == 0:
        raise ValueError(
            f"image {a.shape[0]}x{a.shape[1]} is too elongated: its short side becomes 0 at "
            f"size={size}"
        )
    ri = nearest_indices(a.shape[0], h, sampling)
    ci = nearest_indices(a.shape[1], w, sampling)
    return a[ri][:, ci]


def max_over_channels(img: np.ndarray) -> np.ndarray:
    """``[H, W]`` maximum over the colour channels of ``[H, W]`` / ``[H, W, 1|3|4]`` (alpha
    ignored), in the input dtype."""
    a = np.asarray(img)
    if a.ndim == 2:
        return a
    if a.ndim != 3 or a.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an image [H, W], [H, W, 3] or [H, W, 4], got shape {a.shape}")
    if a.shape[-1] == 1:
        return a[..., 0]
    # elementwise maximum of the planes: ~50x faster than a.max(axis=-1) on uint8 [H, W, 3]
    return np.maximum(np.maximum(a[..., 0], a[..., 1]), a[..., 2])


def value_channel(img: np.ndarray) -> np.ndarray:
    """HSV value channel: max over colour channels, as float32 in [0, 1].

    ``img``: uint8 ``[H, W]`` (gray) or ``[H, W, 3]``; a 4th (alpha) channel is ignored, as
    ``cv2.imread`` does. uint8 values are divided by 255 in float64 and rounded to float32
    (the reference computes ``img / 255.0`` in float64 and its canvases are float32). Float
    input is taken as already scaled to [0, 1] (checked). Returns ``[H, W]`` float32.
    """
    a = max_over_channels(img)
    if a.dtype == np.uint8:
        return _U8_TO_UNIT[a]
    if np.issubdtype(a.dtype, np.floating):
        if a.size and (np.nanmin(a) < 0.0 or np.nanmax(a) > 1.0 or np.isnan(a).any()):
            raise ValueError(
                "float images must already be scaled to [0, 1] (divide 8-bit data by 255)"
            )
        return a.astype(np.float32, copy=False)
    raise TypeError(f"expected uint8 or float image, got dtype {a.dtype}")
