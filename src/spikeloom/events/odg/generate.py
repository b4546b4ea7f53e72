"""ODG events of intensity maps, and the whole per-image ES-ImageNet conversion.

"Omnidirectional discrete gradient" (ODG; Lin et al. 2021, ES-ImageNet, arXiv:2110.12211): the
intensity map is moved along a fixed trajectory of small integer shifts on a black canvas
(``(h + pad) x (w + pad)``); thresholded differences between consecutive positions give ON/OFF
events at ``T = len(trajectory) - 1`` steps, each step probing the spatial gradient in a
different direction. Rows/columns swept by the image border between two positions are
suppressed, and the converter keeps only events with ``lo < row, col < hi`` (``crop``). This
follows the authors' converter (``dataset_generator/traconvert.py``) step by step; every
deviation is a named option.

Events are returned as an :class:`~spikeloom.events.core.EventArray` in canvas coordinates:
``x = col``, ``y = row``, ``p = 1`` (ON) / ``0`` (OFF) and ``t`` = the step ``1..T`` (**not**
microseconds, as in the released dataset), sensor size ``(w + pad, h + pad, 2)``, ordered by
step, ON before OFF, row, col. For the ES trajectory every event lies in canvas rows ``1..h``
and columns ``1..w``. :func:`to_pos_neg` gives the ``pos``/``neg`` ``[n, 3]`` ``(row, col, t)``
arrays of the ES-ImageNet ``.npz`` files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from ..core import EventArray
from .frames import Layout, odg_frames, stacked_events, stacked_frames
from .geometry import ES_IMAGENET, Trajectory, check_trajectory, normalise_crop
from .image import Sampling, max_over_channels, resize_longer_side, value_channel

__all__ = ["ODGResult", "convert_image", "odg", "odg_batch", "to_pos_neg"]


@lru_cache(maxsize=64)
def _keep_mask(
    h: int,
    w: int,
    pad: int,
    trajectory: Trajectory,
    crop: tuple[int, int] | None,
    border_suppression: bool,
) -> np.ndarray:
    """Boolean ``[T, h+pad, w+pad]``: canvas pixels that may emit an event at each step."""
    steps = len(trajectory) - 1
    keep = np.ones((steps, h + pad, w + pad), dtype=bool)
    if border_suppression:
        for k in range(steps):
            (r0, c0), (r, c) = trajectory[k], trajectory[k + 1]
            rl, rh = min(r, r0), max(r, r0)
            cl, ch = min(c, c0), max(c, c0)
            keep[k, rl:rh, :] = False
            keep[k, rl + h : rh + h, :] = False
            keep[k, :, cl:ch] = False
            keep[k, :, cl + w : ch + w] = False
    if crop is not None:
        lo, hi = crop
        keep[:, : lo + 1, :] = False
        keep[:, hi:, :] = False
        keep[:, :, : lo + 1] = False
        keep[:, :, hi:] = False
    keep.setflags(write=False)
    return keep


def _odg_masks(
    v: np.ndarray,
    threshold: float,
    trajectory: Trajectory,
    pad: int,
    crop: tuple[int, int] | None,
    border_suppression: bool,
) -> np.ndarray:
    """Stacked ON/OFF masks ``[..., T, 2, h+pad, w+pad]`` (channel 0 = ON) of images ``v``
    ``[..., h, w]`` (float32), written in place (no stacking copy)."""
    h, w = v.shape[-2:]
    lead = v.shape[:-2]
    canvas = np.zeros((*lead, len(trajectory), h + pad, w + pad), dtype=np.float32)
    for k, (r, c) in enumerate(trajectory):  # 9 slice copies, not a per-pixel loop
        canvas[..., k, r : r + h, c : c + w] = v
    diff = canvas[..., 1:, :, :] - canvas[..., :-1, :, :]
    thr = np.float32(threshold)  # the reference compares float32 tensors with float32(0.18)
    keep = _keep_mask(h, w, pad, trajectory, crop, border_suppression)
    both = np.empty((*diff.shape[:-2], 2, h + pad, w + pad), dtype=bool)
    on, off = both[..., 0, :, :], both[..., 1, :, :]
    np.greater(diff, thr, out=on)
    on &= keep
    np.less(diff, -thr, out=off)
    off &= keep
    return both


def _as_values(v: np.ndarray, ndim: int) -> np.ndarray:
    a = np.asarray(v)
    if a.ndim != ndim:
        raise ValueError(f"expected {ndim} dims, got shape {a.shape}")
    if a.dtype == np.uint8:
        raise TypeError(
            "odg expects intensities scaled to [0, 1]; convert uint8 images with value_channel()"
        )
    return a.astype(np.float32, copy=False)


def _event_array(ev: np.ndarray, canvas: tuple[int, int]) -> EventArray:
    out = ev.view(EventArray)
    out.sensor_size = (canvas[1], canvas[0], 2)
    return out


def odg(
    v: np.ndarray,
    threshold: float = ES_IMAGENET.threshold,
    trajectory: Sequence[tuple[int, int]] = ES_IMAGENET.trajectory,
    pad: int = ES_IMAGENET.pad,
    crop: tuple[int, int] | None = ES_IMAGENET.crop,
    border_suppression: bool = True,
) -> EventArray:
    """ODG events ``[N]`` of one intensity map ``[h, w]`` (see the module docstring).

    Args:
        v: ``[h, w]`` float intensities in ``[0, 1]`` (see
            :func:`~spikeloom.events.odg.value_channel`); computed in float32 like the authors.
        threshold: strict threshold: ON where ``D > threshold``, OFF where
            ``D < -threshold``, with ``D = canvas_t - canvas_{t-1}``.
        trajectory: ``T + 1`` ``(row, col)`` offsets of the image on the canvas.
        pad: canvas margin: the canvas is ``(h + pad) x (w + pad)``.
        crop: ``(lo, hi)``: keep events with ``lo < row < hi`` and ``lo < col < hi`` (canvas
            coordinates, before centring). ``None`` keeps everything (small images).
        border_suppression: zero the rows/columns swept by the image border between two
            positions.

    Returns:
        EventArray ``[N]``: ``x = col``, ``y = row``, ``p`` (1 ON / 0 OFF), ``t`` = step
        ``1..T``, sensor size ``(w + pad, h + pad, 2)``; ordered by step, ON before OFF, row,
        col.
    """
    traj = check_trajectory(trajectory, pad)
    a = _as_values(v, 2)
    both = _odg_masks(a, threshold, traj, pad, normalise_crop(crop), border_suppression)
    return _event_array(stacked_events(both[None])[1], both.shape[-2:])


def to_pos_neg(events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ES-ImageNet ``pos``/``neg`` arrays of ODG events: int32 ``[n, 3]`` ``(row, col, t)``.

    ``pos`` holds the ON events (``p = 1``), ``neg`` the OFF events, each in the order of
    ``events`` (for :func:`odg` output: by step, row, col, the order of the authors' files).
    """
    ev = np.asarray(events)
    out = []
    for polarity in (1, 0):
        sel = ev[ev["p"] == polarity]
        arr = np.empty((sel.shape[0], 3), dtype=np.int32)
        arr[:, 0], arr[:, 1], arr[:, 2] = sel["y"], sel["x"], sel["t"]
        out.append(arr)
    return out[0], out[1]


