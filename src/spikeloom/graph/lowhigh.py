"""GNN-LF and GNN-HF: propagation with low-/high-pass fitting kernels (Zhu et al., WWW 2021).

Both minimise ``‖F (Z − H)‖² + (1/α − 1) tr(Zᵀ L̃ Z)`` over the propagated logits ``Z`` for
the MLP output ``H = f_θ(X)`` (decoupled design, as APPNP), with ``Â`` the GCN adjacency
(self-loops, symmetric normalisation; :func:`spikeloom.graph.norm.normalize` ``"gcn"``) and
``L̃ = I − Â``:

======  ==============================  =====================================================
kind    fitting kernel ``F²``           closed form ``Z = M H``
======  ==============================  =====================================================
``lf``  ``μI + (1−μ)Â`` (low-pass)      ``M = [(μ+1/α−1) I + (2−μ−1/α) Â]⁻¹ (μI + (1−μ)Â)``
``hf``  ``I + βL̃`` (high-pass)          ``M = [(β+1/α) I + (1−β−1/α) Â]⁻¹ (I + βL̃)``
======  ==============================  =====================================================

Parameter domains (checked, :class:`~spikeloom.errors.ConfigError`): LF ``α ∈ (0, 2/3)``,
``μ ∈ [1/2, 1)``; HF ``α ∈ (0, 1]``, ``β > 0``. The endpoints ``μ = 1`` / ``β = 0`` are
PPNP (``M = α(I − (1−α)Â)⁻¹``); the low-level functions accept them with
``ppnp_limit=True`` (the models do not: use APPNP-style settings through these functions).

Two propagations (:class:`LowHighPropagation`, option ``propagation``):

* ``"closed"`` — the dense ``N × N`` matrix ``M``, computed once per adjacency in float64
  (``torch.linalg.solve``) and cached; refused above ``max_closed_nodes`` nodes (memory
  ``8·N²`` bytes while solving) with an error naming ``propagation=iter``;
* ``"iter"`` — ``K`` sparse steps through :class:`~spikeloom.graph.layers.Aggregate` (so the
  cost report counts them):
  LF ``c = 1 + αμ − α``, ``Z⁰ = (μ/c) H + ((1−μ)/c) ÂH``, ``Zᵏ = ((1+αμ−2α)/c) Â Zᵏ⁻¹ + α Z⁰``;
  HF ``c = 1 + αβ``, ``Z⁰ = (1/c) H + (β/c) L̃H``, ``Zᵏ = ((1+αβ−α)/c) Â Zᵏ⁻¹ + α Z⁰``.
  With the reference ``K = 10`` the iteration is not converged (intended, as in the paper).

Spectral responses on an eigenvalue ``λ`` of ``L̃`` (:func:`spectral_response`):
``g_LF = (1 − (1−μ)λ) / (1 + (μ + 1/α − 2)λ)``, ``g_HF = (1 + βλ) / (1 + (β + 1/α − 1)λ)``.

:class:`GNNLowHigh` is the model (registered ``gnn-lf`` and ``gnn-hf``): dropout → bias-free
``Linear(F, hidden)`` → ReLU → dropout → bias-free ``Linear(hidden, C)`` → propagation. The
reference code initialises the first layer with ``kaiming_uniform_(a=√5, mode="fan_out")`` on
an ``[in, out]`` weight, which is PyTorch's default ``nn.Linear`` initialisation; it puts an L2
penalty ``(λ/2)‖W₁‖²`` (λ = 5e-3) on the first layer only: :meth:`GNNLowHigh.l2_penalty`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError
from .layers import Aggregate
from .norm import Adj

__all__ = ["KINDS", "PROPAGATIONS", "check_params", "closed_form_matrix", "iterate",
           "spectral_response", "LowHighPropagation", "GNNLowHigh"]

KINDS: tuple[str, ...] = ("lf", "hf")
PROPAGATIONS: tuple[str, ...] = ("closed", "iter")


def check_params(kind: str, alpha: float, p: float, ppnp_limit: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``(α, μ)`` (LF) / ``(α, β)`` (HF) are in their domains.

    ``ppnp_limit=True`` also accepts ``μ = 1`` / ``β = 0`` (both give PPNP).
    """
    if kind not in KINDS:
        raise ConfigError(f"GNN low/high-pass kind must be one of {', '.join(KINDS)}, "
                          f"got {kind!r}")
    if kind == "lf":
        if not 0.0 < alpha < 2.0 / 3.0:
            raise ConfigError(f"GNN-LF alpha must be in (0, 2/3), got {alpha}")
        if not (0.5 <= p < 1.0 or (ppnp_limit and p == 1.0)):
            raise ConfigError(f"GNN-LF mu must be in [0.5, 1), got {p}")
    else:
        if not 0.0 < alpha <= 1.0:
            raise ConfigError(f"GNN-HF alpha must be in (0, 1], got {alpha}")
        if not (math.isfinite(p) and (p > 0.0 or (ppnp_limit and p == 0.0))):
            raise ConfigError(f"GNN-HF beta must be > 0 and finite, got {p}")


