"""Model compression: quantization, integer execution, pruning, tensorized layers.

Methods used by ``spikeloom compress`` register in :data:`COMPRESS_METHODS`
(:mod:`spikeloom.compress.methods` says how to add one).
"""

from __future__ import annotations

from .methods import COMPRESS_METHODS, add_option, register_method

__all__ = ["COMPRESS_METHODS", "add_option", "register_method"]
