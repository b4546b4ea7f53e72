"""Benchmark: events -> frames with spikeloom's ``to_frame`` vs a plain ``np.add.at`` binning.

Setting: 2 M random events (sorted timestamps over 1 s, 128x128 sensor, 2 polarities), 16 time
bins, one CPU core. ``to_frame`` is timed on both fast backends of the frame-counting operator
``spikeloom.ops.frames``: ``c`` (the C extension, default when built) and ``numpy`` (what
``SPIKELOOM_BACKEND_FRAMES=numpy`` or ``SPIKELOOM_NO_SPEEDUPS=1`` selects). The baseline is
the straightforward approach of typical tools: a time-bin index per event by integer division,
then ``np.add.at`` on ``[T, P, H, W]``. All results are checked to be identical before timing.
Best of several runs is reported, in wall-clock and in process-CPU time (the primary figure on a
shared machine).

Run: ``python benchmarks/bench_transforms.py [--n 2000000] [--repeats 7]``
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core (numpy itself is single-threaded)

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from spikeloom.events.core import EVENT_DTYPE  # noqa: E402
from spikeloom.events.frames import to_frame  # noqa: E402
from spikeloom.ops import available_backends  # noqa: E402
from spikeloom.ops.frames import c_backend, select_backend  # noqa: E402

W, H, P = 128, 128, 2


def make_events(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ev = np.empty(n, dtype=EVENT_DTYPE)
    ev["x"] = rng.integers(0, W, n)
    ev["y"] = rng.integers(0, H, n)
    ev["p"] = rng.integers(0, P, n)
    ev["t"] = np.sort(rng.integers(0, 1_000_000, n))
    return ev


def add_at_baseline(ev: np.ndarray, n_bins: int) -> np.ndarray:
    """Same binning as ``to_frame(n_time_bins=...)``: equal bins over [t0, t_last]."""
    t = ev["t"]
    t0 = int(t[0])
    span = int(t[-1]) - t0 + 1
    b = (t - t0) * n_bins // span
    frames = np.zeros((n_bins, P, H, W), dtype=np.int64)
    index = (b, ev["p"].astype(np.intp), ev["y"].astype(np.intp), ev["x"].astype(np.intp))
    np.add.at(frames, index, 1)
    return frames


def on_path(use_c: bool, fn: Callable[[], np.ndarray]) -> Callable[[], np.ndarray]:
    """``fn`` run on the ``c`` backend (``use_c``) or the ``numpy`` one (forced by
    ``SPIKELOOM_BACKEND_FRAMES``)."""
    key = "SPIKELOOM_BACKEND_FRAMES"
    name = "c" if use_c else "numpy"

    def run() -> np.ndarray:
        old = os.environ.get(key)
        os.environ[key] = name
        try:
            if select_backend().name != name:
                raise SystemExit(f"could not select the {name} backend")
            return fn()
        finally:
            if old is None:
                del os.environ[key]
            else:
                os.environ[key] = old

    return run


def best_time(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Best wall-clock and best process-CPU seconds over ``repeats`` runs.

    The CPU time is less sensitive to other processes competing for the core; on an idle
    machine both agree.
    """
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    return best_wall, best_cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2_000_000, help="number of events")
    ap.add_argument("--bins", type=int, default=16, help="number of time bins")
    ap.add_argument("--repeats", type=int, default=9, help="runs per timing (best is kept)")
    args = ap.parse_args()
    n, bins = args.n, args.bins
    ev = make_events(n)
    size = (W, H, P)
    have_c = "c" in available_backends("frames")
    paths = ([True] if have_c else []) + [False]

    ref = add_at_baseline(ev, bins)
    for use_c in paths:
        ours = on_path(use_c, lambda: to_frame(ev, size, n_time_bins=bins))()
        if not np.array_equal(ours, ref) or int(ours.sum()) != n:
            raise SystemExit(f"mismatch between to_frame (C={use_c}) and np.add.at")

    print(f"{n:,} events, {W}x{H}x{P} sensor, {bins} bins, OMP_NUM_THREADS=1, best of runs")
    if have_c:
        print(f"C extension: {c_backend.speedups.__file__}")
    else:
        print("C extension NOT built: numpy path only (pip install -e . with a C compiler)")
    modes = {
        "n_time_bins": dict(n_time_bins=bins),
        "n_event_bins": dict(n_event_bins=bins),
        "time_window": dict(time_window=1_000_000 // bins),
    }
    rows = []
    for mode, kw in modes.items():
        for use_c in paths:
            name = f"{mode} {'C' if use_c else 'numpy'}"
            rows.append(
                (name, on_path(use_c, lambda kw=kw: to_frame(ev, size, **kw)), args.repeats)
            )
    rows.append(
        ("np.add.at baseline", lambda: add_at_baseline(ev, bins), max(2, args.repeats // 3))
    )
    print(f"  {'':24s} {'wall ms':>9s} {'M ev/s':>8s} | {'cpu ms':>9s} {'M ev/s':>8s}")
    rates = {}
    for name, fn, reps in rows:
        wall, cpu = best_time(fn, reps)
        rates[name] = (n / wall / 1e6, n / cpu / 1e6)
        print(
            f"  {name:24s} {wall * 1e3:9.2f} {rates[name][0]:8.1f} | "
            f"{cpu * 1e3:9.2f} {rates[name][1]:8.1f}"
        )
    base = rates["np.add.at baseline"]

    def ratio(a: str, b: tuple[float, float]) -> str:
        return f"{rates[a][1] / b[1]:5.1f}x cpu, {rates[a][0] / b[0]:5.1f}x wall"

    print("  speed-ups (rate ratios):")
    for mode in modes:
        if have_c:
            print(f"    {mode:13s} {'C / numpy':17s} {ratio(mode + ' C', rates[mode + ' numpy'])}")
            print(f"    {mode:13s} {'C / np.add.at':17s} {ratio(mode + ' C', base)}")
        print(f"    {mode:13s} {'numpy / np.add.at':17s} {ratio(mode + ' numpy', base)}")
    out = to_frame(ev, size, n_time_bins=bins)
    print(f"  output dtype {out.dtype}, shape {out.shape}, max count {int(out.max())}")


if __name__ == "__main__":
    main()
