"""The orchestrator: :func:`train` runs one experiment into a run directory.

::

    RUN_DIR/
      config.yaml          the full configuration (re-used by --resume, eval and cost)
      metrics.jsonl        one JSON line per epoch (train/val loss, accuracy, firing rates, lr)
      checkpoints/last.pt  state after the last finished epoch (see :mod:`.checkpoint`)
      checkpoints/best.pt  model with the best validation accuracy (model selection)
      final.json           test metrics of the selected model, evaluated once at the end
      cost.json            hardware-cost report (spikeloom.cost), measured on validation data
      plots/curves.png, plots/firing_rates.png, plots/raster.png

A resumed run continues from ``last.pt``; per-epoch shuffling depends only on ``(seed,
epoch)`` and RNG states are restored, so it reaches the same final metrics as an uninterrupted
run. Under ``torchrun`` the work is split as described in :mod:`.distributed`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset

from ..atomic import atomic_write_text
from ..errors import ConfigError, NonFiniteError, TrainingError
from ..memory import apply_memory_options, validate_memory_options
from .build import (
    build_data,
    build_model_for,
    dataset_spec,
    default_out,
    make_optimizer,
    make_schedule,
    resolve_device,
    seed_everything,
)
from .callbacks import Callback, CallbackList, StepContext
from .checkpoint import ResumeState, load_checkpoint, load_last, save_best, save_last
from .config import TrainConfig
from .distributed import DistInfo, global_batches, init_distributed, make_loader
from .loop import evaluate, train_one_epoch
from .rundir import RunLock, prepare_run_dir
from .steps import STEPS

__all__ = ["train", "TrainResult", "load_run", "cost_report", "RESUMABLE"]


@dataclass(frozen=True)
class TrainResult(Mapping):
    """What :func:`train` returns, whether the run finished or stopped early.

    It reads like the ``final.json`` dict (``result["test_acc"]``) plus ``finished``,
    ``epochs_done``, ``best_epoch``, ``best_val_acc`` and ``run_dir``; test metrics are present
    only when ``finished`` (the test split is evaluated once, at the end).
    """

    finished: bool
    run_dir: str
    epochs_done: int
    best_epoch: int
    best_val_acc: float
    history: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)

    def _view(self) -> dict[str, Any]:
        return {**self.final, "finished": self.finished, "run_dir": self.run_dir,
                "epochs_done": self.epochs_done, "best_epoch": self.best_epoch,
                "best_val_acc": self.best_val_acc}

    def __getitem__(self, key: str) -> Any:
        return self._view()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._view())

    def __len__(self) -> int:
        return len(self._view())


class _Run:
    """The state of one training process between epochs."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, resuming: bool,
                 callbacks: Sequence[Callback]) -> None:
        self.cfg, self.run_dir = cfg, run_dir
        self.lock = RunLock(run_dir)
        self.owns_group = False
        try:
            self._build(resuming, callbacks)
        except BaseException:
            self.close()
            raise

    def _build(self, resuming: bool, callbacks: Sequence[Callback]) -> None:
        cfg, run_dir = self.cfg, self.run_dir
        self._setup_process()
        if self.d.main:  # before any data or model is built: fail fast on a bad --out
            prepare_run_dir(run_dir, self.lock, resuming=resuming, overwrite=cfg.overwrite)
        ok = self.d.all_sum([1.0 if (self.lock.held or not self.d.main) else 0.0])[0]
        if ok < self.d.world:  # pragma: no cover - rank 0 raised already
            raise ConfigError(f"rank 0 could not claim the run directory {run_dir}")
        seed_everything(cfg.seed, cfg.deterministic)
        self.data, notes = build_data(cfg)
        for note in notes:
            self.say(note)
        self.spec = dataset_spec(self.data["train"])
        from ..methods import METHODS

        method = METHODS.get(cfg.method)
        options = method.resolve(cfg.method_kwargs)
        self.step = method.make_step(options) or STEPS.get(self.spec.kind)
        self.model = build_model_for(cfg, self.spec).to(self.device)
        apply_memory_options(self.model, **validate_memory_options(cfg.memory))
        self.opt = make_optimizer(cfg, self.model)
        # the schedule counts optimizer steps (one per accum_steps batches)
        self.sched = make_schedule(cfg, self.opt, math.ceil(
            math.ceil(len(self.data["train"]) / cfg.batch_size) / cfg.accum_steps))
        self.callbacks = CallbackList([*callbacks, *method.make_callbacks(options)])
        self.ckpt_dir = run_dir / "checkpoints"
        self.state = ResumeState()
        if resuming and (self.ckpt_dir / "last.pt").exists():
            self.state, cb_states = load_last(self.ckpt_dir / "last.pt", self.model, self.opt,
                                              self.sched, self.device)
            self.callbacks.load_state_dict(cb_states)
        self.net: nn.Module = self.model
        if self.d.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if cfg.compile:
            self.net = torch.compile(self.net, backend=cfg.compile_backend)
        self.ctx = StepContext(self.model, self.opt, cfg, global_step=self.sched.last_epoch)
        self.eval_batches = {s: global_batches(len(self.data[s]), cfg.batch_size, cfg.seed, 0,
                                               False) for s in ("val", "test")}
        # ``seconds`` count the whole run: continue from the last finished epoch
        done = self.state.history[-1]["seconds"] if self.state.history else 0.0
        self.t_start = time.perf_counter() - done
        if self.d.main:
            self._write_start_files()

    def _setup_process(self) -> None:
        cfg = self.cfg
        self.device = resolve_device(cfg.device)
        self.owns_group = not dist.is_initialized()
        self.d: DistInfo = init_distributed(str(self.device))
        self.owns_group = self.owns_group and dist.is_initialized()
        if self.d.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.d.local_rank)
        if self.d.world > cfg.batch_size:
            raise ConfigError(f"batch_size {cfg.batch_size} is the global batch and must be at "
                              f"least the number of processes ({self.d.world})")
        if cfg.threads:
            torch.set_num_threads(cfg.threads)

    def say(self, text: str) -> None:
        """Print a progress line (main process only, unless ``quiet``)."""
        if self.d.main and not self.cfg.quiet:
            print(text, flush=True)

    def close(self, synchronize: bool = False) -> None:
        """Release the run directory and tear the process group down (every exit path).

        ``synchronize`` (normal completion only: a crashed peer would never arrive) waits for
        every process before the group is destroyed. Without it a process that finished first
        tore its gloo connections down while a peer was still writing results, and the gloo
        worker thread then aborted the process ("terminate called without an active
        exception": 1 of 15 two-process torchrun runs before, 0 of 100 with the barrier).
        """
        self.lock.release()
        if self.owns_group and dist.is_initialized():
            if synchronize:
                dist.barrier()
            dist.destroy_process_group()
            self.owns_group = False

    def _write_start_files(self) -> None:
        dataclasses.replace(self.cfg, out=str(self.run_dir)).to_yaml(self.run_dir / "config.yaml")
        # metrics.jsonl always mirrors the checkpoint's history (drops epochs after a kill)
        atomic_write_text(self.run_dir / "metrics.jsonl",
                          "".join(json.dumps(h) + "\n" for h in self.state.history))

    def _loader(self, split: str, batches: list, seed: int):
        own = getattr(self.data[split], "graph_loader", None)  # graph datasets batch themselves
        if own is not None:
            return own(batches, self.d, seed=seed, cfg=self.cfg)
        return make_loader(self.data[split], batches, self.d, num_workers=self.cfg.num_workers,
                           seed=seed)

    def run_epoch(self, epoch: int) -> dict[str, Any]:
        """Train one epoch, validate, select, checkpoint; returns the epoch's record."""
        from tqdm.auto import tqdm

        cfg, d = self.cfg, self.d
        batches = global_batches(len(self.data["train"]), cfg.batch_size, cfg.seed, epoch, True)
        if d.enabled:  # every process needs a sample in every step (DDP steps in lockstep)
            batches = [b for b in batches if len(b) >= d.world]
        loader = self._loader("train", batches, cfg.seed + epoch)
        self.ctx.epoch, self.ctx.step = epoch, 0

        def bar(it):
            return tqdm(it, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
                        disable=not (cfg.progress and not cfg.quiet and d.main))

        train_m = train_one_epoch(self.net, self.model, loader, [len(b) for b in batches],
                                  self.opt, self.sched, cfg, d, self.device, self.callbacks,
                                  self.ctx, self.step, bar)
        val = evaluate(self.model, self._loader("val", self.eval_batches["val"], 0), cfg.loss,
                       self.device, d, task=self.spec.kind)
        record = {"epoch": epoch + 1, **train_m, "val_loss": val["loss"], "val_acc": val["acc"],
                  "val_firing_rates": val["firing_rates"], "lr": self.opt.param_groups[0]["lr"],
                  "seconds": time.perf_counter() - self.t_start}
        self.ctx.record = record
        self.callbacks.epoch_end(self.ctx)
        self._checkpoint(record)
        return record

    def _checkpoint(self, record: dict[str, Any]) -> None:
        st = self.state
        st.history.append(record)
        st.epoch = record["epoch"]
        improved = record["val_acc"] > st.best_val_acc
        if improved:
            st.best_val_acc, st.best_epoch = record["val_acc"], record["epoch"]
        if not self.d.main:
            return
        if improved:
            save_best(self.ckpt_dir / "best.pt", self.model, st.epoch, st.best_val_acc)
        save_last(self.ckpt_dir / "last.pt", self.model, self.opt, self.sched, st,
                  self.callbacks.state_dict())
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        self.say(f"epoch {st.epoch:3d}/{self.cfg.epochs}  train loss {record['train_loss']:.4f}"
                 f" acc {record['train_acc']:.4f}  val loss {record['val_loss']:.4f}"
                 f" acc {record['val_acc']:.4f}  fr {record['train_firing_rate']:.3f}"
                 f"  [{record['seconds']:.0f}s]")

    def result(self, final: dict[str, Any] | None = None) -> TrainResult:
        st = self.state
        return TrainResult(final is not None, str(self.run_dir), st.epoch, st.best_epoch,
                           st.best_val_acc, list(st.history), dict(final or {}))

    def finish(self) -> TrainResult:
        """Test the model selected on validation once; write final.json, plots, cost."""
        self.d.barrier()
        st, cfg = self.state, self.cfg
        best = load_checkpoint(self.ckpt_dir / "best.pt", self.device)
        self.model.load_state_dict(best["model"])
        test = evaluate(self.model, self._loader("test", self.eval_batches["test"], 0), cfg.loss,
                        self.device, self.d, task=self.spec.kind)
        final = {
            "test_acc": test["acc"], "test_loss": test["loss"], "test_n": test["n"],
            "best_epoch": st.best_epoch, "best_val_acc": st.best_val_acc, "epochs": cfg.epochs,
            "train_seconds": st.history[-1]["seconds"] if st.history else 0.0,
            "test_firing_rates": test["firing_rates"], "world_size": self.d.world,
        }
        if self.d.main:
            self._write_reports(final)
        return self.result(final)

    def _write_reports(self, final: dict[str, Any]) -> None:
        cfg = self.cfg
        atomic_write_text(self.run_dir / "final.json", json.dumps(final, indent=2))
        if cfg.plots:
            from .plots import plot_run

            plot_run(self.run_dir, self.model, self.data["val"], self.device)
        energy = ""
        if cfg.cost:
            report = cost_report(self.model, self.data["val"], cfg, self.device)
            report.to_json(self.run_dir / "cost.json")
            self.say(report.table())
            if math.isfinite(report.ratio):
                energy = (f"; E_ANN/E_SNN = {report.ratio:.2f} (the SNN is "
                          f"{'cheaper' if report.ratio > 1 else 'costlier'} than its ANN twin "
                          "by the cost model)")
        self.say(f"test accuracy {final['test_acc']:.4f} (model of epoch {final['best_epoch']}, "
                 f"selected on validation acc {final['best_val_acc']:.4f}){energy}; run dir: "
                 f"{self.run_dir}")


