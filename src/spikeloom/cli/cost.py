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
    return c


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError
    from ..train import cost_report, load_run

    if args.batches < 1:
        raise ConfigError(f"--batches must be >= 1, got {args.batches}")
    cfg, model, data = load_run(args.run_dir, "best", args.device)
    cfg.cost_batches = args.batches
    report = cost_report(model, data[args.split], cfg, args.device)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.table())
    return 0
