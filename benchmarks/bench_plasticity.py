"""Hybrid plasticity (HP) vs backprop-only (GP) vs local-only (LP) on MNIST, clean and noisy.

The reference demo's recipe (784-512-10 LIF, T = 10, V_th 0.35, decay 0.4, MSE on one-hot,
Adam 1e-3 for the slow weights and 5e-4 for the rule parameters, batch 100, fast weights
carried from batch to batch during training), shortened with ``--epochs`` and
``--train-samples`` on a shared machine. Test accuracy on the clean test set and under Gaussian
input noise (variance 0.06, clipped to [0, 1], the demo's "noise level 6"), with the fast
weights reset before evaluation (our default) and carried over from training (the demo).

Data: ``../shared/data/mnist``. Run: ``python benchmarks/bench_plasticity.py [--epochs 2]``
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from spikeloom.datasets.mnist import MNIST
from spikeloom.plasticity import HybridPlasticityNet, evaluate_hp, mse_onehot

DATA = Path(
    os.environ.get("SPIKELOOM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def load(split: str, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    ds = MNIST(DATA / "mnist", split)
    x, y = ds.images.reshape(len(ds), -1).float() / 255.0, ds.labels
    if n is not None and n < len(ds):
        idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:n]
        x, y = x[idx], y[idx]
    return x, y


def train(net: HybridPlasticityNet, x, y, args) -> tuple[float, list]:
    opt = torch.optim.Adam(net.param_groups(1e-3, 5e-4))
    g = torch.Generator().manual_seed(args.seed)
    fast = None
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x) - args.batch_size + 1, args.batch_size):
            b = perm[i:i + args.batch_size]
            res = net.run(x[b], fast)
            loss = mse_onehot(res.out, y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            fast = [None if p is None else p.detach() for p in res.fast]
    return time.perf_counter() - t0, fast


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-samples", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--T", type=int, default=10)
    p.add_argument("--noise-var", type=float, default=0.06)
    p.add_argument("--seed", type=int, default=111)
    args = p.parse_args()
    torch.set_num_threads(1)
    xtr, ytr = load("train", args.train_samples)
    xte, yte = load("test", None)
    gn = torch.Generator().manual_seed(0)
    noisy = (xte + args.noise_var ** 0.5 * torch.randn(xte.shape, generator=gn)).clamp(0, 1)
    print(f"train {len(xtr)} samples, {args.epochs} epoch(s), T={args.T}, batch "
          f"{args.batch_size}; noise: Gaussian var {args.noise_var}, clipped to [0, 1]")
    print(f"{'variant':<10}{'clean':>8}{'noisy':>8}{'clean*':>8}{'noisy*':>8}{'train s':>9}"
          "   (* = fast weights carried from training, as in the demo)")
    for variant in ("local", "backprop", "hybrid"):
        torch.manual_seed(args.seed)
        net = HybridPlasticityNet((784, 512, 10), variant=variant, T=args.T)
        secs, fast = train(net, xtr, ytr, args)
        accs = []
        for reset in (True, False):
            for xs in (xte, noisy):
                batches = [(xs[i:i + 1000], yte[i:i + 1000]) for i in range(0, len(xs), 1000)]
                accs.append(evaluate_hp(net, batches, reset_fast=reset, fast=fast)[0] * 100)
        print(f"{variant:<10}" + "".join(f"{a:>8.2f}" for a in accs) + f"{secs:>9.0f}")


if __name__ == "__main__":
    main()
