"""The data-flow graph of a spiking model, for exporters.

:func:`trace` records a model's per-step computation with :mod:`torch.fx`: every layer that
has a role in the layer walk (:mod:`spikeloom.walk`: synapses, neurons, norms, pooling,
residual sums, ...) and every :class:`~spikeloom.layers.TimeDistributed` wrapper is one opaque
node, and tensor methods between them (``x.flatten(2)``) and ``+`` are recorded as they are.
Shapes of every value are filled in from one forward pass on a zero input.
"""

from __future__ import annotations

import torch
import torch.fx as fx
from torch import Tensor, nn
from torch.fx.passes.shape_prop import ShapeProp

from ..errors import ExportError
from ..layers import TimeDistributed
from ..walk import role_of

__all__ = ["trace", "Traced"]


class _PerStep(nn.Module):
    """Runs ``model._per_step`` (classifiers: per-step outputs, no readout) or ``model``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        step = getattr(self.model, "_per_step", None)
        return step(x) if step is not None else self.model(x)


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if role_of(m) is not None or isinstance(m, TimeDistributed):
            return True
        if not list(m.children()):
            return True
        return super().is_leaf_module(m, qualname)


class Traced:
    """A traced model: ``graph`` (fx nodes in execution order), ``modules`` (qualified name ->
    module, names relative to the model) and ``shape(node)`` (the per-step shape without the
    time and batch axes)."""

    def __init__(self, gm: fx.GraphModule) -> None:
        self.gm = gm
        self.graph = gm.graph
        self.modules = dict(gm.named_modules())

    def module(self, node: fx.Node) -> nn.Module:
        return self.modules[node.target]

    @staticmethod
    def name(node: fx.Node) -> str:
        """The layer name of a ``call_module`` node relative to the model."""
        t = str(node.target)
        return t[len("model."):] if t.startswith("model.") else t

    @staticmethod
    def shape(node: fx.Node) -> tuple[int, ...]:
        meta = node.meta.get("tensor_meta")
        if meta is None or not hasattr(meta, "shape"):
            raise ExportError(f"no tensor shape recorded for {node.name!r}")
        return tuple(int(n) for n in meta.shape[2:])


def trace(model: nn.Module, input_shape: tuple[int, ...]) -> Traced:
    """Trace ``model``'s per-step computation and record the shape of every value.

    Args:
        model: a spikeloom model (its ``_per_step`` is traced when it has one) or any module
            taking ``[T, B, *input_shape]``.
        input_shape: one sample at one step, e.g. ``(2, 34, 34)``.

    Raises:
        ExportError: when the model's forward cannot be traced (data-dependent Python control
            flow outside the layers).
    """
    root = _PerStep(model)
    try:
        graph = _Tracer().trace(root)
    except Exception as e:  # torch.fx raises many types
        raise ExportError(
            f"cannot trace {type(model).__name__}'s forward ({type(e).__name__}: {e}); export "
            "needs a forward made of layers (modules), tensor methods and '+'"
        ) from None
    gm = fx.GraphModule(root, graph)
    was_training = model.training
    model.eval()
    steps = getattr(model, "T", None) or 2  # models tied to T (attention) need their T
    try:
        with torch.no_grad():
            ShapeProp(gm).propagate(torch.zeros(steps, 1, *input_shape))
    except RuntimeError as e:
        cause = e.__cause__ or e
        raise ExportError(
            f"{type(model).__name__} does not run on input [T={steps}, B=1, "
            f"{', '.join(map(str, input_shape))}]: {cause}"
        ) from None
    finally:
        model.train(was_training)
    return Traced(gm)
