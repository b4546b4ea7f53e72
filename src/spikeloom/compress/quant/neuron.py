"""A spiking neuron on a fixed-point grid: integer membrane, threshold and leak.

:class:`QuantNeuron` wraps a neuron (LIF, IF, PLIF, LIAF) without changing it: ``quantize``
swaps it in, ``dequantize`` puts the original back. In units of the membrane step
``Δ = V_th / θ`` (``θ = 2^(mem_bits−1) / v_range``, the integer threshold) every step is::

    I[t] = clamp(round(x[t]·g / Δ))                 input current (g: PLIF's input scale)
    u    = clamp(v + I[t])                          integrate (mem_bits signed range)
    s    = u > θ   (u >= θ with fire_ge)            fire
    r    = u·(1 − s) + R·s   or   u − θ·s           hard / soft reset (R = round(v_reset/Δ))
    v    = round(k_m · r / 2^k_s)                   leak: k = k_m / 2^k_s (decay_bits)

``round`` is :func:`~spikeloom.compress.quant.fake.round_half_up` everywhere, as in the integer
executor; rounding has a straight-through gradient, the spike the neuron's surrogate. With
``mem_bits + decay_bits ≤ 24`` every intermediate is an exact integer in float32.

``exact = True`` (frozen twin of :mod:`spikeloom.compress.integer`): the input is the integer
accumulator of the synapse before it; the current is ``(acc·M + B + 2^(S−1)) >> S`` with the
per-channel multiplier ``M``, offset ``B`` and shift ``S`` of the integer program; an
analog-output (LIAF, ReLU) neuron then outputs its integer activation ``relu(u)`` (``relu(u − θ)``
in mode ``"tr"``) in membrane steps.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...errors import ConfigError
from ...neurons import BaseNeuron
from ...surrogate import spike
from .fake import round_half_up, ste_round

__all__ = ["QuantNeuron"]


class QuantNeuron(BaseNeuron):
    """Fixed-point version of ``neuron`` (see the module docstring).

    Args:
        neuron: the neuron to wrap (kept as ``self.inner``).
        mem_bits: membrane width, 4..16.
        decay_bits: fractional bits of the leak factor, 1..8.
        v_range: membrane range in multiples of ``V_th`` (the grid covers ``±v_range·V_th``);
            [RECON] default 4, a power of two.
    """

    def __init__(self, neuron: BaseNeuron, mem_bits: int = 16, decay_bits: int = 8,
                 v_range: int = 4) -> None:
        super().__init__()
        if not isinstance(neuron, BaseNeuron):
            raise ConfigError(f"QuantNeuron wraps a spikeloom neuron, got {type(neuron).__name__}")
        if not 4 <= mem_bits <= 16 or not 1 <= decay_bits <= 8:
            raise ConfigError(f"mem_bits must be in 4..16 and decay_bits in 1..8, got "
                              f"{mem_bits} and {decay_bits}")
        if not (v_range >= 1 and 2 ** (mem_bits - 1) // v_range >= 2):
            raise ConfigError(f"v_range {v_range} leaves no room for the threshold in "
                              f"{mem_bits} bits")
        if neuron.v_th <= 0 or not torch.isfinite(torch.tensor(neuron.v_th)):
            raise ConfigError(f"cannot quantize a neuron with threshold {neuron.v_th}")
        self.inner = neuron
        self.spec = neuron.spec
        self.emits_spikes = neuron.emits_spikes
        self.mem_bits, self.decay_bits, self.v_range = int(mem_bits), int(decay_bits), int(v_range)
        self.exact = False
        self.register_buffer("rq_mult", torch.ones(1, dtype=torch.float64), persistent=False)
        self.register_buffer("rq_bias", torch.zeros(1, dtype=torch.float64), persistent=False)
        self.rq_shift = 0
        self.rq_div = 1.0

    # ---- the grid -------------------------------------------------------------------------
    @property
    def theta(self) -> int:
        """Integer threshold ``θ``."""
        return 2 ** (self.mem_bits - 1) // self.v_range

    @property
    def delta(self) -> float:
        """Membrane step ``Δ = V_th / θ``."""
        return self.spec.v_th / self.theta

    @property
    def qrange(self) -> tuple[int, int]:
        return -(2 ** (self.mem_bits - 1)), 2 ** (self.mem_bits - 1) - 1

    @property
    def v_reset_int(self) -> int:
        return int(round_half_up(torch.tensor(self.spec.v_reset / self.delta)))

    def decay_int(self) -> Tensor:
        """``k_m`` (with STE), the leak is ``k_m / 2^decay_bits``."""
        k = self.inner.decay_factor()
        k = k if isinstance(k, Tensor) else torch.tensor(float(k))
        return ste_round(k * 2 ** self.decay_bits)

    def decay_factor(self) -> float | Tensor:
        return self.decay_int() / 2 ** self.decay_bits

    def input_scale(self) -> float | Tensor:
        return self.inner.input_scale()

    def output(self, s: Tensor, u: Tensor) -> Tensor:
        if self.exact and not self.emits_spikes:  # frozen twin: the integer LIAF activation
            a = round_half_up(u / self.delta)
            return torch.relu(a - self.theta if getattr(self.inner, "mode", "ntr") == "tr" else a)
        return self.inner.output(s, u)

    # ---- the recurrence -------------------------------------------------------------------
    def current(self, x: Tensor) -> Tensor:
        """Integer input current ``I`` (as floats) from the synapse output ``x``."""
        lo, hi = self.qrange
        if self.exact:
            acc = torch.round(x * self.rq_div)  # exact: x is the accumulator / rq_div
            shape = (-1,) + (1,) * (x.ndim - 3) if x.ndim > 2 else (-1,)
            m, b = self.rq_mult.reshape(shape), self.rq_bias.reshape(shape)
            cur = torch.floor((acc * m + b + 2.0 ** (self.rq_shift - 1)) / 2.0 ** self.rq_shift)
        else:
            g = self.input_scale()
            cur = ste_round(x * g / self.delta)
        return torch.clamp(cur, lo, hi)

    def _run(self, x: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        if x.ndim < 2:
            raise ValueError(f"QuantNeuron expects a sequence [T, B, ...], got {tuple(x.shape)}")
        cur = self.current(x)
        lo, hi = self.qrange
        th, d, km = self.theta, self.delta, self.decay_int().to(cur.dtype)
        soft, rst = self.spec.reset == "soft", self.v_reset_int
        v = torch.zeros_like(cur[0]) if state is None else round_half_up(state / d)
        spikes, pots = [], []
        for t in range(cur.shape[0]):
            u = torch.clamp(v + cur[t], lo, hi)
            s = spike((u - th) * d, self.spec.surrogate, self.spec.fire_ge)
            s_r = s.detach() if self.spec.detach_reset else s
            r = u - th * s_r if soft else u * (1 - s_r) + rst * s_r
            v = ste_round(km * r / 2 ** self.decay_bits)
            spikes.append(s)
            pots.append(u)
        s_all, u_all = torch.stack(spikes), torch.stack(pots) * d
        if self.probed:
            self.emit("spikes", s_all)
            self.emit("potential", u_all)
        return s_all, u_all, v * d

    def extra_repr(self) -> str:
        return (f"mem_bits={self.mem_bits}, decay_bits={self.decay_bits}, theta={self.theta}, "
                f"exact={self.exact}")
