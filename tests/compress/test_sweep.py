"""The compression sweep: Pareto front by hand, sweep file checks, an end-to-end sweep."""

from __future__ import annotations

import json

import pytest

from spikeloom.compress.sweep import _argv, load_sweep, pareto_front, run_sweep
from spikeloom.errors import ConfigError
from spikeloom.train import TrainConfig, train


def test_pareto_front_by_hand():
    #            A    B    C    D    E (= B)  F
    energy = [1.0, 2.0, 3.0, 2.5, 2.0, 0.5]
    acc = [0.80, 0.90, 0.95, 0.85, 0.90, 0.60]
    # D is dominated by B (less energy, more accuracy); B and E tie and both stay
    assert pareto_front(energy, acc) == [True, True, True, False, True, True]
    assert pareto_front([1.0, 1.0], [0.5, 0.6]) == [False, True]  # same energy, better acc


def test_sweep_file_checks_and_argv(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("runs: [{method: prune}]\n")
    with pytest.raises(ConfigError, match="needs 'name' and 'method'"):
        load_sweep(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_sweep(tmp_path / "none.yaml")
    argv = _argv({"name": "x", "method": "prune-structured", "channel_sparsity": 0.5,
                  "per_tensor": True, "asymmetric": False}, {"epochs": 2, "lr": 0.01})
    assert argv == ["--method", "prune-structured", "--epochs", "2", "--lr", "0.01",
                    "--channel-sparsity", "0.5", "--per-tensor"]


def test_end_to_end_sweep_writes_table_and_plot(tmp_path):
    cfg = TrainConfig.from_dict(dict(
        dataset="esdigits", model="liafnet", model_kwargs={"channels": [4, 8], "hidden": 16},
        batch_size=32, max_samples=64, progress=False, plots=False, cost=False, threads=1,
        epochs=1, quiet=True, out=str(tmp_path / "run")))
    train(cfg)
    rows = run_sweep(tmp_path / "run", {"epochs": 0, "runs": [
        {"name": "p80", "method": "prune", "sparsity": 0.8},
        {"name": "c50", "method": "prune-structured", "channel_sparsity": 0.5},
    ]}, tmp_path / "sw")
    assert [r["name"] for r in rows] == ["(source)", "p80", "c50"]
    assert rows[2]["params"] < rows[0]["params"]
    assert rows[1]["synops"] < rows[0]["synops"]  # only remaining synapses counted
    assert 0 < rows[1]["energy_a8_j"] < rows[0]["energy_a8_j"]
    saved = json.loads((tmp_path / "sw" / "sweep.json").read_text())
    assert saved == rows and any(r["pareto"] for r in rows)
    assert (tmp_path / "sw" / "sweep.png").stat().st_size > 1000
    assert "| p80 | prune |" in (tmp_path / "sw" / "sweep.md").read_text()
