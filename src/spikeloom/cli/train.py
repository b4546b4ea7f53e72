"""``spikeloom train``: options derived from :class:`~spikeloom.train.TrainConfig` fields."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from ..errors import ConfigError

__all__ = ["add_parser", "run", "config_from_args"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    from ..train.config import cli_fields

    t = sub.add_parser("train", help="train a model (default: LIAF net on ES-Digits)")
    t.add_argument("--config", help="YAML file with TrainConfig keys")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    for f in cli_fields():
        if f.negates or f.switch:
            t.add_argument(f.flag, dest=f.name, action="store_const",
                           const=not f.negates, default=None, help=f.help)
        else:
            t.add_argument(f.flag, dest=f.name, type=f.type, default=None, help=f.help)
    t.add_argument("--T", type=int, default=None,
                   help="time steps, passed to the dataset (frames per sample)")
    t.add_argument("--import", dest="imports", action="append", metavar="MODULE",
                   help="import a module first (e.g. one that registers your dataset or model)")
    t.add_argument("--model-arg", action="append", metavar="K=V", help="extra model argument")
    t.add_argument("--dataset-arg", action="append", metavar="K=V",
                   help="extra dataset argument")
    t.add_argument("--method-arg", action="append", metavar="K=V",
                   help="training-method option (e.g. --method dsr --method-arg dt=0.25)")
    return t


def _kv(items: list[str] | None, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"{what} expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def config_from_args(args: argparse.Namespace):
    """The :class:`TrainConfig` of a ``train`` command line (YAML file, then options)."""
    from ..train import TrainConfig
    from ..train.config import cli_fields, read_yaml_mapping

    d: dict[str, Any] = read_yaml_mapping(args.config) if args.config else {}
    for f in cli_fields():
        v = getattr(args, f.name)
        if v is not None:
            d[f.name] = v
    if d.get("grad_clip") == 0:
        d["grad_clip"] = None
    d["model_kwargs"] = {**d.get("model_kwargs", {}), **_kv(args.model_arg, "--model-arg")}
    d["dataset_kwargs"] = {**d.get("dataset_kwargs", {}), **_kv(args.dataset_arg, "--dataset-arg")}
    d["method_kwargs"] = {**d.get("method_kwargs", {}), **_kv(args.method_arg, "--method-arg")}
    if args.T is not None:
        d["dataset_kwargs"]["T"] = args.T
    if args.imports:
        d["imports"] = [*d.get("imports", []), *args.imports]
    return TrainConfig.from_dict(d)


def _resume_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The options given with ``--resume``; run-defining ones are refused by the trainer."""
    from ..train.config import cli_fields

    extra = [n for n in ("config", "model_arg", "dataset_arg", "method_arg", "T",
                           "imports")
             if getattr(args, n)]
    if extra:
        raise ConfigError(f"--resume continues a run with its saved config; "
                          f"{', '.join('--' + n.replace('_', '-') for n in extra)} cannot "
                          "change it. Start a new run with --out instead.")
    return {f.name: getattr(args, f.name) for f in cli_fields()
            if getattr(args, f.name) is not None}


def run(args: argparse.Namespace) -> int:
    from ..train import train

    run_dir = args.resume or args.out
    try:
        if args.resume:
            train(resume=args.resume, overrides=_resume_overrides(args))
        else:
            cfg = config_from_args(args)
            run_dir = cfg.out
            train(cfg)
    except KeyboardInterrupt:
        where = f" {run_dir}" if run_dir else " RUN_DIR"
        print("\nspikeloom train: interrupted. The last finished epoch's checkpoint is kept; "
              f"continue with: spikeloom train --resume{where}", file=sys.stderr)
        return 130
    return 0
