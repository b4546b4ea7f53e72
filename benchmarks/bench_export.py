"""Export round trips on real N-MNIST: NIR and ONNX agreement and inference speed.

A LIF LIAFNet (tdBN, channels 16-32, hidden 64, T = 12, 17x17 as configs/nmnist.yaml) trained
for 40 steps on the shared N-MNIST training subset, then, on the 100 test recordings:
NIR round trip (write + read) spike agreement with the tdBN-folded model, ONNX (onnxruntime,
unrolled) spike agreement, and inference time of spikeloom (eval, no_grad), the NIR-imported
network and onnxruntime, all measured in this run.
Usage: python benchmarks/bench_export.py [--threads N] [--root ../shared/data/nmnist]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from spikeloom.datasets.nmnist import NMNIST
from spikeloom.export import read_nir, write_nir
from spikeloom.export.onnx import export_onnx, run_onnx
from spikeloom.fold import folded_synapse
from spikeloom.models import build_model
from spikeloom.walk import layers_with_role


def load(root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    ds = NMNIST(root, split, T=12, downsample=2, cache_dir=False)
    xs, ys = zip(*(ds[i] for i in range(len(ds))))
    return torch.stack(xs, 1), torch.as_tensor(ys)


def spikes(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    outs: list[torch.Tensor] = []
    hooks = [lay.module.register_forward_hook(lambda m, i, o: outs.append(o))
             for lay in layers_with_role(model, "neuron")]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return outs


def best_time(fn, repeats: int = 5) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--root", default="../shared/data/nmnist")
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    root = Path(args.root)
    xtr, ytr = load(root, "train")
    xte, yte = load(root, "test")
    model = build_model("liafnet", in_channels=2, num_classes=10, input_size=(17, 17),
                        channels=(16, 32), hidden=64, neuron="lif", norm="tdbn")
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(args.steps):
        idx = torch.randint(0, xtr.shape[1], (32,))
        loss = nn.functional.cross_entropy(model(xtr[:, idx]), ytr[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = float((model(xte).argmax(1) == yte).float().mean())
    folded = copy.deepcopy(model)
    for seq, (i, j) in [(st, (0, 1)) for st in folded.features] + [(folded.classifier, (1, 2))]:
        seq[i] = folded_synapse(seq[i], seq[j])
        seq[j] = nn.Identity()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_nir(model, Path(tmp) / "m.nir", dt=1e-3)
        net = read_nir(Path(tmp) / "m.nir")
        t_nir = time.perf_counter() - t0
        t0 = time.perf_counter()
        export_onnx(model, Path(tmp) / "m.onnx", T=12, batch_size=xte.shape[1])
        t_onnx = time.perf_counter() - t0
        ort = run_onnx(Path(tmp) / "m.onnx", xte)
        s_nir, s_fold, s_orig = spikes(net, xte), spikes(folded, xte), spikes(model, xte)
        n = sum(s.numel() for s in s_orig)
        same_fold = sum(int((a == b).sum()) for a, b in zip(s_nir, s_fold))
        same_orig = sum(int((a == b).sum()) for a, b in zip(s_nir, s_orig))
        same_onnx = sum(int((ort[f"neuron_{i}"] == s).sum()) for i, s in enumerate(s_orig))
        with torch.no_grad():
            logit_err = float((ort["logits"] - model(xte)).abs().max())
            t_sl = best_time(lambda: model(xte))
            t_imp = best_time(lambda: net(xte))
        t_ort = best_time(lambda: run_onnx(Path(tmp) / "m.onnx", xte))
    print(f"model: test accuracy {acc:.3f} after {args.steps} steps; {n} neuron outputs on "
          f"{xte.shape[1]} test recordings, {int(sum(s.sum() for s in s_orig))} spikes")
    print(f"NIR write+read {t_nir:.2f} s; spikes equal to the folded model: {same_fold}/{n}; "
          f"to the unfolded model: {same_orig}/{n}")
    print(f"ONNX export {t_onnx:.2f} s; onnxruntime spikes equal: {same_onnx}/{n}; max logit "
          f"difference {logit_err:.2e}")
    print(f"inference of the 100 test recordings (T=12): spikeloom {t_sl * 1e3:.1f} ms, "
          f"NIR-imported {t_imp * 1e3:.1f} ms ({t_imp / t_sl:.2f}x), onnxruntime "
          f"{t_ort * 1e3:.1f} ms incl. session creation ({t_ort / t_sl:.2f}x)")


if __name__ == "__main__":
    main()
