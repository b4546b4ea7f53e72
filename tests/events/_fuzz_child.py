"""Child process of ``test_io_fuzz.py``: seeded mutations of event files through one reader.

Usage: ``python _fuzz_child.py READER N SEED SRC [SRC ...]`` (``--only I`` replays mutation I).
Prints one JSON line before each mutation (``{"i", "src", "mut", "strict"}``) and one after it
(``{"i", "result"}``) with result ``"ok"``, ``"EventFileError"`` or ``"FAIL ..."``; a crash
or a hang therefore shows as a start line without its result. Address space is limited to
``SPIKELOOM_FUZZ_MEM`` bytes (default 2 GiB) after the imports.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from spikeloom.errors import EventFileError
from spikeloom.events.core import EVENT_DTYPE, EventArray
from spikeloom.events.io import (
    load_events,
    read_aedat2,
    read_aedat4,
    read_aedat31,
    read_es_imagenet_npz,
    read_events,
    read_gesture_labels,
    read_idx,
    read_nmnist_bin,
    read_shd,
)
from spikeloom.events.io.aedat31 import GESTURE_LABEL_DTYPE

HEAD = 2048  # half of the mutations land in the first HEAD bytes (headers, zip/HDF5 metadata)


def mutate(data: bytes, rng: np.random.Generator) -> tuple[bytes, str]:
    """One random mutation of ``data`` and a description that reproduces it."""
    n = len(data)

    def where(extra: int = 0) -> int:
        hi = min(n, HEAD) if rng.random() < 0.5 else n
        return int(rng.integers(0, max(hi, 1) + extra))

    kind = int(rng.integers(0, 5))
    if kind == 0 and n:  # set 1-4 bytes to random values
        b = bytearray(data)
        done = []
        for _ in range(int(rng.integers(1, 5))):
            i, v = min(where(), n - 1), int(rng.integers(0, 256))
            b[i] = v
            done.append(f"{i}={v:#04x}")
        return bytes(b), "set " + ",".join(done)
    if kind == 1 and n:  # flip one bit
        i, bit = min(where(), n - 1), int(rng.integers(0, 8))
        b = bytearray(data)
        b[i] ^= 1 << bit
        return bytes(b), f"flip byte {i} bit {bit}"
    if kind == 2:  # truncate
        i = where()
        return data[:i], f"truncate to {i}"
    if kind == 3:  # zero a region
        i, k = where(), int(rng.integers(1, 257))
        return data[:i] + bytes(len(data[i : i + k])) + data[i + k :], f"zero {k} at {i}"
    i = where(1)
    ins = rng.integers(0, 256, int(rng.integers(1, 17)), dtype=np.uint8).tobytes()
    return data[:i] + ins + data[i:], f"insert {ins.hex()} at {i}"


def _check_events(ev: Any, sorted_t: bool = False, t_nonneg: bool = True) -> None:
    if not isinstance(ev, EventArray) or ev.dtype != EVENT_DTYPE or ev.ndim != 1:
        raise AssertionError(f"not an EventArray of EVENT_DTYPE: {type(ev)} {ev.dtype}")
    w, h, p = ev.sensor_size
    if ev.size:
        if ev["x"].max() >= w or ev["y"].max() >= h or ev["p"].max() >= p:
            raise AssertionError(f"event outside the sensor {ev.sensor_size}")
        if t_nonneg and ev["t"].min() < 0:
            raise AssertionError(f"negative timestamp {ev['t'].min()}")
        if sorted_t and np.any(np.diff(ev["t"]) < 0):
            raise AssertionError("timestamps not sorted")


def _shd(path: str, strict: bool) -> None:
    with read_shd(path) as shd:
        labels = shd.labels
        if labels.shape != (len(shd),):
            raise AssertionError(f"labels shape {labels.shape} for {len(shd)} samples")
        for ev, _label in shd:
            _check_events(ev)


def _labels(path: str, strict: bool) -> None:
    lab = read_gesture_labels(path)
    if lab.dtype != GESTURE_LABEL_DTYPE or lab.ndim != 1:
        raise AssertionError(f"labels dtype {lab.dtype}")
    if lab.size and (lab["label"].min() < 1 or lab["label"].max() > 11):
        raise AssertionError("label outside 1..11")
    if np.any(lab["start"] >= lab["end"]):
        raise AssertionError("start >= end")


def _idx(path: str, strict: bool) -> None:
    if not isinstance(read_idx(path), np.ndarray):
        raise AssertionError("read_idx did not return an array")


def _any(path: str) -> None:
    ev = read_events(path)  # t < 0 may be saved in own files; SHD gives an SHDFile
    if isinstance(ev, EventArray):
        _check_events(ev, t_nonneg=False)


READERS: dict[str, Callable[[str, bool], None]] = {
    "nmnist": lambda f, s: _check_events(read_nmnist_bin(f, strict=s)),
    "aedat2": lambda f, s: _check_events(read_aedat2(f, strict=s)),
    "aedat31": lambda f, s: _check_events(read_aedat31(f, strict=s)),
    "aedat4": lambda f, s: _check_events(read_aedat4(f, strict=s)),
    "own": lambda f, s: _check_events(load_events(f), t_nonneg=False),  # t < 0 may be saved
    "es_imagenet": lambda f, s: _check_events(read_es_imagenet_npz(f), sorted_t=True),
    "shd": _shd,
    "labels": _labels,
    "idx": _idx,
    "read_events": lambda f, s: _any(f),
}


def run_one(reader: str, path: str, strict: bool) -> str:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            READERS[reader](path, strict)
    except EventFileError:
        return "EventFileError"
    except BaseException as exc:  # noqa: BLE001 - everything else is a finding
        if isinstance(exc, KeyboardInterrupt):
            raise
        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
        return f"FAIL {type(exc).__module__}.{type(exc).__name__}: {exc} | {tb[-2].strip()}"
    return "ok"


def main(argv: list[str]) -> int:
    only = None
    if "--only" in argv:
        k = argv.index("--only")
        only = int(argv[k + 1])
        del argv[k : k + 2]
    reader, n, seed, *srcs = argv
    datas = [Path(s).read_bytes() for s in srcs]
    limit = int(os.environ.get("SPIKELOOM_FUZZ_MEM", 2 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(int(n)) if only is None else [only]:
            rng = np.random.default_rng([int(seed), i])
            k = int(rng.integers(0, len(srcs)))
            data, desc = mutate(datas[k], rng)
            strict = bool(rng.integers(0, 2))
            target = Path(tmp) / f"m{i}{Path(srcs[k]).suffix}"
            target.write_bytes(data)
            print(json.dumps({"i": i, "src": srcs[k], "mut": desc, "strict": strict}), flush=True)
            print(json.dumps({"i": i, "result": run_one(reader, str(target), strict)}), flush=True)
            target.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
