"""Modules that run an imported NIR graph on time-major sequences ``[T, B, ...]``.

* :class:`ElementwiseAffine` — ``y = scale·x + shift`` per neuron (NIR ``Scale``, and the
  ``(dt/τ)·(R·I + v_leak)`` input current of a discretised NIR neuron);
* :class:`NIRLIF` — a LIF with per-neuron decay ``k`` (NIR neurons with unequal ``τ``);
* :class:`LeakyIntegrator` — non-spiking ``v[t] = k·v[t-1] + x[t]``, output ``v`` (NIR ``LI``,
  ``I`` and the synaptic current of ``CubaLIF``), run by the fused neuron op with an infinite
  threshold;
* :class:`NIRNetwork` — runs the nodes in topological order; a node's input is the sum of its
  predecessors' outputs (NIR's rule).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..neurons import BaseNeuron

__all__ = ["ElementwiseAffine", "NIRLIF", "LeakyIntegrator", "NIRNetwork"]


class ElementwiseAffine(nn.Module):
    """``y[t] = scale·x[t] + shift`` with per-neuron ``scale`` and ``shift`` (shape of one
    sample, or scalars), on ``[T, B, ...]``."""

    def __init__(self, scale: Tensor, shift: Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        self.register_buffer("shift", torch.as_tensor(shift, dtype=torch.float32))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale + self.shift


class NIRLIF(BaseNeuron):
    """LIF with a per-neuron decay buffer ``decay`` (shape of one sample); otherwise as
    :class:`~spikeloom.neurons.LIF` (``u[t] = k·r[t-1] + x[t]``, hard reset)."""

    def __init__(self, decay: Tensor, v_th: float, v_reset: float = 0.0) -> None:
        super().__init__(v_th=v_th, v_reset=v_reset)
        self.register_buffer("decay", torch.as_tensor(decay, dtype=torch.float32))

    def decay_factor(self) -> Tensor:
        return self.decay


class LeakyIntegrator(BaseNeuron):
    """Non-spiking leaky integrator ``v[t] = k·v[t-1] + x[t]`` (output ``v[t]``; ``k = 1``:
    plain integrator). ``decay`` is a float or a per-neuron tensor."""

    emits_spikes = False

    def __init__(self, decay: float | Tensor) -> None:
        super().__init__(v_th=math.inf)
        if isinstance(decay, Tensor):
            self.register_buffer("decay", decay.to(torch.float32))
        else:
            self.decay = float(decay)

    def decay_factor(self) -> float | Tensor:
        return self.decay

    def output(self, s: Tensor, u: Tensor) -> Tensor:
        return u


class NIRNetwork(nn.Module):
    """A feed-forward NIR graph as a module: ``forward(x [T, B, *input]) -> [T, B, *output]``.

    ``layers`` holds one module per NIR node (keys are the node names with ``.`` replaced by
    ``__``), registered in execution order so that the layer walk lists them in order;
    ``inputs[key]`` names the nodes summed into it (``"input"`` is the graph input).

    Attributes:
        dt: the time step the graph was discretised with (seconds).
    """

    def __init__(self, layers: dict[str, nn.Module], inputs: dict[str, list[str]],
                 output: list[str], dt: float) -> None:
        super().__init__()
        self.layers = nn.ModuleDict(layers)
        self.inputs = {k: list(v) for k, v in inputs.items()}
        self.output = list(output)
        self.dt = float(dt)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2:
            raise ValueError(f"NIRNetwork expects [T, B, ...], got shape {tuple(x.shape)}")
        vals: dict[str, Tensor] = {"input": x}

        def summed(keys: list[str]) -> Tensor:
            out = vals[keys[0]]
            for k in keys[1:]:
                out = out + vals[k]
            return out

        for key, layer in self.layers.items():
            vals[key] = layer(summed(self.inputs[key]))
        return summed(self.output)


