"""Ready-made spiking networks and the model registry.

All models take time-major input ``[T, B, C, H, W]`` and return logits ``[B, K]`` (the mean
over time of the per-step outputs); ``model(x, per_step=True)`` returns ``[T, B, K]`` for
per-step losses. Models built with ``T=...`` also accept a static batch ``[B, C, H, W]``,
which is repeated at every step (direct encoding, the first conv acts as the encoder).
Neurons start from rest at every call, so no state leaks between two forward passes.

=====================  =======================================================================
name (``MODELS``)      model
=====================  =======================================================================
``"liafnet"``          :class:`LIAFNet`: small conv LIAF/LIF net (default of ``spikeloom train``)
``"spiking_resnet"``   :class:`SpikingResNet` with tdBN, any layout
``"resnet19"``         :func:`resnet19`: ResNet-19 of STBP-tdBN (≈12.7 M parameters)
``"resnet_tiny"``      :func:`resnet_tiny`: a 2-stage, 8/16-channel variant for tests and demos
``"tasnn"``            :class:`TASNN`: TA-SNN DVS128-Gesture network
=====================  =======================================================================

Build by name, from a dataset's :class:`~spikeloom.datasets.spec.DataSpec` or with explicit
arguments: ``build_model("liafnet", ds.spec)``, ``build_model("liafnet", input_size=(32, 32))``.
Register your own with :func:`register_model`.
"""

from ..graph import models as _graph_models  # noqa: E402,F401  (registers gcn, gat, spiking-*)
from ..neurons import NEURONS
from .base import SpikingClassifier
from .factory import NormKind, make_neuron_factory, make_norm
from .liafnet import LIAFNet
from .registry import MODELS, build_model, count_parameters, frames_args, register_model
from .resnet import BasicBlock, SpikingResNet, resnet19, resnet_tiny
from .tasnn import TASNN

__all__ = [
    "SpikingClassifier",
    "LIAFNet",
    "BasicBlock",
    "SpikingResNet",
    "resnet19",
    "resnet_tiny",
    "TASNN",
    "MODELS",
    "NEURONS",
    "NormKind",
    "build_model",
    "register_model",
    "frames_args",
    "make_neuron_factory",
    "make_norm",
    "count_parameters",
]
