"""NIR export and import: the neuron mapping, round trips on real N-MNIST, foreign graphs,
folding, residual sums and the error messages."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

nir = pytest.importorskip("nir", reason="the optional 'nir' package (extra 'interop') is absent")

from spikeloom.errors import ExportError  # noqa: E402
from spikeloom.export import from_nir, read_nir, to_nir, write_nir  # noqa: E402
from spikeloom.export.nir_modules import LeakyIntegrator, NIRNetwork  # noqa: E402
from spikeloom.fold import fold_norm, folded_synapse, norm_affine  # noqa: E402
from spikeloom.layers import TdBN, TimeDistributed  # noqa: E402
from spikeloom.models import build_model  # noqa: E402
from spikeloom.neurons import IF, LIAF, LIF, PLIF  # noqa: E402
from spikeloom.walk import layers_with_role  # noqa: E402


def _spikes(model: nn.Module, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Outputs of every neuron layer (in walk order) and the per-step network output."""
    outs: list[torch.Tensor] = []
    hooks = [lay.module.register_forward_hook(lambda m, i, o: outs.append(o))
             for lay in layers_with_role(model, "neuron")]
    try:
        with torch.no_grad():
            y = model(x, per_step=True) if hasattr(model, "_per_step") else model(x)
    finally:
        for h in hooks:
            h.remove()
    return outs, y


def _mlp(neuron: nn.Module) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), neuron, nn.Linear(4, 2))


# ------------------------------------------------------------------- the neuron mapping


def test_lif_if_plif_parameters_follow_the_documented_mapping() -> None:
    dt = 1e-3
    g = to_nir(_mlp(LIF(v_th=0.7, decay=0.8, v_reset=0.1)), dt=dt, input_shape=(3,))
    lif = g.nodes["1"]
    assert isinstance(lif, nir.LIF)
    np.testing.assert_allclose(lif.tau, np.full(4, 5e-3))  # dt / (1 - k) = 1e-3 / 0.2
    np.testing.assert_allclose(lif.r, np.full(4, 5.0))  # tau / dt: input weight 1 per step
    np.testing.assert_array_equal(lif.v_leak, np.zeros(4))
    np.testing.assert_allclose(lif.v_threshold, np.full(4, 0.7))
    np.testing.assert_allclose(lif.v_reset, np.full(4, 0.1))
    assert isinstance(g.nodes["0"], nir.Affine) and g.edges[0] == ("input", "0")

    g = to_nir(_mlp(IF(v_th=1.5)), dt=dt, input_shape=(3,))
    assert isinstance(g.nodes["1"], nir.IF)
    np.testing.assert_allclose(g.nodes["1"].r, np.full(4, 1000.0))  # 1 / dt

    plif = PLIF(init_tau=4.0)  # k = 1 - 1/4
    g = to_nir(_mlp(plif), dt=dt, input_shape=(3,))
    np.testing.assert_allclose(g.nodes["1"].tau, np.full(4, 4e-3), rtol=1e-6)
    np.testing.assert_allclose(g.nodes["1"].r, np.ones(4), rtol=1e-6)  # input scaled by 1-k


def test_forward_euler_of_the_exported_lif_equals_the_discrete_neuron() -> None:
    """Integrate the exported NIR equation by hand (forward Euler, NIR's hard reset) and
    compare with spikeloom's LIF — no importer involved."""
    dt, k, thr = 1e-3, 0.75, 0.5
    node = to_nir(nn.Sequential(LIF(v_th=thr, decay=k)), dt=dt, input_shape=(5,)).nodes["0"]
    torch.manual_seed(1)
    x = torch.rand(12, 1, 5)
    v = np.zeros(5)
    spikes = []
    for t in range(12):
        v = v + dt / node.tau * (node.v_leak - v + node.r * x[t, 0].double().numpy())
        s = v > node.v_threshold
        v = np.where(s, node.v_reset, v)
        spikes.append(s)
    np.testing.assert_array_equal(np.stack(spikes), LIF(v_th=thr, decay=k)(x)[:, 0].numpy())


@pytest.mark.parametrize("neuron", [LIF(decay=0.6), IF(v_th=0.8), PLIF(init_tau=3.0),
                                    LIF(decay=1.0),
                                    LIF(decay=0.5, learn_decay=True, v_reset=-0.1)])
