"""Spiking neuron modules: LIF, IF, PLIF and LIAF over whole sequences ``[T, B, ...]``.

Every neuron runs the recurrence of :mod:`spikeloom.functional` (charge, fire, reset, leak)
over all time steps of its input in one fused autograd function. A call always starts from
rest, so no state leaks between two batches. For streaming (feeding a long recording in
chunks) pass the state explicitly::

    lif = LIF()
    out, state = lif(chunk1, return_state=True)
    out2, state = lif(chunk2, state=state, return_state=True)

The state is the post-reset, post-leak membrane potential ``[B, ...]``.

A forward pass writes nothing onto the module. Neurons are probe points
(:class:`spikeloom.probes.Probed`): while a monitor (:mod:`spikeloom.monitor`) is active they
emit ``"spikes"`` (for LIAF, the internal spikes that reset the membrane) and ``"potential"``
(pre-reset membrane potential), both ``[T, B, ...]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import NonFiniteError
from .ops.neuron_sequence import NeuronSpec, neuron_sequence
from .probes import Probed
from .registry import Registry
from .surrogate import Surrogate
from .walk import register_role

__all__ = ["BaseNeuron", "LIF", "IF", "PLIF", "LIAF", "ACTIVATIONS", "NEURONS", "NeuronSpec"]


def _leaky_relu_02(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2)


def _identity(x: Tensor) -> Tensor:
    return x


#: Analog activations available to LIAF by name.
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "selu": F.selu,
    "leaky_relu": _leaky_relu_02,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "identity": _identity,
}


class _SpecField:
    """A neuron attribute that reads and replaces one field of ``neuron.spec``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: BaseNeuron | None, owner: type | None = None):
        return self if obj is None else getattr(obj.spec, self.name)

    def __set__(self, obj: BaseNeuron, value) -> None:
        obj.spec = obj.spec.replace(**{self.name: value})


