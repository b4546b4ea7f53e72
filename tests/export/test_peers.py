"""Weights from snnTorch and SpikingJelly state dicts: against hand-written references of the
peers' update equations (always) and against the peer libraries themselves (when importable)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeloom.errors import ExportError
from spikeloom.export.peers import load_peer_state_dict, snntorch_neuron, spikingjelly_neuron
from spikeloom.layers import TdBN, TimeDistributed
from spikeloom.neurons import LIF, PLIF


def _snntorch_state(reset_code: int) -> dict[str, torch.Tensor]:
    """What ``nn.Sequential(Linear(3, 4), Leaky, Linear(4, 2), Leaky).state_dict()`` holds."""
    g = torch.Generator().manual_seed(0)

    def leaky(beta: float, thr: float) -> dict[str, torch.Tensor]:
        return {"threshold": torch.tensor(thr), "graded_spikes_factor": torch.tensor(1.0),
                "reset_mechanism_val": torch.tensor(reset_code), "beta": torch.tensor(beta)}

    sd = {"0.weight": torch.rand(4, 3, generator=g), "0.bias": torch.rand(4, generator=g) * 0.1}
    sd |= {f"1.{k}": v for k, v in leaky(0.8, 1.0).items()}
    sd |= {"2.weight": torch.rand(2, 4, generator=g) * 1.5, "2.bias": torch.zeros(2)}
    sd |= {f"3.{k}": v for k, v in leaky(0.5, 0.6).items()}
    return sd


def _snntorch_reference(sd, x, subtract: bool) -> list[torch.Tensor]:
    """snnTorch ``Leaky`` as documented, with ``reset_delay=False``: ``mem = beta·mem + I``,
    ``spk = mem > threshold``, then ``mem -= spk·threshold`` (subtract) or ``mem *= 1 - spk``
    (zero), for each layer; returns both layers' spikes ``[T, B, N]``."""
    layers = [("0", "1"), ("2", "3")]
    mems = [None, None]
    out: list[list[torch.Tensor]] = [[], []]
    for t in range(x.shape[0]):
        h = x[t]
        for i, (fc, lk) in enumerate(layers):
            cur = h @ sd[f"{fc}.weight"].T + sd[f"{fc}.bias"]
            beta, thr = float(sd[f"{lk}.beta"]), float(sd[f"{lk}.threshold"])
            mem = cur if mems[i] is None else beta * mems[i] + cur
            spk = (mem > thr).float()
            mems[i] = mem - spk * thr if subtract else mem * (1 - spk)
            out[i].append(spk)
            h = spk
    return [torch.stack(o) for o in out]


def _spikes_of(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    outs: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda m, i, o: outs.append(o))
             for m in model.modules() if isinstance(m, LIF)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return outs


@pytest.mark.parametrize("reset_code, subtract", [(1, False), (0, True)])
def test_snntorch_state_dict_matches_the_documented_update(reset_code: int, subtract: bool) -> None:
    sd = _snntorch_state(reset_code)
    model = nn.Sequential(nn.Linear(3, 4), LIF(), nn.Linear(4, 2), LIF())
    pairs = load_peer_state_dict(model, sd, "snntorch", reset_delay=False)
    assert pairs == [("0", "0"), ("2", "2"), ("1", "1"), ("3", "3")]
    assert model[1].decay == pytest.approx(0.8) and model[3].v_th == pytest.approx(0.6)
    assert model[1].reset == ("soft" if subtract else "hard")
    x = torch.rand(10, 5, 3, generator=torch.Generator().manual_seed(1)) * 1.2
    ref = _snntorch_reference(sd, x, subtract)
    ours = _spikes_of(model, x)
    assert sum(float(r.sum()) for r in ref) > 20
    for a, b in zip(ours, ref):
        assert torch.equal(a, b)


