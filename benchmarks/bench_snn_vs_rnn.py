"""SNN vs RNN vs LSTM on the N-MNIST subset under one protocol (He et al. 2020, spec §9).

Runs ``configs/snn_vs_rnn_nmnist_{snn,rnn,lstm}.yaml`` through :func:`spikeloom.compare.compare`
on the shared 1,000 training recordings (900 train / 100 validation, stratified) and the 100
test recordings: each model is trained at the configs' frame width (T = 15 frames of dt = 5 ms),
selected on validation, and tested at that dt and at other widths (default: dt = 10 ms with
T = 8, and dt = 2.5 ms with T = 30, about the same 75-80 ms span). Prints the table (accuracy,
parameters, Dense MACs, SynOps, energy per inference at 45 nm) and writes it to
``OUT/compare.md`` and ``OUT/compare.json``.

The paper trains 100 epochs on the full 60,000 recordings; on 900 recordings and a shared
2-core machine this script trains ``--epochs`` (default 20) with one learning rate for all
models (``--lr``, default 1e-3: the paper's 1e-4 / 5e-4 are for ~150k steps, here ~400). Both
overrides are printed. ``--runs`` picks the models: ``snn rnn lstm`` (default; the MLP
twins of the configs) and/or the conv twins ``snn_cnn convrnn convlstm`` with small widths
(``--conv-channels``, default 16 32, pooling after each, FC 128); runs in one table share one
protocol, so a conv table with fewer epochs goes to its own ``--out``.

Usage::

    python benchmarks/bench_snn_vs_rnn.py [--root DIR] [--epochs 20] [--lr 1e-3]
                                          [--runs snn rnn lstm] [--threads 1]
                                          [--downsample 1] [--out runs/bench_snn_vs_rnn]
    # the conv twins, smaller (17x17 frames, 8-16 channels, 10 epochs)
    python benchmarks/bench_snn_vs_rnn.py --runs snn_cnn convrnn convlstm --downsample 2 \
        --conv-channels 8 16 --epochs 10 --out runs/bench_snn_vs_rnn_conv
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import time
from pathlib import Path

import torch

from spikeloom.compare import compare, markdown_table
from spikeloom.train import TrainConfig

REPO = Path(__file__).resolve().parents[1]
TEST_SETTINGS = [{"dt_us": 10_000, "T": 8}, {"dt_us": 2_500, "T": 30}]


def default_root() -> Path:
    shared = os.environ.get("SPIKELOOM_SHARED_DATA")
    base = Path(shared) if shared else REPO.parent / "shared" / "data"
    return base / "nmnist"


def _configs(args: argparse.Namespace, root: Path) -> dict[str, TrainConfig]:
    over = {"root": str(root), "epochs": args.epochs, "lr": args.lr, "threads": args.threads,
            "progress": False, "plots": False, "quiet": True}
    if args.downsample > 1:  # same frames for every run of the table, smaller
        data = TrainConfig.from_yaml(REPO / "configs" / "snn_vs_rnn_nmnist_snn.yaml")
        over["dataset_kwargs"] = {**data.dataset_kwargs, "downsample": args.downsample}
    snn = dataclasses.replace(
        TrainConfig.from_yaml(REPO / "configs" / "snn_vs_rnn_nmnist_snn.yaml"), **over)
    conv = {"channels": list(args.conv_channels),
            "pool_after": list(range(len(args.conv_channels))), "hidden": 128}
    cfgs = {}
    for name in args.runs:
        if name in ("snn", "rnn", "lstm"):
            base = TrainConfig.from_yaml(REPO / "configs" / f"snn_vs_rnn_nmnist_{name}.yaml")
            cfgs[name] = dataclasses.replace(base, **over)
        else:  # conv twins: the SNN file's optimiser settings, small widths
            cfgs[name] = dataclasses.replace(snn, model=name, model_kwargs=dict(conv))
    return cfgs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=None, help="N-MNIST folder (Train/, Test/)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--runs", nargs="+", default=["snn", "rnn", "lstm"],
                    choices=["snn", "rnn", "lstm", "snn_cnn", "convrnn", "convlstm"])
    ap.add_argument("--conv-channels", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--downsample", type=int, default=1,
                    help="spatial factor of the frames (2: 17x17) for every run of the table")
    ap.add_argument("--out", default=str(REPO / "runs" / "bench_snn_vs_rnn"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    root = Path(args.root) if args.root else default_root()
    if not root.is_dir():
        raise SystemExit(f"N-MNIST folder {root} not found: pass --root DIR (Train/, Test/)")
    torch.set_num_threads(args.threads)
    cfgs = _configs(args, root)
    first = next(iter(cfgs.values()))
    print(f"data {root}; protocol dataset_kwargs={first.dataset_kwargs}, loss={first.loss}, "
          f"epochs={args.epochs} (overridden), lr={args.lr} for all (overridden), threads="
          f"{args.threads}; runs: {', '.join(f'{k}={c.model}' for k, c in cfgs.items())}")
    t0 = time.perf_counter()
    rows = compare(cfgs, args.out, TEST_SETTINGS)
    print(markdown_table(rows, first), end="")
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"wall {time.perf_counter() - t0:.0f} s (runs already finished in {args.out} are "
          f"reused); uptime: {load}")


if __name__ == "__main__":
    main()