def test_round_trip_rebuilds_the_same_neuron(neuron: nn.Module, tmp_path) -> None:
    model = _mlp(neuron)
    write_nir(model, tmp_path / "m.nir", dt=1e-3, input_shape=(3,))
    back = read_nir(tmp_path / "m.nir")
    assert type(back.layers["1"]) is (IF if neuron.decay_factor() == 1.0 else type(neuron))
    x = torch.rand(10, 4, 3) * 2
    with torch.no_grad():
        assert torch.equal(back(x), model(x))


def test_conv1d_flatten_module_and_sum_pool_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(TimeDistributed(nn.Conv1d(2, 3, 3, padding=1, stride=2)), LIF(),
                          nn.Flatten(2), nn.Linear(3 * 5, 4), IF(v_th=0.3))
    g = to_nir(model, dt=1e-3, input_shape=(2, 10))
    assert [type(n).__name__ for n in g.nodes.values()] == [
        "Input", "Conv1d", "LIF", "Flatten", "Affine", "IF", "Output"]
    assert (g.nodes["2"].start_dim, g.nodes["2"].end_dim) == (0, -1)
    x = torch.rand(5, 3, 2, 10) * 3
    with torch.no_grad():
        assert torch.equal(from_nir(g)(x), model(x))
    pool = nir.NIRGraph.from_list(nir.SumPool2d(kernel_size=np.array([2, 2]),
                                                stride=np.array([2, 2]),
                                                padding=np.array([0, 0])), type_check=False)
    y = from_nir(pool, dt=1e-3)(torch.arange(16.0).reshape(1, 1, 1, 4, 4))
    assert y.flatten().tolist() == [10.0, 18.0, 42.0, 50.0]  # 0+1+4+5, 2+3+6+7, ...


# ------------------------------------------------------------- round trip on real data


def test_trained_nmnist_net_round_trips_with_identical_spikes(
    trained_lif_net, nmnist_batches, tmp_path
) -> None:
    model = trained_lif_net
    path = tmp_path / "nmnist.nir"
    write_nir(model, path, dt=1e-3)
    graph = nir.read(path)
    assert float(graph.metadata["dt"]) == 1e-3
    types = [type(n).__name__ for n in graph.nodes.values()]
    assert types.count("LIF") == 3 and types.count("Conv2d") == 2 and "Affine" in types
    back = read_nir(path)
    x, _ = nmnist_batches["test"]
    # the reference: the same model with each tdBN folded into the conv/linear before it
    folded = copy.deepcopy(model)
    for seq, (i, j) in [(st, (0, 1)) for st in folded.features] + [(folded.classifier, (1, 2))]:
        seq[i] = folded_synapse(seq[i], seq[j])
        seq[j] = nn.Identity()
    s_back, y_back = _spikes(back, x)
    s_fold, y_fold = _spikes(folded, x)
    s_orig, y_orig = _spikes(model, x)
    assert len(s_back) == 3 and sum(float(s.sum()) for s in s_back) > 1000  # it is firing
    for a, b in zip(s_back, s_fold):
        assert torch.equal(a, b)  # identical spikes to the folded network
    assert torch.equal(y_back, y_fold)
    # ... and to the original up to float rounding of the fold (a few flips at most)
    agree = torch.cat([(a == b).flatten() for a, b in zip(s_back, s_orig)]).float().mean()
    assert agree > 0.999
    torch.testing.assert_close(y_back.mean(0), y_orig.mean(0), atol=0.05, rtol=0)


def test_round_trip_without_norms_is_bit_identical_on_nmnist(
    nmnist_batches, train_few_steps, tmp_path
) -> None:
    torch.manual_seed(1)
    model = build_model("liafnet", in_channels=2, num_classes=10, input_size=(17, 17),
                        channels=(4, 8), hidden=16, neuron="lif", norm=None, decay=0.6)
    train_few_steps(model, nmnist_batches, steps=6)
    write_nir(model, tmp_path / "plain.nir", dt=1e-3)
    back = read_nir(tmp_path / "plain.nir")
    x, _ = nmnist_batches["test"]
    s_back, y_back = _spikes(back, x)
    s_orig, y_orig = _spikes(model, x)
    assert sum(float(s.sum()) for s in s_orig) > 1000
    for a, b in zip(s_back, s_orig, strict=True):
        assert torch.equal(a, b)
    assert torch.equal(y_back, y_orig)


