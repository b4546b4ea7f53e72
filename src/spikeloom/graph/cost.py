"""Cost counters of graph layers (see :mod:`spikeloom.cost.counters`).

:class:`~spikeloom.graph.layers.Aggregate` computes ``A · x`` on a sparse ``A`` of ``nnz``
entries (edges, self-loops included). Per call:

* dense MACs: ``nnz · f`` (``f`` = values per node of ``x``: features × time steps) — what a
  sparse ANN aggregation does;
* exact operations: every non-zero input value of node ``j`` is used once per entry of column
  ``j`` (its fan-out, the out-degree in ``A``): ``Σ_j nz_j · outdeg_j``. With spike input these
  are accumulates of ``A``'s values, else MACs (decided by the cost report's spike rule).

The counter reads the adjacency from the call (``call_args=True``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..cost.counters import register_counter
from .layers import Aggregate
from .norm import Adj

__all__: list[str] = []


def _dense(m: nn.Module, x: Tensor, y: Tensor, adj: Adj) -> int:
    per_node = int(x.numel()) // max(int(x.shape[-2]), 1)
    return adj.nnz * per_node


def _synops(m: nn.Module, nz: Tensor, y: Tensor, cache: dict, adj: Adj) -> int:
    per_node = nz.movedim(-2, 0).reshape(nz.shape[-2], -1).sum(1, dtype=torch.int64)
    return int((per_node * adj.out_degree().to(per_node.device)).sum())


register_counter(Aggregate, dense_macs=_dense, synops=_synops, call_args=True)
