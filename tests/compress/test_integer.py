"""Integer lowering and the numpy-only executor: bit-exact against the torch model."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from spikeloom.compress.integer import (
    IntegerProgram,
    frozen_twin,
    lower,
    run_program,
    spike_outputs,
)
from spikeloom.compress.integer.executor import conv2d_int
from spikeloom.compress.quant import QuantConfig, quantize
from spikeloom.errors import ConfigError
from spikeloom.models import build_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _train(model, xs, ys, steps: int, lr: float = 5e-3) -> None:
    opt = torch.optim.AdamW(model.parameters(), lr)
    model.train()
    for i in range(steps):
        x, y = xs[i % len(xs)], ys[i % len(ys)]
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()


def test_conv2d_int_matches_torch():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 5, (3, 4, 9, 9), generator=g)
    w = torch.randint(-127, 128, (6, 4, 3, 3), generator=g)
    for stride, pad in [(1, 1), (2, 0)]:
        ref = torch.nn.functional.conv2d(x.double(), w.double(), stride=stride, padding=pad)
        out = conv2d_int(x.numpy(), w.numpy().astype(np.int8), stride, pad)
        assert out.dtype == np.int64 and np.array_equal(out, ref.long().numpy())


@pytest.mark.parametrize("cfg", [
    QuantConfig(), QuantConfig(weight_bits=4),
    QuantConfig(weight_bits=2, weight_method="duq", duq_init="mse", per_channel=True),
], ids=["int8", "int4", "duq2-channel-mse"])
def test_random_net_bit_exact_and_file_round_trip(tmp_path: Path, cfg: QuantConfig, small_liafnet):
    m = quantize(small_liafnet(), cfg)
    g = torch.Generator().manual_seed(1)
    x = (torch.rand(5, 6, 2, 16, 16, generator=g) < 0.3).float() * 2
    _train(m, [x], [torch.arange(6) % 10], 4)
    prog = lower(m, x)
    ops = [o["op"] for o in prog.ops]
    assert ops == ["input_quant", "conv2d", "neuron", "sumpool", "conv2d", "neuron", "sumpool",
                   "linear", "neuron", "linear", "output"]
    logits, spikes = spike_outputs(frozen_twin(m, prog), x.double())
    res = run_program(prog, x.numpy())
    assert set(spikes) == set(res["spikes"])
    for name, s in spikes.items():
        assert np.array_equal(s.numpy().astype(np.uint8), res["spikes"][name]), name
    assert np.array_equal(logits.argmax(1).numpy(), res["pred"])
    path = prog.save(tmp_path / "net.npz")
    again = run_program(IntegerProgram.load(path), x.numpy())
    assert np.array_equal(again["logits"], res["logits"])
    for op in IntegerProgram.load(path).ops:
        if "weight" in op:
            assert op["weight"].dtype == np.int8


def test_version_and_format_checked(tmp_path: Path):
    np.savez(tmp_path / "x.npz", format=np.array("other"))
    with pytest.raises(ValueError, match="not a spikeloom integer program"):
        IntegerProgram.load(tmp_path / "x.npz")
    np.savez(tmp_path / "y.npz", format=np.array("spikeloom-integer"), version=np.array(99),
             n_ops=np.array(0))
    with pytest.raises(ValueError, match="version 99"):
        IntegerProgram.load(tmp_path / "y.npz")


def test_lowering_errors_name_the_layer(small_liafnet):
    x = torch.zeros(2, 1, 2, 16, 16)
    with pytest.raises(ConfigError, match="needs a quantized model"):
        lower(small_liafnet(), x)
    tanh = build_model("liafnet", in_channels=2, input_size=(16, 16), channels=(8, 16),
                       hidden=32, neuron="liaf", activation="tanh")
    with pytest.raises(ConfigError, match=r"features\.0\.3.*LIAF activation 'tanh'"):
        lower(quantize(tanh, QuantConfig()), x)


def test_executor_imports_no_torch(tmp_path: Path, small_liafnet):
    src = Path(__import__("spikeloom.compress.integer.executor", fromlist=["x"]).__file__).parent
    pkg = tmp_path / "intexec"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for f in ("program.py", "executor.py"):
        shutil.copy(src / f, pkg / f)
    m = quantize(small_liafnet(), QuantConfig())
    x = (torch.rand(3, 2, 2, 16, 16, generator=torch.Generator().manual_seed(2)) < 0.3).float()
    _train(m, [x], [torch.tensor([1, 2])], 2)
    prog = lower(m, x)
    prog.save(tmp_path / "p.npz")
    np.save(tmp_path / "x.npy", x.numpy())
    code = ("import sys, numpy as np; from intexec.program import IntegerProgram; "
            "from intexec.executor import run_program; "
            "r = run_program(IntegerProgram.load('p.npz'), np.load('x.npy')); "
            "assert 'torch' not in sys.modules, 'torch was imported'; "
            "np.save('out.npy', r['logits'])")
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, check=True, timeout=60)
    assert np.array_equal(np.load(tmp_path / "out.npy"), run_program(prog, x.numpy())["logits"])


def test_nmnist_every_layer_bit_exact(shared_data: Path, tmp_path: Path, small_liafnet):
    from spikeloom.datasets.nmnist import NMNIST

    kw = {"T": 8, "downsample": 2, "cache_dir": tmp_path}
    root = shared_data / "nmnist"
    train = NMNIST(root, "train", **kw)
    test = NMNIST(root, "test", **kw)
    idx = np.random.default_rng(0).permutation(len(train))[:160]
    xs = [torch.stack([train[int(i)][0] for i in idx[j:j + 16]], 1) for j in range(0, 160, 16)]
    ys = [torch.tensor([int(train[int(i)][1]) for i in idx[j:j + 16]]) for j in range(0, 160, 16)]
    m = quantize(small_liafnet(size=17), QuantConfig())
    _train(m, xs, ys, 20)
    x = torch.stack([test[i][0] for i in range(len(test))], 1)  # all 100 test recordings
    y = np.array([int(test[i][1]) for i in range(len(test))])
    prog = lower(m, x)
    twin_logits, twin_spikes = spike_outputs(frozen_twin(m, prog), x.double())
    res = run_program(prog, x.numpy())
    for name, s in twin_spikes.items():
        assert float(s.mean()) > 0, f"{name} is silent: the comparison would be vacuous"
        assert np.array_equal(s.numpy().astype(np.uint8), res["spikes"][name]), name
    assert np.array_equal(twin_logits.argmax(1).numpy(), res["pred"])
    qat_logits, _ = spike_outputs(m, x)
    # the trained fake-quant model (unfolded BN, float requant) agrees on most samples too
    assert (qat_logits.argmax(1).numpy() == res["pred"]).mean() >= 0.9
    assert len(np.unique(res["pred"])) > 1 and y.shape == res["pred"].shape
