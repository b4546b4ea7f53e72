"""Cora (public Planetoid split): ANN GCN / GAT vs spiking GCN / GAT (STFN), accuracy and cost.

For each model and seed: 200 epochs of full-batch Adam (weight decay 5e-4 as L2), the epoch
with the best validation accuracy is selected and its test accuracy reported; mean ± std over
seeds. The selected model's cost per node (spikeloom.cost.measure_cost on the full graph, 45 nm
energy table) is averaged over seeds: SynOps = Eff_ACs + Eff_MACs, dense MACs, energy.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/bench_graph_cora.py [--models gcn spiking-gcn]
[--seeds 10] [--epochs 200] [--json out.json]``. Data: ``../shared/data/planetoid``
(SPIKELOOM_SHARED_DATA). Seeds can be split over processes (``--first-seed 5 --seeds 5``, one
``--json`` each) and tabulated together with ``--combine a.json b.json``. ``--tune --set
KEY=VALUE`` prints validation accuracy only (tuning seeds 100+); the spiking GCN settings
below were chosen so (``benchmarks/results/graph_cora_tuning.txt``). ``--selection-study
[DECAY ...]`` compares model-selection rules (and EMAs of the weights) on validation halves
only (see :func:`selection_study`). ``--set`` keys: ``lr``, ``lr_gamma`` (exponential decay
per epoch), ``wd``, ``row_norm``, ``label_smoothing`` (of the training loss) or a model
constructor argument. ``--device cuda`` trains on a GPU (the reported figures are CPU runs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from spikeloom.cost import measure_cost
from spikeloom.graph import GraphBound, load_planetoid, normalize
from spikeloom.graph.spiking import encode_nodes
from spikeloom.models import build_model

DATA = Path(os.environ.get("SPIKELOOM_SHARED_DATA",
                           Path(__file__).resolve().parents[2] / "shared" / "data"))

#: model -> (constructor arguments, lr, weight decay, row-normalised features)
CONFIGS = {
    "gcn": (dict(hidden=16, dropout=0.5), 0.01, 5e-4, True),
    "gat": (dict(hidden=8, heads=8, dropout=0.6), 0.005, 5e-4, True),
    # chosen on validation by sweep_graph_cora.py (graph_cora_tuning.txt, seventh round)
    "spiking-gcn": (dict(hidden=256, layers=2, T=4, dropout=0.5, input_dropout=0.8, decay=0.8,
                         rho=2.0, surrogate_width=0.5, wd_scope="first"), 0.01, 2e-3, False),
    "spiking-gat": (dict(hidden=16, heads=4, layers=2, T=8, dropout=0.5), 0.005, 5e-4, False),
}


def _value(text: str):
    """``"0.5"`` -> 0.5, ``"8"`` -> 8, ``"true"`` -> True, else the string."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@dataclass
class Run:
    """One training run: model, Adam optimiser, exponential lr decay by ``lr_gamma`` per epoch
    (``None`` without one), input features and the loss's label smoothing."""

    model: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler | None
    x: torch.Tensor
    label_smoothing: float = 0.0


def _build(name: str, g, seed: int, overrides: dict | None, device: str = "cpu") -> Run:
    """The :class:`Run` of model ``name`` with ``overrides``, on ``device``."""
    kw, lr, wd, row_norm = CONFIGS[name]
    kw, gamma, smoothing = dict(kw), 1.0, 0.0
    for k, v in (overrides or {}).items():  # training keys or a model constructor argument
        if k == "lr_gamma":
            gamma = float(v)
        elif k == "label_smoothing":
            smoothing = float(v)
        elif k == "lr":
            lr = v
        elif k == "wd":
            wd = v
        elif k == "row_norm":
            row_norm = v
        else:
            kw[k] = v
    x = g.x / g.x.sum(1, keepdim=True).clamp_min(1e-12) if row_norm else g.x
    torch.manual_seed(seed)
    model = build_model(name, in_features=g.num_features, num_classes=g.num_classes,
                        **kw).to(device)
    # a model may scope its weight decay (SpikingGraphNet's wd_scope)
    groups = (model.weight_decay_groups(wd) if hasattr(model, "weight_decay_groups")
              else model.parameters())
    opt = torch.optim.Adam(groups, lr=lr, weight_decay=wd)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma) if gamma != 1.0 else None
    return Run(model, opt, sched, x.to(device), smoothing)


def _train_step(run: Run, adj, y: torch.Tensor, tr: torch.Tensor) -> None:
    """One full-batch epoch (one optimiser step, then one lr-decay step)."""
    run.model.train()
    loss = F.cross_entropy(run.model(run.x, adj)[tr], y[tr],
                           label_smoothing=run.label_smoothing)
    run.opt.zero_grad()
    loss.backward()
    run.opt.step()
    if run.sched is not None:
        run.sched.step()


