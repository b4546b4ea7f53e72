"""Integer lowering of residual (spiking ResNet, tdBN) and LIAF networks: every neuron output of
every sample bit-exact between the numpy executor and the frozen torch twin."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from spikeloom.compress.integer import (
    IntegerProgram,
    frozen_twin,
    lower,
    run_program,
    spike_outputs,
)
from spikeloom.compress.quant import QuantConfig, QuantNeuron, quantize
from spikeloom.errors import ConfigError
from spikeloom.layers import Add, MeanOverTime, TdBN
from spikeloom.models import build_model
from spikeloom.neurons import LIF

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _frames(T: int = 4, B: int = 6, size: int = 16, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, 2, size, size, generator=g) < 0.3).float() * 2


def _train(model: nn.Module, x: torch.Tensor, steps: int = 4, lr: float = 5e-3) -> None:
    """A few QAT steps so norms, ranges and weights move off their initial values."""
    y = torch.arange(x.shape[1]) % 10
    opt = torch.optim.AdamW(model.parameters(), lr)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()


def _assert_bit_exact(m: nn.Module, x: torch.Tensor) -> tuple[IntegerProgram, dict]:
    prog = lower(m, x)
    logits, outs = spike_outputs(frozen_twin(m, prog), x.double())
    res = run_program(prog, x.numpy())
    got = {**res["spikes"], **res["analog"]}
    assert set(outs) == set(got) and outs
    for name, o in outs.items():
        assert np.array_equal(o.numpy().astype(np.int64), got[name].astype(np.int64)), name
    assert np.array_equal(logits.argmax(1).numpy(), res["pred"])
    # the same logits up to float32 vs float64 weight scales
    assert np.allclose(logits.numpy(), res["logits"], rtol=1e-6, atol=1e-7)
    return prog, res


def _resnet(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    # stem + an identity-shortcut block + a strided block with a conv1x1/tdBN shortcut
    m = build_model("resnet_tiny", in_channels=2, num_classes=10, input_size=(16, 16))
    with torch.no_grad():  # louder tdBNs: at initialisation the deeper layers are silent
        for norm in m.modules():
            if isinstance(norm, TdBN):
                norm.weight.mul_(3.0)
                norm.bias.add_(0.1)
    return m


@pytest.mark.parametrize("cfg", [QuantConfig(), QuantConfig(weight_bits=4),
                                 QuantConfig(weight_bits=2, weight_method="duq",
                                             duq_init="mse", first_last_bits=8)],
                         ids=["int8", "int4", "ternary-fl8"])
def test_spiking_resnet_bit_exact(tmp_path: Path, cfg: QuantConfig):
    m = quantize(_resnet(), cfg)
    x = _frames()
    _train(m, x)
    prog, res = _assert_bit_exact(m, x)
    neurons = [o for o in prog.ops if o["op"] == "neuron"]
    # two residual neurons: identity shortcut (spike term) and conv shortcut (accumulator term)
    assert sorted(len(o["src"]) for o in neurons) == [1, 1, 1, 1, 2, 2]
    fired = [float(s.mean()) for s in res["spikes"].values()]
    assert min(fired) > 0, fired  # every layer fires: not a vacuous comparison
    again = run_program(IntegerProgram.load(prog.save(tmp_path / "r.npz")), x.numpy())
    assert np.array_equal(again["logits"], res["logits"])


def test_residual_sum_is_requantised_once_on_a_common_scale():
    # hand-sized: y = LIF(Add(W1·x, x)) with x spikes; the current is
    # (acc·M1 + x·M2 + B + 2^(S-1)) >> S, i.e. round((W1·x)·s_w·g/Δ + x/Δ) up to the multiplier
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc0 = nn.Linear(3, 3, bias=False)
            self.sn0 = LIF(v_th=0.5, decay=0.5)
            self.fc1 = nn.Linear(3, 3, bias=False)
            self.add = Add()
            self.sn1 = LIF(v_th=0.5, decay=0.5)
            self.out = nn.Linear(3, 2)
            self.readout = MeanOverTime()

        def forward(self, x):
            s = self.sn0(self.fc0(x))
            return self.readout(self.out(self.sn1(self.add(self.fc1(s), s))))

    torch.manual_seed(0)
    m = quantize(Block(), QuantConfig())
    x = torch.rand(5, 4, 3) * 2
    m.train()(x)
    m.eval()
    prog, res = _assert_bit_exact(m, x)
    op = [o for o in prog.ops if o["op"] == "neuron"][1]
    assert len(op["src"]) == 2 and op["mult"].shape == (2, 3)
    delta = m.sn1.delta
    # the spike term's multiplier is 1/Δ on the common shift (Δ = 0.5/8192 = 2^-14)
    assert np.all(op["mult"][1] == round(2.0 ** op["shift"] / delta))


def _liafnet(seed: int = 0, mode: str = "ntr") -> nn.Module:
    torch.manual_seed(seed)
    return build_model("liafnet", in_channels=2, input_size=(16, 16), channels=(8, 16),
                       hidden=32, neuron="liaf", neuron_kwargs={"mode": mode})


@pytest.mark.parametrize("mode", ["ntr", "tr"])
def test_liaf_net_bit_exact_and_matches_the_fake_quant_model(mode: str):
    m = quantize(_liafnet(mode=mode), QuantConfig())
    x = _frames()
    _train(m, x)
    prog, res = _assert_bit_exact(m, x)
    kinds = [o["op"] for o in prog.ops]
    assert kinds.count("act_requant") == 3  # conv2, fc hidden, output layer inputs
    assert set(res["analog"]) == {n for n, q in m.named_modules() if isinstance(q, QuantNeuron)}
    assert len(res["analog"]) == 3 and not res["spikes"]
    active = [int(a.max()) > 0 for a in res["analog"].values()]
    assert all(active) if mode == "ntr" else active[0], active
    # V_th = 0.5 (Δ = 2^-14), 2x2 pools and power-of-two input grids: every requantisation
    # ratio is a power of two, so the integer rule is the fake-quant grid itself — the second
    # conv's input quantizer applied (in float32, as in QAT) to the first layer's integer
    # activations gives the codes of the act_requant op
    requants = [o for o in prog.ops if o["op"] == "act_requant"]
    assert all(o["mult"] & (o["mult"] - 1) == 0 for o in requants)
    a = res["analog"]["features.0.3"]
    first = m.features[0][3]
    real = torch.from_numpy(a * first.delta).float()  # what the QAT LIAF layer outputs
    pooled = torch.nn.functional.avg_pool2d(real.flatten(0, 1), 2)
    aq = m.features[1][0].module.input_quant
    want = (aq(pooled) / aq.scale()).numpy()
    op = requants[0]
    k = a.reshape(-1, *a.shape[2:]).reshape(a.shape[0] * a.shape[1], a.shape[2], 8, 2, 8, 2)
    sums = k.sum(axis=(3, 5))
    got = np.clip((sums * op["mult"] + (1 << (op["shift"] - 1))) >> op["shift"], 0, 255)
    assert np.array_equal(got, want) and want.max() > 0


def test_unlowerable_layers_name_the_layer_and_why():
    x = _frames()
    nested = quantize(build_model("liafnet", in_channels=2, input_size=(16, 16),
                                  channels=(8, 16), hidden=32, neuron="lif", attention=True, T=4),
                      QuantConfig())
    with pytest.raises(ConfigError, match=r"layer 'features\.0\.\d'.*cannot be lowered"):
        lower(nested, x)

    class TwoSum(nn.Module):  # Add of a sum: the branches must each be one synapse or spikes
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.c = nn.Linear(3, 3), nn.Linear(3, 3), nn.Linear(3, 3)
            self.add1, self.add2 = Add(), Add()
            self.sn = LIF()
            self.out = nn.Linear(3, 2)
            self.readout = MeanOverTime()

        def forward(self, x):
            return self.readout(self.out(self.sn(self.add2(self.add1(self.a(x), self.b(x)),
                                                           self.c(x)))))

    two = quantize(TwoSum(), QuantConfig())
    for fc in (two.b, two.c):  # give every synapse on the input its own input grid
        fc.input_quant = two.a.input_quant
        fc.register_forward_pre_hook(lambda mod, args: (mod.input_quant(args[0]),))
    with pytest.raises(ConfigError, match=r"layer 'add2': each branch of a residual Add"):
        lower(two, torch.rand(2, 1, 3))


def test_integer_eval_compares_liaf_activations_too():
    from spikeloom.compress.integer import integer_eval

    m = quantize(_liafnet(), QuantConfig())
    x = _frames()
    _train(m, x)
    y = torch.arange(x.shape[1]) % 10
    res = integer_eval(m, [(x[:, :3], y[:3]), (x[:, 3:], y[3:])])
    assert res["n"] == 6 and res["agreement"] == 1.0
    # a twin that disagrees on one activation is caught
    prog = res["program"]
    i = min(j for j, o in enumerate(prog.ops) if o["op"] == "act_requant")
    prog.ops[i] = {**prog.ops[i], "mult": prog.ops[i]["mult"] * 2}
    assert integer_eval(m, [(x, y)], program=prog)["agreement"] < 1.0


def test_version_1_chain_programs_still_run(tmp_path: Path):
    # a version-1 file: no src/dst slots, one-term multipliers [C]
    m = quantize(build_model("liafnet", in_channels=2, input_size=(16, 16), channels=(8, 16),
                             hidden=32, neuron="lif"), QuantConfig())
    x = _frames()
    _train(m, x)
    prog = lower(m, x)
    v1 = IntegerProgram([{k: (v[0] if k == "mult" else v) for k, v in o.items()
                          if k not in ("src", "dst", "analog", "tr")} for o in prog.ops])
    path = v1.save(tmp_path / "v1.npz")
    a, b = run_program(IntegerProgram.load(path), x.numpy()), run_program(prog, x.numpy())
    assert np.array_equal(a["logits"], b["logits"]) and set(a["spikes"]) == set(b["spikes"])


@pytest.mark.parametrize("neuron", ["lif", "liaf"])
def test_max_pooling_nets_bit_exact(neuron: str):
    torch.manual_seed(0)
    m = quantize(build_model("liafnet", in_channels=2, input_size=(16, 16), channels=(8, 16),
                             hidden=32, neuron=neuron, pool="max"), QuantConfig())
    x = _frames()
    _train(m, x)
    prog, _ = _assert_bit_exact(m, x)
    assert [o["op"] for o in prog.ops].count("maxpool") >= 2


def test_resnet_with_overlapping_stem_max_pool_bit_exact():
    torch.manual_seed(0)
    m = build_model("resnet_tiny", in_channels=2, num_classes=10, input_size=(16, 16),
                    stem_pool=True)
    with torch.no_grad():
        for norm in m.modules():
            if isinstance(norm, TdBN):
                norm.weight.mul_(3.0)
    m = quantize(m, QuantConfig())
    x = _frames()
    _train(m, x)
    prog, _ = _assert_bit_exact(m, x)
    pool = next(o for o in prog.ops if o["op"] == "maxpool")
    assert (pool["k"], pool["stride"], pool["padding"]) == (3, 2, 1)
