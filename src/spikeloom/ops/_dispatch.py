"""Backend dispatch for spikeloom's operators.

Each operator (``neuron_sequence``, ``frames``, ...) has a readable *reference* implementation
and zero or more fast *backends*. A backend registers itself with :func:`register_backend`,
saying which devices it serves, whether it can run here (a compiled extension may be missing)
and its priority. :func:`select` picks the highest-priority available backend for a device;
one environment variable per operator forces a choice::

    SPIKELOOM_BACKEND_NEURON_SEQUENCE=reference   # or torch_fused, ...
    SPIKELOOM_BACKEND_FRAMES=numpy                # or c, ...

A forced name that is unknown, or known but unavailable here, raises :class:`BackendError`
listing what can run. :func:`available_backends` lists the backends that can run here.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import BackendError
from ..registry import Registry

__all__ = [
    "Backend",
    "register_backend",
    "available_backends",
    "backends",
    "get_backend",
    "select",
    "env_var",
    "operators",
]


@dataclass(frozen=True)
class Backend:
    """One implementation of an operator.

    Attributes:
        op: operator name.
        name: backend name (``"reference"`` is the readable implementation).
        fn: the implementation (same signature for every backend of an op).
        devices: device types it runs on (``"cpu"``, ``"cuda"``).
        priority: higher wins in :func:`select`.
        is_available: returns ``None`` when it can run here, else the reason it cannot.
    """

    op: str
    name: str
    fn: Callable[..., Any]
    devices: tuple[str, ...] = ("cpu", "cuda")
    priority: int = 0
    is_available: Callable[[], str | None] = lambda: None

    def unavailable_reason(self) -> str | None:
        return self.is_available()


_OPS: dict[str, Registry[Backend]] = {}


def env_var(op: str) -> str:
    """The environment variable that forces a backend of ``op``."""
    return "SPIKELOOM_BACKEND_" + op.upper()


def _registry(op: str) -> Registry[Backend]:
    if op not in _OPS:  # the op's package registers its backends when imported
        try:
            importlib.import_module(f"{__package__}.{op}")
        except ImportError:
            pass
    if op not in _OPS:
        raise BackendError(f"unknown operator {op!r}; operators: {', '.join(sorted(_OPS))}")
    return _OPS[op]


def register_backend(
    op: str,
    name: str,
    fn: Callable[..., Any],
    *,
    devices: tuple[str, ...] = ("cpu", "cuda"),
    priority: int = 0,
    is_available: Callable[[], str | None] | None = None,
) -> Backend:
    """Register ``fn`` as backend ``name`` of operator ``op`` (creating the op on first use)."""
    reg = _OPS.setdefault(op, Registry(f"{op} backend"))
    b = Backend(op, name, fn, tuple(devices), priority, is_available or (lambda: None))
    reg.register(name, b, replace=True)
    return b


def operators() -> list[str]:
    """Names of the operators with at least one backend."""
    return sorted(_OPS)


def backends(op: str) -> list[Backend]:
    """Every registered backend of ``op`` (available here or not)."""
    reg = _registry(op)
    return [reg.get(n) for n in reg.names()]


def available_backends(op: str, device: str | None = None) -> list[str]:
    """Names of the backends of ``op`` that can run here (on ``device`` type if given)."""
    return [
        b.name
        for b in backends(op)
        if b.unavailable_reason() is None and (device is None or device in b.devices)
    ]


def get_backend(op: str, name: str, device: str | None = None) -> Backend:
    """Backend ``name`` of ``op``; raises :class:`BackendError` if unknown or unavailable."""
    reg = _registry(op)
    if name not in reg:
        raise BackendError(
            f"unknown backend {name!r} for operator {op!r}; registered: {', '.join(reg.names())}"
        )
    b = reg.get(name)
    why = b.unavailable_reason()
    if why is None and device is not None and device not in b.devices:
        why = f"it runs on {', '.join(b.devices)}, not {device}"
    if why is not None:
        ok = ", ".join(available_backends(op, device)) or "(none)"
        raise BackendError(
            f"backend {name!r} of operator {op!r} cannot run here: {why}. Available: {ok}"
        )
    return b


def select(op: str, device: str = "cpu") -> Backend:
    """The backend to use for ``op`` on ``device`` (a device type such as ``"cpu"``).

    The environment variable :func:`env_var` (``SPIKELOOM_BACKEND_<OP>``) forces a backend;
    otherwise the available backend with the highest priority serving ``device`` is chosen.
    """
    forced = os.environ.get(env_var(op), "").strip()
    if forced:
        try:
            return get_backend(op, forced, device)
        except BackendError as e:
            raise BackendError(f"{env_var(op)}={forced}: {e}") from None
    cands = [b for b in backends(op) if device in b.devices and b.unavailable_reason() is None]
    if not cands:
        raise BackendError(f"no backend of operator {op!r} can run on {device}")
    best = cands[0]  # a plain loop (not max with a key) so torch.compile traces through it
    for b in cands[1:]:
        if b.priority > best.priority:
            best = b
    return best
