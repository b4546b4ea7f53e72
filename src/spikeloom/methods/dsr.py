"""DSR: differentiation on spike representation (Meng et al., CVPR 2022, arXiv:2205.00459).

The forward pass runs true spiking dynamics (IF or LIF with subtractive reset); the backward
pass treats every spiking layer as a differentiable map from its (weighted) average input to
its (weighted) average output, which for these neurons is a clamp::

    IF :  r = (1/T) Σ_t s[t]          ≈ clamp(x̄, 0, V_th),        x̄ = (1/T) Σ_t x[t]
    LIF:  õ = Σ_t w_t o[t] / Σ w      ≈ clamp(x̃ / τ, 0, V_th/Δt),  x̃ = Σ_t w_t x[t] / Σ w

No surrogate spike derivative, no backpropagation through time of the membrane: the input
gradient is the same at every step. Thresholds are trainable through the same map and kept
above a bound (:func:`clamp_thresholds`, run after every optimiser step by ``--method dsr``).

* :class:`DSRIF`, :class:`DSRLIF`: the neurons (registered in :data:`spikeloom.neurons.NEURONS`
  as ``"dsr_if"`` and ``"dsr_lif"``; role ``"neuron"``; their ``"spikes"`` probe is binary).
* :class:`WeightedRate`: the readout (weighted rate for LIF, mean for IF).
* ``--method dsr``: swaps every LIF/IF layer of any model for its DSR twin.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..neurons import IF, LIAF, LIF, NEURONS, PLIF
from ..probes import Probed
from ..train.callbacks import Callback, StepContext
from ..walk import register_role
from .registry import TrainingMethod, register_method

__all__ = ["DSRIF", "DSRLIF", "WeightedRate", "lif_time_weights", "dsr_if_forward",
           "dsr_lif_forward", "clamp_thresholds", "swap_to_dsr", "ClampThresholds"]


# --------------------------------------------------------------------------------------------
# Forward dynamics (loop over time only; everything else is vectorised)
# --------------------------------------------------------------------------------------------


def dsr_if_forward(x: Tensor, v_th: Tensor | float, alpha: float) -> tuple[Tensor, Tensor]:
    """IF with soft reset: ``m += x[t]; s[t] = V_th·1[m >= α·V_th]; m -= s[t]``.

    Returns:
        spikes ``[T, ...]`` (amplitude ``V_th``) and the membrane after reset ``[T, ...]``.
    """
    m = torch.zeros_like(x[0])
    s_all, m_all = [], []
    for t in range(x.shape[0]):
        m = m + x[t]
        s = (m >= alpha * v_th).to(x.dtype) * v_th
        m = m - s
        s_all.append(s)
        m_all.append(m)
    return torch.stack(s_all), torch.stack(m_all)


def dsr_lif_forward(x: Tensor, v_th: Tensor | float, alpha: float, tau: float,
                    dt: float) -> tuple[Tensor, Tensor]:
    """LIF with soft reset: ``m = β·m + (1-β)·x[t]`` (``β = exp(-Δt/τ)``), spike
    ``V_th·1[m >= α·V_th]``, ``m -= s``; the output is ``o[t] = s[t]/Δt``.

    Returns:
        outputs ``o`` ``[T, ...]`` and the membrane after reset ``[T, ...]``.
    """
    beta = math.exp(-dt / tau)
    m = torch.zeros_like(x[0])
    o_all, m_all = [], []
    for t in range(x.shape[0]):
        m = beta * m + (1.0 - beta) * x[t]
        s = (m >= alpha * v_th).to(x.dtype) * v_th
        m = m - s
        o_all.append(s / dt)
        m_all.append(m)
    return torch.stack(o_all), torch.stack(m_all)


def lif_time_weights(T: int, tau: float, dt: float, dtype: torch.dtype = torch.float32,
                     device: torch.device | str | None = None) -> Tensor:
    """Normalised weights ``w_i = exp(-(T - i)·Δt/τ) / Σ w`` for ``i = 1..T`` (later steps
    weigh more), ``[T]``."""
    i = torch.arange(1, T + 1, dtype=dtype, device=device)
    w = torch.exp(-(T - i) * dt / tau)
    return w / w.sum()


class _IFFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, v_th: Tensor, alpha: float) -> Tensor:
        s, _ = dsr_if_forward(x, v_th, alpha)
        ctx.save_for_backward(x.mean(0), v_th)
        return s

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, Tensor, None]:
        xbar, v_th = ctx.saved_tensors
        T = g.shape[0]
        g_sum = g.sum(0)
        inside = (xbar >= 0) & (xbar <= v_th)
        gx = (g_sum * inside.to(g.dtype) / T).unsqueeze(0).expand_as(g)
        gv = (g_sum * (xbar > v_th).to(g.dtype)).sum().reshape(v_th.shape)
        return gx, gv, None


class _LIFFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, v_th: Tensor, alpha: float, tau: float, dt: float,
                vth_factor: float) -> Tensor:
        o, _ = dsr_lif_forward(x, v_th, alpha, tau, dt)
        w = lif_time_weights(x.shape[0], tau, dt, x.dtype, x.device)
        xw = torch.tensordot(w, x, dims=([0], [0]))
        ctx.save_for_backward(xw, v_th, w)
        ctx.tau, ctx.dt, ctx.vth_factor = tau, dt, vth_factor
        return o

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        xw, v_th, w = ctx.saved_tensors
        T = g.shape[0]
        G = T * torch.tensordot(w, g, dims=([0], [0]))  # w is normalised: T·Σ w g / Σ w
        top = v_th * ctx.tau / ctx.dt
        inside = (xw > 0) & (xw < top)
        gx = (G / ctx.tau / T * inside.to(g.dtype)).unsqueeze(0).expand_as(g)
        gv = (ctx.vth_factor * G * (xw > top).to(g.dtype)).sum().reshape(v_th.shape)
        return gx, gv, None, None, None, None


# --------------------------------------------------------------------------------------------
# Neuron modules
# --------------------------------------------------------------------------------------------


class _DSRNeuron(Probed, nn.Module):
    """Common part: the trainable threshold and its bound."""

    #: outputs are spikes of one amplitude per layer (synapses downstream accumulate)
    emits_spikes: bool = True

    def __init__(self, v_th: float, alpha: float, vth_bound: float, learn_threshold: bool
                 ) -> None:
        super().__init__()
        if v_th <= 0 or vth_bound <= 0:
            raise ValueError(f"{type(self).__name__}: v_th ({v_th}) and vth_bound ({vth_bound}) "
                             "must be > 0")
        self.alpha, self.vth_bound = float(alpha), float(vth_bound)
        self.v_th = nn.Parameter(torch.tensor(float(max(v_th, vth_bound))),
                                 requires_grad=learn_threshold)
        self._init_probes()

    def clamp_threshold(self) -> None:
        """``V_th ← max(V_th, vth_bound)`` (in place, outside autograd)."""
        with torch.no_grad():
            self.v_th.clamp_(min=self.vth_bound)

    def threshold(self) -> Tensor:
        """The threshold used in this forward pass, ``max(V_th, vth_bound)`` (the bound holds
        even when no :class:`ClampThresholds` callback runs)."""
        return self.v_th.clamp(min=self.vth_bound)

    def _check(self, x: Tensor) -> None:
        if x.ndim < 2:
            raise ValueError(f"{type(self).__name__} expects a sequence [T, B, ...], got shape "
                             f"{tuple(x.shape)}")

    def _emit(self, out: Tensor) -> None:
        if self.probed:
            self.emit("spikes", (out > 0).to(out.dtype))


class DSRIF(_DSRNeuron):
    """IF neuron trained by DSR (spike amplitude ``V_th``, soft reset by ``V_th``).

    Forward: ``m += x[t]; s[t] = V_th·1[m >= α·V_th]; m -= s[t]`` (``>=`` as in the DSR code).
    Backward: ``∂L/∂x[t] = (1/T)·Σ_t' g[t']·1[0 <= x̄ <= V_th]`` at every step and
    ``∂L/∂V_th = Σ_neurons Σ_t g[t]·1[x̄ > V_th]``.

    Args:
        v_th: initial threshold (DSR's IF default 6.0); a trainable scalar per layer.
        alpha: firing point ``α·V_th`` (0.5: the rate rounds instead of floors).
        vth_bound: lower bound of the threshold (0.01).
        learn_threshold: train the threshold.

    Shapes: ``[T, B, ...] -> [T, B, ...]``.
    """

    def __init__(self, v_th: float = 6.0, alpha: float = 0.5, vth_bound: float = 0.01,
                 learn_threshold: bool = True) -> None:
        super().__init__(v_th, alpha, vth_bound, learn_threshold)

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        out = _IFFn.apply(x, self.threshold().to(x.dtype), self.alpha)
        self._emit(out)
        return out

    def extra_repr(self) -> str:
        return f"v_th={float(self.v_th):.4g}, alpha={self.alpha}, vth_bound={self.vth_bound}"


class DSRLIF(_DSRNeuron):
    """LIF neuron trained by DSR (weighted spike representation).

    Forward: ``m = β·m + (1-β)·x[t]`` with ``β = exp(-Δt/τ)``; ``s = V_th·1[m >= α·V_th]``;
    ``m -= s``; output ``o[t] = s[t]/Δt``. Backward with the weights
    ``w_i = exp(-(T - i)Δt/τ)/Σw`` and ``G = T·Σ_i w_i g[i]``:
    ``∂L/∂x[t] = (G/τ)/T·1[0 < x̃ < V_th·τ/Δt]`` at every step and
    ``∂L/∂V_th = c·Σ_neurons G·1[x̃ > V_th·τ/Δt]``.

    Args:
        v_th: initial threshold (DSR default 0.3); trainable scalar per layer.
        alpha: firing point ``α·V_th`` (0.3).
        tau, dt: time constant and step (1.0, 0.05).
        vth_bound: lower bound of the threshold (5e-4).
        learn_threshold: train the threshold.
        vth_grad: the factor ``c`` of the threshold gradient in saturation: ``"code"``
            (default, ``c = Δt``, what the reference code does — a strong damping) or
            ``"exact"`` (``c = 1/Δt``, the derivative of ``V_th/Δt``). The spec marks the code's
            choice as a quirk; we keep it by default for reproducibility.

    Shapes: ``[T, B, ...] -> [T, B, ...]``.
    """

    def __init__(self, v_th: float = 0.3, alpha: float = 0.3, tau: float = 1.0,
                 dt: float = 0.05, vth_bound: float = 5e-4, learn_threshold: bool = True,
                 vth_grad: str = "code") -> None:
        super().__init__(v_th, alpha, vth_bound, learn_threshold)
        if tau <= 0 or dt <= 0:
            raise ValueError(f"DSRLIF: tau ({tau}) and dt ({dt}) must be > 0")
        if vth_grad not in ("code", "exact"):
            raise ValueError(f"DSRLIF: vth_grad must be 'code' or 'exact', got {vth_grad!r}")
        self.tau, self.dt, self.vth_grad = float(tau), float(dt), vth_grad

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        c = self.dt if self.vth_grad == "code" else 1.0 / self.dt
        out = _LIFFn.apply(x, self.threshold().to(x.dtype), self.alpha, self.tau, self.dt, c)
        self._emit(out)
        return out

    def extra_repr(self) -> str:
        return (f"v_th={float(self.v_th):.4g}, alpha={self.alpha}, tau={self.tau}, "
                f"dt={self.dt}, vth_bound={self.vth_bound}, vth_grad={self.vth_grad!r}")


class WeightedRate(nn.Module):
    """DSR readout ``[T, B, K] -> [B, K]``: the weighted rate ``Σ_t w_t o[t]`` with the LIF
    weights of :func:`lif_time_weights` (``tau``, ``dt`` given), or the plain mean (IF)."""

    def __init__(self, tau: float | None = None, dt: float | None = None) -> None:
        super().__init__()
        self.tau, self.dt = tau, dt

    def forward(self, x: Tensor) -> Tensor:
        if self.tau is None or self.dt is None:
            return x.mean(0)
        w = lif_time_weights(x.shape[0], self.tau, self.dt, x.dtype, x.device)
        return torch.tensordot(w, x, dims=([0], [0]))


register_role(_DSRNeuron, "neuron")
register_role(WeightedRate, "readout")
NEURONS.register("dsr_if", DSRIF)
NEURONS.register("dsr_lif", DSRLIF)


# --------------------------------------------------------------------------------------------
# The method: swap neurons, clamp thresholds
# --------------------------------------------------------------------------------------------


def clamp_thresholds(model: nn.Module) -> None:
    """Keep every DSR threshold of ``model`` at or above its bound."""
    for m in model.modules():
        if isinstance(m, _DSRNeuron):
            m.clamp_threshold()


class ClampThresholds(Callback):
    """After every optimiser step: :func:`clamp_thresholds` (DSR's ``V_th ≥ bound``)."""

    def after_step(self, ctx: StepContext) -> None:
        clamp_thresholds(ctx.model)


_LIF_KEYS = ("v_th", "alpha", "tau", "dt", "vth_bound", "learn_threshold", "vth_grad")
_IF_KEYS = ("v_th", "alpha", "vth_bound", "learn_threshold")


def _dsr_for(old: nn.Module, name: str, opts: dict[str, Any]) -> nn.Module:
    kind = opts["neuron"]
    if isinstance(old, LIAF) or isinstance(old, PLIF) or not isinstance(old, LIF):
        raise ConfigError(
            f"--method dsr: layer {name!r} is a {type(old).__name__}; DSR replaces LIF and IF "
            "neurons only (LIAF sends analog values; use model_kwargs neuron: lif)")
    if kind == "auto":
        kind = "if" if isinstance(old, IF) else "lif"
    if kind == "if":
        return DSRIF(**{k: opts[k] for k in _IF_KEYS if opts.get(k) is not None})
    return DSRLIF(**{k: opts[k] for k in _LIF_KEYS if opts.get(k) is not None})


def swap_to_dsr(model: nn.Module, options: dict[str, Any] | None = None) -> nn.Module:
    """Replace every LIF/IF layer of ``model`` by its DSR twin (in place; returns ``model``).

    Options (``method_kwargs``): ``neuron`` (``"auto"``: IF -> DSR-IF, LIF -> DSR-LIF; or
    ``"lif"``/``"if"`` for all), and the DSR neuron parameters (``v_th``, ``alpha``, ``tau``,
    ``dt``, ``vth_bound``, ``learn_threshold``, ``vth_grad``; ``None`` = that neuron's DSR
    default). Layers that already are DSR neurons are kept.

    Raises:
        ConfigError: a LIAF/PLIF/unknown neuron layer (naming it), or no neuron at all.
    """
    opts = {**DSR_OPTIONS, **(options or {})}
    if opts["neuron"] not in ("auto", "lif", "if"):
        raise ConfigError(f"--method dsr: option neuron must be auto, lif or if, got "
                          f"{opts['neuron']!r}")
    from ..walk import role_of

    targets = [(n, m) for n, m in model.named_modules() if role_of(m) == "neuron"]
    if not targets:
        raise ConfigError(f"--method dsr: {type(model).__name__} has no neuron layers to train")
    for name, old in targets:
        if isinstance(old, _DSRNeuron):
            continue
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        new = _dsr_for(old, name, opts)
        if attr.isdigit():
            parent[int(attr)] = new
        else:
            setattr(parent, attr, new)
    return model


DSR_OPTIONS: dict[str, Any] = {"neuron": "auto", **{k: None for k in _LIF_KEYS}}

register_method(TrainingMethod(
    "dsr", "differentiation on spike representation: LIF/IF neurons with the rate-map "
           "backward (no surrogate, no BPTT), trainable bounded thresholds",
    prepare=lambda model, opts: swap_to_dsr(model, opts),
    make_callbacks=lambda opts: [ClampThresholds()],
    options=DSR_OPTIONS))
