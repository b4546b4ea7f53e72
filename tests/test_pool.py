"""The kernels' output pool (spikeloom.ops._pool): reuse only what nothing refers to."""

from __future__ import annotations

import pytest
import torch

from spikeloom.ops._pool import _FREE, OutputPool

pytestmark = pytest.mark.skipif(_FREE is None, reason="storage use counts not inspectable here")


def _fresh(shape, dtype):
    return torch.empty(shape, dtype=dtype)


def test_reuses_a_free_storage_of_the_same_size_only() -> None:
    pool = OutputPool()
    a = pool.empty((4, 5), torch.float32, _fresh)
    ptr = a.data_ptr()
    del a
    b = pool.empty((2, 10), torch.float32, _fresh)  # same bytes, other shape: reused
    assert b.data_ptr() == ptr and b.shape == (2, 10) and b.is_contiguous()
    c = pool.empty((4, 6), torch.float32, _fresh)  # other size: fresh
    assert c.data_ptr() != ptr
    assert pool.stats() == {"tracked": 2, "free": 0, "free_bytes": 0}


@pytest.mark.parametrize("holder", ["tensor", "view", "storage", "numpy", "saved_for_backward"])
def test_never_reuses_a_storage_something_still_refers_to(holder: str) -> None:
    pool = OutputPool()
    a = pool.empty((8, 8), torch.float32, _fresh)
    ptr = a.data_ptr()
    keep = {"tensor": lambda t: t, "view": lambda t: t[2:],
            "storage": lambda t: t.untyped_storage(), "numpy": lambda t: t.numpy(),
            "saved_for_backward": lambda t: (torch.ones(8, requires_grad=True) * t).sum(),
            }[holder](a)
    del a
    b = pool.empty((8, 8), torch.float32, _fresh)
    assert b.data_ptr() != ptr, holder
    assert keep is not None


def test_limits_and_clear() -> None:
    pool = OutputPool(max_free_bytes=100)
    ts = [pool.empty((10,), torch.float32, _fresh) for _ in range(4)]  # 40 B each
    del ts
    pool.empty((1,), torch.float32, _fresh)  # a scan: free ones beyond 100 B are released
    assert pool.stats()["free_bytes"] <= 100
    assert pool.clear() > 0 and pool.stats()["free"] == 0
    off = OutputPool(max_free_bytes=0)
    assert not off.enabled
    a = off.empty((3,), torch.float32, _fresh)
    ptr = a.data_ptr()
    del a
    assert off.stats()["tracked"] == 0 and off.empty((3,), torch.float32, _fresh) is not None
    with pytest.raises(ValueError, match=">= 0"):
        OutputPool(max_free_bytes=-1)
    assert ptr


def test_kernel_results_are_the_same_on_pooled_buffers() -> None:
    """Outputs large enough for the pool (>= 8 MiB): a second run, on reused storages, gives the
    same spikes and gradients as the first and as torch_fused."""
    from spikeloom.ops import get_backend
    from spikeloom.ops.neuron_sequence import NeuronSpec
    from spikeloom.ops.neuron_sequence import cpu_kernel as ck

    if ck.kernel is None:
        pytest.skip(ck.unavailable_reason())
    import gc

    gc.collect()  # models of earlier tests with memory options suspend the pool until collected
    ck.OUTPUT_POOL.clear()
    spec = NeuronSpec.make(surrogate="sigmoid", fire_ge=True)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 700_000, generator=gen)  # 11.2 MB per output
    g = torch.randn(4, 700_000, generator=gen)
    runs = []
    for _ in range(3):
        xi = x.clone().requires_grad_()
        s = ck.neuron_sequence_cpu_kernel(xi, 0.3, spec, need_u=False)[0]
        s.backward(g)
        runs.append((s.detach().clone(), xi.grad.clone(), {s.data_ptr(), xi.grad.data_ptr()}))
        del s, xi
    if ck.OUTPUT_POOL.enabled:
        assert runs[1][2] == runs[0][2] == runs[2][2]  # the same two storages, reused
    for r in runs[1:]:
        assert torch.equal(r[0], runs[0][0]) and torch.equal(r[1], runs[0][1])
    fused = get_backend("neuron_sequence", "torch_fused").fn
    xf = x.clone().requires_grad_()
    sf = fused(xf, 0.3, spec)[0]
    sf.backward(g)
    assert torch.equal(sf, runs[0][0])
    assert float((xf.grad - runs[0][1]).norm() / xf.grad.norm()) <= 1e-6


def test_suspend_nests_and_memory_options_suspend_the_kernel_pool() -> None:
    from spikeloom.memory import apply_memory_options
    from spikeloom.ops.neuron_sequence.cpu_kernel import OUTPUT_POOL

    pool = OutputPool()
    h1, h2 = pool.suspend(), pool.suspend()
    assert not pool.enabled
    h1.remove()
    h1.remove()  # once only
    assert not pool.enabled
    h2.remove()
    assert pool.enabled
    import gc

    model = torch.nn.Sequential(torch.nn.Linear(3, 3))
    gc.collect()
    was = OUTPUT_POOL.enabled
    handle = apply_memory_options(model, spike_bits=True)
    assert not OUTPUT_POOL.enabled
    handle.remove()
    assert OUTPUT_POOL.enabled == was
    other = torch.nn.Sequential(torch.nn.Linear(3, 3))
    apply_memory_options(other, checkpoint="block")  # handle dropped: lasts as long as the model
    assert not OUTPUT_POOL.enabled
    del other
    gc.collect()
    assert OUTPUT_POOL.enabled == was
    handle = apply_memory_options(model)  # no option: the pool stays as it is
    assert OUTPUT_POOL.enabled == was
    handle.remove()
