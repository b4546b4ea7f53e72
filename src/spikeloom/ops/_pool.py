"""A small, bounded cache of large CPU output buffers for the compiled kernels.

A fresh multi-megabyte tensor is mapped anew by the C library, and the operating system zeroes
every page of it on first touch: for the neuron op at ``T = 32`` (67 MB outputs) that costs about
as much as the kernel itself. :class:`OutputPool` hands out tensors on storages it handed out
before and that nobody uses any more, so a training loop that produces outputs of the same sizes
step after step stops paying for it.

Safety: the pool keeps a zero-size *anchor* tensor on each storage it hands out, and reuses a
storage only when the anchor is its only user — the storage's C++ use count and its Python
storage object's reference count both equal what a storage with nothing but the anchor shows
(measured once at import on a scratch tensor, see :func:`_free_signature`): no tensor, view,
autograd saved tensor, numpy array or user-held ``untyped_storage()`` refers to it. If that
measurement is not conclusive on this Python/torch, the pool stays disabled. A storage that was
resized or moved to shared memory is dropped, never reused.

Bounds: at most ``max_entries`` storages are tracked (in use or free), and free ones beyond
``max_free_bytes`` (default 256 MiB) are released, newest kept. :meth:`OutputPool.clear`
releases every free one; ``max_free_bytes = 0`` disables the pool, and :meth:`OutputPool.suspend`
turns it off until the returned handle is removed (the training-memory options do that: memory
the pool keeps for reuse would count against what they save).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["OutputPool"]

_use_count: Callable[[int], int] | None = getattr(torch._C, "_storage_Use_Count", None)


def _signature(anchor: Tensor) -> tuple[int, int]:
    """(C++ use count, Python reference count) of ``anchor``'s storage, seen from here."""
    w = anchor.untyped_storage()
    return _use_count(w._cdata), sys.getrefcount(w)


def _free_signature() -> tuple[int, int] | None:
    """The signature of a storage held by nothing but its anchor, or ``None`` when the checks
    cannot tell it from one still in use (then the pool is disabled)."""
    if _use_count is None:
        return None
    t = torch.empty(16)
    anchor = torch.empty(0).set_(t.untyped_storage())
    used = _signature(anchor)
    del t
    free = _signature(anchor)
    view = torch.empty(0).set_(anchor.untyped_storage(), 0, (4,))
    with_view = _signature(anchor)
    del view
    st = anchor.untyped_storage()
    with_storage = _signature(anchor)
    del st
    if free in (used, with_view, with_storage) or _signature(anchor) != free:
        return None
    return free


_FREE = _free_signature()


class OutputPool:
    """Reusable CPU storages for large kernel outputs (see the module docstring).

    Args:
        max_free_bytes: free storages kept at most (bytes); 0 disables the pool.
        max_entries: storages tracked at most (in use or free).
    """

    def __init__(self, max_free_bytes: int = 256 << 20, max_entries: int = 64) -> None:
        if max_free_bytes < 0 or max_entries < 0:
            raise ValueError(f"pool limits must be >= 0, got max_free_bytes={max_free_bytes}, "
                             f"max_entries={max_entries}")
        self.max_free_bytes = max_free_bytes
        self.max_entries = max_entries
        self._anchors: list[Tensor] = []
        self._lock = threading.Lock()
        self._suspended = 0

    @property
    def enabled(self) -> bool:
        """Whether the pool reuses storages (limits above 0, not suspended, and the safety
        check available)."""
        return (_FREE is not None and self.max_free_bytes > 0 and self.max_entries > 0
                and not self._suspended)

    def suspend(self) -> _Suspension:
        """Turn the pool off (releasing what it keeps) until the returned handle's
        ``remove()``; suspensions nest."""
        with self._lock:
            self._suspended += 1
        self.clear()
        return _Suspension(self)

    @staticmethod
    def _is_free(anchor: Tensor) -> bool:
        return _signature(anchor) == _FREE

    def empty(self, shape: tuple[int, ...] | torch.Size, dtype: torch.dtype,
              fresh: Callable[[tuple[int, ...], torch.dtype], Tensor]) -> Tensor:
        """An uninitialised contiguous CPU tensor ``shape``/``dtype``: on a free pooled storage
        of exactly its size when there is one, else ``fresh(shape, dtype)`` (then tracked)."""
        if not self.enabled:
            return fresh(shape, dtype)
        shape = tuple(shape)
        nbytes = torch.Size(shape).numel() * torch.empty((), dtype=dtype).element_size()
        with self._lock:
            found, keep, free_bytes = None, [], 0
            for a in reversed(self._anchors):  # newest first
                if a.untyped_storage().is_shared():
                    continue  # dropped
                if not self._is_free(a):  # (no storage object held here while checking)
                    keep.append(a)
                    continue
                size = a.untyped_storage().nbytes()
                if found is None and size == nbytes:
                    found = a
                    keep.append(a)
                elif free_bytes + size <= self.max_free_bytes:
                    free_bytes += size
                    keep.append(a)
                # else: released with its anchor
            keep.reverse()
            self._anchors = keep
            if found is not None:
                return torch.empty(0, dtype=dtype).set_(found.untyped_storage(), 0, shape)
            t = fresh(shape, dtype)
            if len(self._anchors) < self.max_entries:
                self._anchors.append(torch.empty(0, dtype=torch.uint8).set_(t.untyped_storage()))
            return t

    def clear(self) -> int:
        """Release every free storage (and stop tracking the others); returns the bytes
        released."""
        with self._lock:
            released = sum(a.untyped_storage().nbytes() for a in self._anchors
                           if self._is_free(a))
            self._anchors = []
            return released

    def stats(self) -> dict[str, int]:
        """``{"tracked": n, "free": n, "free_bytes": b}``."""
        with self._lock:
            free = [a for a in self._anchors if self._is_free(a)]
            return {"tracked": len(self._anchors), "free": len(free),
                    "free_bytes": sum(a.untyped_storage().nbytes() for a in free)}


class _Suspension:
    """Handle of :meth:`OutputPool.suspend`; ``remove()`` ends it (once)."""

    def __init__(self, pool: OutputPool) -> None:
        self._pool: OutputPool | None = pool

    def remove(self) -> None:
        if self._pool is not None:
            with self._pool._lock:
                self._pool._suspended -= 1
            self._pool = None
