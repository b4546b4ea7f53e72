"""LIAF-Net on ES-MNIST (issue 12 target: >= 99.0 % test, selected on validation).

1. Conversion: MNIST's IDX files -> ES-MNIST events with ``spikeloom convert --idx`` (ODG at
   28x28, no crop, no image discarded): the 60,000 training images into ``OUT/train`` and the
   10,000 test images into ``OUT/val`` (``--split val``). Timed; skipped when ``OUT`` already
   holds both label files (then the recorded time of the earlier conversion is reused).
   Keep ``OUT`` outside the repository (default ``/work/data/es_mnist``).
2. Training: ``spikeloom train --dataset eventfolder --root OUT --model liafnet`` (LIAF-Net
   defaults: conv 16-32 with tdBN, FC 128, LIAF neurons; T = 8 frames = the 8 ODG steps). The
   eventfolder dataset splits 10 % of the training files off for validation (54,000 / 6,000),
   and its test split is ``OUT/val`` (the official 10,000 test images). The epoch with the best
   validation accuracy is tested once.

Prints the conversion time, accuracy per epoch and the test accuracy; writes
``benchmarks/results/liaf_esmnist.json``.

Usage: python benchmarks/bench_liaf_esmnist.py [--out-data DIR] [--epochs N] [--max-samples N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MNIST = REPO.parent / "shared" / "data" / "mnist"


def convert(out: Path, workers: int) -> dict:
    """Convert both MNIST parts into ``out`` (unless done); their wall times in seconds."""
    record = out / "bench_conversion.json"
    if (out / "trainlabel.txt").exists() and (out / "vallabel.txt").exists() and record.exists():
        return {**json.loads(record.read_text()), "reused": True}
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    times = {}
    for part, stem, extra in (("train", "train", []), ("test", "t10k", ["--split", "val"])):
        cmd = [sys.executable, "-m", "spikeloom.cli", "convert", "--idx",
               str(MNIST / f"{stem}-images-idx3-ubyte.gz"),
               str(MNIST / f"{stem}-labels-idx1-ubyte.gz"), str(out), *extra, "--size", "28",
               "--no-crop", "--min-events", "0", "--workers", str(workers), "--no-progress"]
        t = time.perf_counter()
        subprocess.run(cmd, check=True, env=env)
        times[part] = time.perf_counter() - t
        print(f"converted MNIST {part} in {times[part]:.1f} s ({workers} worker(s))", flush=True)
    res = {"seconds": times, "workers": workers, "load_avg": os.getloadavg()}
    record.write_text(json.dumps(res, indent=1))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-data", default="/work/data/es_mnist", help="ES-MNIST folder")
    ap.add_argument("--out", default="runs/bench_liaf_esmnist", help="run directory")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--max-samples", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--workers", type=int, default=1, help="conversion worker processes")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    print(f"load average {os.getloadavg()}  {time.strftime('%H:%M:%S')}", flush=True)
    data = Path(args.out_data)
    data.mkdir(parents=True, exist_ok=True)
    conv = convert(data, args.workers)
    print(f"conversion: {conv}", flush=True)

    from spikeloom.train import TrainConfig, train

    cfg = TrainConfig(dataset="eventfolder", root=str(data),
                      dataset_kwargs={"T": 8, "cache_dir": str(data.parent / "es_mnist_cache")},
                      model="liafnet", epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      max_samples=args.max_samples, threads=args.threads, progress=False,
                      plots=False, cost=False, out=args.out, overwrite=True)
    r = train(cfg)
    for h in r.history:
        print(f"epoch {h['epoch']}: train acc {h['train_acc']:.4f}  val acc {h['val_acc']:.4f}"
              f"  {h['seconds']:.0f} s", flush=True)
    print(f"LIAF-Net on ES-MNIST: test acc {100 * r['test_acc']:.2f} % (epoch {r.best_epoch}, "
          f"val {100 * r.best_val_acc:.2f} %), train {r['train_seconds']:.0f} s", flush=True)
    out = REPO / "benchmarks" / "results" / "liaf_esmnist.json"
    out.write_text(json.dumps({"conversion": conv, "epochs": args.epochs,
                               "max_samples": args.max_samples, "history": r.history,
                               "best_epoch": r.best_epoch, "best_val_acc": r.best_val_acc,
                               "test_acc": r["test_acc"], "train_seconds": r["train_seconds"],
                               "load_avg": os.getloadavg()}, indent=1, default=float))
    print(f"json: {out}  load average {os.getloadavg()}  {time.strftime('%H:%M:%S')}")


if __name__ == "__main__":
    main()
