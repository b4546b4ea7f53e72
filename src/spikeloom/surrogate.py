"""Surrogate gradients for the spike (Heaviside) function.

The forward pass of a spiking neuron fires ``s = Θ(z)`` with ``z = u - V_th``. The derivative of
``Θ`` is zero almost everywhere, so backpropagation through time (STBP) replaces it by a smooth
or box-shaped pseudo-derivative ``h(z)`` (Wu et al. 2018, arXiv:1706.02609). Every surrogate
here integrates to 1 over the real line, so the different shapes are comparable; their *width
parameter* sets how far from the threshold a neuron still receives gradient.

==============  =========================================================  =======================
name            ``h(z)``                                                   parameter (default)
==============  =========================================================  =======================
``rectangular`` ``(1/a)·1[|z| < a/2]``                                     ``a`` = 1.0 (STBP, tdBN)
``triangular``  ``max(0, sqrt(a)/2 - (a/4)·|z|)``                          ``a`` = 1.0
``sigmoid``     ``α·σ(αz)·(1 - σ(αz))``                                    ``alpha`` = 4.0
``arctan``      ``(α/2) / (1 + ((π/2)·α·z)²)``                             ``alpha`` = 2.0
``gaussian``    ``exp(-z²/(2σ²)) / (σ·sqrt(2π))``                          ``sigma`` = 1.0
==============  =========================================================  =======================

Surrogates are small immutable objects, safe to share between layers and to pickle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .registry import Registry

__all__ = [
    "Surrogate",
    "Rectangular",
    "Triangular",
    "Sigmoid",
    "ATan",
    "Gaussian",
    "get_surrogate",
    "SURROGATES",
    "heaviside",
    "spike",
]


def heaviside(z: Tensor, fire_ge: bool = False) -> Tensor:
    """Spike function ``Θ(z)`` as a float tensor of 0/1.

    Args:
        z: ``u - V_th``, any shape.
        fire_ge: fire when ``z >= 0`` (TA-SNN, DSR) instead of ``z > 0`` (STBP, LIAF; default).
    """
    return (z >= 0).to(z.dtype) if fire_ge else (z > 0).to(z.dtype)


class Surrogate:
    """Base class: ``grad(z)`` returns the pseudo-derivative ``h(z)`` elementwise."""

    name: str = "surrogate"

    def grad(self, z: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, z: Tensor, fire_ge: bool = False) -> Tensor:
        """Spike with this surrogate in backward (per-step use; the fused sequence op in
        :mod:`spikeloom.ops.neuron_sequence` does not go through here)."""
        return spike(z, self, fire_ge)


@dataclass(frozen=True)
class Rectangular(Surrogate):
    """Box window ``(1/a)·1[|z| < a/2]`` (STBP reference code, tdBN, TA-SNN)."""

    a: float = 1.0
    name = "rectangular"

    def __post_init__(self) -> None:
        _check_positive("a", self.a)

    def grad(self, z: Tensor) -> Tensor:
        return (z.abs() < self.a / 2).to(z.dtype) / self.a


@dataclass(frozen=True)
class Triangular(Surrogate):
    """Triangle ``max(0, sqrt(a)/2 - (a/4)·|z|)``, support ``|z| < 2/sqrt(a)`` (STBP 2018)."""

    a: float = 1.0
    name = "triangular"

    def __post_init__(self) -> None:
        _check_positive("a", self.a)

    def grad(self, z: Tensor) -> Tensor:
        return (math.sqrt(self.a) / 2 - (self.a / 4) * z.abs()).clamp_min(0)


@dataclass(frozen=True)
class Sigmoid(Surrogate):
    """Derivative of the logistic function ``α·σ(αz)·(1-σ(αz))`` (SpikingJelly default α=4)."""

    alpha: float = 4.0
    name = "sigmoid"

    def __post_init__(self) -> None:
        _check_positive("alpha", self.alpha)

    def grad(self, z: Tensor) -> Tensor:
        sg = torch.sigmoid(self.alpha * z)
        return self.alpha * sg * (1 - sg)


@dataclass(frozen=True)
class ATan(Surrogate):
    """Arctan surrogate ``(α/2) / (1 + ((π/2)·α·z)²)`` (SpikingJelly / PLIF default α=2)."""

    alpha: float = 2.0
    name = "arctan"

    def __post_init__(self) -> None:
        _check_positive("alpha", self.alpha)

    def grad(self, z: Tensor) -> Tensor:
        return (self.alpha / 2) / (1 + (math.pi / 2 * self.alpha * z) ** 2)


@dataclass(frozen=True)
class Gaussian(Surrogate):
    """Gaussian density ``exp(-z²/(2σ²)) / (σ·sqrt(2π))`` (LIAF research code, σ = 1)."""

    sigma: float = 1.0
    name = "gaussian"

    def __post_init__(self) -> None:
        _check_positive("sigma", self.sigma)

    def grad(self, z: Tensor) -> Tensor:
        return torch.exp(-0.5 * (z / self.sigma) ** 2) / (self.sigma * math.sqrt(2 * math.pi))


#: surrogate name -> class (aliases: rect, triangle, atan)
SURROGATES: Registry[type[Surrogate]] = Registry("surrogate")
SURROGATES.register("rectangular", Rectangular, aliases=("rect",))
SURROGATES.register("triangular", Triangular, aliases=("triangle",))
SURROGATES.register("sigmoid", Sigmoid)
SURROGATES.register("arctan", ATan, aliases=("atan",))
SURROGATES.register("gaussian", Gaussian)


def get_surrogate(surrogate: str | Surrogate, width: float | None = None) -> Surrogate:
    """Resolve a surrogate given by name (with optional width parameter) or pass one through.

    ``width`` is the shape parameter of the named surrogate: ``a`` for rectangular/triangular,
    ``alpha`` for sigmoid/arctan, ``sigma`` for gaussian.

    Raises:
        ValueError: for an unknown name (listing the known ones) or a width given together
            with a surrogate object.
    """
    if isinstance(surrogate, Surrogate):
        if width is not None:
            raise ValueError("give the width inside the Surrogate object, not as `width=`")
        return surrogate
    if not isinstance(surrogate, str):
        raise ValueError(f"unknown surrogate {surrogate!r}; choose one of: "
                         f"{', '.join(SURROGATES.names())}")
    cls = SURROGATES.get(surrogate)
    return cls() if width is None else cls(width)


def _check_positive(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(
            f"surrogate parameter {name} must be a positive finite number, got {value}"
        )


class _SpikeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z: Tensor, surrogate: Surrogate, fire_ge: bool) -> Tensor:
        ctx.save_for_backward(z)
        ctx.surrogate = surrogate
        return heaviside(z, fire_ge)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (z,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.grad(z), None, None


def spike(z: Tensor, surrogate: Surrogate | str = "rectangular", fire_ge: bool = False) -> Tensor:
    """``Θ(z)`` in forward and ``h(z)`` in backward, elementwise, for one time step."""
    return _SpikeFn.apply(z, get_surrogate(surrogate), fire_ge)