def _split_by_image(image: np.ndarray, ev: np.ndarray, n: int) -> list[np.ndarray]:
    if n == 0:
        return []
    bounds = np.cumsum(np.bincount(image, minlength=n))[:-1]
    return np.split(ev, bounds)


def odg_batch(
    v: np.ndarray,
    threshold: float = ES_IMAGENET.threshold,
    trajectory: Sequence[tuple[int, int]] = ES_IMAGENET.trajectory,
    pad: int = ES_IMAGENET.pad,
    crop: tuple[int, int] | None = ES_IMAGENET.crop,
    border_suppression: bool = True,
    *,
    output: Literal["events", "masks", "frames"] = "events",
    layout: Layout = "tpchw",
    size: int | None = None,
    window: tuple[int, int] | None = None,
    chunk_size: int = 512,
) -> Any:
    """ODG of ``N`` equal-size intensity maps ``v`` ``[N, h, w]`` at once (rules of :func:`odg`).

    ``output``:

    * ``"events"``: list of ``N`` EventArrays, identical to calling :func:`odg` per image;
    * ``"masks"``: ``(on, off)`` bool arrays ``[N, T, h+pad, w+pad]`` in canvas coordinates;
    * ``"frames"``: uint8 binary frames ``[N, T, 2, S, S]`` (``layout="tpchw"``) or
      ``[N, 2, T, S, S]`` (``"es_imagenet"``) with the geometry of
      :func:`~spikeloom.events.odg.odg_frames` (``size``/``window`` as there; ``size=None``
      means ``max(h, w)``).

    Work is done in chunks of ``chunk_size`` images to bound memory (about
    ``chunk_size * 9 * (h+pad) * (w+pad) * 4`` bytes of canvases).
    """
    traj = check_trajectory(trajectory, pad)
    a = _as_values(v, 3)
    n, h, w = a.shape
    crop_n = normalise_crop(crop)
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    if output not in ("events", "masks", "frames"):
        raise ValueError(f"output must be 'events', 'masks' or 'frames', got {output!r}")
    side = max(h, w) if size is None else size
    results = []
    for start in range(0, max(n, 1), chunk_size):  # one (maybe empty) chunk for n = 0
        both = _odg_masks(a[start : start + chunk_size], threshold, traj, pad, crop_n,
                          border_suppression)
        if output == "masks":
            results.append((both[:, :, 0], both[:, :, 1]))
        elif output == "frames":
            results.append(stacked_frames(both, h, w, layout=layout, size=side, window=window))
        else:
            image, ev = stacked_events(both)
            canvas = both.shape[-2:]
            results.extend(_event_array(e, canvas) for e in _split_by_image(image, ev, len(both)))
    if output == "events":
        return results
    if output == "masks":
        return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])
    return np.concatenate(results)


