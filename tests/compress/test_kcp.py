"""KCP linear maps and recurrent cells (spec A5)."""

from __future__ import annotations

import pytest
import torch

from spikeloom.compress.tensorized.kcp import KCPLinear, KCPLSTMCell, KCPRNNCell
from spikeloom.errors import ConfigError


def test_spec_vector_kron_sum_equals_fast_paths():
    """R = 3, I = [2, 3], J = [3, 2]: Σ_r kron(A_r1, A_r2) @ x equals both algorithms."""
    torch.manual_seed(0)
    lin = KCPLinear(6, 6, in_modes=[3, 2], out_modes=[2, 3], rank=3, bias=False).double()
    x = torch.randn(4, 6, dtype=torch.float64)
    a1, a2 = lin.factors
    dense = sum(torch.kron(a1[r], a2[r]) for r in range(3))
    assert torch.allclose(lin.weight(), dense)
    assert torch.allclose(lin(x), x @ dense.T, atol=1e-12)
    lin.algorithm = "sequential"
    assert torch.allclose(lin(x), x @ dense.T, atol=1e-12)


def test_param_count_and_compression():
    lin = KCPLinear(57600, 1024, in_modes=[8, 20, 20, 18], out_modes=[4, 4, 8, 8], rank=4,
                    bias=False)
    assert lin.num_params() == 4 * (8 * 4 + 20 * 4 + 20 * 8 + 18 * 8)
    assert 57600 * 1024 / lin.num_params() == pytest.approx(57600 * 1024 / (4 * 416))


@pytest.mark.parametrize("algorithm", ["batched", "sequential"])
def test_gradcheck(algorithm):
    torch.manual_seed(1)
    lin = KCPLinear(12, 6, in_modes=[3, 2, 2], out_modes=[1, 3, 2], rank=2,
                    algorithm=algorithm).double()
    x = torch.randn(3, 12, dtype=torch.float64, requires_grad=True)
    params = tuple(lin.parameters())

    def f(x, *ps):
        return torch.func.functional_call(lin, dict(zip([n for n, _ in lin.named_parameters()],
                                                        ps)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params))


def test_algorithms_same_gradients():
    torch.manual_seed(2)
    lin = KCPLinear(12, 6, in_modes=[3, 4], out_modes=[2, 3], rank=3).double()
    x = torch.randn(5, 12, dtype=torch.float64)
    g1 = torch.autograd.grad(lin(x).square().sum(), list(lin.parameters()))
    lin.algorithm = "sequential"
    g2 = torch.autograd.grad(lin(x).square().sum(), list(lin.parameters()))
    assert all(torch.allclose(a, b) for a, b in zip(g1, g2))


def test_lstm_cell_matches_torch_lstm_with_the_dense_kron_weight():
    torch.manual_seed(3)
    cell = KCPLSTMCell(12, 4, in_modes=[3, 4], out_modes=[4, 4], rank=2).double()
    ref = torch.nn.LSTMCell(12, 4).double()
    with torch.no_grad():
        ref.weight_ih.copy_(cell.input_map.weight())
        ref.bias_ih.copy_(cell.input_map.bias)
        ref.weight_hh.copy_(cell.hidden_map.weight)
        ref.bias_hh.zero_()
    x = torch.randn(3, 12, dtype=torch.float64)
    h = torch.randn(3, 4, dtype=torch.float64)
    c = torch.randn(3, 4, dtype=torch.float64)
    h1, c1 = cell(x, (h, c))
    h2, c2 = ref(x, (h, c))
    assert torch.allclose(h1, h2) and torch.allclose(c1, c2)
    rnn = KCPRNNCell(12, 4, in_modes=[3, 4], out_modes=[2, 2], rank=2)
    assert rnn(torch.randn(3, 12)).shape == (3, 4)


def test_errors():
    with pytest.raises(ConfigError, match=r"kx: input modes \[5, 2\].*product is 12"):
        KCPLinear(12, 6, in_modes=[5, 2], out_modes=[2, 3], name="kx")
    with pytest.raises(ConfigError, match="rank must be >= 1"):
        KCPLinear(12, 6, rank=0)