#: options that may change when a run is resumed (the rest define the run)
RESUMABLE = ("epochs", "progress", "quiet", "plots", "cost", "cost_batches", "threads",
             "num_workers", "device")


def _config_and_dir(cfg: TrainConfig | None, resume: str | os.PathLike | None,
                    overrides: dict[str, Any] | None) -> tuple[TrainConfig, Path]:
    if resume is None:
        if overrides:
            raise ConfigError("overrides are only for resuming; put them in the config")
        cfg = cfg or TrainConfig()
        cfg.validate()
        return cfg, Path(cfg.out) if cfg.out else default_out(cfg)
    run_dir = Path(resume)
    if not (run_dir / "config.yaml").exists():
        raise ConfigError(f"cannot resume: {run_dir}/config.yaml not found; is it a run dir?")
    saved = TrainConfig.from_yaml(run_dir / "config.yaml")
    changes = {k: v for k, v in (overrides or {}).items() if getattr(saved, k) != v}
    fixed = sorted(set(changes) - set(RESUMABLE))
    if fixed:
        raise ConfigError(
            f"cannot change {', '.join(fixed)} when resuming {run_dir}: they define the run "
            f"(what may change: {', '.join(RESUMABLE)}). Start a new run with --out instead."
        )
    if changes.get("epochs", saved.epochs) < saved.epochs:
        raise ConfigError(f"--epochs {changes['epochs']} is fewer than the run's {saved.epochs}")
    cfg = dataclasses.replace(saved, **changes)
    cfg.validate()
    return cfg, run_dir


