"""Training wall time with each neuron-op backend (issue 11: "default job and N-MNIST training
wall time before/after, same accuracy").

Runs real ``spikeloom train`` commands in subprocesses, once with
``SPIKELOOM_BACKEND_NEURON_SEQUENCE=torch_fused`` (the fused torch op: the path before the
compiled kernel) and once with ``cpu_kernel`` (the default where the extension is built), same
seed, same data, and prints wall time, the training loop's own time, test accuracy and test loss
side by side. Jobs: ``default`` (``spikeloom train``: spiking CNN on ES-Digits) and ``nmnist``
(``--config configs/nmnist.yaml``: LIAF net on the shared N-MNIST subset). Equal accuracy and
loss show that the backend changes speed only (the kernels' float32 gradients differ from
torch's in the last bits, so long runs may drift apart slightly; the script prints both).

Usage: python benchmarks/bench_backend_training.py [--jobs default nmnist] [--epochs N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
JOBS = {
    "default": [],
    "nmnist": ["--config", str(REPO / "configs" / "nmnist.yaml"),
               "--root", str(REPO.parent / "shared" / "data" / "nmnist")],
}
BACKENDS = ("torch_fused", "cpu_kernel")


def run(job: str, backend: str, epochs: int | None, out: Path) -> dict:
    cmd = [sys.executable, "-m", "spikeloom.cli", "train", *JOBS[job], "--out", str(out),
           "--no-progress", "--no-plots", "--overwrite"]
    if epochs:
        cmd += ["--epochs", str(epochs)]
    env = dict(os.environ, SPIKELOOM_BACKEND_NEURON_SEQUENCE=backend)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env, cwd=REPO)
    wall = time.perf_counter() - t0
    final = json.loads((out / "final.json").read_text())
    return {"job": job, "backend": backend, "wall_s": wall, "train_s": final["train_seconds"],
            "test_acc": final["test_acc"], "test_loss": final.get("test_loss"),
            "load": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", nargs="+", choices=sorted(JOBS), default=sorted(JOBS))
    ap.add_argument("--epochs", type=int, default=None, help="override the job's epochs")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.2f}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="spikeloom-backend-") as tmp:
        for job in args.jobs:
            base = None
            for backend in BACKENDS:
                r = run(job, backend, args.epochs, Path(tmp) / f"{job}-{backend}")
                rows.append(r)
                base = base or r
                loss = f"{r['test_loss']:.5f}" if r["test_loss"] is not None else "n/a"
                print(f"{job:8s} {backend:12s} wall {r['wall_s']:7.1f} s  training loop "
                      f"{r['train_s']:7.1f} s ({r['train_s'] / base['train_s']:.2f}x)  "
                      f"test acc {r['test_acc']:.4f}  test loss {loss}  load {r['load']:.1f}",
                      flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
