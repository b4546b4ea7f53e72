"""Neural Channel Expansion (spec A9): channel-width search for 2-bit uniform quantization.

[RECON, as the spec] A differentiable (TAS-style) search over the output width of every conv
layer of a small supernet: each layer holds candidate widths ``c_1 < … < c_K`` (some above the
original width); its output is the Gumbel-softmax-weighted mix of the feature map masked to each
candidate width. Weights and activations are 2-bit during the search. The loss adds
``λ·max(0, log(FLOPs_expected / FLOPs_target))``; expected FLOPs use the expected input *and*
output widths of every layer. "Expansion": when a layer's largest candidate has the largest
probability, a larger candidate (×``expand_factor``) is appended (the layer's weights grow,
keeping the trained channels).

* :class:`WidthSearchConv` — conv + BN + 2-bit activation with candidate widths.
* :class:`NCESupernet` — a stack of them + global pooling + a 2-bit linear classifier.
* :func:`nce_search` — the search loop; returns the chosen widths.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ..errors import ConfigError
from .quant.fake import WeightFakeQuant, ste_round

__all__ = ["WidthSearchConv", "NCESupernet", "nce_search", "flops_penalty"]


def _act2bit(x: Tensor) -> Tensor:
    """PACT-like 2-bit activation on [0, 1] (levels 0, 1/3, 2/3, 1) with an STE."""
    return ste_round(torch.clamp(x, 0.0, 1.0) * 3) / 3


class WidthSearchConv(nn.Module):
    """3×3 conv (2-bit weights) + BN + 2-bit activation whose output width is searched.

    Args:
        c_in: input channels (the previous layer's largest candidate).
        candidates: increasing output widths.
        stride: conv stride.
    """

    def __init__(self, c_in: int, candidates: Sequence[int], stride: int = 1) -> None:
        super().__init__()
        cands = sorted({int(c) for c in candidates})
        if not cands or cands[0] < 1:
            raise ConfigError(f"candidate widths must be positive integers, got {candidates}")
        self.stride = stride
        self.candidates = cands
        self.conv = nn.Conv2d(c_in, cands[-1], 3, stride, 1, bias=False)
        parametrize.register_parametrization(self.conv, "weight", WeightFakeQuant(2))
        self.bn = nn.BatchNorm2d(cands[-1])
        self.alpha = nn.Parameter(torch.zeros(len(cands)))
        self.fixed: int | None = None  # a chosen width (deterministic forward)

    def masks(self, device=None) -> Tensor:
        """``[K, C_max]``: mask ``k`` keeps the first ``c_k`` channels."""
        ar = torch.arange(self.candidates[-1], device=device)
        return (ar[None, :] < torch.tensor(self.candidates, device=device)[:, None]).float()

    def probs(self, tau: float, hard: bool = False) -> Tensor:
        """Gumbel-softmax probabilities over the candidates (``tau``: temperature)."""
        return F.gumbel_softmax(self.alpha, tau=tau, hard=hard)

    def forward(self, x: Tensor, p: Tensor | None = None) -> Tensor:
        y = _act2bit(self.bn(self.conv(x)))
        m = self.masks(y.device)
        if self.fixed is not None:
            mask = m[self.candidates.index(self.fixed)]
        else:
            mask = (p if p is not None else torch.softmax(self.alpha, 0)) @ m
        return y * mask[None, :, None, None]

    def expand(self, factor: float = 1.5) -> int:
        """Append a larger candidate (grows conv and BN, keeps the trained channels); returns
        the new width. The next layer must grow its input with :meth:`grow_input`."""
        new = int(math.ceil(self.candidates[-1] * factor))
        old = self.conv
        w = old.parametrizations.weight.original.detach()
        conv = nn.Conv2d(w.shape[1], new, 3, self.stride, 1, bias=False).to(w.device)
        with torch.no_grad():
            conv.weight[: w.shape[0]] = w
        parametrize.register_parametrization(conv, "weight", WeightFakeQuant(2))
        bn = nn.BatchNorm2d(new).to(w.device)
        with torch.no_grad():
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(bn, name)[: w.shape[0]] = getattr(self.bn, name)
        self.conv, self.bn = conv, bn
        self.candidates.append(new)
        self.alpha = nn.Parameter(torch.cat([self.alpha.detach(), self.alpha.detach()[-1:]]))
        return new

    def grow_input(self, c_in: int) -> None:
        """Widen the input to ``c_in`` channels (new input channels start at zero weight)."""
        w = self.conv.parametrizations.weight.original.detach()
        conv = nn.Conv2d(c_in, w.shape[0], 3, self.stride, 1, bias=False).to(w.device)
        with torch.no_grad():
            conv.weight.zero_()
            conv.weight[:, : w.shape[1]] = w
        parametrize.register_parametrization(conv, "weight", WeightFakeQuant(2))
        self.conv = conv


class NCESupernet(nn.Module):
    """``[WidthSearchConv] * L -> global average pool -> 2-bit linear``; input ``[B, C, H, W]``.

    Args:
        in_channels, num_classes: data sizes.
        candidates: per layer, the candidate widths.
        strides: per layer, the conv stride.
    """

    def __init__(self, in_channels: int, num_classes: int,
                 candidates: Sequence[Sequence[int]], strides: Sequence[int]) -> None:
        super().__init__()
        layers, c = [], in_channels
        for cand, s in zip(candidates, strides):
            layers.append(WidthSearchConv(c, cand, s))
            c = max(cand)
        self.layers = nn.ModuleList(layers)
        self.in_channels = in_channels
        self.fc = nn.Linear(c, num_classes)
        parametrize.register_parametrization(self.fc, "weight", WeightFakeQuant(2))

    def forward(self, x: Tensor, tau: float | None = None) -> Tensor:
        for layer in self.layers:
            x = layer(x, layer.probs(tau) if tau is not None and layer.fixed is None else None)
        return self.fc(x.mean(dim=(2, 3)))

    def expected_flops(self, size: tuple[int, int], probs: Sequence[Tensor] | None = None
                       ) -> Tensor:
        """Expected conv MACs per sample: ``Σ_l E[c_in,l]·E[c_out,l]·9·H_l·W_l`` with the
        widths' probabilities (softmax of ``alpha`` unless ``probs`` are given; a fixed width
        counts deterministically). Input and output widths of a layer are independent."""
        h, w = size
        e_in: Tensor = torch.tensor(float(self.in_channels))
        total = torch.tensor(0.0)
        for i, layer in enumerate(self.layers):
            h, w = math.ceil(h / layer.stride), math.ceil(w / layer.stride)
            cands = torch.tensor(layer.candidates, dtype=torch.float32)
            if layer.fixed is not None:
                e_out = torch.tensor(float(layer.fixed))
            else:
                p = probs[i] if probs is not None else torch.softmax(layer.alpha, 0)
                e_out = p @ cands
            total = total + e_in * e_out * 9 * h * w
            e_in = e_out
        return total

    def fix_widths(self, widths: Sequence[int] | None = None) -> list[int]:
        """Fix every layer to ``widths`` (default: the argmax candidates); returns them."""
        chosen = []
        for i, layer in enumerate(self.layers):
            c = widths[i] if widths is not None else layer.candidates[int(layer.alpha.argmax())]
            if c not in layer.candidates:
                raise ConfigError(f"layer {i}: width {c} is not a candidate {layer.candidates}")
            layer.fixed = c
            chosen.append(c)
        return chosen


def flops_penalty(expected: Tensor, target: float) -> Tensor:
    """``max(0, log(FLOPs_expected / FLOPs_target))``."""
    return torch.clamp(torch.log(expected / target), min=0.0)


def nce_search(net: NCESupernet, batches: Iterable[tuple[Tensor, Tensor]], size: tuple[int, int],
               flops_target: float, *, epochs: int = 1, lr: float = 1e-2, lam: float = 2.0,
               tau: float = 1.0, expand_factor: float = 1.5, max_expansions: int = 2
               ) -> list[int]:
    """Search the widths of ``net`` under ``flops_target`` MACs per sample; returns them.

    After every epoch a layer whose largest candidate is the most probable is expanded (at most
    ``max_expansions`` times per layer).
    """
    batches = list(batches)
    expansions = [0] * len(net.layers)
    for _ in range(epochs):
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        net.train()
        for x, y in batches:
            opt.zero_grad()
            loss = F.cross_entropy(net(x, tau), y) + lam * flops_penalty(
                net.expected_flops(size), flops_target)
            loss.backward()
            opt.step()
        for i, layer in enumerate(net.layers):
            if int(layer.alpha.argmax()) == len(layer.candidates) - 1 and \
                    expansions[i] < max_expansions:
                new = layer.expand(expand_factor)
                expansions[i] += 1
                if i + 1 < len(net.layers):
                    net.layers[i + 1].grow_input(new)
                else:
                    _grow_fc(net, new)
    return [layer.candidates[int(layer.alpha.argmax())] for layer in net.layers]


def _grow_fc(net: NCESupernet, c_in: int) -> None:
    w = net.fc.parametrizations.weight.original.detach()
    fc = nn.Linear(c_in, w.shape[0]).to(w.device)
    with torch.no_grad():
        fc.weight.zero_()
        fc.weight[:, : w.shape[1]] = w
        fc.bias.copy_(net.fc.bias.detach())
    parametrize.register_parametrization(fc, "weight", WeightFakeQuant(2))
    net.fc = fc
