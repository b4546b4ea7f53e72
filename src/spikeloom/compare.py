"""Compare models under one protocol: the SNN-vs-RNN table (He et al. 2020, spec §9).

:func:`compare` trains every run of a *config set* (one :class:`~spikeloom.train.TrainConfig`
per model) with :func:`spikeloom.train.train`, each into ``OUT/<name>``, then tests the model
selected on validation at the training frame width and at every alternative dataset setting
(e.g. ``{"dt_us": 10000, "T": 8}``: frames of another width ``dt``), and gathers one table:
test accuracies, parameters, Dense MACs, SynOps (``Eff_MACs`` + ``Eff_ACs``) and energy from
the run's cost report (:mod:`spikeloom.cost`, 45 nm), and training time.

*One protocol* means the same data (``dataset``, ``root``, ``dataset_kwargs``,
``max_samples``), the same loss, number of epochs and seed for every run; a config set that
differs in one of them is refused (:data:`PROTOCOL_KEYS`). Optimiser settings (``lr``,
``batch_size``) may differ per model, as in the paper's scripts; the table shows them.

A run directory that already holds a finished run of the same config is reused (delete it, or
pass ``overwrite``, to train again).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text
from .errors import ConfigError
from .train import TrainConfig

__all__ = ["PROTOCOL_KEYS", "CompareRow", "compare", "check_protocol", "markdown_table",
           "setting_label"]

#: config keys that must be equal in every run of a comparison
PROTOCOL_KEYS = ("dataset", "root", "dataset_kwargs", "max_samples", "loss", "epochs", "seed")


@dataclass
class CompareRow:
    """One model of the table (all numbers measured; cost per inference, 45 nm).

    Attributes:
        name, model: run name and model name.
        run_dir: its run directory.
        params: trainable parameters.
        test_acc: test accuracy at the training setting.
        other_acc: test accuracy at each alternative setting (label -> accuracy).
        val_acc: best validation accuracy (model selection).
        dense_macs, eff_macs, eff_acs: cost totals per inference (``Eff_MACs + Eff_ACs`` are
            the SynOps).
        energy_j: energy per inference (synaptic MACs and ACs, joules).
        train_seconds: training wall time.
        lr, batch_size: optimiser settings of the run.
    """

    name: str
    model: str
    run_dir: str
    params: int
    test_acc: float
    val_acc: float
    other_acc: dict[str, float] = field(default_factory=dict)
    dense_macs: float | None = None
    eff_macs: float | None = None
    eff_acs: float | None = None
    energy_j: float | None = None
    train_seconds: float = 0.0
    lr: float = 0.0
    batch_size: int = 0


def setting_label(setting: Mapping[str, Any]) -> str:
    """``"dt_us=10000,T=8"`` for a dataset setting."""
    return ",".join(f"{k}={v}" for k, v in setting.items())


def check_protocol(configs: Mapping[str, TrainConfig]) -> None:
    """Raise :class:`ConfigError` naming the first :data:`PROTOCOL_KEYS` entry that differs."""
    if not configs:
        raise ConfigError("compare needs at least one run (a config or --models)")
    items = list(configs.items())
    first_name, first = items[0]
    for name, cfg in items[1:]:
        for key in PROTOCOL_KEYS:
            a, b = getattr(first, key), getattr(cfg, key)
            if a != b:
                raise ConfigError(
                    f"runs {first_name!r} and {name!r} differ in {key!r} ({a!r} vs {b!r}); a "
                    f"comparison uses one protocol: the same {', '.join(PROTOCOL_KEYS)}"
                )


def _train_or_reuse(cfg: TrainConfig) -> dict[str, Any]:
    """``final.json`` of the run of ``cfg`` (trained now unless already finished)."""
    from .train import train
    from .train.run import RESUMABLE

    run_dir = Path(cfg.out)
    saved = run_dir / "config.yaml"
    if not cfg.overwrite and (run_dir / "final.json").exists() and saved.exists():
        ignore = {*RESUMABLE, "out", "overwrite"}
        a, b = dataclasses.asdict(TrainConfig.from_yaml(saved)), dataclasses.asdict(cfg)
        if all(a[k] == b[k] for k in a if k not in ignore) and a["epochs"] == b["epochs"]:
            return json.loads((run_dir / "final.json").read_text())
    return dict(train(cfg).final)


def _test_at(run_dir: Path, setting: Mapping[str, Any], device: str) -> float:
    """Test accuracy of a run's selected model on the dataset with ``setting`` changed."""
    from .train import DistInfo, evaluate, global_batches, load_run, make_loader
    from .train.build import dataset_spec

    cfg, model, data = load_run(run_dir, "best", device, dict(setting))
    ds = data["test"]
    loader = make_loader(ds, global_batches(len(ds), cfg.batch_size, 0, 0, False), DistInfo(),
                         num_workers=cfg.num_workers)
    return float(evaluate(model, loader, cfg.loss, device, task=dataset_spec(ds).kind)["acc"])


