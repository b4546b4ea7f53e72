"""Probe points: how a layer shows internal tensors to monitors without storing them.

A forward pass of a spiking layer computes tensors that are not its output but that users want
to see: the spikes of a LIAF neuron (its output is analog), membrane potentials, temporal
attention scores. Instead of writing them onto the module (which breaks ``torch.compile`` and
leaks memory), such a layer calls :meth:`Probed.emit` with them; nothing happens unless a hook
is registered, which :mod:`spikeloom.monitor` does while a monitor is active.

Hooks are called as ``hook(module, name, value)`` with ``value`` detached.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from torch import Tensor
from torch.utils.hooks import RemovableHandle

__all__ = ["Probed", "ProbeHook"]

ProbeHook = Callable[[Any, str, Tensor], None]


class Probed:
    """Mixin for modules with probe points (call :meth:`_init_probes` in ``__init__``).

    Probe names used in spikeloom: ``"spikes"`` and ``"potential"`` (neurons, ``[T, B, ...]``),
    ``"scores"`` (temporal attention, ``[T, B]``).
    """

    _probe_hooks: OrderedDict[int, ProbeHook]

    def _init_probes(self) -> None:
        self._probe_hooks = OrderedDict()

    def register_probe_hook(self, hook: ProbeHook) -> RemovableHandle:
        """Call ``hook(module, name, value)`` for every probe this module emits from now on.

        Returns:
            a handle whose ``remove()`` unregisters the hook.
        """
        handle = RemovableHandle(self._probe_hooks)
        self._probe_hooks[handle.id] = hook
        return handle

    @property
    def probed(self) -> bool:
        """Whether any probe hook is registered (layers skip probe work otherwise)."""
        return bool(self._probe_hooks)

    def emit(self, name: str, value: Tensor) -> None:
        """Pass a (detached) internal tensor to the registered hooks, if any."""
        if self._probe_hooks:
            v = value.detach()
            for hook in list(self._probe_hooks.values()):
                hook(self, name, v)
