"""spikeloom: efficient, brain-inspired deep learning on PyTorch.

The most used names are re-exported here; each lives in one module:

* neurons: :class:`LIF`, :class:`IF`, :class:`PLIF`, :class:`LIAF` and their
  :class:`NeuronSpec` (:mod:`spikeloom.neurons`), surrogates (:mod:`spikeloom.surrogate`), the
  neuron operator and its backends (:mod:`spikeloom.ops`);
* layers: :class:`TimeDistributed`, :class:`TdBN`, :class:`TemporalAttention`, :class:`Add`,
  readouts (:mod:`spikeloom.layers`); encoders (:mod:`spikeloom.encoding`);
* the layer walk :func:`iter_layers` (:mod:`spikeloom.walk`) and monitors
  :class:`SpikeMonitor`, :class:`AttentionMonitor` (:mod:`spikeloom.monitor`);
* models: :func:`build_model`, :class:`LIAFNet`, :class:`SpikingResNet`, :class:`TASNN`;
* data: :class:`DataSpec`, :mod:`spikeloom.events`, :mod:`spikeloom.datasets`;
* training: :class:`TrainConfig`, :func:`train` (:mod:`spikeloom.train`);
* cost: :func:`measure_cost`, :class:`Energy45nm` (:mod:`spikeloom.cost`).
"""

from . import datasets, events
from .cost import CostReport, Energy45nm, measure_cost
from .datasets.spec import DataSpec
from .encoding import DirectEncoder, LatencyEncoder, PoissonEncoder
from .functional import neuron_sequence
from .layers import Add, MeanOverTime, MembraneReadout, TdBN, TemporalAttention, TimeDistributed
from .models import TASNN, LIAFNet, SpikingResNet, build_model, resnet19
from .monitor import AttentionMonitor, SpikeMonitor
from .neurons import IF, LIAF, LIF, PLIF, BaseNeuron, NeuronSpec
from .surrogate import ATan, Gaussian, Rectangular, Sigmoid, Triangular
from .train import TrainConfig, train
from .walk import iter_layers

__version__ = "0.1.0"

__all__ = [
    "datasets", "events",
    "CostReport", "Energy45nm", "measure_cost",
    "DataSpec",
    "DirectEncoder", "LatencyEncoder", "PoissonEncoder",
    "neuron_sequence",
    "Add", "MeanOverTime", "MembraneReadout", "TdBN", "TemporalAttention", "TimeDistributed",
    "TASNN", "LIAFNet", "SpikingResNet", "build_model", "resnet19",
    "AttentionMonitor", "SpikeMonitor",
    "IF", "LIAF", "LIF", "PLIF", "BaseNeuron", "NeuronSpec",
    "ATan", "Gaussian", "Rectangular", "Sigmoid", "Triangular",
    "TrainConfig", "train",
    "iter_layers",
]
