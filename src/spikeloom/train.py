"""Training with backpropagation through time (BPTT / STBP), run directories and resuming.

:func:`train` runs one experiment described by a :class:`TrainConfig` and writes a *run
directory*::

    RUN_DIR/
      config.yaml         the full configuration (re-used by --resume, eval and cost)
      metrics.jsonl       one JSON line per epoch (train/val loss, accuracy, firing rates, lr)
      checkpoints/last.pt  state after the last finished epoch (model, optimizer, schedule, RNG)
      checkpoints/best.pt  model with the best validation accuracy (model selection)
      final.json          test metrics of the selected model, evaluated once at the end
      cost.json           hardware-cost report (spikeloom.cost), measured on validation data
      plots/curves.png, plots/firing_rates.png, plots/raster.png

Checkpoints are written atomically (temporary file + ``os.replace``): a kill at any moment
leaves the previous good checkpoint. ``train(resume=RUN_DIR)`` continues from ``last.pt``; the
per-epoch shuffling is seeded by ``(seed, epoch)`` and RNG states are restored, so a resumed run
reaches the same final metrics as an uninterrupted one.

Data-parallel training: launched with ``torchrun --nproc_per_node N``, every process takes an
equal slice of each *global* batch (``batch_size`` is the global batch size), gradients are
averaged by DistributedDataParallel (gloo on CPU, nccl on CUDA) and the loss is weighted so that
the update equals the single-process update on the same global batch (a last global batch
smaller than the number of processes is skipped). Normalisation statistics (BN/tdBN) are
computed per process, as with PyTorch's own DDP. Evaluation is sharded the same way and the
counts are summed over processes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
import yaml
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from .atomic import atomic_write, atomic_write_text
from .neurons import BaseNeuron

__all__ = [
    "TrainConfig",
    "ConfigError",
    "TrainingError",
    "train",
    "evaluate",
    "load_run",
    "collate",
    "compute_loss",
    "firing_rates",
]


class ConfigError(ValueError):
    """A configuration value or key is wrong; the message says which and what to do."""


class TrainingError(RuntimeError):
    """Training cannot continue (e.g. the loss became NaN); the message says what to do."""


LOSSES = ("ce", "per_step_ce", "mse")


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved as ``config.yaml`` in the run directory).

    Attributes:
        dataset: dataset name (see :data:`spikeloom.datasets.DATASETS`).
        root: local folder of the dataset (not used by the built-in ``esdigits``).
        dataset_kwargs: extra keyword arguments of the dataset.
        model: model name (see :data:`spikeloom.models.MODELS`).
        model_kwargs: extra keyword arguments of the model (input size, channels and classes
            are filled in from the data).
        epochs, batch_size: number of epochs; *global* batch size (split over processes).
        optimizer: ``"adamw"`` or ``"sgd"`` (with ``momentum``, Nesterov off).
        lr, weight_decay, momentum: optimiser settings.
        schedule: ``"cosine"`` (per step, to 0 at the end) or ``"none"``.
        grad_clip: max global gradient norm, or ``None``.
        loss: ``"ce"`` (cross-entropy of the time-averaged output, the rate code),
            ``"per_step_ce"`` (cross-entropy at every step, averaged over T) or ``"mse"``
            (spec §1: squared error between the time-averaged output and the one-hot label).
        seed, deterministic: seeds for everything; ``deterministic`` also asks PyTorch for
            deterministic algorithms.
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        threads: CPU threads per process (``None`` = PyTorch's default).
        num_workers: DataLoader worker processes.
        max_samples: use at most this many samples of each split (quick experiments, tests).
        out: run directory (default ``runs/<dataset>-<model>-<time>``).
        progress, plots, cost: show progress bars; write plots; measure the cost report.
        cost_batches: validation batches used to measure firing rates for the cost report.
    """

    dataset: str = "esdigits"
    root: str | None = None
    dataset_kwargs: dict[str, Any] = field(default_factory=dict)
    model: str = "liafnet"
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    schedule: str = "cosine"
    grad_clip: float | None = 1.0
    loss: str = "ce"
    seed: int = 0
    deterministic: bool = False
    device: str = "cpu"
    threads: int | None = None
    num_workers: int = 0
    max_samples: int | None = None
    out: str | None = None
    progress: bool = True
    plots: bool = True
    cost: bool = True
    cost_batches: int = 4

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Build a config, rejecting unknown keys with a message listing the valid ones."""
        if not isinstance(d, dict):
            raise ConfigError(f"a config must be a mapping of key: value, got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(
                f"unknown config key(s): {', '.join(unknown)}. Valid keys: "
                f"{', '.join(sorted(names))}. Fix the spelling or remove them."
            )
        cfg = cls(**d)
        cfg.validate()
        return cfg

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> TrainConfig:
        with open(path) as f:
            data = yaml.safe_load(f) or {}
        try:
            return cls.from_dict(data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    def validate(self) -> None:
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ConfigError(msg)

        need(isinstance(self.epochs, int) and self.epochs >= 1, "epochs must be an integer >= 1")
        need(isinstance(self.batch_size, int) and self.batch_size >= 1,
             "batch_size must be an integer >= 1")
        need(self.optimizer in ("adamw", "sgd"), "optimizer must be 'adamw' or 'sgd'")
        need(self.schedule in ("cosine", "none"), "schedule must be 'cosine' or 'none'")
        need(self.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}")
        need(self.lr > 0 and math.isfinite(self.lr), "lr must be a positive number")
        need(self.grad_clip is None or self.grad_clip > 0, "grad_clip must be > 0 or null")
        need(self.device in ("cpu", "cuda", "auto") or self.device.startswith("cuda:"),
             "device must be 'cpu', 'cuda', 'cuda:N' or 'auto'")
        need(self.max_samples is None or self.max_samples >= 1, "max_samples must be >= 1")
        need(isinstance(self.dataset_kwargs, dict) and isinstance(self.model_kwargs, dict),
             "dataset_kwargs and model_kwargs must be mappings")

    def to_yaml(self, path: Path) -> None:
        atomic_write_text(path, yaml.safe_dump(asdict(self), sort_keys=False))


# --------------------------------------------------------------------------- small utilities


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    atomic_write(path, lambda f: torch.save(obj, f))


def _seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def collate(batch: list[tuple[Tensor, int]]) -> tuple[Tensor, Tensor]:
    """Stack samples ``[T, C, ...]`` into a time-major batch ``[T, B, C, ...]`` and labels."""
    xs, ys = zip(*batch)
    x = torch.stack([torch.as_tensor(a) for a in xs], dim=1)
    return x, torch.as_tensor(ys, dtype=torch.long)


def unwrap(model: nn.Module) -> nn.Module:
    """The user's model inside a DistributedDataParallel (and per-step) wrapper."""
    if isinstance(model, nn.parallel.DistributedDataParallel):
        model = model.module
    return model.inner if isinstance(model, _PerStepWrapper) else model