@dataclass(frozen=True)
class ODGResult:
    """ODG events of one converted image.

    Attributes:
        events: EventArray ``[N]`` of :func:`odg` (canvas coordinates, ``t`` = step 1..8).
        h, w: the resized image size (what the ES-ImageNet label files store).
    """

    events: EventArray
    h: int
    w: int

    @property
    def num_events(self) -> int:
        """ON + OFF events."""
        return int(self.events.shape[0])

    @property
    def pos(self) -> np.ndarray:
        """ON events, int32 ``[n, 3]`` ``(row, col, t)`` (see :func:`to_pos_neg`)."""
        return to_pos_neg(self.events)[0]

    @property
    def neg(self) -> np.ndarray:
        """OFF events, int32 ``[m, 3]`` ``(row, col, t)``."""
        return to_pos_neg(self.events)[1]

    def frames(self, **kwargs: Any) -> np.ndarray:
        """:func:`~spikeloom.events.odg.odg_frames` of these events (keywords passed on)."""
        return odg_frames(self.events, self.h, self.w, **kwargs)

    def npz_arrays(self) -> dict[str, np.ndarray]:
        """``{"pos": uint8 [n, 3], "neg": uint8 [m, 3]}`` as stored by the ES-ImageNet converter.

        Raises if a coordinate does not fit in uint8 (possible only without the 240 crop).
        """
        out = {}
        for name, ev in zip(("pos", "neg"), to_pos_neg(self.events)):
            if ev.size and (ev.min() < 0 or ev.max() > 255):
                raise ValueError(
                    f"{name} coordinates exceed uint8 (max {ev.max()}); keep the crop or a size "
                    "<= 251 to store ES-ImageNet npz files"
                )
            out[name] = ev.astype(np.uint8).reshape(-1, 3)
        return out


def convert_image(
    img: np.ndarray,
    *,
    size: int = ES_IMAGENET.size,
    threshold: float = ES_IMAGENET.threshold,
    min_events: int = ES_IMAGENET.min_events,
    crop: tuple[int, int] | None = ES_IMAGENET.crop,
    sampling: Sampling = "torch",
    trajectory: Sequence[tuple[int, int]] = ES_IMAGENET.trajectory,
    pad: int = ES_IMAGENET.pad,
    border_suppression: bool = True,
) -> ODGResult | None:
    """Full per-image ES-ImageNet conversion of ``img`` ``[H, W(, C)]``; ``None`` if discarded.

    ``img``: uint8 ``[H, W, 3]`` / ``[H, W]`` (or float in [0, 1]). Steps: value channel (max
    over colours; it commutes with nearest resizing, so it is taken first), resize so the
    longer side is ``size``, scale to [0, 1], ODG, and discard (return ``None``) when the total
    number of events is below ``min_events``.
    """
    m = max_over_channels(img)
    # max over colours and 1/255 scaling commute with nearest resizing: resize the smaller
    # single-channel uint8 map first, then scale (same values as the reference's order)
    v = value_channel(resize_longer_side(m, size, sampling=sampling))
    events = odg(v, threshold, trajectory, pad, crop, border_suppression)
    if events.shape[0] < min_events:
        return None
    return ODGResult(events=events, h=int(v.shape[0]), w=int(v.shape[1]))
