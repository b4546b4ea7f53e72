"""Integer lowering of quantized spiking networks and a numpy-only executor.

:mod:`.program` and :mod:`.executor` import numpy only: copied together into a package of
their own they run an integer program where torch is not installed. :func:`lower` and
:func:`frozen_twin` (:mod:`.lowering`, :mod:`.twin`) are the torch side.
"""

from __future__ import annotations

from .check import integer_eval
from .executor import run_program
from .lowering import LOWERABLE, lower, spike_outputs
from .program import VERSION, IntegerProgram
from .twin import frozen_twin

__all__ = ["IntegerProgram", "VERSION", "run_program", "lower", "frozen_twin", "spike_outputs",
           "LOWERABLE", "integer_eval"]
