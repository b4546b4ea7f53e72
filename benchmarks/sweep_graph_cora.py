"""Random search over spiking-GCN settings on Cora, on validation labels only, many runs at once.

Every run is :func:`bench_graph_cora.selection_study` (200 epochs of full-batch Adam; pick the
epoch of highest accuracy on one fixed half of the 500 validation nodes, score it on the other
half, both ways round), so a config's score is a held-out estimate that does not reward lucky
maxima. No test label is read: the selected config is then tested once with
``bench_graph_cora.py --set ...`` on the reported seeds 0-9.

Stage 1 runs ``--configs`` configs (the current one, every one-option change of it, then
random draws from :data:`SPACE`) on ``--seeds`` tuning seeds from ``--first-seed``, seed-major
so that a time-budget cut leaves every config with the same seeds (give or take one). Stage 2
runs the ``--top`` best of stage 1 and the current one again on ``--more-seeds`` fresh tuning
seeds, and ranks by stage 2 only (the stage-1 means carry the winner's curse); ``--candidates``
runs given configs instead (a confirmation on fresh seeds, with ``--more-seeds 0``).
One JSON line per run goes to ``--out``; ``--report FILE ...`` prints the rankings of saved
sweeps again, with each config's paired difference to the current one.

Run: ``PYTHONPATH=src:benchmarks python benchmarks/sweep_graph_cora.py --device cuda
--workers 14 --out sweep.jsonl`` (on a GPU, several processes share it); on CPU the same with
``--device cpu`` (slow: about a minute per run on one core).
"""

from __future__ import annotations

import argparse
import inspect
import json
import multiprocessing as mp
import random
import statistics
import time
from pathlib import Path

import torch

#: option -> values drawn uniformly (bench_graph_cora --set keys; None = the model's default)
SPACE: dict[str, list] = {
    "hidden": [64, 128, 256],
    "T": [4, 8, 12, 16],
    "dropout": [0.5, 0.6, 0.7, 0.8],
    "input_dropout": [None, 0.5, 0.8, 0.9],
    "decay": [0.5, 0.7, 0.8, 0.9, 1.0],
    "rho": [0.5, 1.0, 1.5, 2.0],
    "lr": [0.003, 0.005, 0.01, 0.02],
    "wd": [5e-4, 1e-3, 2e-3, 5e-3],
    "wd_scope": ["first", "all"],
    "readout": ["linear", "mlp"],
    "reset": ["hard", "soft"],
    "surrogate_width": [None, 0.5, 2.0],
    "label_smoothing": [0.0, 0.1, 0.2],
}

#: per worker process: the graph, adjacency and bench module that _init loads once
_STATE: dict = {}


def _init(device: str) -> None:
    import bench_graph_cora as b

    from spikeloom.graph import load_planetoid, normalize

    torch.set_num_threads(1)
    g = load_planetoid(b.DATA / "planetoid", "cora")
    _STATE.update(b=b, g=g, adj=normalize(g.edge_index, g.num_nodes, "gcn"), device=device)


def _task(task: tuple) -> dict | None:
    stage, cid, overrides, seed, epochs, deadline = task
    if time.time() > deadline:
        return None
    t0 = time.perf_counter()
    res = _STATE["b"].selection_study("spiking-gcn", _STATE["g"], _STATE["adj"], seed, epochs,
                                      overrides, [], _STATE["device"])
    return {"stage": stage, "config": cid, "set": overrides, "seed": seed,
            "score": res["raw/acc"], "score_ma5": res["raw/acc-ma5"],
            "seconds": time.perf_counter() - t0}


def current() -> dict:
    """The current settings in SPACE's terms: ``bench_graph_cora.CONFIGS["spiking-gcn"]`` over
    :class:`SpikingGraphNet`'s defaults (no label smoothing)."""
    import bench_graph_cora as b

    from spikeloom.graph.spiking import SpikingGraphNet

    kw, lr, wd, _ = b.CONFIGS["spiking-gcn"]
    params = inspect.signature(SpikingGraphNet).parameters
    cur = {k: params[k].default for k in SPACE if k in params}
    return cur | kw | {"lr": lr, "wd": wd, "label_smoothing": 0.0}


def draw_configs(n: int, rng: random.Random) -> list[dict]:
    """``n`` distinct configs (overrides of the current one): the current one first, then every
    one-option change of it (in SPACE's order), then random draws from all of SPACE."""
    cur = current()

    def key(cfg: dict) -> str:
        return json.dumps({k: cfg.get(k, cur[k]) for k in SPACE}, sort_keys=True)

    ofat = [{k: v} for k, vs in SPACE.items() for v in vs if v != cur[k]]
    out, seen = [], set()
    for cfg in [{}] + ofat:
        if len(out) < n and key(cfg) not in seen:
            seen.add(key(cfg))
            out.append(cfg)
    while len(out) < n:
        cfg = {k: rng.choice(vs) for k, vs in SPACE.items()}
        if key(cfg) not in seen:
            seen.add(key(cfg))
            out.append({k: v for k, v in cfg.items() if v != cur[k]})
    return out


