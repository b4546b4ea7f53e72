"""Quantization-aware training: fake-quantizers, fixed-point neurons, ``quantize``."""

from __future__ import annotations

from .api import (
    SUPPORTED_SYNAPSES,
    QuantConfig,
    dequantize,
    is_quantized,
    quantize,
    synapse_bits,
)
from .fake import ActFakeQuant, DuQ, WeightFakeQuant, duq_mse_init, round_half_up, ste_round
from .neuron import QuantNeuron

__all__ = ["QuantConfig", "quantize", "dequantize", "is_quantized", "SUPPORTED_SYNAPSES", "DuQ",
           "ActFakeQuant", "WeightFakeQuant", "QuantNeuron", "round_half_up", "ste_round",
           "duq_mse_init", "synapse_bits"]
