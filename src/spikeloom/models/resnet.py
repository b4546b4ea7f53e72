"""Deep spiking ResNets with threshold-dependent batch norm (STBP-tdBN: Zheng et al., AAAI 2021,
arXiv:2011.05280): the basic and bottleneck blocks, :class:`SpikingResNet`, ResNet-19, -34, -50,
the LIAF/LIF ResNet-18/34 of ES-ImageNet (Lin et al. 2021) and a tiny variant."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor, nn

from ..layers import Add, MeanOverTime, TimeDistributed
from .base import SpikingClassifier
from .factory import NormKind, make_neuron_factory, make_norm, pair
from .registry import frames_args, register_model

__all__ = ["BasicBlock", "Bottleneck", "SpikingResNet", "resnet19", "resnet34", "resnet50",
           "es_resnet18", "es_resnet34", "resnet_tiny"]


class BasicBlock(nn.Module):
    """Spiking basic block of STBP-tdBN, time-major ``[T, B, C, H, W]``::

        out = LIF( tdBN_α=1( conv3x3(x, stride) ) )
        out = tdBN_α=1/√2( conv3x3(out) )
        sc  = x  if shapes match  else  tdBN_α=1/√2( conv1x1(x, stride) )
        y   = LIF( Add(out, sc) )      (Add: the residual sum as a module)

    Args:
        in_channels, out_channels, stride: as for the convolutions.
        make_neuron: zero-argument neuron factory (see :func:`make_neuron_factory`).
        v_th: threshold used to scale the tdBNs.
        norm: ``"tdbn"`` (default), ``"bn"`` or ``None``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        make_neuron: Callable[[], nn.Module],
        v_th: float = 0.5,
        norm: NormKind = "tdbn",
    ) -> None:
        super().__init__()
        bias = norm is None
        self.conv1 = TimeDistributed(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=bias)
        )
        self.bn1 = make_norm(norm, out_channels, v_th)
        self.sn1 = make_neuron()
        self.conv2 = TimeDistributed(
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=bias)
        )
        self.bn2 = make_norm(norm, out_channels, v_th, residual=True)
        self.shortcut = _shortcut(in_channels, out_channels, stride, norm, v_th, bias)
        self.add = Add()
        self.sn2 = make_neuron()

    def forward(self, x: Tensor) -> Tensor:
        out = self.sn1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.sn2(self.add(out, self.shortcut(x)))