def closed_form_matrix(adj: Tensor, kind: str, alpha: float, p: float,
                       ppnp_limit: bool = False) -> Tensor:
    """The dense propagation matrix ``M`` (float64 ``[N, N]``) for a dense ``Â [N, N]``.

    ``p`` is ``μ`` for ``kind="lf"``, ``β`` for ``"hf"`` (see the module docstring).
    """
    check_params(kind, alpha, p, ppnp_limit)
    a = adj.to(torch.float64)
    eye = torch.eye(a.shape[0], dtype=torch.float64, device=a.device)
    if kind == "lf":
        lhs = (p + 1 / alpha - 1) * eye + (2 - p - 1 / alpha) * a
        rhs = p * eye + (1 - p) * a
    else:
        lhs = (p + 1 / alpha) * eye + (1 - p - 1 / alpha) * a
        rhs = (1 + p) * eye - p * a
    return torch.linalg.solve(lhs, rhs)


def iterate(h: Tensor, adj: Adj, kind: str, alpha: float, p: float, K: int,
            agg: nn.Module | None = None, ppnp_limit: bool = False) -> Tensor:
    """``K`` sparse propagation steps from ``H [N, C]`` (``agg(x, adj)`` computes ``Â x``)."""
    check_params(kind, alpha, p, ppnp_limit)
    agg = agg if agg is not None else Aggregate()
    ah = agg(h, adj)
    if kind == "lf":
        c = 1 + alpha * p - alpha
        z0 = (p / c) * h + ((1 - p) / c) * ah
        coef = (1 + alpha * p - 2 * alpha) / c
    else:
        c = 1 + alpha * p
        z0 = (1 / c) * h + (p / c) * (h - ah)  # L̃H computed once
        coef = (1 + alpha * p - alpha) / c
    z = z0
    for _ in range(K):  # K sparse products (K is the propagation depth, not a data size)
        z = coef * agg(z, adj) + alpha * z0
    return z


def spectral_response(lam: Tensor, kind: str, alpha: float, p: float,
                      ppnp_limit: bool = False) -> Tensor:
    """The gain of the closed-form filter on eigenvalues ``lam`` of ``L̃ = I − Â``."""
    check_params(kind, alpha, p, ppnp_limit)
    if kind == "lf":
        return (1 - (1 - p) * lam) / (1 + (p + 1 / alpha - 2) * lam)
    return (1 + p * lam) / (1 + (p + 1 / alpha - 1) * lam)


def _same(a: Adj, b: Adj) -> bool:
    """``a`` and ``b`` hold the same matrix (the trainer's splits hold equal copies)."""
    if a is b:
        return True
    return (a.num_cols == b.num_cols and a.nnz == b.nnz and a.num_rows == b.num_rows
            and a.val.device == b.val.device and torch.equal(a.rowptr, b.rowptr)
            and torch.equal(a.col, b.col) and torch.equal(a.val, b.val))