def firing_rates(model: nn.Module) -> dict[str, float]:
    """Spike rate (spikes per neuron per step) of every neuron layer in the last forward."""
    out = {}
    for name, m in unwrap(model).named_modules():
        if isinstance(m, BaseNeuron) and m.last_spike_rate is not None:
            out[name] = float(m.last_spike_rate)
    return out


def _outputs(model: nn.Module, x: Tensor, per_step: bool) -> Tensor:
    if x.ndim < 3:
        raise ConfigError(
            f"input batch has shape {tuple(x.shape)}; spikeloom models expect [T, B, ...]. "
            "Check that the dataset returns samples shaped [T, C, H, W] (time first)."
        )
    inner = unwrap(model)
    if per_step:
        if not hasattr(inner, "output_per_step"):
            raise ConfigError(f"loss 'per_step_ce' needs a model with output_per_step(); "
                              f"{type(inner).__name__} has none: use loss 'ce'")
        if isinstance(model, nn.parallel.DistributedDataParallel):
            return model(x, per_step=True)
        return inner.output_per_step(x)
    return model(x)


def compute_loss(out: Tensor, y: Tensor, kind: str, reduction: str = "mean") -> Tensor:
    """Loss of outputs ``[B, K]`` (time-averaged) or ``[T, B, K]`` (per step) against labels."""
    if kind == "per_step_ce":
        if out.ndim != 3:
            raise ConfigError("per_step_ce needs per-step outputs [T, B, K]")
        T = out.shape[0]
        loss = F.cross_entropy(out.flatten(0, 1), y.repeat(T), reduction="none")
        loss = loss.view(T, -1).mean(0)
    else:
        rate = out.mean(0) if out.ndim == 3 else out
        if kind == "ce":
            loss = F.cross_entropy(rate, y, reduction="none")
        elif kind == "mse":
            onehot = F.one_hot(y, rate.shape[-1]).to(rate.dtype)
            loss = ((rate - onehot) ** 2).sum(-1)
        else:
            raise ConfigError(f"unknown loss {kind!r}; choose one of {', '.join(LOSSES)}")
    return loss.mean() if reduction == "mean" else loss.sum()


