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
from spikeloom.train import (
    Callback,
    ConfigError,
    TrainConfig,
    TrainingError,
    compute_loss,
    train,
)

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


# ------------------------------------------------------------------ callbacks, step protocol


class CountCalls(Callback):
    def __init__(self):
        self.calls = {"after_backward": 0, "after_step": 0, "epoch_end": 0}
        self.grad_seen = []

    def after_backward(self, ctx):
        self.calls["after_backward"] += 1
        self.grad_seen.append(all(p.grad is not None for p in ctx.model.parameters()
                                  if p.requires_grad))

    def after_step(self, ctx):
        self.calls["after_step"] += 1

    def epoch_end(self, ctx):
        self.calls["epoch_end"] += 1
        assert "val_acc" in ctx.record

    def state_dict(self):
        return dict(self.calls)

    def load_state_dict(self, state):
        self.calls = dict(state)


class ShrinkWeights(Callback):
    """Changes the weights after every optimizer step (as a projection or mask would)."""

    def after_step(self, ctx):
        with torch.no_grad():
            for p in ctx.model.parameters():
                if p.ndim > 1:
                    p.mul_(0.99)


def test_callbacks_are_called_and_counted(tmp_path):
    cb = CountCalls()
    result = train(cfg(tmp_path, "cb", epochs=2), callbacks=[cb])
    steps_per_epoch = 3  # 96 samples / batch 32
    assert cb.calls == {"after_backward": 2 * steps_per_epoch, "after_step": 2 * steps_per_epoch,
                        "epoch_end": 2}
    assert all(cb.grad_seen)
    assert result.finished and result.epochs_done == 2


def test_weight_changing_callback_survives_resume(tmp_path):
    full_cb = CountCalls()
    full = train(cfg(tmp_path, "full", epochs=3), callbacks=[ShrinkWeights(), full_cb])
    part_cb = CountCalls()
    stopped = train(cfg(tmp_path, "part", epochs=3), stop_after_epochs=1,
                    callbacks=[ShrinkWeights(), part_cb])
    # stopping early returns the same type as a full run, without test metrics
    assert type(stopped) is type(full)
    assert not stopped.finished and stopped.epochs_done == 1 and "test_acc" not in stopped
    resumed_cb = CountCalls()
    resumed = train(resume=tmp_path / "part", callbacks=[ShrinkWeights(), resumed_cb])
    assert resumed_cb.calls == full_cb.calls  # the callback's state came back with last.pt
    assert resumed["test_acc"] == full["test_acc"]
    wa, wb = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=1e-6), k
    # the callback really acted: without it the weights differ
    plain = train(cfg(tmp_path, "plain", epochs=3))
    assert plain.finished
    wc = _weights(tmp_path / "plain")
    assert any(not torch.allclose(wa[k], wc[k]) for k in wa if wa[k].ndim > 1)


def test_steps_are_registered_per_data_kind():
    from spikeloom.train import STEPS, StepOutput, classification_step

    assert STEPS.get("frames") is classification_step
    model = torch.nn.Sequential(torch.nn.Flatten(2), torch.nn.Linear(6, 3))
    x, y = torch.rand(4, 2, 2, 3), torch.tensor([0, 2])
    out = classification_step(model, (x, y), "ce", torch.device("cpu"))
    assert isinstance(out, StepOutput) and out.n == 2
    rate = model(x).mean(0)
    expected = torch.nn.functional.cross_entropy(rate, y, reduction="sum")
    assert out.loss_sum.item() == pytest.approx(expected.item())
    assert out.correct.item() == int((rate.argmax(-1) == y).sum())
    with pytest.raises(ConfigError, match="per_step=True"):
        classification_step(model, (x, y), "per_step_ce", torch.device("cpu"))


def test_cli_options_are_derived_from_config_fields():
    import dataclasses

    from spikeloom.cli import build_parser
    from spikeloom.train.config import cli_fields

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    cli = {f.name: f for f in cli_fields()}
    assert set(cli) == fields - {"dataset_kwargs", "model_kwargs", "imports", "compress"}
    assert cli["num_workers"].flag == "--workers" and cli["progress"].negates
    assert cli["deterministic"].switch
    args = build_parser().parse_args(["train", "--cost-batches", "2", "--no-plots",
                                      "--momentum", "0.5", "--deterministic"])
    from spikeloom.cli.train import config_from_args

    c = config_from_args(args)
    assert (c.cost_batches, c.plots, c.momentum, c.deterministic) == (2, False, 0.5, True)
    assert c.progress is True  # untouched options keep the config default
