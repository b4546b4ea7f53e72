"""``spikeloom eval RUN_DIR``: loss and accuracy of a run's model on a split."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    e = sub.add_parser("eval", help="evaluate a run's model")
    e.add_argument("run_dir")
    e.add_argument("--split", default="test", choices=["train", "val", "test"])
    e.add_argument("--checkpoint", default="best", choices=["best", "last"])
    e.add_argument("--device", default="cpu")
    e.add_argument("--dataset-arg", action="append", metavar="K=V",
                   help="evaluate on the run's dataset with this option changed (e.g. "
                        "dt_us=10000 or T=8: frames of another width)")
    e.add_argument("--integer", action="store_true", help="run the lowered integer program "
                   "(quantized runs) and print its accuracy and agreement with the torch model")
    return e


def run(args: argparse.Namespace) -> int:
    from ..train import DistInfo, evaluate, global_batches, load_run, make_loader
    from ..train.build import dataset_spec
    from .train import _kv

    overrides = _kv(args.dataset_arg, "--dataset-arg")
    cfg, model, data = load_run(args.run_dir, args.checkpoint, args.device, overrides)
    ds = data[args.split]
    if getattr(args, "integer", False):
        from ..compress.integer.cli import eval_integer

        return eval_integer(args, cfg, model, ds)
    loader = make_loader(ds, global_batches(len(ds), cfg.batch_size, 0, 0, False), DistInfo(),
                         num_workers=cfg.num_workers)
    res = evaluate(model, loader, cfg.loss, args.device, task=dataset_spec(ds).kind)
    print(json.dumps({"split": args.split, "checkpoint": args.checkpoint,
                      **({"dataset_overrides": overrides} if overrides else {}), **res},
                     indent=2))
    return 0