def _shortcut(in_channels: int, out_channels: int, stride: int, norm: NormKind, v_th: float,
              bias: bool) -> nn.Module:
    """The residual shortcut: identity when shapes match, else ``tdBN_α=1/√2(conv1x1(x))``."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(
        TimeDistributed(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=bias)),
        make_norm(norm, out_channels, v_th, residual=True),
    )


class Bottleneck(nn.Module):
    """Spiking bottleneck block (ResNet-50 layout, expansion 4), time-major::

        out = LIF( tdBN( conv1x1(x, width) ) )
        out = LIF( tdBN( conv3x3(out, stride) ) )
        out = tdBN_α=1/√2( conv1x1(out, 4·width) )
        sc  = x  if shapes match  else  tdBN_α=1/√2( conv1x1(x, stride) )
        y   = LIF( Add(out, sc) )

    The 1/√2 rule applies to the two normalisations whose outputs are summed, as in the basic
    block (spec: only the summed branches).
    """

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int,
                 make_neuron: Callable[[], nn.Module], v_th: float = 0.5,
                 norm: NormKind = "tdbn") -> None:
        super().__init__()
        bias, out = norm is None, width * self.expansion
        self.conv1 = TimeDistributed(nn.Conv2d(in_channels, width, 1, bias=bias))
        self.bn1 = make_norm(norm, width, v_th)
        self.sn1 = make_neuron()
        self.conv2 = TimeDistributed(nn.Conv2d(width, width, 3, stride=stride, padding=1,
                                               bias=bias))
        self.bn2 = make_norm(norm, width, v_th)
        self.sn2 = make_neuron()
        self.conv3 = TimeDistributed(nn.Conv2d(width, out, 1, bias=bias))
        self.bn3 = make_norm(norm, out, v_th, residual=True)
        self.shortcut = _shortcut(in_channels, out, stride, norm, v_th, bias)
        self.add = Add()
        self.sn3 = make_neuron()

    def forward(self, x: Tensor) -> Tensor:
        out = self.sn1(self.bn1(self.conv1(x)))
        out = self.sn2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.sn3(self.add(out, self.shortcut(x)))


BLOCKS: dict[str, type[nn.Module]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


@register_model("spiking_resnet", kinds=("frames",), from_spec=frames_args)
class SpikingResNet(SpikingClassifier):
    """Deep spiking ResNet of STBP-tdBN (Zheng et al., AAAI 2021, arXiv:2011.05280).

    ``conv3x3(stem) -> tdBN -> LIF -> stages of BasicBlocks (first stage stride 1, the others
    stride 2 in their first block) -> global avg-pool -> [FC(fc_hidden) -> LIF] -> FC(K)``;
    logits = mean over time of the last FC. Stateless layers run on all steps at once; only the
    LIF layers carry state. For static images build with ``T`` and pass ``[B, C, H, W]``
    (repeated at every step; the stem is the encoding layer).

    Neuron defaults (from the Joint A-SNN reimplementation, believed to be the paper's):
    LIF with ``V_th = 0.5``, decay ``0.25``, hard reset to 0, rectangular surrogate ``a = 1``.

    Args:
        block_layout: number of blocks per stage, e.g. ``(3, 3, 2)`` for ResNet-19.
        widths: channels per stage.
        stem: channels of the first conv (128 for ResNet-19 per the parameter count; the
            STBP-simple demo uses 64).
        in_channels, num_classes: input channels and ``K``.
        fc_hidden: width of the hidden FC + LIF layer (256 in ResNet-19; ``None``: none).
        fc_norm: put a tdBN between the hidden FC and its LIF (not in the spec's layout, so off
            by default; without it the FC-LIF is usually silent at initialisation — it still
            trains through the surrogate window, but the last FC gets no gradient at first).
        T: time steps (optional; enables static input).
        neuron, v_th, decay, surrogate, width: neuron settings; ``neuron_kwargs`` adds more.
        norm: ``"tdbn"`` (default), ``"bn"`` or ``None``.
        input_size: accepted for a uniform model interface and stored; the network ends with a
            global average pool, so it works for any ``(H, W)``.
        block: ``"basic"`` (two 3×3 convs) or ``"bottleneck"`` (1×1, 3×3, 1×1 with expansion
            4; ``widths`` are then the bottleneck widths).
        stem_kernel, stem_stride: the first conv (3, 1 for CIFAR layouts; 7, 2 for ImageNet).
        stem_pool: put a 3×3 stride-2 max-pool after the stem (ImageNet layouts); max-pooling
            spikes keeps them binary.
        stem_pool_padding: its padding (1 in torchvision's ResNets; 0 in the ES-ImageNet code).
    """

    def __init__(
        self,
        block_layout: Sequence[int] = (3, 3, 2),
        widths: Sequence[int] = (128, 256, 512),
        stem: int = 128,
        in_channels: int = 3,
        num_classes: int = 10,
        fc_hidden: int | None = 256,
        T: int | None = None,
        neuron: str | Callable[..., nn.Module] = "lif",
        v_th: float = 0.5,
        decay: float = 0.25,
        surrogate: str = "rectangular",
        width: float | None = 1.0,
        norm: NormKind = "tdbn",
        fc_norm: bool = False,
        neuron_kwargs: dict[str, Any] | None = None,
        input_size: int | Sequence[int] | None = None,
        block: str = "basic",
        stem_kernel: int = 3,
        stem_stride: int = 1,
        stem_pool: bool = False,
        stem_pool_padding: int = 1,
    ) -> None:
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {', '.join(BLOCKS)}, got {block!r}")
        if len(block_layout) != len(widths) or not widths:
            raise ValueError(
                f"block_layout {tuple(block_layout)} and widths {tuple(widths)} must have the "
                "same, non-zero length (one entry per stage)"
            )
        if any(n < 1 for n in block_layout):
            raise ValueError(f"every stage needs at least one block, got {tuple(block_layout)}")
        self.in_channels, self.num_classes, self.T = in_channels, num_classes, T
        self.input_size = None if input_size is None else pair(input_size)
        make = make_neuron_factory(
            neuron, v_th=v_th, decay=decay, surrogate=surrogate, width=width,
            **(neuron_kwargs or {}),
        )
        stem_layers: list[nn.Module] = [
            TimeDistributed(nn.Conv2d(in_channels, stem, stem_kernel, stride=stem_stride,
                                      padding=stem_kernel // 2, bias=norm is None)),
            make_norm(norm, stem, v_th),
            make(),
        ]
        if stem_pool:
            stem_layers.append(TimeDistributed(nn.MaxPool2d(3, 2, padding=stem_pool_padding)))
        self.stem = nn.Sequential(*stem_layers)
        blocks: list[nn.Module] = []
        c_in = stem
        cls = BLOCKS[block]
        expansion = getattr(cls, "expansion", 1)
        for i, (n, c) in enumerate(zip(block_layout, widths)):
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(cls(c_in, c, stride, make, v_th, norm))
                c_in = c * expansion
        self.layers = nn.Sequential(*blocks)
        self.pool = TimeDistributed(nn.AdaptiveAvgPool2d(1))
        head: list[nn.Module] = []
        if fc_hidden:
            if fc_norm:
                head += [nn.Linear(c_in, fc_hidden, bias=norm is None),
                         make_norm(norm, fc_hidden, v_th), make()]
            else:
                head += [nn.Linear(c_in, fc_hidden), make()]
            c_in = fc_hidden
        head.append(nn.Linear(c_in, num_classes))
        self.classifier = nn.Sequential(*head)
        self.readout = MeanOverTime()

    def _per_step(self, x: Tensor) -> Tensor:
        y = self.pool(self.layers(self.stem(x)))
        return self.classifier(y.flatten(2))


@register_model("resnet19", kinds=("frames",), from_spec=frames_args)
def resnet19(in_channels: int = 3, num_classes: int = 10, **kwargs: Any) -> SpikingResNet:
    """ResNet-19 of STBP-tdBN: stem 128, stages 3×128, 3×256 (stride 2), 2×512
    (stride 2), global avg-pool, FC 256 + LIF, FC ``num_classes``. 12.70 M parameters for
    3-channel input and 10 classes (≈ 12.63 M is quoted in published comparison tables).

    Pass ``fc_norm=True`` to train it from scratch: with the plain ``FC -> LIF`` head the
    pooled rates give that LIF an input of std ≈ 0.09 at initialisation (for any width), far
    below ``V_th = 0.5``, so it never fires, the last FC gets no gradient and the net sits at
    chance (measured in ``benchmarks/bench_methods.py --part resnet19``)."""
    kwargs.setdefault("block_layout", (3, 3, 2))
    kwargs.setdefault("widths", (128, 256, 512))
    kwargs.setdefault("stem", 128)
    kwargs.setdefault("fc_hidden", 256)
    return SpikingResNet(in_channels=in_channels, num_classes=num_classes, **kwargs)


def _imagenet_layout(kwargs: dict[str, Any], layout: tuple[int, ...], block: str) -> None:
    kwargs.setdefault("block_layout", layout)
    kwargs.setdefault("widths", (64, 128, 256, 512))
    kwargs.setdefault("stem", 64)
    kwargs.setdefault("block", block)
    kwargs.setdefault("stem_kernel", 7)
    kwargs.setdefault("stem_stride", 2)
    kwargs.setdefault("stem_pool", True)
    kwargs.setdefault("fc_hidden", None)


@register_model("resnet34", kinds=("frames",), from_spec=frames_args)
def resnet34(in_channels: int = 3, num_classes: int = 1000, **kwargs: Any) -> SpikingResNet:
    """Spiking ResNet-34 with tdBN (STBP-tdBN's ImageNet network): stem 7×7/2 64 + 3×3/2
    max-pool, basic blocks 3-4-6-3 over 64-128-256-512, global avg-pool, FC. 21.80 M parameters
    for 3 input channels and 1000 classes (as torchvision's ResNet-34)."""
    _imagenet_layout(kwargs, (3, 4, 6, 3), "basic")
    return SpikingResNet(in_channels=in_channels, num_classes=num_classes, **kwargs)


@register_model("resnet50", kinds=("frames",), from_spec=frames_args)
def resnet50(in_channels: int = 3, num_classes: int = 1000, **kwargs: Any) -> SpikingResNet:
    """Spiking ResNet-50 with tdBN: the ImageNet stem, bottleneck blocks 3-4-6-3 (widths
    64-128-256-512, expansion 4), global avg-pool, FC. 25.56 M parameters for 3 input channels
    and 1000 classes (as torchvision's ResNet-50)."""
    _imagenet_layout(kwargs, (3, 4, 6, 3), "bottleneck")
    return SpikingResNet(in_channels=in_channels, num_classes=num_classes, **kwargs)


def _es_imagenet(kwargs: dict[str, Any], layout: tuple[int, ...]) -> None:
    _imagenet_layout(kwargs, layout, "basic")
    kwargs.setdefault("stem_pool_padding", 0)
    kwargs.setdefault("neuron", "liaf")
    kwargs.setdefault("norm", "bn")
    kwargs.setdefault("v_th", 0.5)
    kwargs.setdefault("decay", 1.0 / (1.0 + math.exp(-0.5)))
    nk = dict(kwargs.get("neuron_kwargs") or {})
    nk.setdefault("learn_decay", True)
    if kwargs["neuron"] == "liaf":
        nk.setdefault("activation", "leaky_relu")
    kwargs["neuron_kwargs"] = nk


@register_model("es_resnet18", kinds=("frames",), from_spec=frames_args)
def es_resnet18(in_channels: int = 2, num_classes: int = 1000, **kwargs: Any) -> SpikingResNet:
    """LIAF (default) or LIF (``neuron="lif"``) ResNet-18 of the ES-ImageNet benchmark: stem
    7×7/2 64 + BN + neuron + 3×3/2 max-pool (no padding), basic blocks 2-2-2-2 over
    64-128-256-512 with BN over batch, time and space (``norm="bn"``), LeakyReLU(0.2) analog
    output for LIAF, ``V_th = 0.5``, learnable decay ``sigmoid(0.5)``, global avg-pool per step,
    FC, mean over the 8 steps. 11.69 M parameters for 2 input channels and 1000 classes."""
    _es_imagenet(kwargs, (2, 2, 2, 2))
    return SpikingResNet(in_channels=in_channels, num_classes=num_classes, **kwargs)


@register_model("es_resnet34", kinds=("frames",), from_spec=frames_args)
def es_resnet34(in_channels: int = 2, num_classes: int = 1000, **kwargs: Any) -> SpikingResNet:
    """LIAF/LIF ResNet-34 of the ES-ImageNet benchmark (as :func:`es_resnet18`, blocks
    3-4-6-3). 21.79 M parameters for 2 input channels and 1000 classes."""
    _es_imagenet(kwargs, (3, 4, 6, 3))
    return SpikingResNet(in_channels=in_channels, num_classes=num_classes, **kwargs)


@register_model("resnet_tiny", kinds=("frames",), from_spec=frames_args)
def resnet_tiny(in_channels: int = 2, num_classes: int = 10, **kwargs: Any) -> SpikingResNet:
    """A tiny spiking ResNet (stem 8, stages 1×8 and 1×16 with stride 2, FC 32 with tdBN) with
    the same block structure as ResNet-19; for tests, demos and CPU smoke runs."""
    kwargs.setdefault("block_layout", (1, 1))
    kwargs.setdefault("widths", (8, 16))
    kwargs.setdefault("stem", 8)
    kwargs.setdefault("fc_hidden", 32)
    kwargs.setdefault("fc_norm", True)
    return SpikingResNet(in_channels=in_channels, num_classes=num_classes, **kwargs)
