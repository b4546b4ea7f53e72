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

__all__ = ["resolve_device", "seed_everything", "build_data", "limit", "dataset_spec",
           "build_model_for", "make_optimizer", "make_schedule", "default_out", "SPLITS"]

SPLITS = ("train", "val", "test")


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA if available else CPU; a CUDA device without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' asked for but no CUDA GPU is available: use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}: use cpu, cuda, cuda:N or auto") from None


def seed_everything(seed: int, deterministic: bool) -> None:
    """Seed Python, numpy and torch; optionally ask for deterministic algorithms."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def _labels(ds: Dataset) -> np.ndarray:
    labels = getattr(ds, "labels", None)
    if labels is None:
        labels = getattr(ds, "targets", None)
    if labels is None:  # read them (slow for file-backed datasets, but correct)
        labels = [ds[i][1] for i in range(len(ds))]
    return np.asarray(labels, dtype=np.int64).reshape(-1)


def limit(ds: Dataset, max_samples: int | None, seed: int) -> tuple[Dataset, str | None]:
    """A seeded, class-stratified subset of at most ``max_samples`` samples.

    Returns:
        the subset (or ``ds`` itself) and a line saying what was taken (``None`` if nothing).
    """
    if max_samples is None or max_samples >= len(ds):
        return ds, None
    from ..datasets.splits import stratified_parts

    labels = _labels(ds)
    frac = max_samples / len(labels)
    keep = stratified_parts(labels, [frac, 1.0 - frac], seed)[0]
    classes, counts = np.unique(labels[keep], return_counts=True)
    per_class = ", ".join(f"{c}: {n}" for c, n in zip(classes.tolist(), counts.tolist()))
    note = (f"{len(keep)} of {len(labels)} samples (seeded, stratified by class; "
            f"per class {per_class})")
    return Subset(ds, keep.tolist()), note


def build_data(cfg: TrainConfig) -> tuple[dict[str, Dataset], list[str]]:
    """The train, val and test datasets of ``cfg`` (each limited to ``max_samples``), and
    lines describing what ``max_samples`` kept."""
    from ..datasets import build_dataset

    cfg.import_modules()
    data, notes = {}, []
    for split in SPLITS:
        try:
            ds = build_dataset(cfg.dataset, split, root=cfg.root, **cfg.dataset_kwargs)
        except TypeError as e:
            raise ConfigError(f"dataset {cfg.dataset!r} rejected its arguments "
                              f"{sorted(cfg.dataset_kwargs)}: {e}") from None
        configure = getattr(ds, "configure", None)  # graph datasets read their batching
        if configure is not None:
            configure(cfg)
        data[split], note = limit(ds, cfg.max_samples, cfg.seed)
        if note:
            notes.append(f"max_samples: {split}: {note}")
    return data, notes


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
    """Build ``cfg.model`` for data described by ``spec`` (``cfg.model_kwargs`` override),
    prepared by the run's training method (``cfg.method``, e.g. DSR swaps the neurons)."""
    from ..methods import METHODS
    from ..models import build_model

    try:
        model = build_model(cfg.model, spec, **cfg.model_kwargs)
    except TypeError as e:
        raise ConfigError(f"model {cfg.model!r} rejected its arguments: {e}") from None
    method = METHODS.get(cfg.method)
    model = method.prepare(model, method.resolve(cfg.method_kwargs))
    if cfg.compress:  # a compressed run (spikeloom compress): rebuild the compressed model
        from ..compress.methods import apply_saved

        model = apply_saved(model, cfg.compress, spec)
    return model


def make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    # a model may scope its weight decay (weight_decay_groups, e.g. SpikingGraphNet's wd_scope)
    params = (model.weight_decay_groups(cfg.weight_decay)
              if hasattr(model, "weight_decay_groups")
              else model.parameters())
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
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