# --------------------------------------------------------------------------- distributed


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_sum(self, values: list[float]) -> list[float]:
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()


def _init_distributed(device: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend)
    return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _global_batches(n: int, batch_size: int, seed: int, epoch: int,
                    shuffle: bool) -> list[np.ndarray]:
    """Index arrays of the global batches of one epoch (same on every process)."""
    if shuffle:
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(n, generator=g).numpy()
    else:
        order = np.arange(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


class _RankBatches(torch.utils.data.Sampler[list[int]]):
    """This process's contiguous slice of every global batch (empty slices are skipped)."""

    def __init__(self, batches: list[np.ndarray], rank: int, world: int) -> None:
        slices = (np.array_split(b, world)[rank].tolist() for b in batches)
        self.batches = [b for b in slices if b]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


# --------------------------------------------------------------------------- building blocks


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' asked for but no CUDA GPU is available: use --device cpu")
    return torch.device(name)


def _limit(ds: Dataset, max_samples: int | None) -> Dataset:
    if max_samples is None or max_samples >= len(ds):
        return ds
    return Subset(ds, list(range(max_samples)))


def build_data(cfg: TrainConfig) -> dict[str, Dataset]:
    from .datasets import build_dataset

    return {
        split: _limit(build_dataset(cfg.dataset, split, root=cfg.root, **cfg.dataset_kwargs),
                      cfg.max_samples)
        for split in ("train", "val", "test")
    }


def _dataset_info(ds: Dataset) -> dict[str, Any]:
    base = ds.dataset if isinstance(ds, Subset) else ds
    x, _ = ds[0]
    x = torch.as_tensor(x)
    if x.ndim < 2:
        raise ConfigError(
            f"dataset samples have shape {tuple(x.shape)}; expected [T, C, ...] (time first)"
        )
    num_classes = getattr(base, "num_classes", None)
    if num_classes is None:
        raise ConfigError(f"{type(base).__name__} has no num_classes attribute")
    return {"T": x.shape[0], "in_channels": x.shape[1], "input_size": tuple(x.shape[2:]),
            "num_classes": int(num_classes)}


def build_model_for(cfg: TrainConfig, info: dict[str, Any]) -> nn.Module:
    """Build ``cfg.model``, filling in input channels/size, classes and T from the data."""
    import inspect

    from .models import MODELS, build_model

    if cfg.model not in MODELS:
        raise ConfigError(f"unknown model {cfg.model!r}; available: {', '.join(sorted(MODELS))}")
    params = inspect.signature(MODELS[cfg.model]).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    derived = dict(info)
    if not derived["input_size"]:  # samples [T, C] (e.g. SHD channels): no spatial size
        derived["input_size"] = None
    kwargs = {}
    for key in ("in_channels", "num_classes", "input_size", "T"):
        if (key in params or accepts_any) and key not in cfg.model_kwargs:
            kwargs[key] = derived[key]
    kwargs.update(cfg.model_kwargs)
    try:
        return build_model(cfg.model, **kwargs)
    except TypeError as e:
        raise ConfigError(f"model {cfg.model!r} rejected its arguments: {e}") from None


def _make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay)


