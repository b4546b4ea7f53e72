"""EOQ (spec A2): full 8-bit training of a BN-free Fixup ResNet vs its fp32 twin, on MNIST.

Both nets are the same :class:`~spikeloom.compress.eoq.FixupResNet` (depth 8, widths 8/16/32,
no BN, Fixup init, same seed, same data order, same lr / momentum / schedule). The fp32 twin:
ReLU, float heavy-ball SGD (``torch.optim.SGD(lr, momentum)``). EOQ: the normalized input on
the 8-bit grid of step 4/128 (``4·C(Q(x/4, 8))``), activations on the 8-bit power-of-two
dynamic-range grid, errors quantized to 8 bits in backward, 8-bit gradient codes, weight
updates of whole grid steps (an 8-bit count) by stochastic rounding with the int16 integer
momentum of :class:`~spikeloom.compress.eoq.IntegerSGD` (no float master copy); every
parameter is checked on the 8-bit grid after the last step. lr ×1/4 at each ``--decay-at``
epoch (a power of two stays a shift). Selection on the validation split after each epoch,
one test evaluation each. Energy per image from the cost report (EOQ conv/dense rows priced
int8, the twin fp32). Writes ``benchmarks/results/eoq_mnist.json``.

History (why earlier versions did not learn; 300-step probes, batch 32): a fan-out-initialised
one-channel stem (fixed in ``fixup_init``), the saturating fixed ``[0, 1)`` activation grid
(``--fixed-range`` keeps it for comparison) and momentum-free ``IntegerSGD`` (plain float SGD
does not learn this net in that budget either). With the integer momentum and the normalized
input (un-normalized ``[0, 1)`` inputs give GAP features of ~0.03 and slow learning for both
twins) both learn.

``--spiking T``: both twins spiking (LIF, ``v_th`` 0.5, decay 0.5, direct input repeated over
``T`` steps, logits averaged over time); the EOQ twin is ``act="lif-eoq"`` — binary spikes need
no activation grid, the errors behind every neuron are quantized to 8 bits (``ErrorQuant8``),
weights/gradients/updates as above.

    python benchmarks/bench_eoq.py [--train-samples 55000] [--epochs 6] [--decay-at 4]
    python benchmarks/bench_eoq.py --spiking 2 ... --out benchmarks/results/eoq_mnist_spiking.json
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import torch

from spikeloom.compress.eoq import C, FixupResNet, IntegerSGD, Q, on_weight_grid
from spikeloom.cost import measure_cost
from spikeloom.datasets.mnist import MNIST


def tensors(root: str, split: str, n: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    ds = MNIST(root, split, T=1)
    idx = torch.as_tensor(ds.indices)
    x = (ds.images[idx] if len(ds.images) != len(ds) else ds.images).float().div(255)
    y = (ds.labels[idx] if len(ds.labels) != len(ds) else ds.labels).long()
    return x[:n].unsqueeze(1), y[:n]


@torch.no_grad()
def accuracy(net, x, y, prep) -> float:
    net.eval()
    return sum(int((net(prep(x[i:i + 500])).argmax(1) == y[i:i + 500]).sum())
               for i in range(0, len(x), 500)) / len(x)


MEAN, STD = 0.1307, 0.3081  # MNIST training-set pixel statistics


def make(kind: str, a) -> tuple[torch.nn.Module, torch.optim.Optimizer, Callable]:
    """The network, its optimizer and its input map for one twin."""
    torch.manual_seed(a.seed)
    eoq = kind == "eoq"
    act = ("lif-eoq" if eoq else "lif") if a.spiking else ("eoq" if eoq else "relu")
    net = FixupResNet(depth=8, widths=(8, 16, 32), in_channels=1, act=act,
                      T=a.spiking or None, dynamic_range=not a.fixed_range)
    steps = (lambda x: x[None].expand(a.spiking, *x.shape)) if a.spiking else (lambda x: x)
    if not eoq:
        return (net, torch.optim.SGD(net.parameters(), lr=a.lr, momentum=a.momentum),
                lambda x: steps((x - MEAN) / STD))
    opt = IntegerSGD(net.parameters(), lr=a.lr, momentum=a.momentum,
                     generator=torch.Generator().manual_seed(a.seed))
    opt.snap_()
    return net, opt, lambda x: steps(4 * C(Q((x - MEAN) / STD / 4, 8), 8))  # 8-bit, step 1/32


def run(kind: str, data, a) -> dict:
    net, opt, prep = make(kind, a)
    eoq = kind == "eoq"
    (xtr, ytr), (xva, yva), (xte, yte) = data
    best, best_ep, state, t0, curve = -1.0, 0, None, time.perf_counter(), []
    for ep in range(a.epochs):
        if ep in a.decay_at:
            for g in opt.param_groups:
                g["lr"] /= 4
        net.train()
        perm = torch.randperm(len(xtr), generator=torch.Generator().manual_seed(ep))
        for i in range(0, len(xtr), a.batch):
            b = perm[i:i + a.batch]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(prep(xtr[b])), ytr[b]).backward()
            opt.step()
        va = accuracy(net, xva, yva, prep)
        curve.append(va)
        if va > best:
            best, best_ep, state = va, ep + 1, copy.deepcopy(net.state_dict())
        print(f"{kind:5s} epoch {ep + 1}: val {va:.4f}  [{time.perf_counter() - t0:.0f} s]",
              flush=True)
    seconds = time.perf_counter() - t0
    grid = all(on_weight_grid(p.detach()) for p in net.parameters()) if eoq else None
    net.load_state_dict(state)
    flat = net if a.spiking else torch.nn.Sequential(torch.nn.Flatten(0, 1), net)
    seq = prep(xte[:200]) if a.spiking else prep(xte[:200])[None]
    rows = measure_cost(flat, [seq]).rows
    rep = measure_cost(flat, [seq], precision={
        r.name: "int8" if eoq else "fp32" for r in rows if r.role == "synapse"})
    return {"test": accuracy(net, xte, yte, prep), "val": best, "best_epoch": best_ep,
            "val_curve": curve, "all_on_8bit_grid": grid, "train_seconds": seconds,
            "energy_j_per_image": rep.snn_energy}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="../shared/data/mnist")
    ap.add_argument("--train-samples", type=int, default=55000)
    ap.add_argument("--val-samples", type=int, default=5000)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--decay-at", type=int, nargs="*", default=[4], help="epochs (0-based)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2.0 ** -5)
    ap.add_argument("--momentum", type=float, default=0.875)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--spiking", type=int, default=0, metavar="T",
                    help="spiking twins (LIF) over T time steps (0: ANN twins)")
    ap.add_argument("--fixed-range", action="store_true", help="EOQ activations on [0, 1)")
    ap.add_argument("--out", default="benchmarks/results/eoq_mnist.json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    data = (tensors(a.root, "train", a.train_samples), tensors(a.root, "val", a.val_samples),
            tensors(a.root, "test", None))
    fp = run("fp32", data, a)
    q = run("eoq", data, a)
    gap = 100 * (q["test"] - fp["test"])
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    net_kind = f"spiking (LIF, T={a.spiking})" if a.spiking else "ANN"
    print(f"\nBN-free {net_kind} Fixup ResNet-8 on MNIST ({len(data[0][0])} training images, "
          f"{a.epochs} "
          f"epochs, batch {a.batch}, lr {a.lr:g} x1/4 at epochs {a.decay_at}, momentum "
          f"{a.momentum:g}; selected on {len(data[1][0])} validation images, tested on all "
          f"{len(data[2][0])}):")
    for name, r in (("fp32 twin", fp), ("EOQ full 8-bit", q)):
        print(f"  {name:15s} test {r['test']:.4f}  (val {r['val']:.4f} at epoch "
              f"{r['best_epoch']}, {r['train_seconds']:.0f} s)  energy/image "
              f"{r['energy_j_per_image']:.4g} J")
    print(f"  difference EOQ - fp32: {gap:+.2f} points (target: within 2); all EOQ parameters "
          f"on the 8-bit grid: {q['all_on_8bit_grid']}")
    print("load:", load)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps({"args": vars(a), "fp32": fp, "eoq": q,
                                       "difference_points": gap, "load": load}, indent=1))
    print("wrote", a.out)


if __name__ == "__main__":
    main()