def _finished(cfg: TrainConfig, run_dir: Path) -> TrainResult | None:
    """The saved result of a resumed run that already reached ``cfg.epochs``, if any."""
    path = run_dir / "final.json"
    if not path.exists():
        return None
    final = json.loads(path.read_text())
    if final.get("epochs") != cfg.epochs:
        return None
    history = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()
               if x.strip()] if (run_dir / "metrics.jsonl").exists() else []
    if not cfg.quiet:
        print(f"{run_dir} is complete ({cfg.epochs} epochs; test accuracy "
              f"{final['test_acc']:.4f}); nothing to do. Pass --epochs N (more than "
              f"{cfg.epochs}) to train further.")
    return TrainResult(True, str(run_dir), cfg.epochs, final["best_epoch"],
                       final["best_val_acc"], history, final)


def train(cfg: TrainConfig | None = None, *, resume: str | os.PathLike | None = None,
          stop_after_epochs: int | None = None, callbacks: Sequence[Callback] = (),
          overrides: dict[str, Any] | None = None) -> TrainResult:
    """Train, select on validation, evaluate the selected model once on test.

    Args:
        cfg: the run's configuration (ignored when resuming: the saved one is used).
        resume: a run directory to continue from its last checkpoint.
        stop_after_epochs: stop (as if killed) after this many epochs of *this call*; for
            tests and for splitting long runs. No test evaluation happens then.
        callbacks: :class:`~spikeloom.train.callbacks.Callback` objects called by the loop
            (pass the same ones again when resuming; their state is restored).
        overrides: with ``resume``, config fields to change; only :data:`RESUMABLE` ones may
            (e.g. more ``epochs``: the cosine schedule then stretches to the new total); any
            other change is refused, never ignored.

    Returns:
        a :class:`TrainResult`: the final metrics (``test_acc``, ``test_loss``,
        ``best_epoch``, ``best_val_acc``, ``train_seconds``, ..., also written to
        ``RUN_DIR/final.json``) when the run finished, or the state so far when stopped early.

    Raises:
        KeyboardInterrupt: after Ctrl-C, with the last checkpoint kept (the CLI prints the
            resume command).
    """
    cfg, run_dir = _config_and_dir(cfg, resume, overrides)
    if resume is not None and (done := _finished(cfg, run_dir)) is not None:
        return done
    run = _Run(cfg, run_dir, resume is not None, callbacks)
    completed = False
    try:
        done_here = 0
        for epoch in range(run.state.epoch, cfg.epochs):
            try:
                run.run_epoch(epoch)
            except NonFiniteError as e:
                raise TrainingError(f"{_layer_name(run.model, e.module)}: {e} (epoch "
                                    f"{epoch + 1}). Check the input data, lower the learning "
                                    "rate or keep gradient clipping on.") from None
            done_here += 1
            if stop_after_epochs is not None and done_here >= stop_after_epochs \
                    and epoch + 1 < cfg.epochs:
                run.d.barrier()
                result = run.result()
                completed = True
                return result
        result = run.finish()
        completed = True
        return result
    finally:
        run.close(synchronize=completed)


