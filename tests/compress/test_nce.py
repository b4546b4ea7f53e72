"""NCE channel-width search (spec A9)."""

from __future__ import annotations

import pytest
import torch

from spikeloom.compress.nce import NCESupernet, flops_penalty, nce_search

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def net() -> NCESupernet:
    torch.manual_seed(0)
    return NCESupernet(2, 4, [[4, 8, 12], [8, 16, 24]], [1, 2])


def test_fixed_width_has_exactly_c_active_channels():
    n = net()
    n.fix_widths([8, 16])
    x = torch.randn(3, 2, 8, 8) * 3
    y = n.layers[0](x)
    active = (y.abs().sum(dim=(0, 2, 3)) > 0)
    assert int(active[8:].sum()) == 0 and int(active[:8].sum()) == 8
    assert int((n.layers[1](y).abs().sum(dim=(0, 2, 3)) > 0).sum()) == 16


def test_expected_flops_is_deterministic_count_at_low_temperature():
    n = net()
    with torch.no_grad():
        n.layers[0].alpha.copy_(torch.tensor([0.0, 3.0, 0.0]))
        n.layers[1].alpha.copy_(torch.tensor([2.0, 0.0, 0.0]))
    # deterministic: 2*8*9*8*8 + 8*8*9*4*4
    exact = 2 * 8 * 9 * 64 + 8 * 8 * 9 * 16
    torch.manual_seed(1)
    with torch.no_grad():
        for _ in range(5):  # temperature -> 0: the samples are one-hot on the Gumbel argmax
            probs = [layer.probs(1e-3) for layer in n.layers]
            widths = [layer.candidates[int(p.argmax())] for layer, p in zip(n.layers, probs)]
            det = 2 * widths[0] * 9 * 64 + widths[0] * widths[1] * 9 * 16
            assert float(n.expected_flops((8, 8), probs)) == pytest.approx(det, rel=1e-6)
    n.fix_widths([8, 8])
    assert float(n.expected_flops((8, 8))) == exact


def test_penalty_and_search_respect_budget():
    assert float(flops_penalty(torch.tensor(50.0), 100.0)) == 0.0
    assert float(flops_penalty(torch.tensor(200.0), 100.0)) == pytest.approx(0.6931, abs=1e-4)
    n = net()
    g = torch.Generator().manual_seed(0)
    xs = [(torch.randn(8, 2, 8, 8, generator=g), torch.randint(0, 4, (8,), generator=g))
          for _ in range(6)]
    target = 2 * 4 * 9 * 64 + 4 * 8 * 9 * 16  # the smallest widths' cost
    widths = nce_search(n, xs, (8, 8), target, epochs=2, lr=0.05, lam=5.0)
    assert len(widths) == 2 and all(w in layer.candidates for w, layer in zip(widths, n.layers))
    assert float(n.expected_flops((8, 8)).detach()) < 2 * 12 * 9 * 64 + 12 * 24 * 9 * 16
