"""Cost of one BPTT training step: a dense baseline vs an H2Learn-like sparse design.

**This model is a reconstruction** (spec C3, every rule [RECON]): H2Learn (Liang et al.,
arXiv:2107.11746, IEEE TCAD 2022) is a hardware paper without code, and only its abstract was
read. It describes look-up-table (LUT) forward and weight-update engines that exploit binary
spikes and a backward engine that skips work on input and output gradient sparsity. We count
first-order operations of one iteration from *measured* spike and gradient densities; these are
"H2Learn-like" figures, never H2Learn's.

Every synaptic layer (``nn.Linear``, ``nn.Conv2d`` lowered to a GEMM by im2col) has fan-in
``K`` (``C_in·k_h·k_w``), fan-out ``N`` and ``M = B·T·P`` points (``P`` output positions).
Measured per call: the input ``S`` ``[M, K]`` (im2col'ed), the gradient ``G`` ``[M, N]`` of the
loss w.r.t. the layer's output (the membrane input current: surrogate and temporal term
included; zero where the surrogate is zero), and ``ρ_out``, the density of the previous
synaptic layer's ``G`` (which input-gradient entries are needed; 0 for the first layer, whose
input gradient nobody needs).

Dense baseline (per layer): forward ``M·N·K`` MACs, input gradient ``M·N·K`` (0 for the first
layer), weight gradient ``M·N·K``; zeros are not skipped.

H2Learn-like design (group sizes ``g_f``, ``g_w``, default 4):

1. forward over binary input (all non-zero values equal): ``K`` inputs in groups of ``g_f``;
   per output and group a table of the ``2^g_f`` subset sums is built once per iteration
   (``2^g_f − g_f − 1`` additions) and shared by all points; per point, output and group with
   any spike one lookup + accumulate. Analog inputs (LIAF outputs, pooled spikes, direct-coded
   images) cannot use the table: MACs on their non-zero entries;
2. input gradient (dual sparsity): ``Σ_m nnz(G[m, :]) · K · ρ_out`` MACs;
3. weight update ``ΔW = Sᵀ G`` over binary ``S``: per output, points in groups of ``g_w``;
   a group whose ``G`` values are all zero is skipped, else its table is built
   (``2^g_w − g_w − 1`` adds) and every input does one lookup + accumulate (``K``). Analog
   ``S``: MACs on the pairs with both factors non-zero.

Ops ratio: a MAC, a lookup + accumulate and a table-build add count 1 op each. Energy uses
user-settable per-op figures (:class:`TrainingEnergy`, 45 nm Horowitz: fp32 MAC 4.6 pJ, add
0.9 pJ, small-SRAM 32-bit read 5 pJ). Element-wise neuron/BPTT updates are identical in both
designs and excluded. Points are grouped within each call of a layer (a layer called once per
time step groups within the step).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "LayerTrainingCost",
    "TrainingCostReport",
    "TrainingEnergy",
    "expected_counts",
    "lut_counts",
    "measure_training_cost",
    "PAPER_BAND",
]

#: H2Learn's headline figures vs an NVIDIA V100 (abstract), printed as context only.
PAPER_BAND = "H2Learn paper (vs V100): 5.74-10.20x speed-up, 5.25-7.12x energy, 7.38x area"

_COUNT_KEYS = ("dense_fwd", "dense_bwd", "dense_wu", "fwd_lookups", "fwd_build", "fwd_macs",
               "bwd_macs", "wu_lookups", "wu_build", "wu_macs")


@dataclass(frozen=True)
class TrainingEnergy:
    """Energy per operation in joules (45 nm figures of Horowitz, ISSCC 2014; [RECALL])."""

    e_mac: float = 4.6e-12
    e_add: float = 0.9e-12
    e_lut_read: float = 5.0e-12


def _build_adds(g: int) -> int:
    return 2 ** g - g - 1


def _groups(mask: Tensor, g: int, dim: int) -> Tensor:
    """``any`` over consecutive groups of ``g`` along ``dim`` (zero-padded at the end)."""
    n = mask.shape[dim]
    pad = (-n) % g
    m = mask.movedim(dim, -1)
    if pad:
        m = F.pad(m, (0, pad))
    return m.reshape(*m.shape[:-1], -1, g).any(-1)


def lut_counts(S: Tensor, G: Tensor, rho_out: float | Tensor, *, g_f: int = 4, g_w: int = 4,
               binary: bool | None = None, need_input_grad: bool = True) -> dict[str, float]:
    """Exact operation counts of one layer call from ``S`` ``[M, K]`` and ``G`` ``[M, N]``.

    ``rho_out`` is the density of needed input-gradient entries: a number, or a ``[M, K]``
    0/1 mask ``Q`` (then the backward count is exact: ``Σ_m nnz(G[m]) · nnz(Q[m])``).
    ``binary``: whether ``S`` is a spike matrix (default: all its non-zero values are equal).
    """
    M, K = S.shape
    N = G.shape[1]
    snz, gnz = S != 0, G != 0
    if binary is None:
        vals = S[snz]
        binary = bool(vals.numel() == 0 or (vals == vals[0]).all())
    dense = float(M * N * K)
    out = dict.fromkeys(_COUNT_KEYS, 0.0)
    out.update(dense_fwd=dense, dense_wu=dense, dense_bwd=dense if need_input_grad else 0.0)
    g_rows = gnz.sum(1).to(torch.float64)
    if need_input_grad:
        if torch.is_tensor(rho_out):
            out["bwd_macs"] = float((g_rows * (rho_out != 0).sum(1)).sum())
        else:
            out["bwd_macs"] = float(g_rows.sum()) * K * float(rho_out)
    if binary:
        out["fwd_lookups"] = float(N * int(_groups(snz, g_f, 1).sum()))
        out["fwd_build"] = float(N * math.ceil(K / g_f) * _build_adds(g_f))
        active = int(_groups(gnz, g_w, 0).sum())  # (point-group, output) pairs with any G
        out["wu_lookups"] = float(K * active)
        out["wu_build"] = float(active * _build_adds(g_w))
    else:
        out["fwd_macs"] = float(int(snz.sum()) * N)
        out["wu_macs"] = float((snz.T.to(torch.float32) @ gnz.to(torch.float32)).sum())
    return out


def expected_counts(M: int, K: int, N: int, r: float, rho_in: float, rho_out: float, *,
                    g_f: int = 4, g_w: int = 4) -> dict[str, float]:
    """Expected counts with independent binary spikes (rate ``r``) and gradient densities."""
    dense = float(M * N * K)
    wu_active = N * math.ceil(M / g_w) * (1 - (1 - rho_in) ** g_w)
    out = dict.fromkeys(_COUNT_KEYS, 0.0)
    out.update(
        dense_fwd=dense, dense_bwd=dense, dense_wu=dense,
        fwd_lookups=M * N * math.ceil(K / g_f) * (1 - (1 - r) ** g_f),
        fwd_build=float(N * math.ceil(K / g_f) * _build_adds(g_f)),
        bwd_macs=dense * rho_in * rho_out,
        wu_lookups=wu_active * K, wu_build=wu_active * _build_adds(g_w),
    )
    return out


@dataclass
class LayerTrainingCost:
    """One layer's counts per training iteration (one batch), summed over its calls."""

    name: str
    type: str
    M: int = 0
    K: int = 0
    N: int = 0
    input_kind: str = "spike"
    r: float = 0.0
    rho_in: float = 0.0
    rho_out: float = 0.0
    counts: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_COUNT_KEYS, 0.0))

    @property
    def dense_ops(self) -> float:
        c = self.counts
        return c["dense_fwd"] + c["dense_bwd"] + c["dense_wu"]

    def engine_ops(self) -> dict[str, float]:
        """H2Learn-like ops of the forward, backward and weight-update engines."""
        c = self.counts
        return {"fwd": c["fwd_lookups"] + c["fwd_build"] + c["fwd_macs"],
                "bwd": c["bwd_macs"],
                "wu": c["wu_lookups"] + c["wu_build"] + c["wu_macs"]}

    @property
    def h2l_ops(self) -> float:
        return sum(self.engine_ops().values())

    def dense_energy(self, e: TrainingEnergy) -> float:
        return self.dense_ops * e.e_mac

    def h2l_energy(self, e: TrainingEnergy) -> float:
        c = self.counts
        lut = (c["fwd_lookups"] + c["wu_lookups"]) * (e.e_lut_read + e.e_add)
        build = (c["fwd_build"] + c["wu_build"]) * e.e_add
        return lut + build + (c["fwd_macs"] + c["bwd_macs"] + c["wu_macs"]) * e.e_mac


