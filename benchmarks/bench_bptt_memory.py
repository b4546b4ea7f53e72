"""Peak BPTT training memory with and without spikeloom's memory options (spikeloom.memory).

A spiking VGG-style net on 2x128x128 binary event frames, batch 16, T = 4 ... 32: nine blocks
``conv3x3 -> tdBN -> LIF``, three per resolution (64, 32, 16 pixels with 16, 32, 64 channels;
the first conv of each resolution has stride 2), then a linear readout averaged over time,
cross-entropy loss. One training step (forward + backward)
per configuration, each in a fresh subprocess:

* ``none``          plain BPTT (the neuron op still saves only ``u``);
* ``spike_bits``    binary synapse inputs saved as bits;
* ``checkpoint``    block checkpointing;
* ``both``          the two together.

Memory = peak resident set size of the process during the step (``ru_maxrss``) minus its
resident size just before the step (model, data and imports already loaded): the extra memory
the step needs. Children run with ``MALLOC_MMAP_THRESHOLD_=131072`` (glibc maps every tensor
separately and returns it to the system when freed, so RSS follows the live tensors rather than
freed heap memory). Every configuration's loss and gradient checksum are printed and compared with
``none`` (they must be identical). Target: ``both`` at T = 16 <= 0.5x ``none``.

Usage: PYTHONPATH=src python benchmarks/bench_bptt_memory.py [--T 4 8 16 32] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

CONFIGS = {
    "none": {},
    "spike_bits": {"spike_bits": True},
    "checkpoint": {"checkpoint": "block"},
    "both": {"spike_bits": True, "checkpoint": "block"},
}


def build_net():
    """Blocks ``conv3x3 -> tdBN -> LIF``; three per resolution (64, 32, 16 pixels; 16, 32, 64
    channels), the first of each with stride 2, so every conv input is binary (spikes or
    event frames); then a linear readout."""
    from torch import nn

    from spikeloom.layers import TdBN, TimeDistributed
    from spikeloom.neurons import LIF

    blocks, c_in = [], 2
    for c in (16, 32, 64):
        for i in range(3):
            conv = nn.Conv2d(c_in, c, 3, stride=2 if i == 0 else 1, padding=1)
            blocks.append(nn.Sequential(TimeDistributed(conv), TdBN(c), LIF()))
            c_in = c
    head = nn.Sequential(TimeDistributed(nn.Flatten()), TimeDistributed(nn.Linear(64 * 256, 10)))
    return nn.Sequential(*blocks, head)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(T: int, batch: int, config: str, threads: int) -> None:
    import torch

    from spikeloom.memory import apply_memory_options

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = build_net()
    apply_memory_options(net, **CONFIGS[config])
    x = (torch.rand(T, batch, 2, 128, 128) < 0.15).float()
    y = torch.arange(batch) % 10
    before = _rss_mb()
    t0 = time.perf_counter()
    loss = torch.nn.functional.cross_entropy(net(x).mean(0), y)
    loss.backward()
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
    gsum = sum(float(p.grad.double().abs().sum()) for p in net.parameters())
    print(json.dumps({"extra_mb": peak - before, "loss": float(loss), "gsum": gsum,
                      "seconds": wall}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--T", type=int, nargs="+", default=[4, 8, 16, 32])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", nargs=2, metavar=("T", "CONFIG"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(int(args.child[0]), args.batch, args.child[1], args.threads)
        return
    print(f"spiking VGG 9 blocks, 2x128x128, batch {args.batch}, {args.threads} threads; "
          f"memory = peak RSS during one training step minus RSS before it; "
          f"load average {os.getloadavg()[0]:.2f}")
    # glibc serves every allocation >= 128 KiB by mmap and unmaps it on free (a fixed
    # threshold also stops its dynamic growth), so the resident size follows the live tensors
    # instead of freed-but-kept heap memory
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
    for T in args.T:
        res = {}
        for name in CONFIGS:
            out = subprocess.run([sys.executable, __file__, "--child", str(T), name, "--batch",
                                  str(args.batch), "--threads", str(args.threads)],
                                 check=True, capture_output=True, text=True, env=env).stdout
            res[name] = json.loads(out.strip().splitlines()[-1])
        base = res["none"]
        for name, r in res.items():
            same = r["loss"] == base["loss"] and r["gsum"] == base["gsum"]
            print(f"T={T:3d} {name:11s}: +{r['extra_mb']:8.1f} MB  "
                  f"({r['extra_mb'] / base['extra_mb']:.2f}x of none)  step {r['seconds']:6.1f} s"
                  f"  loss {r['loss']:.6f}  identical to none: {'yes' if same else 'NO'}",
                  flush=True)


if __name__ == "__main__":
    main()