def _row(name: str, cfg: TrainConfig, final: dict[str, Any],
         other: dict[str, float]) -> CompareRow:
    run_dir = Path(cfg.out)
    row = CompareRow(name, cfg.model, str(run_dir), 0, float(final["test_acc"]),
                     float(final["best_val_acc"]), other,
                     train_seconds=float(final.get("train_seconds", 0.0)), lr=cfg.lr,
                     batch_size=cfg.batch_size)
    cost = run_dir / "cost.json"
    if cost.exists():
        d = json.loads(cost.read_text())
        t = d["totals"]
        row.params, row.dense_macs = int(t["params"]), float(t["Dense"])
        row.eff_macs, row.eff_acs = float(t["Eff_MACs"]), float(t["Eff_ACs"])
        row.energy_j = float(d["energy"]["E_SNN_J"])
    else:
        from .models import count_parameters
        from .train import load_run

        row.params = count_parameters(load_run(run_dir, "best")[1])
    return row


def compare(configs: Mapping[str, TrainConfig], out: str | Path,
            test_settings: Sequence[Mapping[str, Any]] = (), device: str = "cpu",
            ) -> list[CompareRow]:
    """Train (or reuse) every run of ``configs`` into ``out/<name>`` and tabulate them.

    Args:
        configs: run name -> config (its ``out`` is replaced by ``out/<name>``); checked with
            :func:`check_protocol`.
        out: folder of the comparison; ``compare.md`` and ``compare.json`` are written there.
        test_settings: alternative dataset options to test at (e.g. ``[{"dt_us": 10000,
            "T": 8}]``), applied over each run's ``dataset_kwargs``.
        device: where the extra evaluations run.

    Returns:
        one :class:`CompareRow` per run, in the order of ``configs``.
    """
    check_protocol(configs)
    out = Path(out)
    rows = []
    for name, cfg in configs.items():
        cfg = dataclasses.replace(cfg, out=str(out / name))
        cfg.validate()
        final = _train_or_reuse(cfg)
        other = {setting_label(s): _test_at(Path(cfg.out), s, device) for s in test_settings}
        rows.append(_row(name, cfg, final, other))
    first = next(iter(configs.values()))
    atomic_write_text(out / "compare.md", markdown_table(rows, first))
    atomic_write_text(out / "compare.json", json.dumps(
        {"protocol": {k: getattr(first, k) for k in PROTOCOL_KEYS},
         "test_settings": [dict(s) for s in test_settings],
         "rows": [dataclasses.asdict(r) for r in rows]}, indent=2))
    return rows


def _num(v: float | None, fmt: Any) -> str:
    return "-" if v is None else fmt(v)


def markdown_table(rows: Sequence[CompareRow], protocol: TrainConfig | None = None) -> str:
    """The comparison as a Markdown table (accuracies in %, cost per inference)."""
    from .cost.format import fmt_energy, fmt_ops

    labels = list(dict.fromkeys(k for r in rows for k in r.other_acc))
    train_setting = "training setting"
    if protocol is not None and labels:  # the training values of the keys the others change
        keys = dict.fromkeys(p.split("=", 1)[0] for lab in labels for p in lab.split(","))
        train_setting = ",".join(f"{k}={protocol.dataset_kwargs.get(k, 'default')}"
                                 for k in keys)
    head = ["run", "model", "params", f"test acc ({train_setting})",
            *[f"test acc ({lab})" for lab in labels], "val acc", "Dense MACs", "Eff_MACs",
            "Eff_ACs", "energy", "lr", "batch", "train s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r.name, r.model, f"{r.params:,}", f"{100 * r.test_acc:.2f}",
                 *[_num(r.other_acc.get(lab), lambda v: f"{100 * v:.2f}") for lab in labels],
                 f"{100 * r.val_acc:.2f}", _num(r.dense_macs, fmt_ops), _num(r.eff_macs, fmt_ops),
                 _num(r.eff_acs, fmt_ops), _num(r.energy_j, fmt_energy), f"{r.lr:g}",
                 str(r.batch_size), f"{r.train_seconds:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    if protocol is not None:
        lines.append("")
        kw = f" {protocol.dataset_kwargs}" if protocol.dataset_kwargs else ""
        lines.append(f"Protocol: dataset {protocol.dataset}{kw}, "
                     f"loss {protocol.loss}, {protocol.epochs} epochs, seed {protocol.seed}"
                     f"{f', max_samples {protocol.max_samples}' if protocol.max_samples else ''}"
                     ". Test accuracy of the model selected on validation; cost per inference "
                     "(45 nm, synaptic MACs and ACs) measured on validation batches.")
    return "\n".join(lines) + "\n"
