"""PNG plots of a run: learning curves, per-layer firing rates and a spike raster."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset

from ..monitor import SpikeMonitor

__all__ = ["plot_run", "plot_curves", "plot_firing_rates", "plot_raster"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_curves(history: list[dict], path: Path) -> None:
    """Loss and accuracy per epoch (train and validation)."""
    plt = _plt()
    ep = [h["epoch"] for h in history]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(ep, [h["train_loss"] for h in history], label="train")
    a1.plot(ep, [h["val_loss"] for h in history], label="validation")
    a1.set(xlabel="epoch", ylabel="loss", title="loss")
    a2.plot(ep, [h["train_acc"] for h in history], label="train")
    a2.plot(ep, [h["val_acc"] for h in history], label="validation")
    a2.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_firing_rates(rates: dict[str, float], path: Path) -> None:
    """Bar chart of spikes per neuron per step for each neuron layer."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(5, 0.8 * len(rates) + 2), 4))
    names = list(rates)
    ax.bar(range(len(names)), [rates[n] for n in names])
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set(ylabel="spikes / neuron / step", title="firing rate per layer (validation)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@torch.no_grad()
def plot_raster(model: nn.Module, x: torch.Tensor, path: Path, max_neurons: int = 200) -> None:
    """Spike raster of one sample ``x`` ``[T, C, ...]`` for every neuron layer (first neurons)."""
    plt = _plt()
    model.eval()
    with SpikeMonitor(model, raster=True, raster_samples=1) as mon:
        model(x.unsqueeze(1))
    rasters = mon.rasters
    fig, axes = plt.subplots(max(len(rasters), 1), 1, figsize=(8, 2 + 1.5 * len(rasters)),
                             squeeze=False)
    for ax, (name, spikes) in zip(axes[:, 0], rasters.items()):
        s = spikes[:, 0].flatten(1)[:, :max_neurons]  # [T, N]
        t_idx, n_idx = torch.nonzero(s, as_tuple=True)
        ax.scatter(t_idx.numpy(), n_idx.numpy(), s=4, marker="|", color="k")
        ax.set(xlim=(-0.5, s.shape[0] - 0.5), ylim=(-1, s.shape[1]),
               ylabel="neuron", title=f"{name} (first {s.shape[1]} neurons)")
    axes[-1, 0].set_xlabel("time step")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_run(run_dir: Path, model: nn.Module, val_ds: Dataset, device: torch.device) -> None:
    """Write ``plots/curves.png``, ``plots/firing_rates.png`` and ``plots/raster.png``."""
    run_dir = Path(run_dir)
    out = run_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    history = _read_metrics(run_dir)
    if history:
        plot_curves(history, out / "curves.png")
        plot_firing_rates(history[-1]["val_firing_rates"], out / "firing_rates.png")
    own = getattr(val_ds, "raster_input", None)  # graph datasets: the model bound to the graph
    if own is not None:
        plot_raster(*own(model, device), out / "raster.png")
        return
    x, _ = val_ds[0]
    plot_raster(model, torch.as_tensor(x).to(device), out / "raster.png")
