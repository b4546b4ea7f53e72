"""``QuantConfig(first_last_bits=8)`` / ``--first-last-bits``: the first and last synapses of the
layer walk keep 8-bit weights while the others use ``weight_bits``."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from torch import nn

from spikeloom.compress.integer import frozen_twin, lower, run_program, spike_outputs
from spikeloom.compress.quant import QuantConfig, quantize, synapse_bits
from spikeloom.compress.quant.register import _add_args, config_from_args
from spikeloom.cost import measure_cost
from spikeloom.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _frames(seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(4, 5, 2, 16, 16, generator=g) < 0.3).float() * 2


def _bits_of(m: nn.Module) -> dict[str, int]:
    return {n: mod.parametrizations.weight[0].bits for n, mod in m.named_modules()
            if hasattr(mod, "parametrizations")}


@pytest.mark.parametrize("method", ["uniform", "duq"])
def test_first_and_last_synapse_get_their_own_width(method: str, small_liafnet):
    cfg = QuantConfig(weight_bits=2, weight_method=method, first_last_bits=8)
    m = quantize(small_liafnet(), cfg)
    bits = _bits_of(m)
    # liafnet: conv, conv, hidden linear, output linear (walk order = registration order)
    assert list(bits) == ["features.0.0.module", "features.1.0.module", "classifier.1",
                          "classifier.6"]
    assert bits == {"features.0.0.module": 8, "features.1.0.module": 2, "classifier.1": 2,
                    "classifier.6": 8}
    assert synapse_bits(small_liafnet(), cfg) == bits
    levels = {n: torch.unique(mod.weight.detach()).numel() for n, mod in m.named_modules()
              if hasattr(mod, "parametrizations")}
    assert levels["features.1.0.module"] <= 3 * 16 and levels["classifier.6"] > 3 * 10
    assert {mod.cost_precision for mod in m.modules() if hasattr(mod, "parametrizations")} \
        == {"int8", "ternary"}
    # off by default: every synapse at weight_bits
    assert set(_bits_of(quantize(small_liafnet(), QuantConfig(weight_bits=4))).values()) == {4}


def test_first_last_found_by_the_walk_not_by_name():
    # one synapse only: it is both first and last
    m = quantize(nn.Sequential(nn.Linear(4, 3)), QuantConfig(weight_bits=3, first_last_bits=8,
                                                             neurons=False))
    assert _bits_of(m) == {"0": 8}
    # odd names: still the first and the last of the walk
    net = nn.Sequential()
    net.add_module("zz_in", nn.Linear(4, 4))
    net.add_module("aa_mid", nn.Linear(4, 4))
    net.add_module("mm_out", nn.Linear(4, 2))
    assert _bits_of(quantize(net, QuantConfig(weight_bits=4, first_last_bits=8,
                                              neurons=False))) == {"zz_in": 8, "aa_mid": 4,
                                                                   "mm_out": 8}


def test_bad_first_last_bits_is_one_line_error():
    with pytest.raises(ConfigError, match="first_last_bits must be an integer in 2..8"):
        QuantConfig(first_last_bits=16)


def test_cli_option_reaches_the_config():
    p = argparse.ArgumentParser()
    _add_args(p)
    args = p.parse_args(["--bits", "2", "--first-last-bits", "8"])
    cfg = config_from_args(args, "duq", 2)
    assert (cfg.weight_bits, cfg.first_last_bits) == (2, 8)
    assert config_from_args(p.parse_args([]), "uniform", 8).first_last_bits is None


def test_mixed_model_is_bit_exact_in_the_executor(small_liafnet):
    m = quantize(small_liafnet(), QuantConfig(weight_bits=2, weight_method="duq", duq_init="mse",
                                     per_channel=True, first_last_bits=8))
    x = _frames()
    opt = torch.optim.AdamW(m.parameters(), 2e-2)
    m.train()
    for _ in range(10):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(m(x), torch.arange(5)).backward()
        opt.step()
    m.eval()
    prog = lower(m, x)
    weights = [o["weight"] for o in prog.ops if "weight" in o]
    assert [int(np.abs(w).max()) <= 1 for w in weights] == [False, True, True, False]
    logits, spikes = spike_outputs(frozen_twin(m, prog), x.double())
    res = run_program(prog, x.numpy())
    assert set(spikes) == set(res["spikes"])
    for name, s in spikes.items():
        assert float(s.mean()) > 0, name
        assert np.array_equal(s.numpy().astype(np.uint8), res["spikes"][name]), name
    assert np.array_equal(logits.argmax(1).numpy(), res["pred"])


def test_cost_of_mixed_model_lies_between_its_twins(small_liafnet):
    x = _frames()
    costs, rows = {}, {}
    for label, cfg in [("8", QuantConfig(weight_bits=8)), ("2", QuantConfig(weight_bits=2)),
                       ("2+8", QuantConfig(weight_bits=2, first_last_bits=8))]:
        m = quantize(small_liafnet(), cfg)
        m.train()(x)  # calibrate the input grid
        r = measure_cost(m.eval(), [x])
        costs[label] = r.snn_energy
        rows[label] = [(row.name, row.precision) for row in r.rows if row.role == "synapse"]
    assert costs["2"] < costs["2+8"] < costs["8"]
    assert [p for _, p in rows["2+8"]] == ["int8", "ternary", "ternary", "int8"]
