"""The spiking networks of the SNN-vs-RNN protocol (He et al. 2020, §9 of the spec).

``"snn_mlp"`` (:class:`SpikingMLP`) and ``"snn_cnn"`` (:class:`SpikingCNN`): LIF layers of §1
(hard reset to 0, rectangular surrogate) after every FC / conv layer *including the output
layer*; the output is the firing rate of the last layer (mean over time of its spikes), the
quantity the paper's loss ``|| y - rate ||²`` (``loss: mse``) compares with the one-hot label.
Defaults are the released code's N-MNIST settings: ``V_th = 0.3``, decay ``k = 0.3``,
rectangular surrogate of width 0.5 (height 2). Their recurrent twins of the same widths are in
:mod:`spikeloom.models.recurrent`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from ..layers import MeanOverTime, TimeDistributed
from ..neurons import LIF
from .base import SpikingClassifier
from .factory import pair
from .recurrent import FlatInput, flat_args, frames_any_T
from .registry import register_model

__all__ = ["SpikingMLP", "SpikingCNN", "HE2020_LIF"]

#: LIF parameters of the paper's released code (N-MNIST and Gesture scripts)
HE2020_LIF: dict[str, Any] = {"v_th": 0.3, "decay": 0.3, "surrogate": "rectangular",
                              "width": 0.5}


def _lif(params: dict[str, Any] | None) -> LIF:
    return LIF(**{**HE2020_LIF, **(params or {})})


class SpikingMLP(FlatInput):
    """``[T, B, F] -> (Linear -> LIF)* -> Linear(K) -> [LIF]``, readout = mean over time.

    Args:
        in_features: features per step (``C·H·W`` of frames; 2312 for N-MNIST 2×34×34).
        num_classes: ``K``.
        hidden: hidden widths (default ``(512,)``: 2312→512→10 of the paper).
        spiking_output: put a LIF after the last layer (the paper: output = firing rate);
            ``False`` gives the mean of the analog last-layer outputs.
        dropout: dropout before each FC layer.
        neuron_kwargs: LIF parameters overriding :data:`HE2020_LIF`.
        T: number of steps (checked when given).
    """

    def __init__(self, in_features: int, num_classes: int = 10, hidden: Sequence[int] = (512,),
                 spiking_output: bool = True, dropout: float = 0.0,
                 neuron_kwargs: dict[str, Any] | None = None, T: int | None = None) -> None:
        super().__init__()
        self.in_features, self.num_classes, self.T = int(in_features), num_classes, T
        sizes = [self.in_features, *[int(h) for h in hidden], num_classes]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers += [nn.Dropout(dropout), nn.Linear(a, b)]
            if i < len(sizes) - 2 or spiking_output:
                layers.append(_lif(neuron_kwargs))
        self.layers = nn.Sequential(*layers)
        self.readout = MeanOverTime()

    def _per_step(self, x: Tensor) -> Tensor:
        return self.layers(x)


class SpikingCNN(SpikingClassifier):
    """Conv LIF stages, spiking pooling, FC LIF layers; readout = output firing rate.

    ``[conv3x3 -> LIF -> (avgpool 2 -> LIF if i in pool_after)]* -> flatten -> [dropout] ->
    Linear(hidden) -> LIF -> [dropout] -> Linear(K) -> [LIF]``. Defaults: the paper's DVS
    Gesture SNN-CNN (conv 2→64→128, pool, 128, pool, FC 8192→256→11 for 32×32 input), with
    LIF "pool neurons" after the average pooling as in the released code.

    Args:
        in_channels, num_classes, input_size: from the dataset.
        channels: conv output channels.
        pool_after: indices of the conv stages followed by pooling.
        hidden: FC hidden width (``None`` or 0: none).
        pool_neurons: LIF after each pooling (else pooled spikes pass on as analog averages).
        spiking_output: LIF after the last layer.
        dropout: dropout before each FC layer.
        neuron_kwargs: LIF parameters overriding :data:`HE2020_LIF`.
        T: number of steps (checked when given; enables static input).
    """

    def __init__(self, in_channels: int = 2, num_classes: int = 11,
                 input_size: int | Sequence[int] = (32, 32),
                 channels: Sequence[int] = (64, 128, 128),
                 pool_after: Sequence[int] = (1, 2), hidden: int | None = 256,
                 pool_neurons: bool = True, spiking_output: bool = True, dropout: float = 0.0,
                 neuron_kwargs: dict[str, Any] | None = None, T: int | None = None) -> None:
        super().__init__()
        self.in_channels, self.num_classes, self.T = in_channels, num_classes, T
        h, w = pair(input_size)
        layers: list[nn.Module] = []
        c_in = in_channels
        for i, c in enumerate(channels):
            layers += [TimeDistributed(nn.Conv2d(c_in, c, 3, padding=1)), _lif(neuron_kwargs)]
            if i in tuple(pool_after):
                layers.append(TimeDistributed(nn.AvgPool2d(2)))
                if pool_neurons:
                    layers.append(_lif(neuron_kwargs))
                h, w = h // 2, w // 2
            c_in = c
        if h < 1 or w < 1:
            raise ValueError(f"input_size {pair(input_size)} is too small for "
                             f"{len(tuple(pool_after))} pooling stages")
        self.features = nn.Sequential(*layers)
        flat = c_in * h * w
        head: list[nn.Module] = []
        if hidden:
            head += [nn.Dropout(dropout), nn.Linear(flat, hidden), _lif(neuron_kwargs)]
            flat = hidden
        head += [nn.Dropout(dropout), nn.Linear(flat, num_classes)]
        if spiking_output:
            head.append(_lif(neuron_kwargs))
        self.classifier = nn.Sequential(*head)
        self.readout = MeanOverTime()

    def _per_step(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(2))


register_model("snn_mlp", SpikingMLP, kinds=("frames", "sequence"), from_spec=flat_args)
register_model("snn_cnn", SpikingCNN, kinds=("frames",), from_spec=frames_any_T)
