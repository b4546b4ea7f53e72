"""Model compression: quantization, integer execution, pruning, tensorized layers.

Methods used by ``spikeloom compress`` register in :data:`COMPRESS_METHODS`
(:mod:`spikeloom.compress.methods` says how to add one).
"""

from __future__ import annotations

from . import (  # noqa: F401,E402 (register prune, prune-structured)
    lhc,  # registers lhc
    prune,
    prune_quant,  # noqa: F401 (registers prune-quant)
    prune_structured,
    smn,  # registers smn
)
from . import quant as quant
from .methods import COMPRESS_METHODS, add_option, register_method
from .quant import register as _quant_methods  # noqa: F401  (registers int8, quant, duq)
from .tensorized import hybrid, kcp  # noqa: F401,E402 (register tt, ht, hybrid, kcp)

__all__ = ["COMPRESS_METHODS", "add_option", "register_method"]