def _run(pool, tasks: list[tuple], out: Path) -> list[dict]:
    rows = []
    with out.open("a") as f:
        for r in pool.imap_unordered(_task, tasks):
            if r is None:
                continue
            rows.append(r)
            f.write(json.dumps(r) + "\n")
            f.flush()
    return rows


def rank(rows: list[dict], stage: int) -> list[dict]:
    """Per config of one stage, best mean first: ``mean`` score, ``n`` seeds, ``config`` id,
    ``set`` (overrides) and, against the current config (``set == {}``) on the seeds both ran,
    the paired difference ``diff`` ± its standard error ``se`` and the ``wins`` / ``losses``."""
    by: dict[int, dict[int, float]] = {}
    sets: dict[int, dict] = {}
    for r in rows:
        if r["stage"] == stage:
            by.setdefault(r["config"], {})[r["seed"]] = r["score"]
            sets[r["config"]] = r["set"]
    base = next((by[c] for c, cfg in sets.items() if not cfg), {})
    table = []
    for cid, scores in by.items():
        row = {"mean": statistics.mean(scores.values()), "n": len(scores), "config": cid,
               "set": sets[cid]}
        d = [scores[s] - base[s] for s in scores if s in base]
        if sets[cid] and len(d) > 1:
            row |= {"diff": statistics.mean(d), "se": statistics.stdev(d) / len(d) ** 0.5,
                    "wins": sum(x > 0 for x in d), "losses": sum(x < 0 for x in d)}
        table.append(row)
    return sorted(table, key=lambda t: (-t["mean"], t["config"]))


def _print(table: list[dict], title: str, limit: int) -> None:
    print(f"\n{title}\n  mean    n   config  vs current (paired, s.e., wins:losses)  settings",
          flush=True)
    for t in table[:limit]:
        vs = (f"{100 * t['diff']:+5.2f} ± {100 * t['se']:4.2f}  {t['wins']:2d}:{t['losses']:<2d}"
              if "diff" in t else " " * 19)
        print(f"  {100 * t['mean']:6.2f}  {t['n']:2d}  {t['config']:4d}    {vs:36s}  "
              + (" ".join(f"{k}={v}" for k, v in t["set"].items()) or "(current)"), flush=True)


def report(path: Path, limit: int) -> None:
    """Print the rankings of a finished sweep's JSON lines (both stages)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for stage in sorted({r["stage"] for r in rows}):
        _print(rank(rows, stage), f"{path.name}: stage {stage}", limit)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--configs", type=int, default=60)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--first-seed", type=int, default=100)
    ap.add_argument("--top", type=int, default=6)
    ap.add_argument("--more-seeds", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--budget", type=float, nargs=2, default=[300.0, 200.0],
                    metavar=("STAGE1", "STAGE2"), help="seconds per stage")
    ap.add_argument("--draw-seed", type=int, default=0)
    ap.add_argument("--candidates", default="",
                    help="a JSON list of override dicts to run in stage 1 instead of drawn "
                         "configs (e.g. a confirmation of stage-2 winners on fresh seeds)")
    ap.add_argument("--out", default="sweep_graph_cora.jsonl")
    ap.add_argument("--report", nargs="+", default=[], metavar="JSONL",
                    help="only print the rankings of finished sweeps (no runs)")
    args = ap.parse_args()
    if args.report:
        for f in args.report:
            report(Path(f), args.configs)
        return
    out = Path(args.out)
    if out.exists():
        raise SystemExit(f"{out} exists: runs are appended as they finish, so a new sweep "
                         f"needs a new --out (or delete the old file)")
    configs = (json.loads(args.candidates) if args.candidates
               else draw_configs(args.configs, random.Random(args.draw_seed)))
    ctx = mp.get_context("spawn")
    t0 = time.time()
    with ctx.Pool(args.workers, _init, (args.device,)) as pool:
        seeds1 = range(args.first_seed, args.first_seed + args.seeds)
        tasks = [(1, cid, cfg, s, args.epochs, t0 + args.budget[0])
                 for s in seeds1 for cid, cfg in enumerate(configs)]
        rows = _run(pool, tasks, out)
        done = {r["config"] for r in rows}
        print(f"stage 1: {len(rows)} runs of {len(tasks)} in {time.time() - t0:.0f} s "
              f"({len(done)} configs)", flush=True)
        table1 = rank(rows, 1)
        _print(table1, "stage 1 (held-out half validation accuracy)", 25)
        top = [(t["config"], t["set"]) for t in table1[:args.top]]
        if 0 not in dict(top):
            top.append((0, {}))  # the current config always goes on, as the yardstick
        if args.more_seeds <= 0:
            return
        first2 = args.first_seed + args.seeds
        t1 = time.time()
        tasks = [(2, cid, cfg, s, args.epochs, t1 + args.budget[1])
                 for s in range(first2, first2 + args.more_seeds) for cid, cfg in top]
        rows2 = _run(pool, tasks, out)
        print(f"stage 2: {len(rows2)} runs of {len(tasks)} in {time.time() - t1:.0f} s",
              flush=True)
        _print(rank(rows2, 2), f"stage 2 (fresh tuning seeds from {first2})", len(top))


if __name__ == "__main__":
    main()
