"""Sparse × dense matrix product for graph aggregation: ``y = A · x`` with ``A`` in CSR.

``A`` is ``[R, N]`` given by ``rowptr [R+1]``, ``col [E]`` (int64) and ``val [E]`` (or
``None`` for ones); ``x`` is ``[N, F]`` (or ``[N, ...]``, flattened over the trailing dims);
the result is ``[R, F]`` (``[R, ...]``). Gradients flow to ``x`` and to ``val`` (graph
attention learns the values).

Backends (``SPIKELOOM_BACKEND_SPMM`` forces one):

* ``reference`` — gather ``x[col]``, scale by ``val``, ``index_add`` into rows
  (:mod:`.reference`); memory ``O(E·F)``;
* ``csr`` — ``torch.sparse_csr_tensor @ x`` with a hand-written backward (:mod:`.csr`);
  memory ``O(N·F + E)``; the default.
"""

from __future__ import annotations

from torch import Tensor

from ...errors import ConfigError
from .._dispatch import register_backend, select
from .csr import spmm_csr
from .reference import csr_rows, spmm_reference

__all__ = ["spmm", "csr_rows", "OP"]

OP = "spmm"

register_backend(OP, "reference", spmm_reference, priority=0)
register_backend(OP, "csr", spmm_csr, priority=10)


def spmm(rowptr: Tensor, col: Tensor, val: Tensor | None, x: Tensor) -> Tensor:
    """``A · x`` for a CSR matrix ``A`` (see the module docstring) with the selected backend."""
    n_rows = len(rowptr) - 1
    if col.numel() and int(col.max()) >= x.shape[0]:
        raise ConfigError(f"spmm: a column index ({int(col.max())}) is outside x's "
                          f"{x.shape[0]} rows")
    if int(rowptr[-1]) != col.numel():
        raise ConfigError(f"spmm: rowptr ends at {int(rowptr[-1])} but there are "
                          f"{col.numel()} column indices")
    if val is not None and val.shape != col.shape:
        raise ConfigError(f"spmm: val has shape {tuple(val.shape)}, col {tuple(col.shape)}")
    tail = x.shape[1:]
    y = select(OP, x.device.type).fn(rowptr, col, val, x.reshape(x.shape[0], -1))
    return y.reshape(n_rows, *tail)