# ---------------------------------------------------------------------- foreign graphs


def _snntorch_style_graph() -> nir.NIRGraph:
    """Affine -> LIF -> Affine -> LI with snnTorch's export conventions (dt = 1e-4,
    tau = dt/(1-beta), r = tau/dt, v_leak = 0, beta = 0.5); no spikeloom metadata."""
    dt, beta = 1e-4, 0.5
    tau = dt / (1 - beta)

    def full(n, v):
        return np.full(n, v, dtype=np.float32)

    nodes = {
        "input": nir.Input(input_type={"input": np.array([2])}),
        "fc1": nir.Affine(weight=np.array([[1.0, 0.0], [0.5, 0.5]], np.float32),
                          bias=np.array([0.0, 0.25], np.float32)),
        "lif1": nir.LIF(tau=full(2, tau), r=full(2, tau / dt), v_leak=full(2, 0.0),
                        v_threshold=full(2, 1.0)),
        "fc2": nir.Affine(weight=np.array([[1.0, 0.5]], np.float32),
                          bias=np.array([0.1], np.float32)),
        "li": nir.LI(tau=full(1, tau), r=full(1, tau / dt), v_leak=full(1, 0.0)),
        "output": nir.Output(output_type={"output": np.array([1])}),
    }
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "li"), ("li", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges)


def test_snntorch_style_graph_imports_and_matches_hand_computed_steps(tmp_path) -> None:
    nir.write(tmp_path / "peer.nir", _snntorch_style_graph())
    with pytest.raises(ExportError, match="needs dt="):
        read_nir(tmp_path / "peer.nir")
    net = read_nir(tmp_path / "peer.nir", dt=1e-4)
    x = torch.tensor([[0.6, 0.0], [0.8, 0.4], [0.0, 0.8], [1.2, 0.0]]).unsqueeze(1)
    # layer 1 current I = W1 x + b1: [.6,.55], [.8,.85], [0,.65], [1.2,.85]
    # v = 0.5 r_prev + I: [.6,.55] / [1.1,1.125] -> both fire, reset to 0 / [0,.65] /
    # [1.2, .325+.85=1.175] -> both fire
    hidden = []
    h = net.layers["lif1"].register_forward_hook(lambda m, i, o: hidden.append(o))
    with torch.no_grad():
        out = net(x)
    h.remove()
    expected_spikes = torch.tensor([[0.0, 0.0], [1, 1], [0, 0], [1, 1]]).unsqueeze(1)
    assert torch.equal(hidden[0], expected_spikes)
    # LI readout: I2 = s1 + 0.5 s2 + 0.1 = .1, 1.6, .1, 1.6; v = 0.5 v + I2
    expected = torch.tensor([0.1, 1.65, 0.925, 2.0625]).reshape(4, 1, 1)
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    assert any(isinstance(m, LeakyIntegrator) for m in net.layers["li"].modules())


def test_foreign_lif_with_leak_voltage_and_resistance_is_forward_euler() -> None:
    """LI(tau = 1 ms, r = 1, v_leak = 0.5) at dt = 0.1 ms: v = 0.9 v + 0.1 (I + 0.5)."""
    full = lambda v: np.full(1, v)  # noqa: E731
    g = nir.NIRGraph.from_list(nir.LI(tau=full(1e-3), r=full(1.0), v_leak=full(0.5)))
    out = from_nir(g, dt=1e-4)(torch.ones(3, 1, 1))
    torch.testing.assert_close(out.flatten(), torch.tensor([0.15, 0.285, 0.4065]))


def test_cubalif_updates_the_current_first() -> None:
    """tau_syn = tau_mem = 2 dt (decays 0.5), w_in = r = 2 (unit gains), threshold 1:
    I = 1, 1.5, .75, .375; v = 1 (not > 1), .5 + 1.5 = 2 (fires), .75, .375 + .375."""
    full = lambda v: np.full(1, v)  # noqa: E731
    node = nir.CubaLIF(tau_syn=full(2e-4), tau_mem=full(2e-4), r=full(2.0), v_leak=full(0.0),
                       v_threshold=full(1.0), w_in=full(2.0))
    net = from_nir(nir.NIRGraph.from_list(node), dt=1e-4)
    out = net(torch.tensor([1.0, 1.0, 0.0, 0.0]).reshape(4, 1, 1))
    assert out.flatten().tolist() == [0.0, 1.0, 0.0, 0.0]


