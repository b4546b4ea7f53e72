"""Every available backend of every operator against that operator's reference.

A new backend is tested by registering it (``spikeloom.ops.register_backend``); a new operator
by adding one case function to ``CASES`` below. Each case gets the backend's function and the
reference function and asserts that they agree (outputs and, where differentiable, gradients).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from spikeloom.ops import available_backends, get_backend

CASES: dict[str, Callable[[Callable, Callable], None]] = {}


def case(op: str):
    def deco(fn):
        CASES[op] = fn
        return fn

    return deco


# ----------------------------------------------------------------------------- neuron_sequence
# (filled in below by the neuron op's section)


# ----------------------------------------------------------------------------- frames
# (filled in below by the frame-counting op's section)


# ----------------------------------------------------------------------------- the test


def _pairs() -> list[tuple[str, str]]:
    return [(op, b) for op in CASES for b in available_backends(op, "cpu")]


@pytest.mark.parametrize(("op", "backend"), _pairs())
def test_backend_matches_reference(op: str, backend: str) -> None:
    CASES[op](get_backend(op, backend).fn, get_backend(op, "reference").fn)


def test_every_op_has_a_reference_and_a_case() -> None:
    for op in ("neuron_sequence", "frames"):
        assert "reference" in available_backends(op)
        assert op in CASES
