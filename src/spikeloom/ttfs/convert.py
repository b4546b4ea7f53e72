"""ReLU MLP → TTFS network with BatchNorm folded and windows from measured activations.

Steps (spec C2 "ReLU → SNN conversion"):

1. fold every BatchNorm into its neighbouring ``nn.Linear``
   (:func:`spikeloom.fold.fold_sequential`);
2. fold an input range ``[p, q] ≠ [0, 1]`` into the first layer ("imaginary BN"
   ``(x − p)/(q − p)``), since TTFS inputs are coded on ``[0, 1]``;
3. measure ``X_n``, the largest ReLU output of every hidden layer on calibration batches, and
   set each window width to ``(1 + ζ)·X_n`` (the reference code records ``X_n`` but never
   passes it on, so its windows stay at ``1.5·1000``; we pass the measured value — a wider
   window is equally exact, only slower);
4. copy ``W`` and ``D = bias`` into :class:`~spikeloom.ttfs.TTFSNet` (identity mapping).

Supported: ``nn.Sequential`` of ``nn.Flatten``/``nn.Dropout``, ``nn.Linear``, ``nn.BatchNorm1d``
(before or after the ReLU), ``nn.ReLU``, ending with a ``nn.Linear``. Conv nets (min-pooling,
the 9-bias border fold) are not implemented.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..fold import fold_sequential
from .network import TTFSNet

__all__ = ["relu_to_ttfs", "linear_stack"]


def linear_stack(seq: nn.Sequential) -> list[nn.Linear]:
    """The ``nn.Linear`` layers of a BN-free ReLU MLP, checking the Linear(/ReLU) pattern."""
    linears: list[nn.Linear] = []
    relu_after: list[bool] = []
    for i, m in enumerate(seq):
        if isinstance(m, nn.Linear):
            linears.append(m)
            relu_after.append(False)
        elif isinstance(m, nn.ReLU):
            if not linears or relu_after[-1]:
                raise ConfigError(f"relu_to_ttfs: ReLU at index {i} does not follow a Linear")
            relu_after[-1] = True
        elif not isinstance(m, (nn.Flatten, nn.Dropout)):
            raise ConfigError(
                f"relu_to_ttfs: unsupported layer {type(m).__name__} at index {i}; allowed: "
                "Flatten, Dropout, Linear, BatchNorm1d, ReLU"
            )
    if not linears or relu_after[-1] or not all(relu_after[:-1]):
        raise ConfigError(
            "relu_to_ttfs: expected Linear→ReLU blocks ending with a Linear without ReLU"
        )
    return linears


def _fold_input_range(lin: nn.Linear, p: float, q: float) -> None:
    """``lin(x)`` for ``x ∈ [p, q]`` rewritten on ``u = (x − p)/(q − p) ∈ [0, 1]``."""
    with torch.no_grad():
        lin.bias.add_(p * lin.weight.sum(1))
        lin.weight.mul_(q - p)


@torch.no_grad()
def relu_to_ttfs(
    relu_net: nn.Sequential,
    calibration: Iterable[Tensor],
    *,
    input_range: tuple[float, float] = (0.0, 1.0),
    zeta: float = 0.5,
    growth: float = 10.0,
    dtype: torch.dtype = torch.float64,
) -> TTFSNet:
    """Convert a trained ReLU MLP into an equivalent :class:`TTFSNet` (module docstring).

    Args:
        relu_net: the ReLU network (its BatchNorms in eval mode are folded).
        calibration: input batches (``[B, ...]`` in ``input_range``) to measure ``X_n``.
        input_range: ``(p, q)`` range of the inputs, folded into the first layer.
        zeta: window headroom, width ``(1 + zeta)·X_n``.
        growth: the network's window-growth factor.
        dtype: dtype of the TTFS network (float64 for exact comparisons).

    Returns:
        the TTFS network, whose readout equals ``relu_net``'s output on inputs in range.
    """
    p, q = map(float, input_range)
    if not q > p:
        raise ConfigError(f"relu_to_ttfs: input_range must be (p, q) with q > p, got {input_range}")
    linears = [m.to(dtype) for m in linear_stack(fold_sequential(relu_net.eval()))]
    if (p, q) != (0.0, 1.0):
        _fold_input_range(linears[0], p, q)
    sizes = [linears[0].in_features] + [m.out_features for m in linears]
    x_max = [0.0] * (len(linears) - 1)
    seen = False
    for xb in calibration:
        h = ((xb.to(dtype).reshape(xb.shape[0], -1)) - p) / (q - p)
        for i, m in enumerate(linears[:-1]):
            h = torch.relu(m(h))
            x_max[i] = max(x_max[i], float(h.max()) if h.numel() else 0.0)
        seen = True
    if not seen:
        raise ConfigError("relu_to_ttfs: calibration yielded no batch")
    net = TTFSNet(sizes, x_max=[max(v, 1e-6) for v in x_max], zeta=zeta, growth=growth).to(dtype)
    for lin, m in zip(linears, net.layers, strict=True):
        m.weight.copy_(lin.weight)
        m.bias.copy_(lin.bias)
    return net
