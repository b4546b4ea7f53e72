"""One training epoch and one evaluation pass."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..errors import ConfigError, TrainingError
from ..monitor import SpikeMonitor
from .callbacks import CallbackList, StepContext
from .distributed import DistInfo
from .steps import STEPS, TaskStep

__all__ = ["EpochSums", "train_one_epoch", "evaluate", "autocast"]

#: refresh the progress bar (which reads the sums: a device sync) every this many steps
_BAR_EVERY = 10


@dataclass
class EpochSums:
    """Sums over an epoch's batches on this process (tensors: adding does not sync)."""

    loss: Any = 0.0
    correct: Any = 0.0
    n: int = 0
    steps: int = 0

    def add(self, loss_sum: torch.Tensor, correct: torch.Tensor, n: int) -> None:
        self.loss = self.loss + loss_sum.detach()
        self.correct = self.correct + correct
        self.n += n
        self.steps += 1

    def reduce(self, d: DistInfo, extra: list[float] = ()) -> list[float]:
        """``[loss, correct, n, steps, *extra]`` summed over processes (one device sync)."""
        return d.all_sum([float(self.loss), float(self.correct), float(self.n),
                          float(self.steps), *extra])


def autocast(mode: str, device: torch.device) -> Any:
    """The mixed-precision context of :attr:`TrainConfig.amp` (``"none"``: no autocast)."""
    if mode == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def _accum_group(i: int, accum: int, sizes: list[int]) -> tuple[bool, bool, int]:
    """``(first, last, samples)`` of the accumulation group of batch ``i``: whether batch ``i``
    opens it, closes it (the optimizer steps), and the global samples in the whole group."""
    start = i - i % accum
    stop = min(start + accum, len(sizes))
    return i == start, i == stop - 1, sum(sizes[start:stop])


def _optimizer_step(model: nn.Module, opt: torch.optim.Optimizer, sched: Any, cfg: Any,
                    callbacks: CallbackList, ctx: StepContext) -> None:
    """Callbacks, clipping, optimizer and schedule step once the gradients are complete."""
    callbacks.after_backward(ctx)
    if cfg.grad_clip:
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    opt.step()
    sched.step()
    ctx.step, ctx.global_step = ctx.step + 1, ctx.global_step + 1
    callbacks.after_step(ctx)


def train_one_epoch(net: nn.Module, model: nn.Module, loader: DataLoader,
                    global_sizes: list[int], opt: torch.optim.Optimizer, sched: Any, cfg: Any,
                    d: DistInfo, device: torch.device, callbacks: CallbackList,
                    ctx: StepContext, step: TaskStep, bar: Any) -> dict[str, float]:
    """Train ``net`` (``model``, possibly DDP-wrapped or compiled) for one epoch.

    With ``cfg.accum_steps = N`` the gradients of N consecutive batches are summed before one
    optimizer step; each batch's loss is scaled by the global samples of its group, so the
    update is the mean over the group (as for one batch of all its samples). Under DDP the
    gradients are synchronised once per group. ``cfg.amp`` runs the forward pass and loss under
    :func:`autocast`.

    Returns:
        ``{"train_loss", "train_acc", "train_firing_rate"}`` over all processes.
    """
    sums = EpochSums()
    model.train()
    accum = getattr(cfg, "accum_steps", 1)
    with SpikeMonitor(model) as mon:
        for i, batch in enumerate(bar(loader)):
            first, last, group_n = _accum_group(i, accum, global_sizes)
            if first:
                opt.zero_grad(set_to_none=True)
            with autocast(getattr(cfg, "amp", "none"), device):
                out = step(net, batch, cfg.loss, device)
            # DDP averages gradients over processes: scale so the update is sum / global_n
            loss = out.loss_sum * (d.world / group_n)
            if not torch.isfinite(out.loss_sum):
                raise TrainingError(
                    f"the loss became {float(out.loss_sum.detach())} at epoch {ctx.epoch + 1}, "
                    f"step {i + 1}. Lower the learning rate (--lr), keep gradient clipping on "
                    "(--grad-clip), or check the input data for NaN/inf values."
                )
            sync = last or not hasattr(net, "no_sync")
            with nullcontext() if sync else net.no_sync():
                loss.backward()
            sums.add(out.loss_sum, out.correct, out.n)
            if last:
                _optimizer_step(model, opt, sched, cfg, callbacks, ctx)
            if hasattr(bar, "set_postfix") and (i % _BAR_EVERY == 0):
                bar.set_postfix(loss=f"{float(sums.loss) / sums.n:.3f}",
                                acc=f"{float(sums.correct) / sums.n:.3f}",
                                fr=f"{mon.mean_rate():.3f}")
        layer_sums = mon.sums()
    rate_sum = sum(layer_sums.values()) / max(len(layer_sums), 1)  # Σ_steps mean over layers
    loss_t, correct, n, steps, rate_t = sums.reduce(d, [rate_sum])
    return {"train_loss": loss_t / n, "train_acc": correct / n,
            "train_firing_rate": rate_t / max(steps, 1)}


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, loss: str = "ce",
             device: torch.device | str = "cpu", dist_info: DistInfo | None = None,
             progress: bool = False, desc: str = "eval", task: str = "frames") -> dict[str, Any]:
    """Loss, accuracy and per-layer firing rates of ``model`` over ``loader``.

    Args:
        model: the model (put in eval mode).
        loader: batches for this process.
        loss: loss name (see :func:`~spikeloom.train.losses.compute_loss`).
        device: where to run.
        dist_info: process info; sums are reduced over processes.
        progress: show a progress bar.
        desc: its label.
        task: the data kind whose step is used (see :data:`~spikeloom.train.steps.STEPS`).

    Returns:
        ``{"loss", "acc", "n", "firing_rates": {layer: spikes per neuron per step}}``.
    """
    from tqdm.auto import tqdm

    d = dist_info or DistInfo()
    device = torch.device(device)
    step = STEPS.get(task)
    model.eval()
    sums = EpochSums()
    with SpikeMonitor(model) as mon:
        for batch in tqdm(loader, desc=desc, leave=False, disable=not progress):
            out = step(model, batch, loss, device)
            sums.add(out.loss_sum, out.correct, out.n)
        layer_sums = mon.sums()
    names = sorted(layer_sums)
    tot = sums.reduce(d, [layer_sums[k] for k in names])
    loss_t, correct, n, batches = tot[:4]
    if n == 0:
        raise ConfigError("the evaluation split is empty")
    rates = {k: v / max(batches, 1) for k, v in zip(names, tot[4:])}
    return {"loss": loss_t / n, "acc": correct / n, "n": int(n), "firing_rates": rates}

