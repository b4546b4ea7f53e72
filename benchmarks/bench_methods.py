"""Training methods and deep spiking ResNets (issue 12 targets), on data that exists here.

1. ``methods``: surrogate-gradient BPTT (``stbp``), DSR and Joint A-SNN train the *same*
   network (a spiking ResNet, plain BN, LIF ``V_th 0.5``, decay 0.25, ``>=``) with the same T
   on a stratified MNIST subset; each run is a separate process (``spikeloom train``), so its
   peak resident memory is its own. Prints test accuracy, the difference to ``stbp``, training
   time and peak memory. (DSR swaps the LIF layers for DSR-LIF neurons; Joint A-SNN adds the
   ANN twin and one branch exit and evaluates the SNN only.)
2. ``resnet19``: ResNet-19 depth and layout (3-3-2 basic blocks, FC-LIF head) with tdBN on
   ES-Digits, at reduced width (--width, default 1/8 of the paper's 128-256-512) for CPU; prints
   the loss per epoch and whether it stayed finite.
3. ``gradnorm``: a 34-layer spiking ResNet (3-4-6-3 basic blocks) with and without tdBN: the
   gradient norm of each block's first conv weight at initialisation on one ES-Digits batch
   (mean over --batches batches), printed and plotted (PNG).

Usage: python benchmarks/bench_methods.py [--part methods resnet19 gradnorm] [--out DIR] ...
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

_CHILD = r"""
import resource, sys, time
from spikeloom.cli import main
t = time.perf_counter()
rc = main(sys.argv[1:])
print("PEAK_RSS_MIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print("WALL_S", time.perf_counter() - t)
sys.exit(rc)
"""


def run_method(method: str, args: argparse.Namespace) -> dict:
    out = Path(args.out) / f"mnist-{method}"
    cmd = [sys.executable, "-c", _CHILD, "train", "--dataset", "mnist", "--root", args.mnist,
           "--dataset-arg", f"T={args.T}", "--model", "spiking_resnet",
           "--model-arg", f"block_layout={args.layout}", "--model-arg", f"widths={args.widths}",
           "--model-arg", f"stem={args.stem}", "--model-arg", "fc_hidden=null",
           "--model-arg", "norm=bn", "--model-arg", "neuron_kwargs={fire_ge: true}",
           "--method", method, "--epochs", str(args.epochs), "--max-samples",
           str(args.max_samples), "--batch-size", "64", "--threads", str(args.threads),
           "--seed", str(args.seed), "--no-progress", "--no-plots", "--overwrite",
           "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{p.stderr[-2000:]}")
    vals = dict(line.split(" ", 1) for line in p.stdout.splitlines()
                if line.startswith(("PEAK_RSS_MIB", "WALL_S")))
    final = json.loads((out / "final.json").read_text())
    return {"method": method, "test_acc": final["test_acc"], "val": final["best_val_acc"],
            "train_s": final["train_seconds"], "wall_s": float(vals["WALL_S"]),
            "peak_mib": float(vals["PEAK_RSS_MIB"])}


def part_methods(args: argparse.Namespace) -> None:
    print(f"MNIST subset: {args.max_samples} samples per split (stratified), T={args.T}, "
          f"{args.epochs} epochs, spiking ResNet layout {args.layout} widths {args.widths} "
          f"stem {args.stem}, threads {args.threads}")
    rows = [run_method(m, args) for m in ("stbp", "dsr", "joint-asnn")]
    base = rows[0]["test_acc"]
    for r in rows:
        print(f"{r['method']:<11} test acc {100 * r['test_acc']:6.2f} %  "
              f"(vs stbp {100 * (r['test_acc'] - base):+.2f} points)  train {r['train_s']:6.1f} s"
              f"  wall {r['wall_s']:6.1f} s  peak RSS {r['peak_mib']:7.1f} MiB", flush=True)


def _esdigits_batches(n: int, batch: int):
    import torch

    from spikeloom.datasets import build_dataset

    ds = build_dataset("esdigits", "train")
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(ds), generator=g)[: n * batch].tolist()
    for i in range(n):
        items = [ds[j] for j in idx[i * batch:(i + 1) * batch]]
        x = torch.stack([torch.as_tensor(a) for a, _ in items], 1).float()
        y = torch.tensor([int(b) for _, b in items])
        yield x, y


def part_resnet19(args: argparse.Namespace) -> None:
    from spikeloom.train import TrainConfig, train

    w = args.width
    cfg = TrainConfig(dataset="esdigits", model="resnet19", epochs=args.r19_epochs,
                      batch_size=32, max_samples=args.r19_samples, threads=args.threads,
                      progress=False, plots=False, cost=False, quiet=True, lr=1e-3,
                      model_kwargs={"widths": [128 // w, 256 // w, 512 // w], "stem": 128 // w,
                                    "fc_hidden": 256 // w},
                      out=str(Path(args.out) / "resnet19"), overwrite=True)
    r = train(cfg)
    losses = [h["train_loss"] for h in r.history]
    import math

    ok = all(math.isfinite(v) for v in losses)
    print(f"ResNet-19 layout (3-3-2 blocks, widths /{w}) + tdBN on ES-Digits "
          f"({args.r19_samples} samples per split): train loss per epoch "
          + " ".join(f"{v:.3f}" for v in losses)
          + "; val acc per epoch " + " ".join(f"{h['val_acc']:.3f}" for h in r.history)
          + f"; test acc {r['test_acc']:.4f}; finite: {ok}; {r['train_seconds']:.0f} s")


def part_gradnorm(args: argparse.Namespace) -> None:
    import torch

    from spikeloom.models import build_model

    torch.set_num_threads(args.threads)
    batches = list(_esdigits_batches(args.batches, 16))
    norms = {}
    for norm in ("tdbn", None):
        torch.manual_seed(0)
        model = build_model("spiking_resnet", block_layout=(3, 4, 6, 3), widths=(8, 16, 32, 64),
                            stem=8, in_channels=2, num_classes=10, fc_hidden=None, norm=norm)
        acc = [0.0] * len(model.layers)
        for x, y in batches:
            model.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            for i, b in enumerate(model.layers):
                g = b.conv1.module.weight.grad
                acc[i] += 0.0 if g is None else float(g.norm())
        norms[str(norm)] = [a / len(batches) for a in acc]
        print(f"34-layer spiking ResNet, norm={norm}: per-block grad norm of conv1 "
              + " ".join(f"{v:.2e}" for v in norms[str(norm)]), flush=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for k, v in norms.items():
        ax.semilogy(range(1, len(v) + 1), [max(a, 1e-12) for a in v], "o-",
                    label="tdBN" if k == "tdbn" else "no normalisation")
    ax.set_xlabel("residual block (input -> output)")
    ax.set_ylabel("‖∂L/∂W_conv1‖ at init")
    ax.set_title("34-layer spiking ResNet on ES-Digits")
    ax.legend()
    fig.tight_layout()
    path = Path(args.out) / "gradnorm_resnet34.png"
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", nargs="+", default=["methods", "resnet19", "gradnorm"],
                    choices=["methods", "resnet19", "gradnorm"])
    ap.add_argument("--out", default="runs/bench_methods")
    ap.add_argument("--mnist", default=str(REPO.parent / "shared" / "data" / "mnist"))
    ap.add_argument("--T", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--max-samples", type=int, default=2000)
    ap.add_argument("--layout", default="[1, 1]")
    ap.add_argument("--widths", default="[16, 32]")
    ap.add_argument("--stem", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--width", type=int, default=8, help="ResNet-19 width divisor")
    ap.add_argument("--r19-epochs", type=int, default=3)
    ap.add_argument("--r19-samples", type=int, default=600)
    ap.add_argument("--batches", type=int, default=2)
    args = ap.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    print(f"load average {os.getloadavg()}  {time.strftime('%H:%M:%S')}")
    for part in args.part:
        {"methods": part_methods, "resnet19": part_resnet19, "gradnorm": part_gradnorm}[part](args)
    print(f"load average {os.getloadavg()}  {time.strftime('%H:%M:%S')}")


if __name__ == "__main__":
    main()
