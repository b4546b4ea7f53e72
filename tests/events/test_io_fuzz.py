"""Fuzz test of the event readers: seeded mutations of real and written files.

For each reader, one child process (``_fuzz_child.py``) runs a few hundred seeded mutations
(byte sets, bit flips, truncations, zeroed regions, inserted bytes; half of them in the first
2 KiB, where the headers are) under an address-space limit of 2 GiB. Each mutation must end
in events (valid dtype and ranges) or in :class:`EventFileError`; any other exception, a
crash of the child (signal, abort) or a hang fails the test, naming the seed and mutation,
with the command that replays it.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spikeloom.events.core import make_events
from spikeloom.events.io import (
    save_events,
    write_aedat2,
    write_aedat31,
    write_es_imagenet_npz,
    write_nmnist_bin,
)

h5py = pytest.importorskip("h5py")

CHILD = Path(__file__).with_name("_fuzz_child.py")
N_MUTATIONS = 300
SEED = 20261128
TIMEOUT_S = 60


def _events(rng: np.random.Generator, n: int, size: tuple[int, int, int]) -> np.ndarray:
    t = np.sort(rng.integers(0, 10**6, n))
    x, y = rng.integers(0, size[0], n), rng.integers(0, size[1], n)
    return make_events(x, y, rng.integers(0, 2, n), t, size)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Small files of every format, written by the project's writers (and h5py for SHD)."""
    d = tmp_path_factory.mktemp("fuzz_src")
    rng = np.random.default_rng(SEED)
    write_nmnist_bin(d / "w.bin", _events(rng, 300, (34, 34, 2)))
    write_aedat2(d / "dvs.aedat", _events(rng, 300, (128, 128, 2)))
    write_aedat2(d / "davis.aedat", _events(rng, 300, (346, 260, 2)), camera="davis346")
    write_aedat31(d / "g.aedat", _events(rng, 300, (128, 128, 2)), packet_events=100)
    for name, compress in (("o.npz", False), ("oc.npz", True), ("o.h5", False), ("oc.h5", True)):
        save_events(d / name, _events(rng, 200, (34, 34, 2)), compress=compress)
    pos = np.c_[rng.integers(0, 256, (100, 2)), rng.integers(1, 9, 100)]
    neg = np.c_[rng.integers(0, 256, (80, 2)), rng.integers(1, 9, 80)]
    write_es_imagenet_npz(d / "es.npz", pos, neg)
    with h5py.File(d / "shd.h5", "w") as f:
        ft = f.create_dataset("spikes/times", (3,), dtype=h5py.vlen_dtype(np.float32))
        fu = f.create_dataset("spikes/units", (3,), dtype=h5py.vlen_dtype(np.uint16))
        for i in range(3):
            ft[i] = np.sort(rng.random(20 + i)).astype(np.float32)
            fu[i] = rng.integers(0, 700, 20 + i).astype(np.uint16)
        f.create_dataset("labels", data=np.array([1, 2, 3], np.uint8))
    with h5py.File(d / "shdc.h5", "w") as f:  # chunked + gzip: another read path
        for key, dt in (("spikes/times", np.float32), ("spikes/units", np.uint16)):
            ds = f.create_dataset(key, (3,), dtype=h5py.vlen_dtype(dt), compression="gzip")
            for i in range(3):
                ds[i] = (rng.random(20 + i) * (1 if dt is np.float32 else 700)).astype(dt)
        f.create_dataset("labels", data=np.array([1, 2, 3], np.uint8))
    (d / "labels.csv").write_text(
        "class,startTime_usec,endTime_usec\n1,100,900\n5,1000,2500\n11,3000,3100\n"
    )
    idx = bytes([0, 0, 8, 3]) + b"".join(v.to_bytes(4, "big") for v in (4, 5, 6))
    idx += rng.integers(0, 256, 120, dtype=np.uint8).tobytes()
    (d / "i.idx").write_bytes(idx)
    (d / "i.idx.gz").write_bytes(gzip.compress(idx))
    return {
        "nmnist": [d / "w.bin"],
        "aedat2": [d / "dvs.aedat", d / "davis.aedat"],
        "aedat31": [d / "g.aedat"],
        "aedat4": [],
        "own": [d / n for n in ("o.npz", "oc.npz", "o.h5", "oc.h5")],
        "es_imagenet": [d / "es.npz"],
        "shd": [d / "shd.h5", d / "shdc.h5"],
        "labels": [d / "labels.csv"],
        "idx": [d / "i.idx", d / "i.idx.gz"],
        "read_events": [d / n for n in ("w.bin", "dvs.aedat", "g.aedat", "o.npz", "o.h5")],
    }


