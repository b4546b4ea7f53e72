"""Trainer: config errors, NaN stop, resume equality, 2-process DDP, CLI smoke test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from spikeloom.cli import main as cli_main
from spikeloom.train import ConfigError, TrainConfig, TrainingError, compute_loss, train

SMALL = dict(
    dataset="esdigits",
    model="liafnet",
    model_kwargs={"channels": [4, 8], "hidden": 16},
    batch_size=32,
    max_samples=96,
    progress=False,
    plots=False,
    cost=False,
    threads=1,
)


def cfg(tmp_path: Path, name: str, **kw) -> TrainConfig:
    return TrainConfig.from_dict({**SMALL, "out": str(tmp_path / name), **kw})


def _weights(run: Path, which: str = "last") -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / f"{which}.pt", weights_only=False)["model"]


def test_unknown_config_key_is_rejected():
    with pytest.raises(ConfigError, match="unknown config key.*epoch_count.*Valid keys"):
        TrainConfig.from_dict({"epoch_count": 3})
    with pytest.raises(ConfigError, match="optimizer"):
        TrainConfig.from_dict({"optimizer": "adam9"})


def test_losses_by_hand():
    out = torch.tensor([[[2.0, 0.0]], [[0.0, 0.0]]])  # [T=2, B=1, K=2]
    y = torch.tensor([0])
    # rate = [1, 0]; one-hot = [1, 0] -> mse 0
    assert compute_loss(out, y, "mse").item() == pytest.approx(0.0)
    ce_rate = torch.nn.functional.cross_entropy(torch.tensor([[1.0, 0.0]]), y).item()
    assert compute_loss(out, y, "ce").item() == pytest.approx(ce_rate)
    per = (torch.nn.functional.cross_entropy(torch.tensor([[2.0, 0.0]]), y)
           + torch.nn.functional.cross_entropy(torch.tensor([[0.0, 0.0]]), y)) / 2
    assert compute_loss(out, y, "per_step_ce").item() == pytest.approx(per.item())


def test_nan_loss_stops_with_advice(tmp_path):
    with pytest.raises(TrainingError, match="lower the learning rate|Lower the learning rate"):
        train(cfg(tmp_path, "nan", epochs=1, lr=1e30, grad_clip=None, optimizer="sgd",
                  momentum=0.0, model_kwargs={**SMALL["model_kwargs"], "norm": None}))


def test_resume_reaches_same_final_metrics(tmp_path):
    full = train(cfg(tmp_path, "full", epochs=3))
    partial = cfg(tmp_path, "part", epochs=3)
    train(partial, stop_after_epochs=1)  # "killed" after epoch 1
    # a kill while writing leaves a temp file behind: it must be ignored
    (tmp_path / "part" / "checkpoints" / ".last.pt.tmp-999").write_bytes(b"garbage")
    resumed = train(resume=tmp_path / "part")
    assert resumed["test_acc"] == full["test_acc"]
    assert resumed["test_loss"] == pytest.approx(full["test_loss"], abs=1e-6)
    wa, wb = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=1e-6), k
    lines = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(s)["epoch"] for s in lines] == [1, 2, 3]


def test_model_selection_uses_validation(tmp_path):
    final = train(cfg(tmp_path, "sel", epochs=2))
    hist = [json.loads(s) for s in (tmp_path / "sel" / "metrics.jsonl").read_text().splitlines()]
    best = max(hist, key=lambda h: h["val_acc"])
    assert final["best_epoch"] == best["epoch"]
    assert final["best_val_acc"] == best["val_acc"]
    assert "test_acc" in final and 0 <= final["test_acc"] <= 1


@pytest.mark.slow
def test_two_process_gloo_equals_one_process(tmp_path):
    """torchrun with 2 CPU processes (gloo) gives the same weights as 1 process, same global batch.

    Normalisation is switched off: with BN/tdBN each process would use its own batch statistics
    (as in PyTorch DDP). Tolerance 1e-4 on weights: the two runs sum gradients in a different order.
    """
    common = ["train", "--epochs", "2", "--batch-size", "32", "--max-samples", "64",
              "--model-arg", "channels=[4, 8]", "--model-arg", "hidden=16",
              "--model-arg", "norm=null", "--no-progress", "--no-plots", "--no-cost",
              "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "spikeloom.cli", *common, "--out",
                          str(tmp_path / "one")], env=env, capture_output=True, text=True)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          "--nproc_per_node", "2", "-m", "spikeloom.cli", *common, "--out",
                          str(tmp_path / "two")], env=env, capture_output=True, text=True)
    assert two.returncode == 0, two.stderr[-3000:]
    f1 = json.loads((tmp_path / "one" / "final.json").read_text())
    f2 = json.loads((tmp_path / "two" / "final.json").read_text())
    assert f2["world_size"] == 2 and f1["world_size"] == 1
    assert f1["test_acc"] == f2["test_acc"]
    assert f1["test_loss"] == pytest.approx(f2["test_loss"], abs=1e-4)
    wa, wb = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=1e-4), k


def test_cli_smoke_train_eval_cost(tmp_path, capsys):
    run = tmp_path / "cli"
    rc = cli_main(["train", "--epochs", "1", "--max-samples", "64", "--batch-size", "32",
                   "--model-arg", "channels=[4, 8]", "--model-arg", "hidden=16",
                   "--out", str(run), "--no-progress", "--threads", "1"])
    assert rc == 0
    for f in ("config.yaml", "metrics.jsonl", "final.json", "cost.json",
              "checkpoints/best.pt", "checkpoints/last.pt", "plots/curves.png",
              "plots/firing_rates.png", "plots/raster.png"):
        assert (run / f).exists(), f
    capsys.readouterr()
    assert cli_main(["eval", str(run)]) == 0
    res = json.loads(capsys.readouterr().out)
    final = json.loads((run / "final.json").read_text())
    assert res["acc"] == pytest.approx(final["test_acc"])
    assert cli_main(["cost", str(run)]) == 0
    assert "TOTAL" in capsys.readouterr().out


def test_cli_errors_are_clear(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: 1\nlearning_rate: 0.1\n")
    assert cli_main(["train", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "learning_rate" in err and "Valid keys" in err
    assert cli_main(["eval", str(tmp_path / "nothing")]) == 2
    assert "not a run directory" in capsys.readouterr().err
