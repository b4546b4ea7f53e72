"""Declares the optional C extension only; all metadata lives in pyproject.toml.

``spikeloom.events._speedups`` speeds up ``spikeloom.events.transforms.to_frame``. It is
``optional``: without a C compiler the install still succeeds and the numpy code path is used.
"""

import sys

from setuptools import Extension, setup

_ARGS = ["/O2"] if sys.platform == "win32" else ["-O3"]

setup(
    ext_modules=[
        Extension(
            "spikeloom.events._speedups",
            ["src/spikeloom/events/_speedups.c"],
            optional=True,
            extra_compile_args=_ARGS,
        )
    ]
)