def _layer_name(model: nn.Module, module: Any) -> str:
    for name, m in model.named_modules():
        if m is module:
            return f"layer {name!r} ({type(m).__name__})"
    return f"a {type(module).__name__} layer"


def cost_report(model: nn.Module, ds: Dataset, cfg: TrainConfig, device: torch.device | str):
    """Measure :func:`spikeloom.cost.measure_cost` on the first ``cfg.cost_batches`` batches."""
    from ..cost import measure_cost

    own = getattr(ds, "cost_inputs", None)  # graph datasets: the model bound to the graph
    if own is not None:
        bound, inputs = own(model, device)
        return measure_cost(bound, inputs)
    batches = global_batches(len(ds), cfg.batch_size, cfg.seed, 0, False)[: cfg.cost_batches]
    loader = make_loader(ds, batches, DistInfo())
    return measure_cost(model, ((x.to(device), y) for x, y in loader))


def load_run(run_dir: str | os.PathLike, which: str = "best", device: str = "cpu",
             dataset_overrides: Mapping[str, Any] | None = None,
             ) -> tuple[TrainConfig, nn.Module, dict[str, Dataset]]:
    """Load a finished (or interrupted) run: its config, model weights and datasets.

    ``dataset_overrides`` (e.g. ``{"dt_us": 10000, "T": 8}``) change the dataset options of the
    returned datasets only: the model is built for the run's own data, so a model that accepts
    any number of steps is evaluated on frames of another width (the returned config keeps the
    run's options).
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise ConfigError(f"{run_dir} is not a run directory (no config.yaml)")
    cfg = TrainConfig.from_yaml(run_dir / "config.yaml")
    ck_path = run_dir / "checkpoints" / f"{which}.pt"
    if not ck_path.exists():
        raise ConfigError(f"{ck_path} not found: the run has no {which!r} checkpoint yet")
    dev = resolve_device(device)
    data, _ = build_data(cfg)
    model = build_model_for(cfg, dataset_spec(data["train"])).to(dev)
    if dataset_overrides:
        data, _ = build_data(dataclasses.replace(
            cfg, dataset_kwargs={**cfg.dataset_kwargs, **dataset_overrides}))
    ck = load_checkpoint(ck_path, dev)
    model.load_state_dict(ck["model"])
    model.eval()
    return cfg, model, data
