"""Binary frames from ODG events or masks, with the ES-ImageNet loader geometry.

The authors' loader (Lin et al. 2021, arXiv:2110.12211) centres an ``h x w`` image on a
``size x size`` canvas (``dx = (size - h) // 2`` rows, ``dy = (size - w) // 2`` columns) and
keeps rows/cols ``window = (lo, hi)``; ES-ImageNet uses ``size = 254`` and ``(16, 240)``, giving
224x224 frames. Both builders here shift and crop the events accordingly and count them with
:func:`spikeloom.events.frames.to_frame` (one frame per ODG step), the library's single frame
builder; ODG events are unique per pixel and step, so the counts are the binary frames.

Layouts: ``"tpchw"`` (project convention) ``[T, 2, H, W]`` with channel = polarity value
(0 = OFF, 1 = ON); ``"es_imagenet"`` the authors' ``[2, T, H, W]`` with channel 0 = ON.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..core import EVENT_DTYPE
from ..frames import to_frame
from .geometry import ES_IMAGENET, normalise_window

__all__ = [
    "Layout",
    "frames_from_masks",
    "mask_events",
    "odg_frames",
    "stacked_events",
    "stacked_frames",
]

Layout = Literal["tpchw", "es_imagenet"]


def _frame_origin(
    h: int, w: int, size: int, window: tuple[int, int] | None
) -> tuple[int, int, int]:
    """``(r0, c0, side)``: frame pixel ``(i, j)`` is canvas pixel ``(i + r0, j + c0)``.

    With the centring shifts ``dx = (size - h) // 2`` (rows), ``dy = (size - w) // 2``
    (columns) and the window ``(lo, hi)``: ``r0 = lo - dx``, ``c0 = lo - dy``, ``side = hi - lo``.
    """
    if h > size or w > size:
        raise ValueError(
            f"resized image {h}x{w} is larger than size={size}; pass the size used for resizing"
        )
    lo, hi = normalise_window(window) or (1, size + 1)
    return lo - (size - h) // 2, lo - (size - w) // 2, hi - lo


def mask_events(
    on: np.ndarray, off: np.ndarray, origin: tuple[int, int] = (0, 0)
) -> tuple[np.ndarray, np.ndarray]:
    """Events of ODG masks ``[L, T, Hc, Wc]``: ``(image index [n], events [n])``.

    Events are EVENT_DTYPE records with ``x = col - origin[1]``, ``y = row - origin[0]`` (canvas
    coordinates by default), ``p`` 1 for ON / 0 for OFF and ``t`` the step ``1..T``, ordered by
    image, step, ON before OFF, row, col.
    """
    if on.shape != off.shape or on.ndim != 4:
        raise ValueError(f"expected masks [L, T, Hc, Wc] of one shape, got {on.shape}, {off.shape}")
    return stacked_events(np.stack((on, off), axis=2), origin)


def stacked_events(
    both: np.ndarray, origin: tuple[int, int] = (0, 0)
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`mask_events` of stacked masks ``[L, T, 2, Hc, Wc]`` (channel 0 = ON).

    One ``flatnonzero`` gives the events in the documented order directly; int32 arithmetic
    (about twice as fast as ``np.nonzero``).
    """
    if both.size >= 2**31:
        raise ValueError("masks too large for int32 indexing; use a smaller chunk_size")
    n_images, steps, _, hc, wc = both.shape
    flat = np.flatnonzero(both).astype(np.int32)
    lines = flat // np.int32(wc)  # ((image * T + step) * 2 + channel) * Hc + row
    col = flat - lines * np.int32(wc)
    planes = lines // np.int32(hc)  # (image * T + step) * 2 + channel
    row = lines - planes * np.int32(hc)
    ev = np.empty(flat.shape[0], dtype=EVENT_DTYPE)
    ev["x"] = col - np.int32(origin[1]) if origin[1] else col
    ev["y"] = row - np.int32(origin[0]) if origin[0] else row
    ev["p"] = 1 - (planes & 1)
    frame = planes >> 1  # image * T + step
    image = frame // np.int32(steps) if n_images > 1 else np.zeros(flat.shape[0], np.int32)
    ev["t"] = frame - image * np.int32(steps) + 1
    return image, ev


def _count_binary(ev: np.ndarray, n_frames: int, side: int) -> np.ndarray:
    """Counts ``[n_frames, 2, side, side]`` of frame-coordinate events whose ``t`` is the
    frame number ``1..n_frames`` (the one frame builder, :func:`to_frame`)."""
    return to_frame(ev, (side, side, 2), time_window=1, start_time=1, n_frames=n_frames)


def _to_layout(frames: np.ndarray, layout: Layout) -> np.ndarray:
    """``[..., T, 2, H, W]`` (tpchw) to the requested layout."""
    if layout == "tpchw":
        return frames
    if layout == "es_imagenet":
        return np.ascontiguousarray(np.flip(np.swapaxes(frames, -4, -3), axis=-4))
    raise ValueError(f"layout must be 'tpchw' or 'es_imagenet', got {layout!r}")


