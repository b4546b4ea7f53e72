"""Operators with a readable reference implementation and fast backends behind a dispatcher.

One package per operator (``spikeloom.ops.neuron_sequence``, ``spikeloom.ops.frames``); each
registers its backends with :func:`register_backend`. :func:`available_backends` lists what can
run here; ``SPIKELOOM_BACKEND_<OP>`` forces a backend (see :mod:`spikeloom.ops._dispatch`).
A new backend (C++, Triton) is one ``register_backend`` call plus one line in the cross-backend
test ``tests/test_ops.py``.
"""

from ._dispatch import (
    Backend,
    available_backends,
    backends,
    env_var,
    get_backend,
    operators,
    register_backend,
    select,
)

__all__ = [
    "Backend",
    "available_backends",
    "backends",
    "env_var",
    "get_backend",
    "operators",
    "register_backend",
    "select",
]
