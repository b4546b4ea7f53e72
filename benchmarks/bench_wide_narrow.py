"""Wide-then-narrow (WIN) vs the same deep thin SNN trained from scratch, on ES-Digits.

Thin net: ``deep_thin_snn(width, depth)`` (LIF conv blocks); the wide net has ``factor`` times
the width. WIN: ``--wide-epochs`` on the wide net, ``--block-epochs`` of imitation per stage
(stem + depth blocks), merge, ``--finetune-epochs``. Baseline: the thin net from scratch for the
same total number of epochs (wide + stages × block + fine-tune). Adam lr ``--lr``, batch 32,
ES-Digits at ``--size`` (default 16) with its fixed train/test split; test accuracy after
training, mean over ``--seeds`` seeds.

``--ann``: the same comparison for the ReLU MLP ``deep_thin_mlp`` on an MNIST subset
(``--train-samples``, default 5,000 train images, 2,000 test images; ``../shared/data/mnist``).

Run: ``python benchmarks/bench_wide_narrow.py [--seeds 3] [--ann]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from spikeloom.datasets.esdigits import ESDigits
from spikeloom.datasets.mnist import MNIST
from spikeloom.models import deep_thin_mlp, deep_thin_snn
from spikeloom.train.wide_narrow import WideThenNarrow, train_task

DATA = Path(
    os.environ.get("SPIKELOOM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
TIME_MAJOR = True  # frames [B, T, ...] -> [T, B, ...] (False for the MLP)


def _layout(xb: torch.Tensor) -> torch.Tensor:
    return xb.transpose(0, 1) if TIME_MAJOR else xb


def batches_of(x: torch.Tensor, y: torch.Tensor, bs: int, seed: int):
    g = torch.Generator().manual_seed(seed)

    def it():
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), bs):
            b = perm[i:i + bs]
            yield _layout(x[b]), y[b]

    return it


@torch.no_grad()
def accuracy(model, x, y) -> float:
    model.eval()
    out = torch.cat([model(_layout(x[i:i + 100])) for i in range(0, len(x), 100)])
    model.train()
    return float((out.argmax(1) == y).float().mean()) * 100


def mnist(n_train: int) -> tuple[torch.Tensor, ...]:
    tr, te = MNIST(DATA / "mnist", "train"), MNIST(DATA / "mnist", "test")
    return (tr.images[:n_train].reshape(n_train, -1).float() / 255, tr.labels[:n_train],
            te.images[:2000].reshape(2000, -1).float() / 255, te.labels[:2000])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--width", type=int, default=4)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--factor", type=int, default=4)
    p.add_argument("--size", type=int, default=16)
    p.add_argument("--wide-epochs", type=int, default=4)
    p.add_argument("--block-epochs", type=int, default=1)
    p.add_argument("--finetune-epochs", type=int, default=4)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--rate", action="store_true", help="imitate firing rates (rate_dim=0)")
    p.add_argument("--ann", action="store_true", help="ReLU MLP on an MNIST subset")
    p.add_argument("--train-samples", type=int, default=5000)
    args = p.parse_args()
    torch.set_num_threads(1)
    global TIME_MAJOR
    if args.ann:
        TIME_MAJOR = False
        xtr, ytr, xte, yte = mnist(args.train_samples)
        name = f"MNIST subset (ReLU MLP): {len(xtr)} train / {len(xte)} test"
    else:
        tr, te = ESDigits("train", size=args.size), ESDigits("test", size=args.size)
        xtr, ytr, xte, yte = tr.frames, tr.labels, te.frames, te.labels
        name = f"ES-Digits {args.size}x{args.size}: {len(xtr)} train / {len(xte)} test"
    total = args.wide_epochs + (args.depth + 1) * args.block_epochs + args.finetune_epochs
    print(f"{name}; thin "
          f"width {args.width} depth {args.depth}, wide x{args.factor}; WIN {args.wide_epochs}"
          f" wide + {args.depth + 1}x{args.block_epochs} imitation + {args.finetune_epochs} "
          f"fine-tune epochs; scratch {total} epochs")

    def make(w: int):
        if args.ann:
            return deep_thin_mlp(w, args.depth, in_features=784, num_classes=10)
        return deep_thin_snn(w, args.depth, in_channels=2, num_classes=10)

    res = {"wide": [], "win_merged": [], "win": [], "scratch": []}
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        win = WideThenNarrow(make, args.width, args.factor, channel_dim=-1 if args.ann else 2,
                             lr=args.lr,
                             rate_dim=0 if args.rate else None)
        wide = make(args.width * args.factor)
        data = batches_of(xtr, ytr, args.batch_size, seed)
        train_task(wide, data, args.wide_epochs, lr=args.lr)
        res["wide"].append(accuracy(wide, xte, yte))
        win.prepare(wide)
        win.imitate(data, args.block_epochs)
        thin = win.merge()
        res["win_merged"].append(accuracy(thin, xte, yte))
        train_task(thin, data, args.finetune_epochs, lr=args.lr)
        res["win"].append(accuracy(thin, xte, yte))
        t_win = time.perf_counter() - t0
        torch.manual_seed(seed)
        scratch = make(args.width)
        t0 = time.perf_counter()
        train_task(scratch, batches_of(xtr, ytr, args.batch_size, seed), total, lr=args.lr)
        res["scratch"].append(accuracy(scratch, xte, yte))
        print(f"seed {seed}: wide {res['wide'][-1]:.1f}  WIN after merge "
              f"{res['win_merged'][-1]:.1f}  WIN fine-tuned {res['win'][-1]:.1f}  scratch "
              f"{res['scratch'][-1]:.1f}   ({t_win:.0f} s WIN, "
              f"{time.perf_counter() - t0:.0f} s scratch)")
    for k, v in res.items():
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        print(f"{k:<11} test acc mean {statistics.mean(v):.2f} % ± {sd:.2f} over {len(v)} seeds")


if __name__ == "__main__":
    main()
