"""``spikeloom compress`` end to end on a tiny ES-Digits run, then eval --integer and resume."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch

from spikeloom.cli import compress, main
from spikeloom.compress import COMPRESS_METHODS
from spikeloom.compress.methods import add_option, method_options
from spikeloom.compress.quant import QuantNeuron
from spikeloom.cost import CostReport
from spikeloom.errors import ConfigError
from spikeloom.train import TrainConfig, load_run, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "base"
    torch.set_num_threads(1)
    cfg = TrainConfig(dataset="esdigits", model="liafnet",
                      model_kwargs={"neuron": "lif", "channels": [8, 16], "hidden": 32},
                      epochs=1, max_samples=60, batch_size=20, out=str(out), plots=False,
                      cost=False, quiet=True, progress=False, threads=1)
    train(cfg)
    return out


def test_registry_and_shared_options():
    assert {"int8", "quant", "duq", "ternary"} <= set(COMPRESS_METHODS.names())
    assert set(method_options(COMPRESS_METHODS.get("int8"))) >= {"bits", "act_bits", "mem_bits"}

    p = argparse.ArgumentParser()
    add_option(p, "--bits", type=int, default=None)
    add_option(p, "--bits", type=int, default=4)  # second method: not added twice
    assert p.parse_args([]).bits is None


def test_compress_int8_then_eval_integer_and_resume(trained_run: Path, tmp_path: Path, capsys):
    new = tmp_path / "int8"
    rc = main(["compress", str(trained_run), "--method", "int8", "--epochs", "1", "--out",
               str(new), "--quiet"])
    assert rc == 0
    table = capsys.readouterr().out
    assert "model bytes" in table and "energy" in table
    rep = json.loads((new / "report.json").read_text())
    assert rep["after"]["model_bytes"] < 0.3 * rep["before"]["model_bytes"]
    assert rep["after"]["energy_j"] < rep["before"]["energy_j"]
    assert rep["integer_program"].endswith("integer.npz") and (new / "integer.npz").exists()
    cost = CostReport.from_json(new / "cost.json")
    assert {r.precision for r in cost.rows if r.role == "synapse"} == {"int8"}
    cfg, model, _ = load_run(new)
    assert cfg.compress["method"] == "int8" and cfg.compress["options"]["bits"] is None
    assert sum(isinstance(m, QuantNeuron) for m in model.modules()) == 3
    assert main(["eval", str(new), "--integer", "--split", "val"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["agreement"] == 1.0 and res["n"] == 60
    # resume the compressed run for one more epoch: the quantized state comes back
    r = train(resume=new, overrides={"epochs": 2, "quiet": True})
    assert r["finished"] and r["epochs_done"] == 2


def test_compress_duq_without_finetuning(trained_run: Path, tmp_path: Path, capsys):
    new = tmp_path / "duq"
    assert main(["compress", str(trained_run), "--method", "duq", "--epochs", "0", "--out",
                 str(new), "--quiet"]) == 0
    _, model, _ = load_run(new)
    w = model.features[0][0].module.weight
    assert len(torch.unique(w.detach())) == 3  # ternary


def test_compress_errors(trained_run: Path, tmp_path: Path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.yaml").write_text((trained_run / "config.yaml").read_text())
    with pytest.raises(ConfigError, match="no 'best' checkpoint"):
        compress.run(argparse.Namespace(
            run_dir=str(tmp_path / "empty"), method="int8", epochs=0, checkpoint="best",
            device="cpu", quiet=True, out=None, overwrite=False, lr=None))
    assert main(["compress", str(trained_run), "--method", "int8", "--bits", "9", "--epochs",
                 "0", "--out", str(tmp_path / "bad")]) == 2
