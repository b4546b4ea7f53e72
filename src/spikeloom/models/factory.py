"""Factories shared by the model families: neurons, normalisation layers, sizes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from torch import nn

from ..layers import TdBN
from ..neurons import IF, LIAF, NEURONS, PLIF

__all__ = ["NormKind", "make_neuron_factory", "make_norm", "pair"]

NormKind = Literal["tdbn", "bn"] | None


def make_neuron_factory(
    neuron: str | Callable[..., nn.Module], **params: Any
) -> Callable[[], nn.Module]:
    """Return a zero-argument callable that builds one neuron layer.

    Args:
        neuron: ``"lif"``, ``"liaf"``, ``"if"``, ``"plif"``, or a class/callable taking the
            keyword arguments in ``params``.
        params: keyword arguments for the neuron; entries whose value is ``None`` are dropped
            (the neuron's default applies), and ``activation``/``mode`` are only passed to LIAF.
    """
    if isinstance(neuron, str):
        cls: Callable[..., nn.Module] = NEURONS.get(neuron)
    elif callable(neuron):
        cls = neuron
    else:
        raise TypeError(f"neuron must be a name or a callable, got {type(neuron).__name__}")
    kw = {k: v for k, v in params.items() if v is not None}
    if cls is not LIAF and not (isinstance(cls, type) and issubclass(cls, LIAF)):
        kw.pop("activation", None)
        kw.pop("mode", None)
    if cls is IF or cls is PLIF:  # no fixed decay parameter
        kw.pop("decay", None)
    return lambda: cls(**kw)


def make_norm(kind: NormKind, channels: int, v_th: float, residual: bool = False) -> nn.Module:
    """tdBN (scaled to ``α·V_th``), plain BN (statistics over time, batch, space; no scaling,
    as TA-SNN's BatchNorm2d on ``[B·T, C, H, W]``) or identity."""
    if kind is None or kind == "none":
        return nn.Identity()
    if kind == "tdbn":
        return TdBN(channels, v_th=v_th, residual=residual)
    if kind == "bn":
        return TdBN(channels, alpha=1.0, v_th=1.0)  # == BatchNorm over the folded [T·B, C, ...]
    raise ValueError(f"norm must be 'tdbn', 'bn' or None, got {kind!r}")


def pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)
