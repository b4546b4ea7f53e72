"""``spikeloom cost RUN_DIR``: the hardware-cost report of a run's selected model."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    c = sub.add_parser("cost", help="hardware-cost report of a run's model")
    c.add_argument("run_dir")
    c.add_argument("--split", default="val", choices=["train", "val", "test"])
    c.add_argument("--batches", type=int, default=4, help="batches used to measure firing")
    c.add_argument("--json", action="store_true", help="print JSON instead of the table")
    c.add_argument("--device", default="cpu")
    c.add_argument("--training", action="store_true",
                   help="cost of one training step: dense vs H2Learn-like LUT/sparse design "
                   "(a reconstruction), from measured spike and gradient densities")
    c.add_argument("--lut-group", type=int, default=4, metavar="G",
                   help="--training: inputs/points per lookup table (default 4)")
    c.add_argument("--grad-eps", type=float, default=0.0,
                   help="--training: a gradient counts as non-zero when |g| > this (default 0)")
    return c


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..train import cost_report, load_run

    if args.batches < 1:
        raise ConfigError(f"--batches must be >= 1, got {args.batches}")
    cfg, model, data = load_run(args.run_dir, "best", args.device)
    cfg.cost_batches = args.batches
    if args.training:
        return _training(args, cfg, model, data)
    report = cost_report(model, data[args.split], cfg, args.device)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.table())
    return 0


def _training(args: argparse.Namespace, cfg: Any, model: Any, data: Any) -> int:
    """``--training``: :func:`spikeloom.cost.training.measure_training_cost` on the split."""
    from ..cost.training import measure_training_cost
    from ..train.distributed import DistInfo, global_batches, make_loader
    from ..train.losses import compute_loss

    ds = data[args.split]
    idx = global_batches(len(ds), cfg.batch_size, cfg.seed, 0, False)[: args.batches]
    batches = ((x.to(args.device), y.to(args.device)) for x, y in make_loader(ds, idx, DistInfo()))
    kind = "ce" if cfg.loss == "per_step_ce" else cfg.loss  # per-step CE: CE of the rate here
    report = measure_training_cost(
        model, batches, loss_fn=lambda out, y: compute_loss(out, y, kind),
        g_f=args.lut_group, g_w=args.lut_group, eps=args.grad_eps, max_batches=args.batches,
    )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.table())
    return 0
