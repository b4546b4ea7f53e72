"""spikeloom: efficient, brain-inspired deep learning on PyTorch.

The most used names are re-exported here; each lives in one module:

* neurons: :class:`LIF`, :class:`IF`, :class:`PLIF`, :class:`LIAF` (:mod:`spikeloom.neurons`),
  surrogates (:mod:`spikeloom.surrogate`), the fused op (:mod:`spikeloom.functional`);
* layers: :class:`TimeDistributed`, :class:`TdBN`, :class:`TemporalAttention`, readouts
  (:mod:`spikeloom.layers`); encoders (:mod:`spikeloom.encoding`);
* models: :func:`build_model`, :class:`LIAFNet`, :class:`SpikingResNet`, :class:`TASNN`;
* training: :class:`TrainConfig`, :func:`train` (:mod:`spikeloom.train`);
* cost: :func:`measure_cost`, :class:`Energy45nm` (:mod:`spikeloom.cost`);
* event data: :mod:`spikeloom.events`, :mod:`spikeloom.datasets`.
"""

from . import datasets, events
from .cost import CostReport, Energy45nm, measure_cost
from .encoding import DirectEncoder, LatencyEncoder, PoissonEncoder
from .functional import neuron_sequence
from .layers import MeanOverTime, MembraneReadout, TdBN, TemporalAttention, TimeDistributed
from .models import TASNN, LIAFNet, SpikingResNet, build_model, resnet19
from .neurons import IF, LIAF, LIF, PLIF, BaseNeuron
from .surrogate import ATan, Gaussian, Rectangular, Sigmoid, Triangular
from .train import TrainConfig, train

__version__ = "0.1.0"

__all__ = [
    "datasets", "events",
    "CostReport", "Energy45nm", "measure_cost",
    "DirectEncoder", "LatencyEncoder", "PoissonEncoder",
    "neuron_sequence",
    "MeanOverTime", "MembraneReadout", "TdBN", "TemporalAttention", "TimeDistributed",
    "TASNN", "LIAFNet", "SpikingResNet", "build_model", "resnet19",
    "IF", "LIAF", "LIF", "PLIF", "BaseNeuron",
    "ATan", "Gaussian", "Rectangular", "Sigmoid", "Triangular",
    "TrainConfig", "train",
]
