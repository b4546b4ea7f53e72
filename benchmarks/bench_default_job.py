"""The default job (`spikeloom train` with no arguments) against its targets.

Targets: >= 95 % test accuracy on ES-Digits (issue 12; >= 90 % in issue 2), cheaper than its
ANN twin by the cost report's own measure (E_ANN/E_SNN > 1, issue 12), in <= 3 minutes on 2 CPU
cores. Runs the real
command in a subprocess (so the time includes start-up, dataset conversion, training, the test
evaluation, plots and the cost report) and prints wall time, CPU time and accuracy.
Usage: python benchmarks/bench_default_job.py [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPU cores")
    rows = []
    for seed in args.seeds:
        out = Path(tempfile.mkdtemp(prefix="spikeloom-default-"))
        cmd = [sys.executable, "-m", "spikeloom.cli", "train", "--out", str(out / "run"),
               "--no-progress"]
        if seed:
            cmd += ["--seed", str(seed)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        final = json.loads((out / "run" / "final.json").read_text())
        ratio = json.loads((out / "run" / "cost.json").read_text())["energy"]["ratio"]
        rows.append((seed, final["test_acc"], wall, cpu, final["train_seconds"], ratio))
        print(f"seed {seed}: test acc {final['test_acc']:.4f} (best val {final['best_val_acc']:.4f}"
              f", epoch {final['best_epoch']})  E_ANN/E_SNN {ratio:.2f}  wall {wall:.1f} s "
              f"(training loop {final['train_seconds']:.1f} s)  CPU {cpu:.1f} s  load "
              f"{os.getloadavg()[0]:.1f}", flush=True)
        shutil.rmtree(out)
    accs = [r[1] for r in rows]
    walls = [r[2] for r in rows]
    ratios = [r[5] for r in rows]
    ok = min(accs) >= 0.95 and min(ratios) > 1 and max(walls) <= 180
    print(f"mean test acc {sum(accs) / len(accs):.4f}  min E_ANN/E_SNN {min(ratios):.2f}  max "
          f"wall {max(walls):.1f} s  (target >= 0.95, E_ANN/E_SNN > 1, <= 180 s: "
          f"{'OK' if ok else 'MISSED'})")


if __name__ == "__main__":
    main()
