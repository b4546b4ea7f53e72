"""Decompose a trained dense matrix into TT cores (TT-SVD) or HT factors (hierarchical SVD).

Both work on the tensor with merged modes ``𝒲[(i_1 j_1), …, (i_d j_d)] = W[i, j]`` (spec A4):

* :func:`tt_svd`: sequential truncated SVDs left to right (Oseledets 2011); exact when the
  ranks are the full ranks (:func:`~spikeloom.compress.tensorized.tt.tt_max_ranks`).
* :func:`ht_svd`: for every non-root node ``t`` of the dimension tree, ``U_t`` = the leading
  ``r_t`` left singular vectors of the matricisation ``𝒲_(t)``; transfer tensors are the
  projections ``B_t = (U_l ⊗ U_r)ᵀ U_t`` and the root ``B = U_lᵀ 𝒲_(l, r) U_r``
  (Grasedyck 2010, root-to-leaves truncation). Exact at full ranks; quasi-optimal otherwise.

``tensorly`` implements TT-SVD too (``tensorly.decomposition.tensor_train_matrix``); it agrees
with :func:`tt_svd` up to the signs of singular vectors (checked in the tests when installed).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .ht import HTMatrix
from .tt import TTMatrix

__all__ = ["merged_tensor", "tt_svd", "ht_svd", "load_dense"]


def merged_tensor(w: Tensor, out_modes: list[int], in_modes: list[int]) -> Tensor:
    """``W`` (``M×N``) as the order-d tensor with merged modes ``(m_k n_k)``."""
    d = len(out_modes)
    t = w.reshape(*out_modes, *in_modes)
    perm = [v for k in range(d) for v in (k, d + k)]
    return t.permute(perm).reshape(*[a * b for a, b in zip(out_modes, in_modes)])


def _left_vectors(mat: Tensor, r: int) -> Tensor:
    u, _, _ = torch.linalg.svd(mat, full_matrices=False)
    return u[:, :r]


def tt_svd(w: Tensor, out_modes: list[int], in_modes: list[int], ranks: list[int]) -> list[Tensor]:
    """TT cores ``[r_{k−1}, m_k, n_k, r_k]`` of ``w`` with the given inner ranks."""
    p = [a * b for a, b in zip(out_modes, in_modes)]
    full = [1, *ranks, 1]
    rest = merged_tensor(w, out_modes, in_modes).reshape(1, -1)
    cores = []
    for k in range(len(p) - 1):
        mat = rest.reshape(full[k] * p[k], -1)
        u, s, vh = torch.linalg.svd(mat, full_matrices=False)
        r = full[k + 1]
        cores.append(u[:, :r].reshape(full[k], out_modes[k], in_modes[k], r))
        rest = s[:r, None] * vh[:r]
    cores.append(rest.reshape(full[-2], out_modes[-1], in_modes[-1], 1))
    return cores


def ht_svd(w: Tensor, fmt: HTMatrix) -> tuple[list[Tensor], list[Tensor]]:
    """Leaves and transfer tensors (post-order, root last) of ``w`` in ``fmt``'s tree/ranks."""
    p = [a * b for a, b in zip(fmt.out_modes, fmt.in_modes)]
    a = merged_tensor(w, fmt.out_modes, fmt.in_modes)
    basis: dict[int, Tensor] = {}
    leaves, transfers = [], []
    for nd in fmt.nodes:
        if nd.index >= 0:
            left = int(torch.tensor(p[:nd.lo]).prod()) if nd.lo else 1
            inner = int(torch.tensor(p[nd.lo:nd.hi]).prod())
            mat = a.reshape(left, inner, -1).transpose(0, 1).reshape(inner, -1)
            basis[id(nd)] = _left_vectors(mat, fmt.ranks[nd.index])
        if nd.is_leaf:
            u = basis[id(nd)]
            leaves.append(u.reshape(fmt.out_modes[nd.lo], fmt.in_modes[nd.lo], u.shape[1]))
            continue
        ul, ur = (basis[id(c)] for c in nd.children)
        if nd.index < 0:
            full = a.reshape(ul.shape[0], ur.shape[0])
            transfers.append(ul.T @ full @ ur)
        else:
            ut = basis[id(nd)].reshape(ul.shape[0], ur.shape[0], -1)
            transfers.append(torch.einsum("lrc,la,rb->abc", ut, ul, ur))
    return leaves, transfers


@torch.no_grad()
def load_dense(fmt: TTMatrix | HTMatrix, w: Tensor) -> None:
    """Set ``fmt``'s factors to the decomposition of the dense matrix ``w`` (``M×N``)."""
    if tuple(w.shape) != fmt.shape:
        raise ValueError(f"dense matrix of shape {tuple(w.shape)} does not match {fmt.shape}")
    w = w.detach().to(torch.float64)
    if isinstance(fmt, TTMatrix):
        for dst, src in zip(fmt.cores, tt_svd(w, fmt.out_modes, fmt.in_modes, fmt.ranks)):
            dst.copy_(src)
        return
    leaves, transfers = ht_svd(w, fmt)
    for dst, src in zip([*fmt.leaves, *fmt.transfers], [*leaves, *transfers]):
        dst.copy_(src)
