"""The TTFS dense layer: closed-form spike times of non-leaky IF neurons with linear PSPs.

Stanojevic et al., "High-performance deep spiking neural networks with 0.3 spikes per neuron"
(Nat. Commun. 15, 6793, 2024; arXiv:2306.08744). Every neuron fires at most once; a value is
coded by how early the spike comes in the layer's window ``[t_min, t_max]``:
``x = t_max − t`` and "no spike" is ``t = t_max`` (``x = 0``).

Layer ``n`` receives the spikes of layer ``n−1`` in the window ``[t_min^(n−1), t_max^(n−1)]``
with ``t_max^(n−1) = t_min^(n)`` (consecutive windows), so the input value of neuron ``j`` is
``x_j = t_min^(n) − t_j``. With the **identity-mapping** parameterisation (membrane slope
``B_i = α_i + Σ_j W_ij ≡ 1`` at threshold for the whole training: ``α_i = 1 − Σ_j W_ij`` is
re-derived from the weights, never trained) the spike time is, in closed form,

    t_i = t_max^(n) − D_i − Σ_j W_ij (t_min^(n) − t_j),   clipped to t_i ≤ t_max^(n)

so ``t_max^(n) − t_i = ReLU(D_i + Σ_j W_ij x_j)``: the layer *is* a ReLU layer in time, and
autodiff through the closed form gives the exact spike-time gradient, equal to the ReLU one.
The threshold is ``ϑ_i = t_max^(n) − t_min^(n) − D_i + α_i (t_min^(n) − t_min^(n−1))``
(:meth:`TTFSLinear.threshold`); the physical neuron crosses it at ``t_i`` (checked against an
Euler simulation of ``dV/dt = α_i H(t − t_min^(n−1)) + Σ_j W_ij H(t − t_j)`` in the tests).

``slope="free"`` is the parameterisation the paper warns against, kept for comparison and as
a regression test: the trained parameters are ``(W, D)`` with the slope term ``α`` fixed at its
initial value ``1 − Σ_j W_ij(0)`` (the "B = 1 at initialisation only" remedy, [RECALL] in the
spec), so ``B_i = α_i + Σ_j W_ij`` moves with the weights and the effective ReLU weight is
``W / B``: the forward equals the ReLU net at initialisation, the gradients do not.

The readout layer (``readout=True``) does not spike: it returns the membrane potential at
``t_min`` of its window, ``D_k + Σ_j W_kj (t_min − t_j)``, i.e. the ReLU net's logits.

Interface (event-driven, so the cost report counts input spikes as accumulates): a hidden layer
is called as ``layer(spikes, times)`` with ``spikes`` the 0/1 mask of input neurons that fired
(no gradient) and ``times`` their spike times (``t_min`` where they did not fire); it returns
``(spikes, times)`` of its own neurons. The readout returns the logits tensor.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..cost.counters import counter_of, register_counter
from ..errors import ConfigError
from ..walk import register_role

__all__ = ["TTFSLinear", "Slope"]

Slope = Literal["identity", "free"]


class TTFSLinear(nn.Module):
    """A layer of TTFS neurons (or the membrane readout) in closed form (module docstring).

    Args:
        in_features, out_features: widths.
        readout: membrane readout at ``t_min`` instead of spiking neurons (last layer).
        slope: ``"identity"`` (default, ``B ≡ 1``) or ``"free"`` (``α`` frozen at init).
        t_min, t_max: the layer's window (the network lays the windows, see
            :class:`~spikeloom.ttfs.TTFSNet`); stored as float64 buffers.

    Attributes:
        weight: ``[out, in]`` (``nn.Linear`` layout) — ``W``.
        bias: ``[out]`` — ``D`` (plays the ReLU bias).
        alpha0: ``[out]`` buffer, ``α`` of ``slope="free"`` (zeros otherwise).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        readout: bool = False,
        slope: Slope = "identity",
        t_min: float = 1.0,
        t_max: float = 2.0,
    ) -> None:
        super().__init__()
        if slope not in ("identity", "free"):
            raise ConfigError(f"TTFSLinear: slope must be 'identity' or 'free', got {slope!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.readout, self.slope = bool(readout), slope
        self.weight = nn.Parameter(torch.empty(self.out_features, self.in_features))
        self.bias = nn.Parameter(torch.empty(self.out_features))
        self.register_buffer("alpha0", torch.zeros(self.out_features))
        self.register_buffer("t_min", torch.tensor(float(t_min), dtype=torch.float64))
        self.register_buffer("t_max", torch.tensor(float(t_max), dtype=torch.float64))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.Linear``'s default initialisation; ``α`` of the free slope makes ``B = 1``."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0
        nn.init.uniform_(self.bias, -bound, bound)
        self.reset_slope()

    @torch.no_grad()
    def reset_slope(self) -> None:
        """``slope="free"``: set ``α = 1 − Σ_j W_ij`` from the current weights (B = 1 now)."""
        if self.slope == "free":
            self.alpha0.copy_(1.0 - self.weight.sum(1))

    def slope_at_threshold(self) -> Tensor:
        """``B_i = α_i + Σ_j W_ij`` (identically 1 for the identity mapping)."""
        if self.slope == "identity":
            return torch.ones_like(self.bias)
        return self.alpha0 + self.weight.sum(1)

    def effective_weight(self) -> Tensor:
        """The ReLU-equivalent weight ``W / B`` (``W`` itself for the identity mapping)."""
        if self.slope == "identity":
            return self.weight
        return self.weight / self.slope_at_threshold()[:, None]

    def threshold(self, t_min_prev: float) -> Tensor:
        """The physical threshold ``ϑ_i`` of the general IF model (identity mapping only)."""
        if self.slope != "identity":
            raise ConfigError("TTFSLinear.threshold: only defined here for slope='identity'")
        alpha = 1.0 - self.weight.sum(1)
        width = (self.t_max - self.t_min).to(self.bias.dtype)
        return width - self.bias + alpha * (self.t_min.to(self.bias.dtype) - t_min_prev)

    def potential(self, times: Tensor) -> Tensor:
        """``D + Σ_j w_ij (t_min − t_j)``: the ReLU pre-activation read from the input times."""
        x = self.t_min.to(times.dtype) - times
        return F.linear(x, self.effective_weight(), self.bias)

    def forward(self, spikes: Tensor, times: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        """``(spikes, times)`` of this layer, or the logits for the readout (see module doc)."""
        if times.shape[-1] != self.in_features:
            raise ConfigError(
                f"TTFSLinear: input has {times.shape[-1]} features, layer expects "
                f"{self.in_features}"
            )
        v = self.potential(times)
        if self.readout:
            return v
        t_max = self.t_max.to(v.dtype)
        out_times = t_max - F.relu(v)  # clipped at t_max: "no spike", zero gradient like ReLU
        return (v > 0).to(v.dtype), out_times

    def extra_repr(self) -> str:
        kind = "readout" if self.readout else "spiking"
        return (
            f"{self.in_features}, {self.out_features}, {kind}, slope={self.slope}, "
            f"window=[{float(self.t_min):g}, {float(self.t_max):g}]"
        )


# same counts as nn.Linear: each input spike adds its weight to the slope of every
# postsynaptic neuron once (an accumulate per synapse); dense MACs in × out per sample
register_role(TTFSLinear, "synapse")
register_counter(TTFSLinear, counter_of(nn.Linear(1, 1)))
