"""``spikeloom report RUNS_DIR...``: one Markdown table (and PNG) of many runs."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    r = sub.add_parser("report", help="results table of run directories (Markdown + PNG)")
    r.add_argument("runs", nargs="+", metavar="RUNS_DIR",
                   help="run directories, or folders searched for them")
    r.add_argument("--out", default="report",
                   help="write OUT.md and OUT.png (default: report); '-' writes nothing")
    return r


def run(args: argparse.Namespace) -> int:
    from ..report import build_report

    out = None if args.out == "-" else args.out
    text, rows, skipped = build_report(args.runs, out)
    print(text, end="")
    for d in skipped:
        print(f"(skipped {d}: not finished, no final.json)")
    if out is not None:
        print(f"wrote {out}.md and {out}.png")
    return 0
