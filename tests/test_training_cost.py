"""Training-step cost model (spec C3, H2Learn-like reconstruction): spec vectors, invariants,
measurement with hooks on a small spiking net and the ``spikeloom cost --training`` command."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from spikeloom.cli import main as cli_main
from spikeloom.cost.training import (
    LayerTrainingCost,
    expected_counts,
    lut_counts,
    measure_training_cost,
)
from spikeloom.layers import TimeDistributed
from spikeloom.neurons import LIF


def _h2l(c: dict) -> float:
    return sum(v for k, v in c.items() if not k.startswith("dense"))


def test_spec_example_layer_exact_counts():
    S = torch.tensor([[1, 0, 0, 0, 0, 0, 0, 0], [1, 1, 0, 1, 0, 0, 0, 0]], dtype=torch.float32)
    G = torch.tensor([[0.5, 0.0], [0.0, 0.0]])
    Q = torch.tensor([[1, 0, 1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 1]])
    c = lut_counts(S, G, Q, g_f=4, g_w=2)
    assert (c["dense_fwd"], c["dense_bwd"], c["dense_wu"]) == (32, 32, 32)
    assert (c["fwd_lookups"], c["fwd_build"]) == (4, 44)  # worse than dense at tiny M
    assert c["bwd_macs"] == 2
    assert (c["wu_build"], c["wu_lookups"]) == (1, 8)  # output 1's group skipped
    assert c["fwd_macs"] == c["wu_macs"] == 0


def test_spec_expected_value_model_ratio():
    c = expected_counts(1024, 512, 512, 0.1, 0.2, 0.2, g_f=4, g_w=4)
    assert c["dense_fwd"] * 3 == 805_306_368
    assert c["fwd_lookups"] == pytest.approx(23.08e6, rel=1e-3)
    assert c["fwd_build"] == pytest.approx(0.72e6, rel=2e-3)
    assert c["bwd_macs"] == pytest.approx(10.74e6, rel=1e-3)
    assert c["wu_lookups"] + c["wu_build"] == pytest.approx(40.47e6, rel=1e-3)
    assert 805_306_368 / _h2l(c) == pytest.approx(10.7, abs=0.05)


def test_full_densities_and_unit_groups_reduce_to_dense():
    c = expected_counts(64, 9, 5, 1.0, 1.0, 1.0, g_f=1, g_w=1)
    assert c["fwd_build"] == c["wu_build"] == 0
    assert c["fwd_lookups"] == c["bwd_macs"] == c["wu_lookups"] == 64 * 9 * 5
    S, G = torch.ones(6, 7), torch.full((6, 3), 0.3)
    e = lut_counts(S, G, 1.0, g_f=1, g_w=1)
    assert e["fwd_lookups"] == e["bwd_macs"] == e["wu_lookups"] == e["dense_fwd"] == 126


def test_counts_are_monotone_in_each_density():
    base = _h2l(expected_counts(256, 64, 32, 0.1, 0.2, 0.3))
    for i in range(3):
        d = [0.1, 0.2, 0.3]
        d[i] += 0.2
        assert _h2l(expected_counts(256, 64, 32, *d)) > base


def test_analog_input_costs_macs_on_nonzeros():
    S = torch.tensor([[0.5, 0.0, 0.25], [0.0, 0.0, 1.0]])
    G = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    c = lut_counts(S, G, 1.0)
    assert c["fwd_lookups"] == 0 and c["fwd_macs"] == 3 * 2
    assert c["wu_macs"] == 2 + 1  # non-zero (S[m, j], G[m, o]) pairs


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        TimeDistributed(nn.Conv2d(1, 4, 3, padding=1)), LIF(v_th=0.3, decay=0.5),
        nn.Flatten(2), nn.Linear(4 * 6 * 6, 8), LIF(v_th=0.3, decay=0.5), nn.Linear(8, 3),
    )


class _Mean(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x).mean(0)


def test_measure_on_a_spiking_net_matches_direct_counts():
    model = _Mean(_net())
    x = (torch.rand(4, 5, 1, 6, 6) < 0.4).float()  # [T, B, C, H, W] binary
    y = torch.tensor([0, 1, 2, 0, 1])
    rep = measure_training_cost(model, [(x, y)], g_f=4, g_w=4)
    rows = {r.name: r for r in rep.rows}
    assert list(rows) == ["net.0.module", "net.3", "net.5"]
    conv = rows["net.0.module"]
    assert (conv.M, conv.K, conv.N) == (4 * 5 * 36, 9, 4) and conv.input_kind == "spike"
    assert conv.counts["dense_bwd"] == 0 and conv.rho_out == 0  # first layer: no input grad
    assert conv.counts["dense_fwd"] == 720 * 9 * 4
    assert 0 < conv.r < 1 and 0 < rows["net.3"].rho_in <= 1
    # the last layer's rho_out is the previous layer's gradient density
    assert rows["net.5"].rho_out == pytest.approx(rows["net.3"].rho_in)
    assert rep.totals()["ops_ratio"] > 0
    assert all(p.grad is None for p in model.parameters())
    assert model.training
    text = rep.table()
    assert "RECONSTRUCTION" in text and "5.74-10.20x" in text
    # the readout's gradient (cross-entropy of the mean) is dense: a note says why
    assert rows["net.5"].rho_in == 1.0 and any("net.5" in n for n in rep.notes)


def test_layer_row_energy_uses_lut_reads():
    r = LayerTrainingCost("l", "Linear")
    r.counts.update(dense_fwd=10, fwd_lookups=2, fwd_build=1)
    from spikeloom.cost.training import TrainingEnergy

    e = TrainingEnergy(e_mac=4.0, e_add=1.0, e_lut_read=5.0)
    assert r.dense_energy(e) == 40 and r.h2l_energy(e) == 2 * 6 + 1


def test_cli_cost_training(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli_main(["train", "--epochs", "1", "--max-samples", "32", "--batch-size", "16",
                     "--model-arg", "channels=[4, 8]", "--model-arg", "hidden=16",
                     "--out", str(run), "--no-progress", "--threads", "1"]) == 0
    capsys.readouterr()
    assert cli_main(["cost", str(run), "--training", "--batches", "1"]) == 0
    out = capsys.readouterr().out
    assert "RECONSTRUCTION" in out and "ratios: ops" in out
    assert cli_main(["cost", str(run), "--training", "--batches", "1", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["model"] == "H2Learn-like reconstruction" and d["totals"]["dense_ops"] > 0
