"""Training-step cost (H2Learn-like reconstruction) of the default job and the N-MNIST network.

Trains each job briefly with ``spikeloom train`` (``--epochs``, shortened on a shared machine;
the densities of a longer-trained net differ somewhat), then runs
``spikeloom cost RUN --training`` (measured spike and gradient densities on ``--batches``
training batches) and prints the per-layer table and the ratios next to the paper's headline
band. Jobs: the default job (ES-Digits, LIAFNet with LIAF neurons: analog outputs, so the
forward LUT cannot be used there), the same net with LIF neurons (binary spikes), and
``configs/nmnist.yaml`` (N-MNIST subset, needs ``../shared/data/nmnist``).

A run already trained in ``--out`` is reused (its best checkpoint).

Run: ``python benchmarks/bench_training_cost.py [--epochs 2] [--out /tmp/tc_runs]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from pathlib import Path

from spikeloom.cli import main as cli_main
from spikeloom.cost.training import PAPER_BAND

ROOT = Path(__file__).resolve().parents[1]


def run_job(name: str, extra: list[str], out: Path, epochs: int, batches: int) -> dict:
    run = out / name
    t0 = time.perf_counter()
    if not (run / "checkpoints" / "best.pt").exists():
        with contextlib.redirect_stdout(io.StringIO()):
            rc = cli_main(["train", *extra, "--epochs", str(epochs), "--out", str(run),
                           "--no-progress", "--threads", "2", "--overwrite"])
        if rc != 0:
            raise SystemExit(f"training {name} failed (rc {rc})")
    t_train = time.perf_counter() - t0
    epochs = sum(1 for _ in open(run / "metrics.jsonl", encoding="utf-8"))  # epochs trained
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        cli_main(["cost", str(run), "--training", "--split", "train", "--batches", str(batches)])
    print(f"== {name} ({epochs} epoch(s) trained; {t_train:.0f} s training in this call) ==")
    print(buf.getvalue())
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        cli_main(["cost", str(run), "--training", "--split", "train", "--batches", str(batches),
                  "--json"])
    return json.loads(buf.getvalue())["totals"]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batches", type=int, default=2)
    p.add_argument("--out", default="/tmp/spikeloom_training_cost_runs")
    args = p.parse_args()
    out = Path(args.out)
    jobs = {
        "default (liafnet, LIAF)": [],
        "default net with LIF": ["--model-arg", "neuron=lif"],
        "nmnist.yaml": ["--config", str(ROOT / "configs" / "nmnist.yaml")],
    }
    summary = {}
    for name, extra in jobs.items():
        key = name.split(" ")[0] + ("_lif" if "LIF" in name else "")
        summary[name] = run_job(key, extra, out, args.epochs, args.batches)
    print("summary (H2Learn-like model / dense, one training iteration):")
    for name, t in summary.items():
        print(f"  {name:<26} ops ratio {t['ops_ratio']:.2f}x, pipelined "
              f"{t['pipelined_ratio']:.2f}x, energy ratio {t['energy_ratio']:.2f}x")
    print(f"  context: {PAPER_BAND}")


if __name__ == "__main__":
    main()
