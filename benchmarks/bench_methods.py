"""Training methods and deep spiking ResNets (issue 12 targets), on data that exists here.

1. ``methods``: surrogate-gradient BPTT (``stbp``), DSR and Joint A-SNN train the *same*
   network (a small spiking ResNet: stem 3x3/2, one basic block per stage, plain BN, LIF
   ``V_th 0.5``, decay 0.25, ``>=``) with the same T, optimiser and schedule on MNIST (a
   stratified training subset, the full 5k validation and 10k test split); each run is a
   separate process (``spikeloom train``), so its peak resident memory is its own. Prints test
   accuracy (the epoch selected on validation), the difference to ``stbp``, training time and
   peak memory; writes ``benchmarks/results/methods_mnist.json``. DSR swaps the LIF layers for
   DSR-LIF neurons; at T = 4 the reference defaults (``dt 0.05``, ``V_th 0.3``) make the time
   window ``T·dt`` so short that few neurons ever fire, so the DSR run uses the paper's
   low-latency recipe (``V_th 0.6, alpha 0.5, bound 1e-3``) with ``dt 0.25`` (chosen on
   validation, see ``--part dsr_select``). Joint A-SNN adds the ANN twin and one branch exit
   and evaluates the SNN only.
2. ``dsr_select``: the short validation comparison behind the DSR options above (5k samples
   per split, 2 epochs; STBP and four DSR settings).
3. ``resnet19``: ResNet-19 depth and layout (3-3-2 basic blocks, FC-LIF head) with tdBN on
   ES-Digits, at reduced width (--width, default 1/8 of the paper's 128-256-512) for CPU, with
   a tdBN before the head's LIF (``fc_norm``: without it that LIF never fires at
   initialisation, so the last FC gets no gradient and the net stays at chance); prints the
   loss and accuracy per epoch and whether the loss stayed finite.
4. ``gradnorm``: a 34-layer spiking ResNet (3-4-6-3 basic blocks) with and without tdBN: the
   gradient norm of each block's first conv weight on ES-Digits probe batches, at
   initialisation and after ``--gn-steps`` AdamW steps; printed, plotted
   (``benchmarks/results/gradnorm_resnet34.png``) and saved as JSON.

Usage: python benchmarks/bench_methods.py [--part methods dsr_select resnet19 gradnorm] ...
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CHILD = r"""
import resource, sys, time
from spikeloom.cli import main
t = time.perf_counter()
rc = main(sys.argv[1:])
print("PEAK_RSS_MIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print("WALL_S", time.perf_counter() - t)
sys.exit(rc)
"""


def run_method(method: str, args: argparse.Namespace, tag: str = "") -> dict:
    """Train ``method`` on MNIST in a child process; its accuracy, time and peak RSS."""
    out = Path(args.out) / f"mnist-{method}{tag}"
    cmd = [sys.executable, "-c", _CHILD, "train", "--dataset", "mnist", "--root", args.mnist,
           "--dataset-arg", f"T={args.T}", "--model", "spiking_resnet",
           "--model-arg", f"block_layout={args.layout}", "--model-arg", f"widths={args.widths}",
           "--model-arg", f"stem={args.stem}", "--model-arg", f"stem_stride={args.stem_stride}",
           "--model-arg", "fc_hidden=null",
           "--model-arg", "norm=bn", "--model-arg", "neuron_kwargs={fire_ge: true}",
           "--method", method, "--epochs", str(args.epochs), "--max-samples",
           str(args.max_samples), "--batch-size", "64", "--threads", str(args.threads),
           "--seed", str(args.seed), "--no-progress", "--no-plots", "--overwrite",
           "--out", str(out)]
    if method == "dsr":
        for kv in args.dsr_args:
            cmd += ["--method-arg", kv]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{p.stderr[-2000:]}")
    vals = dict(line.split(" ", 1) for line in p.stdout.splitlines()
                if line.startswith(("PEAK_RSS_MIB", "WALL_S")))
    final = json.loads((out / "final.json").read_text())
    return {"method": method, "test_acc": final["test_acc"], "val": final["best_val_acc"],
            "train_s": final["train_seconds"], "wall_s": float(vals["WALL_S"]),
            "peak_mib": float(vals["PEAK_RSS_MIB"])}


def part_methods(args: argparse.Namespace) -> None:
    print(f"MNIST: at most {args.max_samples} samples per split (stratified), T={args.T}, "
          f"{args.epochs} epochs, spiking ResNet layout {args.layout} widths {args.widths} "
          f"stem {args.stem} stride {args.stem_stride}, threads {args.threads}; DSR options "
          f"{' '.join(args.dsr_args) or 'defaults'}", flush=True)
    rows = []
    for m in ("stbp", "dsr", "joint-asnn"):
        r = run_method(m, args)
        rows.append(r)
        print(f"{r['method']:<11} test acc {100 * r['test_acc']:6.2f} %  "
              f"(vs stbp {100 * (r['test_acc'] - rows[0]['test_acc']):+.2f} points)  val "
              f"{100 * r['val']:6.2f} %  train {r['train_s']:6.1f} s  wall {r['wall_s']:6.1f} s"
              f"  peak RSS {r['peak_mib']:7.1f} MiB", flush=True)
    res = {"setting": {k: getattr(args, k) for k in ("T", "epochs", "max_samples", "layout",
                                                     "widths", "stem", "stem_stride", "seed",
                                                     "dsr_args")},
           "load_avg": os.getloadavg(), "rows": rows}
    path = REPO / "benchmarks" / "results" / "methods_mnist.json"
    path.write_text(json.dumps(res, indent=1))
    print(f"json: {path}")


def part_dsr_select(args: argparse.Namespace) -> None:
    sel = argparse.Namespace(**{**vars(args), "max_samples": 5000, "epochs": 2})
    settings = [["stbp"], ["dsr"], ["dsr", "v_th=0.6", "alpha=0.5", "vth_bound=0.001", "dt=0.1"],
                ["dsr", "neuron=if", "v_th=1.0"],
                ["dsr", "v_th=0.6", "alpha=0.5", "vth_bound=0.001", "dt=0.25"]]
    print("DSR option selection: 5000 samples per split, 2 epochs, validation accuracy",
          flush=True)
    rows = []
    for i, (method, *opts) in enumerate(settings):
        sel.dsr_args = opts
        r = run_method(method, sel, tag=f"-sel{i}")
        rows.append({**r, "options": opts})
        print(f"  {method:<5} {' '.join(opts) or '(defaults)':<48} val {100 * r['val']:6.2f} %",
              flush=True)
    path = REPO / "benchmarks" / "results" / "methods_dsr_select.json"
    path.write_text(json.dumps({"rows": rows, "load_avg": os.getloadavg()}, indent=1))


def _esdigits_batches(n: int, batch: int):
    import torch

    from spikeloom.datasets import build_dataset

    ds = build_dataset("esdigits", "train")
    g = torch.Generator().manual_seed(0)
    idx = torch.randperm(len(ds), generator=g)[: n * batch].tolist()
    for i in range(n):
        items = [ds[j] for j in idx[i * batch:(i + 1) * batch]]
        x = torch.stack([torch.as_tensor(a) for a, _ in items], 1).float()
        y = torch.tensor([int(b) for _, b in items])
        yield x, y


def part_resnet19(args: argparse.Namespace) -> None:
    from spikeloom.train import TrainConfig, train

    w = args.width
    cfg = TrainConfig(dataset="esdigits", model="resnet19", epochs=args.r19_epochs,
                      batch_size=32, max_samples=args.r19_samples, threads=args.threads,
                      progress=False, plots=False, cost=False, quiet=True, lr=args.r19_lr,
                      model_kwargs={"widths": [128 // w, 256 // w, 512 // w], "stem": 128 // w,
                                    "fc_hidden": 256 // w, "fc_norm": args.r19_fc_norm},
                      out=str(Path(args.out) / f"resnet19-fc_norm{args.r19_fc_norm}"),
                      overwrite=True)
    r = train(cfg)
    losses = [h["train_loss"] for h in r.history]
    import math

    ok = all(math.isfinite(v) for v in losses)
    tag = (f"{'fcnorm' if args.r19_fc_norm else 'plainfc'}_{args.r19_samples or 'all'}s_"
           f"{args.r19_epochs}e")
    (REPO / "benchmarks" / "results" / f"resnet19_esdigits_{tag}.json").write_text(json.dumps(
        {"width_divisor": w, "fc_norm": args.r19_fc_norm, "samples": args.r19_samples,
         "lr": args.r19_lr, "epochs": args.r19_epochs,
         "history": r.history, "test_acc": r["test_acc"], "finite": ok,
         "train_seconds": r["train_seconds"], "load_avg": os.getloadavg()}, indent=1,
        default=float))
    print(f"ResNet-19 layout (3-3-2 blocks, widths /{w}, fc_norm {args.r19_fc_norm}) + tdBN "
          "on ES-Digits "
          f"({args.r19_samples or 'all'} samples per split): train loss per epoch "
          + " ".join(f"{v:.3f}" for v in losses)
          + "; val acc per epoch " + " ".join(f"{h['val_acc']:.3f}" for h in r.history)
          + f"; test acc {r['test_acc']:.4f}; finite: {ok}; {r['train_seconds']:.0f} s")


def _block_grad_norms(model, batches) -> list[float]:
    """Mean over ``batches`` of the gradient norm of each block's first conv weight."""
    import torch

    acc = [0.0] * len(model.layers)
    for x, y in batches:
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        for i, b in enumerate(model.layers):
            g = b.conv1.module.weight.grad
            acc[i] += 0.0 if g is None else float(g.norm())
    return [a / len(batches) for a in acc]


def part_gradnorm(args: argparse.Namespace) -> None:
    import torch

    from spikeloom.models import build_model

    torch.set_num_threads(args.threads)
    probe = list(_esdigits_batches(args.batches, 16))
    train_batches = list(_esdigits_batches(args.batches + args.gn_steps, 16))[args.batches:]
    norms: dict[str, dict[str, list[float]]] = {}
    for norm in ("tdbn", None):
        torch.manual_seed(0)
        model = build_model("spiking_resnet", block_layout=(3, 4, 6, 3), widths=(8, 16, 32, 64),
                            stem=8, in_channels=2, num_classes=10, fc_hidden=None, norm=norm)
        name = str(norm)
        norms[name] = {"init": _block_grad_norms(model, probe)}
        opt = torch.optim.AdamW(model.parameters(), lr=args.gn_lr)
        losses = []
        for x, y in train_batches:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        norms[name]["trained"] = _block_grad_norms(model, probe)
        norms[name]["train_loss"] = losses
        for when in ("init", "trained"):
            label = "at init" if when == "init" else f"after {args.gn_steps} AdamW steps"
            print(f"34-layer spiking ResNet, norm={norm}, {label}: per-block grad norm of conv1 "
                  + " ".join(f"{v:.2e}" for v in norms[name][when]), flush=True)
        print(f"  train loss first/last step {losses[0]:.3f} / {losses[-1]:.3f}", flush=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, when in zip(axes, ("init", "trained")):
        for k, v in norms.items():
            ax.semilogy(range(1, len(v[when]) + 1), [max(a, 1e-12) for a in v[when]], "o-",
                        label="tdBN" if k == "tdbn" else "no normalisation")
        ax.set_xlabel("residual block (input -> output)")
        ax.set_title("at initialisation" if when == "init"
                     else f"after {args.gn_steps} training steps")
    axes[0].set_ylabel("grad norm of the block's conv1 weight")
    axes[0].legend()
    fig.suptitle("34-layer spiking ResNet (3-4-6-3 blocks) on ES-Digits; 0 shown at 1e-12")
    fig.tight_layout()
    results = REPO / "benchmarks" / "results"
    fig.savefig(results / "gradnorm_resnet34.png", dpi=110)
    (results / "gradnorm_resnet34.json").write_text(json.dumps(
        {"steps": args.gn_steps, "lr": args.gn_lr, "probe_batches": args.batches,
         "norms": norms, "load_avg": os.getloadavg()}, indent=1))
    print(f"plot: {results / 'gradnorm_resnet34.png'}")


PARTS = {"methods": part_methods, "dsr_select": part_dsr_select, "resnet19": part_resnet19,
         "gradnorm": part_gradnorm}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", nargs="+", default=["methods", "resnet19", "gradnorm"],
                    choices=sorted(PARTS))
    ap.add_argument("--out", default="runs/bench_methods")
    ap.add_argument("--mnist", default=str(REPO.parent / "shared" / "data" / "mnist"))
    ap.add_argument("--T", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--max-samples", type=int, default=20000)
    ap.add_argument("--layout", default="[1, 1]")
    ap.add_argument("--widths", default="[16, 32]")
    ap.add_argument("--stem", type=int, default=16)
    ap.add_argument("--stem-stride", type=int, default=2)
    ap.add_argument("--dsr-args", nargs="*",
                    default=["v_th=0.6", "alpha=0.5", "vth_bound=0.001", "dt=0.25"],
                    help="--method-arg options of the DSR run (default: the paper's low-latency "
                         "recipe with dt matched to T=4, see the module docstring)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--width", type=int, default=8, help="ResNet-19 width divisor")
    ap.add_argument("--r19-epochs", type=int, default=5)
    ap.add_argument("--r19-no-fc-norm", dest="r19_fc_norm", action="store_false",
                    help="ResNet-19: the spec's plain FC -> LIF head (silent at init)")
    ap.add_argument("--r19-samples", type=int, default=None,
                    help="ResNet-19: samples per split (default: all, 1258/269/270)")
    ap.add_argument("--r19-lr", type=float, default=3e-3)
    ap.add_argument("--batches", type=int, default=2, help="gradnorm: probe batches (16)")
    ap.add_argument("--gn-steps", type=int, default=60, help="gradnorm: training steps")
    ap.add_argument("--gn-lr", type=float, default=1e-3, help="gradnorm: AdamW learning rate")
    args = ap.parse_args()
    Path(args.out).mkdir(parents=True, exist_ok=True)
    print(f"load average {os.getloadavg()}  {time.strftime('%H:%M:%S')}")
    for part in args.part:
        PARTS[part](args)
    print(f"load average {os.getloadavg()}  {time.strftime('%H:%M:%S')}")


if __name__ == "__main__":
    main()
