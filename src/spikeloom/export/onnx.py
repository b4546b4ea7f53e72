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
from ..layers import MembraneReadout, TemporalAttention
from ..neurons import BaseNeuron
from ..registry import TypeRegistry

__all__ = ["UnrolledNeuron", "ONNX_REPLACEMENTS", "onnx_twin", "export_onnx",
           "export_onnx_step", "run_onnx"]


class UnrolledNeuron(nn.Module):
    """Inference-only twin of a spikeloom neuron: the recurrence with plain tensor ops, one
    Python iteration per step (unrolled when traced). Forward equals the neuron's forward.

    For the single-step export (:func:`export_onnx_step`) the wrapper sets ``state_in`` (the
    post-leak potential ``[B, ...]`` to start from) before a call and reads ``state_out``
    after it; both are ``None`` otherwise (start from rest)."""

    def __init__(self, neuron: BaseNeuron) -> None:
        super().__init__()
        self.neuron = neuron
        self.state_in: Tensor | None = None
        self.state_out: Tensor | None = None
        with torch.no_grad():
            self.register_buffer("decay", torch.as_tensor(neuron.decay_factor()).detach()
                                 .clone().float())
            self.register_buffer("scale", torch.as_tensor(neuron.input_scale()).detach()
                                 .clone().float())

    def forward(self, x: Tensor) -> Tensor:
        spec = self.neuron.spec
        x = x * self.scale
        v = torch.zeros_like(x[0]) if self.state_in is None else self.state_in
        outs = []
        for t in range(x.shape[0]):
            u = v + x[t]
            s = (u >= spec.v_th if spec.fire_ge else u > spec.v_th).to(x.dtype)
            r = u - spec.v_th * s if spec.soft else u * (1 - s) + spec.v_reset * s
            v = self.decay * r
            outs.append(self.neuron.output(s, u))
        if self.state_in is not None:
            self.state_out = v
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
    if exporter not in ("torchscript", "dynamo"):
        raise ExportError(f"exporter must be 'torchscript' or 'dynamo', got {exporter!r}")
    shape = _input_shape(model, input_shape)
    wrapper = _WithSpikes(onnx_twin(model), spike_outputs).eval()
    n_neurons = len(wrapper.neurons)
    names = ["logits", *(f"neuron_{i}" for i in range(n_neurons))]
    example = torch.zeros(int(T), int(batch_size), *shape)
    _export(wrapper, (example,), path, ["frames"], names, opset, exporter)
    return names


def _input_shape(model: nn.Module, input_shape: Sequence[int] | None) -> tuple[int, ...]:
    if input_shape is None:
        c, size = getattr(model, "in_channels", None), getattr(model, "input_size", None)
        if c is None or size is None:
            raise ExportError(f"cannot tell the input shape of {type(model).__name__}; pass "
                              "input_shape=(C, H, W)")
        input_shape = (c, *size)
    return tuple(int(n) for n in input_shape)


def _export(module: nn.Module, args: tuple, path, in_names: list[str], out_names: list[str],
            opset: int, exporter: str) -> None:
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks: fixed T, B
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter
            torch.onnx.export(module, args, str(path), input_names=in_names,
                              output_names=out_names, opset_version=opset,
                              dynamo=exporter == "dynamo")
    except Exception as e:  # the exporter raises many types
        raise ExportError(f"torch.onnx could not export {type(module).__name__}: "
                          f"{type(e).__name__}: {e}") from None


class _Step(nn.Module):
    """One time step with the neuron states as explicit inputs and outputs."""

    def __init__(self, twin: nn.Module, spike_outputs: bool) -> None:
        super().__init__()
        self.twin = twin
        self.neurons = [m for m in twin.modules() if isinstance(m, UnrolledNeuron)]
        self.spike_outputs = spike_outputs

    def forward(self, x: Tensor, *states: Tensor) -> tuple[Tensor, ...]:
        outs: list[Tensor] = []
        hooks = [m.register_forward_hook(lambda m, i, o: outs.append(o[0]))
                 for m in self.neurons] if self.spike_outputs else []
        for n, s in zip(self.neurons, states):
            n.state_in = s
        try:
            y = self.twin(x.unsqueeze(0))
            new = [n.state_out for n in self.neurons]
        finally:
            for h in hooks:
                h.remove()
            for n in self.neurons:
                n.state_in = n.state_out = None
        return (y[0] if y.shape[0] == 1 and y.ndim > 2 else y, *outs, *new)


#: module types whose output depends on more than the current step (no single-step form)
_NOT_STEPPABLE = (TemporalAttention, MembraneReadout)


def export_onnx_step(
    model: nn.Module, path: str | Path, *, input_shape: Sequence[int] | None = None,
    batch_size: int = 1, spike_outputs: bool = True, opset: int = 17,
) -> tuple[list[str], list[str], list[tuple[int, ...]]]:
    """Write one time step of ``model`` to ONNX with the neuron states as explicit I/O.

    Inputs: ``frame`` ``[B, *input]`` and ``state_<i>`` (the post-leak potential of neuron
    layer ``i``, zeros at rest); outputs: ``output`` (the model's output for this step — the
    per-step logits of a classifier, to be averaged over steps by the caller),
    ``neuron_<i>`` (spikes of this step, with ``spike_outputs``) and ``state_<i>_out``. A
    runtime feeds ``state_<i>_out`` back as ``state_<i>`` at the next step.

    Returns:
        ``(input names, output names, state shapes)``.

    Raises:
        ExportError: layers that need the whole sequence (temporal attention, membrane
            readout), unknown input shape, or ``torch.onnx`` failing.
    """
    for name, m in model.named_modules():
        if isinstance(m, _NOT_STEPPABLE):
            raise ExportError(f"layer {name!r} ({type(m).__name__}) needs the whole sequence; "
                              "export the unrolled network with export_onnx(..., T=...)")
    shape = _input_shape(model, input_shape)
    twin = onnx_twin(model)
    if getattr(twin, "T", None) is not None:
        twin.T = None  # the copy runs one step at a time
    step = _Step(twin, spike_outputs).eval()
    example = torch.zeros(int(batch_size), *shape)
    sizes: list[tuple[int, ...]] = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(tuple(o.shape[1:])))
             for m in step.neurons]
    with torch.no_grad():
        step.twin(example.unsqueeze(0))
    for h in hooks:
        h.remove()
    states = [torch.zeros(s) for s in sizes]
    n = len(states)
    in_names = ["frame", *(f"state_{i}" for i in range(n))]
    out_names = ["output", *(f"neuron_{i}" for i in range(n if spike_outputs else 0)),
                 *(f"state_{i}_out" for i in range(n))]
    _export(step, (example, *states), path, in_names, out_names, opset, "torchscript")
    return in_names, out_names, sizes


def run_onnx(path: str | Path, x: Tensor, **inputs: Tensor) -> dict[str, Tensor]:
    """Run an exported file with ``onnxruntime``: ``x`` is the first input (``frames`` or
    ``frame``), further inputs by name (``state_0=...``); outputs by name."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {sess.get_inputs()[0].name: x.detach().cpu().numpy()}
    feed |= {k: v.detach().cpu().numpy() for k, v in inputs.items()}
    outs = sess.run(None, feed)
    return {o.name: torch.from_numpy(v) for o, v in zip(sess.get_outputs(), outs)}
