"""Hardware-cost report for spiking networks: operation counts, memory and 45 nm energy.

* :mod:`~spikeloom.cost.energy`: :class:`Energy45nm` (Horowitz, ISSCC 2014) and
  :class:`NeuronOpCount`;
* :mod:`~spikeloom.cost.counters`: per module type counters (dense MACs, exact SynOps,
  precision) in a type registry; :func:`register_counter` adds a new synapse type;
* :mod:`~spikeloom.cost.measure`: :func:`measure_cost` on real batches;
* :mod:`~spikeloom.cost.report`: :class:`CostReport` and its :class:`LayerCost` rows, totals
  with the NeuroBench names (Yik et al. 2023, arXiv:2304.04640), cost.json;
* :mod:`~spikeloom.cost.format`: the text table and number formats.
"""

from __future__ import annotations

from . import recurrent as _recurrent  # noqa: F401  (registers the nn.RNN/GRU/LSTM counter)
from .counters import (
    COUNTERS,
    PRECISIONS,
    SYNAPTIC_TYPES,
    CountParts,
    SynapseCounter,
    counter_of,
    register_counter,
)
from .energy import Energy45nm, NeuronOpCount, precision_for_bits
from .measure import measure_cost
from .report import CostReport, LayerCost

__all__ = [
    "COUNTERS",
    "CostReport",
    "CountParts",
    "Energy45nm",
    "LayerCost",
    "NeuronOpCount",
    "PRECISIONS",
    "SYNAPTIC_TYPES",
    "SynapseCounter",
    "counter_of",
    "measure_cost",
    "precision_for_bits",
    "register_counter",
]
