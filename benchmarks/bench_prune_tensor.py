"""Pruning and tensorized layers on ES-Digits (issue 9): accuracy, parameters, SynOps, energy.

Trains the default LIAF net (``liafnet``, channels 16-32, hidden 128) on the built-in ES-Digits
data, then runs a compression sweep on it with the ``spikeloom compress`` pipeline
(:mod:`spikeloom.compress.sweep`; each entry fine-tuned ``--ft-epochs`` epochs):

* ``prune80``: 80 % global unstructured magnitude pruning;
* ``chan50``: 50 % channel pruning to a smaller dense model, plus the measured CPU forward
  speed-up of that model over the dense one (same input, median of ``--reps`` runs);
* ``tt-fc`` / ``ht-fc``: the hidden FC layer (512 -> 128) in TT / HT format (rank 8);
* ``hybrid`` (TT conv + HT FC, rank 8) beside ``tt`` and ``ht`` whose ranks are chosen so their
  parameter counts are closest to the hybrid's (equal budgets);
* ``lhc`` (LHC-F, density target 0.3) and ``smn`` (SMN in place of tdBN) when ``--with-a67``.

Every figure printed is measured in this run; ratios are against the dense model measured in
the same run. Usage::

    nice -n 10 python benchmarks/bench_prune_tensor.py [--epochs 4] [--ft-epochs 2]
        [--out runs/bench_prune_tensor] [--only NAME ...] [--with-a67]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from spikeloom.compress.sweep import run_sweep, sweep_table
from spikeloom.compress.tensorized import tensorize
from spikeloom.train import TrainConfig, load_run, train

REPO = Path(__file__).resolve().parents[1]


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def equal_budget_rank(run: Path, strategy: str, target: int) -> int:
    """Rank of ``strategy`` whose tensorized model's parameter count is closest to ``target``."""
    _, model, _ = load_run(run)
    best = None
    for r in range(1, 33):
        m = load_run(run)[1] if best is not None else model
        tensorize(m, strategy, rank=r, init="random")
        n = _params(m)
        if best is None or abs(n - target) < abs(best[1] - target):
            best = (r, n)
    return best[0]


def speedup(run: Path, pruned: Path, reps: int) -> tuple[float, float]:
    """Median forward wall time (s) of the dense and the channel-pruned model, one batch."""
    torch.set_num_threads(1)
    _, dense, data = load_run(run)
    _, small, _ = load_run(pruned)
    x = torch.stack([data["test"][i][0] for i in range(32)], dim=1)  # [T, 32, C, H, W]
    out = []
    for m in (dense, small):
        m.eval()
        with torch.inference_mode():
            m(x)
            ts = []
            for _ in range(reps):
                t0 = time.perf_counter()
                m(x)
                ts.append(time.perf_counter() - t0)
        out.append(statistics.median(ts))
    return out[0], out[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--ft-epochs", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "runs" / "bench_prune_tensor"))
    ap.add_argument("--only", nargs="*", default=None, help="run only these sweep entries")
    ap.add_argument("--with-a67", action="store_true", help="add the LHC and SMN entries")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lhc-density", type=float, default=0.3, help="LHC density target d_t")
    ap.add_argument("--ft-lr", type=float, default=None,
                    help="fine-tuning learning rate (default: the driver's, a tenth of the run's)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    base = out / "dense"
    t0 = time.perf_counter()
    if not (base / "final.json").exists():
        cfg = TrainConfig.from_dict(dict(
            dataset="esdigits", model="liafnet", epochs=args.epochs, batch_size=32,
            threads=args.threads, progress=False, plots=False, cost=False, quiet=True,
            out=str(base), overwrite=True))
        res = train(cfg)
        print(f"dense: {args.epochs} epochs, test acc {res['test_acc']:.4f} "
              f"[{time.perf_counter() - t0:.0f}s]", flush=True)
    hybrid_params = None
    entries = [
        {"name": "prune80", "method": "prune", "sparsity": 0.8},
        {"name": "chan50", "method": "prune-structured", "channel_sparsity": 0.5},
        {"name": "tt-fc", "method": "tt", "rank": 8, "tensor_scope": "linear"},
        {"name": "ht-fc", "method": "ht", "rank": 8, "tensor_scope": "linear"},
        {"name": "hybrid", "method": "hybrid", "rank": 8},
    ]
    _, m, _ = load_run(base)
    dense_params = _params(m)
    tensorize(m, "hybrid", rank=8, init="random")
    hybrid_params = _params(m)
    r_tt = equal_budget_rank(base, "tt", hybrid_params)
    r_ht = equal_budget_rank(base, "ht", hybrid_params)
    entries += [{"name": f"tt-r{r_tt}", "method": "tt", "rank": r_tt},
                {"name": f"ht-r{r_ht}", "method": "ht", "rank": r_ht}]
    if args.with_a67:
        lhc_name = "lhc" if args.lhc_density == 0.3 else f"lhc-d{args.lhc_density}"
        entries += [{"name": lhc_name, "method": "lhc", "density": args.lhc_density},
                    {"name": "smn", "method": "smn"}]
    if args.only:
        entries = [e for e in entries if e["name"] in args.only]
    print(f"dense params {dense_params:,}; hybrid rank 8 params {hybrid_params:,}; equal-budget "
          f"ranks: tt {r_tt}, ht {r_ht}", flush=True)
    t1 = time.perf_counter()
    rows = run_sweep(base, {"epochs": args.ft_epochs, "lr": args.ft_lr, "runs": entries},
                     out / "sweep")
    print(sweep_table(rows))
    print(f"sweep wall time {time.perf_counter() - t1:.0f}s; load {os.getloadavg()}")
    src = rows[0]
    for r in rows[1:]:
        d = 100 * (r["test_acc"] - src["test_acc"])
        print(f"{r['name']:>10}: acc {r['test_acc']:.4f} ({d:+.2f} "
              f"pts), params x{src['params'] / r['params']:.2f} fewer, SynOps "
              f"x{r['synops'] / src['synops']:.3f}, energy x{r['energy_j'] / src['energy_j']:.3f}")
    fc = dict(load_run(base)[1].named_modules())["classifier.1"]
    for name in ("tt-fc", "ht-fc"):
        if (out / "sweep" / name / "final.json").exists():
            layer = dict(load_run(out / "sweep" / name)[1].named_modules())["classifier.1"]
            print(f"{name}: classifier.1 {_params(fc):,} -> {_params(layer):,} parameters "
                  f"(x{_params(fc) / _params(layer):.1f} fewer)")
    for name in [e["name"] for e in entries if e["method"] == "lhc"]:
        if (out / "sweep" / name / "final.json").exists():
            from spikeloom.compress.lhc import lhc_report

            _, m, data = load_run(out / "sweep" / name)
            m(torch.stack([data["test"][i][0] for i in range(8)], dim=1))
            for r in lhc_report(m):
                print(f"lhc {r.name}: density {r.density:.3f}, FLOPs {r.flops_kept:,} of "
                      f"{r.flops_all:,} per sample-step, empty slices {r.empty_slices:.3f}")
    if (out / "sweep" / "chan50" / "final.json").exists():
        td, ts = speedup(base, out / "sweep" / "chan50", args.reps)
        print(f"chan50 CPU forward (batch 32, 1 thread): dense {td * 1e3:.1f} ms, pruned "
              f"{ts * 1e3:.1f} ms, speed-up x{td / ts:.2f}; load {os.getloadavg()}")
    print(f"plot: {out / 'sweep' / 'sweep.png'}")


if __name__ == "__main__":
    main()
