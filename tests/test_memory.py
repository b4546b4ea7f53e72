"""Training-memory options (spikeloom.memory): results identical with and without them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeloom.errors import ConfigError
from spikeloom.layers import TdBN, TimeDistributed
from spikeloom.memory import (
    apply_memory_options,
    find_blocks,
    pack_bits,
    unpack_bits,
    validate_memory_options,
)
from spikeloom.models import build_model
from spikeloom.neurons import LIF, PLIF


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 5000])
def test_pack_bits_round_trip_and_refuses_analog(dtype, n) -> None:
    gen = torch.Generator().manual_seed(n)
    x = (torch.rand(n, generator=gen) < 0.3).to(dtype)
    b = pack_bits(x)
    assert b is not None and b.data.dtype == torch.uint8 and b.data.numel() == (n + 7) // 8
    assert torch.equal(unpack_bits(b), x)
    assert int(b.data[0]) & 1 == int(x[0])  # first value in the lowest bit
    y = x.clone()
    y[n - 1] = 0.5  # one analog value anywhere (here: the last) refuses the whole tensor
    assert pack_bits(y) is None
    # torch fallback path (a non-contiguous tensor) packs the same bytes
    z = torch.stack([x, x], 1)[:, 0]
    assert (n == 1 or not z.is_contiguous()) and torch.equal(pack_bits(z).data, b.data)
    assert pack_bits(torch.ones(3, dtype=torch.int64)) is None


def _net(dropout: bool = False) -> nn.Module:
    torch.manual_seed(0)
    blocks = [
        nn.Sequential(TimeDistributed(nn.Conv2d(2, 6, 3, padding=1)), TdBN(6), LIF()),
        nn.Sequential(TimeDistributed(nn.Conv2d(6, 8, 3, padding=1)), TdBN(8), PLIF(),
                      TimeDistributed(nn.AvgPool2d(2))),
        nn.Sequential(TimeDistributed(nn.Flatten()), TimeDistributed(nn.Linear(8 * 4 * 4, 32)),
                      *( [nn.Dropout(0.3)] if dropout else []), LIF(surrogate="sigmoid")),
        TimeDistributed(nn.Linear(32, 5)),
    ]
    return nn.Sequential(*blocks)


def _step(net: nn.Module, x: torch.Tensor, seed: int = 0):
    torch.manual_seed(seed)
    net.zero_grad()
    out = net(x).mean(0)
    loss = nn.functional.cross_entropy(out, torch.arange(out.shape[0]) % 5)
    loss.backward()
    grads = [p.grad.clone() for p in net.parameters()]
    buffers = [b.clone() for b in net.buffers()]
    return loss.detach(), grads, buffers


@pytest.mark.parametrize("options", [dict(spike_bits=True), dict(checkpoint="block"),
                                     dict(spike_bits=True, checkpoint="block")])
@pytest.mark.parametrize("dropout", [False, True])
def test_loss_grads_and_buffers_identical_with_each_option(options, dropout) -> None:
    x = (torch.rand(4, 3, 2, 8, 8, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    base = _step(_net(dropout), x)
    net = _net(dropout)
    handle = apply_memory_options(net, **options)
    got = _step(net, x)
    assert torch.equal(got[0], base[0])
    for a, b in zip(got[1], base[1]):
        assert torch.equal(a, b)
    for a, b in zip(got[2], base[2]):  # running statistics updated exactly once
        assert torch.equal(a, b)
    handle.remove()
    assert "forward" not in net[0].__dict__
    assert torch.equal(_step(net, x)[0], _step(_net(dropout), x)[0])


def test_options_really_drop_saved_tensors() -> None:
    """spike_bits: the binary inputs of the synapses are saved as uint8 bits; checkpoint: the
    blocks' graphs are not kept (only their inputs)."""
    x = (torch.rand(4, 3, 2, 8, 8, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    net = _net()
    apply_memory_options(net, spike_bits=True)
    from spikeloom import memory

    seen = []
    real = memory._pack_saved

    def spy(t):
        out = real(t)
        seen.append(type(out).__name__)
        return out

    memory._pack_saved = spy
    try:
        net(x).sum().backward()
    finally:
        memory._pack_saved = real
    # the input frames (binary here) and the spikes into conv 2 become bits; the linear
    # layer's input (average-pooled spikes, not binary) and the weights stay floats
    assert seen.count("_Bits") == 2 and "Tensor" in seen

    net = _net()
    apply_memory_options(net, checkpoint="block")
    out = net(x)
    fn = out.grad_fn
    names, seen_fns = set(), set()
    stack = [fn]
    while stack:
        f = stack.pop()
        if f is None or id(f) in seen_fns:
            continue
        seen_fns.add(id(f))
        names.add(type(f).__name__)
        stack += [g for g, _ in f.next_functions]
    assert "_BlockCheckpointBackward" in names
    assert not any("Convolution" in n for n in names)  # convs live inside checkpoints only


def test_find_blocks_on_the_models() -> None:
    assert [n for n, _ in find_blocks(build_model("resnet-tiny"))] == [
        "stem", "layers.0", "layers.1", "classifier"]
    assert [n for n, _ in find_blocks(_net())] == ["0", "1", "2"]


def test_memory_options_validation() -> None:
    assert validate_memory_options({}) == {"spike_bits": False, "checkpoint": "none"}
    with pytest.raises(ConfigError, match="unknown memory option.*spike_bit"):
        validate_memory_options({"spike_bit": True})
    with pytest.raises(ConfigError, match="memory.checkpoint must be one of none, block"):
        validate_memory_options({"checkpoint": "time"})
    with pytest.raises(ConfigError, match="memory.spike_bits must be true or false"):
        validate_memory_options({"spike_bits": "yes"})
    from spikeloom.train.config import TrainConfig

    cfg = TrainConfig.from_dict({"memory": {"spike_bits": True, "checkpoint": "block"}})
    assert cfg.memory == {"spike_bits": True, "checkpoint": "block"}
    with pytest.raises(ConfigError, match="memory"):
        TrainConfig.from_dict({"memory": {"checkpoint": "layer"}})
