"""Deep spiking ResNets with threshold-dependent batch norm (STBP-tdBN: Zheng et al., AAAI 2021,
arXiv:2011.05280): the basic block, :class:`SpikingResNet`, ResNet-19 and a tiny variant."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor, nn

from ..layers import Add, MeanOverTime, TimeDistributed
from .base import SpikingClassifier
from .factory import NormKind, make_neuron_factory, make_norm, pair
from .registry import frames_args, register_model

__all__ = ["BasicBlock", "SpikingResNet", "resnet19", "resnet_tiny"]


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
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                TimeDistributed(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=bias)),
                make_norm(norm, out_channels, v_th, residual=True),
            )
        else:
            self.shortcut = nn.Identity()
        self.add = Add()
        self.sn2 = make_neuron()

    def forward(self, x: Tensor) -> Tensor:
        out = self.sn1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.sn2(self.add(out, self.shortcut(x)))


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
    ) -> None:
        super().__init__()
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
        self.stem = nn.Sequential(
            TimeDistributed(nn.Conv2d(in_channels, stem, 3, padding=1, bias=norm is None)),
            make_norm(norm, stem, v_th),
            make(),
        )
        blocks: list[nn.Module] = []
        c_in = stem
        for i, (n, c) in enumerate(zip(block_layout, widths)):
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(c_in, c, stride, make, v_th, norm))
                c_in = c
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
    3-channel input and 10 classes (≈ 12.63 M is quoted in published comparison tables)."""
    kwargs.setdefault("block_layout", (3, 3, 2))
    kwargs.setdefault("widths", (128, 256, 512))
    kwargs.setdefault("stem", 128)
    kwargs.setdefault("fc_hidden", 256)
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
