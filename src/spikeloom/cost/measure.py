"""Measure operation counts, memory and energy of a spiking network on real batches.

:func:`measure_cost` runs a model on real batches and measures, per layer and per inference
(per sample, summed over the ``T`` time steps):

* ``dense_macs``: MACs of the dense ANN-equivalent, per step × ``T``, padded positions included
  (what a dense ANN does), from the layer type's counter (:mod:`spikeloom.cost.counters`);
* exact synaptic operations: for every non-zero input element its real fan-out (number of
  weights it is actually multiplied with); counted as accumulates (``eff_acs``) when the layer
  input is a spike tensor and as MACs (``eff_macs``) when it is analog;
* the standard approximation ``T·fr_in·MACs`` (= ``fr_in · dense_macs``) for comparison;
* neuron updates (neurons × ``T``), their adds/multiplies (default 2 + 2 per neuron per step)
  and each neuron layer's output firing rate;
* memory: parameter bytes, membrane-state bytes and activation bytes;
* energy with the 45 nm table of Horowitz (ISSCC 2014), :class:`~spikeloom.cost.Energy45nm`.

The totals use the NeuroBench names ``Dense``, ``Eff_MACs`` and ``Eff_ACs`` (Yik et al. 2023,
arXiv:2304.04640).

Which layers are counted comes from the layer walk (:func:`spikeloom.walk.iter_layers`):
layers with the role ``"synapse"`` are counted with the counter registered for their type;
layers with the role ``"neuron"`` are neurons; a layer of another role with a
:class:`~spikeloom.cost.counters.CountParts` counter (temporal attention) has its synaptic
sub-modules counted as their own rows. A synapse without a counter is listed in the notes.

Conventions and decisions (named options where there is a choice):

* **Input layout.** The model input is time-major ``[T, B, ...]``. Synaptic layers may see
  folded ``[T*B, ...]`` tensors (``TimeDistributed``), unfolded ``[T, B, ...]`` tensors
  (``nn.Linear`` on a time-major tensor) or one step ``[B, ...]`` per call (a Python loop over
  ``t``): all ops of all calls in one forward pass are summed and divided by the number of
  samples ``B``, so all three give the same counts.
* **Spike vs analog** (``spike_rule``). ``"single_value"`` (default): the input of a layer call
  is a spike tensor when all its non-zero values are equal to one constant ``c`` (``{0, 1}``
  included): such a layer can run with accumulates only, because ``W·(c·s) = (c·W)·s``.
  ``"binary"``: only ``{0, 1}`` inputs count as spikes. Anything else (LIAF outputs,
  direct-encoded analog input) is analog and costs MACs on its non-zero elements
  (zero-skipping, as in NeuroBench). The decision is made per layer call; a layer whose calls
  differ is reported as ``"mixed"``.
* **First layer** (``first_layer``). The first layer is the first synaptic layer called during
  a forward pass. ``"per_step"`` (default) counts its operations at every step. ``"once"``
  counts them once per inference when its input is identical at every time step (checked
  exactly on each batch); otherwise the batch is counted per step and a note is added.
  ``dense_macs`` is not affected.
* **ANN reference energy** (``ann_reference``). ``E_ANN = E_MAC · Σ_l MACs_l`` for one pass of
  the ANN: ``"single_pass"`` (default) uses ``e_mac · Dense / T``; ``"dense"`` uses
  ``e_mac · Dense``. Both values are always in :meth:`CostReport.to_dict`.
* **Not counted**: bias additions, batch-norm, pooling, residual additions and other
  non-synaptic modules (their parameters are counted in an ``"(other params)"`` row).
* **Firing rate of neurons**: the spikes a neuron emits as its ``"spikes"`` probe
  (:class:`spikeloom.probes.Probed`; for LIAF the spikes that reset the membrane, its output is
  analog), else the non-zero fraction of its output.
* **Precision**: each row carries one (``"fp32"`` default); per-layer overrides
  (``precision={"conv1": "int8"}``), else the precision of the layer type's counter, else the
  energy model's. A row's energy uses that precision's entries of the 45 nm table.
* **Optional energy terms** (off by default): neuron updates and memory accesses, see
  :class:`~spikeloom.cost.Energy45nm`. Every report states which terms are included.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor, nn

from ..probes import Probed
from ..walk import iter_layers
from .counters import PRECISIONS, CountParts, SynapseCounter, counter_of
from .energy import Energy45nm, NeuronOpCount
from .report import CostReport, LayerCost

__all__ = ["measure_cost"]


class _Synapse(NamedTuple):
    name: str
    module: nn.Module
    counter: SynapseCounter


class _Plan(NamedTuple):
    """What to hook: counted synapses, neurons (name, module) and uncounted synapse names."""

    synapses: list[_Synapse]
    neurons: list[tuple[str, nn.Module]]
    uncounted: list[str]


def _plan(model: nn.Module) -> _Plan:
    """Walk ``model`` by layer role (see the module docstring)."""
    plan = _Plan([], [], [])
    for layer in iter_layers(model):
        name = layer.name or "(model)"
        counter = counter_of(layer.module)
        if layer.role == "neuron":
            plan.neurons.append((name, layer.module))
        elif layer.role == "synapse":
            if isinstance(counter, SynapseCounter):
                plan.synapses.append(_Synapse(name, layer.module, counter))
            else:
                plan.uncounted.append(name)
        elif isinstance(counter, CountParts):
            for sub, m in counter.parts(layer.module):
                c = counter_of(m)
                if isinstance(c, SynapseCounter):
                    plan.synapses.append(_Synapse(f"{layer.name}.{sub}" if layer.name else sub,
                                                  m, c))
    return plan


class _SynAcc:
    """Counts of one synapse summed over all calls and batches."""

    def __init__(self, order: int) -> None:
        self.order = order
        self.dense = self.eff_macs = self.eff_acs = 0
        self.nnz = self.numel = self.out_numel = self.out_elsize = 0
        self.calls = self.once = 0
        self.kinds: set[str] = set()
        self.cache: dict[Any, Any] = {}


class _NeuAcc:
    """Counts of one neuron layer summed over all calls and batches."""

    def __init__(self, order: int) -> None:
        self.order = order
        self.elements = self.out_nonzero = self.probe_fired = 0
        self.probed = False
        self.state_elsize = self.out_elsize = self.calls = 0

    def fired(self) -> int:
        """Spikes: the emitted ``"spikes"`` probe if any, else the non-zero outputs."""
        return self.probe_fired if self.probed else self.out_nonzero


def _is_spike(x: Tensor, nz: Tensor, rule: str) -> bool:
    vals = x[nz]
    if vals.numel() == 0:
        return True
    if rule == "binary":
        return bool((vals == 1).all())
    return bool((vals == vals[0]).all())


def _first_tensor(obj: Any) -> Tensor | None:
    if torch.is_tensor(obj):
        return obj
    if isinstance(obj, (tuple, list)) and obj and torch.is_tensor(obj[0]):
        return obj[0]
    return None


class _Recorder:
    """Forward and probe hooks accumulating counts over all batches of one measurement."""

    def __init__(self, plan: _Plan, first_layer: str, spike_rule: str) -> None:
        self.counters = {id(s.module): s.counter for s in plan.synapses}
        self.first_layer, self.spike_rule = first_layer, spike_rule
        self.syn: dict[int, _SynAcc] = {}
        self.neu: dict[int, _NeuAcc] = {}
        self.order = 0
        self.T = self.B = 0
        self.first_seen = self.once_applied = False
        self.once_fail: list[str] = []

    def start_batch(self, T: int, B: int) -> None:
        self.T, self.B = T, B
        self.first_seen = self.once_applied = False

    def _acc(self, table: dict, m: nn.Module, make: type) -> Any:
        acc = table.get(id(m))
        if acc is None:
            acc = table[id(m)] = make(self.order)
            self.order += 1
        return acc

    def _first_layer_input(self, m: nn.Module, x: Tensor, acc: _SynAcc) -> Tensor:
        """``x``, or one step of it under ``first_layer="once"`` for the first synapse."""
        if self.first_seen:
            return x
        self.first_seen = True
        if self.first_layer != "once":
            return x
        one, why = self.counters[id(m)].step_input(m, x, self.T, self.B)
        if one is None:
            self.once_fail.append(why)
            return x
        acc.once += 1
        self.once_applied = True
        return one

    def synapse_hook(self, m: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
        x = args[0] if args else kwargs.get("input")
        y = _first_tensor(out)
        if not torch.is_tensor(x) or y is None:
            return
        counter = self.counters[id(m)]
        acc = self._acc(self.syn, m, _SynAcc)
        acc.calls += 1
        extra = tuple(args[1:]) if counter.call_args else ()
        acc.dense += counter.dense_macs(m, x, y, *extra)
        x_count = self._first_layer_input(m, x, acc)
        nz = x_count != 0
        y_count = y if x_count is x else counter.step_output(m, y, self.T)
        ops = counter.synops(m, nz, y_count, acc.cache, *extra)
        ops, inner_macs = ops if isinstance(ops, tuple) else (ops, 0)
        kind = "spike" if _is_spike(x_count, nz, self.spike_rule) else "analog"
        if kind == "spike":
            acc.eff_acs += int(ops)
        else:
            acc.eff_macs += int(ops)
        acc.eff_macs += int(inner_macs)
        acc.kinds.add(kind)
        acc.nnz += int(nz.sum()) if x_count is x else int((x != 0).sum())
        acc.numel += int(x.numel())
        acc.out_numel += int(y.numel())
        acc.out_elsize = y.element_size()

    def neuron_hook(self, m: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
        y = _first_tensor(out)
        if y is None:
            return
        x = args[0] if args else next((v for v in kwargs.values() if torch.is_tensor(v)), y)
        acc = self._acc(self.neu, m, _NeuAcc)
        acc.calls += 1
        acc.elements += int(y.numel())
        acc.out_nonzero += int(torch.count_nonzero(y))
        acc.out_elsize = y.element_size()
        acc.state_elsize = x.element_size() if torch.is_tensor(x) else y.element_size()

    def probe_hook(self, m: Any, name: str, value: Tensor) -> None:
        if name == "spikes":  # the spikes that reset the membrane (LIAF: not its output)
            acc = self._acc(self.neu, m, _NeuAcc)
            acc.probe_fired += int(torch.count_nonzero(value))
            acc.probed = True

    def attach(self, plan: _Plan) -> list[Any]:
        """Register all hooks; returns the handles."""
        handles = [
            s.module.register_forward_hook(self.synapse_hook, with_kwargs=True)
            for s in plan.synapses
        ]
        for _, m in plan.neurons:
            handles.append(m.register_forward_hook(self.neuron_hook, with_kwargs=True))
            if isinstance(m, Probed):
                handles.append(m.register_probe_hook(self.probe_hook))
        return handles


class _Run(NamedTuple):
    T: int
    samples: int
    batches: int
    once_batches: int


def _batch_input(batch: Any, index: int, T_seen: int | None) -> Tensor:
    """The input ``x`` ``[T, B, ...]`` of one batch, validated."""
    x = _first_tensor(batch) if isinstance(batch, (tuple, list)) else batch
    if not torch.is_tensor(x):
        raise TypeError(
            "each batch must be a tensor [T, B, ...] or a tuple (x, y, ...) whose first element "
            f"is one; got {type(batch).__name__}"
        )
    if x.ndim < 3:
        raise ValueError(
            f"expected a time-major input [T, B, ...] with at least 3 dims, got shape "
            f"{tuple(x.shape)}; add the time axis first (x.unsqueeze(0) for T=1)"
        )
    if T_seen is not None and int(x.shape[0]) != T_seen:
        raise ValueError(
            f"all batches must have the same number of time steps: got T={int(x.shape[0])} "
            f"after T={T_seen}; measure each T separately"
        )
    if int(x.shape[1]) < 1:
        raise ValueError(f"batch {index} is empty (B=0)")
    return x


def _run(
    model: nn.Module, batches: Iterable[Any], rec: _Recorder, plan: _Plan, max_batches: int | None
) -> _Run:
    """Run the batches in eval mode without gradients; hooks and training flags restored."""
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else None
    training = {id(m): m.training for m in model.modules()}
    T_seen: int | None = None
    samples = nb = once_batches = 0
    handles = rec.attach(plan)
    try:
        model.eval()
        with torch.no_grad():
            for batch in batches:
                if max_batches is not None and nb >= max_batches:
                    break
                x = _batch_input(batch, nb, T_seen)
                T_seen, B = int(x.shape[0]), int(x.shape[1])
                if device is not None and x.device != device:
                    x = x.to(device)
                rec.start_batch(T_seen, B)
                model(x)
                once_batches += int(rec.once_applied)
                samples += B
                nb += 1
    finally:
        for h in handles:
            h.remove()
        # restore every module's own flag (model.train(mode) would overwrite the children)
        for m in model.modules():
            m.training = training.get(id(m), m.training)
    if nb == 0 or T_seen is None:
        raise ValueError("measure_cost needs at least one batch; `batches` was empty")
    return _Run(T_seen, samples, nb, once_batches)


def _module_params(m: nn.Module, seen: set[int], recurse: bool) -> tuple[int, int]:
    n = nbytes = 0
    for p in m.parameters(recurse=recurse):
        if id(p) not in seen:
            seen.add(id(p))
            n += p.numel()
            nbytes += p.numel() * p.element_size()
    return n, nbytes


def _synapse_row(
    s: _Synapse, acc: _SynAcc, run: _Run, seen: set[int], precision: str
) -> LayerCost:
    n_par, n_bytes = _module_params(s.module, seen, recurse=False)
    kind = next(iter(acc.kinds)) if len(acc.kinds) == 1 else ("mixed" if acc.kinds else "-")
    dense = acc.dense / run.samples
    fr = acc.nnz / acc.numel if acc.numel else 0.0
    return LayerCost(
        name=s.name,
        type=type(s.module).__name__,
        role="synapse",
        input_kind=kind,
        fr_in=fr,
        dense_macs=dense,
        eff_macs=acc.eff_macs / run.samples,
        eff_acs=acc.eff_acs / run.samples,
        approx_synops=fr * dense,
        params=n_par,
        param_bytes=n_bytes,
        act_bytes=acc.out_numel * acc.out_elsize / (run.samples * run.T),
        calls=acc.calls,
        first_layer_once=acc.once > 0,
        precision=precision,
    )


def _neuron_row(
    name: str, m: nn.Module, acc: _NeuAcc, run: _Run, ops: NeuronOpCount, seen: set[int],
    precision: str,
) -> LayerCost:
    n_par, n_bytes = _module_params(m, seen, recurse=True)
    updates = acc.elements / run.samples
    per_step = updates / run.T
    return LayerCost(
        name=name,
        type=type(m).__name__,
        role="neuron",
        neurons=per_step,
        neuron_updates=updates,
        neuron_adds=updates * ops.adds,
        neuron_mults=updates * ops.mults,
        fr_out=acc.fired() / acc.elements if acc.elements else 0.0,
        params=n_par,
        param_bytes=n_bytes,
        state_bytes=per_step * acc.state_elsize,
        act_bytes=per_step * acc.out_elsize,
        calls=acc.calls,
        precision=precision,
    )


def _rows(
    model: nn.Module, plan: _Plan, rec: _Recorder, run: _Run, ops: NeuronOpCount,
    precision: dict[str, str],
) -> list[LayerCost]:
    """Rows in the order of the first call, then the ``"(other params)"`` row.

    ``precision`` maps every counted row's name to its precision.
    """
    seen: set[int] = set()
    pending: list[tuple[int, LayerCost]] = []
    for s in plan.synapses:
        if id(s.module) in rec.syn:
            acc = rec.syn[id(s.module)]
            row = _synapse_row(s, acc, run, seen, precision[s.name])
            pending.append((acc.order, row))
    for name, m in plan.neurons:
        if id(m) in rec.neu:
            acc = rec.neu[id(m)]
            row = _neuron_row(name, m, acc, run, ops, seen, precision[name])
            pending.append((acc.order, row))
    rows = [r for _, r in sorted(pending, key=lambda p: p[0])]
    n_other, b_other = _module_params(model, seen, recurse=True)
    if n_other:
        rows.append(LayerCost(name="(other params)", type="-", role="other", params=n_other,
                              param_bytes=b_other, precision=precision["(other params)"]))
    return rows


def _precisions(plan: _Plan, overrides: Mapping[str, str] | None, default: str) -> dict[str, str]:
    """Precision of every row: the per-layer override, else the counter's, else ``default``.

    Raises:
        ValueError: an override naming no synapse or neuron of the model, or an unknown
            precision.
    """
    out = {name: default for name, _ in plan.neurons}
    out["(other params)"] = default
    for s in plan.synapses:
        out[s.name] = s.counter.precision_of(s.module) or default
    for name, m in [*plan.neurons, *((s.name, s.module) for s in plan.synapses)]:
        if getattr(m, "cost_precision", None) in PRECISIONS:  # set by spikeloom.compress
            out[name] = m.cost_precision
    for name, p in (overrides or {}).items():
        if name not in out or name == "(other params)":
            known = ", ".join(n for n in out if n != "(other params)")
            raise ValueError(f"precision: no synapse or neuron named {name!r} (layers: {known})")
        if p not in PRECISIONS:
            raise ValueError(f"precision of {name!r} must be one of {PRECISIONS}, got {p!r}")
        out[name] = p
    return out


def _param_bytes_by_dtype(model: nn.Module) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in {id(p): p for p in model.parameters()}.values():
        key = str(p.dtype).replace("torch.", "")
        out[key] = out.get(key, 0) + p.numel() * p.element_size()
    return out


def _notes(plan: _Plan, rec: _Recorder, run: _Run, first_layer: str) -> list[str]:
    notes: list[str] = []
    if plan.uncounted:
        notes.append("synapse layers without a cost counter (not counted): "
                     + ", ".join(plan.uncounted))
    unused = [s.name for s in plan.synapses if id(s.module) not in rec.syn]
    if unused:
        notes.append(f"synaptic layers never called (not counted): {', '.join(unused)}")
    if not rec.syn:
        notes.append("no synaptic layer (Conv/Linear) was called: Dense/Eff_MACs/Eff_ACs are 0")
    if first_layer == "once" and run.once_batches < run.batches:
        reasons = "; ".join(sorted(set(rec.once_fail)))
        notes.append(
            f"first_layer='once' applied in {run.once_batches}/{run.batches} batches; other "
            f"batches counted per step ({reasons})"
        )
    return notes


def _check_options(
    energy: Any, first_layer: str, spike_rule: str, ann_reference: str, max_batches: Any
) -> None:
    if not isinstance(energy, Energy45nm):
        raise TypeError(f"energy must be an Energy45nm, got {type(energy).__name__}")
    if first_layer not in ("per_step", "once"):
        raise ValueError(f"first_layer must be 'per_step' or 'once', got {first_layer!r}")
    if spike_rule not in ("single_value", "binary"):
        raise ValueError(f"spike_rule must be 'single_value' or 'binary', got {spike_rule!r}")
    if ann_reference not in ("single_pass", "dense"):
        raise ValueError(f"ann_reference must be 'single_pass' or 'dense', got {ann_reference!r}")
    if max_batches is not None and (not isinstance(max_batches, int) or max_batches < 1):
        raise ValueError(f"max_batches must be a positive int or None, got {max_batches!r}")


def measure_cost(
    model: nn.Module,
    batches: Iterable[Any],
    *,
    energy: Energy45nm | None = None,
    first_layer: Literal["per_step", "once"] = "per_step",
    max_batches: int | None = None,
    spike_rule: Literal["single_value", "binary"] = "single_value",
    neuron_op_count: NeuronOpCount | None = None,
    ann_reference: Literal["single_pass", "dense"] = "single_pass",
    precision: Mapping[str, str] | None = None,
) -> CostReport:
    """Measure operation counts, memory and energy of ``model`` on real batches.

    The model runs in eval mode under ``torch.no_grad()``; every synapse with a registered
    counter (``nn.Linear``, ``nn.Conv1d/2d/3d``, ``nn.ConvTranspose1d/2d/3d`` and registered
    types) and every neuron (role ``"neuron"``) is hooked. The training flags are restored and
    all hooks removed afterwards (also when the forward raises).

    Args:
        model: network taking a time-major input ``[T, B, ...]``.
        batches: iterable of input tensors ``[T, B, ...]`` or of ``(x, y, ...)`` tuples/lists
            (only ``x`` is used), moved to the device of the model's parameters. ``T`` must be
            the same for all batches.
        energy: energy model; default ``Energy45nm()`` (e_mac 4.6 pJ, e_ac 0.9 pJ, no neuron or
            memory term).
        first_layer: ``"per_step"`` or ``"once"`` (see the module docstring).
        max_batches: stop after this many batches (``None``: all).
        spike_rule: ``"single_value"`` (``{0, c}`` inputs are spikes) or ``"binary"`` (only
            ``{0, 1}``).
        neuron_op_count: operations per neuron per step, default 2 adds + 2 multiplies.
        ann_reference: ``"single_pass"`` (``E_ANN = e_mac·Dense/T``) or ``"dense"``
            (``E_ANN = e_mac·Dense``).
        precision: per-layer precision overrides ``{"layer.name": "int8"}`` (names as in the
            report rows; one of :data:`~spikeloom.cost.PRECISIONS`). Other rows take the
            precision of their type's counter, else ``energy.precision`` (``"fp32"`` by
            default). A row's energy uses its precision's table entries; the ANN reference
            stays at ``energy.precision``.

    Returns:
        :class:`CostReport`, values per inference (mean over samples, summed over ``T``).

    Raises:
        ValueError: bad option, no batch, input not ``[T, B, ...]``, ``T`` varying across batches.
        TypeError: a batch that is not a tensor or a tuple starting with a tensor.
    """
    energy = Energy45nm() if energy is None else energy
    neuron_op_count = NeuronOpCount() if neuron_op_count is None else neuron_op_count
    _check_options(energy, first_layer, spike_rule, ann_reference, max_batches)
    plan = _plan(model)
    precisions = _precisions(plan, precision, energy.precision)
    rec = _Recorder(plan, first_layer, spike_rule)
    run = _run(model, batches, rec, plan, max_batches)
    if not rec.syn:
        warnings.warn(
            "measure_cost: no nn.Linear/nn.Conv*/nn.ConvTranspose* (or other counted synapse) "
            "layer ran in the forward pass; the operation counts are all zero",
            stacklevel=2,
        )
    return CostReport(
        rows=_rows(model, plan, rec, run, neuron_op_count, precisions),
        T=run.T,
        samples=run.samples,
        batches=run.batches,
        energy=energy,
        first_layer=first_layer,
        first_layer_once_batches=run.once_batches,
        spike_rule=spike_rule,
        ann_reference=ann_reference,
        param_bytes_by_dtype=_param_bytes_by_dtype(model),
        notes=_notes(plan, rec, run, first_layer),
    )