def _real(request: pytest.FixtureRequest, reader: str) -> list[Path]:
    """Real sample files for ``reader`` (AEDAT 4 needs them; others use them when present)."""
    try:
        shared = request.getfixturevalue("shared_data")
    except pytest.skip.Exception:
        if reader == "aedat4":
            raise
        return []
    return {
        "nmnist": [shared / "nmnist" / "Test" / "3" / "00045.bin"],
        "aedat4": [
            shared / "aedat4" / "tonic" / "sample.aedat4",
            shared / "aedat4" / "aestream" / "davis.aedat4",
        ],
        "labels": [shared / "dvsgesture_labels" / "user01_natural_labels.csv"],
        "read_events": [shared / "aedat4" / "tonic" / "sample.aedat4"],
    }.get(reader, [])


def _replay(reader: str, srcs: list[Path], i: int) -> str:
    args = " ".join(str(s) for s in srcs)
    return f"{sys.executable} {CHILD} {reader} {N_MUTATIONS} {SEED} {args} --only {i}"


@pytest.mark.parametrize(
    "reader",
    [
        "nmnist",
        "aedat2",
        "aedat31",
        "aedat4",
        "own",
        "es_imagenet",
        "shd",
        "labels",
        "idx",
        "read_events",
    ],
)
def test_reader_survives_mutations(
    reader: str, written: dict[str, list[Path]], request: pytest.FixtureRequest
) -> None:
    if reader in ("aedat4", "read_events"):
        pytest.importorskip("aedat")
    srcs = written[reader] + _real(request, reader)
    cmd = [sys.executable, str(CHILD), reader, str(N_MUTATIONS), str(SEED), *map(str, srcs)]
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
        out, timed_out = res.stdout, False
    except subprocess.TimeoutExpired as exc:
        raw = exc.stdout or b""
        out, timed_out, res = (raw.decode() if isinstance(raw, bytes) else raw), True, None
    started: dict[int, dict] = {}
    results: dict[int, str] = {}
    for line in out.splitlines():
        rec = json.loads(line)
        if "result" in rec:
            results[rec["i"]] = rec["result"]
        else:
            started[rec["i"]] = rec
    failures = [
        f"mutation {i} ({started[i]['mut']} of {started[i]['src']}, strict={started[i]['strict']})"
        f": {r}\n  replay: {_replay(reader, srcs, i)}"
        for i, r in sorted(results.items())
        if r not in ("ok", "EventFileError")
    ]
    unfinished = sorted(set(started) - set(results))
    for i in unfinished:
        what = "hang" if timed_out else f"crash (exit status {res.returncode if res else None})"
        failures.append(
            f"mutation {i} ({started[i]['mut']} of {started[i]['src']}, "
            f"strict={started[i]['strict']}): {what}\n  replay: {_replay(reader, srcs, i)}"
        )
    if timed_out and not unfinished:
        failures.append(f"child timed out after {TIMEOUT_S} s")
    if res is not None and res.returncode != 0 and not unfinished:
        failures.append(f"child exited with {res.returncode}: {res.stderr[-2000:]}")
    if not failures and len(results) != N_MUTATIONS:
        failures.append(f"only {len(results)} of {N_MUTATIONS} mutations ran: {res and res.stderr}")
    assert not failures, f"{reader}: {len(failures)} failures\n" + "\n".join(failures[:10])
    counts = {k: sum(1 for r in results.values() if r == k) for k in ("ok", "EventFileError")}
    assert counts["ok"] + counts["EventFileError"] == N_MUTATIONS
