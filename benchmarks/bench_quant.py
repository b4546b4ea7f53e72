"""Quantization benchmark: fp32 vs int8 (+ integer executor), 4-bit and DuQ ternary.

Trains a network with LIF neurons (spiking, so it can be lowered to integers) in fp32 — the
``configs/nmnist.yaml`` network on the N-MNIST subset (``--dataset nmnist``, 100 test
recordings) or the default ``liafnet`` on the built-in ES-Digits (``--dataset esdigits``, 270
test samples) — then ``spikeloom compress``-es the run with int8 (8-bit weights and
activations, 16-bit integer membrane), 4-bit weights (per-channel, symmetric) and DuQ b=2
(ternary; per-channel clip/scale with the least-squares init ``--duq-init mse``, see
``spikeloom.compress.quant.fake.duq_mse_init``), each fine-tuned by a recipe (below) and
selected on validation by the trainer. Every layer is quantized (first and last included),
except in ``duq-b2-fl8`` (ternary with the first and last synapses at 8 bits,
``--first-last-bits 8``).

Recipes: each ``--recipes`` entry ``EPOCHS:LR`` (``LR`` ``d`` = the driver's default, a tenth
of the run's; ``VARIANT/EPOCHS:LR``: for that variant only) is fine-tuned with each of
``--seeds`` (the fp32 model fixed); per variant the recipe with the best mean *validation*
accuracy over the seeds is chosen, and only its test accuracies are reported: the seed-0 run
(the single figure) and the mean ± std over the seeds (on 100 test recordings one recording is
one point). For every chosen run the integer executor
is checked on every test sample (bit-exact spike/activation agreement with the frozen torch
twin, accuracy). Prints test accuracy, model bytes and energy (cost report, per-layer
precision), and the int8 executor's throughput beside the fp32 torch model's. Writes
``benchmarks/results/quant_<dataset>.json``.

    python benchmarks/bench_quant.py [--dataset nmnist|esdigits] [--epochs 8] \
        [--recipes 5:d duq-b2/5:1e-3] [--seeds 0 1 2] [--only int8 int4 duq-b2 duq-b2-fl8]

The fp32 run and every finished fine-tuning run under ``--out`` are reused (delete them to
retrain).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import torch

from spikeloom.cli import main as cli
from spikeloom.compress.integer import integer_eval
from spikeloom.train import DistInfo, TrainConfig, global_batches, load_run, make_loader, train


def _throughput_fp32(model, loader, reps: int = 1) -> float:
    model.eval()
    n, secs = 0, 0.0
    with torch.no_grad():
        for x, _ in loader:
            t0 = time.perf_counter()
            model(x)
            secs += time.perf_counter() - t0
            n += x.shape[1]
    return n / secs


VARIANTS: dict[str, list[str]] = {
    "int8": ["--method", "int8", "--bits", "8"],
    "int4": ["--method", "quant", "--bits", "4"],
    "duq-b2": ["--method", "duq", "--bits", "2", "--duq-init", "mse", "--per-channel"],
    "duq-b2-fl8": ["--method", "duq", "--bits", "2", "--duq-init", "mse", "--per-channel",
                   "--first-last-bits", "8"],
}


def _fp32_seed_spread(base_cfg: TrainConfig, fp_final: dict, out: Path, a) -> None:
    """Train the fp32 model with each of ``a.fp32_seeds`` and report test/val per seed."""
    per_seed = {base_cfg.seed: fp_final}
    for seed in a.fp32_seeds:
        if seed in per_seed:
            continue
        run = out / f"fp32_seed{seed}"
        if not (run / "final.json").exists():
            train(dataclasses.replace(base_cfg, seed=seed, out=str(run)))
        per_seed[seed] = json.loads((run / "final.json").read_text())
    tests = [r["test_acc"] for r in per_seed.values()]
    vals = [r["best_val_acc"] for r in per_seed.values()]
    for seed, r in per_seed.items():
        print(f"fp32 seed {seed}: val {r['best_val_acc']:.4f} (epoch {r['best_epoch']}) "
              f"test {r['test_acc']:.4f}", flush=True)
    m, sd = _mean_sd(tests)
    print(f"fp32 over {len(tests)} training seeds: test {100 * m:.2f} ± {100 * sd:.2f} %, "
          f"val {100 * _mean_sd(vals)[0]:.2f} %", flush=True)
    res = Path(__file__).parent / "results" / f"quant_{a.dataset}_fp32_seeds.json"
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    res.write_text(json.dumps({"args": vars(a), "load": load, "test_mean_sd": [m, sd],
                               "per_seed": {s: {k: r[k] for k in ("test_acc", "best_val_acc",
                                                                   "best_epoch")}
                                            for s, r in per_seed.items()}}, indent=1))


def _compress(src: Path, dst: Path, opts: list[str], epochs: int, lr: str, seed: int
              ) -> dict[str, Any]:
    """One ``spikeloom compress`` run; its report's ``after`` plus the validation accuracy."""
    ft = ["--epochs", str(epochs), "--seed", str(seed)] + ([] if lr == "d" else ["--lr", lr])
    if not (dst / "report.json").exists():
        cli(["compress", str(src), *opts, *ft, "--out", str(dst), "--overwrite", "--quiet"])
    rep = json.loads((dst / "report.json").read_text())
    final = json.loads((dst / "final.json").read_text())
    return {**rep["after"], "val_acc": final.get("best_val_acc"), "before": rep["before"],
            "integer_program": rep.get("integer_program")}


