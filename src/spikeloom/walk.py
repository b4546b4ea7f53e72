"""The layer walk: every layer of a model with its role.

:func:`iter_layers` yields ``Layer(name, module, role)`` for the layers of a model, in
registration (forward) order. A *role* says what a layer does in a spiking network:

============  ===============================================================================
role          layers
============  ===============================================================================
synapse       weighted connections: ``nn.Linear``, ``nn.Conv1d/2d/3d``, transposed convs
neuron        spiking neurons (:class:`spikeloom.neurons.BaseNeuron`)
norm          batch norm, tdBN
attention     temporal attention (TA-SNN)
pool          pooling
merge         residual sums (:class:`spikeloom.layers.Add`)
readout       time readouts (mean over time, membrane readout)
other         anything else without children (dropout, flatten, activations)
============  ===============================================================================

Roles are registered by module type (:func:`register_role`), next to the module's definition,
and looked up along the class hierarchy. A module with a role is yielded and not entered (the
linear layers inside a temporal attention are part of the attention); a module without a role
that has children (``nn.Sequential``, :class:`~spikeloom.layers.TimeDistributed`, a model) is
entered; a childless module without a role is yielded as ``other``.
Cost, monitors, plots, pruning, quantization and export all walk models through here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
from torch import nn

from .registry import TypeRegistry

__all__ = ["Layer", "ROLES", "register_role", "role_of", "iter_layers", "layers_with_role",
           "run_hooked"]

ROLES: tuple[str, ...] = (
    "synapse", "neuron", "norm", "attention", "pool", "merge", "readout", "other",
)

_ROLE_OF: TypeRegistry[str] = TypeRegistry("layer role")


def register_role(cls: type | tuple[type, ...], role: str) -> None:
    """Give module type(s) ``cls`` (and subclasses) the role ``role``.

    New roles are allowed (e.g. ``"graph_conv"``); they are added to :data:`ROLES` order last.
    """
    global ROLES
    if not isinstance(role, str) or not role:
        raise ValueError(f"a role is a non-empty string, got {role!r}")
    if role not in ROLES:
        ROLES = (*ROLES, role)
    _ROLE_OF.register(cls, role)


def role_of(module: nn.Module) -> str | None:
    """The registered role of ``module``'s type, or ``None`` (container or unknown)."""
    return _ROLE_OF.lookup(module)


class Layer(NamedTuple):
    """One layer of a model: its qualified name, the module and its role."""

    name: str
    module: nn.Module
    role: str


def iter_layers(model: nn.Module, prefix: str = "") -> Iterator[Layer]:
    """Yield every layer of ``model`` with its role (see the module docstring).

    A module shared at several places is yielded once (at its first name). ``model`` itself is
    yielded when it has a role (walking a single neuron yields that neuron).
    """
    seen: set[int] = set()

    def walk(m: nn.Module, name: str) -> Iterator[Layer]:
        if id(m) in seen:
            return
        seen.add(id(m))
        role = role_of(m)
        children = list(m.named_children())
        if role is not None or not children:
            yield Layer(name, m, role or "other")
            return
        for child_name, child in children:
            yield from walk(child, f"{name}.{child_name}" if name else child_name)

    yield from walk(model, prefix)


def layers_with_role(model: nn.Module, *roles: str) -> list[Layer]:
    """The layers of ``model`` whose role is one of ``roles``."""
    return [layer for layer in iter_layers(model) if layer.role in roles]


register_role(
    (nn.Linear, nn.Bilinear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
     nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d),
    "synapse",
)
register_role(
    (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm,
     nn.modules.instancenorm._InstanceNorm),
    "norm",
)
register_role(
    (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
     nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
     nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d),
    "pool",
)


def run_hooked(model: nn.Module, x: Any, handles: list[Any]) -> Any:
    """``model(x)`` without gradients while the hooks ``handles`` are installed; removes them
    afterwards (also when the forward raises) and returns the output."""
    try:
        with torch.no_grad():
            return model(x)
    finally:
        for h in handles:
            h.remove()
