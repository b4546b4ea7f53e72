"""Deep thin block networks for wide-then-narrow training (:mod:`spikeloom.train.wide_narrow`).

:func:`deep_thin_snn` builds a :class:`BlockNet` of spiking
conv blocks, every block starting with its convolution (so width maps merge into it)::

    stem:   conv3x3(in → w, stride 2) → BN → neuron
    block:  conv3x3(w → w) → BN → neuron                 (× depth)
    head:   global average pool → Linear(w → classes); readout: mean over time

:func:`deep_thin_mlp` is the ANN counterpart (``Linear → ReLU`` blocks, input ``[B, ...]``).
``"deep_thin_snn"`` is a registered model (``spikeloom train --model deep_thin_snn``).
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import Tensor, nn

from ..layers import MeanOverTime, TimeDistributed
from .factory import make_neuron_factory
from .registry import frames_args, register_model

__all__ = ["BlockNet", "deep_thin_snn", "deep_thin_mlp"]


class BlockNet(nn.Module):
    """``readout(head(block_K(…block_1(stem(x)))))`` — the structure WIN works on.

    ``readout`` (optional, e.g. :class:`~spikeloom.layers.MeanOverTime`) maps per-step
    outputs ``[T, B, K]`` to logits; ``forward(x, per_step=True)`` skips it (a model without
    one returns ``out[None]``).
    """

    def __init__(self, stem: nn.Module, blocks: Iterable[nn.Module], head: nn.Module,
                 readout: nn.Module | None = None) -> None:
        super().__init__()
        self.stem, self.blocks, self.head = stem, nn.ModuleList(blocks), head
        self.readout = readout

    def forward(self, x: Tensor, per_step: bool = False) -> Tensor:
        h = self.stem(x)
        for b in self.blocks:
            h = b(h)
        out = self.head(h)
        if self.readout is None:
            return out[None] if per_step else out
        return out if per_step else self.readout(out)


@register_model("deep_thin_snn", kinds=("frames",), from_spec=frames_args)
def deep_thin_snn(width: int = 8, depth: int = 6, *, in_channels: int = 2,
                  num_classes: int = 10, input_size: object = None, T: int | None = None,
                  neuron: str = "lif", v_th: float = 0.5, decay: float = 0.5) -> BlockNet:
    """Spiking conv :class:`BlockNet` of ``depth`` blocks of ``width`` channels (module doc).

    Input ``[T, B, C, H, W]`` of any size and ``T`` (``input_size`` and ``T`` are accepted for
    the registry and not needed: the head pools globally); output logits ``[B, K]``.
    """
    make = make_neuron_factory(neuron, v_th=v_th, decay=decay)

    def conv(cin: int, stride: int = 1) -> list[nn.Module]:
        return [TimeDistributed(nn.Conv2d(cin, width, 3, stride, 1, bias=False)),
                TimeDistributed(nn.BatchNorm2d(width)), make()]

    stem = nn.Sequential(*conv(in_channels, 2))
    blocks = [nn.Sequential(*conv(width)) for _ in range(depth)]
    head = nn.Sequential(TimeDistributed(nn.AdaptiveAvgPool2d(1)), nn.Flatten(2),
                         nn.Linear(width, num_classes))
    return BlockNet(stem, blocks, head, MeanOverTime())


def deep_thin_mlp(width: int = 16, depth: int = 6, *, in_features: int = 784,
                  num_classes: int = 10) -> BlockNet:
    """ANN :class:`BlockNet`: ``Flatten → Linear(in → w) → ReLU``, ``depth`` × ``Linear → ReLU``,
    head ``Linear(w → classes)``; input ``[B, ...]``."""
    stem = nn.Sequential(nn.Flatten(), nn.Linear(in_features, width), nn.ReLU())
    blocks = [nn.Sequential(nn.Linear(width, width), nn.ReLU()) for _ in range(depth)]
    return BlockNet(stem, blocks, nn.Sequential(nn.Linear(width, num_classes)))
