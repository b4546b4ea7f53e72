"""Hierarchical Tucker (HT) matrix format on a balanced binary dimension tree (spec A4).

Modes ``k`` carry merged index pairs ``(i_k, j_k)``. Leaf ``k`` holds ``U_k ∈ R^{m_k×n_k×r_k}``;
an internal node ``t`` with children ``(l, r)`` holds ``B_t ∈ R^{r_l×r_r×r_t}`` and the root
``B ∈ R^{r_l×r_r}``; ``U_t[(α_l, α_r), c] = Σ U_l[α_l, a] U_r[α_r, b] B_t[a, b, c]``.
Parameters ``Σ m_k n_k r_k + Σ_{internal non-root} r_l r_r r_t + r_{root,l} r_{root,r}``
(1024×1024, modes [4, 8, 8, 4], rank 8: 2,368).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ...errors import ConfigError
from ._modes import chain_macs, check_modes, contract_chain, letters

__all__ = ["HTMatrix", "HTNode", "balanced_tree"]


@dataclass
class HTNode:
    """A node of the dimension tree over modes ``[lo, hi)``; ``index`` is its post-order
    position among non-root nodes (the position of its rank), -1 for the root."""

    lo: int
    hi: int
    children: list[HTNode] = field(default_factory=list)
    index: int = -1

    @property
    def is_leaf(self) -> bool:
        return not self.children


def balanced_tree(d: int) -> tuple[HTNode, list[HTNode]]:
    """The balanced tree over ``d >= 2`` modes and its nodes in post-order (root last)."""
    order: list[HTNode] = []

    def build(lo: int, hi: int) -> HTNode:
        node = HTNode(lo, hi)
        if hi - lo > 1:
            mid = (lo + hi + 1) // 2
            node.children = [build(lo, mid), build(mid, hi)]
        order.append(node)
        return node

    root = build(0, d)
    for i, node in enumerate(order[:-1]):
        node.index = i
    return root, order


class HTMatrix(nn.Module):
    """A ``M×N`` matrix in HT format, with both products (reconstruct and contract).

    Args:
        out_modes, in_modes: ``m`` and ``n`` (same length ``d >= 2``).
        ranks: one int for every non-root node, or one per non-root node in post-order
            (leaves and internal nodes, children before parents; :attr:`nodes` lists them).
        target_var: variance of the reconstructed entries at init (spec A4 [RECON]: all
            ``2d − 1`` factors i.i.d. ``N(0, s²)``, ``s = (v / Π r_e)^(1/(2(2d−1)))``).
        name: layer name used in error messages.

    Raises:
        ConfigError: bad modes, or a rank outside ``1 .. min(rows, cols)`` of its node's
            matricisation (and ``<= r_l·r_r`` for internal nodes); the message lists them.
    """

    def __init__(self, out_modes: Sequence[int], in_modes: Sequence[int],
                 ranks: int | Sequence[int], target_var: float = 1.0, name: str = "HT") -> None:
        super().__init__()
        m, n = [int(v) for v in out_modes], [int(v) for v in in_modes]
        if len(m) != len(n) or len(m) < 2:
            raise ConfigError(f"{name}: HT needs out modes {m} and in modes {n} of the same "
                              f"length >= 2")
        check_modes(name, math.prod(m), m, "output")
        check_modes(name, math.prod(n), n, "input")
        d = len(m)
        self.out_modes, self.in_modes = m, n
        self.root, self.nodes = balanced_tree(d)
        k = len(self.nodes) - 1
        r = [int(ranks)] * k if isinstance(ranks, int) else [int(v) for v in ranks]
        bound = self.max_ranks()
        ok = len(r) == k and all(1 <= a <= b for a, b in zip(r, bound))
        for node in self.nodes[:-1]:
            if ok and not node.is_leaf:
                ok = r[node.index] <= r[node.children[0].index] * r[node.children[1].index]
        if not ok:
            raise ConfigError(f"{name}: HT ranks {r} impossible for modes m={m}, n={n}; need {k} "
                              f"ranks (post-order nodes) with 1 <= r_t <= {bound} and "
                              f"r_t <= r_left·r_right at internal nodes")
        self.ranks = r
        s = (target_var / math.prod(r)) ** (1.0 / (2 * (2 * d - 1)))
        self.leaves = nn.ParameterList(
            nn.Parameter(torch.randn(m[i], n[i], r[nd.index]) * s)
            for i, nd in enumerate(x for x in self.nodes if x.is_leaf)
        )
        self.transfers = nn.ParameterList(
            nn.Parameter(torch.randn(*self._transfer_shape(nd)) * s)
            for nd in self.nodes if not nd.is_leaf
        )

    def max_ranks(self) -> list[int]:
        """Full rank of each non-root node's matricisation (post-order)."""
        p = [a * b for a, b in zip(self.out_modes, self.in_modes)]
        tot = math.prod(p)
        out = []
        for nd in self.nodes[:-1]:
            inner = math.prod(p[nd.lo:nd.hi])
            out.append(min(inner, tot // inner))
        return out

    def _transfer_shape(self, nd: HTNode) -> tuple[int, ...]:
        a, b = (self.ranks[c.index] for c in nd.children)
        return (a, b) if nd.index < 0 else (a, b, self.ranks[nd.index])

    @property
    def shape(self) -> tuple[int, int]:
        """``(M, N)``."""
        return math.prod(self.out_modes), math.prod(self.in_modes)

    def num_params(self) -> int:
        """Leaf, transfer and root parameters."""
        return sum(p.numel() for p in self.parameters())

    def _factors(self) -> dict[int, Tensor]:
        """Factor tensor of each node, keyed by ``id(node)``."""
        leaves, transfers = iter(self.leaves), iter(self.transfers)
        return {id(nd): next(leaves) if nd.is_leaf else next(transfers) for nd in self.nodes}

    def weight(self) -> Tensor:
        """The dense ``M×N`` matrix (reconstruct path)."""
        fac = self._factors()
        mats: dict[int, Tensor] = {}
        for nd in self.nodes:
            f = fac[id(nd)]
            if nd.is_leaf:
                mats[id(nd)] = f.reshape(-1, f.shape[-1])
                continue
            ul, ur = (mats.pop(id(c)) for c in nd.children)
            eq = "ap,bq,pq->ab" if nd.index < 0 else "ap,bq,pqc->abc"
            u = torch.einsum(eq, ul, ur, f)
            mats[id(nd)] = u.reshape(-1) if nd.index < 0 else u.reshape(-1, f.shape[-1])
        d = len(self.out_modes)
        t = mats[id(self.root)].reshape(*[v for mn in zip(self.out_modes, self.in_modes)
                                          for v in mn])
        perm = [2 * k for k in range(d)] + [2 * k + 1 for k in range(d)]
        return t.permute(perm).reshape(self.shape)

    def _specs(self) -> tuple[list[str], list[Tensor], str, dict[str, int]]:
        d = len(self.out_modes)
        J, I, R = letters(d, 1), letters(d, 1 + d), letters(len(self.nodes) - 1, 1 + 2 * d)
        fac = self._factors()
        specs, tensors, leaf = ["z" + J], [], 0
        for nd in self.nodes:  # post-order: each leaf pair merged right after it appears
            if nd.is_leaf:
                specs.append(I[leaf] + J[leaf] + R[nd.index])
                leaf += 1
            else:
                a, b = (R[c.index] for c in nd.children)
                specs.append(a + b + ("" if nd.index < 0 else R[nd.index]))
            tensors.append(fac[id(nd)])
        sizes = {**dict(zip(J, self.in_modes)), **dict(zip(I, self.out_modes)),
                 **dict(zip(R, self.ranks))}
        return specs, tensors, "z" + I, sizes

    def contract(self, x: Tensor) -> Tensor:
        """``x @ W.T`` for ``x`` of shape ``[z, N]`` without building ``W`` (contract path)."""
        specs, tensors, out, _ = self._specs()
        y = contract_chain(x.reshape(x.shape[0], *self.in_modes), specs, tensors, out)
        return y.reshape(x.shape[0], -1)

    def contract_macs(self) -> list[int]:
        """MACs per sample of each contraction step of :meth:`contract`."""
        specs, _, out, sizes = self._specs()
        return chain_macs(specs, sizes, out)

    def extra_repr(self) -> str:
        return f"out_modes={self.out_modes}, in_modes={self.in_modes}, ranks={self.ranks}"
