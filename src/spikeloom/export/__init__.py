"""Interoperability: NIR export/import, ONNX, peer-library weights and tensor layouts.

* :func:`to_nir` / :func:`write_nir` and :func:`from_nir` / :func:`read_nir` — the
  Neuromorphic Intermediate Representation (needs the optional ``nir`` package, extra
  ``interop``); mappers: :mod:`.nir_map`, importers: :mod:`.nir_import`.
* :func:`~.onnx.export_onnx` — the unrolled network for a fixed ``T`` (extra ``interop``).
* :func:`~.peers.load_peer_state_dict` — weights from SpikingJelly and snnTorch state dicts.
* :mod:`.layout` — time-first ``[T, B, ...]`` <-> batch-first ``[B, T, ...]`` <-> time-last
  ``[B, ..., T]``.

The NIR names are imported lazily so that ``import spikeloom.export`` works without ``nir``.
"""

from __future__ import annotations

from typing import Any

from .layout import (
    batch_first_to_time_first,
    time_first_to_batch_first,
    time_first_to_time_last,
    time_last_to_time_first,
)

__all__ = [
    "to_nir", "write_nir", "from_nir", "read_nir", "export_onnx", "load_peer_state_dict",
    "time_first_to_batch_first", "batch_first_to_time_first", "time_first_to_time_last",
    "time_last_to_time_first",
]

_LAZY = {
    "to_nir": ".nir", "write_nir": ".nir", "from_nir": ".nir_import", "read_nir": ".nir_import",
    "export_onnx": ".onnx", "load_peer_state_dict": ".peers",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        try:
            mod = importlib.import_module(_LAZY[name], __name__)
        except ModuleNotFoundError as e:
            raise ModuleNotFoundError(
                f"spikeloom.export.{name} needs the optional package {e.name!r}; install the "
                "'interop' extra (pip install 'spikeloom[interop]')"
            ) from e
        return getattr(mod, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