@dataclass
class TrainingCostReport:
    """Per-layer and total counts of one training iteration; :meth:`table` prints them."""

    rows: list[LayerTrainingCost]
    batches: int
    g_f: int = 4
    g_w: int = 4
    eps: float = 0.0
    energy: TrainingEnergy = field(default_factory=TrainingEnergy)
    notes: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, float]:
        e = self.energy
        dense = sum(r.dense_ops for r in self.rows)
        eng = {k: sum(r.engine_ops()[k] for r in self.rows) for k in ("fwd", "bwd", "wu")}
        h2l = sum(eng.values())
        e_d = sum(r.dense_energy(e) for r in self.rows)
        e_h = sum(r.h2l_energy(e) for r in self.rows)
        return {"dense_ops": dense, "h2l_ops": h2l, "h2l_fwd": eng["fwd"], "h2l_bwd": eng["bwd"],
                "h2l_wu": eng["wu"], "ops_ratio": dense / h2l if h2l else math.inf,
                "pipelined_ratio": dense / max(eng.values()) if h2l else math.inf,
                "dense_energy_j": e_d, "h2l_energy_j": e_h,
                "energy_ratio": e_d / e_h if e_h else math.inf}

    def to_dict(self) -> dict[str, Any]:
        rows = [{**asdict(r), "dense_ops": r.dense_ops, "h2l_ops": r.h2l_ops} for r in self.rows]
        return {"format": "spikeloom.training_cost/1", "model": "H2Learn-like reconstruction",
                "g_f": self.g_f, "g_w": self.g_w, "eps": self.eps, "batches": self.batches,
                "energy_model": asdict(self.energy), "rows": rows, "totals": self.totals(),
                "notes": self.notes, "paper": PAPER_BAND}

    def table(self) -> str:
        head = (f"{'layer':<22}{'type':<12}{'M':>9}{'K':>6}{'N':>6} {'in':<7}{'r':>6}"
                f"{'rho_in':>8}{'rho_out':>8}{'dense ops':>12}{'H2L ops':>12}{'ratio':>8}")
        lines = [
            "Training-step cost per iteration (one batch): dense GPU-like baseline vs an "
            "H2Learn-like design.",
            "RECONSTRUCTION: spikeloom's own model of the mechanisms in the H2Learn abstract "
            "(LUT forward/weight update over",
            "binary spikes, dual-sparsity backward); not the paper's simulator or numbers.",
            head, "-" * len(head),
        ]
        for r in self.rows:
            ratio = r.dense_ops / r.h2l_ops if r.h2l_ops else math.inf
            lines.append(
                f"{r.name[:21]:<22}{r.type[:11]:<12}{r.M:>9}{r.K:>6}{r.N:>6} {r.input_kind:<7}"
                f"{r.r:>6.3f}{r.rho_in:>8.3f}{r.rho_out:>8.3f}{r.dense_ops:>12.4g}"
                f"{r.h2l_ops:>12.4g}{ratio:>7.2f}x")
        t, e = self.totals(), self.energy
        lines += [
            "-" * len(head),
            f"total: dense {t['dense_ops']:.4g} ops ({t['dense_energy_j'] * 1e6:.4g} uJ); "
            f"H2L-like {t['h2l_ops']:.4g} ops (fwd {t['h2l_fwd']:.4g}, bwd {t['h2l_bwd']:.4g}, "
            f"wu {t['h2l_wu']:.4g}; {t['h2l_energy_j'] * 1e6:.4g} uJ)",
            f"ratios: ops {t['ops_ratio']:.2f}x, pipelined (dense / slowest engine) "
            f"{t['pipelined_ratio']:.2f}x, energy {t['energy_ratio']:.2f}x",
            f"context only: {PAPER_BAND}",
            "assumptions: 1 op = 1 MAC = 1 LUT lookup+accumulate = 1 table-build add; "
            f"g_f={self.g_f}, g_w={self.g_w}; gradient counted non-zero when |g| > {self.eps:g};",
            f"  energy/op: MAC {e.e_mac * 1e12:.2g} pJ, add {e.e_add * 1e12:.2g} pJ, LUT read "
            f"{e.e_lut_read * 1e12:.2g} pJ (45 nm, settable); analog inputs use MACs on",
            "  non-zeros; the first layer's input gradient is not computed in either design; "
            "neuron/BPTT element-wise work",
            f"  excluded (same in both); densities measured on {self.batches} batch(es) with "
            "the model in training mode.",
        ]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


