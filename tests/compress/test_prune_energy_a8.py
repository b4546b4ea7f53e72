"""The A8 first-order accelerator energy model (spec A8 vectors and qualitative finding)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeloom.compress.energy_a8 import AcceleratorA8, a8_energy
from spikeloom.compress.prune import prune_magnitude
from spikeloom.cost import measure_cost
from spikeloom.errors import ConfigError


def test_layer_energy_by_hand():
    acc = AcceleratorA8(e_add_per_bit=1.0, e_wread_per_bit=2.0, e_dram_per_bit=3.0, e_lif=5.0,
                        fmt="rle", rle_bits=4)
    e_syn, e_neu, e_mem = acc.layer(synops=10, neuron_updates=7, n_weights=100, nnz=20, bits=8)
    assert e_syn == 10 * (8 * 1.0 + (8 + 4) * 2.0)
    assert e_neu == 35.0
    assert e_mem == 20 * (8 + 4) * 3.0
    bm = AcceleratorA8(e_dram_per_bit=1.0, fmt="bitmask")
    assert bm.stored_bits(8, 100, 20) == 100 + 160
    assert AcceleratorA8(fmt="dense").stored_bits(8, 100, 20) == 800


def test_monotone_non_increasing_in_sparsity_without_format_overhead():
    acc = AcceleratorA8(fmt="rle", rle_bits=0)
    n, syn = 10_000, 1e6
    energies = [sum(acc.layer(syn * (1 - p), 1000, n, round(n * (1 - p)), 8))
                for p in (0, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975)]
    assert all(a >= b for a, b in zip(energies, energies[1:]))


def test_pruned_8bit_costs_more_than_dense_ternary():
    """Spec A8: 80 % pruning at 8 bit (RLE) costs more energy than dense ternary (2 bit)."""
    acc = AcceleratorA8()  # default constants, RLE
    n, syn, neu = 100_000, 2e6, 5e4
    ternary = sum(AcceleratorA8(fmt="dense").layer(syn, neu, n, n, 2))
    pruned8 = sum(acc.layer(syn * 0.2, neu, n, n // 5, 8))
    dense8 = sum(AcceleratorA8(fmt="dense").layer(syn, neu, n, n, 8))
    assert ternary < pruned8 < dense8


def test_a8_energy_of_a_pruned_model_uses_remaining_synapses():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 30), nn.Linear(30, 5))
    x = (torch.rand(2, 4, 20) < 0.5).float()
    acc = AcceleratorA8(e_dram_per_bit=0.0)
    e_dense, rows_d, _ = a8_energy(model, measure_cost(model, [x]), acc, bits={"0": 8, "1": 8})
    prune_magnitude(model, 0.8)
    e_pruned, rows_p, _ = a8_energy(model, measure_cost(model, [x]), acc, bits={"0": 8, "1": 8})
    assert rows_p[0].nnz + rows_p[1].nnz == 150
    assert e_pruned < 0.5 * e_dense
    assert [r.bits for r in rows_p] == [8, 8]
    _, rows32, _ = a8_energy(model, measure_cost(model, [x]), acc)
    assert rows32[0].bits == 32  # float32 weights without a quantizer


def test_bad_format():
    with pytest.raises(ConfigError, match="fmt must be one of"):
        AcceleratorA8(fmt="csr")


def test_joint_prune_quant_keeps_pruned_weights_zero_and_ternary():
    from spikeloom.compress.prune import masks_of
    from spikeloom.compress.prune_quant import prune_and_quantize
    from spikeloom.compress.quant import QuantConfig

    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(20, 30), nn.Linear(30, 5))
    prune_and_quantize(model, 0.8, QuantConfig(weight_bits=2, weight_method="duq",
                                               act_bits=None, neurons=False))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(4, 20)).square().sum().backward()
        opt.step()
    for name, mask in masks_of(model).items():
        w = model.get_submodule(name).weight
        assert bool((w[~mask] == 0).all())
        assert len(torch.unique(w)) <= 3