def odg_frames(
    events: np.ndarray,
    h: int,
    w: int,
    *,
    layout: Layout = "tpchw",
    size: int = ES_IMAGENET.size,
    window: tuple[int, int] | None = ES_IMAGENET.window,
    num_steps: int = 8,
    dtype: np.dtype | type = np.float32,
) -> np.ndarray:
    """Binary frames ``[T, 2, S, S]`` (or ``[2, T, S, S]``) of one image's ODG events.

    Each event ``(x = col, y = row, p, t)`` goes to pixel ``(row + dx - lo, col + dy - lo)`` of
    step ``t - 1`` with ``dx = (size - h) // 2``, ``dy = (size - w) // 2`` (centring) and
    ``(lo, hi) = window``; pixels outside ``[0, hi - lo)`` are dropped, exactly as the loader's
    ``F[..., 16:240, 16:240]`` crop. ``window=None`` uses ``(1, size + 1)``: a ``size x size``
    frame that, for square images and the ES trajectory, holds every event (they lie in canvas
    rows/cols ``1..h``) so that frame pixel ``(i, j)`` is image pixel ``(i, j)``.

    Args:
        events: the EventArray of :func:`~spikeloom.events.odg.odg` (or any EVENT_DTYPE array
            in canvas coordinates with ``t`` the step ``1..num_steps`` and ``p`` 0/1).
        h, w: the resized image size (what ES-ImageNet's label files store).
        layout: ``"tpchw"`` (``[T, 2, S, S]``, channel = polarity) or ``"es_imagenet"``
            (``[2, T, S, S]``, channel 0 = ON).
        size, window: the loader geometry (defaults: ES-ImageNet, ``S = 224``).
        num_steps: ``T``.
        dtype: output dtype; values are 0/1 (repeated events still give 1).

    Returns:
        the frames, ``S = hi - lo``.
    """
    ev = np.asarray(events)
    if ev.dtype != EVENT_DTYPE or ev.ndim != 1:
        raise TypeError(
            f"odg_frames takes the EventArray returned by odg() (EVENT_DTYPE [N]), got "
            f"{ev.dtype} {ev.shape}; for ES-ImageNet (pos, neg) arrays read the file with "
            f"spikeloom.events.io.read_es_imagenet_npz"
        )
    if ev.size:
        t = ev["t"]
        if t.min() < 1 or t.max() > num_steps:
            raise ValueError(f"event steps must lie in 1..{num_steps}, got {t.min()}..{t.max()}")
        if ev["p"].max() > 1:
            raise ValueError(f"polarities must be 0 (OFF) or 1 (ON), got {ev['p'].max()}")
    r0, c0, side = _frame_origin(h, w, size, window)
    x = ev["x"].astype(np.int64) - c0
    y = ev["y"].astype(np.int64) - r0
    inside = (x >= 0) & (x < side) & (y >= 0) & (y < side)
    kept = ev[inside]
    kept["x"], kept["y"] = x[inside], y[inside]
    counts = _count_binary(kept, num_steps, side)
    if counts.size and counts.max() > 1:
        np.minimum(counts, 1, out=counts)
    return _to_layout(counts.astype(dtype, copy=False), layout)


def stacked_frames(
    both: np.ndarray, h: int, w: int, *, layout: Layout, size: int, window: tuple[int, int] | None
) -> np.ndarray:
    """:func:`frames_from_masks` of stacked masks ``[L, T, 2, Hc, Wc]`` (channel 0 = ON)."""
    n_images, steps, _, hc, wc = both.shape
    r0, c0, side = _frame_origin(h, w, size, window)
    # only the canvas part that the window sees: its events are then all inside the frames
    rows = slice(max(r0, 0), max(min(r0 + side, hc), 0))
    cols = slice(max(c0, 0), max(min(c0 + side, wc), 0))
    image, ev = stacked_events(both[..., rows, cols], origin=(r0 - rows.start, c0 - cols.start))
    if n_images > 1:
        ev["t"] += image.astype(np.int64) * steps  # frame number of image k, step t: k*T + t
    counts = _count_binary(ev, n_images * steps, side)
    frames = counts.astype(np.uint8, copy=False).reshape(n_images, steps, 2, side, side)
    return _to_layout(frames, layout)


def frames_from_masks(
    on: np.ndarray,
    off: np.ndarray,
    h: int,
    w: int,
    *,
    layout: Layout = "tpchw",
    size: int = ES_IMAGENET.size,
    window: tuple[int, int] | None = ES_IMAGENET.window,
) -> np.ndarray:
    """Frames from canvas masks ``[..., T, Hc, Wc]``; geometry of :func:`odg_frames`.

    All images of the batch are counted in one :func:`to_frame` call (image ``k``, step ``t``
    is frame ``k*T + t - 1``). Returns uint8 ``[..., T, 2, S, S]`` (``"tpchw"``) or
    ``[..., 2, T, S, S]`` (``"es_imagenet"``).
    """
    if on.shape != off.shape or on.ndim < 3:
        raise ValueError(
            f"expected masks [..., T, Hc, Wc] of one shape, got {on.shape}, {off.shape}"
        )
    lead, inner = on.shape[:-3], on.shape[-3:]
    shape = (int(np.prod(lead, dtype=np.int64)), *inner)
    both = np.stack((on.reshape(shape), off.reshape(shape)), axis=2)
    frames = stacked_frames(both, h, w, layout=layout, size=size, window=window)
    return frames.reshape(*lead, *frames.shape[1:])
