"""TA-SNN: temporal-wise attention SNN (Yao et al., ICCV 2021, arXiv:2107.11711)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor, nn

from ..layers import MeanOverTime, TemporalAttention, TimeDistributed
from ..walk import iter_layers
from .base import SpikingClassifier
from .factory import NormKind, make_neuron_factory, make_norm, pair
from .registry import frames_args, register_model

__all__ = ["TASNN"]


@register_model("tasnn", kinds=("frames",), from_spec=frames_args)
class TASNN(SpikingClassifier):
    """Temporal-wise attention SNN, DVS128-Gesture configuration of TA-SNN (Yao et al., ICCV 2021,
    arXiv:2107.11711).

    Conv layers (``ConvTA-LIF``): ``conv3x3(pad 1) -> BN -> [avgpool 2] -> TA -> LIF``;
    FC layers (``FC-TA-LIF``): ``Linear -> BN -> TA -> LIF``; the last FC layer is also an
    FC-TA-LIF, so the per-step output is the spikes of the ``K`` output neurons and the
    logits are their firing rates in [0, 1] (the reference trains them with MSE against the
    one-hot label). BN is plain batch norm with statistics over time, batch and space (the
    reference applies BatchNorm2d to ``[B·T, C, H, W]``).

    Defaults follow the Gesture config: 2×32×32 input, channels 64/128/128 with pooling after
    the 2nd and 3rd conv, FC 8192 -> 256 -> 11, reduction 16, LIF with decay 0.3, ``V_th = 0.3``,
    ``>=`` firing, rectangular surrogate of width 0.5, hard reset to 0. The reference cell resets
    to ``V_th`` instead of 0 (probably unintended): pass ``v_reset=0.3`` to
    reproduce it.

    Args:
        in_channels, num_classes, input_size: input channels, ``K`` and ``(H, W)``.
        T: number of time steps (required, not ``None``: the TA weights are tied to it; a
            :class:`~spikeloom.datasets.spec.DataSpec` without ``T`` needs an explicit ``T``).
        reduction: TA reduction ``r`` (hidden width ``max(1, T // r)``).
        channels, pool: conv widths and whether each conv layer pools by 2.
        hidden: widths of the hidden FC layers (``()`` for none).
        attention: set False for the plain LIF-SNN baseline of the same structure.
        discard_threshold: inference-time frame discarding threshold passed to every TA layer.
        neuron, v_th, decay, width, fire_ge, v_reset: neuron settings (``neuron="liaf"`` gives a
            TA-LIAF network; ``neuron_kwargs`` adds more).
        norm: ``"bn"`` (default, as the reference), ``"tdbn"`` or ``None``.

    Shapes:
        input ``[T, B, in_channels, H, W]`` -> rates ``[B, num_classes]``.
    """

    def __init__(
        self,
        in_channels: int = 2,
        num_classes: int = 11,
        input_size: int | Sequence[int] = (32, 32),
        T: int | None = 60,
        reduction: int = 16,
        channels: Sequence[int] = (64, 128, 128),
        pool: Sequence[bool] = (False, True, True),
        hidden: Sequence[int] = (256,),
        attention: bool = True,
        discard_threshold: float | None = None,
        neuron: str | Callable[..., nn.Module] = "lif",
        v_th: float = 0.3,
        decay: float = 0.3,
        width: float | None = 0.5,
        fire_ge: bool = True,
        v_reset: float = 0.0,
        norm: NormKind = "bn",
        neuron_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if T is None:
            raise ValueError(
                "TASNN needs the number of time steps T (its attention weights are tied to it); "
                "the data does not fix T (samples of varying length?): pass T=..."
            )
        if len(pool) != len(channels):
            raise ValueError(f"pool {tuple(pool)} needs one flag per conv layer {tuple(channels)}")
        H, W = pair(input_size)
        n_pool = sum(bool(p) for p in pool)
        h, w = H >> n_pool, W >> n_pool
        if h < 1 or w < 1:
            raise ValueError(f"input_size {(H, W)} is too small for {n_pool} pooling layers")
        self.in_channels, self.num_classes, self.T = in_channels, num_classes, int(T)
        self.input_size = (H, W)
        make = make_neuron_factory(
            neuron, v_th=v_th, decay=decay, width=width, fire_ge=fire_ge, v_reset=v_reset,
            **(neuron_kwargs or {}),
        )

        def ta() -> nn.Module:
            if not attention:
                return nn.Identity()
            return TemporalAttention(self.T, reduction, discard_threshold=discard_threshold)

        convs: list[nn.Module] = []
        c_in = in_channels
        for c, p in zip(channels, pool):
            layer = [
                TimeDistributed(nn.Conv2d(c_in, c, 3, padding=1, bias=norm is None)),
                make_norm(norm, c, v_th),
            ]
            if p:
                layer.append(TimeDistributed(nn.AvgPool2d(2)))
            layer += [ta(), make()]
            convs.append(nn.Sequential(*layer))
            c_in = c
        self.features = nn.Sequential(*convs)
        fcs: list[nn.Module] = []
        n_in = c_in * h * w
        for n_out in (*hidden, num_classes):
            fcs.append(
                nn.Sequential(
                    nn.Linear(n_in, n_out, bias=norm is None),
                    make_norm(norm, n_out, v_th),
                    ta(),
                    make(),
                )
            )
            n_in = n_out
        self.classifier = nn.Sequential(*fcs)
        self.readout = MeanOverTime()

    def attention_layers(self) -> list[TemporalAttention]:
        """All :class:`~spikeloom.layers.TemporalAttention` modules, input side first."""
        return [layer.module for layer in iter_layers(self) if layer.role == "attention"]

    def _per_step(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(2))
