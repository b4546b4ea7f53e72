"""Hardware-cost report for spiking networks (spec §10, neuron-update convention of §5).

:func:`measure_cost` runs a model on real batches and measures, per layer and per inference
(i.e. per sample, summed over the ``T`` time steps):

* ``dense_macs``: MACs of the dense ANN-equivalent, per step × ``T``
  (conv: ``Cout·Hout·Wout·Cin·k²/groups``; FC: ``in·out``; transposed conv:
  ``Cin·Hin·Win·k²·Cout/groups``), padded positions included (this is what a dense ANN does);
* exact synaptic operations: for every non-zero input element its real fan-out (number of
  weights it is actually multiplied with, boundary/padding/stride/dilation/groups aware);
  counted as accumulates (``eff_acs``) when the layer input is a spike tensor and as MACs
  (``eff_macs``) when it is analog;
* the standard approximation ``T·fr_in·MACs`` (= ``fr_in · dense_macs``) for comparison;
* neuron updates (neurons × ``T``), their adds/multiplies (default 2 + 2 per neuron per step,
  spec §5) and each neuron layer's output firing rate;
* memory: parameter bytes, membrane-state bytes and activation bytes;
* energy with the 45 nm table of spec §10.2 (:class:`Energy45nm`).

The totals use the NeuroBench field names ``Dense``, ``Eff_MACs`` and ``Eff_ACs``.

Conventions and decisions (named options where the spec leaves a choice):

* **Input layout.** The model input is time-major ``[T, B, ...]``. Synaptic layers may see folded
  ``[T*B, ...]`` tensors (``TimeDistributed``), unfolded ``[T, B, ...]`` tensors (``nn.Linear``
  on a time-major tensor) or one step ``[B, ...]`` per call (a Python loop over ``t``): all ops
  of all calls in one forward pass are summed and divided by the number of samples ``B``, so all
  three give the same counts.
* **Spike vs analog** (``spike_rule``). ``"single_value"`` (default): the input of a layer call
  is a spike tensor when all its non-zero values are equal to one constant ``c`` (``{0, 1}``
  included). Such a layer can be run with accumulates only, because ``W·(c·s) = (c·W)·s`` (fold
  ``c`` into the weights). ``"binary"``: only ``{0, 1}`` inputs count as spikes. Anything else
  (e.g. LIAF outputs, direct-encoded analog input) is analog and costs MACs on its non-zero
  elements (zero-skipping, as in NeuroBench). The decision is made per layer call; a layer whose
  calls differ is reported as ``"mixed"``.
* **First layer** (``first_layer``). The first layer is the first synaptic layer called during a
  forward pass. ``"per_step"`` (default) counts its operations at every step (``T·MACs`` for a
  dense analog input). ``"once"`` counts them once per inference when its input is identical at
  every time step (checked exactly with ``torch.equal`` on each batch: the input must be
  ``[T*B, ...]`` or ``[T, B, ...]``); otherwise the batch is counted per step and a note is
  added to the report. ``dense_macs`` is not affected (always per step × ``T``).
* **ANN reference energy** (``ann_reference``). Spec §10.2 defines
  ``E_ANN = E_MAC · Σ_l MACs_l`` for one pass of the ANN (an ANN does not repeat over ``T``):
  ``"single_pass"`` (default) uses ``e_mac · Dense / T``. ``"dense"`` uses ``e_mac · Dense``
  (the dense network run at all ``T`` steps). Both values are always in :meth:`CostReport.to_dict`.
* **Not counted**: bias additions, batch-norm, pooling, attention and other non-synaptic modules
  (their parameters are counted in an ``"(other params)"`` row), residual additions.
* **Memory-access term** (optional, off by default): ``e_mem`` per access with
  ``mem_per_synop`` accesses per synaptic operation (weight read) and ``mem_per_neuron_update``
  accesses per neuron update (membrane read + write). This is a crude model; say so when you
  publish numbers from it. The ANN gets ``mem_per_synop`` accesses per MAC.
* **Neuron-update term** (optional, off by default): ``adds·e_neuron_add + mults·e_neuron_mult``
  per neuron update. Neurons are modules with an ``emits_spikes`` attribute
  (``spikeloom.neurons.BaseNeuron``); their outputs are ``[T, B, ...]``.

Every report states which energy terms are included (:attr:`CostReport.energy_terms`).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from .atomic import atomic_write_text
from .layers import TemporalAttention
from .probes import Probed
from .walk import iter_layers

__all__ = [
    "CostReport",
    "Energy45nm",
    "LayerCost",
    "NeuronOpCount",
    "SYNAPTIC_TYPES",
    "measure_cost",
]

_CONV_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONVT_TYPES: tuple[type[nn.Module], ...] = (
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
#: Module types whose operations are counted as synaptic operations.
SYNAPTIC_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, *_CONV_TYPES, *_CONVT_TYPES)

_FORMAT = "spikeloom.cost/1"


# --------------------------------------------------------------------------------------------
# Energy model
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Energy45nm:
    """Energy per operation at 45 nm, 0.9 V (Horowitz, ISSCC 2014; spec §10.2). Joules.

    ``e_mac`` / ``e_ac`` are the energies used for synaptic MACs and accumulates; the defaults are
    the common SNN convention ``E_MAC = 4.6 pJ`` (32-bit FP mult 3.7 + add 0.9) and
    ``E_AC = 0.9 pJ`` (32-bit FP add). :meth:`for_precision` builds the same pair from the table
    for fp16 / int8 / int32. The remaining table entries are kept for reference and for the
    optional terms:

    * neuron updates (``include_neuron``, off by default): per update
      ``adds·e_neuron_add + mults·e_neuron_mult`` (op counts from :class:`NeuronOpCount`);
    * memory accesses (``include_memory``, off by default): ``e_mem`` per access (3.12 pJ as used
      by several later works), ``mem_per_synop`` accesses per synaptic operation and
      ``mem_per_neuron_update`` per neuron update.

    The SRAM/DRAM entries are per 64-bit read; the DRAM figure is a range (min/max).
    """

    e_mac: float = 4.6e-12
    e_ac: float = 0.9e-12
    int8_add: float = 0.03e-12
    int32_add: float = 0.1e-12
    int8_mult: float = 0.2e-12
    int32_mult: float = 3.1e-12
    fp16_add: float = 0.4e-12
    fp32_add: float = 0.9e-12
    fp16_mult: float = 1.1e-12
    fp32_mult: float = 3.7e-12
    sram_read64_8kb: float = 10e-12
    sram_read64_32kb: float = 20e-12
    sram_read64_1mb: float = 100e-12
    dram_read64_min: float = 1.3e-9
    dram_read64_max: float = 2.6e-9
    include_neuron: bool = False
    e_neuron_add: float = 0.9e-12
    e_neuron_mult: float = 3.7e-12
    include_memory: bool = False
    e_mem: float = 3.12e-12
    mem_per_synop: float = 1.0
    mem_per_neuron_update: float = 2.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type in ("bool", bool):
                if not isinstance(v, bool):
                    raise TypeError(f"Energy45nm.{f.name} must be a bool, got {v!r}")
                continue
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise ValueError(f"Energy45nm.{f.name} must be a finite number, got {v!r}")
            if v < 0:
                raise ValueError(f"Energy45nm.{f.name} must be >= 0, got {v!r}")

    @classmethod
    def for_precision(
        cls, precision: Literal["fp32", "fp16", "int32", "int8"] = "fp32", **overrides: Any
    ) -> Energy45nm:
        """Energy model with ``e_mac = mult + add`` and ``e_ac = add`` of one precision.

        The neuron-update energies use the same precision. ``overrides`` replace any field.
        ``for_precision("fp32")`` equals the default ``Energy45nm()``.
        """
        base = cls()
        table = {
            "fp32": (base.fp32_add, base.fp32_mult),
            "fp16": (base.fp16_add, base.fp16_mult),
            "int32": (base.int32_add, base.int32_mult),
            "int8": (base.int8_add, base.int8_mult),
        }
        if precision not in table:
            raise ValueError(f"precision must be one of {sorted(table)}, got {precision!r}")
        add, mult = table[precision]
        kw: dict[str, Any] = dict(e_mac=add + mult, e_ac=add, e_neuron_add=add, e_neuron_mult=mult)
        kw.update(overrides)
        return replace(base, **kw)

    def terms(self) -> list[str]:
        """Names of the terms included in ``E_SNN``."""
        out = ["synaptic MACs (e_mac)", "synaptic ACs (e_ac)"]
        if self.include_neuron:
            out.append("neuron updates (e_neuron_add/e_neuron_mult)")
        if self.include_memory:
            out.append("memory accesses (e_mem)")
        return out

    def excluded_terms(self) -> list[str]:
        """Names of the optional terms left out of ``E_SNN``."""
        out = []
        if not self.include_neuron:
            out.append("neuron updates")
        if not self.include_memory:
            out.append("memory accesses")
        return out


@dataclass(frozen=True)
class NeuronOpCount:
    """Operations per neuron per time step (spec §5: 2 adds + 2 multiplies).

    Adds: integration and threshold compare; multiplies: leak (decay) and reset.
    """

    adds: float = 2.0
    mults: float = 2.0

    def __post_init__(self) -> None:
        for name in ("adds", "mults"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"NeuronOpCount.{name} must be a finite number >= 0, got {v!r}")


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
@dataclass
class LayerCost:
    """One row of a :class:`CostReport`. Values are per inference (one sample, all T steps).

    Attributes:
        name: qualified module name in the model (``"(model)"`` for the root).
        type: module class name.
        role: ``"synapse"`` (Conv/Linear), ``"neuron"`` or ``"other"`` (remaining parameters).
        input_kind: ``"spike"``, ``"analog"``, ``"mixed"`` (synapses) or ``"-"``.
        fr_in: fraction of non-zero input elements (synapses), ``None`` otherwise.
        dense_macs: dense ANN-equivalent MACs, per step × T.
        eff_macs: exact MACs on non-zero analog inputs.
        eff_acs: exact accumulates triggered by spikes.
        approx_synops: ``fr_in · dense_macs`` (= ``T·fr·MACs``).
        neurons: neurons per time step (neuron rows).
        neuron_updates: ``neurons · T``.
        neuron_adds, neuron_mults: operations of the neuron updates.
        fr_out: output firing rate (spikes per neuron per step) of neuron rows.
        params: number of parameters attributed to this row.
        param_bytes: their size in bytes.
        state_bytes: membrane-state bytes (one value per neuron, activation dtype).
        act_bytes: output activation bytes of one time step.
        calls: number of forward calls seen while measuring (all batches).
        first_layer_once: the first-layer "once" rule was applied to this row.
        energy_j: energy of this row in joules under the report's energy model.
    """

    name: str
    type: str
    role: str
    input_kind: str = "-"
    fr_in: float | None = None
    dense_macs: float = 0.0
    eff_macs: float = 0.0
    eff_acs: float = 0.0
    approx_synops: float = 0.0
    neurons: float = 0.0
    neuron_updates: float = 0.0
    neuron_adds: float = 0.0
    neuron_mults: float = 0.0
    fr_out: float | None = None
    params: int = 0
    param_bytes: int = 0
    state_bytes: float = 0.0
    act_bytes: float = 0.0
    calls: int = 0
    first_layer_once: bool = False
    energy_j: float = 0.0

    @property
    def synops(self) -> float:
        """Exact synaptic operations (``eff_macs + eff_acs``)."""
        return self.eff_macs + self.eff_acs

    @property
    def neuron_ops(self) -> float:
        """Neuron-update operations (adds + multiplies)."""
        return self.neuron_adds + self.neuron_mults


@dataclass
class CostReport:
    """Result of :func:`measure_cost`: per-layer rows, totals and energy.

    All numbers are per inference: averaged over the measured samples and summed over the ``T``
    time steps. Energies are derived from the counts and ``energy``; use :meth:`with_energy` to
    re-evaluate the same counts under another energy model.
    """

    rows: list[LayerCost]
    T: int
    samples: int
    batches: int
    energy: Energy45nm = field(default_factory=Energy45nm)
    first_layer: str = "per_step"
    first_layer_once_batches: int = 0
    spike_rule: str = "single_value"
    ann_reference: str = "single_pass"
    param_bytes_by_dtype: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.ann_reference not in ("single_pass", "dense"):
            raise ValueError(
                f"ann_reference must be 'single_pass' or 'dense', got {self.ann_reference!r}"
            )
        if self.T < 1 or self.samples < 1:
            raise ValueError(f"T and samples must be >= 1, got T={self.T}, samples={self.samples}")
        self.rows = [replace(r, energy_j=self._row_energy(r)) for r in self.rows]

    # ---- energy -----------------------------------------------------------------------------
    def _row_energy(self, r: LayerCost) -> float:
        e = self.energy
        out = e.e_mac * r.eff_macs + e.e_ac * r.eff_acs
        if e.include_neuron:
            out += e.e_neuron_add * r.neuron_adds + e.e_neuron_mult * r.neuron_mults
        if e.include_memory:
            out += e.e_mem * (
                e.mem_per_synop * (r.eff_macs + r.eff_acs)
                + e.mem_per_neuron_update * r.neuron_updates
            )
        return out

    def with_energy(self, energy: Energy45nm) -> CostReport:
        """Same counts, energies recomputed with ``energy``."""
        return replace(self, energy=energy, rows=list(self.rows))

    @property
    def energy_terms(self) -> list[str]:
        """Terms included in ``E_SNN`` (and, for memory, in ``E_ANN``)."""
        return self.energy.terms()

    @property
    def snn_energy(self) -> float:
        """``E_SNN`` in joules per inference: ``e_mac·Eff_MACs + e_ac·Eff_ACs`` (+ options)."""
        return float(sum(r.energy_j for r in self.rows))

    def _ann_energy(self, macs: float) -> float:
        e = self.energy
        out = e.e_mac * macs
        if e.include_memory:
            out += e.e_mem * e.mem_per_synop * macs
        return out

    @property
    def ann_energy(self) -> float:
        """``E_ANN`` in joules: ``e_mac·Dense/T`` (``single_pass``) or ``e_mac·Dense``."""
        t = self.totals
        macs = t["Dense"] if self.ann_reference == "dense" else t["Dense_per_step"]
        return self._ann_energy(macs)

    @property
    def ratio(self) -> float:
        """``E_ANN / E_SNN`` (> 1: the SNN is cheaper); ``inf`` when ``E_SNN`` is 0."""
        snn = self.snn_energy
        ann = self.ann_energy
        if snn == 0.0:
            return math.inf if ann > 0 else math.nan
        return ann / snn

    # ---- totals -----------------------------------------------------------------------------
    @property
    def totals(self) -> dict[str, Any]:
        """Totals per inference (NeuroBench names ``Dense``, ``Eff_MACs``, ``Eff_ACs``)."""
        syn = [r for r in self.rows if r.role == "synapse"]
        neu = [r for r in self.rows if r.role == "neuron"]
        dense = float(sum(r.dense_macs for r in syn))
        eff_macs = float(sum(r.eff_macs for r in syn))
        eff_acs = float(sum(r.eff_acs for r in syn))
        updates = float(sum(r.neuron_updates for r in neu))
        return {
            "Dense": dense,
            "Eff_MACs": eff_macs,
            "Eff_ACs": eff_acs,
            "SynOps": eff_macs + eff_acs,
            "approx_SynOps": float(sum(r.approx_synops for r in syn)),
            "Dense_per_step": dense / self.T,
            "neurons": float(sum(r.neurons for r in neu)),
            "neuron_updates": updates,
            "neuron_ops": float(sum(r.neuron_ops for r in neu)),
            "params": int(sum(r.params for r in self.rows)),
            "param_bytes": int(sum(r.param_bytes for r in self.rows)),
            "state_bytes": float(sum(r.state_bytes for r in self.rows)),
            "act_bytes": float(sum(r.act_bytes for r in self.rows)),
            "memory_accesses": self.energy.mem_per_synop * (eff_macs + eff_acs)
            + self.energy.mem_per_neuron_update * updates,
        }

    @property
    def Dense(self) -> float:  # noqa: N802 (NeuroBench name)
        return float(self.totals["Dense"])

    @property
    def Eff_MACs(self) -> float:  # noqa: N802
        return float(self.totals["Eff_MACs"])

    @property
    def Eff_ACs(self) -> float:  # noqa: N802
        return float(self.totals["Eff_ACs"])

    # ---- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (counts, totals, energy, energy model, meta)."""
        t = self.totals
        ratio = self.ratio
        return {
            "format": _FORMAT,
            "meta": {
                "T": self.T,
                "samples": self.samples,
                "batches": self.batches,
                "first_layer": self.first_layer,
                "first_layer_once_batches": self.first_layer_once_batches,
                "spike_rule": self.spike_rule,
                "ann_reference": self.ann_reference,
                "per": "inference (mean over samples, summed over T steps)",
                "notes": list(self.notes),
            },
            "energy_model": asdict(self.energy),
            "rows": [asdict(r) for r in self.rows],
            "totals": t,
            "param_bytes_by_dtype": dict(self.param_bytes_by_dtype),
            "energy": {
                "E_SNN_J": self.snn_energy,
                "E_ANN_J": self.ann_energy,
                "E_ANN_single_pass_J": self._ann_energy(t["Dense_per_step"]),
                "E_ANN_dense_J": self._ann_energy(t["Dense"]),
                "ratio": ratio if math.isfinite(ratio) else None,
                "terms_included": self.energy_terms,
                "terms_excluded": self.energy.excluded_terms(),
            },
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CostReport:
        """Rebuild a report written by :meth:`to_dict`."""
        if d.get("format") != _FORMAT:
            raise ValueError(
                f"not a spikeloom cost report (format {d.get('format')!r}, expected {_FORMAT!r})"
            )
        m = d["meta"]
        return cls(
            rows=[LayerCost(**r) for r in d["rows"]],
            T=int(m["T"]),
            samples=int(m["samples"]),
            batches=int(m["batches"]),
            energy=Energy45nm(**d["energy_model"]),
            first_layer=m["first_layer"],
            first_layer_once_batches=int(m["first_layer_once_batches"]),
            spike_rule=m["spike_rule"],
            ann_reference=m["ann_reference"],
            param_bytes_by_dtype={k: int(v) for k, v in d["param_bytes_by_dtype"].items()},
            notes=list(m.get("notes", [])),
        )

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON atomically (temporary file + ``os.replace``)."""
        text = json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
        return atomic_write_text(path, text)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> CostReport:
        """Read a report written by :meth:`to_json`."""
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    # ---- text -------------------------------------------------------------------------------
    def table(self) -> str:
        """Fixed-width text table of the rows, totals and energy summary."""
        cols = [
            ("layer", 28, "<"),
            ("type", 15, "<"),
            ("in", 6, "<"),
            ("fr_in", 6, ">"),
            ("Dense", 10, ">"),
            ("Eff_MACs", 10, ">"),
            ("Eff_ACs", 10, ">"),
            ("T*fr*MACs", 10, ">"),
            ("neurons", 9, ">"),
            ("fr_out", 6, ">"),
            ("params", 9, ">"),
            ("param_B", 9, ">"),
            ("state_B", 9, ">"),
            ("energy", 10, ">"),
        ]

        def line(values: Sequence[str]) -> str:
            parts = []
            for (_, w, a), v in zip(cols, values):
                v = v if len(v) <= w else v[: w - 1] + "~"
                parts.append(f"{v:{a}{w}}")
            return " ".join(parts)

        def rate(v: float | None) -> str:
            return "-" if v is None else f"{v:.3f}"

        out = [line([c[0] for c in cols])]
        out.append("-" * len(out[0]))
        for r in self.rows:
            syn = r.role == "synapse"
            out.append(
                line(
                    [
                        r.name,
                        r.type,
                        r.input_kind + ("*" if r.first_layer_once else ""),
                        rate(r.fr_in),
                        _fmt_ops(r.dense_macs) if syn else "-",
                        _fmt_ops(r.eff_macs) if syn else "-",
                        _fmt_ops(r.eff_acs) if syn else "-",
                        _fmt_ops(r.approx_synops) if syn else "-",
                        _fmt_ops(r.neurons) if r.role == "neuron" else "-",
                        rate(r.fr_out),
                        _fmt_ops(r.params),
                        _fmt_bytes(r.param_bytes),
                        _fmt_bytes(r.state_bytes) if r.role == "neuron" else "-",
                        _fmt_energy(r.energy_j),
                    ]
                )
            )
        t = self.totals
        out.append("-" * len(out[0]))
        out.append(
            line(
                [
                    "TOTAL",
                    "",
                    "",
                    "",
                    _fmt_ops(t["Dense"]),
                    _fmt_ops(t["Eff_MACs"]),
                    _fmt_ops(t["Eff_ACs"]),
                    _fmt_ops(t["approx_SynOps"]),
                    _fmt_ops(t["neurons"]),
                    "",
                    _fmt_ops(t["params"]),
                    _fmt_bytes(t["param_bytes"]),
                    _fmt_bytes(t["state_bytes"]),
                    _fmt_energy(self.snn_energy),
                ]
            )
        )
        e = self.energy
        ann_def = (
            "e_mac*Dense/T, one ANN pass"
            if self.ann_reference == "single_pass"
            else ("e_mac*Dense, dense net at every step")
        )
        ratio = self.ratio
        out += [
            "",
            f"Per inference: mean over {self.samples} samples ({self.batches} batches), "
            f"summed over T={self.T} steps. Ops in K/M/G, bytes in B/KiB/MiB.",
            f"Neuron updates: {_fmt_ops(t['neuron_updates'])} "
            f"({_fmt_ops(t['neuron_ops'])} ops). First layer: {self.first_layer}"
            + (
                f" (applied in {self.first_layer_once_batches}/{self.batches} batches, '*')"
                if self.first_layer == "once"
                else ""
            )
            + f". Spike rule: {self.spike_rule}.",
            f"Energy model 45 nm (Horowitz 2014): e_mac={_fmt_energy(e.e_mac)}, "
            f"e_ac={_fmt_energy(e.e_ac)}.",
            "E_SNN includes: "
            + ", ".join(self.energy_terms)
            + ("; excludes: " + ", ".join(e.excluded_terms()) if e.excluded_terms() else "")
            + ".",
            f"E_SNN = {_fmt_energy(self.snn_energy)}   E_ANN ({ann_def}) = "
            f"{_fmt_energy(self.ann_energy)}   E_ANN/E_SNN = "
            + (f"{ratio:.3f}" if math.isfinite(ratio) else str(ratio)),
        ]
        out += [f"Note: {n}" for n in self.notes]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


def _fmt_ops(v: float) -> str:
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:.3f}G"
    if a >= 1e6:
        return f"{v / 1e6:.3f}M"
    if a >= 1e3:
        return f"{v / 1e3:.3f}K"
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.2f}"


def _fmt_energy(j: float) -> str:
    a = abs(j)
    if a >= 1.0:
        return f"{j:.3f}J"
    if a >= 1e-3:
        return f"{j * 1e3:.3f}mJ"
    if a >= 1e-6:
        return f"{j * 1e6:.3f}µJ"
    if a >= 1e-9:
        return f"{j * 1e9:.3f}nJ"
    return f"{j * 1e12:.3f}pJ"


def _fmt_bytes(b: float) -> str:
    a = abs(b)
    if a >= 1024**3:
        return f"{b / 1024**3:.2f}GiB"
    if a >= 1024**2:
        return f"{b / 1024**2:.2f}MiB"
    if a >= 1024:
        return f"{b / 1024:.2f}KiB"
    return f"{b:.0f}B"


# --------------------------------------------------------------------------------------------
# Counting helpers
# --------------------------------------------------------------------------------------------
def _spatial_dims(m: nn.Module) -> int:
    """Number of spatial dims of a conv / transposed conv module."""
    return len(m.kernel_size)  # type: ignore[arg-type]


def _fanout_map(
    m: nn.Module, in_spatial: tuple[int, ...], out_spatial: tuple[int, ...]
) -> torch.Tensor:
    """Fan-out per input position of a (transposed) conv, shape ``in_spatial``, int64, CPU.

    ``f[i]`` = number of (output position, kernel tap) pairs that read input position ``i`` for one
    (input channel, output channel) pair; padding reads of zeros are not counted, positions read
    several times through reflect/replicate/circular padding are counted each time. Computed
    exactly as the gradient of ``sum(conv(x, ones))`` w.r.t. ``x`` (the adjoint of the conv with
    an all-ones kernel), in float64.
    """
    d = len(in_spatial)
    k = tuple(m.kernel_size)  # type: ignore[arg-type]
    w = torch.ones((1, 1, *k), dtype=torch.float64)
    with torch.inference_mode(False), torch.enable_grad():
        x = torch.ones((1, 1, *in_spatial), dtype=torch.float64, requires_grad=True)
        if isinstance(m, _CONVT_TYPES):
            stride = tuple(m.stride)  # type: ignore[arg-type]
            pad = tuple(m.padding)  # type: ignore[arg-type]
            dil = tuple(m.dilation)  # type: ignore[arg-type]
            base = [
                (in_spatial[i] - 1) * stride[i] - 2 * pad[i] + dil[i] * (k[i] - 1) + 1
                for i in range(d)
            ]
            opad = tuple(out_spatial[i] - base[i] for i in range(d))
            fn = getattr(F, f"conv_transpose{d}d")
            y = fn(x, w, None, stride, pad, opad, 1, dil)
        else:
            fn = getattr(F, f"conv{d}d")
            if m.padding_mode != "zeros":  # type: ignore[attr-defined]
                xp = F.pad(
                    x,
                    m._reversed_padding_repeated_twice,  # type: ignore[attr-defined]
                    mode=m.padding_mode,  # type: ignore[attr-defined]
                )
                y = fn(xp, w, None, m.stride, 0, m.dilation, 1)  # type: ignore[attr-defined]
            else:
                y = fn(x, w, None, m.stride, m.padding, m.dilation, 1)  # type: ignore[attr-defined]
        if tuple(y.shape[2:]) != tuple(out_spatial):
            raise RuntimeError(
                f"internal error: fan-out conv of {type(m).__name__} gives spatial shape "
                f"{tuple(y.shape[2:])}, the layer produced {tuple(out_spatial)}"
            )
        (g,) = torch.autograd.grad(y.sum(), x)
    return torch.round(g[0, 0]).to(torch.int64)


def _dense_macs(m: nn.Module, x: torch.Tensor, out: torch.Tensor) -> int:
    """Dense MACs of one call (all samples of the call, padded positions included)."""
    if isinstance(m, nn.Linear):
        return int(x.numel()) * int(m.out_features)
    d = _spatial_dims(m)
    n = int(x.shape[0]) if x.ndim == d + 2 else 1
    ksz = math.prod(m.kernel_size)  # type: ignore[arg-type]
    g = int(m.groups)  # type: ignore[arg-type]
    cin = int(m.in_channels)  # type: ignore[arg-type]
    cout = int(m.out_channels)  # type: ignore[arg-type]
    if isinstance(m, _CONVT_TYPES):
        return n * cin * math.prod(x.shape[-d:]) * ksz * (cout // g)
    return n * cout * math.prod(out.shape[-d:]) * (cin // g) * ksz


class _SynAcc:
    __slots__ = (
        "order",
        "dense",
        "eff_macs",
        "eff_acs",
        "nnz",
        "numel",
        "out_numel",
        "out_elsize",
        "calls",
        "kinds",
        "once",
        "fanout",
    )

    def __init__(self, order: int) -> None:
        self.order = order
        self.dense = 0
        self.eff_macs = 0
        self.eff_acs = 0
        self.nnz = 0
        self.numel = 0
        self.out_numel = 0
        self.out_elsize = 0
        self.calls = 0
        self.kinds: set[str] = set()
        self.once = 0
        self.fanout: dict[tuple[tuple[int, ...], tuple[int, ...], str], torch.Tensor] = {}


class _NeuAcc:
    __slots__ = ("order", "elements", "out_nonzero", "probe_fired", "probed", "state_elsize",
                 "out_elsize", "calls")

    def __init__(self, order: int) -> None:
        self.order = order
        self.elements = 0
        self.out_nonzero = 0
        self.probe_fired = 0
        self.probed = False
        self.state_elsize = 0
        self.out_elsize = 0
        self.calls = 0

    def fired(self) -> int:
        """Spikes: the emitted ``"spikes"`` probe if any, else the non-zero outputs."""
        return self.probe_fired if self.probed else self.out_nonzero


def _is_spike(x: torch.Tensor, nz: torch.Tensor, rule: str) -> bool:
    vals = x[nz]
    if vals.numel() == 0:
        return True
    if rule == "binary":
        return bool((vals == 1).all())
    return bool((vals == vals[0]).all())


def _exact_synops(m: nn.Module, nz: torch.Tensor, acc: _SynAcc, out: torch.Tensor) -> int:
    """Exact operations triggered by the non-zero pattern ``nz`` (bool) in one call."""
    if isinstance(m, nn.Linear):
        return int(nz.sum()) * int(m.out_features)
    d = _spatial_dims(m)
    if nz.ndim == d + 1:  # unbatched conv input [C, *spatial]
        nz = nz.unsqueeze(0)
        out = out.unsqueeze(0)
    in_sp = tuple(int(s) for s in nz.shape[2:])
    out_sp = tuple(int(s) for s in out.shape[2:])
    key = (in_sp, out_sp, str(nz.device))
    f = acc.fanout.get(key)
    if f is None:
        f = _fanout_map(m, in_sp, out_sp).to(nz.device)
        acc.fanout[key] = f
    count = nz.sum(dim=(0, 1), dtype=torch.int64)  # spikes per spatial position
    per_out_channel = int(m.out_channels) // int(m.groups)  # type: ignore[arg-type]
    return int((count * f).sum()) * per_out_channel


def _single_step(m: nn.Module, x: torch.Tensor, T: int, B: int) -> tuple[torch.Tensor | None, str]:
    """The input of one step if ``x`` (the first layer's input) is identical over time."""
    if isinstance(m, nn.Linear):
        if x.ndim >= 3 and x.shape[0] == T and x.shape[1] == B:
            xv = x
        elif x.ndim >= 2 and x.shape[0] == T * B:
            xv = x.reshape(T, B, *x.shape[1:])
        else:
            return None, f"input shape {tuple(x.shape)} is neither [T*B, ...] nor [T, B, ...]"
    else:
        d = _spatial_dims(m)
        if x.ndim == d + 2 and x.shape[0] == T * B:
            xv = x.reshape(T, B, *x.shape[1:])
        else:
            return None, f"input shape {tuple(x.shape)} is not [T*B, C, ...]"
    if T > 1 and not bool((xv == xv[:1]).all()):
        return None, "input differs between time steps"
    return xv[0], ""


def _module_params(m: nn.Module, seen: set[int], recurse: bool) -> tuple[int, int]:
    n = nbytes = 0
    for p in m.parameters(recurse=recurse):
        if id(p) in seen:
            continue
        seen.add(id(p))
        n += p.numel()
        nbytes += p.numel() * p.element_size()
    return n, nbytes


#: Layers whose compute is done by synaptic sub-modules (counted as their own rows).
def _attention_parts(m: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, c) for n, c in m.named_modules() if n and isinstance(c, SYNAPTIC_TYPES)]


def _walk(model: nn.Module, names: dict[int, str]) -> tuple[list, list, list[str]]:
    """Synapses, neurons (by role, :func:`spikeloom.walk.iter_layers`) and uncounted synapses.

    Temporal attention keeps its two linear layers counted as synapse rows (they are real
    compute), named ``<attention>.fc1`` / ``.fc2``.
    """
    synapses: list[nn.Module] = []
    neurons: list[nn.Module] = []
    uncounted: list[str] = []
    for layer in iter_layers(model):
        name = layer.name or "(model)"
        if layer.role == "neuron":
            names[id(layer.module)] = name
            neurons.append(layer.module)
        elif layer.role == "synapse" and isinstance(layer.module, SYNAPTIC_TYPES):
            names[id(layer.module)] = name
            synapses.append(layer.module)
        elif layer.role == "synapse":
            uncounted.append(name)
        elif isinstance(layer.module, TemporalAttention):
            for sub, m in _attention_parts(layer.module):
                names[id(m)] = f"{layer.name}.{sub}" if layer.name else sub
                synapses.append(m)
    return synapses, neurons, uncounted


def _first_tensor(obj: Any) -> torch.Tensor | None:
    if torch.is_tensor(obj):
        return obj
    if isinstance(obj, (tuple, list)) and obj and torch.is_tensor(obj[0]):
        return obj[0]
    return None


# --------------------------------------------------------------------------------------------
# Main entry point
# --------------------------------------------------------------------------------------------
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
) -> CostReport:
    """Measure operation counts, memory and energy of ``model`` on real batches.

    The model runs in eval mode under ``torch.no_grad()``; every ``nn.Linear``, ``nn.Conv1d/2d/3d``
    and ``nn.ConvTranspose1d/2d/3d`` and every neuron module (attribute ``emits_spikes``) is
    hooked. The model's training flags are restored and all hooks removed afterwards (also when
    the forward raises).

    Args:
        model: network taking a time-major input ``[T, B, ...]``.
        batches: iterable of input tensors ``[T, B, ...]`` or of ``(x, y, ...)`` tuples/lists
            (only ``x`` is used). Inputs are moved to the device of the model's parameters.
            ``T`` must be the same for all batches.
        energy: energy model; default ``Energy45nm()`` (e_mac 4.6 pJ, e_ac 0.9 pJ, no neuron or
            memory term).
        first_layer: ``"per_step"`` or ``"once"`` (see module docstring).
        max_batches: stop after this many batches (``None``: all).
        spike_rule: ``"single_value"`` (``{0, c}`` inputs are spikes) or ``"binary"`` (only
            ``{0, 1}``); see module docstring.
        neuron_op_count: operations per neuron per step, default 2 adds + 2 multiplies (§5).
        ann_reference: ``"single_pass"`` (``E_ANN = e_mac·Dense/T``, spec §10.2) or ``"dense"``
            (``E_ANN = e_mac·Dense``).

    Returns:
        :class:`CostReport`, values per inference (mean over samples, summed over ``T``).

    Raises:
        ValueError: bad option, no batch, input not ``[T, B, ...]``, ``T`` varying across batches.
        TypeError: a batch that is not a tensor or a tuple starting with a tensor.
    """
    energy = Energy45nm() if energy is None else energy
    neuron_op_count = NeuronOpCount() if neuron_op_count is None else neuron_op_count
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

    names: dict[int, str] = {}
    synapses, neurons, uncounted = _walk(model, names)
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else None

    syn_acc: dict[int, _SynAcc] = {}
    neu_acc: dict[int, _NeuAcc] = {}
    order = [0]
    st: dict[str, Any] = {"T": 0, "B": 0, "first_seen": False, "once_applied": False}
    once_fail: list[str] = []

    def syn_hook(m: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
        x = args[0] if args else kwargs.get("input")
        y = _first_tensor(out)
        if not torch.is_tensor(x) or y is None:
            return
        acc = syn_acc.get(id(m))
        if acc is None:
            acc = syn_acc[id(m)] = _SynAcc(order[0])
            order[0] += 1
        acc.calls += 1
        acc.dense += _dense_macs(m, x, y)
        x_count = x
        if not st["first_seen"]:
            st["first_seen"] = True
            if first_layer == "once":
                one, why = _single_step(m, x, st["T"], st["B"])
                if one is not None:
                    x_count = one
                    acc.once += 1
                    st["once_applied"] = True
                else:
                    once_fail.append(why)
        nz = x_count != 0
        ops = _exact_synops(m, nz, acc, y if x_count is x else _out_like(m, y, st["T"]))
        if _is_spike(x_count, nz, spike_rule):
            acc.eff_acs += ops
            acc.kinds.add("spike")
        else:
            acc.eff_macs += ops
            acc.kinds.add("analog")
        acc.nnz += int(nz.sum()) if x_count is x else int((x != 0).sum())
        acc.numel += int(x.numel())
        acc.out_numel += int(y.numel())
        acc.out_elsize = y.element_size()

    def neu_acc_of(m: nn.Module) -> _NeuAcc:
        acc = neu_acc.get(id(m))
        if acc is None:
            acc = neu_acc[id(m)] = _NeuAcc(order[0])
            order[0] += 1
        return acc

    def probe_hook(m: Any, name: str, value: torch.Tensor) -> None:
        if name == "spikes":  # the spikes that reset the membrane (LIAF: not its output)
            acc = neu_acc_of(m)
            acc.probe_fired += int(torch.count_nonzero(value))
            acc.probed = True

    def neu_hook(m: nn.Module, args: tuple, kwargs: dict, out: Any) -> None:
        y = _first_tensor(out)
        if y is None:
            return
        x = args[0] if args else next((v for v in kwargs.values() if torch.is_tensor(v)), y)
        acc = neu_acc_of(m)
        acc.calls += 1
        acc.elements += int(y.numel())
        acc.out_nonzero += int(torch.count_nonzero(y))
        acc.out_elsize = y.element_size()
        acc.state_elsize = x.element_size() if torch.is_tensor(x) else y.element_size()

    training = {id(m): m.training for m in model.modules()}
    handles = []
    T_seen: int | None = None
    samples = nb = once_batches = 0
    try:
        for m in synapses:
            handles.append(m.register_forward_hook(syn_hook, with_kwargs=True))
        for m in neurons:
            handles.append(m.register_forward_hook(neu_hook, with_kwargs=True))
            if isinstance(m, Probed):
                handles.append(m.register_probe_hook(probe_hook))
        model.eval()
        with torch.no_grad():
            for batch in batches:
                if max_batches is not None and nb >= max_batches:
                    break
                x = _first_tensor(batch) if isinstance(batch, (tuple, list)) else batch
                if not torch.is_tensor(x):
                    raise TypeError(
                        "each batch must be a tensor [T, B, ...] or a tuple (x, y, ...) whose "
                        f"first element is one; got {type(batch).__name__}"
                    )
                if x.ndim < 3:
                    raise ValueError(
                        f"expected a time-major input [T, B, ...] with at least 3 dims, got "
                        f"shape {tuple(x.shape)}; add the time axis first (x.unsqueeze(0) for T=1)"
                    )
                T, B = int(x.shape[0]), int(x.shape[1])
                if T_seen is None:
                    T_seen = T
                elif T != T_seen:
                    raise ValueError(
                        f"all batches must have the same number of time steps: got T={T} after "
                        f"T={T_seen}; measure each T separately"
                    )
                if B < 1:
                    raise ValueError(f"batch {nb} is empty (B=0)")
                if device is not None and x.device != device:
                    x = x.to(device)
                st.update(T=T, B=B, first_seen=False, once_applied=False)
                model(x)
                once_batches += int(st["once_applied"])
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

    T = T_seen
    rows: list[LayerCost] = []
    seen_params: set[int] = set()
    pending: list[tuple[int, LayerCost]] = []
    for m in synapses:
        acc = syn_acc.get(id(m))
        if acc is None:
            continue
        n_par, n_bytes = _module_params(m, seen_params, recurse=False)
        kind = acc.kinds.pop() if len(acc.kinds) == 1 else ("mixed" if acc.kinds else "-")
        dense = acc.dense / samples
        fr = acc.nnz / acc.numel if acc.numel else 0.0
        pending.append(
            (
                acc.order,
                LayerCost(
                    name=names[id(m)],
                    type=type(m).__name__,
                    role="synapse",
                    input_kind=kind,
                    fr_in=fr,
                    dense_macs=dense,
                    eff_macs=acc.eff_macs / samples,
                    eff_acs=acc.eff_acs / samples,
                    approx_synops=fr * dense,
                    params=n_par,
                    param_bytes=n_bytes,
                    act_bytes=acc.out_numel * acc.out_elsize / (samples * T),
                    calls=acc.calls,
                    first_layer_once=acc.once > 0,
                ),
            )
        )
    for m in neurons:
        acc = neu_acc.get(id(m))
        if acc is None:
            continue
        n_par, n_bytes = _module_params(m, seen_params, recurse=True)
        updates = acc.elements / samples
        per_step = updates / T
        pending.append(
            (
                acc.order,
                LayerCost(
                    name=names[id(m)],
                    type=type(m).__name__,
                    role="neuron",
                    neurons=per_step,
                    neuron_updates=updates,
                    neuron_adds=updates * neuron_op_count.adds,
                    neuron_mults=updates * neuron_op_count.mults,
                    fr_out=acc.fired() / acc.elements if acc.elements else 0.0,
                    params=n_par,
                    param_bytes=n_bytes,
                    state_bytes=per_step * acc.state_elsize,
                    act_bytes=per_step * acc.out_elsize,
                    calls=acc.calls,
                ),
            )
        )
    rows = [r for _, r in sorted(pending, key=lambda p: p[0])]
    n_other, b_other = _module_params(model, seen_params, recurse=True)
    if n_other:
        rows.append(
            LayerCost(
                name="(other params)", type="-", role="other", params=n_other, param_bytes=b_other
            )
        )

    by_dtype: dict[str, int] = {}
    seen: set[int] = set()
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            key = str(p.dtype).replace("torch.", "")
            by_dtype[key] = by_dtype.get(key, 0) + p.numel() * p.element_size()

    notes: list[str] = []
    unused = [names[id(m)] for m in synapses if id(m) not in syn_acc]
    if uncounted:
        notes.append(f"synapse layers without a cost counter (not counted): {', '.join(uncounted)}")
    if unused:
        notes.append(f"synaptic layers never called (not counted): {', '.join(unused)}")
    if not syn_acc:
        notes.append("no synaptic layer (Conv/Linear) was called: Dense/Eff_MACs/Eff_ACs are 0")
        warnings.warn(
            "measure_cost: no nn.Linear/nn.Conv*/nn.ConvTranspose* layer ran in the forward "
            "pass; the operation counts are all zero",
            stacklevel=2,
        )
    if first_layer == "once" and once_batches < nb:
        reasons = sorted(set(once_fail))
        notes.append(
            f"first_layer='once' applied in {once_batches}/{nb} batches; other batches counted "
            f"per step ({'; '.join(reasons)})"
        )
    return CostReport(
        rows=rows,
        T=T,
        samples=samples,
        batches=nb,
        energy=energy,
        first_layer=first_layer,
        first_layer_once_batches=once_batches,
        spike_rule=spike_rule,
        ann_reference=ann_reference,
        param_bytes_by_dtype=by_dtype,
        notes=notes,
    )


def _out_like(m: nn.Module, y: torch.Tensor, T: int) -> torch.Tensor:
    """Output of one time step for the first-layer 'once' case (only its shape is used)."""
    if isinstance(m, nn.Linear):
        return y
    return y[: y.shape[0] // T]
