"""Declares the optional C extension only; all metadata lives in pyproject.toml.

``spikeloom.ops.frames._speedups`` is the ``c`` backend of the frame-counting operator (used by
``spikeloom.events.frames.to_frame``). It is ``optional``: without a C compiler the install
still succeeds and the ``numpy`` backend is used.
"""

import sys

from setuptools import Extension, setup

_ARGS = ["/O2"] if sys.platform == "win32" else ["-O3"]

setup(
    ext_modules=[
        Extension(
            "spikeloom.ops.frames._speedups",
            ["src/spikeloom/ops/frames/_speedups.c"],
            optional=True,
            extra_compile_args=_ARGS,
        )
    ]
)
