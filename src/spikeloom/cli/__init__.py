"""The ``spikeloom`` command line: one module per sub-command.

.. code-block:: text

    spikeloom train [--config FILE.yaml] [options]   train (default: LIAF net on ES-Digits)
    spikeloom train --resume RUN_DIR                   continue an interrupted run
    spikeloom eval RUN_DIR [--split test|val]          accuracy of a run's selected model
    spikeloom cost RUN_DIR                             hardware-cost table of a run's model
    spikeloom convert SRC_DIR OUT_DIR [options]        ODG conversion of images to events
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
from . import compress as compress_cmd
from . import convert, cost, eval, train

__all__ = ["main", "build_parser", "COMMANDS"]

#: sub-command name -> module with add_parser(subparsers) and run(args)
COMMANDS = {"train": train, "eval": eval, "cost": cost, "convert": convert}
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
