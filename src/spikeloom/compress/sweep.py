"""``spikeloom compress RUN_DIR --sweep FILE.yaml``: many compressions of one run, one table,
one accuracy-versus-energy plot with the Pareto front.

The sweep file lists runs of the ordinary ``spikeloom compress`` pipeline (the same driver,
:func:`spikeloom.cli.compress.run`, so every registered method works, quantization included)::

    epochs: 1                  # fine-tuning epochs of every entry (default 1)
    lr: null                   # fine-tuning learning rate (default: the driver's)
    runs:
      - {name: prune80, method: prune, sparsity: 0.8}
      - {name: chan50, method: prune-structured, channel_sparsity: 0.5, epochs: 2}
      - {name: hybrid, method: hybrid, rank: 8}
      - {name: ternary, method: duq, bits: 2}

Every other key of an entry is a method option (``channel_sparsity`` → ``--channel-sparsity``;
``true`` → the bare flag). Each entry writes the compressed run ``OUT/<name>``; an entry whose
``OUT/<name>/report.json`` exists is not run again (delete it to redo it). The sweep writes
``OUT/sweep.json``, ``OUT/sweep.md`` (table) and ``OUT/sweep.png`` (accuracy vs energy per
sample, the uncompressed source included, Pareto-optimal points joined and marked). Energy is
the 45 nm model of the cost report (the Pareto front uses it); the table also gives the A8
accelerator model's energy (:mod:`spikeloom.compress.energy_a8`, RLE format).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..atomic import atomic_write_text
from ..errors import ConfigError

__all__ = ["pareto_front", "load_sweep", "run_sweep", "sweep_table", "plot_sweep", "a8_of_run"]

_ENTRY_KEYS = {"name", "method", "epochs", "lr"}


def pareto_front(energy: Sequence[float], accuracy: Sequence[float]) -> list[bool]:
    """Which points are Pareto-optimal for (low energy, high accuracy).

    A point is dominated when another has energy ``<=`` and accuracy ``>=`` with at least one
    strict; equal points are all kept.
    """
    e, a = np.asarray(energy, float)[:, None], np.asarray(accuracy, float)[:, None]
    no_worse = (e.T <= e) & (a.T >= a)  # [i, j]: j is no worse than i in both
    better = (e.T < e) | (a.T > a)
    return [not bool(row.any()) for row in (no_worse & better)]


def load_sweep(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a sweep file (see the module docstring)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"sweep file {p} not found")
    doc = yaml.safe_load(p.read_text()) or {}
    runs = doc.get("runs") if isinstance(doc, dict) else None
    if not isinstance(runs, list) or not runs:
        raise ConfigError(f"{p}: a sweep file needs a non-empty list 'runs' of "
                          f"{{name, method, ...options}}")
    names = set()
    for i, r in enumerate(runs):
        if not isinstance(r, dict) or "method" not in r or "name" not in r:
            raise ConfigError(f"{p}: runs[{i}] needs 'name' and 'method', got {r!r}")
        if r["name"] in names:
            raise ConfigError(f"{p}: duplicate run name {r['name']!r}")
        names.add(r["name"])
    return doc


def _argv(entry: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    out = ["--method", str(entry["method"])]
    epochs = entry.get("epochs", defaults.get("epochs", 1))
    out += ["--epochs", str(int(epochs))]
    lr = entry.get("lr", defaults.get("lr"))
    if lr is not None:
        out += ["--lr", str(lr)]
    for k, v in entry.items():
        if k in _ENTRY_KEYS or v is None or v is False:
            continue
        flag = "--" + k.replace("_", "-")
        out += [flag] if v is True else [flag, str(v)]
    return out


def run_sweep(run_dir: str | os.PathLike[str], sweep: str | os.PathLike[str] | dict[str, Any],
              out: str | os.PathLike[str] | None = None, device: str = "cpu",
              quiet: bool = True, overwrite: bool = False) -> list[dict[str, Any]]:
    """Run every entry of ``sweep`` on ``run_dir``; write and return the result rows."""
    from ..cli import compress as driver

    doc = sweep if isinstance(sweep, dict) else load_sweep(sweep)
    src = Path(run_dir)
    out_dir = Path(out) if out else src.with_name(f"{src.name}-sweep")
    out_dir.mkdir(parents=True, exist_ok=True)
    parser = argparse.ArgumentParser(prog="spikeloom compress")
    driver.add_parser(parser.add_subparsers(dest="cmd"))
    rows: list[dict[str, Any]] = []
    for entry in doc["runs"]:
        dest = out_dir / str(entry["name"])
        if not (dest / "report.json").exists() or overwrite:
            argv = ["compress", str(src), "--out", str(dest), "--device", device,
                    "--overwrite", *(["--quiet"] if quiet else []), *_argv(entry, doc)]
            ns = parser.parse_args(argv)
            driver.run(ns)
        rep = json.loads((dest / "report.json").read_text())
        if not rows:
            rows.append({"name": "(source)", "method": "-", **rep["before"],
                         "energy_a8_j": a8_of_run(src, device)})
        rows.append({"name": entry["name"], "method": rep["method"], **rep["after"],
                     "energy_a8_j": a8_of_run(dest, device)})
    front = pareto_front([r["energy_j"] for r in rows], [r["test_acc"] for r in rows])
    for r, f in zip(rows, front):
        r["pareto"] = f
    atomic_write_text(out_dir / "sweep.json", json.dumps(rows, indent=2))
    atomic_write_text(out_dir / "sweep.md", sweep_table(rows) + "\n")
    plot_sweep(rows, out_dir / "sweep.png")
    return rows


def a8_of_run(run: Path, device: str = "cpu") -> float:
    """Energy per sample of a run's selected model under the A8 accelerator model
    (:mod:`spikeloom.compress.energy_a8`), from its ``cost.json`` or a new measurement."""
    from ..cost import CostReport
    from ..train import load_run
    from ..train.run import cost_report
    from .energy_a8 import a8_energy

    cfg, model, data = load_run(run, "best", device)
    path = Path(run) / "cost.json"
    rep = CostReport.from_json(path) if path.exists() else cost_report(model, data["val"], cfg,
                                                                       device)
    return a8_energy(model, rep)[0]


def sweep_table(rows: list[dict[str, Any]]) -> str:
    """Markdown table: accuracy, parameters, bytes, SynOps, energy, Pareto flag."""
    lines = ["| run | method | test acc | params | model bytes | SynOps/sample | energy/sample (J) "
             "| A8 energy (J) | Pareto |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a8 = r.get("energy_a8_j")
        lines.append(f"| {r['name']} | {r['method']} | {r['test_acc']:.4f} | {r['params']:,} | "
                     f"{r['model_bytes']:,.0f} | {r['synops']:.4g} | {r['energy_j']:.4g} | "
                     f"{'-' if a8 is None else f'{a8:.4g}'} | {'*' if r.get('pareto') else ''} |")
    return "\n".join(lines)


def plot_sweep(rows: list[dict[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Accuracy vs energy per sample; Pareto-optimal points joined (step line) and starred."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = np.array([r["energy_j"] for r in rows]) * 1e6
    a = np.array([r["test_acc"] for r in rows]) * 100
    front = np.array([bool(r.get("pareto")) for r in rows])
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ax.scatter(e[~front], a[~front], c="tab:gray", label="dominated")
    order = np.argsort(e[front])
    ax.step(e[front][order], a[front][order], where="post", c="tab:red", lw=1)
    ax.scatter(e[front], a[front], marker="*", s=140, c="tab:red", label="Pareto front")
    for r, x, y in zip(rows, e, a):
        ax.annotate(r["name"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("energy per sample (µJ, 45 nm model)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    p = Path(path)
    fig.savefig(p, dpi=120)
    plt.close(fig)
    return p


def run_sweep_cli(args: argparse.Namespace) -> int:
    """``spikeloom compress RUN_DIR --sweep FILE`` (``--out`` is the sweep folder)."""
    rows = run_sweep(args.run_dir, args.sweep, args.out, args.device, quiet=True,
                     overwrite=args.overwrite)
    print(sweep_table(rows))
    out = Path(args.out) if args.out else Path(args.run_dir).with_name(
        f"{Path(args.run_dir).name}-sweep")
    print(f"sweep: {out}/sweep.md, {out}/sweep.png")
    return 0
