"""``spikeloom export RUN_DIR --format nir|onnx OUT`` on a tiny trained run."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("nir", reason="the optional 'nir' package (extra 'interop') is absent")
pytest.importorskip("onnxruntime", reason="onnxruntime (extra 'interop') is absent")

from spikeloom.cli import main as cli_main  # noqa: E402
from spikeloom.export import read_nir  # noqa: E402
from spikeloom.export.onnx import run_onnx  # noqa: E402
from spikeloom.train import load_run  # noqa: E402


def test_cli_export_nir_and_onnx(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    # liafnet with LIF neurons (average pooling); the default spiking_cnn max-pools, which NIR
    # cannot express
    assert cli_main(["train", "--epochs", "1", "--max-samples", "48", "--batch-size", "16",
                     "--model", "liafnet", "--model-arg", "channels=[4]", "--model-arg", "hidden=8",
                     "--model-arg", "neuron=lif", "--out", str(run), "--no-progress",
                     "--threads", "1"]) == 0
    capsys.readouterr()
    assert cli_main(["export", str(run), "--format", "nir", str(tmp_path / "m.nir")]) == 2
    assert "--dt" in capsys.readouterr().err
    assert cli_main(["export", str(run), "--format", "nir", str(tmp_path / "m.nir"),
                     "--dt", "1e-3"]) == 0
    assert cli_main(["export", str(run), "--format", "onnx", str(tmp_path / "m.onnx"),
                     "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "NIR graph with" in out and "outputs logits, neuron_0, neuron_1" in out
    _, model, data = load_run(run)
    x = torch.stack([data["test"][i][0] for i in range(2)], dim=1)  # [T, 2, C, H, W]
    with torch.no_grad():
        ref_steps, ref = model(x, per_step=True), model(x)
        torch.testing.assert_close(read_nir(tmp_path / "m.nir")(x), ref_steps, atol=1e-5,
                                   rtol=1e-5)  # tdBN folded: equal up to rounding
    torch.testing.assert_close(run_onnx(tmp_path / "m.onnx", x)["logits"], ref, atol=1e-5,
                               rtol=1e-5)


def test_cli_export_names_the_unsupported_layer(tmp_path, capsys) -> None:
    run = tmp_path / "liaf"
    assert cli_main(["train", "--epochs", "1", "--max-samples", "16", "--batch-size", "16",
                     "--model", "liafnet", "--model-arg", "channels=[4]", "--model-arg", "hidden=8",
                     "--out", str(run), "--no-progress", "--threads", "1"]) == 0
    capsys.readouterr()
    assert cli_main(["export", str(run), "--format", "nir", str(tmp_path / "m.nir"),
                     "--dt", "1e-3"]) == 2
    err = capsys.readouterr().err
    assert "'features.0.3' (LIAF)" in err and "supported layers" in err