def test_snntorch_subtract_with_reset_delay_and_bad_entries_are_refused() -> None:
    model = nn.Sequential(nn.Linear(3, 4), LIF(), nn.Linear(4, 2), LIF())
    with pytest.raises(ExportError, match="reset_delay=True"):
        load_peer_state_dict(model, _snntorch_state(0), "snntorch")
    load_peer_state_dict(model, _snntorch_state(1), "snntorch")  # zero reset: any delay
    with pytest.raises(ExportError, match=r"2 synapse layers .* model has 1"):
        load_peer_state_dict(nn.Sequential(nn.Linear(3, 4), LIF()), _snntorch_state(1),
                             "snntorch")
    with pytest.raises(ExportError, match=r"entry 'x' with keys \['alpha'\]"):
        load_peer_state_dict(model, {"x.alpha": torch.ones(1)}, "snntorch")
    with pytest.raises(ValueError, match="unknown peer library 'norse'"):
        load_peer_state_dict(model, {}, "norse")


def _sj_state() -> dict[str, torch.Tensor]:
    """``Sequential(layer.Conv2d(2, 3, 3), layer.BatchNorm2d(3), ParametricLIFNode())``."""
    g = torch.Generator().manual_seed(2)
    return {"0.weight": torch.randn(3, 2, 3, 3, generator=g), "0.bias": torch.randn(3, generator=g),
            "1.weight": torch.rand(3, generator=g) + 0.5, "1.bias": torch.randn(3, generator=g),
            "1.running_mean": torch.randn(3, generator=g), "1.running_var": torch.rand(3) + 0.5,
            "1.num_batches_tracked": torch.tensor(7), "2.w": torch.tensor(-0.4)}


def _sj_model() -> nn.Sequential:
    plif = spikingjelly_neuron("plif", tau=2.0, v_threshold=1.0)
    return nn.Sequential(TimeDistributed(nn.Conv2d(2, 3, 3)), TdBN(3, v_th=0.5), plif)


def test_spikingjelly_state_dict_matches_the_documented_update() -> None:
    """SpikingJelly PLIF (decay_input, v_reset = 0): ``H = V + (X - V)·sigmoid(w)``,
    ``S = H >= V_th``, ``V = H·(1 - S)``; BN in eval mode on ``[T·B, C, H, W]``."""
    sd = _sj_state()
    model = _sj_model().eval()
    load_peer_state_dict(model, sd, "spikingjelly")
    assert float(model[2].w.detach()) == pytest.approx(-0.4)
    x = torch.rand(6, 2, 2, 7, 7, generator=torch.Generator().manual_seed(3)) * 2
    bn = nn.BatchNorm2d(3).eval()
    bn.load_state_dict({k[2:]: v for k, v in sd.items() if k.startswith("1.")})
    conv = nn.Conv2d(2, 3, 3)
    conv.load_state_dict({k[2:]: v for k, v in sd.items() if k.startswith("0.")})
    with torch.no_grad():
        cur = bn(conv(x.flatten(0, 1))).unflatten(0, (6, 2))
        a = torch.sigmoid(sd["2.w"])
        v, ref = torch.zeros_like(cur[0]), []
        for t in range(6):
            h = v + (cur[t] - v) * a
            s = (h >= 1.0).float()
            v = h * (1 - s)
            ref.append(s)
        out = model(x)
    ref = torch.stack(ref)
    assert ref.sum() > 20
    assert (out != ref).float().mean() < 1e-3  # PLIF rounds (1-a)·V + a·X; equal up to ties


def test_spikingjelly_neuron_mapping() -> None:
    lif = spikingjelly_neuron("lif", tau=4.0, decay_input=False)
    assert isinstance(lif, LIF) and lif.decay == 0.75 and lif.fire_ge
    assert isinstance(spikingjelly_neuron("lif", tau=4.0), PLIF)
    assert spikingjelly_neuron("if", v_reset=None).reset == "soft"
    with pytest.raises(ExportError, match="leaks toward v_reset"):
        spikingjelly_neuron("lif", v_reset=-0.5)
    assert snntorch_neuron(0.9, 0.7, reset_mechanism="zero").v_th == pytest.approx(0.7)


