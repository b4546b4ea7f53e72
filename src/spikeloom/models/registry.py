"""The model registry: names, the data kinds each model accepts, and building from a DataSpec.

Each model family registers itself next to its definition, with the data kinds it accepts and
a function that says which constructor arguments follow from a dataset's
:class:`~spikeloom.datasets.spec.DataSpec`::

    @register_model("liafnet", kinds=("frames",), from_spec=frames_args)
    class LIAFNet(SpikingClassifier): ...

    register_model("seqnet", SeqNet, kinds=("sequence",),
                   from_spec=lambda s: {"channels": s.channels, "num_classes": s.num_classes})

:func:`build_model` fills the derived arguments in and lets explicit keyword arguments override
them. No constructor signature is inspected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ..datasets.spec import DataSpec
from ..errors import ConfigError
from ..registry import Registry

__all__ = ["MODELS", "register_model", "build_model", "frames_args", "count_parameters"]

#: model name -> builder; metadata ``kinds`` (accepted data kinds) and ``from_spec``
MODELS: Registry[Callable[..., nn.Module]] = Registry("model")

SpecArgs = Callable[[DataSpec], dict[str, Any]]


def frames_args(spec: DataSpec) -> dict[str, Any]:
    """Arguments of a frame classifier: ``in_channels``, ``num_classes``, ``input_size``, ``T``
    (``T`` may be ``None``: the model then takes any number of steps)."""
    return {"in_channels": spec.channels, "num_classes": spec.num_classes,
            "input_size": spec.size, "T": spec.T}


def register_model(name: str, builder: Callable[..., nn.Module] | None = None, *,
                   kinds: tuple[str, ...] = ("frames",), from_spec: SpecArgs = frames_args,
                   aliases: tuple[str, ...] = ()) -> Any:
    """Register a model builder (a class or a function returning a module).

    Args:
        name: registry name (case-insensitive, ``-`` == ``_``).
        builder: the class or function; without it, a decorator.
        kinds: data kinds the model accepts (``"frames"``, ``"sequence"``, ``"graph"``).
        from_spec: maps a :class:`DataSpec` to constructor arguments (default
            :func:`frames_args`); it may raise :class:`~spikeloom.errors.ConfigError` when the
            spec lacks something the model needs.
        aliases: other names.
    """

    def add(b: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MODELS.register(name, b, aliases=aliases, kinds=tuple(kinds), from_spec=from_spec)
        return b

    return add if builder is None else add(builder)


def build_model(name: str, spec: DataSpec | None = None, **kwargs: Any) -> nn.Module:
    """Build a registered model.

    Args:
        name: model name (case-insensitive, ``-`` == ``_``).
        spec: what the data looks like; the model's size arguments are derived from it.
        kwargs: constructor arguments (they override the derived ones).

    Raises:
        ValueError: unknown name (listing the registered ones) or a data kind the model does
            not accept (:class:`~spikeloom.errors.ConfigError`).
    """
    entry = MODELS.entry(name)
    if spec is not None:
        if not isinstance(spec, DataSpec):
            raise TypeError(
                f"build_model's second argument is a DataSpec (dataset.spec), got "
                f"{type(spec).__name__}; pass constructor arguments as keywords"
            )
        kinds = entry.meta["kinds"]
        if spec.kind not in kinds:
            raise ConfigError(
                f"model {entry.name!r} accepts data of kind {', '.join(kinds)}, but the dataset "
                f"yields {spec.kind!r}; choose a model for {spec.kind!r} data"
            )
        kwargs = {**entry.meta["from_spec"](spec), **kwargs}
    return entry.obj(**kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
