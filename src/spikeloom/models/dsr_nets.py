"""The networks of DSR (Meng et al., CVPR 2022): pre-activation ResNet-18 and VGG-11, with DSR
neurons (:mod:`spikeloom.methods.dsr`). Time-major ``[T, B, C, H, W]``; stateless layers run
on all steps at once (BatchNorm statistics over time and batch, as the reference code's BN on
the ``[T·B, ...]`` stack)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from ..layers import Add, TimeDistributed
from ..methods.dsr import DSRIF, DSRLIF, WeightedRate
from .base import SpikingClassifier
from .factory import make_norm
from .registry import frames_args, register_model

__all__ = ["PreActBlock", "DSRPreActResNet", "DSRVGG", "dsr_resnet18", "dsr_vgg11"]


def _neuron_factory(neuron: str, kwargs: dict[str, Any]):
    if neuron == "lif":
        return lambda: DSRLIF(**kwargs)
    if neuron == "if":
        return lambda: DSRIF(**kwargs)
    raise ValueError(f"DSR networks take neuron 'lif' or 'if', got {neuron!r}")


def _readout(neuron: str, kwargs: dict[str, Any]) -> WeightedRate:
    if neuron == "lif":
        return WeightedRate(kwargs.get("tau", 1.0), kwargs.get("dt", 0.05))
    return WeightedRate()


class PreActBlock(nn.Module):
    """Pre-activation basic block: ``BN -> neuron -> conv3x3(stride) -> BN -> neuron ->
    conv3x3``, plus the shortcut (identity, or a 1×1 conv on the first neuron's spikes when the
    shape changes, as in the common pre-activation ResNet code), summed by :class:`Add`."""

    def __init__(self, c_in: int, c_out: int, stride: int, make) -> None:
        super().__init__()
        self.bn1 = make_norm("bn", c_in, 1.0)
        self.sn1 = make()
        self.conv1 = TimeDistributed(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False))
        self.bn2 = make_norm("bn", c_out, 1.0)
        self.sn2 = make()
        self.conv2 = TimeDistributed(nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False))
        self.shortcut: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.shortcut = TimeDistributed(nn.Conv2d(c_in, c_out, 1, stride, bias=False))
        self.add = Add()

    def forward(self, x: Tensor) -> Tensor:
        s = self.sn1(self.bn1(x))
        sc = self.shortcut(s) if self.shortcut is not None else x
        out = self.conv2(self.sn2(self.bn2(self.conv1(s))))
        return self.add(out, sc)


class _Head(nn.Module):
    """``BN -> neuron -> global avg-pool -> neuron -> dropout -> FC -> BN1d -> neuron``."""

    def __init__(self, c: int, num_classes: int, make, dropout: float) -> None:
        super().__init__()
        self.bn = make_norm("bn", c, 1.0)
        self.sn1 = make()
        self.pool = TimeDistributed(nn.AdaptiveAvgPool2d(1))
        self.sn2 = make()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(c, num_classes)
        self.bn_out = make_norm("bn", num_classes, 1.0)
        self.sn_out = make()

    def forward(self, x: Tensor) -> Tensor:
        y = self.sn2(self.pool(self.sn1(self.bn(x))).flatten(2))
        return self.sn_out(self.bn_out(self.fc(self.drop(y))))


@register_model("dsr_preact_resnet", kinds=("frames",), from_spec=frames_args)
class DSRPreActResNet(SpikingClassifier):
    """Pre-activation spiking ResNet of DSR: stem conv3×3 (no neuron), stages of
    :class:`PreActBlock`, head ``BN -> neuron -> avg-pool -> neuron -> dropout -> FC -> BN1d ->
    neuron``; the logits are the (weighted, for LIF) firing rate of the last neuron layer.

    The paper's head pools with ``avgpool 4`` on CIFAR's 4×4 map; here a global average pool
    (identical there, and valid for any input size).

    Args:
        block_layout, widths: blocks and channels per stage ((2, 2, 2, 2), (64, 128, 256, 512)).
        in_channels, num_classes, T, input_size: as for every frame classifier.
        neuron: ``"lif"`` (DSR's CIFAR default) or ``"if"``.
        neuron_kwargs: DSR neuron parameters (e.g. ``v_th``, ``alpha``, ``dt``).
        dropout: before the FC layer.
    """

    def __init__(self, block_layout: Sequence[int] = (2, 2, 2, 2),
                 widths: Sequence[int] = (64, 128, 256, 512), in_channels: int = 3,
                 num_classes: int = 10, T: int | None = None, neuron: str = "lif",
                 neuron_kwargs: dict[str, Any] | None = None, dropout: float = 0.0,
                 input_size: Any = None) -> None:
        super().__init__()
        if len(block_layout) != len(widths) or not widths:
            raise ValueError(f"block_layout {tuple(block_layout)} and widths {tuple(widths)} "
                             "must have the same, non-zero length")
        self.in_channels, self.num_classes, self.T = in_channels, num_classes, T
        kw = dict(neuron_kwargs or {})
        make = _neuron_factory(neuron, kw)
        self.stem = TimeDistributed(nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False))
        blocks, c = [], widths[0]
        for i, (n, w) in enumerate(zip(block_layout, widths)):
            for j in range(n):
                blocks.append(PreActBlock(c, w, 2 if (i > 0 and j == 0) else 1, make))
                c = w
        self.layers = nn.Sequential(*blocks)
        self.head = _Head(c, num_classes, make, dropout)
        self.readout = _readout(neuron, kw)

    def _per_step(self, x: Tensor) -> Tensor:
        return self.head(self.layers(self.stem(x)))


@register_model("dsr_resnet18", kinds=("frames",), from_spec=frames_args,
                aliases=("preact_resnet18",))
def dsr_resnet18(in_channels: int = 3, num_classes: int = 10, **kwargs: Any) -> DSRPreActResNet:
    """DSR's pre-activation ResNet-18 (64-128-256-512, 2-2-2-2 blocks), DSR-LIF neurons."""
    kwargs.setdefault("block_layout", (2, 2, 2, 2))
    kwargs.setdefault("widths", (64, 128, 256, 512))
    return DSRPreActResNet(in_channels=in_channels, num_classes=num_classes, **kwargs)


VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


@register_model("dsr_vgg", kinds=("frames",), from_spec=frames_args)
class DSRVGG(SpikingClassifier):
    """Spiking VGG of DSR (VGG-11 for DVS-CIFAR10): ``conv3x3 -> BN -> neuron`` per entry,
    ``"M"`` = average pool 2, then the DSR head (global avg-pool, neuron, dropout, FC, BN1d,
    neuron, rate). Pooling stages beyond what the input size allows are skipped by using an
    adaptive pool at the end (the head pools globally).

    Args:
        layout: channels and ``"M"`` entries (default :data:`VGG11`).
        others: as :class:`DSRPreActResNet`.
    """

    def __init__(self, layout: Sequence[Any] = VGG11, in_channels: int = 2,
                 num_classes: int = 10, T: int | None = None, neuron: str = "lif",
                 neuron_kwargs: dict[str, Any] | None = None, dropout: float = 0.0,
                 input_size: Any = None) -> None:
        super().__init__()
        self.in_channels, self.num_classes, self.T = in_channels, num_classes, T
        kw = dict(neuron_kwargs or {})
        make = _neuron_factory(neuron, kw)
        layers: list[nn.Module] = []
        c = in_channels
        for v in layout:
            if v == "M":
                layers.append(TimeDistributed(nn.AvgPool2d(2)))
            else:
                layers += [TimeDistributed(nn.Conv2d(c, int(v), 3, 1, 1, bias=False)),
                           make_norm("bn", int(v), 1.0), make()]
                c = int(v)
        self.features = nn.Sequential(*layers)
        self.pool = TimeDistributed(nn.AdaptiveAvgPool2d(1))
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(c, num_classes)
        self.bn_out = make_norm("bn", num_classes, 1.0)
        self.sn_out = make()
        self.readout = _readout(neuron, kw)

    def _per_step(self, x: Tensor) -> Tensor:
        y = self.pool(self.features(x)).flatten(2)
        return self.sn_out(self.bn_out(self.fc(self.drop(y))))


@register_model("dsr_vgg11", kinds=("frames",), from_spec=frames_args)
def dsr_vgg11(in_channels: int = 2, num_classes: int = 10, **kwargs: Any) -> DSRVGG:
    """DSR's VGG-11 (for DVS-CIFAR10)."""
    kwargs.setdefault("layout", VGG11)
    return DSRVGG(in_channels=in_channels, num_classes=num_classes, **kwargs)
