"""Recurrent (non-spiking) baselines of the SNN-vs-RNN protocol (He et al. 2020, §9 of the spec).

He, Wu, Deng, Li, Wang, Tian, Ding, Wang, Xie, "Comparing SNNs and RNNs on neuromorphic vision
datasets: similarities and differences", Neural Networks 132 (2020), arXiv:2005.02183.

The protocol compares spiking and recurrent networks of the *same widths*, all trained with
BPTT and the *same loss*: the RNN reads out at every step and its outputs are averaged over
time before the loss (``readout="mean"``, the rate-coding idea applied to RNNs), instead of the
common last-step readout (``readout="last"``). With ``T = 1`` the two coincide.

=================  ============================================================================
name (``MODELS``)  model
=================  ============================================================================
``"rnn"``          :class:`RecurrentMLP` with ``nn.RNN`` (tanh) layers
``"gru"``          :class:`RecurrentMLP` with ``nn.GRU`` layers
``"lstm"``         :class:`RecurrentMLP` with ``nn.LSTM`` layers
``"convrnn"``      :class:`RecurrentCNN` with :class:`ConvRecurrent` (``cell="rnn"``) stages
``"convlstm"``     :class:`RecurrentCNN` with :class:`ConvRecurrent` (``cell="lstm"``) stages
=================  ============================================================================

Their SNN twins are ``"snn_mlp"`` and ``"snn_cnn"`` (:mod:`spikeloom.models.snn_mlp`); the
default sizes of both families follow the released code of the paper (MLP 2312→512→10 for
N-MNIST; conv 64-128-pool-128-pool, FC 256 for DVS Gesture). The cost report counts the
recurrent layers with :mod:`spikeloom.cost.recurrent` and the conv stages with the conv
counters (recurrent convolutions read the analog hidden state: MACs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..cost import recurrent as _recurrent_cost  # noqa: F401  (role and counter of nn.RNNBase)
from ..datasets.spec import DataSpec
from ..errors import ConfigError
from ..layers import LastStep, MeanOverTime, TimeDistributed
from .base import SpikingClassifier
from .factory import pair
from .registry import frames_args, register_model

__all__ = ["RecurrentMLP", "RecurrentCNN", "ConvRecurrent", "flat_args", "READOUTS",
           "make_readout", "FlatInput", "frames_any_T"]

#: time readouts of the per-step outputs ``[T, B, K]``
READOUTS = {"mean": MeanOverTime, "last": LastStep}

_CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


def make_readout(readout: str) -> nn.Module:
    """:class:`~spikeloom.layers.MeanOverTime` (``"mean"``: readout at every step, averaged;
    the rate-coded loss of the protocol) or :class:`~spikeloom.layers.LastStep` (``"last"``)."""
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {', '.join(READOUTS)}, got {readout!r}")
    return READOUTS[readout]()


def flat_args(spec: DataSpec) -> dict[str, Any]:
    """Arguments of a model on flattened steps: ``in_features`` (``C·H·W`` of frames, ``C`` of
    sequences) and ``num_classes``. ``T`` is left free, so that a model trained on frames of
    one width ``dt`` can be tested on another number of frames."""
    if spec.channels is None:
        raise ConfigError(f"a flat model needs the dataset's channels; its spec has none "
                          f"({spec})")
    size = 1
    for s in spec.size or ():
        size *= s
    return {"in_features": spec.channels * size, "num_classes": spec.num_classes}


def frames_any_T(spec: DataSpec) -> dict[str, Any]:
    """:func:`~spikeloom.models.registry.frames_args` without ``T`` (any number of steps)."""
    return {**frames_args(spec), "T": None}


class FlatInput(SpikingClassifier):
    """Base of classifiers that flatten each step: input ``[T, B, ...]`` -> ``[T, B, F]``."""

    in_features: int

    def _prepare(self, x: Tensor) -> Tensor:
        name = type(self).__name__
        if x.ndim < 3:
            raise ValueError(f"{name} expected time-major input [T, B, ...], got shape "
                             f"{tuple(x.shape)}")
        x = x.flatten(2)
        if x.shape[2] != self.in_features:
            raise ValueError(f"{name} was built for {self.in_features} input features per step "
                             f"but got {x.shape[2]} (input shape [T, B, ...] flattened after B)")
        if self.T is not None and x.shape[0] != self.T:
            raise ValueError(f"{name} was built for T={self.T} steps, got {x.shape[0]}")
        return x


class RecurrentMLP(FlatInput):
    """Stacked recurrent layers on flattened frames, a linear readout at every step.

    ``[T, B, F] -> cell(F, h1) -> ... -> cell(h_{n-1}, h_n) -> [dropout] -> Linear(h_n, K)``
    per step, then the time readout. Each hidden layer is its own single-layer ``nn.RNN`` /
    ``nn.GRU`` / ``nn.LSTM`` (one cost row each, exact recurrent counts).

    Args:
        in_features: features per step (``C·H·W`` of frames).
        num_classes: ``K``.
        hidden: hidden sizes (default ``(512,)``: the width of the SNN MLP 2312→512→10; the
            paper's released RNN script stacks two layers of 512).
        cell: ``"rnn"`` (tanh), ``"gru"`` or ``"lstm"``.
        readout: ``"mean"`` (rate-coded, default) or ``"last"``.
        dropout: dropout before the readout.
        T: number of steps (checked when given).

    Shapes:
        input ``[T, B, ...]`` -> logits ``[B, K]`` (``per_step=True``: ``[T, B, K]``).
    """

    def __init__(self, in_features: int, num_classes: int = 10,
                 hidden: Sequence[int] = (512,), cell: str = "rnn", readout: str = "mean",
                 dropout: float = 0.0, T: int | None = None) -> None:
        super().__init__()
        if cell not in _CELLS:
            raise ValueError(f"cell must be one of {', '.join(_CELLS)}, got {cell!r}")
        if not hidden:
            raise ValueError("hidden must name at least one recurrent layer")
        self.in_features, self.num_classes, self.T = int(in_features), num_classes, T
        sizes = [self.in_features, *[int(h) for h in hidden]]
        self.layers = nn.ModuleList(_CELLS[cell](a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(sizes[-1], num_classes)
        self.readout = make_readout(readout)

    def _per_step(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)[0]
        return self.fc(self.dropout(x))


class ConvRecurrent(nn.Module):
    """Convolutional recurrent layer over a sequence ``[T, B, C, H, W]`` (ConvRNN / ConvLSTM).

    ``z[t] = conv_x(x[t]) + conv_h(h[t-1])`` with ``G·C`` output channels (``G = 1`` for
    ``cell="rnn"``: ``h = tanh(z)``; ``G = 4`` for ``cell="lstm"``: gates ``i, f, g, o``,
    ``c = σ(f)·c + σ(i)·tanh(g)``, ``h = σ(o)·tanh(c)``, Shi et al. 2015 without peepholes).
    ``h[0] = c[0] = 0``. The input convolution runs on all steps at once; only ``conv_h`` runs
    step by step (skipped at the first step, where ``h = 0``).

    Args:
        in_channels, channels: input and hidden channels.
        kernel_size: odd kernel size of both convolutions ("same" padding).
        cell: ``"rnn"`` or ``"lstm"``.
    """

    def __init__(self, in_channels: int, channels: int, kernel_size: int = 3,
                 cell: str = "rnn") -> None:
        super().__init__()
        gates = {"rnn": 1, "lstm": 4}.get(cell)
        if gates is None:
            raise ValueError(f"ConvRecurrent cell must be 'rnn' or 'lstm', got {cell!r}")
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd (same padding), got {kernel_size}")
        self.cell, self.channels = cell, channels
        pad = kernel_size // 2
        self.conv_x = TimeDistributed(nn.Conv2d(in_channels, gates * channels, kernel_size,
                                                padding=pad))
        self.conv_h = nn.Conv2d(channels, gates * channels, kernel_size, padding=pad,
                                bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """``[T, B, C_in, H, W]`` -> hidden states ``[T, B, C, H, W]``."""
        zx = self.conv_x(x)
        h = c = None
        out = []
        for t in range(zx.shape[0]):
            z = zx[t] if h is None else zx[t] + self.conv_h(h)
            if self.cell == "rnn":
                h = torch.tanh(z)
            else:
                i, f, g, o = z.chunk(4, dim=1)
                c = torch.sigmoid(i) * torch.tanh(g) + (0 if c is None else torch.sigmoid(f) * c)
                h = torch.sigmoid(o) * torch.tanh(c)
            out.append(h)
        return torch.stack(out)


class RecurrentCNN(SpikingClassifier):
    """Conv recurrent stages, a recurrent FC layer and a linear readout at every step.

    ``[ConvRecurrent(c_i) -> (avgpool 2 if i in pool_after)]* -> flatten -> [dropout] ->
    cell(hidden) -> [dropout] -> Linear(K)`` per step, then the time readout. The defaults are
    the widths of the paper's DVS-Gesture SNN-CNN (conv 64, 128, pool, 128, pool, FC 256).

    Args:
        in_channels, num_classes, input_size: from the dataset.
        channels: hidden channels of the conv stages.
        pool_after: indices of the stages followed by 2×2 average pooling.
        hidden: size of the recurrent FC layer (``None`` or 0: none).
        cell: ``"rnn"`` (ConvRNN + RNN) or ``"lstm"`` (ConvLSTM + LSTM).
        kernel_size: conv kernel size.
        readout: ``"mean"`` (default) or ``"last"``.
        dropout: dropout before each FC layer.
        T: number of steps (checked when given; enables static input).
    """

    def __init__(self, in_channels: int = 2, num_classes: int = 11,
                 input_size: int | Sequence[int] = (32, 32),
                 channels: Sequence[int] = (64, 128, 128),
                 pool_after: Sequence[int] = (1, 2), hidden: int | None = 256, cell: str = "rnn",
                 kernel_size: int = 3, readout: str = "mean", dropout: float = 0.0,
                 T: int | None = None) -> None:
        super().__init__()
        self.in_channels, self.num_classes, self.T = in_channels, num_classes, T
        h, w = pair(input_size)
        stages: list[nn.Module] = []
        c_in = in_channels
        for i, c in enumerate(channels):
            stages.append(ConvRecurrent(c_in, c, kernel_size, cell))
            if i in tuple(pool_after):
                stages.append(TimeDistributed(nn.AvgPool2d(2)))
                h, w = h // 2, w // 2
            c_in = c
        if h < 1 or w < 1:
            raise ValueError(f"input_size {pair(input_size)} is too small for "
                             f"{len(tuple(pool_after))} pooling stages")
        self.features = nn.Sequential(*stages)
        flat = c_in * h * w
        self.drop1 = nn.Dropout(dropout)
        self.rec = _CELLS[cell](flat, hidden) if hidden else None
        self.drop2 = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden or flat, num_classes)
        self.readout = make_readout(readout)

    def _per_step(self, x: Tensor) -> Tensor:
        y = self.drop1(self.features(x).flatten(2))
        if self.rec is not None:
            y = self.rec(y)[0]
        return self.fc(self.drop2(y))


_FLAT_KINDS = ("frames", "sequence")
for _cell in _CELLS:
    register_model(_cell, lambda _c=_cell, **kw: RecurrentMLP(cell=_c, **kw), kinds=_FLAT_KINDS,
                   from_spec=flat_args)
register_model("convrnn", lambda **kw: RecurrentCNN(cell="rnn", **kw), kinds=("frames",),
               from_spec=frames_any_T)
register_model("convlstm", lambda **kw: RecurrentCNN(cell="lstm", **kw), kinds=("frames",),
               from_spec=frames_any_T)
del _cell