# ---- measurement ------------------------------------------------------------------------
def _as_points(m: nn.Module, x: Tensor) -> Tensor:
    """``x`` as the GEMM input ``[M, K]`` of layer ``m`` (im2col for conv2d)."""
    if isinstance(m, nn.Linear):
        return x.reshape(-1, m.in_features)
    xb = x.reshape(-1, *x.shape[-3:])
    cols = F.unfold(xb, m.kernel_size, m.dilation, m.padding, m.stride)  # [B, K, P]
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def _out_points(m: nn.Module, g: Tensor) -> Tensor:
    if isinstance(m, nn.Linear):
        return g.reshape(-1, m.out_features)
    gb = g.reshape(-1, *g.shape[-3:])
    return gb.movedim(1, -1).reshape(-1, gb.shape[1])


class _Layer:
    def __init__(self, name: str, m: nn.Module, order: int) -> None:
        self.row = LayerTrainingCost(name, type(m).__name__)
        self.m, self.order = m, order
        self.calls: list[tuple[Tensor, list[Tensor]]] = []
        self.spikes = self.inputs = self.gnz = self.gnum = 0
        self.kinds: set[str] = set()


def measure_training_cost(
    model: nn.Module,
    batches: Iterable[Any],
    *,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
    g_f: int = 4,
    g_w: int = 4,
    eps: float = 0.0,
    max_batches: int | None = 2,
    energy: TrainingEnergy | None = None,
) -> TrainingCostReport:
    """Measure spike and gradient densities with hooks and count one training iteration.

    The model runs in training mode on each ``(x, y)`` batch (``x`` time-major as the model
    expects), ``loss_fn(model(x), y)`` is back-propagated (no optimiser step; the parameters'
    ``.grad`` are cleared afterwards and the training flags restored). Counted layers:
    ``nn.Linear`` and ``nn.Conv2d``. Counts are averaged over the batches (per iteration).
    """
    if g_f < 1 or g_w < 1:
        raise ValueError(f"group sizes must be >= 1, got g_f={g_f}, g_w={g_w}")
    layers = {id(m): _Layer(n or type(m).__name__, m, 0) for n, m in model.named_modules()
              if isinstance(m, (nn.Linear, nn.Conv2d))}
    seen: list[_Layer] = []

    def fwd_hook(m: nn.Module, args: tuple, out: Tensor) -> None:
        lay = layers[id(m)]
        if lay not in seen:
            seen.append(lay)
        S = _as_points(m, args[0].detach())
        grads: list[Tensor] = []
        if out.requires_grad:
            out.register_hook(lambda g: grads.append(_out_points(m, g.detach())))
        lay.calls.append((S, grads))

    training = {id(m): m.training for m in model.modules()}
    handles = [layer.m.register_forward_hook(fwd_hook) for layer in layers.values()]
    nb = 0
    try:
        model.train()
        for batch in batches:
            if max_batches is not None and nb >= max_batches:
                break
            x, y = batch[0], batch[1]
            seen.clear()
            loss = loss_fn(model(x), y)
            model.zero_grad(set_to_none=True)
            loss.backward()
            _count_batch(seen, g_f, g_w, eps)
            nb += 1
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
        for m in model.modules():
            m.training = training.get(id(m), m.training)
    if nb == 0:
        raise ValueError("measure_training_cost needs at least one (x, y) batch")
    rows = []
    for lay in sorted((v for v in layers.values() if v.row.M), key=lambda v: v.order):
        r = lay.row
        r.M //= nb
        r.counts = {k: v / nb for k, v in r.counts.items()}
        r.r = lay.spikes / max(lay.inputs, 1)
        r.rho_in = lay.gnz / max(lay.gnum, 1)
        r.input_kind = "mixed" if len(lay.kinds) > 1 else next(iter(lay.kinds))
        rows.append(r)
    notes = []
    if not rows:
        notes.append("no nn.Linear/nn.Conv2d layer ran: nothing counted")
    dense_g = [r.name for r in rows if r.rho_in > 0.99]
    if dense_g:
        notes.append(
            f"no gradient sparsity at {', '.join(dense_g)}: a smooth surrogate, an analog "
            "(LIAF) activation or a batch-norm between the layer and its neuron makes the "
            "gradient at the layer's output dense")
    return TrainingCostReport(rows, nb, g_f, g_w, eps, energy or TrainingEnergy(), notes)


