"""Kronecker CP (KCP) linear maps and recurrent cells (Wang et al., TNNLS 2023; spec A5).

``W = Σ_{r=1..R} A_r^(1) ⊗ A_r^(2) ⊗ ⋯ ⊗ A_r^(d)``, ``A_r^(k) ∈ R^{I_k×J_k}``: a rank-R CP
decomposition of the merged-mode tensor of ``W ∈ R^{I×J}``; ``R·Σ I_k J_k`` parameters.

Fast multiplication ``y = W x`` without building ``W`` (``algorithm``):

* ``"batched"`` (algorithm 2, default): the factors stacked as ``[R, I_k, J_k]`` and one
  contraction with ``r`` shared by all factors, mode by mode (``r`` is summed at the end);
* ``"sequential"`` (algorithm 1): for every term ``r`` the mode products
  ``X ×_1 A_r^(1) ⋯ ×_d A_r^(d)``, then the sum over ``r``.

Both equal the dense Kronecker sum (tested, with gradcheck). Modes are contracted in order
``1..d`` (the spec's advice to contract the modes with the largest ``J_k / I_k`` first is not
applied). :class:`KCPRNNCell` and :class:`KCPLSTMCell` compress the input-to-hidden matrix of
all gates jointly (``H×D`` resp. ``4H×D``); the recurrent matrix stays dense.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from ...cost.counters import register_counter
from ...errors import ConfigError
from ...walk import register_role
from ._modes import chain_macs, contract_chain, letters, mode_pair

__all__ = ["KCPLinear", "KCPRNNCell", "KCPLSTMCell", "kcp_from_dense", "kcp_model"]


class KCPLinear(nn.Module):
    """``y = W x + b`` with ``W`` a sum of ``R`` Kronecker products.

    Args:
        in_features, out_features: ``J`` and ``I``.
        in_modes, out_modes: ``J_k`` and ``I_k`` (same length ``d``); ``None``: ``d`` factors.
        rank: ``R >= 1``.
        d: number of modes when not given (default 2).
        bias: learn a bias.
        algorithm: ``"batched"`` (default) or ``"sequential"``.
        target_var: variance of the entries of ``W`` at init (default He ``2 / J``; factors
            ``N(0, s²)`` with ``R·s^(2d) = v``).
        name: layer name used in error messages.

    Shapes:
        input ``[..., J]`` -> output ``[..., I]``.
    """

    def __init__(self, in_features: int, out_features: int, in_modes: Sequence[int] | None = None,
                 out_modes: Sequence[int] | None = None, rank: int = 4, d: int = 2,
                 bias: bool = True, algorithm: Literal["batched", "sequential"] = "batched",
                 target_var: float | None = None, name: str | None = None) -> None:
        super().__init__()
        name = name or type(self).__name__
        self.in_features, self.out_features = int(in_features), int(out_features)
        n, m = mode_pair(name, self.in_features, self.out_features, in_modes, out_modes, d)
        if int(rank) < 1:
            raise ConfigError(f"{name}: KCP rank must be >= 1, got {rank}")
        if algorithm not in ("batched", "sequential"):
            raise ConfigError(f"{name}: algorithm must be 'batched' or 'sequential', "
                              f"got {algorithm!r}")
        self.in_modes, self.out_modes, self.rank = n, m, int(rank)
        self.algorithm = algorithm
        v = 2.0 / self.in_features if target_var is None else float(target_var)
        s = (v / self.rank) ** (1.0 / (2 * len(n)))
        self.factors = nn.ParameterList(
            nn.Parameter(torch.randn(self.rank, a, b) * s) for a, b in zip(m, n)
        )
        self.bias = nn.Parameter(torch.zeros(self.out_features)) if bias else None

    def num_params(self) -> int:
        """``R · Σ I_k J_k`` (without the bias)."""
        return sum(f.numel() for f in self.factors)

    def weight(self) -> Tensor:
        """The dense Kronecker sum ``Σ_r A_r^(1) ⊗ ⋯ ⊗ A_r^(d)`` (``I×J``)."""
        out = 0
        for r in range(self.rank):
            k = self.factors[0][r]
            for f in list(self.factors)[1:]:
                k = torch.kron(k, f[r])
            out = out + k
        return out

    def _specs(self) -> tuple[list[str], str, dict[str, int]]:
        d = len(self.in_modes)
        J, I = letters(d, 1), letters(d, 1 + d)
        r = letters(1, 1 + 2 * d)
        specs = ["z" + J] + [r + I[k] + J[k] for k in range(d)]
        sizes = {**dict(zip(J, self.in_modes)), **dict(zip(I, self.out_modes)), r: self.rank}
        return specs, "z" + I, sizes

    def _multiply(self, x: Tensor) -> Tensor:
        X = x.reshape(x.shape[0], *self.in_modes)
        specs, out, _ = self._specs()
        if self.algorithm == "batched":
            y = contract_chain(X, specs, list(self.factors), out)
        else:
            term_specs = [specs[0]] + [s[1:] for s in specs[1:]]
            y = sum(contract_chain(X, term_specs, [f[r] for f in self.factors], out)
                    for r in range(self.rank))
        return y.reshape(x.shape[0], -1)

    def contract_macs(self) -> list[int]:
        """MACs per sample of each step of the batched multiplication."""
        specs, out, sizes = self._specs()
        return chain_macs(specs, sizes, out)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"{type(self).__name__} expects [..., {self.in_features}] input, got "
                             f"{tuple(x.shape)}")
        lead = x.shape[:-1]
        y = self._multiply(x.reshape(-1, self.in_features))
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        return (f"in_modes={self.in_modes}, out_modes={self.out_modes}, rank={self.rank}, "
                f"algorithm={self.algorithm}")


class KCPRNNCell(nn.Module):
    """Elman cell ``h' = tanh(W_x x + W_h h + b)`` with a KCP ``W_x`` (``H×D``).

    Args:
        input_size, hidden_size: ``D`` and ``H``.
        in_modes, out_modes, rank, d, algorithm: of the KCP input matrix (:class:`KCPLinear`).
    """

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, in_modes: Sequence[int] | None = None,
                 out_modes: Sequence[int] | None = None, rank: int = 4, d: int = 2,
                 algorithm: Literal["batched", "sequential"] = "batched") -> None:
        super().__init__()
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        g = self.gates * self.hidden_size
        self.input_map = KCPLinear(self.input_size, g, in_modes, out_modes, rank, d, True,
                                   algorithm, target_var=1.0 / self.input_size,
                                   name=f"{type(self).__name__}.input_map")
        self.hidden_map = nn.Linear(self.hidden_size, g, bias=False)

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        return torch.tanh(self.input_map(x) + self.hidden_map(h))


class KCPLSTMCell(KCPRNNCell):
    """LSTM cell (gates i, f, g, o as ``torch.nn.LSTMCell``) with a KCP ``W_x`` (``4H×D``).

    ``forward(x, (h, c)) -> (h', c')``; ``(h, c)`` default to zeros.
    """

    gates = 4

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None  # type: ignore[override]
                ) -> tuple[Tensor, Tensor]:
        if state is None:
            z = x.new_zeros(x.shape[0], self.hidden_size)
            state = (z, z)
        h, c = state
        i, f, g, o = (self.input_map(x) + self.hidden_map(h)).chunk(4, dim=-1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


def _kcp_dense(m: KCPLinear, x: Tensor, y: Tensor) -> int:
    return int(x.numel()) * m.out_features


def _kcp_synops(m: KCPLinear, nz: Tensor, y: Tensor, cache: dict) -> tuple[int, int]:
    steps = m.contract_macs()
    samples = int(nz.numel()) // m.in_features
    return int(nz.sum()) * (steps[0] // m.in_features), samples * sum(steps[1:])


@torch.no_grad()
def kcp_from_dense(linear: nn.Linear, rank: int = 4, d: int = 2, name: str | None = None,
                   n_iter: int = 100) -> KCPLinear:
    """A :class:`KCPLinear` fitted to a trained ``nn.Linear`` by a rank-R CP decomposition
    (``tensorly.decomposition.parafac``, ALS, SVD init) of the merged-mode tensor; without
    ``tensorly`` the factors stay variance-matched random (fine-tune them)."""
    layer = KCPLinear(linear.in_features, linear.out_features, rank=rank, d=d,
                      bias=linear.bias is not None, name=name)
    if linear.bias is not None:
        layer.bias.copy_(linear.bias)
    try:
        import tensorly as tl
        from tensorly.decomposition import parafac
    except ImportError:  # pragma: no cover - optional dependency
        return layer
    from .decompose import merged_tensor

    t = merged_tensor(linear.weight.detach().double(), layer.out_modes, layer.in_modes)
    init = "svd" if layer.rank <= min(t.shape) else "random"
    cp = parafac(tl.tensor(t.numpy()), rank=layer.rank, n_iter_max=n_iter, init=init,
                 random_state=0)
    weights, facs = cp
    for k, (dst, f) in enumerate(zip(layer.factors, facs)):
        f = torch.as_tensor(f)
        if k == 0:
            f = f * torch.as_tensor(weights)[None, :]
        dst.copy_(f.T.reshape(layer.rank, layer.out_modes[k], layer.in_modes[k]))
    return layer.to(linear.weight.dtype)


def kcp_model(model: nn.Module, rank: int = 4, d: int = 2, skip_last: bool = True) -> list[str]:
    """Replace the ``nn.Linear`` layers of ``model`` (all but the last by default) by
    :func:`kcp_from_dense` fits, in place; returns their names."""
    from ...walk import layers_with_role
    from .hybrid import replace_module

    lins = [ly.name for ly in layers_with_role(model, "synapse") if type(ly.module) is nn.Linear]
    chosen = lins[:-1] if skip_last else lins
    for n in chosen:
        old = model.get_submodule(n)
        replace_module(model, n, kcp_from_dense(old, rank, d, n).to(old.weight.device))
    return chosen


register_role(KCPLinear, "synapse")
register_counter(KCPLinear, dense_macs=_kcp_dense, synops=_kcp_synops)



def _apply(model: nn.Module, args: object, spec: object) -> nn.Module:
    kcp_model(model, args.rank, min(args.tensor_d, 4))  # type: ignore[attr-defined]
    return model


def _register() -> None:
    from ..methods import register_method
    from .hybrid import _args

    register_method("kcp", apply=_apply, add_arguments=_args,
                    description="Kronecker CP linear layers (spec A5)")


_register()
