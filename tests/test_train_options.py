"""Trainer options: bf16 autocast, gradient accumulation (exact, resumable), torch.compile."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spikeloom.models import build_model
from spikeloom.train import ConfigError, TrainConfig, compute_loss, train

TINY = dict(
    dataset="esdigits",
    model="liafnet",
    # no normalisation: accumulation is exact only without batch statistics
    model_kwargs={"channels": [4, 8], "hidden": 16, "norm": None},
    max_samples=64,
    progress=False,
    plots=False,
    cost=False,
    threads=1,
    grad_clip=None,
    schedule="none",
    epochs=1,
)


def cfg(tmp_path: Path, name: str, **kw) -> TrainConfig:
    return TrainConfig.from_dict({**TINY, "out": str(tmp_path / name), **kw})


def _weights(run: Path, which: str = "last") -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / f"{which}.pt", weights_only=False)["model"]


def test_bad_options_are_rejected():
    with pytest.raises(ConfigError, match="amp must be one of none, bf16"):
        TrainConfig.from_dict({"amp": "fp8"})
    with pytest.raises(ConfigError, match="accum_steps must be an integer >= 1"):
        TrainConfig.from_dict({"accum_steps": 0})


def test_bf16_autocast_loss_is_close_to_fp32():
    torch.manual_seed(0)
    model = build_model("liafnet", channels=(4, 8), hidden=16, input_size=(32, 32))
    x = (torch.rand(4, 3, 2, 32, 32) < 0.2).float()
    y = torch.tensor([0, 1, 2])
    ref = compute_loss(model(x), y, "ce")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
        low = compute_loss(out, y, "ce")
    assert out.dtype == torch.bfloat16  # autocast really ran the layers in bf16
    assert low.item() == pytest.approx(ref.item(), rel=2e-2)
    low.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_bf16_training_runs_and_tracks_fp32(tmp_path):
    a = train(cfg(tmp_path, "fp32", batch_size=32))
    b = train(cfg(tmp_path, "bf16", batch_size=32, amp="bf16"))
    la = a.history[0]["train_loss"]
    lb = b.history[0]["train_loss"]
    assert lb == pytest.approx(la, rel=5e-2)
    wa, wb = _weights(tmp_path / "fp32"), _weights(tmp_path / "bf16")
    assert all(wb[k].dtype == torch.float32 for k in wb)  # master weights stay fp32
    assert any(not torch.equal(wa[k], wb[k]) for k in wa)  # bf16 really changed the arithmetic


def test_accumulation_equals_one_big_batch(tmp_path):
    """2 steps of 32 samples == 2 optimizer steps of 2 accumulated micro-batches of 16."""
    big = train(cfg(tmp_path, "big", batch_size=32, optimizer="sgd", lr=0.5))
    acc = train(cfg(tmp_path, "acc", batch_size=16, accum_steps=2, optimizer="sgd", lr=0.5))
    wa, wb = _weights(tmp_path / "big"), _weights(tmp_path / "acc")
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=1e-6, rtol=1e-5), k
    # and it is not the same as 4 plain steps of 16
    train(cfg(tmp_path, "small", batch_size=16, optimizer="sgd", lr=0.5))
    w0 = _weights(tmp_path / "small")
    assert any(not torch.allclose(wa[k], w0[k], atol=1e-4) for k in wa)
    assert big.history[0]["train_loss"] == pytest.approx(acc.history[0]["train_loss"], rel=1e-5)


def test_accumulation_counts_optimizer_steps_in_schedule(tmp_path):
    """64 samples in batches of 8 = 8 batches = ceil(8 / 3) = 3 optimizer steps; the cosine
    schedule reaches 0 at the last one."""
    train(cfg(tmp_path, "cos", batch_size=8, accum_steps=3, schedule="cosine",
              optimizer="sgd", lr=0.1))
    ck = torch.load(tmp_path / "cos" / "checkpoints" / "last.pt", weights_only=False)
    assert ck["schedule"]["last_epoch"] == 3
    assert ck["schedule"]["_last_lr"][0] == pytest.approx(0.0, abs=1e-12)


def test_resume_with_accumulation_is_exact(tmp_path):
    kw = dict(batch_size=16, accum_steps=2, epochs=3, schedule="cosine")
    full = train(cfg(tmp_path, "full", **kw))
    train(cfg(tmp_path, "part", **kw), stop_after_epochs=1)
    resumed = train(resume=tmp_path / "part")
    assert resumed["test_loss"] == pytest.approx(full["test_loss"], abs=1e-6)
    wa, wb = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=1e-6), k


def test_compile_gives_the_same_weights(tmp_path):
    """torch.compile with the ``aot_eager`` backend (no C++ code generation, fast enough for
    CI; ``inductor`` is the default) on a tiny RNN; the compiled run reaches the eager run's
    weights."""
    from torch._dynamo.utils import counters

    kw = dict(model="rnn", model_kwargs={"hidden": [16]}, batch_size=32, max_samples=32)
    eager = train(cfg(tmp_path, "eager", **kw))
    before = counters["stats"]["unique_graphs"]
    comp = train(cfg(tmp_path, "comp", compile=True, compile_backend="aot_eager", **kw))
    assert counters["stats"]["unique_graphs"] > before  # dynamo really compiled the model
    assert comp["test_loss"] == pytest.approx(eager["test_loss"], abs=1e-5)
    wa, wb = _weights(tmp_path / "eager"), _weights(tmp_path / "comp")
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=1e-5), k
