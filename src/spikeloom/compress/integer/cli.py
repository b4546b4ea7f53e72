"""``spikeloom eval RUN_DIR --integer``: the integer program on a split of a quantized run."""

from __future__ import annotations

import argparse
import json
from typing import Any

from torch import nn

from ...errors import ConfigError

__all__ = ["eval_integer"]


def eval_integer(args: argparse.Namespace, cfg: Any, model: nn.Module, ds: Any) -> int:
    """Print accuracy, torch accuracy, spike agreement and executor throughput as JSON."""
    from ...train import DistInfo, global_batches, make_loader
    from ..quant.api import is_quantized
    from .check import integer_eval

    if not is_quantized(model):
        raise ConfigError(f"{args.run_dir} is not a quantized run: --integer needs a run made "
                          "by `spikeloom compress --method int8|quant|duq`")
    loader = make_loader(ds, global_batches(len(ds), cfg.batch_size, 0, 0, False), DistInfo())
    res = integer_eval(model, loader)
    res.pop("program")
    print(json.dumps({"split": args.split, "checkpoint": args.checkpoint, "integer": True,
                      **res}, indent=2))
    return 0