# --------------------------------------------------------------- against the peer libraries


def test_equal_to_snntorch_when_installed() -> None:
    snn = pytest.importorskip("snntorch", reason="snnTorch is not installed (peer library; run "
                              "with PYTHONPATH including a --target install of it)")
    torch.manual_seed(0)
    for mech, delay in [("zero", True), ("subtract", False)]:
        peer = nn.Sequential(nn.Linear(3, 6), snn.Leaky(beta=0.7, threshold=0.8,
                                                        reset_mechanism=mech, reset_delay=delay),
                             nn.Linear(6, 2), snn.Leaky(beta=0.5, reset_mechanism=mech,
                                                        reset_delay=delay))
        with torch.no_grad():  # membranes stay below 2·threshold (see snntorch_neuron)
            peer[0].weight.uniform_(0.2, 0.4)
            peer[2].weight.uniform_(0.15, 0.24)
            peer[0].bias.zero_()
            peer[2].bias.zero_()
        x = torch.rand(12, 4, 3) * 0.6
        mems, spk_ref = [None, None], []
        with torch.no_grad():
            for t in range(12):
                h, step = x[t], []
                for i, (fc, lk) in enumerate([(peer[0], peer[1]), (peer[2], peer[3])]):
                    h, mems[i] = lk(fc(h), mems[i]) if mems[i] is not None else lk(fc(h))
                    step.append(h)
                spk_ref.append(step)
        ours = nn.Sequential(nn.Linear(3, 6), LIF(), nn.Linear(6, 2), LIF())
        load_peer_state_dict(ours, peer.state_dict(), "snntorch", reset_delay=delay)
        got = _spikes_of(ours, x)
        for i in range(2):
            ref = torch.stack([s[i] for s in spk_ref])
            assert ref.sum() > 0
            assert torch.equal(got[i], ref), (mech, i)


def test_equal_to_spikingjelly_when_installed() -> None:
    pytest.importorskip("spikingjelly", reason="SpikingJelly is not installed (peer library; "
                        "run with PYTHONPATH including a --target install of it)")
    try:
        from spikingjelly.activation_based import functional, layer, neuron
    except ImportError as e:
        pytest.skip(f"SpikingJelly is not importable here: {e}")
    torch.manual_seed(0)
    peer = nn.Sequential(layer.Conv2d(2, 3, 3), layer.BatchNorm2d(3),
                         neuron.ParametricLIFNode(init_tau=3.0), layer.Flatten(),
                         layer.Linear(75, 4), neuron.LIFNode(tau=2.0, decay_input=False))
    functional.set_step_mode(peer, "m")
    peer.load_state_dict({**peer.state_dict(), "1.running_mean": torch.randn(3) * 0.1,
                          "1.running_var": torch.rand(3) + 0.5, "2.w": torch.tensor(-0.3)})
    with torch.no_grad():
        peer[0].weight.mul_(3.0)
        peer[4].weight.uniform_(-0.1, 0.5)
    peer.eval()
    ours = nn.Sequential(TimeDistributed(nn.Conv2d(2, 3, 3)), TdBN(3, v_th=0.5),
                         spikingjelly_neuron("plif"), nn.Flatten(2), nn.Linear(75, 4),
                         spikingjelly_neuron("lif", tau=2.0, decay_input=False)).eval()
    load_peer_state_dict(ours, peer.state_dict(), "spikingjelly")
    x = (torch.rand(8, 3, 2, 7, 7) < 0.5).float() * 2
    with torch.no_grad():
        ref = peer(x)
        out = ours(x)
    assert ref.sum() > 0
    assert (out != ref).float().mean() < 1e-3  # equal up to float ties at the threshold
