"""Ready-made spiking networks and the model registry.

All models take time-major input ``[T, B, C, H, W]`` and return logits ``[B, K]`` (the mean
over time of the per-step outputs); ``model(x, per_step=True)`` returns ``[T, B, K]`` for
per-step losses. Models built with ``T=...`` also accept a static batch ``[B, C, H, W]``,
which is repeated at every step (direct encoding, the first conv acts as the encoder).
Neurons start from rest at every call, so no state leaks between two forward passes.

=====================  =======================================================================
name (``MODELS``)      model
=====================  =======================================================================
``"liafnet"``          :class:`LIAFNet`: small conv LIAF/LIF net
``"spiking_cnn"``      :func:`spiking_cnn`: LIAFNet with LIF + max-pool (default of ``train``)
``"spiking_resnet"``   :class:`SpikingResNet` with tdBN, any layout
``"resnet19"``         :func:`resnet19`: ResNet-19 of STBP-tdBN (≈12.7 M parameters)
``"resnet_tiny"``      :func:`resnet_tiny`: a 2-stage, 8/16-channel variant for tests and demos
``"tasnn"``            :class:`TASNN`: TA-SNN DVS128-Gesture network
``"snn_mlp"``          :class:`SpikingMLP`: LIF MLP of the SNN-vs-RNN protocol (He et al. 2020)
``"snn_cnn"``          :class:`SpikingCNN`: LIF conv net of the same protocol
``"rnn"/"gru"/"lstm"`` :class:`RecurrentMLP`: recurrent baselines of the same widths
``"convrnn"``          :class:`RecurrentCNN`: ConvRNN baseline (``"convlstm"``: ConvLSTM)
``"resnet34"``         :func:`resnet34`: STBP-tdBN ImageNet ResNet-34 (basic blocks)
``"resnet50"``         :func:`resnet50`: STBP-tdBN ImageNet ResNet-50 (bottleneck blocks)
``"es_resnet18/34"``   :func:`es_resnet18`, :func:`es_resnet34`: ES-ImageNet LIAF/LIF ResNets
``"dsr_resnet18"``     :func:`dsr_resnet18`: DSR pre-activation ResNet-18 (also ``dsr_vgg11``)
``"joint_resnet18"``   Joint A-SNN ResNet-18 (:mod:`spikeloom.methods.joint_asnn`)
``"deep_thin_snn"``    :func:`deep_thin_snn`: deep thin spiking conv BlockNet (wide-then-narrow)
``"ttfs_fc"``          :func:`ttfs_fc`: fully connected TTFS network (784-340-10 by default)
=====================  =======================================================================

Build by name, from a dataset's :class:`~spikeloom.datasets.spec.DataSpec` or with explicit
arguments: ``build_model("liafnet", ds.spec)``, ``build_model("liafnet", input_size=(32, 32))``.
Register your own with :func:`register_model`.
"""

from ..graph import models as _graph_models  # noqa: E402,F401  (registers gcn, gat, spiking-*)
from ..neurons import NEURONS
from .base import SpikingClassifier
from .blocknet import BlockNet, deep_thin_mlp, deep_thin_snn
from .dsr_nets import DSRVGG, DSRPreActResNet, dsr_resnet18, dsr_vgg11
from .factory import NormKind, make_neuron_factory, make_norm
from .liafnet import LIAFNet, spiking_cnn
from .recurrent import ConvRecurrent, RecurrentCNN, RecurrentMLP
from .registry import MODELS, build_model, count_parameters, frames_args, register_model
from .resnet import (
    BasicBlock,
    Bottleneck,
    SpikingResNet,
    es_resnet18,
    es_resnet34,
    resnet19,
    resnet34,
    resnet50,
    resnet_tiny,
)
from .snn_mlp import SpikingCNN, SpikingMLP
from .tasnn import TASNN
from .ttfs_fc import ttfs_fc

__all__ = [
    "SpikingClassifier",
    "LIAFNet",
    "spiking_cnn",
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
    "RecurrentMLP",
    "RecurrentCNN",
    "ConvRecurrent",
    "SpikingMLP",
    "SpikingCNN",
    "Bottleneck",
    "resnet34",
    "resnet50",
    "es_resnet18",
    "es_resnet34",
    "DSRPreActResNet",
    "DSRVGG",
    "dsr_resnet18",
    "dsr_vgg11",
    "BlockNet",
    "deep_thin_snn",
    "deep_thin_mlp",
    "ttfs_fc",
]
