"""ONNX export of the unrolled network, checked with onnxruntime on real N-MNIST inputs."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("onnx", reason="the optional 'onnx' package (extra 'interop') is absent")
pytest.importorskip("onnxruntime", reason="onnxruntime (extra 'interop') is absent")

from spikeloom.errors import ExportError  # noqa: E402
from spikeloom.export.onnx import (  # noqa: E402
    UnrolledNeuron,
    export_onnx,
    export_onnx_step,
    onnx_twin,
    run_onnx,
)
from spikeloom.models import build_model  # noqa: E402
from spikeloom.neurons import LIF, BaseNeuron  # noqa: E402


def _neuron_outputs(model, x):
    outs = []
    hooks = [m.register_forward_hook(lambda m, i, o: outs.append(o))
             for m in model.modules() if isinstance(m, BaseNeuron)]
    with torch.no_grad():
        y = model(x)
    for h in hooks:
        h.remove()
    return y, outs


def test_onnxruntime_gives_spikeloom_spikes_on_nmnist(trained_lif_net, nmnist_batches,
                                                      tmp_path) -> None:
    x, _ = nmnist_batches["test"]
    path = tmp_path / "net.onnx"
    names = export_onnx(trained_lif_net, path, T=x.shape[0], batch_size=x.shape[1])
    assert names == ["logits", "neuron_0", "neuron_1", "neuron_2"]
    got = run_onnx(path, x)
    ref, spikes = _neuron_outputs(trained_lif_net, x)
    assert sum(float(s.sum()) for s in spikes) > 1000
    for i, s in enumerate(spikes):
        assert torch.equal(got[f"neuron_{i}"], s)  # identical spikes
    torch.testing.assert_close(got["logits"], ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("neuron", ["liaf", "plif"])
def test_other_neurons_and_residual_nets_export(neuron: str, tmp_path) -> None:
    torch.manual_seed(0)
    model = build_model("resnet_tiny", in_channels=2, neuron=neuron).eval()
    x = (torch.rand(4, 2, 2, 12, 12) < 0.3).float() * 2
    export_onnx(model, tmp_path / "r.onnx", T=4, batch_size=2, input_shape=(2, 12, 12),
                spike_outputs=False)
    with torch.no_grad():
        torch.testing.assert_close(run_onnx(tmp_path / "r.onnx", x)["logits"], model(x),
                                   atol=1e-5, rtol=1e-5)


def test_twin_equals_the_model_and_leaves_it_untouched() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 5), LIF(decay=0.7, reset="soft"),
                                torch.nn.Linear(5, 2), LIF(fire_ge=True, v_reset=0.2))
    twin = onnx_twin(model)
    assert isinstance(twin[1], UnrolledNeuron) and isinstance(model[1], LIF)
    x = torch.rand(9, 4, 3) * 2
    with torch.no_grad():
        assert torch.equal(twin(x), model(x))
    with pytest.raises(ExportError, match="input_shape="):
        export_onnx(model, "unused.onnx", T=2)


def test_single_step_export_with_explicit_state_on_nmnist(trained_lif_net, nmnist_batches,
                                                          tmp_path) -> None:
    x, _ = nmnist_batches["test"]
    x = x[:, :4]
    path = tmp_path / "step.onnx"
    ins, outs, sizes = export_onnx_step(trained_lif_net, path, batch_size=4)
    assert ins == ["frame", "state_0", "state_1", "state_2"]
    assert sizes == [(4, 4, 17, 17), (4, 8, 8, 8), (4, 16)]
    states = {f"state_{i}": torch.zeros(s) for i, s in enumerate(sizes)}
    per_step, spikes = [], [[] for _ in sizes]
    for t in range(x.shape[0]):
        got = run_onnx(path, x[t], **states)
        per_step.append(got["output"])
        for i in range(len(sizes)):
            spikes[i].append(got[f"neuron_{i}"])
        states = {f"state_{i}": got[f"state_{i}_out"] for i in range(len(sizes))}
    ref, ref_spikes = _neuron_outputs(trained_lif_net, x)
    for i, s in enumerate(ref_spikes):
        assert torch.equal(torch.stack(spikes[i]), s)  # identical spikes, step by step
    torch.testing.assert_close(torch.stack(per_step).mean(0), ref, atol=1e-5, rtol=1e-5)


def test_single_step_export_refuses_sequence_layers(tmp_path) -> None:
    model = build_model("liafnet", neuron="lif", attention=True, T=4, input_size=(8, 8),
                        channels=(4,), hidden=8)
    with pytest.raises(ExportError, match=r"'features\.0\.2' \(TemporalAttention\) needs "
                                          "the whole sequence"):
        export_onnx_step(model, tmp_path / "x.onnx")
