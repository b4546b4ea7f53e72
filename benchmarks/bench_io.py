"""Benchmark: vectorised N-MNIST reader vs a naive per-event Python decoder.

Reads all 1,000 N-MNIST training recordings with :func:`spikeloom.events.io.read_nmnist_bin`
(target: < 1 s in total), times :func:`spikeloom.events.io.read_events` on the same files
(format detection + the same reader), then decodes a subset of ``NAIVE_FILES`` files with a plain
per-event Python loop (the textbook decoder), checks that both give identical events, and
prints events/s for both and their ratio.

Run: ``.venv/bin/python benchmarks/bench_io.py``. The data are looked up in
``$SPIKELOOM_SHARED_DATA`` or ``../shared/data`` beside the repository; without them the script
says so and exits 0.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from spikeloom.events.io import read_events, read_nmnist_bin

NAIVE_FILES = 50
REPEATS = 3


def shared_data_dir() -> Path:
    env = os.environ.get("SPIKELOOM_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def naive_decode(path: Path) -> list[tuple[int, int, int, int]]:
    """Per-event loop decoder of the 40-bit N-MNIST record (the baseline)."""
    data = path.read_bytes()
    out = []
    for i in range(0, len(data) - len(data) % 5, 5):
        b0, b1, b2, b3, b4 = data[i : i + 5]
        if b1 == 240:  # overflow markers: none in N-MNIST; skipped like the real reader
            continue
        out.append((b0, b1, b2 >> 7, ((b2 & 0x7F) << 16) | (b3 << 8) | b4))
    return out


def main() -> int:
    root = shared_data_dir() / "nmnist" / "Train"
    if not root.is_dir():
        print(f"bench_io: N-MNIST data not found at {root} (set SPIKELOOM_SHARED_DATA); skipped")
        return 0
    files = sorted(root.glob("*/*.bin"))
    if not files:
        print(f"bench_io: no .bin files under {root}; skipped")
        return 0

    read_nmnist_bin(files[0])  # warm-up (imports, page cache)
    best = float("inf")
    n_events = 0
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        n_events = sum(read_nmnist_bin(f).size for f in files)
        best = min(best, time.perf_counter() - t0)
    fast_rate = n_events / best

    best_any = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        n_any = sum(read_events(f).size for f in files)
        best_any = min(best_any, time.perf_counter() - t0)
    if n_any != n_events:
        print(f"bench_io: read_events found {n_any} events, read_nmnist_bin {n_events}")
        return 1

    subset = files[:NAIVE_FILES]
    t0 = time.perf_counter()
    naive = [naive_decode(f) for f in subset]
    naive_time = time.perf_counter() - t0
    naive_events = sum(len(n) for n in naive)
    naive_rate = naive_events / naive_time

    for f, ref in zip(subset, naive):  # same answer as the baseline
        ev = read_nmnist_bin(f)
        got = np.stack([ev["x"], ev["y"], ev["p"], ev["t"]], axis=1).astype(np.int64)
        if not np.array_equal(got, np.asarray(ref, dtype=np.int64).reshape(-1, 4)):
            print(f"bench_io: MISMATCH with the naive decoder on {f}")
            return 1

    print(
        f"read_nmnist_bin: {len(files)} files, {n_events:,} events in {best:.3f} s "
        f"(best of {REPEATS}) = {fast_rate / 1e6:.1f} M events/s "
        f"[target < 1 s: {'OK' if best < 1.0 else 'MISSED'}]"
    )
    print(
        f"read_events (format detection + reader): {len(files)} files in {best_any:.3f} s "
        f"(best of {REPEATS}) = {n_events / best_any / 1e6:.1f} M events/s"
    )
    print(
        f"naive per-event loop: {len(subset)} files, {naive_events:,} events in "
        f"{naive_time:.3f} s = {naive_rate / 1e6:.2f} M events/s"
    )
    print(f"speed-up (events/s ratio): {fast_rate / naive_rate:.0f}x; outputs identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
