"""Benchmark of spikeloom.cost.measure_cost on real N-MNIST event frames.

Measures the time of a plain forward pass and of measure_cost (hooks, exact SynOps) on the same
batches, and prints the cost table. The network has random weights (a cost/overhead benchmark,
not an accuracy one). Data: ``../shared/data/nmnist`` (set SPIKELOOM_SHARED_DATA to override).

Run: ``.venv/bin/python benchmarks/bench_cost.py [--batches 4] [--batch-size 16] [--T 8]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spikeloom.cost import measure_cost
from spikeloom.layers import TimeDistributed
from spikeloom.neurons import LIF

DATA = Path(
    os.environ.get("SPIKELOOM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def _neuron() -> nn.Module:
    return LIF(v_th=0.5, decay=0.5)


def _wrap(m: nn.Module) -> nn.Module:
    return TimeDistributed(m)


def load_frames(n: int, T: int) -> torch.Tensor:
    """First n N-MNIST train recordings as binary frames [T, n, 2, 34, 34] (time split in T)."""
    files = sorted((DATA / "nmnist" / "Train").glob("*/*.bin"))[:n]
    if len(files) < n:
        sys.exit(f"need {n} N-MNIST files under {DATA / 'nmnist'}, found {len(files)}")
    out = np.zeros((T, n, 2, 34, 34), dtype=np.float32)
    for i, f in enumerate(files):
        raw = np.fromfile(f, dtype=np.uint8).reshape(-1, 5).astype(np.int64)
        ts = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]
        tb = np.minimum((ts - ts.min()) * T // (ts.max() - ts.min() + 1), T - 1)
        out[tb, i, raw[:, 2] >> 7, raw[:, 1], raw[:, 0]] = 1.0
    return torch.from_numpy(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--T", type=int, default=8)
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    model = nn.Sequential(
        _wrap(nn.Conv2d(2, 32, 3, padding=1)),
        _neuron(),
        _wrap(nn.MaxPool2d(2)),
        _wrap(nn.Conv2d(32, 64, 3, padding=1)),
        _neuron(),
        _wrap(nn.MaxPool2d(2)),
        nn.Flatten(2),
        _wrap(nn.Linear(64 * 8 * 8, 128)),
        _neuron(),
        _wrap(nn.Linear(128, 10)),
    )
    x = load_frames(args.batches * args.batch_size, args.T)
    batches = list(x.split(args.batch_size, dim=1))
    model.eval()
    with torch.no_grad():
        model(batches[0])  # warm-up
        t0 = time.perf_counter()
        for b in batches:
            model(b)
        t_fwd = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = measure_cost(model, batches)
    t_cost = time.perf_counter() - t0
    n = x.shape[1]
    print(report.table())
    print()
    print(
        f"N-MNIST frames [T={args.T}, B={args.batch_size}, 2, 34, 34] x {args.batches} batches "
        f"({n} samples), {torch.get_num_threads()} threads"
    )
    print(f"plain forward : {t_fwd * 1e3:8.1f} ms  ({t_fwd / n * 1e3:.2f} ms/sample)")
    print(
        f"measure_cost  : {t_cost * 1e3:8.1f} ms  ({t_cost / n * 1e3:.2f} ms/sample), "
        f"overhead x{t_cost / t_fwd:.2f}"
    )
    t = report.totals
    print(
        f"exact SynOps {t['SynOps'] / 1e6:.3f} M vs T*fr*MACs {t['approx_SynOps'] / 1e6:.3f} M "
        f"(ratio {t['SynOps'] / t['approx_SynOps']:.4f})"
    )


if __name__ == "__main__":
    main()