def test_per_neuron_time_constants_are_supported_per_neuron_thresholds_refused() -> None:
    g = nir.NIRGraph.from_list(nir.LIF(tau=np.array([2e-4, 1e-3]), r=np.array([2.0, 10.0]),
                                       v_leak=np.zeros(2), v_threshold=np.full(2, 10.0)))
    net = from_nir(g, dt=1e-4)
    u = []
    neuron = net.layers["lif"]
    neuron.register_forward_hook(lambda m, i, o: u.append(i[0]))
    net(torch.ones(2, 1, 2))
    assert torch.equal(neuron.decay, torch.tensor([0.5, 0.9]))  # k = 1 - dt/tau per neuron
    g = nir.NIRGraph.from_list(nir.LIF(tau=np.full(2, 1e-3), r=np.ones(2), v_leak=np.zeros(2),
                                       v_threshold=np.array([1.0, 2.0])))
    with pytest.raises(ExportError, match="per-neuron threshold"):
        from_nir(g, dt=1e-4)


def test_spikingjelly_export_imports_and_matches_spikingjelly() -> None:
    pytest.importorskip("spikingjelly", reason="SpikingJelly is not installed (peer library; "
                        "run with PYTHONPATH including a --target install of it)")
    try:
        from spikingjelly.activation_based import functional, layer, neuron
        from spikingjelly.activation_based.nir_exchange.to_nir import export_to_nir
    except ImportError as e:
        pytest.skip(f"SpikingJelly's NIR exchange is not importable: {e}")
    torch.manual_seed(0)
    net = nn.Sequential(layer.Conv2d(2, 4, 3, padding=1), neuron.LIFNode(tau=2.0),
                        layer.AvgPool2d(2), layer.Flatten(), layer.Linear(64, 10),
                        neuron.IFNode())
    functional.set_step_mode(net, "m")
    with torch.no_grad():
        net[0].weight.mul_(3.0)
        net[4].weight.mul_(4.0)
    x = (torch.rand(6, 3, 2, 8, 8) < 0.4).float()
    graph = export_to_nir(net, x, dt=1e-4)
    ours = from_nir(graph, dt=1e-4)
    with torch.no_grad():
        ref = net(x)
        out = ours(x)
    assert ref.sum() > 0
    assert torch.equal(out, ref)


def test_spikingjelly_reads_spikeloom_graphs_with_identical_spikes() -> None:
    pytest.importorskip("spikingjelly", reason="SpikingJelly is not installed (peer library; "
                        "run with PYTHONPATH including a --target install of it)")
    try:
        from spikingjelly.activation_based.nir_exchange.from_nir import import_from_nir
    except ImportError as e:
        pytest.skip(f"SpikingJelly's NIR exchange is not importable: {e}")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), LIF(decay=0.5, v_th=1.0), nn.Linear(8, 3),
                          IF(v_th=1.0)).eval()
    with torch.no_grad():
        model[0].weight.uniform_(0, 0.6)
        model[2].weight.uniform_(0, 0.5)
    peer = import_from_nir(to_nir(model, dt=1e-4, input_shape=(6,)), dt=1e-4, step_mode="m")
    x = torch.rand(10, 4, 6)
    with torch.no_grad():
        ref, out = model(x), peer(x)[0]
    assert ref.sum() > 20
    assert torch.equal(out, ref)


# ------------------------------------------------------------------ residuals, folding


def test_residual_sums_become_edges_into_the_next_neuron() -> None:
    torch.manual_seed(0)
    model = build_model("resnet_tiny", in_channels=2, num_classes=10).eval()
    g = to_nir(model, dt=1e-3, input_shape=(2, 16, 16))
    into_sn2 = sorted(a for a, b in g.edges if b == "layers.0.sn2")
    assert into_sn2 == ["layers.0.conv2", "stem.2"]  # identity shortcut: the stem's spikes
    assert sorted(a for a, b in g.edges if b == "layers.1.sn2") == [
        "layers.1.conv2", "layers.1.shortcut.0"]
    assert not any("bn" in k for k in g.nodes)  # all tdBNs folded
    x = (torch.rand(4, 2, 2, 16, 16) < 0.3).float()
    with torch.no_grad():
        torch.testing.assert_close(from_nir(g)(x), model(x, per_step=True), atol=1e-5, rtol=0)


