"""The cost report: one :class:`LayerCost` row per layer, totals, energy and JSON.

All numbers are per inference (one sample, summed over the ``T`` time steps). The totals use
the NeuroBench names ``Dense``, ``Eff_MACs`` and ``Eff_ACs`` (Yik et al. 2023,
arXiv:2304.04640); energies use :class:`~spikeloom.cost.energy.Energy45nm` (Horowitz, ISSCC
2014).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text
from .energy import Energy45nm
from .format import format_table

__all__ = ["CostReport", "LayerCost", "FORMAT"]

#: ``format`` field of a cost.json file.
FORMAT = "spikeloom.cost/1"


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
        precision: arithmetic precision of the row (one of
            :data:`~spikeloom.cost.PRECISIONS`); its energy uses that precision's table
            entries. Files written before rows had a precision load as ``"fp32"``.
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
    precision: str = "fp32"
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
    """Result of :func:`~spikeloom.cost.measure_cost`: per-layer rows, totals and energy.

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
        e_mac, e_ac = e.synaptic(r.precision)
        out = e_mac * r.eff_macs + e_ac * r.eff_acs
        if e.include_neuron:
            e_add, e_mult = e.neuron(r.precision)
            out += e_add * r.neuron_adds + e_mult * r.neuron_mults
        if e.include_memory:
            out += e.e_mem * (
                e.mem_per_synop * (r.eff_macs + r.eff_acs)
                + e.mem_per_neuron_update * r.neuron_updates
            )
        return out

    def with_energy(self, energy: Energy45nm) -> CostReport:
        """Same counts, energies recomputed with ``energy``.

        Rows at the old model's precision move to ``energy.precision`` (re-evaluating a whole
        fp32 report as int8 keeps working); rows of another precision keep theirs.
        """
        old = self.energy.precision
        rows = [r if r.precision != old else replace(r, precision=energy.precision)
                for r in self.rows]
        return replace(self, energy=energy, rows=rows)

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
            "format": FORMAT,
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
        if d.get("format") != FORMAT:
            raise ValueError(
                f"not a spikeloom cost report (format {d.get('format')!r}, expected {FORMAT!r})"
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
        return format_table(self)

    def __str__(self) -> str:
        return self.table()
