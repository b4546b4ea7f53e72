"""Unstructured magnitude pruning: exact counts, masks that stay 0, checkpoints/resume, the
cubic schedule as a trainer callback, sparsity report and cost counting of remaining synapses."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from spikeloom.compress.prune import (
    GradualPruning,
    cubic_sparsity,
    masks_of,
    prune_magnitude,
    remove_masks,
    restore_masks,
    sparsity_report,
)
from spikeloom.cost import measure_cost
from spikeloom.errors import ConfigError
from spikeloom.layers import TimeDistributed
from spikeloom.train import TrainConfig, train


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 5))


def _nonzeros(model):
    return sum(int((m.weight != 0).sum()) for m in model if isinstance(m, nn.Linear))


def test_global_pruning_leaves_exactly_ceil_of_kept_fraction():
    m = _mlp()
    prune_magnitude(m, 0.8)
    assert _nonzeros(m) == math.ceil(0.2 * 750)
    # global: the kept weights are the largest in magnitude over all layers
    w = torch.cat([m[0].weight.flatten(), m[2].weight.flatten()]).abs()
    assert w[w > 0].min() >= torch.sort(w).values[-150] - 1e-12


def test_layer_scope_and_min_keep():
    m = _mlp()
    prune_magnitude(m, 0.9, scope="layer")
    assert int((m[0].weight != 0).sum()) == 600 - 540
    assert int((m[2].weight != 0).sum()) == 150 - 135
    m = _mlp()
    prune_magnitude(m, 0.99, min_keep=10)
    assert int((m[2].weight != 0).sum()) >= 10


def test_masked_weights_stay_zero_through_training_and_fine_tuning():
    m = _mlp()
    masks = prune_magnitude(m, 0.7)
    opt = torch.optim.AdamW(m.parameters(), lr=0.1, weight_decay=0.1)
    for _ in range(5):
        opt.zero_grad()
        m(torch.randn(8, 20)).square().sum().backward()
        opt.step()
    for name, mask in masks.items():
        w = m.get_submodule(name).weight
        assert bool((w[~mask] == 0).all())
        assert bool((w[mask] != 0).all())
    # re-pruning higher extends the existing masks
    prune_magnitude(m, 0.9)
    assert _nonzeros(m) == math.ceil(0.1 * 750) or _nonzeros(m) == 750 - math.floor(0.9 * 750)


def test_checkpoint_is_plain_and_masks_are_restored():
    m = _mlp()
    prune_magnitude(m, 0.6)
    sd = m.state_dict()
    assert set(sd) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    fresh = _mlp(seed=1)
    fresh.load_state_dict(sd)
    x = torch.randn(4, 20)
    assert torch.equal(fresh(x), m(x))
    masks = restore_masks(fresh)
    assert all(torch.equal(masks[k], v) for k, v in masks_of(m).items())
    m.load_state_dict(fresh.state_dict())  # a masked model loads a plain state dict too
    assert torch.equal(m(x), fresh(x))
    remove_masks(fresh)
    assert not masks_of(fresh) and _nonzeros(fresh) == 750 - math.floor(0.6 * 750)


def test_cubic_schedule_values():
    assert cubic_sparsity(5, 0.8, 0, 10) == pytest.approx(0.8 - 0.8 * 0.5**3)
    assert cubic_sparsity(0, 0.8, 0, 10, initial=0.2) == pytest.approx(0.2)
    assert cubic_sparsity(12, 0.8, 0, 10) == 0.8
    assert cubic_sparsity(3, 0.8, 5, 10) == 0.0


SMALL = dict(dataset="esdigits", model="liafnet", model_kwargs={"channels": [4, 8], "hidden": 16},
             batch_size=32, max_samples=96, progress=False, plots=False, cost=False, threads=1)


def test_gradual_pruning_callback_survives_resume(tmp_path):
    def cb():
        return GradualPruning(0.8, start=1, end=3, every=1)

    def run(name, **kw):
        return TrainConfig.from_dict({**SMALL, "out": str(tmp_path / name), "epochs": 3, **kw})

    train(run("full"), callbacks=[cb()])
    train(run("part"), stop_after_epochs=1, callbacks=[cb()])
    train(resume=tmp_path / "part", callbacks=[cb()])
    wa = torch.load(tmp_path / "full/checkpoints/last.pt", weights_only=False)["model"]
    wb = torch.load(tmp_path / "part/checkpoints/last.pt", weights_only=False)["model"]
    assert set(wa) == set(wb)
    for k in wa:
        assert torch.allclose(wa[k], wb[k], atol=1e-6), k
    ws = [v for k, v in wa.items() if k.endswith("weight") and v.ndim in (2, 4)]
    zeros = sum(int((v == 0).sum()) for v in ws)
    assert zeros == math.floor(0.8 * sum(v.numel() for v in ws))


def test_sparsity_report_and_cost_counts_only_remaining_synapses():
    torch.manual_seed(3)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    lin = nn.Linear(12, 5)
    prune_magnitude(nn.Sequential(conv, lin), 0.5, scope="layer")
    rows, text = sparsity_report(nn.Sequential(conv, lin))
    assert [r.zeros for r in rows] == [54, 30] and "50.0%" in text
    x = (torch.rand(6, 3, 7, 7) < 0.4).float()
    rep = measure_cost(TimeDistributed(conv), [x.unsqueeze(0)])
    row = next(r for r in rep.rows if r.role == "synapse")
    # brute force: every (output position, tap, in/out channel) with non-zero input and weight
    expect = nn.functional.conv2d(x.double(), (conv.weight != 0).double(), padding=1).sum()
    assert row.eff_acs == pytest.approx(expect.item() / 6)
    assert row.dense_macs == 4 * 49 * 27  # dense equivalent unchanged
    xl = (torch.rand(2, 3, 12) < 0.5).float()
    rep = measure_cost(nn.Sequential(lin), [xl])
    row = next(r for r in rep.rows if r.role == "synapse")
    expect = (xl.reshape(-1, 12) @ (lin.weight != 0).float().T).sum()
    assert row.eff_acs == pytest.approx(expect.item() / 3)


def test_bad_input_errors():
    with pytest.raises(ConfigError, match=r"sparsity must be in \[0, 1\), got 1.0"):
        prune_magnitude(_mlp(), 1.0)
    with pytest.raises(ConfigError, match=r"cannot prune \['fc'\].*choose from \['0', '2'\]"):
        prune_magnitude(_mlp(), 0.5, layers=["fc"])
    with pytest.raises(ConfigError, match="scope"):
        prune_magnitude(_mlp(), 0.5, scope="row")