def _make_schedule(cfg: TrainConfig, opt: torch.optim.Optimizer, steps_per_epoch: int):
    if cfg.schedule == "none":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    total = max(1, cfg.epochs * steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
    )


class _PerStepWrapper(nn.Module):
    """Lets DDP route ``per_step=True`` calls to ``output_per_step``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model

    def forward(self, x: Tensor, per_step: bool = False) -> Tensor:
        return self.inner.output_per_step(x) if per_step else self.inner(x)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, loss: str = "ce",
             device: torch.device | str = "cpu", dist_info: _Dist | None = None,
             progress: bool = False, desc: str = "eval") -> dict[str, Any]:
    """Loss, accuracy and per-layer firing rates of ``model`` over ``loader``."""
    from tqdm.auto import tqdm

    dist_info = dist_info or _Dist()
    model.eval()
    tot_loss, correct, n = 0.0, 0.0, 0.0
    rate_sums: dict[str, float] = {}
    batches = 0
    for x, y in tqdm(loader, desc=desc, leave=False, disable=not progress):
        x, y = x.to(device), y.to(device)
        out = _outputs(model, x, per_step=(loss == "per_step_ce"))
        tot_loss += float(compute_loss(out, y, loss, reduction="sum"))
        pred = (out.mean(0) if out.ndim == 3 else out).argmax(-1)
        correct += float((pred == y).sum())
        n += len(y)
        for k, v in firing_rates(model).items():
            rate_sums[k] = rate_sums.get(k, 0.0) + v
        batches += 1
    names = sorted(rate_sums)
    sums = dist_info.all_sum([tot_loss, correct, n, float(batches)]
                             + [rate_sums[k] for k in names])
    tot_loss, correct, n, batches_all = sums[:4]
    rates = {k: v / max(batches_all, 1) for k, v in zip(names, sums[4:])}
    if n == 0:
        raise ConfigError("the evaluation split is empty")
    return {"loss": tot_loss / n, "acc": correct / n, "n": int(n), "firing_rates": rates}


def _loader(ds: Dataset, batches: list[np.ndarray], d: _Dist, cfg: TrainConfig,
            seed: int) -> DataLoader:
    g = torch.Generator().manual_seed(seed)
    return DataLoader(ds, batch_sampler=_RankBatches(batches, d.rank, d.world),
                      collate_fn=collate, num_workers=cfg.num_workers, generator=g,
                      persistent_workers=False)


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
            "python": random.getstate()}


def _set_rng_state(s: dict[str, Any]) -> None:
    torch.set_rng_state(s["torch"])
    np.random.set_state(s["numpy"])
    random.setstate(s["python"])


def _default_out(cfg: TrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.dataset}-{cfg.model}-{stamp}"


# --------------------------------------------------------------------------- the loop


def train(cfg: TrainConfig | None = None, *, resume: str | os.PathLike | None = None,
          stop_after_epochs: int | None = None) -> dict[str, Any]:
    """Train, select on validation, evaluate the selected model once on test.

    Args:
        cfg: the run's configuration (ignored when resuming: the saved one is used).
        resume: a run directory to continue from its last checkpoint.
        stop_after_epochs: stop (as if killed) after this many epochs of *this call*; for
            tests and for splitting long runs. No test evaluation happens then.

    Returns:
        ``final`` metrics (``test_acc``, ``test_loss``, ``best_epoch``, ``best_val_acc``,
        ``train_seconds``, ...), also written to ``RUN_DIR/final.json``; or the last epoch's
        metrics when stopped early.
    """
    from tqdm.auto import tqdm

    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "config.yaml").exists():
            raise ConfigError(f"cannot resume: {run_dir}/config.yaml not found; is it a run dir?")
        cfg = TrainConfig.from_yaml(run_dir / "config.yaml")
    else:
        cfg = cfg or TrainConfig()
        cfg.validate()
        run_dir = Path(cfg.out) if cfg.out else _default_out(cfg)
    device = _resolve_device(cfg.device)
    d = _init_distributed(str(device))
    if d.enabled and device.type == "cuda":
        device = torch.device("cuda", d.local_rank)
    if d.world > cfg.batch_size:
        raise ConfigError(f"batch_size {cfg.batch_size} is the global batch and must be at least "
                          f"the number of processes ({d.world})")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    _seed_everything(cfg.seed, cfg.deterministic)

    data = build_data(cfg)
    info = _dataset_info(data["train"])
    model = build_model_for(cfg, info).to(device)
    opt = _make_optimizer(cfg, model)
    steps_per_epoch = math.ceil(len(data["train"]) / cfg.batch_size)
    sched = _make_schedule(cfg, opt, steps_per_epoch)

    start_epoch, best_val, best_epoch, history = 0, -1.0, -1, []
    ckpt_dir = run_dir / "checkpoints"
    if resume is not None and (ckpt_dir / "last.pt").exists():
        ck = torch.load(ckpt_dir / "last.pt", map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["schedule"])
        start_epoch, best_val, best_epoch = ck["epoch"], ck["best_val_acc"], ck["best_epoch"]
        history = ck["history"]
        _set_rng_state(ck["rng"])
    if d.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg_out = dataclasses.replace(cfg, out=str(run_dir))
        cfg_out.to_yaml(run_dir / "config.yaml")
        # metrics.jsonl always mirrors the checkpoint's history (drops epochs after a kill)
        atomic_write_text(run_dir / "metrics.jsonl",
                           "".join(json.dumps(h) + "\n" for h in history))

    net: nn.Module = model
    if d.enabled:
        wrapped = _PerStepWrapper(model) if hasattr(model, "output_per_step") else model
        net = nn.parallel.DistributedDataParallel(
            wrapped, device_ids=[device.index] if device.type == "cuda" else None
        )
    per_step = cfg.loss == "per_step_ce"
    eval_batches = {s: _global_batches(len(data[s]), cfg.batch_size, cfg.seed, 0, False)
                    for s in ("val", "test")}
    t_start = time.perf_counter()
    epochs_done_here = 0
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        batches = _global_batches(len(data["train"]), cfg.batch_size, cfg.seed, epoch, True)
        if d.enabled:  # every process needs a sample in every step (DDP steps in lockstep)
            batches = [b for b in batches if len(b) >= d.world]
        loader = _loader(data["train"], batches, d, cfg, cfg.seed + epoch)
        sums = [0.0, 0.0, 0.0]  # loss*n, correct, n
        rate_acc, steps = 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                   disable=not (cfg.progress and d.main))
        for i, (x, y) in enumerate(bar):
            x, y = x.to(device), y.to(device)
            global_n = len(batches[i])
            out = _outputs(net, x, per_step)
            loss_sum = compute_loss(out, y, cfg.loss, reduction="sum")
            # DDP averages gradients over processes: scale so the update is sum / global_n
            loss = loss_sum * (d.world / global_n)
            if not torch.isfinite(loss_sum):
                raise TrainingError(
                    f"the loss became {float(loss_sum.detach())} at epoch {epoch + 1}, "
                    f"step {i + 1}. "
                    "Lower the learning rate (--lr), keep gradient clipping on (--grad-clip), "
                    "or check the input data for NaN/inf values."
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            pred = (out.mean(0) if out.ndim == 3 else out).argmax(-1)
            sums[0] += float(loss_sum.detach())
            sums[1] += float((pred == y).sum())
            sums[2] += len(y)
            rates = firing_rates(model)
            rate = sum(rates.values()) / max(len(rates), 1)
            rate_acc += rate
            steps += 1
            bar.set_postfix(loss=f"{sums[0] / sums[2]:.3f}", acc=f"{sums[1] / sums[2]:.3f}",
                            fr=f"{rate:.3f}")
        tot = d.all_sum(sums + [rate_acc, float(steps)])
        val_loader = _loader(data["val"], eval_batches["val"], d, cfg, 0)
        val = evaluate(model, val_loader, cfg.loss, device, d)
        record = {
            "epoch": epoch + 1,
            "train_loss": tot[0] / tot[2],
            "train_acc": tot[1] / tot[2],
            "train_firing_rate": tot[3] / max(tot[4], 1),
            "val_loss": val["loss"],
            "val_acc": val["acc"],
            "val_firing_rates": val["firing_rates"],
            "lr": opt.param_groups[0]["lr"],
            "seconds": time.perf_counter() - t_start,
        }
        history.append(record)
        if val["acc"] > best_val:
            best_val, best_epoch = val["acc"], epoch + 1
            if d.main:
                atomic_torch_save({"model": model.state_dict(), "epoch": epoch + 1,
                                   "val_acc": best_val}, ckpt_dir / "best.pt")
        if d.main:
            atomic_torch_save({
                "model": model.state_dict(), "optimizer": opt.state_dict(),
                "schedule": sched.state_dict(), "epoch": epoch + 1, "best_val_acc": best_val,
                "best_epoch": best_epoch, "history": history, "rng": _rng_state(),
            }, ckpt_dir / "last.pt")
            with open(run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            if cfg.progress:
                print(f"epoch {epoch + 1:3d}/{cfg.epochs}  train loss {record['train_loss']:.4f}"
                      f" acc {record['train_acc']:.4f}  val loss {val['loss']:.4f}"
                      f" acc {val['acc']:.4f}  fr {record['train_firing_rate']:.3f}"
                      f"  [{record['seconds']:.0f}s]", flush=True)
        epochs_done_here += 1
        if stop_after_epochs is not None and epochs_done_here >= stop_after_epochs \
                and epoch + 1 < cfg.epochs:
            if d.enabled:
                dist.barrier()
            return record
    if d.enabled:
        dist.barrier()
    train_seconds = history[-1]["seconds"] if history else 0.0

    # model selection on validation; the test split is evaluated once, here
    best = torch.load(ckpt_dir / "best.pt", map_location=device, weights_only=False)
    model.load_state_dict(best["model"])
    test = evaluate(model, _loader(data["test"], eval_batches["test"], d, cfg, 0), cfg.loss,
                    device, d)
    final = {
        "test_acc": test["acc"], "test_loss": test["loss"], "test_n": test["n"],
        "best_epoch": best_epoch, "best_val_acc": best_val, "epochs": cfg.epochs,
        "train_seconds": train_seconds, "test_firing_rates": test["firing_rates"],
        "world_size": d.world,
    }
    if d.main:
        atomic_write_text(run_dir / "final.json", json.dumps(final, indent=2))
        if cfg.plots:
            from .plots import plot_run

            plot_run(run_dir, model, data["val"], device)
        if cfg.cost:
            report = _cost_report(model, data["val"], cfg, device)
            report.to_json(run_dir / "cost.json")
            if cfg.progress:
                print(report.table())
        if cfg.progress:
            print(f"test accuracy {final['test_acc']:.4f} (model of epoch {best_epoch}, "
                  f"selected on validation acc {best_val:.4f}); run dir: {run_dir}")
    return final


def _cost_report(model: nn.Module, ds: Dataset, cfg: TrainConfig, device: torch.device):
    from .cost import measure_cost

    batches = _global_batches(len(ds), cfg.batch_size, cfg.seed, 0, False)[: cfg.cost_batches]
    loader = DataLoader(ds, batch_sampler=_RankBatches(batches, 0, 1), collate_fn=collate)
    return measure_cost(model, ((x.to(device), y) for x, y in loader))


def load_run(run_dir: str | os.PathLike, which: str = "best",
             device: str = "cpu") -> tuple[TrainConfig, nn.Module, dict[str, Dataset]]:
    """Load a finished (or interrupted) run: its config, model weights and datasets."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise ConfigError(f"{run_dir} is not a run directory (no config.yaml)")
    cfg = TrainConfig.from_yaml(run_dir / "config.yaml")
    ck_path = run_dir / "checkpoints" / f"{which}.pt"
    if not ck_path.exists():
        raise ConfigError(f"{ck_path} not found: the run has no {which!r} checkpoint yet")
    data = build_data(cfg)
    model = build_model_for(cfg, _dataset_info(data["train"])).to(device)
    ck = torch.load(ck_path, map_location=device, weights_only=False)
    model.load_state_dict(ck["model"])
    model.eval()
    return cfg, model, data
