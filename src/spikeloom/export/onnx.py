"""ONNX export of a spikeloom network unrolled over a fixed number of time steps.

:func:`export_onnx` writes an ONNX graph with input ``frames`` ``[T, B, *input]`` (``T`` and
``B`` fixed at export) and outputs ``logits`` (the model's output, e.g. ``[B, K]``) plus, with
``spike_outputs=True``, ``neuron_<i>`` ``[T, B, ...]``: the output of every neuron layer (spikes;
LIAF's analog values) in the order they run — so a runtime's spikes can be compared with
spikeloom's.

The fused neuron operator (a custom autograd function) has no ONNX form, so the export runs on
a copy of the model whose neurons are replaced by :class:`UnrolledNeuron` — the same recurrence
``u = v + s_in·x``, ``s = u > V_th``, reset, ``v = k·r`` written with plain tensor ops and
unrolled over ``T`` (the original model is untouched). Replacements are looked up by module
type in :data:`ONNX_REPLACEMENTS` (a :class:`~spikeloom.registry.TypeRegistry`); LIAF's analog
output and temporal attention export as they are (ONNX has the ops).

Uses the TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``) by default, or
the dynamo exporter (``exporter="dynamo"``, needs ``onnxscript``); needs the ``onnx`` package
(extra ``interop``). Check a file with :func:`run_onnx` (``onnxruntime``).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import ExportError
from ..neurons import BaseNeuron
from ..registry import TypeRegistry

__all__ = ["UnrolledNeuron", "ONNX_REPLACEMENTS", "onnx_twin", "export_onnx", "run_onnx"]


class UnrolledNeuron(nn.Module):
    """Inference-only twin of a spikeloom neuron: the recurrence with plain tensor ops, one
    Python iteration per step (unrolled when traced). Forward equals the neuron's forward."""

    def __init__(self, neuron: BaseNeuron) -> None:
        super().__init__()
        self.neuron = neuron
        with torch.no_grad():
            self.register_buffer("decay", torch.as_tensor(neuron.decay_factor()).detach()
                                 .clone().float())
            self.register_buffer("scale", torch.as_tensor(neuron.input_scale()).detach()
                                 .clone().float())

    def forward(self, x: Tensor) -> Tensor:
        spec = self.neuron.spec
        x = x * self.scale
        v = torch.zeros_like(x[0])
        outs = []
        for t in range(x.shape[0]):
            u = v + x[t]
            s = (u >= spec.v_th if spec.fire_ge else u > spec.v_th).to(x.dtype)
            r = u - spec.v_th * s if spec.soft else u * (1 - s) + spec.v_reset * s
            v = self.decay * r
            outs.append(self.neuron.output(s, u))
        return torch.stack(outs)


#: module type -> factory of its ONNX-exportable replacement
ONNX_REPLACEMENTS: TypeRegistry[Callable[[nn.Module], nn.Module]] = TypeRegistry(
    "ONNX replacement"
)
ONNX_REPLACEMENTS.register(BaseNeuron, UnrolledNeuron)


def onnx_twin(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` (eval mode) with every registered module type replaced."""
    twin = copy.deepcopy(model).eval()
    for name, mod in list(twin.named_modules()):
        make = ONNX_REPLACEMENTS.lookup(mod)
        if make is None or not name:
            continue
        parent_name, _, leaf = name.rpartition(".")
        parent = twin.get_submodule(parent_name) if parent_name else twin
        setattr(parent, leaf, make(mod))
    return twin


class _WithSpikes(nn.Module):
    """Returns the model output and the output of every replaced neuron layer."""

    def __init__(self, twin: nn.Module, spike_outputs: bool) -> None:
        super().__init__()
        self.twin = twin
        self.neurons = [m for m in twin.modules() if isinstance(m, UnrolledNeuron)] \
            if spike_outputs else []

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        outs: list[Tensor] = []
        hooks = [m.register_forward_hook(lambda m, i, o: outs.append(o)) for m in self.neurons]
        try:
            y = self.twin(x)
        finally:
            for h in hooks:
                h.remove()
        return (y, *outs)


def export_onnx(
    model: nn.Module, path: str | Path, *, T: int, input_shape: Sequence[int] | None = None,
    batch_size: int = 1, spike_outputs: bool = True, opset: int = 17,
    exporter: str = "torchscript",
) -> list[str]:
    """Write ``model`` unrolled over ``T`` steps to an ONNX file.

    Args:
        model: a spikeloom model taking ``[T, B, *input_shape]``.
        path: the ``.onnx`` file to write.
        T: number of time steps (fixed in the graph).
        input_shape: one sample at one step; default from ``in_channels``/``input_size``.
        batch_size: the batch size fixed in the graph.
        spike_outputs: add an output per neuron layer (``neuron_0``, ...).
        opset: ONNX opset version.
        exporter: ``"torchscript"`` (``torch.onnx.export(dynamo=False)``, fast; deprecated by
            torch but present in 2.13) or ``"dynamo"`` (the torch.export-based exporter with
            onnxscript; same results, about 10x slower to export).

    Returns:
        the output names, in order.

    Raises:
        ExportError: unknown input shape, or ``torch.onnx`` failing (the message says why).
    """
    if input_shape is None:
        c, size = getattr(model, "in_channels", None), getattr(model, "input_size", None)
        if c is None or size is None:
            raise ExportError(f"export_onnx cannot tell the input shape of "
                              f"{type(model).__name__}; pass input_shape=(C, H, W)")
        input_shape = (c, *size)
    if exporter not in ("torchscript", "dynamo"):
        raise ExportError(f"exporter must be 'torchscript' or 'dynamo', got {exporter!r}")
    wrapper = _WithSpikes(onnx_twin(model), spike_outputs).eval()
    n_neurons = len(wrapper.neurons)
    names = ["logits", *(f"neuron_{i}" for i in range(n_neurons))]
    example = torch.zeros(int(T), int(batch_size), *(int(n) for n in input_shape))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks: fixed T, B
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter
            torch.onnx.export(wrapper, (example,), str(path), input_names=["frames"],
                              output_names=names, opset_version=opset,
                              dynamo=exporter == "dynamo")
    except Exception as e:  # the exporter raises many types
        raise ExportError(f"torch.onnx could not export {type(model).__name__}: "
                          f"{type(e).__name__}: {e}") from None
    return names


def run_onnx(path: str | Path, x: Tensor) -> dict[str, Tensor]:
    """Run an exported file with ``onnxruntime`` on ``x``; outputs by name."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"frames": x.detach().cpu().numpy()})
    return {o.name: torch.from_numpy(v) for o, v in zip(sess.get_outputs(), outs)}
