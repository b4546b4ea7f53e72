"""Event-to-event functions: denoising, resolution changes, crops, flips and random drops.

Inputs are 1-D structured arrays of :data:`~spikeloom.events.core.EVENT_DTYPE`
(``x, y: uint16``, ``p: uint8`` with 1 = ON / 0 = OFF, ``t: int64`` µs), either an
:class:`~spikeloom.events.core.EventArray` (which carries ``sensor_size = (W, H, P)``) or a plain
array together with an explicit ``sensor_size``. When both are given they must agree.

Conventions kept by every function:

* The input is never modified; a new array is returned (also when nothing changes).
* The dtype is kept. An ``EventArray`` input gives an ``EventArray`` output carrying the
  (possibly updated) sensor size; the functions that take a ``sensor_size`` argument (crop,
  flip, downsample) also return an ``EventArray`` when it is given. Otherwise plain arrays stay
  plain.
* Empty event arrays are valid input everywhere.
* Random functions draw from ``rng``: a ``np.random.Generator``, an int / ``SeedSequence`` seed,
  or ``None`` (fresh OS entropy at every call; see :mod:`spikeloom.events.transforms`).

The dataclass forms (:class:`~spikeloom.events.transforms.Denoise`, ...) live in
:mod:`spikeloom.events.transforms`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._checks import (
    RngLike,
    as_event_output,
    as_generator,
    check_events,
    crop_size,
    int_param,
    is_sorted,
    known_sensor_size,
    pair_param,
    prob_param,
    require_sensor_size,
)

__all__ = [
    "RngLike",
    "center_crop",
    "crop",
    "denoise",
    "downsample",
    "drop_event",
    "drop_time",
    "flip_lr",
    "flip_polarity",
    "flip_ud",
    "random_crop",
    "time_jitter",
]


def _first_bad(col: np.ndarray, limit: int) -> int:
    return int(np.flatnonzero(col >= limit)[0])


def denoise(events: np.ndarray, filter_time: int = 10000, *, connectivity: int = 8) -> np.ndarray:
    """Background-activity filter: keep an event only if a neighbouring pixel fired recently.

    Event ``i`` at ``(x, y, t)`` is kept iff one of its ``connectivity`` neighbours (8: the
    3x3 ring; 4: left/right/up/down; never the pixel itself; both polarities) has an earlier
    event ``k < i`` in the stream with ``t - t_k < filter_time``. This is exactly the
    sequential "last timestamp per pixel" filter, evaluated without a per-event loop: events
    are sorted by (pixel, index) once, and for each neighbour offset one ``searchsorted``
    finds, for every event, the latest earlier event of that neighbour pixel.

    Differences from ``tonic.functional.denoise_numpy``: Tonic uses 4 neighbours
    (``connectivity=4`` here) and initialises its memory to ``filter_time``, which lets every
    event with ``t < filter_time`` pass; here a pixel that never fired has no memory.
    Simultaneous neighbour events count only if they come earlier in the stream.

    Args:
        events: structured array ``[N]``, timestamps non-decreasing.
        filter_time: µs, ``> 0``.
        connectivity: 8 or 4.

    Returns:
        The kept events ``[K]`` in their original order (same type and dtype).

    Cost: one O(N log N) sort plus ``connectivity`` searchsorted passes.
    """
    ev = check_events(events)
    ft = int_param(filter_time, "filter_time", 1)
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8, got {connectivity!r}")
    n = ev.shape[0]
    if n == 0:
        return ev.copy()
    t = ev["t"]
    if not is_sorted(t):
        raise ValueError(
            "denoise needs events sorted by time; sort first with "
            "spikeloom.events.core.sort_by_time(events) or events[np.argsort(events['t'], "
            "kind='stable')]"
        )
    x = ev["x"].astype(np.int64)
    y = ev["y"].astype(np.int64)
    # Linear pixel index with one empty padding column (x = max+1) and row (y = max+1): a +1
    # neighbour of the last column/row is then an empty pixel, never a wrapped-around one.
    width = int(x.max()) + 2
    height = int(y.max()) + 2
    if width * height * n >= 2**62:
        raise ValueError(
            f"denoise: {n} events on a {width}x{height} grid overflow its 64-bit sort keys; "
            f"denoise shorter pieces of the stream"
        )
    pix = y * width + x
    key = np.sort(pix * n + np.arange(n, dtype=np.int64))  # unique keys: (pixel, index)
    spix = key // n
    order = key - spix * n
    sx = spix % width
    sy = spix // width
    st = t[order]
    offsets = [(-1, 0), (1, 0), (0, -1), (0, 1)]
    if connectivity == 8:
        offsets += [(-1, -1), (1, -1), (-1, 1), (1, 1)]
    keep_sorted = np.zeros(n, dtype=bool)
    for dx, dy in offsets:
        shift = (dy * width + dx) * n
        pos = np.searchsorted(key, key + shift, side="left") - 1  # latest key before query
        posc = np.maximum(pos, 0)
        # the latest key below the query belongs to the neighbour pixel iff it is >= qpix * n
        ok = (pos >= 0) & (key[posc] >= (spix + (dy * width + dx)) * n)
        ok &= st - st[posc] < ft
        if dx < 0:
            ok &= sx > 0
        if dy < 0:
            ok &= sy > 0
        keep_sorted |= ok
    keep = np.empty(n, dtype=bool)
    keep[order] = keep_sorted
    return ev[keep]


def downsample(
    events: np.ndarray,
    spatial_factor: int = 1,
    time_factor: int = 1,
    *,
    sensor_size: Sequence[int] | None = None,
) -> np.ndarray:
    """Reduce resolution: ``x // f``, ``y // f`` and ``t // tf * tf``.

    The new sensor size is ``(ceil(W/f), ceil(H/f), P)`` (equal to ``W // f`` when ``f``
    divides ``W``, e.g. 128 → 32 with ``f = 4`` as in TA-SNN; rounding up keeps the events of a
    partial last block inside the sensor). Timestamps stay in µs and are quantised to
    multiples of ``time_factor`` (floor), so several events may share one timestamp;
    ``time_factor = 1`` leaves them unchanged. Nothing is merged: the event count is kept.
    """
    ev = check_events(events)
    f = int_param(spatial_factor, "spatial_factor", 1)
    tf = int_param(time_factor, "time_factor", 1)
    size = known_sensor_size(ev, sensor_size)
    out = ev.copy()
    if f > 1:  # integer division in int64: f may exceed the uint16 range
        out["x"] = ev["x"].astype(np.int64) // f
        out["y"] = ev["y"].astype(np.int64) // f
    if tf > 1:
        t = out["t"]
        t //= tf
        t *= tf
    new_size = None if size is None else (-(-size[0] // f), -(-size[1] // f), size[2])
    return as_event_output(out, new_size)


def crop(
    events: np.ndarray,
    origin: Sequence[int],
    size: Sequence[int],
    *,
    sensor_size: Sequence[int] | None = None,
) -> np.ndarray:
    """Keep events with ``x0 <= x < x0 + w`` and ``y0 <= y < y0 + h`` and shift them to 0.

    Args:
        events: structured array ``[N]``.
        origin: ``(x0, y0)`` top-left corner (may lie partly outside the sensor).
        size: ``(w, h)`` of the window.
        sensor_size: optional; the output sensor size is ``(w, h, P)``.
    """
    ev = check_events(events)
    x0, y0 = pair_param(origin, "origin", 0)
    w, h = pair_param(size, "size", 1)
    if w > 65536 or h > 65536:
        raise ValueError(f"crop size {(w, h)} exceeds 65536 (x/y are uint16)")
    known = known_sensor_size(ev, sensor_size)
    x, y = ev["x"], ev["y"]
    mask = (x >= x0) & (x < x0 + w) & (y >= y0) & (y < y0 + h)
    out = ev[mask]
    if out.size:  # x >= x0 and y >= y0 here, so no wrap-around
        out["x"] -= x0
        out["y"] -= y0
    return as_event_output(out, None if known is None else (w, h, known[2]))


def center_crop(
    events: np.ndarray, size: int | Sequence[int], *, sensor_size: Sequence[int] | None = None
) -> np.ndarray:
    """:func:`crop` of a ``(w, h)`` (or ``size x size``) window centred on the sensor.

    The origin is ``((W - w) // 2, (H - h) // 2)``; the window must fit in the sensor.
    """
    ev = check_events(events)
    known = require_sensor_size(ev, sensor_size, "center_crop")
    w, h = crop_size(size)
    if w > known[0] or h > known[1]:
        raise ValueError(f"crop size {(w, h)} is larger than the sensor {known[:2]}")
    return crop(ev, ((known[0] - w) // 2, (known[1] - h) // 2), (w, h), sensor_size=known)


def random_crop(
    events: np.ndarray,
    size: int | Sequence[int],
    *,
    sensor_size: Sequence[int] | None = None,
    rng: RngLike = None,
) -> np.ndarray:
    """:func:`crop` of a ``(w, h)`` window at a uniformly random position inside the sensor."""
    ev = check_events(events)
    known = require_sensor_size(ev, sensor_size, "random_crop")
    w, h = crop_size(size)
    if w > known[0] or h > known[1]:
        raise ValueError(f"crop size {(w, h)} is larger than the sensor {known[:2]}")
    g = as_generator(rng)
    x0 = int(g.integers(0, known[0] - w + 1))
    y0 = int(g.integers(0, known[1] - h + 1))
    return crop(ev, (x0, y0), (w, h), sensor_size=known)


def _flip(events: np.ndarray, field: str, limit_index: int, sensor_size: Any) -> np.ndarray:
    ev = check_events(events)
    known = require_sensor_size(ev, sensor_size, f"flip of {field}")
    limit = known[limit_index]
    col = ev[field]
    if col.size and col.max() >= limit:
        i = _first_bad(col, limit)
        raise ValueError(f"event {i} has {field}={int(col[i])} outside the sensor {known}")
    out = ev.copy()
    out[field] = (limit - 1) - out[field]
    return as_event_output(out, known)


def flip_lr(events: np.ndarray, *, sensor_size: Sequence[int] | None = None) -> np.ndarray:
    """Mirror left-right: ``x -> W - 1 - x``."""
    return _flip(events, "x", 0, sensor_size)


def flip_ud(events: np.ndarray, *, sensor_size: Sequence[int] | None = None) -> np.ndarray:
    """Mirror up-down: ``y -> H - 1 - y``."""
    return _flip(events, "y", 1, sensor_size)


def flip_polarity(events: np.ndarray) -> np.ndarray:
    """Swap ON and OFF: ``p -> 1 - p`` (polarities must be 0 or 1)."""
    ev = check_events(events)
    p = ev["p"]
    if p.size and p.max() > 1:
        i = _first_bad(p, 2)
        raise ValueError(f"flip_polarity needs p in {{0, 1}}; event {i} has p={int(p[i])}")
    out = ev.copy()
    out["p"] = 1 - out["p"]
    return out


def drop_event(events: np.ndarray, p: float, *, rng: RngLike = None) -> np.ndarray:
    """Drop exactly ``round(p * N)`` events chosen uniformly at random (order kept)."""
    ev = check_events(events)
    prob = prob_param(p, "p")
    n = ev.shape[0]
    n_drop = int(round(prob * n))
    if n_drop == 0:
        return ev.copy()
    g = as_generator(rng)
    keep = np.ones(n, dtype=bool)
    keep[g.choice(n, size=n_drop, replace=False)] = False
    return ev[keep]


def time_jitter(
    events: np.ndarray,
    std: float,
    *,
    clip_negative: bool = True,
    sort: bool = True,
    rng: RngLike = None,
) -> np.ndarray:
    """Add Gaussian noise ``N(0, std²)`` (µs, rounded to whole µs) to every timestamp.

    Args:
        std: standard deviation in µs (``>= 0``).
        clip_negative: remove events whose new timestamp is negative (as Tonic does).
        sort: re-sort by time (stable) so that time-based binning stays fast. Tonic's default
            is ``False``; ours is ``True``.
    """
    ev = check_events(events)
    s = float(std)
    if not s >= 0.0:
        raise ValueError(f"std must be >= 0, got {std!r}")
    out = ev.copy()
    if s > 0 and out.shape[0]:
        g = as_generator(rng)
        out["t"] += np.rint(g.normal(0.0, s, size=out.shape[0])).astype(np.int64)
    if clip_negative:
        out = out[out["t"] >= 0]
    if sort and not is_sorted(out["t"]):
        out = out[np.argsort(out["t"], kind="stable")]
    return out


def drop_time(events: np.ndarray, fraction: float, *, rng: RngLike = None) -> np.ndarray:
    """Delete all events of one random time interval covering ``fraction`` of the recording.

    With ``span = t_max - t_min + 1`` µs and ``d = round(fraction * span)``, a start ``a`` is
    drawn uniformly from ``t_min .. t_min + span - d`` and the events with ``a <= t < a + d``
    are removed (``fraction = 1`` removes all, ``0`` none).
    """
    ev = check_events(events)
    fr = prob_param(fraction, "fraction")
    if ev.shape[0] == 0:
        return ev.copy()
    t = ev["t"]
    t_min = int(t.min())
    span = int(t.max()) - t_min + 1
    d = int(round(fr * span))
    if d == 0:
        return ev.copy()
    g = as_generator(rng)
    a = t_min + int(g.integers(0, span - d + 1))
    return ev[(t < a) | (t >= a + d)]