def test_fold_norm_matches_norm_after_synapse() -> None:
    torch.manual_seed(0)
    conv = TimeDistributed(nn.Conv2d(3, 5, 3, padding=1))
    bn = TdBN(5, v_th=0.5)
    bn.train()
    bn(conv(torch.randn(4, 8, 3, 6, 6)))  # running statistics
    with torch.no_grad():
        bn.weight.copy_(torch.rand(5) + 0.5)
        bn.bias.copy_(torch.randn(5))
    bn.eval()
    x = torch.randn(2, 3, 3, 6, 6)
    torch.testing.assert_close(folded_synapse(conv, bn)(x), bn(conv(x)), atol=1e-5, rtol=1e-5)
    lin, plain = nn.Linear(2, 1, bias=False), nn.BatchNorm1d(1).eval()
    with torch.no_grad():
        lin.weight.fill_(2.0)
        plain.running_mean.fill_(1.0)
        plain.eps = 0.0
        plain.running_var.fill_(4.0)
        plain.weight.fill_(3.0)
        plain.bias.fill_(0.5)
    a, b = norm_affine(plain)  # a = 3/2, b = 0.5 - 1.5
    assert (float(a), float(b)) == (1.5, -1.0)
    w, c = fold_norm(lin, plain)
    assert w.tolist() == [[3.0, 3.0]] and c.tolist() == [-1.0]


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize("bad, match", [
    (LIAF(), r"layer '1' \(LIAF\): LIAF's analog output.*supported layers: .*Conv2d"),
    (LIF(reset="soft"), "soft .*reset has no NIR form"),
    (LIF(fire_ge=True), "fire_ge=True"),
])
def test_layers_without_a_faithful_nir_form_are_refused(bad: nn.Module, match: str) -> None:
    with pytest.raises(ExportError, match=match):
        to_nir(_mlp(bad), dt=1e-3, input_shape=(3,))


def test_temporal_attention_unknown_layers_and_missing_dt_are_refused() -> None:
    model = build_model("liafnet", neuron="lif", attention=True, T=4, input_size=(8, 8),
                        channels=(4,), hidden=8)
    with pytest.raises(ExportError, match=r"'features\.0\.2' \(TemporalAttention\)"):
        to_nir(model, dt=1e-3)
    with pytest.raises(ExportError, match=r"layer '1' of type GELU.*supported layers: "):
        to_nir(nn.Sequential(nn.Linear(3, 3), nn.GELU()), dt=1e-3, input_shape=(3,))
    with pytest.raises(ExportError, match="to_nir needs dt="):
        to_nir(_mlp(LIF()), input_shape=(3,))


def test_unknown_nir_node_and_cycles_are_named() -> None:
    g = nir.NIRGraph.from_list(nir.Affine(weight=np.eye(2), bias=np.zeros(2)),
                               nir.Delay(delay=np.ones(2)))
    with pytest.raises(ExportError, match=r"node 'delay' has type 'Delay'.*supported node "
                                          r"types: .*lif"):
        from_nir(g, dt=1e-3)
    full = lambda v: np.full(2, v)  # noqa: E731
    nodes = {"input": nir.Input(input_type={"input": np.array([2])}),
             "a": nir.Affine(weight=np.eye(2), bias=np.zeros(2)),
             "b": nir.LIF(tau=full(1e-3), r=full(1.0), v_leak=full(0.0), v_threshold=full(1.0)),
             "output": nir.Output(output_type={"output": np.array([2])})}
    g = nir.NIRGraph(nodes=nodes, edges=[("input", "a"), ("a", "b"), ("b", "a"),
                                         ("b", "output")], type_check=False)
    with pytest.raises(ExportError, match=r"cycle through nodes \['a', 'b'"):
        from_nir(g, dt=1e-3)
    assert isinstance(from_nir(_snntorch_style_graph(), dt=1e-4), NIRNetwork)
    assert math.isclose(from_nir(_snntorch_style_graph(), dt=1e-4).dt, 1e-4)
