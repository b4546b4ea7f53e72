"""Declares the optional C extension only; all metadata lives in pyproject.toml.

``spikeloom.ops.frames._speedups`` is the ``c`` backend of the frame-counting operator (used by
``spikeloom.events.frames.to_frame``). It is ``optional``: without a C compiler the install
still succeeds and the ``numpy`` backend is used.

``spikeloom.ops.neuron_sequence._kernel`` (C++ with OpenMP, raw pointers, no torch headers) is
the ``cpu_kernel`` backend of the neuron sequence op; also optional (fallback ``torch_fused``).
"""

import sys

from setuptools import Extension, setup

_ARGS = ["/O2"] if sys.platform == "win32" else ["-O3"]
# no FMA contraction (spikes must equal the reference bit for bit); no trapping math (lets
# the compiler if-convert and vectorise the branch-free loops; values unchanged); OpenMP
_KERNEL_ARGS = (["/O2", "/openmp", "/fp:precise"] if sys.platform == "win32"
                else ["-O3", "-fopenmp", "-ffp-contract=off", "-fno-trapping-math", "-std=c++17"])
_KERNEL_LINK = [] if sys.platform == "win32" else ["-fopenmp"]

setup(
    ext_modules=[
        Extension(
            "spikeloom.ops.frames._speedups",
            ["src/spikeloom/ops/frames/_speedups.c"],
            optional=True,
            extra_compile_args=_ARGS,
        ),
        Extension(
            "spikeloom.ops.neuron_sequence._kernel",
            ["src/spikeloom/ops/neuron_sequence/_kernel.cpp"],
            depends=["src/spikeloom/ops/neuron_sequence/_kernel_impl.h"],
            optional=True,
            language="c++",
            extra_compile_args=_KERNEL_ARGS,
            extra_link_args=_KERNEL_LINK,
        ),
    ]
)
