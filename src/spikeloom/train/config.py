"""The configuration of a training run (``config.yaml`` in the run directory).

Every field carries its command-line option and help text in its metadata, so
``spikeloom train``'s options are derived from :class:`TrainConfig` (see :func:`cli_fields`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..atomic import atomic_write_text
from ..errors import ConfigError
from .losses import LOSSES

__all__ = ["TrainConfig", "cli_fields", "CliField"]

#: mixed-precision modes of the training forward pass (``TrainConfig.amp``)
AMP_MODES: tuple[str, ...] = ("none", "bf16")


def _opt(default: Any, help: str, *, flag: str | None = None, cli: bool = True,
         factory: Any = None) -> Any:
    meta = {"help": help, "flag": flag, "cli": cli}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Everything that defines a training run.

    Attributes:
        imports: Python modules imported before anything is built, e.g. a module of yours that
            registers a dataset (``spikeloom.datasets.DATASETS.register``), a model
            (``spikeloom.models.register_model``) or a training step; saved in
            ``config.yaml``, so ``--resume``, ``eval`` and ``cost`` import them too.
        dataset: dataset name (see :data:`spikeloom.datasets.DATASETS`).
        root: local folder of the dataset (not used by the built-in ``esdigits``).
        dataset_kwargs: extra keyword arguments of the dataset.
        model: model name (see :data:`spikeloom.models.MODELS`).
        model_kwargs: extra keyword arguments of the model (input size, channels, classes and
            T are derived from the dataset's :class:`~spikeloom.datasets.spec.DataSpec`;
            explicit values here win).
        epochs, batch_size: number of epochs; *global* batch size (split over processes).
        optimizer: ``"adamw"`` or ``"sgd"`` (with ``momentum``, Nesterov off).
        lr, weight_decay, momentum: optimiser settings.
        schedule: ``"cosine"`` (per step, to 0 at the end) or ``"none"``.
        grad_clip: max global gradient norm, or ``None``.
        loss: ``"ce"`` (cross-entropy of the time-averaged output, the rate code),
            ``"per_step_ce"`` (cross-entropy at every step, averaged over T) or ``"mse"``
            (squared error between the time-averaged output and the one-hot label, as in
            STBP: Wu et al. 2018, arXiv:1706.02609).
        seed, deterministic: seeds for everything; ``deterministic`` also asks PyTorch for
            deterministic algorithms.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
        threads: CPU threads per process (``None`` = PyTorch's default).
        num_workers: DataLoader worker processes.
        max_samples: use at most this many samples of each split (quick experiments, tests).
        out: run directory (default ``runs/<dataset>-<model>-<time>``).
        progress, plots, cost: show progress bars; write plots; measure the cost report.
        quiet: print nothing but errors (no bars, epoch lines, results or cost table).
        overwrite: allow a fresh run in a non-empty run directory (its run files are deleted
            first); without it such a run is refused and ``--resume`` is suggested.
        cost_batches: validation batches used to measure firing rates for the cost report.
        memory: training-memory options, results unchanged (:mod:`spikeloom.memory`):
            ``spike_bits`` (save binary synapse inputs as bits) and ``checkpoint``
            (``"none"`` or ``"block"``), e.g. ``{spike_bits: true, checkpoint: block}``.
        amp: mixed precision of the training forward pass: ``"none"`` (fp32) or ``"bf16"``
            (``torch.autocast`` with bfloat16, on CPU and CUDA; evaluation stays fp32).
        accum_steps: gradient accumulation: the optimizer steps once every ``accum_steps``
            batches of ``batch_size`` (an effective batch of ``accum_steps * batch_size``; the
            schedule counts optimizer steps). For a model without batch statistics the update
            equals one batch of ``accum_steps * batch_size`` up to float rounding; batch norm
            still normalises each micro-batch of ``batch_size`` on its own.
        compile: train through ``torch.compile(model)`` (evaluation, checkpoints and the cost
            report use the plain model, which shares the weights).
        compile_backend: ``torch.compile`` backend (``"inductor"``, the default, needs a C++
            compiler; ``"aot_eager"`` traces without generating code).
        method: training method (see :data:`spikeloom.methods.METHODS`): ``"stbp"``
            (surrogate-gradient BPTT, default), ``"dsr"``, ``"joint-asnn"``.
        method_kwargs: options of the training method.
        paper: what a paper reports for this experiment (``{"acc": 0.704, "source": ...}``);
            read by ``spikeloom report``, ignored by training.
        batching, parts, clusters_per_batch, partition, diag_lambda, partition_cache: graph
            datasets only (see :mod:`spikeloom.graph.training`): ``"full"``, ``"cluster"``,
            ``"sage"``, ``"saint"`` or ``"layerwise"`` batching; Cluster-GCN's ``p`` clusters,
            ``q`` clusters per subgraph, the partitioner (``"metis"``/``"lp"``/``"random"``),
            the diagonal-enhancement λ and the folder of the partition cache.
        compress: set by ``spikeloom compress``: ``{method, options, source}`` of the
            compression applied to the model after it is built (see
            :mod:`spikeloom.compress.methods`); empty for an uncompressed run.
    """

    imports: list[str] = _opt(None, "", cli=False, factory=list)
    dataset: str = _opt("esdigits", "dataset name (default esdigits)")
    root: str | None = _opt(None, "local folder of the dataset")
    dataset_kwargs: dict[str, Any] = _opt(None, "", cli=False, factory=dict)
    model: str = _opt("spiking_cnn", "model name (default spiking_cnn)")
    model_kwargs: dict[str, Any] = _opt(None, "", cli=False, factory=dict)
    epochs: int = _opt(10, "number of epochs")
    batch_size: int = _opt(64, "global batch size")
    optimizer: str = _opt("adamw", "adamw or sgd")
    lr: float = _opt(3e-3, "learning rate")
    weight_decay: float = _opt(1e-4, "weight decay")
    momentum: float = _opt(0.9, "SGD momentum")
    schedule: str = _opt("cosine", "cosine or none")
    grad_clip: float | None = _opt(1.0, "max gradient norm (0 = off)")
    loss: str = _opt("ce", "ce, per_step_ce or mse")
    seed: int = _opt(0, "random seed")
    deterministic: bool = _opt(False, "ask PyTorch for deterministic algorithms")
    device: str = _opt("cpu", "cpu, cuda, cuda:N or auto")
    threads: int | None = _opt(None, "CPU threads per process")
    num_workers: int = _opt(0, "DataLoader worker processes", flag="--workers")
    max_samples: int | None = _opt(None, "use at most N samples of each split")
    out: str | None = _opt(None, "run directory")
    progress: bool = _opt(True, "no progress bars (epoch lines and results still print)",
                          flag="--no-progress")
    quiet: bool = _opt(False, "print nothing but errors")
    overwrite: bool = _opt(False, "start a fresh run in a non-empty run directory (its run "
                                  "files are deleted)")
    plots: bool = _opt(True, "do not write plots", flag="--no-plots")
    cost: bool = _opt(True, "do not measure the cost report", flag="--no-cost")
    cost_batches: int = _opt(4, "validation batches for the cost report")
    memory: dict[str, Any] = _opt(None, "", cli=False, factory=dict)
    amp: str = _opt("none", "mixed precision of training: none or bf16 (autocast)")
    accum_steps: int = _opt(1, "gradient accumulation: optimizer step every N batches")
    compile: bool = _opt(False, "train through torch.compile(model)")
    compile_backend: str = _opt("inductor", "torch.compile backend (inductor, aot_eager, ...)")
    method: str = _opt("stbp", "training method: stbp (surrogate BPTT), dsr, joint-asnn")
    method_kwargs: dict[str, Any] = _opt(None, "", cli=False, factory=dict)
    paper: dict[str, Any] = _opt(None, "", cli=False, factory=dict)
    batching: str = _opt("full", "graph datasets: full, cluster (Cluster-GCN), sage "
                                 "(GraphSAGE sampling), saint (GraphSAINT walks) or layerwise "
                                 "(L-GCN)")
    parts: int = _opt(50, "graph, --batching cluster: number of clusters p")
    clusters_per_batch: int = _opt(1, "graph, --batching cluster: clusters q per subgraph "
                                      "(batch_size = clusters per step, a multiple of q)")
    partition: str = _opt("metis", "graph, --batching cluster: metis, lp (fast label "
                                   "propagation) or random")
    diag_lambda: float = _opt(0.0, "graph: diagonal enhancement lambda (models using 'diag')")
    partition_cache: str | None = _opt(None, "graph: partition cache folder (default "
                                             "$SPIKELOOM_CACHE or ~/.cache/spikeloom)")
    fanouts: str = _opt("10,10", "graph, --batching sage: neighbours per node and hop, "
                                 "comma-separated, nearest hop first")
    num_roots: int = _opt(300, "graph, --batching saint: random walks per subgraph")
    walk_length: int = _opt(2, "graph, --batching saint: steps per walk")
    saint_presample: int = _opt(50, "graph, --batching saint: subgraphs pre-sampled for the "
                                    "normalisation")
    layer_epochs: int = _opt(0, "graph, --batching layerwise: epochs per layer (0 = epochs "
                                "split evenly over the layers)")
    compress: dict[str, Any] = _opt(None, "", cli=False, factory=dict)

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

    def coerce_types(self) -> None:
        """Check every field's type; convert numeric strings (``lr: "1e-3"``) to numbers.

        Only what is unambiguous is converted; anything else (``deterministic: "no"``, a list
        for a number) raises :class:`ConfigError` naming the key.
        """
        for f in dataclasses.fields(self):
            setattr(self, f.name, _coerce(f.name, str(f.type), getattr(self, f.name)))

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a YAML file of config keys (errors name the file)."""
        data = read_yaml_mapping(path)
        try:
            return cls.from_dict(data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    def validate(self) -> None:
        """Check every field; raises :class:`ConfigError` naming the first bad one."""

        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ConfigError(msg)

        self.coerce_types()
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
        need(self.threads is None or self.threads >= 1, "threads must be an integer >= 1")
        need(self.num_workers >= 0, "num_workers must be an integer >= 0")
        need(self.cost_batches >= 1, "cost_batches must be an integer >= 1")
        need(self.weight_decay >= 0 and math.isfinite(self.weight_decay),
             "weight_decay must be a number >= 0")
        need(isinstance(self.dataset_kwargs, dict) and isinstance(self.model_kwargs, dict),
             "dataset_kwargs and model_kwargs must be mappings")
        from ..memory import validate_memory_options

        validate_memory_options(self.memory)
        need(self.amp in AMP_MODES, f"amp must be one of {', '.join(AMP_MODES)}, "
                                    f"got {self.amp!r}")
        need(self.accum_steps >= 1, f"accum_steps must be an integer >= 1, got "
                                    f"{self.accum_steps}")
        from ..methods import METHODS

        need(self.method in METHODS,
             f"method must be one of {', '.join(METHODS.names())}, got {self.method!r}")
        METHODS.get(self.method).resolve(self.method_kwargs)
        batchings = ("full", "cluster", "sage", "saint", "layerwise")
        need(self.batching in batchings, f"batching must be one of {', '.join(batchings)}, "
                                         f"got {self.batching!r}")
        from ..graph.batching import parse_fanouts

        parse_fanouts(self.fanouts)
        need(self.num_roots >= 1 and self.walk_length >= 0 and self.saint_presample >= 1,
             "num_roots and saint_presample must be integers >= 1, walk_length >= 0")
        need(self.layer_epochs >= 0, "layer_epochs must be an integer >= 0")
        need(self.parts >= 1 and self.clusters_per_batch >= 1,
             "parts and clusters_per_batch must be integers >= 1")
        need(self.partition in ("metis", "lp", "random"),
             "partition must be 'metis', 'lp' or 'random'")
        need(self.diag_lambda >= 0, "diag_lambda must be >= 0")

    def import_modules(self) -> None:
        """Import :attr:`imports` (their registrations take effect); a missing module is a
        :class:`ConfigError` naming it."""
        import importlib

        for name in self.imports:
            try:
                importlib.import_module(name)
            except ImportError as e:
                raise ConfigError(f"config key 'imports': cannot import {name!r} ({e}); is it "
                                  "installed or on PYTHONPATH?") from None

    def to_yaml(self, path: Path) -> None:
        """Write the config atomically as YAML."""
        atomic_write_text(path, yaml.safe_dump(asdict(self), sort_keys=False))


def read_yaml_mapping(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping in a YAML file; a missing file, a syntax error or a non-mapping is a
    :class:`ConfigError` naming the file."""
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError(f"cannot read the config file {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where else ""
        raise ConfigError(f"{path} is not valid YAML{at}: "
                          f"{getattr(e, 'problem', None) or e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of config keys (key: value lines), "
                          f"got a {type(data).__name__}")
    return data


_NUMBER = {"int": int, "float": float}


def _coerce(name: str, annotation: str, value: Any) -> Any:
    """``value`` checked against a field annotation such as ``"float | None"``."""
    optional = annotation.endswith("| None")
    base = annotation.replace("| None", "").strip()
    if value is None:
        if optional:
            return None
        raise ConfigError(f"config key {name!r} must not be null")
    if base in _NUMBER:
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise ConfigError(f"config key {name!r} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key {name!r} must be a number, got {value!r}")
        if base == "int":
            if not float(value).is_integer():
                raise ConfigError(f"config key {name!r} must be an integer, got {value!r}")
            return int(value)
        return float(value)
    if base == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"config key {name!r} must be true or false, got {value!r}")
        return value
    if base == "str" and not isinstance(value, str):
        raise ConfigError(f"config key {name!r} must be a string, got {value!r}")
    if base.startswith("list") and not (isinstance(value, list)
                                        and all(isinstance(v, str) for v in value)):
        raise ConfigError(f"config key {name!r} must be a list of strings, got {value!r}")
    if base.startswith("dict") and not isinstance(value, dict):
        raise ConfigError(f"config key {name!r} must be a mapping (key: value), got {value!r}")
    return value


@dataclass(frozen=True)
class CliField:
    """A :class:`TrainConfig` field as a command-line option."""

    name: str
    flag: str
    type: type
    help: str
    negates: bool  # a ``--no-X`` switch that sets a True-by-default field to False
    switch: bool  # a plain ``--X`` switch that sets a bool field to True


_SCALARS = {"int": int, "float": float, "str": str, "bool": bool}


def _scalar_type(annotation: str) -> type:
    base = annotation.replace(" | None", "").strip()
    if base not in _SCALARS:
        raise TypeError(f"TrainConfig field of type {annotation!r} has no CLI form")
    return _SCALARS[base]


def cli_fields() -> list[CliField]:
    """The :class:`TrainConfig` fields exposed as ``spikeloom train`` options, in order."""
    out = []
    for f in dataclasses.fields(TrainConfig):
        if not f.metadata.get("cli", True):
            continue
        typ = _scalar_type(str(f.type))
        flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
        negates = typ is bool and flag.startswith("--no-")
        out.append(CliField(f.name, flag, typ, f.metadata.get("help", ""), negates,
                            typ is bool and not negates))
    return out
