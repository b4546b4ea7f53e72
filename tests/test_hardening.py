"""Regression tests of the hardening issue: no silent wrong runs, clear errors, run-dir lock."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from spikeloom.atomic import host_tag
from spikeloom.cli import main as cli_main
from spikeloom.errors import ConfigError, NonFiniteError, TrainingError
from spikeloom.neurons import LIF
from spikeloom.train import Callback, TrainConfig, train

SMALL = dict(dataset="esdigits", model="liafnet", model_kwargs={"channels": [4, 8], "hidden": 16},
             batch_size=32, max_samples=64, progress=False, plots=False, cost=False, threads=1)
CLI_SMALL = ["--max-samples", "64", "--batch-size", "32", "--model-arg", "channels=[4, 8]",
             "--model-arg", "hidden=16", "--no-plots", "--no-cost", "--threads", "1"]


def cfg(tmp_path: Path, name: str, **kw) -> TrainConfig:
    return TrainConfig.from_dict({**SMALL, "out": str(tmp_path / name), **kw})


def _dead_pid() -> int:
    p = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                       capture_output=True, text=True, check=True)
    return int(p.stdout)


# ----------------------------------------------------------------------- silent wrong behaviour


def test_max_samples_takes_a_stratified_seeded_subset(tmp_path, capsys):
    from spikeloom.datasets import build_dataset
    from spikeloom.train.build import limit

    ds = build_dataset("esdigits", "train")
    sub, note = limit(ds, 30, seed=0)
    labels = [int(ds.labels[i]) for i in sub.indices]
    assert len(labels) == 30 and sorted(set(labels)) == list(range(10))
    assert max(labels.count(c) for c in range(10)) - min(labels.count(c) for c in range(10)) <= 1
    assert limit(ds, 30, seed=0)[0].indices == sub.indices  # seeded
    assert limit(ds, 30, seed=1)[0].indices != sub.indices
    assert "30 of 1258 samples" in note and "stratified" in note
    train(cfg(tmp_path, "r", epochs=1, max_samples=30))
    assert "max_samples: train: 30 of 1258 samples" in capsys.readouterr().out


def test_fresh_run_into_a_used_directory_is_refused(tmp_path):
    train(cfg(tmp_path, "r", epochs=1))
    with pytest.raises(ConfigError, match=r"already holds a run.*--resume .*--overwrite"):
        train(cfg(tmp_path, "r", epochs=1))
    res = train(cfg(tmp_path, "r", epochs=1, overwrite=True, seed=3))
    assert res.finished
    lines = (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1  # the old run's files were removed, not interleaved


def test_run_directory_lock(tmp_path):
    run = tmp_path / "locked"
    run.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / ".lock").write_text(f"{host_tag()} {sleeper.pid}\n")
        with pytest.raises(ConfigError, match=f"in use by process {sleeper.pid}"):
            train(cfg(tmp_path, "locked", epochs=1))
    finally:
        sleeper.kill()
        sleeper.wait()
    (run / ".lock").write_text(f"{host_tag()} {_dead_pid()}\n")  # stale: taken over
    assert train(cfg(tmp_path, "locked", epochs=1)).finished
    assert not (run / ".lock").exists()  # released at the end


def test_resume_applies_more_epochs_and_refuses_other_changes(tmp_path, capsys):
    run = tmp_path / "r"
    first = train(cfg(tmp_path, "r", epochs=1))
    capsys.readouterr()
    again = train(resume=run, overrides={"epochs": 1})  # finished: nothing is re-tested
    assert "complete" in capsys.readouterr().out and again["test_acc"] == first["test_acc"]
    with pytest.raises(ConfigError, match="cannot change lr"):
        train(resume=run, overrides={"lr": 0.5})
    assert cli_main(["train", "--resume", str(run), "--lr", "0.5"]) == 2
    more = train(resume=run, overrides={"epochs": 2})
    assert more.finished and more.epochs_done == 2
    assert TrainConfig.from_yaml(run / "config.yaml").epochs == 2
    epochs = [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]


@pytest.mark.parametrize(("key", "value", "msg"), [
    ("deterministic", "no", "'deterministic' must be true or false"),
    ("lr", "fast", "'lr' must be a number"),
    ("epochs", 2.5, "'epochs' must be an integer"),
    ("dataset_kwargs", [1, 2], "'dataset_kwargs' must be a mapping"),
    ("threads", 0, "threads must be an integer >= 1"),
])
def test_config_types_are_validated(key, value, msg):
    with pytest.raises(ConfigError, match=msg):
        TrainConfig.from_dict({key: value})


def test_numeric_strings_are_coerced():
    c = TrainConfig.from_dict({"lr": "1e-3", "epochs": "3", "grad_clip": "0.5"})
    assert (c.lr, c.epochs, c.grad_clip) == (1e-3, 3, 0.5)


def test_nan_input_to_a_neuron_raises():
    x = torch.zeros(4, 2, 3)
    x[2, 1, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="NaN or infinite"):
        LIF()(x)
    x[2, 1, 0] = float("inf")
    with pytest.raises(NonFiniteError):
        LIF(reset="soft")(x)
    lif = LIF()
    lif.check_finite = False
    assert lif(x).shape == x.shape


class PoisonWeights(Callback):
    def after_step(self, ctx):
        with torch.no_grad():
            ctx.model.features[0][0].module.weight.fill_(float("nan"))


def test_trainer_names_the_layer_that_got_nan(tmp_path):
    with pytest.raises(TrainingError, match=r"layer 'features\.0\.3' \(LIAF\).*NaN"):
        train(cfg(tmp_path, "nan", epochs=1), callbacks=[PoisonWeights()])
    assert not (tmp_path / "nan" / ".lock").exists()


# ----------------------------------------------------------------------- errors, not tracebacks


def test_no_progress_keeps_results_and_quiet_silences(tmp_path, capsys):
    assert cli_main(["train", "--epochs", "1", "--no-progress", "--out", str(tmp_path / "a"),
                     *CLI_SMALL]) == 0
    out = capsys.readouterr().out
    assert "epoch   1/1" in out and "test accuracy" in out
    assert cli_main(["train", "--epochs", "1", "--quiet", "--out", str(tmp_path / "b"),
                     *CLI_SMALL]) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("argv", [
    ["--T", "4"],
    ["--dataset-arg", "colour=red"],
    ["--threads", "0"],
    ["--device", "cuda:x"],
])
def test_bad_train_options_are_one_line_errors(tmp_path, capsys, argv):
    rc = cli_main(["train", "--epochs", "1", "--out", str(tmp_path / "x"), *CLI_SMALL, *argv])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("spikeloom train: error:") and "Traceback" not in err


def test_bad_config_files_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1\n")
    assert cli_main(["train", "--config", str(bad)]) == 2
    assert "is not valid YAML (line" in capsys.readouterr().err
    bad.write_text("- epochs\n- 3\n")
    assert cli_main(["train", "--config", str(bad)]) == 2
    assert "must hold a mapping" in capsys.readouterr().err


def test_unwritable_out_fails_before_building(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    t0 = time.perf_counter()
    assert cli_main(["train", "--out", str(blocker / "run"), *CLI_SMALL]) == 2
    assert "cannot write to the run directory" in capsys.readouterr().err
    assert time.perf_counter() - t0 < 5


def test_damaged_checkpoint_and_cpu_only_device_are_clear(tmp_path, capsys):
    run = tmp_path / "r"
    train(cfg(tmp_path, "r", epochs=2), stop_after_epochs=1)
    (run / "checkpoints" / "last.pt").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"last\.pt is damaged or truncated.*best\.pt"):
        train(resume=run)
    assert not (run / ".lock").exists()
    if not torch.cuda.is_available():
        assert cli_main(["eval", str(run), "--device", "cuda"]) == 2
        assert "no CUDA GPU" in capsys.readouterr().err


class Interrupt(Callback):
    def __init__(self, at_epoch: int) -> None:
        self.at_epoch = at_epoch

    def after_step(self, ctx):
        if ctx.epoch == self.at_epoch:
            raise KeyboardInterrupt


def test_ctrl_c_keeps_the_checkpoint_and_resume_works(tmp_path, monkeypatch, capsys):
    run = tmp_path / "r"
    with pytest.raises(KeyboardInterrupt):
        train(cfg(tmp_path, "r", epochs=2), callbacks=[Interrupt(1)])
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=False)["epoch"] == 1
    assert not (run / ".lock").exists()
    assert train(resume=run).finished

    T = sys.modules["spikeloom.train"]  # the package (spikeloom.train is also the function)

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(T, "train", interrupted)
    assert cli_main(["train", "--out", str(tmp_path / "c"), *CLI_SMALL]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and f"spikeloom train --resume {tmp_path / 'c'}" in err


class SlowFirstEpoch(Callback):
    def after_step(self, ctx):
        if ctx.epoch == 0 and ctx.step == 1:
            time.sleep(0.5)


def test_seconds_are_cumulative_over_resume_and_temps_are_cleaned(tmp_path):
    run = tmp_path / "r"
    train(cfg(tmp_path, "r", epochs=2), stop_after_epochs=1, callbacks=[SlowFirstEpoch()])
    leftover = run / "checkpoints" / f".last.pt.{host_tag()}.{_dead_pid()}.0abc.tmp"
    leftover.write_bytes(b"")
    final = train(resume=run)
    hist = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert hist[1]["seconds"] > hist[0]["seconds"] >= 0.5
    assert final["train_seconds"] == hist[1]["seconds"]
    assert not leftover.exists()


def test_run_files_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        train(cfg(tmp_path, "r", epochs=1))
    finally:
        os.umask(old)
    for f in ("config.yaml", "final.json", "checkpoints/last.pt", "checkpoints/best.pt",
              "metrics.jsonl"):
        assert (tmp_path / "r" / f).stat().st_mode & 0o777 == 0o644, f
    assert socket.gethostname()  # the lock names the host


# ----------------------------------------------------------------------- user datasets

USER_MODULE = '''
import torch
from torch.utils.data import Dataset

from spikeloom.datasets import DATASETS
from spikeloom.datasets.spec import DataSpec


class Blobs(Dataset):
    """Two classes of random frames that differ in density."""

    spec = DataSpec("frames", num_classes=2, T=4, channels=2, size=(8, 8))

    def __init__(self, split):
        g = torch.Generator().manual_seed({"train": 0, "val": 1, "test": 2}[split])
        self.labels = torch.arange(24) % 2
        p = 0.1 + 0.4 * self.labels.view(-1, 1, 1, 1, 1).float()
        self.x = (torch.rand(24, 4, 2, 8, 8, generator=g) < p).float()

    def __len__(self):
        return 24

    def __getitem__(self, i):
        return self.x[i], int(self.labels[i])


DATASETS.register("blobs_user", lambda split, root=None, **kw: Blobs(split))
'''


def test_user_dataset_registered_by_an_imported_module(tmp_path, capsys):
    (tmp_path / "user_blobs.py").write_text(USER_MODULE)
    sys.path.insert(0, str(tmp_path))
    try:
        run = tmp_path / "run"
        assert cli_main(["train", "--import", "user_blobs", "--dataset", "blobs_user",
                         "--epochs", "2", "--batch-size", "8", "--model-arg", "channels=[4]",
                         "--model-arg", "hidden=8", "--out", str(run), "--no-plots",
                         "--threads", "1", "--quiet"]) == 0
        assert TrainConfig.from_yaml(run / "config.yaml").imports == ["user_blobs"]
    finally:
        sys.path.remove(str(tmp_path))
    # a fresh process (nothing registered) evaluates and costs the run through config imports
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for cmd in (["eval", str(run)], ["cost", str(run)]):
        p = subprocess.run([sys.executable, "-m", "spikeloom.cli", *cmd], env=env,
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    final = json.loads((run / "final.json").read_text())
    assert final["test_n"] == 24
    with pytest.raises(ConfigError, match="cannot import 'no_such_module_xyz'"):
        train(cfg(tmp_path, "bad", epochs=1, imports=["no_such_module_xyz"]))
