"""TTFS (identity mapping) vs its ReLU twin on MNIST, plus ReLU+BN → TTFS conversion.

The spec's "FC2" recipe (784-340-10, Adam lr 5e-4 ×0.9 every 5000 steps, batch 8, float64,
windows from x_max = 1000 growing ×10 after every step), shortened with ``--epochs`` and
``--train-samples`` on a shared machine. The TTFS net and the ReLU net start from the same
weights and see the same batches. Reported: test accuracy of both, their difference, average
spikes per hidden neuron on the test set, neurons that would fire before their window, the
windows, and the cost report's SynOps (accumulates) next to the ReLU net's dense MACs.
Then a ReLU net with BatchNorm is trained the same way and converted (BN folded, windows from
the measured maxima); its TTFS version is evaluated on the test set.

Data: ``../shared/data/mnist`` (set SPIKELOOM_SHARED_DATA to override).
Run: ``python benchmarks/bench_ttfs.py [--epochs 1] [--train-samples 55000]``
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from torch import nn

from spikeloom.cost import measure_cost
from spikeloom.datasets.mnist import MNIST
from spikeloom.ttfs import TTFSNet, relu_to_ttfs

DATA = Path(
    os.environ.get("SPIKELOOM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
D64 = torch.float64


def load(split: str, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    ds = MNIST(DATA / "mnist", split)
    x = ds.images.reshape(len(ds), -1).to(D64) / 255.0
    y = ds.labels
    if n is not None and n < len(ds):  # stratified-enough: a seeded random subset
        idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:n]
        x, y = x[idx], y[idx]
    return x, y


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, args, ttfs: bool) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=5e-4)
    sched = torch.optim.lr_scheduler.StepLR(opt, 5000, gamma=0.9)
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    for _ in range(args.epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), args.batch_size):
            b = perm[i:i + args.batch_size]
            if ttfs:
                tr = model.trace(x[b])
                out = tr.logits
            else:
                out = model(x[b])
            loss = nn.functional.cross_entropy(out, y[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if ttfs:
                model.grow_windows(tr)
    return time.perf_counter() - t0


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x).argmax(1) == y).double().mean()) * 100


@torch.no_grad()
def ttfs_stats(net: TTFSNet, x: torch.Tensor) -> tuple[float, int]:
    spk = n = early = 0
    for i in range(0, len(x), 1000):
        tr = net.trace(x[i:i + 1000])
        spk += sum(float(s.sum()) for s in tr.spikes)
        n += sum(s.numel() for s in tr.spikes)
        early += sum(tr.early)
    return spk / n, early


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--train-samples", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(1)
    xtr, ytr = load("train", args.train_samples)
    xte, yte = load("test", None)
    torch.manual_seed(args.seed)
    snn = TTFSNet((784, 340, 10), x_max=1000.0).to(D64)
    relu = snn.relu_twin()
    print(f"train {len(xtr)} samples, {args.epochs} epoch(s), batch {args.batch_size}, float64")
    t_relu = train(relu, xtr, ytr, args, ttfs=False)
    t_snn = train(snn, xtr, ytr, args, ttfs=True)
    a_relu, a_snn = accuracy(relu, xte, yte), accuracy(snn, xte, yte)
    spn, early = ttfs_stats(snn, xte)
    print(f"ReLU 784-340-10   test acc {a_relu:.2f} %   train {t_relu:.0f} s")
    print(f"TTFS 784-340-10   test acc {a_snn:.2f} %   train {t_snn:.0f} s   "
          f"|diff| {abs(a_snn - a_relu):.2f} points (claim: within 0.2)")
    print(f"TTFS spikes per hidden neuron {spn:.3f} (claim < 1; paper < 0.3), neurons firing "
          f"before their window on test: {early}, windows {[round(w, 1) for w in snn.widths]}")
    batches = [xte[i:i + 500][None] for i in range(0, 2000, 500)]
    rep = measure_cost(snn, batches)
    t, ratio = rep.totals, rep.ann_energy / rep.snn_energy
    print(f"cost report (2000 test images): SynOps (Eff_ACs) {t['Eff_ACs']:.0f} per image vs "
          f"dense MACs {t['Dense']:.0f}; energy ratio ANN/SNN {ratio:.1f}")
    # conversion path: ReLU + BatchNorm trained normally, converted with BN folded
    torch.manual_seed(args.seed)
    bn_net = nn.Sequential(nn.Linear(784, 340), nn.BatchNorm1d(340), nn.ReLU(),
                           nn.Linear(340, 10)).to(D64)
    train(bn_net, xtr, ytr, args, ttfs=False)
    bn_net.eval()
    conv = relu_to_ttfs(bn_net, [xtr[i:i + 1000] for i in range(0, min(len(xtr), 10000), 1000)])
    a_bn, a_conv = accuracy(bn_net, xte, yte), accuracy(conv, xte, yte)
    with torch.no_grad():
        diff = float((conv(xte) - bn_net(xte)).abs().max())
    spn_c, early_c = ttfs_stats(conv, xte)
    print(f"ReLU+BN {a_bn:.2f} % -> converted TTFS {a_conv:.2f} %  max |logit diff| {diff:.1e}  "
          f"spikes/neuron {spn_c:.3f}  early {early_c}  windows "
          f"{[round(w, 2) for w in conv.widths]}")


if __name__ == "__main__":
    main()