def _count_batch(seen: list[_Layer], g_f: int, g_w: int, eps: float) -> None:
    """Count every call of the layers seen in this batch (forward order) and clear them."""
    prev_density = 0.0
    for i, lay in enumerate(seen):
        if lay.order == 0 and i:
            lay.order = i
        r, gnz, gnum = lay.row, 0, 0
        rho_out = prev_density
        for S, grads in lay.calls:
            if not grads:  # the output did not reach the loss
                continue
            G = grads[0]
            Gm = G.abs() > eps
            c = lut_counts(S, Gm.to(S.dtype), rho_out, g_f=g_f, g_w=g_w, need_input_grad=i > 0)
            r.counts = {k: r.counts[k] + c[k] for k in _COUNT_KEYS}
            r.M += S.shape[0]
            r.K, r.N = S.shape[1], G.shape[1]
            vals = S[S != 0]
            lay.kinds.add("spike" if vals.numel() == 0 or bool((vals == vals[0]).all())
                          else "analog")
            lay.spikes += int((S != 0).sum())
            lay.inputs += S.numel()
            gnz += int(Gm.sum())
            gnum += Gm.numel()
        lay.gnz += gnz
        lay.gnum += gnum
        r.rho_out = rho_out if i else 0.0
        prev_density = gnz / max(gnum, 1)
        lay.calls.clear()
