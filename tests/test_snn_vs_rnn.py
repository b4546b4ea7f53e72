"""The SNN-vs-RNN protocol (spec §9): models, rate-coded RNN readout, RNN cost counters,
frame width dt as a dataset option, ``spikeloom eval --dataset-arg`` and ``spikeloom compare``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spikeloom.cli import main as cli_main
from spikeloom.compare import check_protocol, compare
from spikeloom.cost import measure_cost
from spikeloom.datasets import build_dataset
from spikeloom.datasets.spec import DataSpec
from spikeloom.errors import ConfigError
from spikeloom.events.core import make_events
from spikeloom.events.io import write_nmnist_bin
from spikeloom.models import ConvRecurrent, RecurrentMLP, build_model, count_parameters
from spikeloom.neurons import LIF
from spikeloom.train import TrainConfig, compute_loss

NMNIST_SPEC = DataSpec("frames", 10, T=15, channels=2, size=(34, 34))


def test_rate_coded_readout_with_one_step_is_the_last_step_readout():
    """Spec §9 test: with T = 1 the rate-coded RNN loss is the usual last-step loss."""
    torch.manual_seed(0)
    mean = RecurrentMLP(12, 4, hidden=[6], cell="lstm", readout="mean")
    last = RecurrentMLP(12, 4, hidden=[6], cell="lstm", readout="last")
    last.load_state_dict(mean.state_dict())
    y = torch.tensor([0, 3])
    x1 = torch.rand(1, 2, 12)
    for kind in ("mse", "ce"):
        assert torch.equal(compute_loss(mean(x1), y, kind), compute_loss(last(x1), y, kind))
    x5 = torch.rand(5, 2, 12)
    per = mean(x5, per_step=True)
    torch.testing.assert_close(mean(x5), per.mean(0))  # readout at every step, averaged
    torch.testing.assert_close(last(x5), per[-1])
    assert not torch.allclose(mean(x5), last(x5))


def test_widths_match_the_snn_mlp_of_the_paper():
    """N-MNIST 2×34×34 = 2312 inputs: SNN 2312→512→10; RNN/LSTM hidden 512 + readout."""
    snn = build_model("snn_mlp", NMNIST_SPEC)
    assert count_parameters(snn) == 2312 * 512 + 512 + 512 * 10 + 10
    lifs = [m for m in snn.modules() if isinstance(m, LIF)]
    assert len(lifs) == 2  # hidden layer and spiking output layer
    assert (lifs[0].v_th, lifs[0].decay, lifs[0].surrogate.a) == (0.3, 0.3, 0.5)
    rnn = build_model("rnn", NMNIST_SPEC)
    assert count_parameters(rnn) == 512 * (2312 + 512 + 2) + 512 * 10 + 10
    lstm = build_model("lstm", NMNIST_SPEC)
    assert count_parameters(lstm) == 4 * 512 * (2312 + 512 + 2) + 512 * 10 + 10
    gru = build_model("gru", NMNIST_SPEC)
    assert count_parameters(gru) == 3 * 512 * (2312 + 512 + 2) + 512 * 10 + 10


@pytest.mark.parametrize("name", ["snn_mlp", "rnn", "gru", "lstm", "snn_cnn", "convrnn",
                                  "convlstm"])
def test_models_run_any_T_and_backpropagate_through_time(name):
    spec = DataSpec("frames", 3, T=4, channels=2, size=(8, 8))
    kw = {"hidden": [8]} if name in ("snn_mlp", "rnn", "gru", "lstm") else \
        {"channels": [3, 4], "pool_after": [0, 1], "hidden": 5}
    torch.manual_seed(0)
    model = build_model(name, spec, **kw)
    for T in (4, 7):  # built without a fixed T: frames of another width dt give another T
        assert model(torch.rand(T, 2, 2, 8, 8)).shape == (2, 3)
        assert model(torch.rand(T, 2, 2, 8, 8), per_step=True).shape == (T, 2, 3)
    if name.startswith("snn"):
        return
    # BPTT: the output at the last step depends on the input of the first step
    x = torch.rand(4, 2, 2, 8, 8, requires_grad=True)
    model(x, per_step=True)[-1].sum().backward()
    assert x.grad[0].abs().sum() > 0


def test_conv_recurrent_cells_match_their_equations():
    torch.manual_seed(1)
    x = torch.randn(3, 2, 2, 5, 5)
    for cell in ("rnn", "lstm"):
        layer = ConvRecurrent(2, 3, 3, cell=cell)
        wx, bx = layer.conv_x.module.weight, layer.conv_x.module.bias
        wh = layer.conv_h.weight
        h = torch.zeros(2, 3, 5, 5)
        c = torch.zeros(2, 3, 5, 5)
        outs = []
        for t in range(3):
            z = F.conv2d(x[t], wx, bx, padding=1) + F.conv2d(h, wh, padding=1)
            if cell == "rnn":
                h = torch.tanh(z)
            else:
                i, f, g, o = z.chunk(4, 1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        torch.testing.assert_close(layer(x), torch.stack(outs))


def test_lstm_cost_counts_by_hand():
    """LSTM F=3 -> H=2, T=3, one sample, binary input with 4 non-zeros.

    Dense = T·4H·(F + H) = 3·8·5 = 120; input ACs = 4 non-zeros · 4H = 32; recurrent MACs =
    non-zeros of h[0], h[1] (4 values, all non-zero) · 4H = 32; readout Linear 2→2: 3 steps ·
    2 · 2 = 12 dense, 12 MACs.
    """
    torch.manual_seed(0)
    model = RecurrentMLP(3, 2, hidden=[2], cell="lstm")
    x = torch.tensor([[[1.0, 0, 1]], [[0, 0, 0]], [[1, 1, 0]]])  # [T=3, B=1, F=3]
    rep = measure_cost(model, [(x, torch.tensor([0]))])
    rows = {r.name: r for r in rep.rows}
    lstm = rows["layers.0"]
    assert lstm.dense_macs == 120
    assert lstm.eff_acs == 32
    assert lstm.eff_macs == 32
    assert rows["fc"].dense_macs == 12 and rows["fc"].eff_macs == 12
    assert rep.totals["SynOps"] == 32 + 32 + 12


def _synthetic_nmnist(root: Path, per_class: int = 6) -> Path:
    """Digits 0 and 1: class 0 fires on the left half, class 1 on the right, over 0..200 ms."""
    rng = np.random.default_rng(0)
    for part, n_files in (("Train", per_class), ("Test", 3)):
        for digit in (0, 1):
            (root / part / str(digit)).mkdir(parents=True)
            for k in range(n_files):
                n = 300
                xs = rng.integers(0, 17, n) + 17 * digit
                ev = make_events(xs, rng.integers(0, 34, n), rng.integers(0, 2, n),
                                 np.sort(rng.integers(0, 200_000, n)), (34, 34, 2))
                write_nmnist_bin(root / part / str(digit) / f"{k:05d}.bin", ev)
    return root


@pytest.fixture(scope="module")
def nmnist_tiny(tmp_path_factory) -> Path:
    return _synthetic_nmnist(tmp_path_factory.mktemp("nmnist"))


def test_nmnist_frame_width_dt_keeps_every_event_of_the_window(nmnist_tiny):
    """Spec §9 test: T frames of dt hold exactly the events of [t0, t0 + T·dt)."""
    for T, dt in ((4, 10_000), (5, 50_000)):
        ds = build_dataset("nmnist", "test", root=str(nmnist_tiny), T=T, dt_us=dt,
                           cache_dir=False)
        assert ds.spec.T == T
        for i in range(2):
            frames, _ = ds[i]
            t = np.asarray(ds.events(i)["t"], dtype=np.int64)
            assert frames.shape == (T, 2, 34, 34)
            assert int(frames.sum()) == int(((t - t.min()) < T * dt).sum())


def _cfg(root: Path, model: str, out: Path, **kw) -> TrainConfig:
    return TrainConfig.from_dict({
        "dataset": "nmnist", "root": str(root), "model": model,
        "dataset_kwargs": {"T": 4, "dt_us": 50_000, "cache_dir": False, "val_fraction": 0.25},
        "model_kwargs": {"hidden": [8]}, "epochs": 1, "batch_size": 4, "loss": "mse",
        "progress": False, "plots": False, "cost_batches": 1, "threads": 1, "quiet": True,
        "out": str(out), **kw})


def test_compare_table_and_eval_at_another_dt(nmnist_tiny, tmp_path, capsys):
    cfgs = {m: _cfg(nmnist_tiny, m, tmp_path / "unused") for m in ("snn_mlp", "rnn", "lstm")}
    rows = compare(cfgs, tmp_path / "cmp", [{"dt_us": 100_000, "T": 2}])
    assert [r.model for r in rows] == ["snn_mlp", "rnn", "lstm"]
    for r in rows:
        assert 0.0 <= r.test_acc <= 1.0 and 0.0 <= r.other_acc["dt_us=100000,T=2"] <= 1.0
        model = build_model(r.model, NMNIST_SPEC, hidden=[8], num_classes=10)
        assert r.params == count_parameters(model)
        assert r.energy_j > 0 and r.dense_macs > 0
    snn, rnn = rows[0], rows[1]
    # same input layer (2312 -> 8, same validation batches); the RNN adds MACs on its analog
    # hidden state (recurrent products and readout), the SNN's output layer reads spikes
    assert rnn.eff_macs > snn.eff_macs > 0
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "test acc (dt_us=50000,T=4)" in md  # the training setting, same keys
    assert "test acc (dt_us=100000,T=2)" in md and md.count("\n| ") == 3
    saved = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert [r["name"] for r in saved["rows"]] == ["snn_mlp", "rnn", "lstm"]
    # the eval command gives the same accuracy at the other dt
    code = cli_main(["eval", str(tmp_path / "cmp" / "rnn"), "--dataset-arg", "dt_us=100000",
                     "--dataset-arg", "T=2"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dataset_overrides"] == {"dt_us": 100000, "T": 2}
    assert out["acc"] == pytest.approx(rnn.other_acc["dt_us=100000,T=2"])
    # a second compare reuses the finished runs (no retraining: same numbers, same mtimes)
    mtime = (tmp_path / "cmp" / "rnn" / "final.json").stat().st_mtime_ns
    again = compare(cfgs, tmp_path / "cmp", [])
    assert again[1].test_acc == rnn.test_acc
    assert (tmp_path / "cmp" / "rnn" / "final.json").stat().st_mtime_ns == mtime


def test_compare_refuses_two_protocols(nmnist_tiny, tmp_path):
    a = _cfg(nmnist_tiny, "snn_mlp", tmp_path / "a")
    b = _cfg(nmnist_tiny, "rnn", tmp_path / "b", epochs=2)
    with pytest.raises(ConfigError, match="differ in 'epochs'"):
        check_protocol({"snn": a, "rnn": b})


def test_compare_cli_with_models(nmnist_tiny, tmp_path, capsys):
    code = cli_main(["compare", "--models", "snn_mlp,gru", "--dataset", "nmnist", "--root",
                     str(nmnist_tiny), "--dataset-arg", "T=3", "--dataset-arg", "dt_us=60000",
                     "--dataset-arg", "cache_dir=false", "--dataset-arg", "val_fraction=0.25",
                     "--model-arg", "hidden=[4]", "--epochs", "1", "--batch-size", "4",
                     "--no-progress", "--no-plots", "--quiet", "--threads", "1",
                     "--test-arg", "dt_us=30000", "--test-arg", "T=6",
                     "--out", str(tmp_path / "cli")])
    assert code == 0
    out = capsys.readouterr().out
    assert "| snn_mlp | snn_mlp |" in out and "| gru | gru |" in out
    assert "test acc (dt_us=30000,T=6)" in out


_CONFIG_SPECS = {"nmnist": DataSpec("frames", 10, T=15, channels=2, size=(34, 34)),
                 "dvsgesture": DataSpec("frames", 11, T=60, channels=2, size=(32, 32))}


@pytest.mark.parametrize("setting", ["nmnist", "gesture"])
def test_snn_vs_rnn_configs_are_one_protocol_and_train_a_step(setting):
    """Every ``configs/snn_vs_rnn_<setting>_*.yaml`` loads, the set is one protocol, and each
    model takes one training step on synthetic frames of the declared shape (2 steps: the
    models accept any T)."""
    from spikeloom.models import build_model as build

    paths = sorted((Path(__file__).resolve().parents[1] / "configs").glob(
        f"snn_vs_rnn_{setting}_*.yaml"))
    assert len(paths) >= 3
    cfgs = {p.stem: TrainConfig.from_yaml(p) for p in paths}
    check_protocol(cfgs)
    for name, cfg in cfgs.items():
        spec = _CONFIG_SPECS[cfg.dataset]
        assert cfg.dataset_kwargs["T"] == spec.T
        torch.manual_seed(0)
        model = build(cfg.model, spec, **cfg.model_kwargs)
        x = (torch.rand(2, 2, spec.channels, *spec.size) < 0.05).float()
        loss = compute_loss(model(x, per_step=True), torch.tensor([0, 1]), cfg.loss)
        loss.backward()
        assert torch.isfinite(loss), name
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad), name


def test_build_from_spec_equals_explicit_arguments():
    """The protocol's models derive their sizes from a DataSpec like explicit arguments do."""
    spec = DataSpec("frames", 4, T=6, channels=2, size=(16, 16))
    flat = {"in_features": 2 * 16 * 16, "num_classes": 4}
    conv = {"in_channels": 2, "num_classes": 4, "input_size": (16, 16)}
    cases = {"snn_mlp": (flat, {"hidden": [8]}), "rnn": (flat, {"hidden": [8]}),
             "gru": (flat, {"hidden": [8]}), "lstm": (flat, {"hidden": [8]}),
             **{n: (conv, {"channels": [3], "pool_after": [0], "hidden": 4})
                for n in ("snn_cnn", "convrnn", "convlstm")}}
    for name, (explicit, kw) in cases.items():
        torch.manual_seed(0)
        a = build_model(name, spec, **kw)
        torch.manual_seed(0)
        b = build_model(name, **explicit, **kw)
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), name
    seq = DataSpec("sequence", 5, T=10, channels=7)  # MLP twins also take sequences [T, B, C]
    for name in ("snn_mlp", "rnn", "lstm"):
        assert build_model(name, seq, hidden=[4])(torch.rand(10, 3, 7)).shape == (3, 5)
