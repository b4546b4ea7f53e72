"""``spikeloom compare``: train several models under one protocol and print one table.

::

    spikeloom compare configs/snn_vs_rnn_nmnist_*.yaml --test-arg dt_us=10000 --test-arg T=8
    spikeloom compare --models snn_mlp,rnn,lstm --dataset esdigits --epochs 2 --out runs/cmp

Runs come from config files (one TrainConfig YAML per model; run name = file stem) or from
``--models`` (one run per model name, sharing the other options); ``spikeloom train``'s options
override every run. ``--test-arg K=V`` (repeatable) is one alternative dataset setting to
test at; ``--test-set "K=V,K=V"`` adds further ones. See :mod:`spikeloom.compare`.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    from ..train.config import cli_fields

    c = sub.add_parser("compare", help="train SNN and RNN baselines under one protocol; "
                                       "print one table (accuracy, params, SynOps, energy)")
    c.add_argument("configs", nargs="*", metavar="CONFIG.yaml",
                   help="one TrainConfig YAML per run (run name = file name without .yaml)")
    c.add_argument("--models", help="comma-separated model names: one run each")
    c.add_argument("--test-arg", action="append", metavar="K=V",
                   help="dataset option of an alternative test setting (e.g. dt_us=10000)")
    c.add_argument("--test-set", action="append", metavar="K=V,K=V",
                   help="a further alternative test setting")
    c.add_argument("--model-arg", action="append", metavar="K=V",
                   help="extra model argument for every run")
    c.add_argument("--dataset-arg", action="append", metavar="K=V",
                   help="extra dataset argument for every run")
    for f in cli_fields():
        if f.name == "out":
            continue
        if f.negates or f.switch:
            c.add_argument(f.flag, dest=f.name, action="store_const", const=not f.negates,
                           default=None, help=f.help)
        else:
            c.add_argument(f.flag, dest=f.name, type=f.type, default=None, help=f.help)
    c.add_argument("--out", default="runs/compare", help="folder of the comparison "
                                                         "(default runs/compare)")
    return c


def _setting(items: list[str], what: str) -> dict[str, Any]:
    from .train import _kv

    return _kv(items, what)


def _configs(args: argparse.Namespace) -> dict[str, Any]:
    from ..train import TrainConfig
    from ..train.config import cli_fields, read_yaml_mapping

    over = {f.name: getattr(args, f.name) for f in cli_fields()
            if f.name != "out" and getattr(args, f.name) is not None}
    if over.get("grad_clip") == 0:
        over["grad_clip"] = None
    model_kw = _setting(args.model_arg, "--model-arg")
    data_kw = _setting(args.dataset_arg, "--dataset-arg")
    bases: dict[str, dict[str, Any]] = {}
    for path in args.configs:
        bases[Path(path).stem] = read_yaml_mapping(path)
    if args.models:
        names = [m.strip() for m in args.models.split(",") if m.strip()]
        if len(bases) > 1:
            raise ConfigError("give either several config files or --models with at most one "
                              "config file (the shared base), not both")
        base = next(iter(bases.values()), {})
        bases = {m: {**base, "model": m} for m in names}
    if not bases:
        raise ConfigError("nothing to compare: give config files or --models a,b,c")
    out = {}
    for name, d in bases.items():
        d = {**d, **over}
        d["model_kwargs"] = {**d.get("model_kwargs", {}), **model_kw}
        d["dataset_kwargs"] = {**d.get("dataset_kwargs", {}), **data_kw}
        try:
            out[name] = TrainConfig.from_dict(d)
        except ConfigError as e:
            raise ConfigError(f"run {name!r}: {e}") from None
    return out


def run(args: argparse.Namespace) -> int:
    from ..compare import compare, markdown_table

    configs = _configs(args)
    settings = []
    if args.test_arg:
        settings.append(_setting(args.test_arg, "--test-arg"))
    for s in args.test_set or []:
        settings.append(_setting([x for x in s.split(",") if x.strip()], "--test-set"))
    rows = compare(configs, args.out, settings, device=next(iter(configs.values())).device)
    first = dataclasses.replace(next(iter(configs.values())))
    print(markdown_table(rows, first), end="")
    print(f"written: {Path(args.out) / 'compare.md'}, {Path(args.out) / 'compare.json'}")
    return 0
