"""Tensor-train (TT) matrix format (Novikov et al. 2015; spec A4).

``W[i, j] = G_1[i_1, j_1] G_2[i_2, j_2] ⋯ G_d[i_d, j_d]`` with cores
``G_k ∈ R^{r_{k−1} × m_k × n_k × r_k}``, ``r_0 = r_d = 1``; parameters ``Σ r_{k−1} m_k n_k r_k``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ...errors import ConfigError
from ._modes import chain_macs, check_modes, contract_chain, letters

__all__ = ["TTMatrix", "tt_max_ranks"]


def tt_max_ranks(out_modes: Sequence[int], in_modes: Sequence[int]) -> list[int]:
    """Largest useful rank of each of the ``d − 1`` inner TT edges (the full-rank TT)."""
    p = [m * n for m, n in zip(out_modes, in_modes)]
    return [min(math.prod(p[: k + 1]), math.prod(p[k + 1:])) for k in range(len(p) - 1)]


class TTMatrix(nn.Module):
    """A ``M×N`` matrix stored as TT cores, with both products (reconstruct and contract).

    Args:
        out_modes: ``m`` (``M = Π m_k``).
        in_modes: ``n`` (``N = Π n_k``), same length ``d >= 1``.
        ranks: one int for all ``d − 1`` inner edges, or ``d − 1`` ints.
        target_var: variance of the reconstructed entries at init (variance-matched init,
            spec A4 [RECON]: every core entry ``~ N(0, s²)``, ``s = (v / Π r_k)^(1/(2d))``).
        name: layer name used in error messages.

    Raises:
        ConfigError: a rank below 1 or above the full rank of its edge (the message lists the
            allowed maxima), or mismatched modes.
    """

    def __init__(self, out_modes: Sequence[int], in_modes: Sequence[int],
                 ranks: int | Sequence[int], target_var: float = 1.0, name: str = "TT") -> None:
        super().__init__()
        m, n = [int(v) for v in out_modes], [int(v) for v in in_modes]
        if len(m) != len(n) or not m:
            raise ConfigError(f"{name}: out modes {m} and in modes {n} need the same length >= 1")
        d = len(m)
        check_modes(name, math.prod(m), m, "output")
        check_modes(name, math.prod(n), n, "input")
        r = [int(ranks)] * (d - 1) if isinstance(ranks, int) else [int(v) for v in ranks]
        bound = tt_max_ranks(m, n)
        if len(r) != d - 1 or any(not 1 <= a <= b for a, b in zip(r, bound)):
            raise ConfigError(f"{name}: TT ranks {r} impossible for modes m={m}, n={n}; need "
                              f"{d - 1} ranks with 1 <= r_k <= {bound}")
        self.out_modes, self.in_modes, self.ranks = m, n, r
        full = [1, *r, 1]
        s = (target_var / max(math.prod(r), 1)) ** (1.0 / (2 * d))
        self.cores = nn.ParameterList(
            nn.Parameter(torch.randn(full[k], m[k], n[k], full[k + 1]) * s) for k in range(d)
        )

    @property
    def shape(self) -> tuple[int, int]:
        """``(M, N)``."""
        return math.prod(self.out_modes), math.prod(self.in_modes)

    def num_params(self) -> int:
        """``Σ r_{k−1} m_k n_k r_k``."""
        return sum(c.numel() for c in self.cores)

    def weight(self) -> Tensor:
        """The dense ``M×N`` matrix (reconstruct path)."""
        d = len(self.cores)
        cur = self.cores[0].reshape(-1, self.cores[0].shape[-1])  # [(m1 n1), r1]
        for k in range(1, d):
            g = self.cores[k]
            cur = torch.einsum("ap,pbq->abq", cur, g.reshape(g.shape[0], -1, g.shape[-1]))
            cur = cur.reshape(-1, g.shape[-1])
        t = cur.reshape(*[v for mn in zip(self.out_modes, self.in_modes) for v in mn])
        perm = [2 * k for k in range(d)] + [2 * k + 1 for k in range(d)]
        return t.permute(perm).reshape(self.shape)

    def _specs(self) -> tuple[list[str], str, dict[str, int]]:
        d = len(self.cores)
        J, I, R = letters(d, 1), letters(d, 1 + d), letters(d + 1, 1 + 2 * d)
        specs = ["z" + J] + [R[k] + I[k] + J[k] + R[k + 1] for k in range(d)]
        sizes = {**dict(zip(J, self.in_modes)), **dict(zip(I, self.out_modes)),
                 **dict(zip(R, [1, *self.ranks, 1]))}
        return specs, "z" + I, sizes

    def contract(self, x: Tensor) -> Tensor:
        """``x @ W.T`` for ``x`` of shape ``[z, N]`` without building ``W`` (contract path)."""
        specs, out, _ = self._specs()
        y = contract_chain(x.reshape(x.shape[0], *self.in_modes), specs, list(self.cores), out)
        return y.reshape(x.shape[0], -1)

    def contract_macs(self) -> list[int]:
        """MACs per sample of each contraction step of :meth:`contract`."""
        specs, out, sizes = self._specs()
        return chain_macs(specs, sizes, out)

    def extra_repr(self) -> str:
        return f"out_modes={self.out_modes}, in_modes={self.in_modes}, ranks={self.ranks}"
