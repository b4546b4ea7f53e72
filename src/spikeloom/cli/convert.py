"""``spikeloom convert``: ODG conversion of image folders into ES-ImageNet-style event files.

The options and the work live in :mod:`spikeloom.convert`; this module makes it a sub-parser.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    from .. import convert

    c = sub.add_parser("convert", help="ODG conversion of images to event streams",
                       description=(convert.__doc__ or "").strip().splitlines()[0])
    convert.add_arguments(c)
    return c


def run(args: argparse.Namespace) -> int:
    from .. import convert

    return convert.run(args)