class LowHighPropagation(nn.Module):
    """GNN-LF / GNN-HF propagation ``H ↦ Z`` on a GCN-normalised :class:`Adj`.

    Args:
        kind: ``"lf"`` or ``"hf"``.
        alpha: teleport-like weight α.
        p: ``μ`` (LF) or ``β`` (HF).
        propagation: ``"closed"`` (dense, cached per adjacency) or ``"iter"`` (sparse).
        K: iterations of ``"iter"``.
        max_closed_nodes: largest graph the closed form accepts.
    """

    def __init__(self, kind: str, alpha: float, p: float, propagation: str = "closed",
                 K: int = 10, max_closed_nodes: int = 5000) -> None:
        super().__init__()
        check_params(kind, float(alpha), float(p))
        if propagation not in PROPAGATIONS:
            raise ConfigError(f"propagation must be one of {', '.join(PROPAGATIONS)}, "
                              f"got {propagation!r}")
        if int(K) < 1:
            raise ConfigError(f"K (propagation steps) must be >= 1, got {K}")
        self.kind, self.alpha, self.p = kind, float(alpha), float(p)
        self.propagation, self.K, self.max_closed_nodes = propagation, int(K), max_closed_nodes
        self.agg = Aggregate()
        self._cache: tuple[Adj, Tensor] | None = None

    def matrix(self, adj: Adj) -> Tensor:
        """The closed-form matrix for ``adj`` (float32, on ``adj``'s device).

        Memoised for the last adjacency (recomputed only when its entries change).
        """
        if self._cache is not None and _same(self._cache[0], adj):
            return self._cache[1]
        n = adj.num_rows
        if n > self.max_closed_nodes:
            raise ConfigError(
                f"GNN-{self.kind.upper()} closed-form propagation needs a dense {n}x{n} inverse; "
                f"the limit is max_closed_nodes={self.max_closed_nodes}. Use propagation=iter "
                "(--model-arg propagation=iter) or raise max_closed_nodes")
        m = closed_form_matrix(adj.to("cpu").to_dense(), self.kind, self.alpha, self.p)
        m = m.to(device=adj.val.device, dtype=torch.float32)
        self._cache = (adj, m)
        return m

    def forward(self, h: Tensor, adj: Adj) -> Tensor:
        if self.propagation == "closed":
            return self.matrix(adj).to(h.dtype) @ h
        return iterate(h, adj, self.kind, self.alpha, self.p, self.K, self.agg)

    def extra_repr(self) -> str:
        name = "mu" if self.kind == "lf" else "beta"
        return (f"kind={self.kind}, alpha={self.alpha}, {name}={self.p}, "
                f"propagation={self.propagation}, K={self.K}")


class GNNLowHigh(nn.Module):
    """Decoupled MLP + GNN-LF/HF propagation (see the module docstring).

    Args:
        in_features, num_classes: sizes.
        kind: ``"lf"`` or ``"hf"``.
        hidden: MLP hidden units.
        dropout: on the input features and the hidden layer.
        alpha: α (LF ``(0, 2/3)``, HF ``(0, 1]``).
        mu: μ of GNN-LF (``[1/2, 1)``); beta: β of GNN-HF (``> 0``). Reference: 0.9 both.
        propagation: ``"closed"`` or ``"iter"``; K: iterations; max_closed_nodes: see
            :class:`LowHighPropagation`.
    """

    adj_norm = "gcn"

    def __init__(self, in_features: int, num_classes: int, kind: str = "lf", hidden: int = 64,
                 dropout: float = 0.5, alpha: float = 0.1, mu: float = 0.9, beta: float = 0.9,
                 propagation: str = "closed", K: int = 10, max_closed_nodes: int = 5000) -> None:
        super().__init__()
        self.lin1 = nn.Linear(in_features, hidden, bias=False)
        self.lin2 = nn.Linear(hidden, num_classes, bias=False)
        self.dropout = dropout
        self.prop = LowHighPropagation(kind, alpha, mu if kind == "lf" else beta, propagation,
                                       K, max_closed_nodes)

    def mlp(self, x: Tensor) -> Tensor:
        """``H = f_θ(X)`` (before propagation); ``x`` dense or sparse COO (dropout on values)."""
        if x.layout == torch.sparse_coo:  # bag-of-words features: ~1 % non-zero on Cora
            x = x.coalesce()
            vals = F.dropout(x.values(), self.dropout, self.training)
            x = torch.sparse_coo_tensor(x.indices(), vals, x.shape, is_coalesced=True,
                                        check_invariants=False)
            h = F.relu(torch.sparse.mm(x, self.lin1.weight.t()))
        else:
            h = F.relu(self.lin1(F.dropout(x, self.dropout, self.training)))
        return self.lin2(F.dropout(h, self.dropout, self.training))

    def forward(self, x: Tensor, adj: Adj) -> Tensor:
        return self.prop(self.mlp(x), adj)

    def l2_penalty(self, lam: float = 5e-3) -> Tensor:
        """The reference code's regulariser ``(λ/2)‖W₁‖²`` (first layer only)."""
        return 0.5 * lam * self.lin1.weight.pow(2).sum()

