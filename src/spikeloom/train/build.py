"""Building a run's pieces from its config: device, data, model, optimizer, schedule."""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from ..datasets.spec import DataSpec
from ..errors import ConfigError
from .config import TrainConfig

__all__ = ["resolve_device", "seed_everything", "build_data", "dataset_spec", "build_model_for",
           "make_optimizer", "make_schedule", "default_out", "SPLITS"]

SPLITS = ("train", "val", "test")


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA if available else CPU; a CUDA device without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' asked for but no CUDA GPU is available: use --device cpu")
    return torch.device(name)


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, numpy and torch; optionally ask for deterministic algorithms."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def _limit(ds: Dataset, max_samples: int | None) -> Dataset:
    if max_samples is None or max_samples >= len(ds):
        return ds
    return Subset(ds, list(range(max_samples)))


def build_data(cfg: TrainConfig) -> dict[str, Dataset]:
    """The train, val and test datasets of ``cfg`` (each limited to ``max_samples``)."""
    from ..datasets import build_dataset

    return {
        split: _limit(build_dataset(cfg.dataset, split, root=cfg.root, **cfg.dataset_kwargs),
                      cfg.max_samples)
        for split in SPLITS
    }


def dataset_spec(ds: Dataset) -> DataSpec:
    """The :class:`DataSpec` of a dataset (through ``Subset`` wrappers)."""
    base = ds
    while isinstance(base, Subset):
        base = base.dataset
    spec = getattr(base, "spec", None)
    if not isinstance(spec, DataSpec):
        raise ConfigError(
            f"{type(base).__name__} has no `spec` (a spikeloom.datasets.spec.DataSpec saying "
            "what its samples are); add one to use it with the trainer"
        )
    return spec


def build_model_for(cfg: TrainConfig, spec: DataSpec) -> nn.Module:
    """Build ``cfg.model`` for data described by ``spec`` (``cfg.model_kwargs`` override)."""
    from ..models import build_model

    try:
        return build_model(cfg.model, spec, **cfg.model_kwargs)
    except TypeError as e:
        raise ConfigError(f"model {cfg.model!r} rejected its arguments: {e}") from None


def make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                           weight_decay=cfg.weight_decay)


def make_schedule(cfg: TrainConfig, opt: torch.optim.Optimizer, steps_per_epoch: int):
    """Per-step cosine decay to 0 over the run, or a constant learning rate."""
    if cfg.schedule == "none":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    total = max(1, cfg.epochs * steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
    )


def default_out(cfg: TrainConfig) -> Path:
    """``runs/<dataset>-<model>-<YYYYmmdd-HHMMSS>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{cfg.dataset}-{cfg.model}-{stamp}"