def _val_halves(va: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two fixed random halves of the validation nodes."""
    vidx = va.nonzero().squeeze(1)
    vidx = vidx[torch.randperm(len(vidx), generator=torch.Generator().manual_seed(12345))]
    return vidx[: len(vidx) // 2], vidx[len(vidx) // 2:]


def _labels(g, device: str) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The labels and the train / val / test masks on ``device``."""
    return g.y.to(device), {k: g.masks[k].to(device) for k in ("train", "val", "test")}


def run_one(name: str, g, adj, seed: int, epochs: int, overrides: dict | None = None,
            device: str = "cpu"):
    """Train ``name`` on one seed; (best validation accuracy, its test accuracy, its cost)."""
    run = _build(name, g, seed, overrides, device)
    model, x, adj_d = run.model, run.x, adj.to(device)
    y, masks = _labels(g, device)
    tr, va, te = masks["train"], masks["val"], masks["test"]
    best_val, best_test, best_state = -1.0, 0.0, None
    for _ in range(epochs):
        _train_step(run, adj_d, y, tr)
        model.eval()
        with torch.no_grad():
            pred = model(x, adj_d).argmax(1)
        v = float((pred[va] == y[va]).float().mean())
        if v > best_val:
            best_val = v
            best_test = float((pred[te] == y[te]).float().mean())
            best_state = {k: t.clone() for k, t in model.state_dict().items()}
    model.load_state_dict(best_state)
    model.cpu()
    T = getattr(model, "T", None)
    seq = x.cpu().unsqueeze(0) if T is None else encode_nodes(x.cpu(), T, "repeat", False)
    cost = measure_cost(GraphBound(model, adj), [seq]).to_dict()
    return best_val, best_test, cost


def _moving_mean(s: torch.Tensor, k: int) -> torch.Tensor:
    """Mean of ``s`` over a centred window of ``k`` epochs (shorter at the ends)."""
    pad = k // 2
    c = torch.cat([torch.zeros(1, dtype=s.dtype), s.cumsum(0)])
    idx = torch.arange(len(s))
    lo, hi = (idx - pad).clamp(min=0), (idx + pad + 1).clamp(max=len(s))
    return (c[hi] - c[lo]) / (hi - lo)


def selection_study(name: str, g, adj, seed: int, epochs: int, overrides: dict,
                    decays: list[float], device: str = "cpu") -> dict[str, float]:
    """Validation-only comparison of model-selection rules on one training run.

    Evaluated each epoch: the raw weights and an EMA of them per decay in ``decays``. Rules:
    ``acc`` (first epoch of highest accuracy), ``acc-last`` (last such epoch), ``loss``
    (lowest cross-entropy), ``acc-ma5`` (highest 5-epoch moving mean of the accuracy). Each
    rule selects on one fixed half of the validation nodes and is scored by the accuracy of
    its pick on the other half, both ways round (mean).
    """
    run = _build(name, g, seed, overrides, device)
    model, x, adj = run.model, run.x, adj.to(device)
    y, masks = _labels(g, device)
    tr = masks["train"]
    halves = tuple(h.to(device) for h in _val_halves(g.masks["val"]))
    evals = {"raw": model} | {
        f"ema{d:g}": AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(d), use_buffers=True)
        for d in decays}
    hist: dict[str, list[tuple[float, float, float, float]]] = {k: [] for k in evals}
    for _ in range(epochs):
        _train_step(run, adj, y, tr)
        for key, m in evals.items():
            if key != "raw":
                m.update_parameters(model)
            m.eval()
            with torch.no_grad():
                logits = m(x, adj)
            hist[key].append(tuple(v for h in halves for v in (
                float((logits[h].argmax(1) == y[h]).float().mean()),
                float(F.cross_entropy(logits[h], y[h])))))
    out = {}
    for key, rows in hist.items():
        acc_a, loss_a, acc_b, loss_b = (torch.tensor(c) for c in zip(*rows))
        picks = {  # rule -> (epoch picked on half A, epoch picked on half B)
            "acc": (int(acc_a.argmax()), int(acc_b.argmax())),  # first maximum
            "acc-last": (epochs - 1 - int(acc_a.flip(0).argmax()),
                         epochs - 1 - int(acc_b.flip(0).argmax())),
            "loss": (int(loss_a.argmin()), int(loss_b.argmin())),
            # highest mean accuracy over a centred 5-epoch window (less noise-chasing)
            "acc-ma5": (int(_moving_mean(acc_a, 5).argmax()),
                        int(_moving_mean(acc_b, 5).argmax())),
        }
        for rule, (ia, ib) in picks.items():
            out[f"{key}/{rule}"] = float(acc_b[ia] + acc_a[ib]) / 2
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=list(CONFIGS))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu (the reported runs) or cuda")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                    help="override lr, lr_gamma, wd, row_norm, label_smoothing or a "
                         "constructor argument")
    ap.add_argument("--selection-study", nargs="*", type=float, default=None, metavar="DECAY",
                    help="compare selection rules (raw weights and EMAs of these decays) on "
                         "validation halves only; see selection_study")
    ap.add_argument("--json", default="", help="write the table as JSON to this path")
    ap.add_argument("--combine", nargs="+", default=[], metavar="JSON",
                    help="print the table of per-seed JSON files (of runs split by seeds) and "
                         "write them together to --json")
    ap.add_argument("--tune", action="store_true",
                    help="print validation accuracy only (no test figures): for tuning")
    args = ap.parse_args()
    overrides = {k: _value(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    if args.combine:
        per_seed = [r for f in args.combine for r in json.loads(Path(f).read_text())]
        print_table(per_seed)
        if args.json:
            Path(args.json).write_text(json.dumps(per_seed, indent=1))
        return
    torch.set_num_threads(args.threads)
    g = load_planetoid(DATA / "planetoid", "cora")
    adj = normalize(g.edge_index, g.num_nodes, "gcn")
    print(g.summary())
    if args.selection_study is not None:
        for name in args.models:
            scores: dict[str, list[float]] = {}
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                res = selection_study(name, g, adj, seed, args.epochs, overrides,
                                      args.selection_study, args.device)
                for k, v in res.items():
                    scores.setdefault(k, []).append(v)
                print(f"{name} seed {seed}: " + "  ".join(f"{k} {v:.4f}" for k, v in
                                                          res.items()), flush=True)
            print(f"SELECTION {name} {' '.join(args.set)} (n={args.seeds}, held-out half "
                  f"accuracy): " + "  ".join(f"{k} {100 * statistics.mean(v):.2f}"
                                             for k, v in scores.items()), flush=True)
        return
    per_seed = []  # one record per (model, seed); the JSON is rewritten after every seed
    for name in args.models:
        vals, t0 = [], time.perf_counter()
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            v, t, c = run_one(name, g, adj, seed, args.epochs, overrides, args.device)
            vals.append(v)
            if args.tune:
                print(f"{name} seed {seed}: val {v:.4f} [{time.perf_counter() - t0:.0f}s]",
                      flush=True)
                continue
            print(f"{name} seed {seed}: val {v:.4f} test {t:.4f}  SynOps/node "
                  f"{c['totals']['SynOps']:.4g}  energy/node {c['energy']['E_SNN_J'] * 1e9:.4g}"
                  f" nJ [{time.perf_counter() - t0:.0f}s]", flush=True)
            per_seed.append({"model": name, "seed": seed, "epochs": args.epochs,
                             "config": _config(name, overrides), "val": v, "test": t,
                             "totals": c["totals"], "E_SNN_J": c["energy"]["E_SNN_J"]})
            if args.json:
                Path(args.json).parent.mkdir(parents=True, exist_ok=True)
                Path(args.json).write_text(json.dumps(per_seed, indent=1))
        if args.tune:
            print(f"TUNE {name} {' '.join(args.set)} epochs={args.epochs}: val "
                  f"{100 * statistics.mean(vals):.2f} ± {100 * statistics.pstdev(vals):.2f} % "
                  f"(n={len(vals)})", flush=True)
    if per_seed:
        print_table(per_seed)


def print_table(per_seed: list[dict]) -> None:
    """Mean ± std of test accuracy (and validation) and the mean cost per node, per model."""
    print("\nmodel         test acc (mean ± std, n)   val acc   SynOps/node  of which ACs  "
          "Dense MACs/node  energy/node")
    for name in dict.fromkeys(r["model"] for r in per_seed):
        rs = [r for r in per_seed if r["model"] == name]
        tests = [r["test"] for r in rs]
        std = statistics.stdev(tests) if len(tests) > 1 else 0.0
        syn = statistics.mean(r["totals"]["Eff_ACs"] + r["totals"]["Eff_MACs"] for r in rs)
        acs = statistics.mean(r["totals"]["Eff_ACs"] for r in rs)
        dense = statistics.mean(r["totals"]["Dense"] for r in rs)
        e = statistics.mean(r["E_SNN_J"] for r in rs)
        val = statistics.mean(r["val"] for r in rs)
        print(f"{name:12s}  {100 * statistics.mean(tests):6.2f} ± {100 * std:4.2f} % "
              f"(n={len(rs):2d})   {100 * val:6.2f}   {syn:11.4g}  {acs:12.4g}  {dense:15.4g}  "
              f"{e * 1e9:8.4g} nJ")


def _config(name: str, overrides: dict) -> dict:
    kw, lr, wd, row_norm = CONFIGS[name]
    cfg = {**kw, "lr": lr, "wd": wd, "row_norm": row_norm}
    cfg.update({k: v for k, v in overrides.items()})
    return cfg


if __name__ == "__main__":
    main()
