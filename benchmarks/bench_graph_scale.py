"""Scale: Cluster-GCN on synthetic SBM graphs; full-batch vs Cluster-GCN training memory.

1. ``--sizes``: for each graph size, one training step of a 3-layer GCN on the full graph and
   Cluster-GCN steps (fixed nodes per batch) are run in fresh child processes; the table gives
   each process's peak RSS above its RSS with the graph loaded (training memory), and a plot is
   written (``--plot``).
2. ``--compare``: for each graph size, the partitioners (``--methods``, default METIS, ``lp``
   and random) partition it into ``N / 1000`` clusters: time, edge cut, cluster sizes.
3. ``--big``: a graph of ``--big`` nodes is generated, partitioned (``--partition``, time
   reported, cached on disk) and a 3-layer Cluster-GCN trains one epoch (time per epoch,
   nodes/s, peak RSS of the whole process); ``--json`` records the figures.

4. ``--pyg N``: on a graph of ``N`` nodes, one partition (``--partition``) feeds both this
   library's Cluster-GCN batches and PyTorch Geometric's ``ClusterLoader`` (its METIS step
   replaced by the same partition, since PyG's METIS backends ``pyg-lib`` / ``torch-sparse``
   have no wheels for this torch); the same 3-layer model trains one epoch from each (and
   each loader is iterated alone): time and nodes/s. Needs ``torch_geometric`` importable.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/bench_graph_scale.py --sizes 50000 150000
450000 --compare 100000 500000 --big 2000000 --partition lp``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from spikeloom.graph.cluster import PARTITION_METHODS, cached_partition, partition
from spikeloom.graph.grow import edge_cut
from spikeloom.graph.synthetic import sbm_graph
from spikeloom.graph.training import GraphSplit, node_step
from spikeloom.models import build_model
from spikeloom.train import DistInfo

NODES_PER_CLUSTER = 1000


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _graph(n: int, deg: float):
    return sbm_graph(n, blocks=10, avg_degree=deg, features=32, feature_noise=2.0, seed=0)


def _cfg(parts: int, q: int, method: str, cache: str | None):
    return SimpleNamespace(batching="cluster", parts=parts, clusters_per_batch=q,
                           partition=method, diag_lambda=1.0, partition_cache=cache)


def _steps(model, opt, loader, max_steps: int | None = None,
           report: int = 0) -> tuple[int, int]:
    n = steps = 0
    t = time.perf_counter()
    for batch in loader:
        out = node_step(model, batch, "ce", torch.device("cpu"))
        opt.zero_grad()
        (out.loss_sum / max(out.n, 1)).backward()
        opt.step()
        n, steps = n + batch.x.shape[0], steps + 1
        if report and steps % report == 0:
            print(f"  step {steps}/{len(loader)}: {time.perf_counter() - t:.1f}s, peak RSS "
                  f"{_rss_kib('VmHWM') / 2**20:.2f} GiB", flush=True)
        if max_steps is not None and steps >= max_steps:
            break
    return n, steps


def child(mode: str, path: str, q: int) -> None:
    """One measurement in a fresh process; prints a JSON line."""
    torch.set_num_threads(1)
    g = torch.load(path, weights_only=False)
    split = GraphSplit(g, "train")
    torch.manual_seed(0)
    model = build_model("cluster-gcn", split.spec, hidden=128, layers=3, dropout=0.2)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    parts = max(1, g.num_nodes // NODES_PER_CLUSTER)
    if mode == "full":
        loader = split.graph_loader([np.arange(len(split.nodes))], DistInfo(),
                                    cfg=SimpleNamespace(batching="full", diag_lambda=1.0))
        batches = None
    else:
        split.configure(_cfg(parts, q, "random", None))
        loader = split.graph_loader([np.arange(i, min(i + q, parts)) for i in range(0, parts, q)],
                                    DistInfo(), seed=0, cfg=_cfg(parts, q, "random", None))
        batches = 3
    base = _rss_kib("VmRSS")
    t = time.perf_counter()
    n, steps = _steps(model, opt, loader, batches)
    print(json.dumps({"mode": mode, "nodes": g.num_nodes, "edges": g.num_edges, "base_kib": base,
                      "peak_kib": _rss_kib("VmHWM"), "seconds": time.perf_counter() - t,
                      "steps": steps, "batch_nodes": n // max(steps, 1)}))


def memory_table(sizes: list[int], deg: float, q: int, plot: str) -> None:
    rows = []
    for n in sizes:
        g = _graph(n, deg)
        path = f"/tmp/spikeloom_sbm_{n}.pt"
        torch.save(g, path)
        for mode in ("full", "cluster"):
            # the parent's high-water mark must not count: measure in a fresh process
            out = subprocess.run([sys.executable, __file__, "--child", mode, path, "--q", str(q)],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(out.stderr[-2000:])
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            r["train_mib"] = (r["peak_kib"] - r["base_kib"]) / 1024
            rows.append(r)
            print(f"{mode:8s} N={r['nodes']:>9,d} E={r['edges']:>11,d}  batch nodes "
                  f"{r['batch_nodes']:>9,d}  training peak above graph {r['train_mib']:8.1f} MiB"
                  f"  (process peak {r['peak_kib'] / 1024:8.1f} MiB)  {r['seconds']:.2f}s for "
                  f"{r['steps']} step(s)", flush=True)
        Path(path).unlink()
    if plot and rows:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for mode in ("full", "cluster"):
            rs = [r for r in rows if r["mode"] == mode]
            ax.plot([r["nodes"] for r in rs], [r["train_mib"] for r in rs], "o-",
                    label="full-batch GCN" if mode == "full" else
                    f"Cluster-GCN ({q} x {NODES_PER_CLUSTER}-node clusters)")
        ax.set(xscale="log", xlabel="nodes", ylabel="training peak RSS above graph (MiB)",
               title=f"3-layer GCN, one step (SBM, avg degree {deg:g})")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        Path(plot).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(plot, dpi=100)
        print(f"plot: {plot}")


def pyg_compare(n: int, deg: float, q: int, method: str) -> dict:
    """One epoch of Cluster-GCN batches: spikeloom's loader vs PyG's ``ClusterLoader``."""
    from torch_geometric.data import Data
    from torch_geometric.loader import ClusterData, ClusterLoader

    from spikeloom.graph.training import GraphBatch

    torch.set_num_threads(1)
    g = _graph(n, deg)
    parts = max(1, n // NODES_PER_CLUSTER)
    t = time.perf_counter()
    member = partition(g, parts, method, seed=1)
    print(f"pyg comparison: N={n:,d} E={g.num_edges:,d}, {method} partition into {parts} "
          f"clusters in {time.perf_counter() - t:.1f}s, q={q}", flush=True)

    class GivenPartition(ClusterData):  # PyG's METIS step -> the same partition
        def _metis(self, edge_index, num_nodes):
            return member

    split = GraphSplit(g, "train")
    cfg = _cfg(parts, q, method, False)
    groups = [np.arange(i, min(i + q, parts)) for i in range(0, parts, q)]
    t = time.perf_counter()
    data = Data(x=g.x, y=g.y, edge_index=g.edge_index, train_mask=g.masks["train"])
    cdata = GivenPartition(data, num_parts=parts, log=False)
    pyg_setup = time.perf_counter() - t
    split.configure(cfg)
    ours = split.graph_loader(groups, DistInfo(), seed=0, cfg=cfg)  # warms the partition

    def from_pyg(b):
        return GraphBatch(b.x, b.y, torch.nonzero(b.train_mask, as_tuple=True)[0],
                          b.edge_index, 1.0)

    rows = {}
    for name in ("spikeloom", "pyg"):
        def batches(name=name):
            if name == "spikeloom":
                return split.graph_loader(groups, DistInfo(), seed=0, cfg=cfg)
            torch.manual_seed(0)
            return (from_pyg(b) for b in ClusterLoader(cdata, batch_size=q, shuffle=True))
        t = time.perf_counter()
        nodes = sum(b.x.shape[0] for b in batches())  # the loader alone
        load_s = time.perf_counter() - t
        torch.manual_seed(0)
        model = build_model("cluster-gcn", split.spec, hidden=128, layers=3, dropout=0.2)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        t = time.perf_counter()
        nodes_t, steps = _steps(model, opt, batches())
        train_s = time.perf_counter() - t
        rows[name] = {"loader_s": load_s, "loader_nodes_per_s": nodes / load_s,
                      "epoch_s": train_s, "epoch_nodes_per_s": nodes_t / train_s,
                      "steps": steps}
        print(f"  {name:9s}: loader alone {load_s:6.2f}s ({nodes / load_s:12,.0f} nodes/s); "
              f"training epoch {train_s:6.2f}s ({nodes_t / train_s:10,.0f} nodes/s, {steps} "
              f"steps)", flush=True)
    del ours
    print(f"  (PyG ClusterData set-up with the given partition: {pyg_setup:.2f}s)")
    return {"nodes": n, "edges": g.num_edges, "parts": parts, "q": q, "partition": method,
            "pyg_setup_s": pyg_setup, **rows}


def compare_partitioners(sizes: list[int], deg: float, methods: list[str]) -> list[dict]:
    """Partition time, edge cut and cluster sizes of each method at each graph size."""
    torch.set_num_threads(1)
    rows = []
    for n in sizes:
        g = _graph(n, deg)
        parts = max(1, n // NODES_PER_CLUSTER)
        for method in methods:
            t = time.perf_counter()
            member = partition(g, parts, method, seed=1)
            dt = time.perf_counter() - t
            sizes_ = torch.bincount(member, minlength=parts)
            r = {"nodes": n, "edges": g.num_edges, "parts": parts, "method": method,
                 "seconds": dt, "edge_cut": edge_cut(g.edge_index, member),
                 "min_size": int(sizes_.min()), "max_size": int(sizes_.max())}
            rows.append(r)
            print(f"partition N={n:>9,d} E={g.num_edges:>11,d} into {parts} ({method:6s}): "
                  f"{dt:7.1f}s  edge cut {r['edge_cut']:.4f}  cluster sizes "
                  f"{r['min_size']}-{r['max_size']}", flush=True)
    return rows


def big_run(n: int, deg: float, q: int, cache: str, max_steps: int | None,
            method: str) -> dict:
    torch.set_num_threads(1)
    t = time.perf_counter()
    g = _graph(n, deg)
    gen_s = time.perf_counter() - t
    print(f"generated {g.num_nodes:,d} nodes, {g.num_edges:,d} directed edges "
          f"({g.num_edges // 2:,d} undirected) in {gen_s:.1f}s; "
          f"RSS {_rss_kib('VmRSS') / 2**20:.2f} GiB", flush=True)
    split = GraphSplit(g, "train")
    parts = max(1, n // NODES_PER_CLUSTER)
    t = time.perf_counter()
    member = cached_partition(g, parts, method, seed=1, cache_dir=cache)
    part_s = time.perf_counter() - t
    cut = edge_cut(g.edge_index, member)
    print(f"{method} partition into {parts} clusters: {part_s:.1f}s (cached in {cache}); "
          f"edge cut {cut:.4f}; peak RSS {_rss_kib('VmHWM') / 2**20:.2f} GiB", flush=True)
    torch.manual_seed(0)
    model = build_model("cluster-gcn", split.spec, hidden=128, layers=3, dropout=0.2)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    cfg = _cfg(parts, q, method, cache)
    split.configure(cfg)
    loader = split.graph_loader([np.arange(i, min(i + q, parts)) for i in range(0, parts, q)],
                                DistInfo(), seed=0, cfg=cfg)
    t = time.perf_counter()
    nodes, steps = _steps(model, opt, loader, max_steps, report=20)
    dt = time.perf_counter() - t
    what = "epoch" if steps == len(loader) else \
        f"{steps} of the epoch's {len(loader)} steps (epoch time projected: " \
        f"{dt / steps * len(loader):.0f}s)"
    print(f"Cluster-GCN {what}, 3 layers, hidden 128, q={q}: {dt:.1f}s, "
          f"{nodes / dt:,.0f} nodes/s; process peak RSS {_rss_kib('VmHWM') / 2**20:.2f} GiB",
          flush=True)
    return {"nodes": g.num_nodes, "directed_edges": g.num_edges,
            "undirected_edges": g.num_edges // 2, "generate_s": gen_s, "partition": method,
            "parts": parts, "partition_s": part_s, "edge_cut": cut, "q": q,
            "steps": steps, "epoch_steps": len(loader), "train_s": dt,
            "epoch_s": dt / steps * len(loader), "nodes_per_s": nodes / dt,
            "peak_rss_gib": _rss_kib("VmHWM") / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[50_000, 150_000, 450_000])
    ap.add_argument("--big", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=None,
                    help="stop the big epoch after N steps (time per epoch is projected)")
    ap.add_argument("--avg-degree", type=float, default=50.0)
    ap.add_argument("--q", type=int, default=10, help="clusters per batch")
    ap.add_argument("--plot", default="benchmarks/results/graph_scale_memory.png")
    ap.add_argument("--cache", default="/tmp/spikeloom_partitions")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "PATH"))
    ap.add_argument("--compare", type=int, nargs="*", default=[],
                    help="graph sizes at which to compare the partitioners")
    ap.add_argument("--methods", nargs="+", default=["metis", "lp", "random"])
    ap.add_argument("--partition", default="lp", choices=PARTITION_METHODS,
                    help="partitioner of the --big graph")
    ap.add_argument("--pyg", type=int, default=0,
                    help="graph size of the PyG ClusterLoader comparison (needs PyG)")
    ap.add_argument("--json", default="", help="write --compare / --pyg / --big figures here")
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.q)
        return
    if args.sizes:
        memory_table(args.sizes, args.avg_degree, args.q, args.plot)
    out: dict = {}
    if args.compare:
        out["compare"] = compare_partitioners(args.compare, args.avg_degree, args.methods)
    if args.pyg:
        out["pyg"] = pyg_compare(args.pyg, args.avg_degree, args.q, args.partition)
    if args.big:
        out["big"] = big_run(args.big, args.avg_degree, args.q, args.cache, args.max_steps,
                             args.partition)
    if args.json and out:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1))
        print(f"json: {args.json}")


if __name__ == "__main__":
    main()
