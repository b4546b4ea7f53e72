"""The ``spikeloom`` command line: one module per sub-command.

.. code-block:: text

    spikeloom train [--config FILE.yaml] [options]   train (default: spiking CNN on ES-Digits)
    spikeloom train --resume RUN_DIR                   continue an interrupted run
    spikeloom eval RUN_DIR [--split test|val]          accuracy of a run's selected model
    spikeloom cost RUN_DIR                             hardware-cost table of a run's model
    spikeloom convert SRC_DIR OUT_DIR [options]        ODG conversion of images to events
    spikeloom export RUN_DIR --format nir|onnx OUT     a run's model as NIR or ONNX
    spikeloom compare CONFIG.yaml ... [--test-arg K=V]  SNN vs RNN under one protocol, one table
    spikeloom report RUNS_DIR... [--out NAME]          results table (Markdown + PNG) of runs
    spikeloom compress RUN_DIR --method NAME --out NEW compress + fine-tune a trained run

Each sub-command module (:mod:`.train`, :mod:`.eval`, :mod:`.cost`, :mod:`.convert`) has
``add_parser(subparsers)`` and ``run(args) -> int``. User errors print one line (set
``SPIKELOOM_DEBUG=1`` for the traceback) and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import SpikeloomError
from . import compare, convert, cost, eval, report, train
from . import compress as compress_cmd
from . import export as export_cmd

__all__ = ["main", "build_parser", "COMMANDS"]

#: sub-command name -> module with add_parser(subparsers) and run(args)
COMMANDS = {"train": train, "eval": eval, "cost": cost, "convert": convert}
COMMANDS["export"] = export_cmd
COMMANDS["compare"] = compare
COMMANDS["report"] = report
COMMANDS["compress"] = compress_cmd


def build_parser() -> argparse.ArgumentParser:
    """The ``spikeloom`` argument parser with every sub-command."""
    p = argparse.ArgumentParser(
        prog="spikeloom",
        description="Spiking neural networks on PyTorch: train, evaluate, cost, convert.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    for mod in COMMANDS.values():
        mod.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``spikeloom`` console script."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        return COMMANDS[args.command].run(args)
    except (SpikeloomError, FileNotFoundError, ValueError) as e:
        if os.environ.get("SPIKELOOM_DEBUG"):
            raise
        print(f"spikeloom {args.command}: error: {e}", file=sys.stderr)
        print("(set SPIKELOOM_DEBUG=1 for the full traceback)", file=sys.stderr)
        return 2
