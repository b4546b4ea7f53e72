"""Results report: many run directories -> one Markdown table (and a PNG chart).

Runs that share a configuration except the seed form one row: accuracy is the mean ± sample
standard deviation over them (``n`` says how many). The paper's number is read from the
config's ``paper: {acc: ..., source: ...}`` block, cost figures from ``cost.json`` (parameters,
exact SynOps, E_SNN and E_ANN/E_SNN of the cost model), wall time from ``final.json``
(``train_seconds``: the training loop including validation).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .atomic import atomic_write_text
from .errors import ConfigError

__all__ = ["RunRecord", "ReportRow", "find_runs", "load_record", "group_runs",
           "format_markdown", "plot_report", "build_report"]

#: config keys that do not define the experiment (a row groups runs differing only in these)
NON_DEFINING = {"seed", "out", "progress", "quiet", "plots", "cost", "cost_batches", "threads",
                "num_workers", "device", "overwrite", "paper"}


@dataclass
class RunRecord:
    """What the report reads from one finished run directory."""

    run_dir: str
    config: dict[str, Any]
    test_acc: float
    seconds: float
    params: float | None = None
    synops: float | None = None
    energy_j: float | None = None
    ratio: float | None = None


@dataclass
class ReportRow:
    """One row: runs of one configuration (seeds pooled)."""

    dataset: str
    model: str
    method: str
    accs: list[float]
    paper_acc: float | None
    paper_source: str
    params: float | None
    synops: float | None
    energy_j: float | None
    ratio: float | None
    seconds: float
    runs: list[str] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return sum(self.accs) / len(self.accs)

    @property
    def std(self) -> float:
        """Sample standard deviation over the seeds (0 for one run)."""
        n = len(self.accs)
        if n < 2:
            return 0.0
        m = self.mean
        return math.sqrt(sum((a - m) ** 2 for a in self.accs) / (n - 1))


def find_runs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Run directories (holding ``config.yaml``) given directly or found below ``paths``."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.is_dir():
            raise ConfigError(f"{p} is not a directory")
        if (p / "config.yaml").is_file():
            out.append(p)
        else:
            out += sorted(c.parent for c in p.rglob("config.yaml"))
    if not out:
        raise ConfigError("no run directories (folders with config.yaml) under "
                          + ", ".join(map(str, paths)))
    return list(dict.fromkeys(out))


def load_record(run_dir: Path) -> RunRecord | None:
    """The record of a finished run, or ``None`` when it has no ``final.json`` yet."""
    final_p = run_dir / "final.json"
    if not final_p.is_file():
        return None
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    final = json.loads(final_p.read_text())
    rec = RunRecord(str(run_dir), cfg, float(final["test_acc"]),
                    float(final.get("train_seconds", float("nan"))))
    cost_p = run_dir / "cost.json"
    if cost_p.is_file():
        cost = json.loads(cost_p.read_text())
        tot, en = cost.get("totals", {}), cost.get("energy", {})
        rec.params, rec.synops = tot.get("params"), tot.get("SynOps")
        rec.energy_j, rec.ratio = en.get("E_SNN_J"), en.get("ratio")
    return rec


def _key(cfg: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in cfg.items() if k not in NON_DEFINING}, sort_keys=True,
                      default=str)


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else None


def group_runs(records: Sequence[RunRecord]) -> list[ReportRow]:
    """Pool records whose configs differ only in :data:`NON_DEFINING` keys (seeds)."""
    groups: dict[str, list[RunRecord]] = {}
    for r in records:
        groups.setdefault(_key(r.config), []).append(r)
    rows = []
    for recs in groups.values():
        c = recs[0].config
        paper = c.get("paper") or {}
        rows.append(ReportRow(
            dataset=str(c.get("dataset", "?")), model=str(c.get("model", "?")),
            method=str(c.get("method", "stbp")), accs=[r.test_acc for r in recs],
            paper_acc=paper.get("acc"), paper_source=str(paper.get("source", "")),
            params=_mean([r.params for r in recs]), synops=_mean([r.synops for r in recs]),
            energy_j=_mean([r.energy_j for r in recs]), ratio=_mean([r.ratio for r in recs]),
            seconds=_mean([r.seconds for r in recs]) or float("nan"),
            runs=[r.run_dir for r in recs]))
    return sorted(rows, key=lambda r: (r.dataset, r.model, r.method))


def format_markdown(rows: Sequence[ReportRow]) -> str:
    """The Markdown table (accuracies in %, mean ± std over seeds)."""
    from .cost.format import fmt_energy, fmt_ops

    head = ("| dataset | model | method | runs | test acc % | paper % | params | SynOps | "
            "E_SNN | E_ANN/E_SNN | train s |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        acc = f"{100 * r.mean:.2f}" + (f" ± {100 * r.std:.2f}" if len(r.accs) > 1 else "")
        paper = "—" if r.paper_acc is None else f"{100 * r.paper_acc:.2f}"
        lines.append(
            f"| {r.dataset} | {r.model} | {r.method} | {len(r.accs)} | {acc} | {paper} | "
            f"{'—' if r.params is None else fmt_ops(r.params)} | "
            f"{'—' if r.synops is None else fmt_ops(r.synops)} | "
            f"{'—' if r.energy_j is None else fmt_energy(r.energy_j)} | "
            f"{'—' if r.ratio is None else f'{r.ratio:.2f}'} | {r.seconds:.0f} |")
    sources = [f"- {r.dataset}/{r.model}/{r.method}: {r.paper_source}" for r in rows
               if r.paper_source]
    if sources:
        lines += ["", "Paper numbers:", *sources]
    return "\n".join(lines) + "\n"


def plot_report(rows: Sequence[ReportRow], path: str | os.PathLike) -> None:
    """Bar chart: our accuracy (mean, std as error bar) beside the paper's number."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r.dataset}\n{r.model}\n{r.method}" for r in rows]
    x = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(rows)), 4.0))
    ax.bar([i - 0.2 for i in x], [100 * r.mean for r in rows], 0.4,
           yerr=[100 * r.std for r in rows], label="spikeloom (test)")
    ax.bar([i + 0.2 for i in x], [100 * (r.paper_acc or 0.0) for r in rows], 0.4,
           label="paper", color="tab:gray")
    ax.set_xticks(list(x), labels, fontsize=7)
    ax.set_ylabel("accuracy %")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def build_report(paths: Iterable[str | os.PathLike], out: str | os.PathLike | None = None
                 ) -> tuple[str, list[ReportRow], list[str]]:
    """Collect runs below ``paths``; write ``<out>.md`` and ``<out>.png`` when ``out`` is given.

    Returns:
        the Markdown text, the rows and the skipped (unfinished) run directories.
    """
    records, skipped = [], []
    for d in find_runs(paths):
        rec = load_record(d)
        (records.append(rec) if rec is not None else skipped.append(str(d)))
    if not records:
        raise ConfigError("no finished runs (final.json) among " + ", ".join(skipped))
    rows = group_runs(records)
    text = format_markdown(rows)
    if out is not None:
        out = Path(out)
        atomic_write_text(out.with_suffix(".md"), text)
        plot_report(rows, out.with_suffix(".png"))
    return text, rows, skipped