class BaseNeuron(Probed, nn.Module):
    """Common parameters and bookkeeping of all neurons.

    The firing and reset rule is one frozen :class:`~spikeloom.ops.neuron_sequence.NeuronSpec`
    (``neuron.spec``); ``v_th``, ``v_reset``, ``reset``, ``detach_reset``, ``surrogate`` and
    ``fire_ge`` read (and, when assigned, replace) its fields.

    Args:
        params: the fields of :class:`~spikeloom.ops.neuron_sequence.NeuronSpec` as keywords
            (``v_th``, ``v_reset``, ``reset``, ``detach_reset``, ``surrogate``, ``width``,
            ``fire_ge``); missing ones take the spec's defaults (``V_th = 0.5``, hard reset to
            0, rectangular surrogate of width 1, strict ``>``, reset not detached).
    """

    #: True when the output is binary spikes (cost model counts accumulates downstream).
    emits_spikes: bool = True
    #: raise :class:`~spikeloom.errors.NonFiniteError` when the input holds NaN or inf (which
    #: would otherwise silently give no spikes). Checked on the final membrane state (NaN/inf
    #: input at any step leaves it non-finite): one pass over ``[B, ...]`` per call. Set it to
    #: False on an instance to skip the check.
    check_finite: bool = True

    v_th = _SpecField()
    v_reset = _SpecField()
    reset = _SpecField()
    detach_reset = _SpecField()
    surrogate = _SpecField()
    fire_ge = _SpecField()

    def __init__(self, **params: Any) -> None:
        super().__init__()
        try:
            self.spec = NeuronSpec.make(**params)
        except TypeError as e:
            raise TypeError(f"{type(self).__name__}: {e} (neuron parameters are the fields of "
                            "NeuronSpec, plus width for a named surrogate)") from None
        self._init_probes()

    def decay_factor(self) -> float | Tensor:
        """The leak factor ``k`` used in this forward pass."""
        raise NotImplementedError

    def input_scale(self) -> float | Tensor:
        """Factor applied to the input current before charging (PLIF uses ``1 - k``)."""
        return 1.0

    def _needs_potential(self) -> bool:
        """Whether this forward needs the pre-reset potentials ``u``: for an :meth:`output` that
        reads them (LIAF, any override) or for a probe. Otherwise the op may skip them (the
        ``cpu_kernel`` backend then stores nothing but spikes and recomputes ``u`` in backward)."""
        return self.probed or type(self).output is not BaseNeuron.output

    def _run(self, x: Tensor, state: Tensor | None) -> tuple[Tensor, Tensor | None, Tensor]:
        if x.ndim < 2:
            raise ValueError(
                f"{type(self).__name__} expects a sequence [T, B, ...], got shape "
                f"{tuple(x.shape)}; add the time axis (e.g. spikeloom.encoding.DirectEncoder)"
            )
        if state is not None and state.shape != x.shape[1:]:
            raise ValueError(
                f"state has shape {tuple(state.shape)} but one step of the input has shape "
                f"{tuple(x.shape[1:])}"
            )
        scale = self.input_scale()
        if not (isinstance(scale, float) and scale == 1.0):
            x = x * scale
        s, u, v = neuron_sequence(x, self.decay_factor(), self.spec, state,
                                  need_u=self._needs_potential())
        if self.check_finite and not bool(torch.isfinite(v).all()):
            raise NonFiniteError(
                self, f"{type(self).__name__} got NaN or infinite input current (or state); "
                "a NaN never crosses the threshold, so it would silently give no spikes"
            )
        if self.probed:
            self.emit("spikes", s)
            self.emit("potential", u)
        return s, u, v

    def output(self, s: Tensor, u: Tensor | None) -> Tensor:
        """What the neuron transmits, from spikes ``s`` and pre-reset potentials ``u`` (``u`` is
        ``None`` for this base version, which does not read it; an override always gets it)."""
        return s

    def forward(
        self, x: Tensor, state: Tensor | None = None, return_state: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Args:
            x: input current ``[T, B, ...]``.
            state: post-leak potential ``[B, ...]`` to start from (streaming); default rest.
            return_state: also return the final state ``[B, ...]``.

        Returns:
            output ``[T, B, ...]`` (spikes, or analog values for LIAF), and the state if asked.
        """
        s, u, v = self._run(x, state)
        out = self.output(s, u)
        return (out, v) if return_state else out

    def extra_repr(self) -> str:
        return (
            f"v_th={self.v_th}, v_reset={self.v_reset}, reset={self.reset!r}, "
            f"detach_reset={self.detach_reset}, surrogate={self.surrogate}, fire_ge={self.fire_ge}"
        )


class LIF(BaseNeuron):
    """Leaky integrate-and-fire neuron (STBP iterative form, Wu et al. 2018, arXiv:1706.02609).

    ``u[t] = k·r[t-1] + x[t]``, ``s[t] = Θ(u[t] - V_th)``, ``r = reset(u, s)``.
    Defaults follow the STBP reference code: ``V_th = 0.5``, ``k = 0.2``, hard reset to 0,
    rectangular surrogate of width 1, strict ``>``.

    Conventions against other libraries (checked spike for spike):

    * spikeloom fires on ``u > V_th`` by default (``fire_ge=True`` for ``>=``); SpikingJelly
      fires on ``>=``, snnTorch on ``>``.
    * the membrane starts at 0 and leaks toward 0 even when ``v_reset != 0`` (SpikingJelly
      starts at and leaks toward ``v_reset``); they agree for ``v_reset = 0``.
    * a soft reset subtracts ``V_th`` before the leak, so the subtracted threshold decays with
      the membrane (as in SpikingJelly; snnTorch's ``reset_mechanism="subtract"`` does not).
    * ``LIF(decay=k, fire_ge=True)`` equals SpikingJelly's
      ``LIFNode(tau=1/(1-k), decay_input=False, v_reset=0.)`` with the same threshold.

    Args:
        decay: leak factor ``k`` in (0, 1]; ``learn_decay=True`` makes it a trainable scalar
            parameterised as ``k = sigmoid(w)``.
    """

    def __init__(self, v_th: float = 0.5, decay: float = 0.2, *, learn_decay: bool = False,
                 **kwargs) -> None:
        super().__init__(v_th=v_th, **kwargs)
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay must be in (0, 1], got {decay}")
        self.learn_decay = learn_decay
        if learn_decay:
            if decay >= 1.0:
                raise ValueError("a learnable decay must start below 1")
            self.decay_logit = nn.Parameter(torch.tensor(math.log(decay / (1 - decay))))
        else:
            self.decay = float(decay)

    def decay_factor(self) -> float | Tensor:
        return torch.sigmoid(self.decay_logit) if self.learn_decay else self.decay

    def extra_repr(self) -> str:
        k = "learned" if self.learn_decay else self.decay
        return f"decay={k}, " + super().extra_repr()


class IF(LIF):
    """Integrate-and-fire: LIF without leak (``k = 1``). Default ``V_th = 1``, hard reset."""

    def __init__(self, v_th: float = 1.0, **kwargs) -> None:
        if "decay" in kwargs or "learn_decay" in kwargs:
            raise TypeError("IF has no decay; use LIF for a leaky neuron")
        super().__init__(v_th=v_th, decay=1.0, **kwargs)


class PLIF(BaseNeuron):
    """Parametric LIF (Fang et al. 2021, arXiv:2007.05785) with a learnable time constant.

    ``u[t] = k·r[t-1] + (1 - k)·x[t]`` with ``1 - k = 1/τ = sigmoid(w)``; ``w`` is initialised
    so that ``τ = init_tau``. Defaults: ``V_th = 1``, arctan surrogate (α = 2), detached reset,
    strict ``>``. These are not SpikingJelly 2.0's PLIF defaults (sigmoid surrogate with
    α = 4, ``detach_reset=False``, firing on ``>=``); to match it pass
    ``surrogate="sigmoid", width=4.0, detach_reset=False, fire_ge=True``.
    """

    def __init__(self, init_tau: float = 2.0, v_th: float = 1.0, *,
                 surrogate: str | Surrogate = "arctan", detach_reset: bool = True,
                 **kwargs) -> None:
        super().__init__(v_th=v_th, surrogate=surrogate, detach_reset=detach_reset, **kwargs)
        if init_tau <= 1.0:
            raise ValueError(f"init_tau must be > 1, got {init_tau}")
        self.w = nn.Parameter(torch.tensor(-math.log(init_tau - 1.0)))

    @property
    def tau(self) -> float:
        return float(1.0 / torch.sigmoid(self.w.detach()))

    def decay_factor(self) -> Tensor:
        return 1 - torch.sigmoid(self.w)

    def input_scale(self) -> Tensor:
        return torch.sigmoid(self.w)


class LIAF(LIF):
    """Leaky integrate and *analog* fire (LIAF-Net: Wu et al. 2021, arXiv:2011.06176).

    Same membrane dynamics as :class:`LIF`; the spike only resets the membrane. The output is
    analog: ``Act(u - V_th)`` in threshold-related mode ``"tr"`` or ``Act(u)`` in
    non-threshold-related mode ``"ntr"`` (default, as in the LIAF research code).

    Args:
        mode: ``"ntr"`` or ``"tr"``.
        activation: ``"relu"`` (default), ``"selu"``, ``"leaky_relu"`` (slope 0.2), ``"tanh"``,
            ``"sigmoid"``, ``"identity"``, or any elementwise callable.
        decay: leak ``α`` (default 0.3 as in TA-SNN's LIAF cell); ``learn_decay=True`` gives the
            research code's learnable ``sigmoid(w)`` decay.
        v_th: threshold (default 0.5, LIAF research code).

    ``detach_reset`` defaults to True here, as in the LIAF research code.
    """

    emits_spikes = False

    def __init__(self, v_th: float = 0.5, decay: float = 0.3, *,
                 mode: Literal["ntr", "tr"] = "ntr",
                 activation: str | Callable[[Tensor], Tensor] = "relu",
                 detach_reset: bool = True, **kwargs) -> None:
        super().__init__(v_th=v_th, decay=decay, detach_reset=detach_reset, **kwargs)
        if mode not in ("ntr", "tr"):
            raise ValueError(f"mode must be 'ntr' or 'tr', got {mode!r}")
        self.mode = mode
        if isinstance(activation, str):
            if activation not in ACTIVATIONS:
                raise ValueError(
                    f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)} "
                    "or pass a callable"
                )
            self.activation_name = activation
            self.activation = ACTIVATIONS[activation]
        else:
            self.activation_name = getattr(activation, "__name__", repr(activation))
            self.activation = activation

    def output(self, s: Tensor, u: Tensor) -> Tensor:
        return self.activation(u - self.v_th if self.mode == "tr" else u)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, activation={self.activation_name}, " + super().extra_repr()


register_role(BaseNeuron, "neuron")

#: neuron name -> class, for configs and model factories
NEURONS: Registry[type[BaseNeuron]] = Registry("neuron")
NEURONS.register("lif", LIF)
NEURONS.register("if", IF)
NEURONS.register("plif", PLIF)
NEURONS.register("liaf", LIAF)
