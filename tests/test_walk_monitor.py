"""Layer walk, probes and monitors; the registry helper."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeloom.errors import UnknownNameError
from spikeloom.layers import Add, MeanOverTime, TdBN, TemporalAttention, TimeDistributed
from spikeloom.monitor import AttentionMonitor, SpikeMonitor
from spikeloom.neurons import LIAF, LIF
from spikeloom.registry import Registry, TypeRegistry
from spikeloom.walk import iter_layers, layers_with_role, register_role, role_of


def _net() -> nn.Sequential:
    return nn.Sequential(
        TimeDistributed(nn.Conv2d(2, 4, 3, padding=1)),
        TdBN(4),
        TemporalAttention(3, reduction=1),
        LIF(),
        TimeDistributed(nn.AvgPool2d(2)),
        TimeDistributed(nn.Flatten()),
        nn.Linear(16, 5),
        LIAF(),
        MeanOverTime(),
    )


def test_iter_layers_roles_in_forward_order():
    net = _net()
    got = [(layer.name, layer.role) for layer in iter_layers(net)]
    assert got == [
        ("0.module", "synapse"), ("1", "norm"), ("2", "attention"), ("3", "neuron"),
        ("4.module", "pool"), ("5.module", "other"), ("6", "synapse"), ("7", "neuron"),
        ("8", "readout"),
    ]
    # the linear layers inside the attention are part of it, not synapses of the network
    assert [x.name for x in layers_with_role(net, "synapse")] == ["0.module", "6"]


def test_register_role_for_a_new_type_and_shared_modules():
    class GraphConv(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)

    register_role(GraphConv, "graph_conv")
    shared = LIF()
    net = nn.Sequential(GraphConv(), shared, nn.Sequential(shared), Add())
    assert [(x.name, x.role) for x in iter_layers(net)] == [
        ("0", "graph_conv"), ("1", "neuron"), ("3", "merge")]
    assert role_of(nn.Identity()) is None


def test_spike_monitor_rates_by_hand_and_hooks_removed():
    lif = LIF(v_th=0.5, decay=0.2)
    net = nn.Sequential(lif)
    x = torch.tensor([[1.0], [0.0], [1.0], [0.0]])  # spikes 1, 0, 1, 0 -> rate 0.5
    with SpikeMonitor(net, raster=True) as mon:
        net(x)
        net(torch.zeros(4, 1))  # rate 0
    assert mon.last_rates() == {"0": 0.0}
    assert mon.rates() == {"0": pytest.approx(0.25)}
    assert mon.sums() == {"0": pytest.approx(0.5)}
    assert mon.calls == 2
    assert torch.equal(mon.rasters["0"], torch.zeros(4, 1))
    assert not lif.probed
    net(x)  # outside the monitor nothing is recorded
    assert mon.calls == 2


def test_spike_monitor_sees_liaf_internal_spikes():
    liaf = LIAF(v_th=0.5, decay=0.3)
    x = torch.tensor([[0.6], [0.1], [0.7], [0.0]])
    with SpikeMonitor(liaf) as mon:
        y = liaf(x)
    assert not torch.equal(y, (y > 0).to(y.dtype))  # analog output
    assert mon.rates() == {"": pytest.approx(0.5)}  # internal spikes at steps 0 and 2


def test_attention_monitor_reports_discards():
    ta = TemporalAttention(4, reduction=1, discard_threshold=0.5)
    with torch.no_grad():
        ta.fc2.weight.zero_()
        ta.fc2.bias.copy_(torch.tensor([-2.0, 2.0, -2.0, 2.0]))  # scores < / > 0.5
    x = torch.ones(4, 3, 2)
    with AttentionMonitor(ta) as mon:
        ta.train()
        ta(x)  # training: no discard
        ta.eval()
        y = ta(x)
    assert mon.scores[""].shape == (4, 3)
    assert torch.all(y[0] == 0) and torch.all(y[2] == 0) and torch.all(y[1] > 0)
    assert mon.discard_report() == {
        "": {"total_frames": 12, "discarded_frames": 6, "fraction": 0.5}}


def test_monitor_cannot_be_entered_twice():
    mon = SpikeMonitor(LIF())
    with mon, pytest.raises(RuntimeError, match="already active"):
        mon.__enter__()


def test_registry_names_aliases_and_errors():
    reg: Registry[int] = Registry("widget")
    reg.register("big-one", 1, aliases=("B1",), size=3)
    assert reg.get("BIG_one") == 1 and reg.get("b1") == 1 and "Big-One" in reg
    assert reg.entry("b1").meta == {"size": 3} and reg.names() == ["big_one"]
    with pytest.raises(ValueError, match="already registered"):
        reg.register("big_one", 2)
    with pytest.raises(UnknownNameError, match=r"unknown widget 'small'; choose one of: big_one"):
        reg.get("small")

    @reg.register("two")
    def two():
        return 2

    assert reg["two"]() == 2 and len(reg) == 2
    reg.unregister("b1")
    assert "big_one" not in reg and "b1" not in reg


def test_type_registry_follows_the_class_hierarchy():
    reg: TypeRegistry[str] = TypeRegistry("thing")
    reg.register(nn.Module, "module")
    reg.register(nn.Linear, "linear")

    class MyLinear(nn.Linear):
        pass

    assert reg.lookup(MyLinear(2, 2)) == "linear"
    assert reg.lookup(nn.ReLU()) == "module"
    assert reg.lookup(3, "none") == "none" and 3 not in reg
