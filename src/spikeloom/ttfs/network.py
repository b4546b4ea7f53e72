"""TTFS networks: input coding, consecutive time windows that grow in training, the trace.

:class:`TTFSNet` is a fully connected TTFS network (the "FC2" net of Stanojevic et al. is
``TTFSNet((784, 340, 10))``). Windows (spec C2 "Time windows"):

* the input window is ``[0, 1]``: a pixel ``x ∈ [0, 1]`` spikes at ``t = 1 − x`` (``x = 0``: no
  spike);
* hidden layer ``n`` owns ``[t_min^(n), t_max^(n)]`` with ``t_min^(n) = t_max^(n−1)`` and width
  ``B_n = (1 + ζ) · X_n``, ``ζ = 0.5``, ``X_n`` the largest activation expected in the layer
  (``x_max``; 1000 when training from scratch, as in the reference code; measured on data by
  :func:`~spikeloom.ttfs.relu_to_ttfs`);
* the readout is read at ``t_min^(L) = t_max^(L−1)``.

:meth:`TTFSNet.grow_windows` is the adaptive rule of the reference code, to call with the
step's :class:`TTFSTrace` after every optimiser step:
``B_n ← max(B_n, growth · (t_max^(n) − min_batch t^(n)))`` with ``growth = 10``, then the
windows are re-laid consecutively. Windows only grow.

A neuron whose closed-form time is earlier than its window opens (``t < t_min``) would have
had to fire before it received its inputs; :meth:`TTFSNet.trace` counts them per layer
(``early``). The closed form still gives the ReLU value, the physical SNN could not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..layers import MeanOverTime
from .layers import Slope, TTFSLinear

__all__ = ["TTFSNet", "TTFSTrace", "encode_ttfs"]


def encode_ttfs(x: Tensor) -> tuple[Tensor, Tensor]:
    """Input coding ``x ∈ [0, 1] → t = 1 − x`` in the window ``[0, 1]``: ``(spikes, times)``."""
    if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise ConfigError(
            f"TTFS input must lie in [0, 1] (got [{float(x.min()):g}, {float(x.max()):g}]); "
            "rescale it, or fold the range into the first layer with relu_to_ttfs(input_range=)"
        )
    return (x > 0).to(x.dtype), 1.0 - x


@dataclass
class TTFSTrace:
    """What one forward pass did, per hidden layer (lists are ordered input → output).

    Attributes:
        logits: ``[B, K]`` readout.
        times: spike times ``[B, n_l]`` of every hidden layer (``t_max`` = no spike).
        spikes: ``[B, n_l]`` 0/1 of every hidden layer.
        early: number of neurons (over the batch) that would fire before their window opens.
        input_spikes: number of input spikes (pixels > 0) over the batch.
    """

    logits: Tensor
    times: list[Tensor]
    spikes: list[Tensor]
    early: list[int]
    input_spikes: int

    def spikes_per_neuron(self) -> float:
        """Mean spikes per hidden neuron per sample (each neuron spikes at most once)."""
        n = sum(s.numel() for s in self.spikes)
        return float(sum(float(s.sum()) for s in self.spikes) / max(n, 1))


class TTFSNet(nn.Module):
    """Fully connected TTFS network in closed form (see the module docstring).

    Args:
        sizes: widths ``(inputs, hidden..., classes)``.
        x_max: expected largest activation ``X_n`` per hidden layer (one value or one per
            layer); the window width is ``(1 + zeta) · X_n``.
        zeta: headroom of the window width.
        growth: factor of :meth:`grow_windows`.
        slope: ``"identity"`` (default) or ``"free"`` (see :class:`TTFSLinear`).

    ``forward(x)`` takes values in ``[0, 1]`` as ``[B, F]``/``[B, C, H, W]`` or time-major
    ``[T, B, F]``/``[T, B, C, H, W]`` (a static image is coded once as spike times: the first
    frame is used) and returns logits.
    """

    def __init__(
        self,
        sizes: Sequence[int] = (784, 340, 10),
        *,
        x_max: float | Sequence[float] = 1000.0,
        zeta: float = 0.5,
        growth: float = 10.0,
        slope: Slope = "identity",
    ) -> None:
        super().__init__()
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ConfigError(f"TTFSNet: sizes must be >= 2 positive widths, got {sizes}")
        n_hidden = len(sizes) - 2
        xs = [float(x_max)] * n_hidden if isinstance(x_max, (int, float)) else list(x_max)
        if len(xs) != n_hidden or any(v <= 0 for v in xs):
            raise ConfigError(
                f"TTFSNet: x_max must be one positive value or {n_hidden} (one per hidden layer),"
                f" got {x_max}"
            )
        self.sizes, self.zeta, self.growth = sizes, float(zeta), float(growth)
        self.layers = nn.ModuleList(
            TTFSLinear(a, b, readout=(i == len(sizes) - 2), slope=slope)
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=False))
        )
        self.readout = MeanOverTime()  # logits = the one "step" of the membrane readout
        self.lay_windows([(1.0 + self.zeta) * v for v in xs])

    @property
    def widths(self) -> list[float]:
        """Window widths ``B_n`` of the hidden layers."""
        return [float(m.t_max - m.t_min) for m in self.layers[:-1]]

    @torch.no_grad()
    def lay_windows(self, widths: Sequence[float]) -> None:
        """Lay consecutive windows: input ``[0, 1]``, then one of each width, then the readout."""
        t = 1.0
        for m, w in zip(self.layers[:-1], widths, strict=True):
            m.t_min.fill_(t)
            m.t_max.fill_(t + float(w))
            t += float(w)
        self.layers[-1].t_min.fill_(t)
        self.layers[-1].t_max.fill_(t)

    @torch.no_grad()
    def grow_windows(self, trace: TTFSTrace) -> list[float]:
        """Adaptive windows after an optimiser step: ``B_n ← max(B_n, growth·max x)``."""
        widths = [
            max(w, self.growth * float((m.t_max - t).max())) if t.numel() else w
            for w, m, t in zip(self.widths, self.layers[:-1], trace.times, strict=True)
        ]
        self.lay_windows(widths)
        return widths

    @staticmethod
    def _flat_input(x: Tensor) -> Tensor:
        """``[B, F]``/``[B, C, H, W]``, or time-major ``[T, B, F]``/``[T, B, C, H, W]`` (frame 0)
        as ``[B, F]``."""
        if x.ndim in (3, 5):
            x = x[0]
        return x.reshape(x.shape[0], -1)

    def trace(self, x: Tensor) -> TTFSTrace:
        """Forward pass returning the logits, every hidden layer's spike times and counts."""
        x = self._flat_input(x).to(self.layers[0].weight.dtype)
        spikes, times = encode_ttfs(x)
        input_spikes = int(spikes.sum())
        all_t, all_s, early = [], [], []
        for m in self.layers[:-1]:
            spikes, times = m(spikes, times)
            all_t.append(times)
            all_s.append(spikes)
            early.append(int((times < m.t_min.to(times.dtype)).sum()))
        logits = self.layers[-1](spikes, times)
        return TTFSTrace(logits, all_t, all_s, early, input_spikes)

    def forward(self, x: Tensor, per_step: bool = False) -> Tensor:
        """Logits ``[B, K]`` (``per_step=True``: ``[1, B, K]``, one "step")."""
        out = self.trace(x).logits[None]  # [1, B, K]: a TTFS pass is one "step"
        return out if per_step else self.readout(out)

    def relu_twin(self) -> nn.Sequential:
        """The ReLU MLP with this network's effective weights (``Linear``/``ReLU`` pairs)."""
        mods: list[nn.Module] = [nn.Flatten()]
        for m in self.layers:
            lin = nn.Linear(m.in_features, m.out_features, dtype=m.weight.dtype)
            with torch.no_grad():
                lin.weight.copy_(m.effective_weight())
                lin.bias.copy_(m.bias)
            mods += [lin] if m.readout else [lin, nn.ReLU()]
        return nn.Sequential(*mods)
