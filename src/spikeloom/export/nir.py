"""NIR export: :func:`to_nir` turns a spikeloom model into a :class:`nir.NIRGraph`.

The model's per-step computation (``_per_step`` for the classifiers: everything but the readout
over time) is traced (:mod:`._trace`); every layer is mapped by the mapper registered for its
type (:data:`~.nir_map.NIR_MAPPERS`, a :class:`~spikeloom.registry.TypeRegistry`; see
:mod:`.nir_map` for the neuron conventions). Batch norm and tdBN are folded into the
Linear/Conv layer before them (:mod:`spikeloom.fold`). Residual sums (:class:`~spikeloom.layers.Add`
or ``+``) become several edges into the next node: NIR sums a node's inputs.

The graph's metadata holds ``dt`` and ``source = "spikeloom"``; the graph output is the
per-step output of the last layer (``[T, B, K]`` when run), not the readout.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import nir
import numpy as np
import torch.fx as fx
from torch import nn

from ..errors import ExportError
from ..fold import FOLDABLE_SYNAPSES
from ..layers import Add, TimeDistributed
from ..walk import role_of
from ._trace import Traced, trace
from .nir_map import NIR_MAPPERS, MapContext, _unsupported, flatten_node

__all__ = ["to_nir", "write_nir"]


def _input_shape(model: nn.Module, input_shape: Sequence[int] | None) -> tuple[int, ...]:
    if input_shape is not None:
        return tuple(int(n) for n in input_shape)
    c, size = getattr(model, "in_channels", None), getattr(model, "input_size", None)
    if c is None or size is None:
        raise ExportError(
            f"to_nir cannot tell the input shape of {type(model).__name__}; pass "
            "input_shape=(C, H, W) (one sample at one step)"
        )
    return (int(c), *(int(n) for n in size))


def _foldable_pairs(traced: Traced) -> dict[str, fx.Node]:
    """synapse node name -> the norm node folded into it."""
    pairs: dict[str, fx.Node] = {}
    for node in traced.graph.nodes:
        if node.op != "call_module" or role_of(traced.module(node)) != "norm":
            continue
        src = node.args[0] if node.args else None
        ok = isinstance(src, fx.Node) and src.op == "call_module" and len(src.users) == 1
        if ok:
            syn = traced.module(src)
            syn = syn.module if isinstance(syn, TimeDistributed) else syn
            ok = isinstance(syn, FOLDABLE_SYNAPSES)
        if not ok:
            raise ExportError(
                f"layer {Traced.name(node)!r} ({type(traced.module(node)).__name__}) cannot be "
                "folded: a norm must directly follow a Linear/Conv layer whose output feeds "
                "nothing else"
            )
        pairs[src.name] = node
    return pairs


class _Builder:
    """Accumulates NIR nodes and edges; each fx value is a list of NIR sources (summed)."""

    def __init__(self) -> None:
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []

    def add_chain(self, name: str, chain: list, sources: list[str]) -> list[str]:
        if not chain:
            return sources
        prev = sources
        for i, node in enumerate(chain):
            key = name if len(chain) == 1 else f"{name}.{i}"
            self.nodes[key] = node
            self.edges += [(s, key) for s in prev]
            prev = [key]
        return prev


def _method(node: fx.Node, traced: Traced, b: _Builder, srcs: list[str]) -> list[str]:
    if node.target == "flatten":
        start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
        end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
        if 0 <= start < 2:
            raise ExportError(f"{node.name}: flatten(start_dim={start}) merges the time or "
                              "batch axis of [T, B, ...]")
        in_shape = Traced.shape(node.args[0])
        return b.add_chain(node.name, [flatten_node(in_shape, start - 2, end)], srcs)
    raise ExportError(f"operation {node.name!r} (tensor method .{node.target}) has no NIR "
                      "form; supported tensor methods: flatten")


def to_nir(
    model: nn.Module, *, dt: float | None = None, input_shape: Sequence[int] | None = None
) -> nir.NIRGraph:
    """Export ``model`` to a NIR graph.

    Args:
        model: a spikeloom model (or any module on ``[T, B, ...]`` built from mappable layers);
            exported as in eval mode (norms folded with their running statistics).
        dt: the time step in seconds that one spikeloom step stands for (required: NIR time
            constants are continuous; ``1e-4`` is snnTorch's and SpikingJelly's default).
        input_shape: one sample at one step, e.g. ``(2, 34, 34)``; default from the model's
            ``in_channels`` and ``input_size``.

    Raises:
        ExportError: missing ``dt``; a layer without a faithful NIR form (the message names it
            and lists the supported layers).
    """
    if dt is None:
        raise ExportError("to_nir needs dt= (seconds per time step; NIR time constants are "
                          "continuous, e.g. dt=1e-3)")
    dt = float(dt)
    if not dt > 0:
        raise ExportError(f"dt must be > 0 seconds, got {dt}")
    shape = _input_shape(model, input_shape)
    traced = trace(model, shape)
    folds = _foldable_pairs(traced)
    folded_norms = {n.name for n in folds.values()}
    b = _Builder()
    b.nodes["input"] = nir.Input(input_type={"input": np.array(shape)})
    values: dict[str, list[str]] = {}
    for node in traced.graph.nodes:
        srcs = [s for a in node.args if isinstance(a, fx.Node) for s in values[a.name]]
        if node.op == "placeholder":
            values[node.name] = ["input"]
        elif node.op == "output":
            b.nodes["output"] = nir.Output(output_type={"output": np.array(
                Traced.shape(node.args[0]))})
            b.edges += [(s, "output") for s in srcs]
        elif node.op == "call_function" and node.target in (operator.add, operator.iadd):
            values[node.name] = srcs
        elif node.op == "call_method":
            values[node.name] = _method(node, traced, b, srcs)
        elif node.op == "call_module":
            m = traced.module(node)
            if isinstance(m, Add) or node.name in folded_norms:
                values[node.name] = srcs
                continue
            name = Traced.name(node)
            mapper = NIR_MAPPERS.lookup(m)
            if mapper is None:
                raise _unsupported(m, name)
            ctx = MapContext(name, Traced.shape(node.args[0]), Traced.shape(node), dt,
                             traced.module(folds[node.name]) if node.name in folds else None)
            values[node.name] = b.add_chain(name, mapper(m, ctx), srcs)
        else:
            raise ExportError(f"operation {node.name!r} ({node.op} {node.target}) has no NIR "
                              "form; the forward may use layers, tensor .flatten and '+'")
    try:  # NIR's own shape check of every edge
        return nir.NIRGraph(nodes=b.nodes, edges=b.edges,
                            metadata={"dt": dt, "source": "spikeloom"}, type_check=True)
    except (ValueError, NotImplementedError) as e:
        raise ExportError(f"the exported graph of {type(model).__name__} fails NIR's type "
                          f"check: {e}") from None


def write_nir(model: nn.Module, path, **kwargs) -> nir.NIRGraph:
    """:func:`to_nir` and write the graph to ``path`` (HDF5, :func:`nir.write`)."""
    graph = to_nir(model, **kwargs)
    nir.write(path, graph)
    return graph
