"""LIF forward + backward on the CPU: every backend, SpikingJelly and the memory bandwidth.

Shapes (T x B x C x H x W, and an MLP T x B x F): 8x32x64x16x16, 32x32x64x16x16, 16x128x1024.
For each: the ``cpu_kernel`` backend (compiled C++/OpenMP), ``torch_fused``, the naive per-step
loop (``reference``) and SpikingJelly's multi-step ``LIFNode`` (its CPU path,
``functional.lif_multi_step``) when ``spikingjelly`` is importable; all with the sigmoid
surrogate (alpha 4), ``V_th`` 0.5, decay 0.2 (SpikingJelly: ``tau = 1.25``,
``decay_input=False``), firing on ``>=`` (SpikingJelly's rule), upstream gradient a fixed
random tensor. Time: best of ``--repeats``, forward + backward, one thread count for all.

Bandwidth: a copy benchmark in the same run (``dst.copy_(src)`` of ``--copy-mb`` MB; bytes
moved = read + write). The kernel's *effective* bandwidth counts the bytes a spiking layer's
op must move at least: forward reads ``x`` and writes ``s`` (8 B/neuron-step in float32),
backward reads ``x`` (to recompute ``u``), ``g_s`` and writes ``g_x`` (12 B) — 20 B per
neuron-step in all. ``cpu_kernel`` is the path a LIF layer takes (``need_u=False``: ``u`` not
stored, recomputed in backward); ``cpu_kernel+u`` stores ``u`` (LIAF, probed neurons); the
other backends always store it.
Targets: >= 5x SpikingJelly, >= 50 % of the measured copy bandwidth. The op must write fresh
outputs (spikes, gradient), which the reused ``copy_`` buffer never pays for (page faults and
the kernel zeroing new pages); ``clone()`` (a fresh output, like any op's) is printed beside it.

Usage: PYTHONPATH=src:/tmp/peer_sj python benchmarks/bench_kernels.py [--threads N]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import torch

from spikeloom.ops import available_backends, get_backend
from spikeloom.ops.neuron_sequence import NeuronSpec

SHAPES = [(8, 32, 64, 16, 16), (32, 32, 64, 16, 16), (16, 128, 1024)]
SPEC = NeuronSpec.make(v_th=0.5, surrogate="sigmoid", width=4.0, fire_ge=True)
#: spikeloom's LIF default surrogate (STBP's rectangle): cheaper backward than the sigmoid
SPEC_RECT = NeuronSpec.make(v_th=0.5, surrogate="rectangular", width=1.0, fire_ge=True)
DECAY = 0.2


def best_time(step: Callable[[], None], repeats: int) -> float:
    step()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    return best


def backend_step(name: str, x: torch.Tensor, g: torch.Tensor, need_u: bool = False,
                 spec: NeuronSpec = SPEC) -> Callable[[], None]:
    fn = get_backend("neuron_sequence", name).fn

    def step() -> None:
        xi = x.detach().requires_grad_()
        s, _, _ = fn(xi, DECAY, spec, None, need_u=need_u)
        s.backward(g)

    return step


def spikingjelly_step(x: torch.Tensor, g: torch.Tensor) -> Callable[[], None] | None:
    try:
        from spikingjelly.activation_based import neuron, surrogate
    except ImportError:
        return None
    node = neuron.LIFNode(tau=1.0 / (1.0 - DECAY), decay_input=False, v_threshold=0.5,
                          v_reset=0.0, surrogate_function=surrogate.Sigmoid(alpha=4.0),
                          step_mode="m")

    def step() -> None:
        node.reset()
        xi = x.detach().requires_grad_()
        node(xi).backward(g)

    return step


def copy_bandwidth(mb: int, repeats: int) -> tuple[float, float]:
    """(``copy_`` into a reused buffer, ``clone()`` into a fresh one) in bytes/s, read + write."""
    src = torch.rand(mb * 2**20 // 4)
    dst = torch.empty_like(src)
    t = best_time(lambda: dst.copy_(src), repeats)
    t_fresh = best_time(lambda: src.clone(), repeats)
    return 2 * src.numel() * 4 / t, 2 * src.numel() * 4 / t_fresh


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--copy-mb", type=int, default=256)
    ap.add_argument("--skip-naive-above", type=int, default=40_000_000,
                    help="skip the naive loop above this many neuron-steps")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}, "
          f"{torch.get_num_threads()} threads, best of {args.repeats}, float32, CPU")
    bw, bw_fresh = copy_bandwidth(args.copy_mb, args.repeats)
    print(f"copy bandwidth ({args.copy_mb} MB copy_, read + write): {bw / 1e9:.2f} GB/s "
          f"(target base); into a fresh tensor (clone): {bw_fresh / 1e9:.2f} GB/s")
    have = available_backends("neuron_sequence", "cpu")
    for shape in SHAPES:
        torch.manual_seed(0)
        x = torch.randn(shape) * 0.5 + 0.4
        g = torch.randn(shape)
        n = x.numel()
        rows: dict[str, float] = {}
        for name in ("cpu_kernel", "torch_fused", "reference"):
            if name not in have or (name == "reference" and n > args.skip_naive_above):
                continue
            rows[name] = best_time(backend_step(name, x, g), args.repeats)
            if name == "cpu_kernel":  # potentials stored for backward (LIAF, probes)
                rows["cpu_kernel+u"] = best_time(backend_step(name, x, g, True), args.repeats)
        sj = spikingjelly_step(x, g)
        if sj is not None:
            rows["spikingjelly"] = best_time(sj, args.repeats)
        print(f"LIF fwd+bwd {'x'.join(map(str, shape))} ({n / 1e6:.1f} M neuron-steps)")
        base = rows.get("cpu_kernel")
        for name, t in rows.items():
            ratio = f"  kernel is {t / base:6.2f}x faster" if base and name != "cpu_kernel" \
                else ""
            print(f"  {name:13s}: {t * 1e3:9.2f} ms{ratio}")
        if sj is None:
            print("  spikingjelly : not importable (pip install --no-deps --target DIR "
                  "spikingjelly; PYTHONPATH=src:DIR)")
        if base:
            eff = 20 * n / base
            print(f"  cpu_kernel effective bandwidth {eff / 1e9:.2f} GB/s = "
                  f"{100 * eff / bw:.0f} % of copy (target >= 50 %), "
                  f"{100 * eff / bw_fresh:.0f} % of clone")
            t_rect = best_time(backend_step("cpu_kernel", x, g, spec=SPEC_RECT), args.repeats)
            eff_r = 20 * n / t_rect
            print(f"  cpu_kernel, rectangular surrogate (spikeloom's LIF default): "
                  f"{t_rect * 1e3:.2f} ms, {100 * eff_r / bw:.0f} % of copy")


if __name__ == "__main__":
    main()
