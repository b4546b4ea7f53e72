"""The ``spikeloom`` command line.

.. code-block:: text

    spikeloom train [--config FILE.yaml] [options]   train (default: LIAF net on ES-Digits)
    spikeloom train --resume RUN_DIR                   continue an interrupted run
    spikeloom eval RUN_DIR [--split test|val]          accuracy of a run's selected model
    spikeloom cost RUN_DIR                             hardware-cost table of a run's model
    spikeloom convert SRC_DIR OUT_DIR [options]        ODG conversion of images to events

Command-line options override the YAML config. ``--model-arg k=v`` and ``--dataset-arg k=v``
(repeatable; values parsed as YAML) pass extra arguments to the model or dataset.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import yaml

__all__ = ["main"]

# option name -> config key, for the plain scalar options of `train`
_TRAIN_OPTIONS: list[tuple[str, str, type, str]] = [
    ("--dataset", "dataset", str, "dataset name (default esdigits)"),
    ("--root", "root", str, "local folder of the dataset"),
    ("--model", "model", str, "model name (default liafnet)"),
    ("--epochs", "epochs", int, "number of epochs"),
    ("--batch-size", "batch_size", int, "global batch size"),
    ("--lr", "lr", float, "learning rate"),
    ("--optimizer", "optimizer", str, "adamw or sgd"),
    ("--weight-decay", "weight_decay", float, "weight decay"),
    ("--schedule", "schedule", str, "cosine or none"),
    ("--grad-clip", "grad_clip", float, "max gradient norm (0 = off)"),
    ("--loss", "loss", str, "ce, per_step_ce or mse"),
    ("--seed", "seed", int, "random seed"),
    ("--device", "device", str, "cpu, cuda or auto"),
    ("--threads", "threads", int, "CPU threads per process"),
    ("--workers", "num_workers", int, "DataLoader worker processes"),
    ("--max-samples", "max_samples", int, "use at most N samples of each split"),
    ("--out", "out", str, "run directory"),
]


def _kv(items: list[str] | None, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise SystemExit(f"error: {what} expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="spikeloom",
        description="Spiking neural networks on PyTorch: train, evaluate, cost, convert.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model (default: LIAF net on ES-Digits)")
    t.add_argument("--config", help="YAML file with TrainConfig keys")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    for opt, _key, typ, hlp in _TRAIN_OPTIONS:
        t.add_argument(opt, type=typ, default=None, help=hlp)
    t.add_argument("--T", type=int, default=None,
                   help="time steps, passed to the dataset (frames per sample)")
    t.add_argument("--deterministic", action="store_true", default=None)
    t.add_argument("--no-progress", action="store_true", help="no progress bars or epoch lines")
    t.add_argument("--no-plots", action="store_true")
    t.add_argument("--no-cost", action="store_true")
    t.add_argument("--model-arg", action="append", metavar="K=V", help="extra model argument")
    t.add_argument("--dataset-arg", action="append", metavar="K=V",
                   help="extra dataset argument")

    e = sub.add_parser("eval", help="evaluate a run's model")
    e.add_argument("run_dir")
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("--checkpoint", default="best", choices=["best", "last"])
    e.add_argument("--device", default="cpu")

    c = sub.add_parser("cost", help="hardware-cost report of a run's model")
    c.add_argument("run_dir")
    c.add_argument("--split", default="val", choices=["train", "val", "test"])
    c.add_argument("--batches", type=int, default=4, help="batches used to measure firing")
    c.add_argument("--json", action="store_true", help="print JSON instead of the table")
    c.add_argument("--device", default="cpu")

    sub.add_parser("convert", help="ODG conversion of images to event streams "
                                   "(see `spikeloom convert --help`)", add_help=False)
    return p


def _train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train

    if args.resume:
        final = train(resume=args.resume)
        return 0 if final else 1
    d: dict[str, Any] = {}
    if args.config:
        with open(args.config) as f:
            d = yaml.safe_load(f) or {}
        if not isinstance(d, dict):
            raise SystemExit(f"error: {args.config} must hold a mapping of config keys")
    for _opt, key, _typ, _h in _TRAIN_OPTIONS:
        v = getattr(args, key if key != "num_workers" else "workers", None)
        if v is not None:
            d[key] = v
    if args.grad_clip == 0:
        d["grad_clip"] = None
    if args.deterministic:
        d["deterministic"] = True
    if args.no_progress:
        d["progress"] = False
    if args.no_plots:
        d["plots"] = False
    if args.no_cost:
        d["cost"] = False
    d["model_kwargs"] = {**d.get("model_kwargs", {}), **_kv(args.model_arg, "--model-arg")}
    d["dataset_kwargs"] = {**d.get("dataset_kwargs", {}), **_kv(args.dataset_arg, "--dataset-arg")}
    if args.T is not None:
        d["dataset_kwargs"]["T"] = args.T
    train(TrainConfig.from_dict(d))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .train import _Dist, _global_batches, _loader, evaluate, load_run

    cfg, model, data = load_run(args.run_dir, args.checkpoint, args.device)
    ds = data[args.split]
    loader = _loader(ds, _global_batches(len(ds), cfg.batch_size, 0, 0, False), _Dist(), cfg, 0)
    res = evaluate(model, loader, cfg.loss, args.device)
    print(json.dumps({"split": args.split, "checkpoint": args.checkpoint, **res}, indent=2))
    return 0


def _cost(args: argparse.Namespace) -> int:
    from .train import _cost_report, load_run

    cfg, model, data = load_run(args.run_dir, "best", args.device)
    cfg.cost_batches = args.batches
    report = _cost_report(model, data[args.split], cfg, args.device)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.table())
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``spikeloom`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "convert":
        from .convert import main as convert_main

        return convert_main(argv[1:])
    args = _build_parser().parse_args(argv)
    from .train import ConfigError, TrainingError

    try:
        return {"train": _train, "eval": _eval, "cost": _cost}[args.command](args)
    except (ConfigError, TrainingError, FileNotFoundError, ValueError) as e:
        if os.environ.get("SPIKELOOM_DEBUG"):
            raise
        print(f"spikeloom {args.command}: error: {e}", file=sys.stderr)
        print("(set SPIKELOOM_DEBUG=1 for the full traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
