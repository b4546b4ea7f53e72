"""Quantization benchmark: fp32 vs int8 (+ integer executor), 4-bit and DuQ ternary.

Trains a network with LIF neurons (spiking, so it can be lowered to integers) in fp32 — the
``configs/nmnist.yaml`` network on the N-MNIST subset (``--dataset nmnist``, 100 test
recordings) or the default ``liafnet`` on the built-in ES-Digits (``--dataset esdigits``, 270
test samples) — then ``spikeloom compress``-es the run with int8 (8-bit weights and
activations, 16-bit integer membrane), 4-bit weights (per-channel, symmetric) and DuQ b=2
(ternary; per-channel clip/scale with the least-squares init ``--duq-init mse``, see
``spikeloom.compress.quant.fake.duq_mse_init``), each fine-tuned ``--ft-epochs`` at ``--ft-lr``
and selected on validation by the trainer. Every layer is quantized (first and last included).
Prints test accuracy, model bytes and energy (cost report, per-layer precision: int4/ternary
rows priced by the derived entries of ``spikeloom.cost.Energy45nm``) of each, and for int8 the
integer executor's accuracy, its bit-exact spike agreement with the torch model, and its
throughput beside the fp32 torch model's (same batches, this run). Writes
``benchmarks/results/quant_<dataset>.json``.

    python benchmarks/bench_quant.py [--dataset nmnist|esdigits] [--epochs 8] [--ft-epochs 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import time
from pathlib import Path

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", choices=["nmnist", "esdigits"], default="nmnist")
    ap.add_argument("--config", default="configs/nmnist.yaml", help="network of --dataset nmnist")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--ft-epochs", type=int, default=5)
    ap.add_argument("--ft-lr", type=float, default=None,
                    help="fine-tuning learning rate (default: the driver's, a tenth of the run's)")
    ap.add_argument("--only", nargs="*", default=None, help="run only these of int8 int4 duq-b2")
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
    res = train(base_cfg)
    print(f"fp32 LIF net ({a.dataset}) trained {a.epochs} epochs in "
          f"{time.perf_counter() - t0:.0f} s, test acc {res['test_acc']:.4f}", flush=True)
    rows = {}
    variants = [("int8", ["--method", "int8", "--bits", "8"]),
                ("int4", ["--method", "quant", "--bits", "4"]),
                ("duq-b2", ["--method", "duq", "--bits", "2", "--duq-init", "mse",
                            "--per-channel"])]
    ft = ["--epochs", str(a.ft_epochs)] + (["--lr", str(a.ft_lr)] if a.ft_lr else [])
    for name, opts in variants:
        if a.only and name not in a.only:
            continue
        t0 = time.perf_counter()
        cli(["compress", str(out / "fp32"), *opts, *ft, "--out", str(out / name), "--overwrite",
             "--quiet"])
        rows[name] = json.loads((out / name / "report.json").read_text())
        print(f"{name}: compressed + fine-tuned in {time.perf_counter() - t0:.0f} s", flush=True)
    fp = next(iter(rows.values()))["before"]
    print(f"\n{'model':10s}{'test acc':>10s}{'Δ vs fp32':>11s}{'bytes':>11s}{'energy/sample':>15s}")
    print(f"{'fp32':10s}{fp['test_acc']:10.4f}{'':>11s}{fp['model_bytes']:11,.0f}"
          f"{fp['energy_j']:15.4g}")
    for name, r in rows.items():
        af = r["after"]
        print(f"{name:10s}{af['test_acc']:10.4f}{100 * (af['test_acc'] - fp['test_acc']):+10.2f}p"
              f"{af['model_bytes']:11,.0f}{af['energy_j']:15.4g}")
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    summary = {"dataset": a.dataset, "args": vars(a), "fp32": fp, "load": load,
               "rows": {k: r["after"] for k, r in rows.items()}}
    res_path = Path(__file__).parent / "results" / f"quant_{a.dataset}.json"
    res_path.parent.mkdir(exist_ok=True)
    res_path.write_text(json.dumps(summary, indent=1, default=str))
    print("load:", load, f"(cores: {os.cpu_count()})")
    if "int8" not in rows:
        return
    cfg, qmodel, data = load_run(out / "int8")
    ds = data["test"]
    loader = make_loader(ds, global_batches(len(ds), cfg.batch_size, 0, 0, False), DistInfo())
    ie = integer_eval(qmodel, loader)
    _, fmodel, _ = load_run(out / "fp32")
    fp_sps = _throughput_fp32(fmodel, loader)
    print(f"\nint8 integer executor on the test split ({ie['n']} recordings): accuracy "
          f"{ie['acc']:.4f} (fake-quant torch {ie['torch_acc']:.4f}), every-layer spike "
          f"agreement {ie['agreement']:.4f}, prediction agreement {ie['pred_agreement']:.4f}")
    print(f"throughput: integer executor (numpy int64) {ie['samples_per_s']:.1f} samples/s, "
          f"fp32 torch model {fp_sps:.1f} samples/s ({a.threads} threads)")
    summary["integer_executor"] = {k: v for k, v in ie.items() if isinstance(v, (int, float))}
    summary["fp32_torch_samples_per_s"] = fp_sps
    res_path.write_text(json.dumps(summary, indent=1, default=str))
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