def _executor_check(run_dir: Path) -> dict[str, Any]:
    cfg, qmodel, data = load_run(run_dir)
    ds = data["test"]
    loader = make_loader(ds, global_batches(len(ds), cfg.batch_size, 0, 0, False), DistInfo())
    ie = integer_eval(qmodel, loader)
    return {k: v for k, v in ie.items() if isinstance(v, (int, float))}


def _recipes(entries: list[str], variant: str) -> list[str]:
    """The ``EP:LR`` recipes of ``variant``: entries ``EP:LR`` (every variant) and
    ``VARIANT/EP:LR`` (that variant only)."""
    out = []
    for e in entries:
        who, _, rc = e.rpartition("/")
        if who in ("", variant):
            out.append(rc)
    return out


def _mean_sd(xs: list[float]) -> tuple[float, float]:
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", choices=["nmnist", "esdigits"], default="nmnist")
    ap.add_argument("--config", default="configs/nmnist.yaml", help="network of --dataset nmnist")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--recipes", nargs="+", default=["5:d"],
                    help="fine-tuning recipes EPOCHS:LR (LR 'd': the driver's default), "
                         "VARIANT/EPOCHS:LR for one variant only")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                    help="fine-tuning seeds (the fp32 model is fixed)")
    ap.add_argument("--only", nargs="*", default=None, help=f"run only these of {list(VARIANTS)}")
    ap.add_argument("--fp32-seeds", type=int, nargs="*", default=[],
                    help="also train the fp32 model with these seeds (its seed spread, for "
                         "reference only: the variants start from the default-seed model) and "
                         "write results/quant_<dataset>_fp32_seeds.json")
    ap.add_argument("--only-fp32", action="store_true",
                    help="stop after the fp32 model(s) (with --fp32-seeds)")
    ap.add_argument("--out", default=None, help="default runs/bench_quant_<dataset>")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.out or f"runs/bench_quant_{a.dataset}")
    if a.dataset == "nmnist":
        base_cfg = TrainConfig.from_yaml(a.config)
    else:
        base_cfg = TrainConfig.from_dict(dict(dataset="esdigits", model="liafnet", batch_size=32))
    base_cfg = dataclasses.replace(
        base_cfg, epochs=a.epochs, out=str(out / "fp32"), overwrite=True, plots=False,
        progress=False, quiet=True, threads=a.threads,
        model_kwargs={**base_cfg.model_kwargs, "neuron": "lif"})
    t0 = time.perf_counter()
    if (out / "fp32" / "final.json").exists():
        fp_final = json.loads((out / "fp32" / "final.json").read_text())
        print(f"fp32 LIF net ({a.dataset}) reused from {out / 'fp32'}", flush=True)
    else:
        train(base_cfg)
        fp_final = json.loads((out / "fp32" / "final.json").read_text())
        print(f"fp32 LIF net ({a.dataset}) trained {a.epochs} epochs in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    print(f"fp32: val {fp_final['best_val_acc']:.4f} test {fp_final['test_acc']:.4f}", flush=True)
    if a.fp32_seeds:
        _fp32_seed_spread(base_cfg, fp_final, out, a)
    if a.only_fp32:
        return
    names = [n for n in VARIANTS if not a.only or n in a.only]
    runs: dict[str, dict[str, dict[int, dict[str, Any]]]] = {}
    for name in names:
        for recipe in _recipes(a.recipes, name):
            ep, lr = recipe.split(":")
            for seed in a.seeds:
                t0 = time.perf_counter()
                r = _compress(out / "fp32", out / f"{name}_e{ep}_lr{lr}_s{seed}", VARIANTS[name],
                              int(ep), lr, seed)
                runs.setdefault(name, {}).setdefault(recipe, {})[seed] = r
                print(f"{name} recipe {recipe} seed {seed}: val {r['val_acc']:.4f} "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
    fp = next(iter(next(iter(runs.values())).values()))[a.seeds[0]]["before"]
    rows: dict[str, Any] = {}
    for name, by_recipe in runs.items():
        val = {rc: _mean_sd([r["val_acc"] for r in rs.values()])[0] for rc, rs in by_recipe.items()}
        best = max(_recipes(a.recipes, name), key=lambda rc: val[rc])  # first on ties
        chosen = by_recipe[best]
        ep, lr = best.split(":")
        tests = [chosen[s]["test_acc"] for s in a.seeds]
        checks = {s: _executor_check(out / f"{name}_e{ep}_lr{lr}_s{s}") for s in a.seeds}
        first = chosen[a.seeds[0]]
        rows[name] = {"recipe": best, "val_by_recipe": val, "test_acc": first["test_acc"],
                      "test_by_seed": tests, "test_mean_sd": _mean_sd(tests),
                      "model_bytes": first["model_bytes"], "energy_j": first["energy_j"],
                      "synops": first["synops"], "executor": checks}
    print(f"\n{'model':12s}{'recipe':>9s}{'val(mean)':>10s}{'test s0':>9s}{'Δ s0':>8s}"
          f"{'test mean±sd':>16s}{'bytes':>10s}{'energy/sample':>15s}{'exec agree':>11s}")
    print(f"{'fp32':12s}{'':9s}{fp_final['best_val_acc']:10.4f}{fp['test_acc']:9.4f}{'':8s}"
          f"{'':16s}{fp['model_bytes']:10,.0f}{fp['energy_j']:15.4g}")
    for name, r in rows.items():
        m, sd = r["test_mean_sd"]
        agree = min(c["agreement"] for c in r["executor"].values())
        print(f"{name:12s}{r['recipe']:>9s}{r['val_by_recipe'][r['recipe']]:10.4f}"
              f"{r['test_acc']:9.4f}{100 * (r['test_acc'] - fp['test_acc']):+7.1f}p"
              f"{100 * m:10.2f}±{100 * sd:4.2f}%{r['model_bytes']:10,.0f}{r['energy_j']:15.4g}"
              f"{agree:11.4f}")
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    summary = {"dataset": a.dataset, "args": vars(a), "fp32": {**fp, **fp_final}, "load": load,
               "rows": rows, "all_runs": {n: {rc: {s: {k: v for k, v in r.items()
                                                       if k != "before"}
                                                   for s, r in rs.items()}
                                              for rc, rs in br.items()}
                                          for n, br in runs.items()}}
    res_path = Path(__file__).parent / "results" / f"quant_{a.dataset}.json"
    res_path.parent.mkdir(exist_ok=True)
    print("load:", load, f"(cores: {os.cpu_count()})")
    if "int8" in rows:
        ie = rows["int8"]["executor"][a.seeds[0]]
        cfg, _, data = load_run(out / "fp32")
        ds = data["test"]
        loader = make_loader(ds, global_batches(len(ds), cfg.batch_size, 0, 0, False),
                             DistInfo())
        _, fmodel, _ = load_run(out / "fp32")
        fp_sps = _throughput_fp32(fmodel, loader)
        print(f"\nint8 integer executor on the test split ({ie['n']} recordings): accuracy "
              f"{ie['acc']:.4f} (fake-quant torch {ie['torch_acc']:.4f}), every-layer "
              f"agreement {ie['agreement']:.4f}, prediction agreement {ie['pred_agreement']:.4f}")
        print(f"throughput: integer executor (numpy int64) {ie['samples_per_s']:.1f} samples/s, "
              f"fp32 torch model {fp_sps:.1f} samples/s ({a.threads} threads)")
        summary["fp32_torch_samples_per_s"] = fp_sps
    res_path.write_text(json.dumps(summary, indent=1, default=str))


if __name__ == "__main__":
    main()
