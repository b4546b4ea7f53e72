"""Quantization benchmark: fp32 vs int8 (+ integer executor), 4-bit and DuQ ternary.

Trains the ``configs/nmnist.yaml`` network with LIF neurons (spiking, so it can be lowered to
integers) in fp32, then ``spikeloom compress``-es the run with int8 (8-bit weights and
activations, 16-bit integer membrane), 4-bit weights, and DuQ b=2 (ternary), each fine-tuned
``--ft-epochs``. Prints test accuracy, model bytes and energy (cost report, per-layer
precision) of each, and for int8 the integer executor's accuracy, its bit-exact spike agreement
with the torch model, and its throughput beside the fp32 torch model's (same batches, this run).

    python benchmarks/bench_quant.py [--epochs 8] [--ft-epochs 2] [--config configs/nmnist.yaml]
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
    ap.add_argument("--config", default="configs/nmnist.yaml")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--ft-epochs", type=int, default=2)
    ap.add_argument("--out", default="runs/bench_quant")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    base_cfg = TrainConfig.from_yaml(a.config)
    base_cfg = dataclasses.replace(
        base_cfg, epochs=a.epochs, out=str(out / "fp32"), overwrite=True, plots=False,
        progress=False, quiet=True, threads=a.threads,
        model_kwargs={**base_cfg.model_kwargs, "neuron": "lif"})
    t0 = time.perf_counter()
    res = train(base_cfg)
    print(f"fp32 LIF net trained {a.epochs} epochs in {time.perf_counter() - t0:.0f} s, "
          f"test acc {res['test_acc']:.4f}", flush=True)
    rows = {}
    for name, method, bits in [("int8", "int8", 8), ("int4", "quant", 4), ("duq-b2", "duq", 2)]:
        t0 = time.perf_counter()
        cli(["compress", str(out / "fp32"), "--method", method, "--bits", str(bits),
             "--epochs", str(a.ft_epochs), "--out", str(out / name), "--overwrite", "--quiet"])
        rows[name] = json.loads((out / name / "report.json").read_text())
        print(f"{name}: compressed + fine-tuned in {time.perf_counter() - t0:.0f} s", flush=True)
    fp = rows["int8"]["before"]
    print(f"\n{'model':10s}{'test acc':>10s}{'Δ vs fp32':>11s}{'bytes':>11s}{'energy/sample':>15s}")
    print(f"{'fp32':10s}{fp['test_acc']:10.4f}{'':>11s}{fp['model_bytes']:11,.0f}"
          f"{fp['energy_j']:15.4g}")
    for name, r in rows.items():
        af = r["after"]
        print(f"{name:10s}{af['test_acc']:10.4f}{100 * (af['test_acc'] - fp['test_acc']):+10.2f}p"
              f"{af['model_bytes']:11,.0f}{af['energy_j']:15.4g}")
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
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
          f"(cores: {os.cpu_count()})")


if __name__ == "__main__":
    main()
