"""ES-ImageNet sample files (``.npz`` of ``pos`` / ``neg`` arrays).

ES-ImageNet (Lin, Ding, Shi and Chen, "ES-ImageNet: A Million Event-Stream Classification
Dataset for Spiking Neural Networks", Frontiers in Neuroscience 2021, arXiv:2110.12211) stores
each ImageNet image converted by Omnidirectional Discrete Gradient as a compressed ``.npz``.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from ...atomic import atomic_write
from ...errors import EventFileError
from ..core import EventArray, SensorSize, make_events
from ._common import PathLike, _read_npz, _zip_members
from .formats import register_format

__all__ = ["ES_IMAGENET_SENSOR", "read_es_imagenet_npz", "write_es_imagenet_npz"]

ES_IMAGENET_SENSOR: SensorSize = (256, 256, 2)


def _es_columns(name: str, a: Any) -> np.ndarray:
    """Validate an ES-ImageNet ``[n, 3]`` (row, col, t) array; return it as int64.

    Raises:
        ValueError: wrong shape or dtype, row/col outside 0..255 or t outside 1..8.
    """
    a = np.asarray(a)
    if a.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    if a.ndim != 2 or a.shape[1] != 3:
        raise ValueError(f"array '{name}' has shape {a.shape}, expected [n, 3] (row, col, t)")
    if a.dtype.kind not in "iu":
        raise ValueError(f"array '{name}' has dtype {a.dtype}, expected integers (uint8)")
    a = a.astype(np.int64)
    if a[:, :2].min() < 0 or a[:, :2].max() > 255:
        raise ValueError(f"array '{name}' has row/col outside 0..255")
    if a[:, 2].min() < 1 or a[:, 2].max() > 8:
        raise ValueError(f"array '{name}' has t outside 1..8 ({a[:, 2].min()}..{a[:, 2].max()})")
    return a


def read_es_imagenet_npz(path: PathLike, centre: tuple[int, int] | None = None) -> EventArray:
    """Read one ES-ImageNet sample (Lin et al. 2021).

    The file holds ``pos`` and ``neg``, uint8 ``[n, 3]`` arrays of ``(row, col, t)`` with the
    step ``t`` in 1..8. Events get ``x = col``, ``y = row``, ``p = 1`` for ``pos`` (ON) and
    ``0`` for ``neg`` (OFF), and **``t`` = the step index 1..8, not microseconds**. Events are
    sorted by step (stable: within a step, ON before OFF, file order kept). Sensor size
    ``(256, 256, 2)``; coordinates are the converter's canvas coordinates, in 17..239
    after its crop. This is SpikingJelly's convention (no centring shift, no crop) and what
    the file holds; :func:`~spikeloom.events.io.read_events` returns exactly this.

    Dataset convention: ``centre=(h, w)`` is a convenience for
    :func:`spikeloom.datasets.esimagenet.centre_es_imagenet`, the shift of the dataset
    authors' loader that centres each resized image on the canvas (``row += (254 - h) // 2``,
    ``col += (254 - w) // 2``); it is not stored in the file and only applied when asked for.

    Args:
        path: the ``.npz``.
        centre: ``(h, w)`` of the resized image (from ``trainlabel.txt``/``vallabel.txt``), or
            ``None`` (default) for the file's coordinates. The ``[16:240]`` crop of the
            authors' loader is left to the frame conversion.

    Returns:
        EventArray ``[N]`` with N = len(pos) + len(neg).
    """
    arrays = _read_npz(path, ("pos", "neg"))
    missing = [k for k in ("pos", "neg") if k not in arrays]
    if missing:
        raise EventFileError(
            path, None, f"missing arrays {missing} (has {sorted(arrays)}); not ES-ImageNet?"
        )
    try:
        pos = _es_columns("pos", arrays["pos"])
        neg = _es_columns("neg", arrays["neg"])
    except ValueError as exc:
        raise EventFileError(path, None, f"not a readable ES-ImageNet .npz ({exc})") from None
    both = np.concatenate([pos, neg])
    p = np.concatenate([np.ones(len(pos), np.uint8), np.zeros(len(neg), np.uint8)])
    row, col, t = both[:, 0], both[:, 1], both[:, 2]
    order = np.argsort(t, kind="stable")
    events = make_events(col[order], row[order], p[order], t[order], ES_IMAGENET_SENSOR)
    if centre is None:
        return events
    # the convention lives with the dataset (imported here, on demand, to keep events below
    # datasets in the import order)
    from ...datasets.esimagenet import centre_es_imagenet

    h, w = centre
    return centre_es_imagenet(events, h, w)


def write_es_imagenet_npz(path: PathLike, pos: Any, neg: Any) -> Path:
    """Write an ES-ImageNet sample: ``np.savez_compressed(pos=..., neg=...)`` (atomic).

    Args:
        pos: ``[n, 3]`` integer ``(row, col, t)`` of ON events, values 0..255 and t in 1..8.
        neg: same for OFF events.
    """
    arrays = {}
    for name, a in (("pos", pos), ("neg", neg)):
        arrays[name] = _es_columns(name, a).astype(np.uint8)

    def write(fh: io.BufferedWriter) -> None:
        np.savez_compressed(fh, **arrays)

    return atomic_write(path, write, make_dirs=False)


def _is_es_imagenet(path: Path, head: bytes) -> bool:
    return {"pos.npy", "neg.npy"} <= _zip_members(path, head)


register_format(
    "es_imagenet",
    read_es_imagenet_npz,
    suffixes=(".npz",),
    sniff=_is_es_imagenet,
    magic_text="zip with 'pos', 'neg' arrays",
    description="ES-ImageNet sample (t = step 1..8)",
    hint="read_es_imagenet_npz(path, centre=(h, w))",
)
