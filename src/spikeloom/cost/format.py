"""Text formatting of cost reports: the fixed-width table and number formats (K/M/G ops,
B/KiB/MiB bytes, pJ/nJ/µJ/mJ/J energies)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .report import CostReport, LayerCost

__all__ = ["fmt_bytes", "fmt_energy", "fmt_ops", "format_table"]

#: Table columns: (header, width, alignment).
COLUMNS: tuple[tuple[str, int, str], ...] = (
    ("layer", 28, "<"),
    ("type", 15, "<"),
    ("prec", 7, "<"),
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
)


def fmt_ops(v: float) -> str:
    """An operation count with a K/M/G suffix (3 decimals), plain below 1000."""
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:.3f}G"
    if a >= 1e6:
        return f"{v / 1e6:.3f}M"
    if a >= 1e3:
        return f"{v / 1e3:.3f}K"
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.2f}"


def fmt_energy(j: float) -> str:
    """An energy in joules as J/mJ/µJ/nJ/pJ (3 decimals)."""
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


def fmt_bytes(b: float) -> str:
    """A size in bytes as B/KiB/MiB/GiB."""
    a = abs(b)
    if a >= 1024**3:
        return f"{b / 1024**3:.2f}GiB"
    if a >= 1024**2:
        return f"{b / 1024**2:.2f}MiB"
    if a >= 1024:
        return f"{b / 1024:.2f}KiB"
    return f"{b:.0f}B"


def _line(values: Sequence[str]) -> str:
    parts = []
    for (_, w, a), v in zip(COLUMNS, values):
        v = v if len(v) <= w else v[: w - 1] + "~"
        parts.append(f"{v:{a}{w}}")
    return " ".join(parts)


def _rate(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _row_cells(r: LayerCost) -> list[str]:
    syn, neu = r.role == "synapse", r.role == "neuron"
    return [
        r.name,
        r.type,
        r.precision if syn or neu else "-",
        r.input_kind + ("*" if r.first_layer_once else ""),
        _rate(r.fr_in),
        fmt_ops(r.dense_macs) if syn else "-",
        fmt_ops(r.eff_macs) if syn else "-",
        fmt_ops(r.eff_acs) if syn else "-",
        fmt_ops(r.approx_synops) if syn else "-",
        fmt_ops(r.neurons) if neu else "-",
        _rate(r.fr_out),
        fmt_ops(r.params),
        fmt_bytes(r.param_bytes),
        fmt_bytes(r.state_bytes) if neu else "-",
        fmt_energy(r.energy_j),
    ]


def _total_cells(report: CostReport) -> list[str]:
    t = report.totals
    return [
        "TOTAL", "", "", "", "",
        fmt_ops(t["Dense"]),
        fmt_ops(t["Eff_MACs"]),
        fmt_ops(t["Eff_ACs"]),
        fmt_ops(t["approx_SynOps"]),
        fmt_ops(t["neurons"]),
        "",
        fmt_ops(t["params"]),
        fmt_bytes(t["param_bytes"]),
        fmt_bytes(t["state_bytes"]),
        fmt_energy(report.snn_energy),
    ]


def _summary(report: CostReport) -> list[str]:
    """The lines under the table: averaging, neuron updates, energy model and energies."""
    t, e = report.totals, report.energy
    ann_def = (
        "e_mac*Dense/T, one ANN pass"
        if report.ann_reference == "single_pass"
        else "e_mac*Dense, dense net at every step"
    )
    once = (
        f" (applied in {report.first_layer_once_batches}/{report.batches} batches, '*')"
        if report.first_layer == "once"
        else ""
    )
    excluded = e.excluded_terms()
    ratio = report.ratio
    return [
        "",
        f"Per inference: mean over {report.samples} samples ({report.batches} batches), "
        f"summed over T={report.T} steps. Ops in K/M/G, bytes in B/KiB/MiB.",
        f"Neuron updates: {fmt_ops(t['neuron_updates'])} ({fmt_ops(t['neuron_ops'])} ops). "
        f"First layer: {report.first_layer}{once}. Spike rule: {report.spike_rule}.",
        f"Energy model 45 nm (Horowitz 2014), {e.precision}: e_mac={fmt_energy(e.e_mac)}, "
        f"e_ac={fmt_energy(e.e_ac)}; rows of another precision ('prec') use its table entries.",
        "E_SNN includes: "
        + ", ".join(report.energy_terms)
        + ("; excludes: " + ", ".join(excluded) if excluded else "")
        + ".",
        f"E_SNN = {fmt_energy(report.snn_energy)}   E_ANN ({ann_def}) = "
        f"{fmt_energy(report.ann_energy)}   E_ANN/E_SNN = "
        + (f"{ratio:.3f}" if math.isfinite(ratio) else str(ratio)),
    ]


def format_table(report: CostReport) -> str:
    """Fixed-width text table of a report's rows, totals and energy summary."""
    out = [_line([c[0] for c in COLUMNS])]
    rule = "-" * len(out[0])
    out.append(rule)
    out += [_line(_row_cells(r)) for r in report.rows]
    out += [rule, _line(_total_cells(report))]
    out += _summary(report)
    out += [f"Note: {n}" for n in report.notes]
    return "\n".join(out)
