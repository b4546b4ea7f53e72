"""Checkpoints: atomic saves, the resume state and RNG state.

``checkpoints/last.pt`` holds everything needed to continue a run exactly (model, optimizer,
schedule, epoch, best validation accuracy, history, RNG states, callback states);
``checkpoints/best.pt`` holds the model selected on validation. Both are written atomically
(temporary file + ``os.replace``): a kill at any moment leaves the previous good file.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_write
from ..errors import ConfigError

__all__ = ["atomic_torch_save", "load_checkpoint", "rng_state", "set_rng_state", "ResumeState",
           "save_last", "load_last", "save_best"]


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename over ``path``."""
    atomic_write(path, lambda f: torch.save(obj, f))


def rng_state() -> dict[str, Any]:
    """The torch, numpy and Python RNG states."""
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
            "python": random.getstate()}


def set_rng_state(s: dict[str, Any]) -> None:
    """Restore states from :func:`rng_state`."""
    torch.set_rng_state(s["torch"])
    np.random.set_state(s["numpy"])
    random.setstate(s["python"])


@dataclass
class ResumeState:
    """Where a run stands after its last finished epoch."""

    epoch: int = 0  # epochs finished
    best_val_acc: float = -1.0
    best_epoch: int = -1
    history: list[dict[str, Any]] = field(default_factory=list)


def save_last(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any,
              state: ResumeState, callbacks: dict[str, Any]) -> None:
    atomic_torch_save({
        "model": model.state_dict(), "optimizer": opt.state_dict(),
        "schedule": sched.state_dict(), "epoch": state.epoch,
        "best_val_acc": state.best_val_acc, "best_epoch": state.best_epoch,
        "history": state.history, "rng": rng_state(), "callbacks": callbacks,
    }, path)


def load_checkpoint(path: Path, device: torch.device | str) -> dict[str, Any]:
    """``torch.load`` a checkpoint; a damaged or truncated file is a :class:`ConfigError`
    naming the file and what to do."""
    other = "best.pt" if Path(path).name == "last.pt" else "last.pt"
    try:
        ck = torch.load(path, map_location=device, weights_only=False)
    except FileNotFoundError:
        raise ConfigError(f"{path} not found") from None
    except Exception as e:  # torch raises RuntimeError, EOFError, UnpicklingError, ...
        raise ConfigError(
            f"{path} is damaged or truncated ({type(e).__name__}: {e}). Use the other "
            f"checkpoint ({other}) if it is intact, or start the run over with --overwrite."
        ) from None
    if not isinstance(ck, dict) or "model" not in ck:
        raise ConfigError(f"{path} is not a spikeloom checkpoint (no 'model' entry)")
    return ck


def load_last(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, sched: Any,
              device: torch.device) -> tuple[ResumeState, dict[str, Any]]:
    """Restore model, optimizer, schedule and RNG from ``last.pt``; returns the run state and
    the callbacks' saved states."""
    ck = load_checkpoint(path, device)
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    sched.load_state_dict(ck["schedule"])
    set_rng_state(ck["rng"])
    state = ResumeState(ck["epoch"], ck["best_val_acc"], ck["best_epoch"], ck["history"])
    return state, ck.get("callbacks", {})


def save_best(path: Path, model: torch.nn.Module, epoch: int, val_acc: float) -> None:
    atomic_torch_save({"model": model.state_dict(), "epoch": epoch, "val_acc": val_acc}, path)
