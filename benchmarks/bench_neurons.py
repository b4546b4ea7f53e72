"""Fused LIF sequence op vs the naive per-step autograd loop (issue 2 target: >= 1.5x).

LIF forward + backward at T=8, B=32, C=64, 16x16 on CPU, both measured in this run.
Usage: python benchmarks/bench_neurons.py [--threads N] [--repeats R]
"""

from __future__ import annotations

import argparse
import time

import torch

from spikeloom.functional import neuron_sequence, neuron_sequence_naive


def time_fn(fn, x, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        xi = x.detach().requires_grad_()
        t0 = time.perf_counter()
        s, _, _ = fn(xi, 0.2, v_th=0.5)
        s.sum().backward()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    T, B, C, H, W = 8, 32, 64, 16, 16
    x = torch.randn(T, B, C, H, W, device=args.device) * 0.5 + 0.4
    for fn in (neuron_sequence, neuron_sequence_naive):  # warm-up
        time_fn(fn, x, 2)
    fused = time_fn(neuron_sequence, x, args.repeats)
    naive = time_fn(neuron_sequence_naive, x, args.repeats)
    print(f"LIF fwd+bwd T={T} B={B} C={C} {H}x{W} ({x.numel() / 1e6:.1f} M neuron-steps), "
          f"{args.device}, {torch.get_num_threads()} threads, best of {args.repeats}")
    print(f"  naive per-step loop : {naive * 1e3:8.2f} ms")
    print(f"  fused sequence op   : {fused * 1e3:8.2f} ms")
    print(f"  speed-up            : {naive / fused:8.2f}x  (target >= 1.5x)")


if __name__ == "__main__":
    main()
