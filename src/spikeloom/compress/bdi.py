"""Block Dynamical Isometry diagnostics: ``φ(J Jᵀ)`` per block (Chen et al., TPAMI; spec A7).

For a block ``y = f(x)`` with Jacobian ``J`` (``m`` outputs), ``φ(J Jᵀ) = tr(J Jᵀ) / m``: the
factor by which back-propagation scales an isotropic output gradient. ``φ ≈ 1`` for every
block means gradient norms neither explode nor vanish with depth (serial blocks multiply).

* :func:`phi_exact`: the full Jacobian of the block at a batch (small blocks);
* :func:`phi_hutchinson`: ``mean_s ‖Jᵀu_s‖² / ‖u_s‖²`` with ``u_s ~ N(0, I)`` by
  vector-Jacobian products, with its standard error (any block);
* :func:`bdi_report`: ``φ`` of each top-level block of a model (or named sub-modules) at a real
  batch, captured by forward hooks; spiking blocks use their surrogate gradients.

Command line: ``python -m spikeloom.compress.bdi RUN_DIR [--probes 64] [--batch 16]`` prints
the table for a trained run (its test data, selected checkpoint).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..walk import run_hooked

__all__ = ["phi_exact", "phi_hutchinson", "bdi_report", "BDIRow", "bdi_table"]


def phi_exact(f: Callable[[Tensor], Tensor], x: Tensor) -> float:
    """``tr(J Jᵀ) / m`` with the exact Jacobian of ``f`` at ``x`` (all outputs, all inputs)."""
    x = x.detach()
    try:  # batched VJPs; modules with in-place state updates need the loop
        jac = torch.autograd.functional.jacobian(f, x, vectorize=True)
    except RuntimeError:
        jac = torch.autograd.functional.jacobian(f, x)
    m = f(x).numel()
    return float(jac.reshape(m, -1).square().sum() / m)


def phi_hutchinson(f: Callable[[Tensor], Tensor], x: Tensor, probes: int = 64,
                   generator: torch.Generator | None = None) -> tuple[float, float]:
    """Hutchinson estimate of ``φ(J Jᵀ)`` and its standard error (``probes`` VJPs)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        y = f(x)
    vals = []
    for i in range(probes):
        u = torch.randn(y.shape, generator=generator, dtype=y.dtype).to(y.device)
        (g,) = torch.autograd.grad(y, x, grad_outputs=u, retain_graph=i < probes - 1)
        vals.append(float(g.square().sum() / u.square().sum()))
    t = torch.tensor(vals)
    se = float(t.std() / math.sqrt(probes)) if probes > 1 else float("nan")
    return float(t.mean()), se


@dataclass(frozen=True)
class BDIRow:
    """One block: name, type, ``φ`` estimate, its standard error, input/output sizes."""

    name: str
    type: str
    phi: float
    stderr: float
    n_in: int
    n_out: int


def bdi_report(model: nn.Module, x: Tensor, blocks: Sequence[str] | None = None,
               probes: int = 64, exact_max: int = 0, seed: int = 0) -> list[BDIRow]:
    """``φ(J Jᵀ)`` of each block of ``model`` at input ``x``.

    Args:
        model: any model; its mode (train/eval) is used as is.
        x: a real input batch.
        blocks: qualified sub-module names; default: the top-level children.
        probes: Hutchinson probes per block.
        exact_max: use the exact Jacobian when ``in·out`` numbers are at most this.
        seed: probe generator seed.
    """
    names = list(blocks) if blocks is not None else [n for n, _ in model.named_children()]
    mods = {n: model.get_submodule(n) for n in names}
    inputs: dict[str, Tensor] = {}
    run_hooked(model, x, [m.register_forward_pre_hook(
        lambda mod, args, n=n: inputs.__setitem__(n, args[0].detach()) if args else None)
        for n, m in mods.items()])
    g = torch.Generator().manual_seed(seed)
    rows = []
    for n in names:
        if n not in inputs or not torch.is_floating_point(inputs[n]):
            continue
        xin, mod = inputs[n], mods[n]
        with torch.no_grad():
            n_out = mod(xin).numel()
        if n_out * xin.numel() <= exact_max:
            rows.append(BDIRow(n, type(mod).__name__, phi_exact(mod, xin), 0.0, xin.numel(),
                               n_out))
        else:
            phi, se = phi_hutchinson(mod, xin, probes, g)
            rows.append(BDIRow(n, type(mod).__name__, phi, se, xin.numel(), n_out))
    return rows


def bdi_table(rows: Sequence[BDIRow]) -> str:
    """Text table of :func:`bdi_report` rows, with the product over blocks."""
    lines = [f"{'block':<24} {'type':<18} {'phi(JJ^T)':>10} {'stderr':>8}"]
    lines += [f"{r.name:<24} {r.type:<18} {r.phi:>10.4f} {r.stderr:>8.4f}" for r in rows]
    lines.append(f"{'product (serial rule)':<43} {math.prod(r.phi for r in rows):>10.4g}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m spikeloom.compress.bdi RUN_DIR``: the BDI table of a trained run."""
    ap = argparse.ArgumentParser(prog="python -m spikeloom.compress.bdi",
                                 description="phi(J J^T) per block of a trained run")
    ap.add_argument("run_dir")
    ap.add_argument("--checkpoint", default="best", choices=["best", "last"])
    ap.add_argument("--batch", type=int, default=16, help="test samples in the batch")
    ap.add_argument("--probes", type=int, default=64)
    ap.add_argument("--blocks", nargs="*", default=None, help="sub-module names")
    args = ap.parse_args(argv)
    from ..train import load_run

    _, model, data = load_run(args.run_dir, args.checkpoint)
    ds = data["test"]
    x = torch.stack([ds[i][0] for i in range(min(args.batch, len(ds)))], dim=1)
    print(bdi_table(bdi_report(model, x.float(), args.blocks, args.probes)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
