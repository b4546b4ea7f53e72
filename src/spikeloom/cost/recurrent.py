"""Cost counters of PyTorch's recurrent layers (``nn.RNN``, ``nn.GRU``, ``nn.LSTM``).

A recurrent layer is a synapse (role ``"synapse"``) with two weight matrices per gate group:
input-to-hidden ``W_ih [G·H, F]`` and hidden-to-hidden ``W_hh [G·H, H]``, with ``G = 1`` (RNN),
3 (GRU) or 4 (LSTM) gate blocks. Per time step and sample:

* ``dense_macs = G·H·(F + H)`` per direction for the first layer, ``G·H·(D·H + H)`` for each
  further layer (``D = 2`` when bidirectional): what the dense network computes;
* exact operations on the *input*: every non-zero input element is multiplied with its
  ``D·G·H`` input weights; they are accumulates when the input is spikes (event frames) and
  MACs when it is analog (decided by :func:`~spikeloom.cost.measure_cost`, as for any
  synapse);
* the recurrent products are always MACs (the hidden state is analog): for a one-layer,
  one-direction layer exactly ``G·H`` per non-zero element of ``h[t-1]`` (the output of the
  previous step; ``h[0] = 0`` costs nothing); for stacked or bidirectional layers, whose inner
  states the forward hook cannot see, the hidden-state part is counted dense.

Gate non-linearities and the element-wise cell update (``c = f·c + i·g``, ``h = o·tanh(c)``)
are not counted, as neuron updates of spiking layers are not counted by default. Projections
(``proj_size > 0``) are not supported: counting such a layer raises a ``ValueError``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..walk import register_role
from .counters import register_counter

__all__ = ["GATES", "recurrent_dense_macs"]

#: ``nn.RNNBase.mode`` -> number of gate blocks ``G``
GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}


def _sizes(m: nn.RNNBase, x: Tensor) -> tuple[int, int, int, int, int]:
    """``(N, G, H, D, L)``: steps·samples of the call, gates, hidden size, directions, layers."""
    if getattr(m, "proj_size", 0):
        raise ValueError(f"cost of {type(m).__name__} with proj_size > 0 is not supported")
    n = int(x.numel()) // int(m.input_size)
    return n, GATES[m.mode], int(m.hidden_size), 2 if m.bidirectional else 1, int(m.num_layers)


def recurrent_dense_macs(m: nn.RNNBase, x: Tensor, y: Tensor | None = None) -> int:
    """Dense MACs of one call of a recurrent layer on input ``x`` (all steps and samples)."""
    n, g, h, d, layers = _sizes(m, x)
    first = n * d * g * h * (int(m.input_size) + h)
    rest = (layers - 1) * n * d * g * h * (d * h + h)
    return first + rest


def _recurrent_synops(m: nn.RNNBase, nz: Tensor, y: Tensor, cache: dict) -> tuple[int, int]:
    n, g, h, d, layers = _sizes(m, nz)
    input_ops = int(nz.sum()) * d * g * h
    if layers == 1 and d == 1:
        prev = y[:, :-1] if (m.batch_first and y.ndim == 3) else y[:-1]
        return input_ops, int(torch.count_nonzero(prev)) * g * h
    inner = recurrent_dense_macs(m, nz) - n * d * g * h * int(m.input_size)
    return input_ops, inner


def _no_step_input(m: nn.Module, x: Tensor, T: int, B: int) -> tuple[None, str]:
    return None, f"{type(m).__name__} reads the whole sequence in one call"


register_role(nn.RNNBase, "synapse")
register_counter(nn.RNNBase, dense_macs=recurrent_dense_macs, synops=_recurrent_synops,
                 step_input=_no_step_input)
