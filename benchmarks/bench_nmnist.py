"""N-MNIST training benchmark (issue 3): 3 seeds of ``configs/nmnist.yaml`` on the real subset.

Trains the configured LIAF net on the 1,000 shared N-MNIST training recordings (900 train /
100 validation, stratified and seeded), selects the epoch with the best validation accuracy and
evaluates it once on the 100 test recordings; prints per-seed validation and test accuracy, the
mean and the wall time (target: mean test accuracy >= 95 %). The hyperparameters in the YAML
were chosen on validation accuracy only.

Usage::

    python benchmarks/bench_nmnist.py [--config configs/nmnist.yaml] [--root DIR]
                                      [--seeds 0 1 2] [--out runs/bench_nmnist] [--threads N]

``--root`` defaults to ``$SPIKELOOM_SHARED_DATA/nmnist`` or ``../shared/data/nmnist`` beside the
repository. Frames are cached in ``$SPIKELOOM_CACHE`` (default ``~/.cache/spikeloom``); the first
seed builds the cache, so its wall time includes the preprocessing.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from pathlib import Path

import torch

from spikeloom.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]


def default_root() -> Path:
    shared = os.environ.get("SPIKELOOM_SHARED_DATA")
    base = Path(shared) if shared else REPO.parent / "shared" / "data"
    return base / "nmnist"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(REPO / "configs" / "nmnist.yaml"))
    ap.add_argument("--root", default=None, help="N-MNIST folder (Train/, Test/)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default=str(REPO / "runs" / "bench_nmnist"))
    ap.add_argument("--threads", type=int, default=None, help="override the config's threads")
    args = ap.parse_args()

    base = TrainConfig.from_yaml(args.config)
    root = Path(args.root) if args.root else default_root()
    if not root.is_dir():
        raise SystemExit(f"N-MNIST folder {root} not found: pass --root DIR (Train/, Test/)")
    print(f"config {args.config}: T={base.dataset_kwargs.get('T')}, dataset_kwargs="
          f"{base.dataset_kwargs}, model={base.model} {base.model_kwargs}, epochs={base.epochs}, "
          f"batch={base.batch_size}, lr={base.lr}; data {root}")
    rows = []
    t_all = time.perf_counter()
    for seed in args.seeds:
        cfg = dataclasses.replace(
            base, root=str(root), seed=seed, out=f"{args.out}/seed{seed}", progress=False,
            plots=False, cost=False,
            threads=args.threads if args.threads is not None else base.threads,
        )
        t0 = time.perf_counter()
        final = train(cfg)
        wall = time.perf_counter() - t0
        rows.append((seed, final["best_val_acc"], final["test_acc"], final["best_epoch"], wall))
        print(f"seed {seed}: val acc {final['best_val_acc']:.3f} (epoch {final['best_epoch']})"
              f"  test acc {final['test_acc']:.3f}  wall {wall:.0f} s", flush=True)
    vals = [r[1] for r in rows]
    tests = [r[2] for r in rows]
    sd = statistics.stdev(tests) if len(tests) > 1 else 0.0
    print(f"mean over {len(rows)} seeds: val acc {statistics.mean(vals):.3f}  test acc "
          f"{statistics.mean(tests):.3f} (sd {sd:.3f}, target >= 0.950)  total wall "
          f"{time.perf_counter() - t_all:.0f} s ({torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
