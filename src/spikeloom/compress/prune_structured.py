"""SNN-aware structured (channel) pruning that returns a smaller dense model.

:func:`prune_channels` removes the output channels (conv) or units (linear) with the smallest
filter norm from every eligible synaptic layer and rebuilds, in place:

* the layer itself with fewer outputs (its bias entries go too);
* every per-channel entry of the layers between it and the next synaptic layer (its
  *consumer*) in the layer walk: norm layers (``BatchNorm``, tdBN: weight, bias, running
  statistics, ``num_features``) and neurons (any parameter or buffer whose first dimension is
  the channel count, e.g. a per-channel threshold or decay; scalar ones are shared and kept);
* the consumer's matching input channels (conv) or input features (a linear layer after a
  flatten: the ``k = in_features / C`` features of each removed channel).

Eligibility (anything else is left unchanged and listed in the result's ``skipped``):
the layer is an ``nn.Conv1d/2d/3d`` (``groups=1``) or ``nn.Linear``, it is not the last synaptic
layer, the layers up to its consumer are norms, neurons, pooling or parameter-free ``other``
layers (attention layers mix channels in their statistics: they stop the chain unless
``through_attention=True``), and its consumer is a conv (``groups=1``) or linear layer.

**Residual blocks** (a model with a ``merge`` layer, :class:`spikeloom.layers.Add`): the channels
entering a residual sum must be pruned consistently on every branch, which the walk order
cannot prove; so in such a model a layer is pruned only when it is the *inner* layer of a
block (the first synaptic layer of a container holding a merge layer, whose consumer is in the
same container: conv1 of a basic block) or when neither its container nor its consumer's holds
a merge layer (e.g. the hidden FC layer after the last block). The others (the stem, a block's
last conv and shortcut) are excluded and listed in ``skipped``. Residual sums must be
:class:`~spikeloom.layers.Add` modules (a ``+`` inside ``forward`` cannot be seen).

The pruned model computes exactly what the unpruned model computes when the consumer's
weights reading the removed channels are zeroed (tested). Fine-tune afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..walk import Layer, iter_layers
from .prune import check_sparsity

__all__ = ["prune_channels", "ChannelPlan", "StructuredResult", "plan_channels"]

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_PASS_ROLES = {"norm", "neuron", "pool"}


@dataclass
class ChannelPlan:
    """One prunable layer: its name, the layers in between and its consumer."""

    name: str
    between: list[Layer]
    consumer: str
    channels: int


@dataclass
class StructuredResult:
    """What :func:`prune_channels` did: ``kept`` channel indices per layer, sizes, skips."""

    kept: dict[str, Tensor] = field(default_factory=dict)
    before: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def table(self) -> str:
        lines = [f"{'layer':<28} {'channels':>9} {'kept':>6}"]
        lines += [f"{n:<28} {self.before[n]:>9} {len(k):>6}" for n, k in self.kept.items()]
        lines += [f"{n:<28} skipped: {why}" for n, why in self.skipped.items()]
        return "\n".join(lines)


def _out_dim(m: nn.Module) -> int | None:
    if isinstance(m, _CONVS) and m.groups == 1:
        return m.out_channels
    if isinstance(m, nn.Linear):
        return m.out_features
    return None


def _is_consumer(m: nn.Module) -> bool:
    return (isinstance(m, _CONVS) and m.groups == 1) or isinstance(m, nn.Linear)


def _parent(name: str) -> str:
    return name.rpartition(".")[0]


def plan_channels(model: nn.Module, through_attention: bool = False
                  ) -> tuple[list[ChannelPlan], dict[str, str]]:
    """Eligible layers (see the module docstring) and the reasons others are skipped."""
    walk = list(iter_layers(model))
    merges = {_parent(ly.name) for ly in walk if ly.role == "merge"}
    syn_idx = [i for i, ly in enumerate(walk) if ly.role == "synapse"]
    plans, skipped = [], {}
    for a, b in zip(syn_idx, syn_idx[1:]):
        s, c = walk[a], walk[b]
        between = walk[a + 1:b]
        why = _why_not(s, c, between, merges, through_attention, walk)
        if why:
            skipped[s.name] = why
        else:
            plans.append(ChannelPlan(s.name, between, c.name, _out_dim(s.module)))  # type: ignore[arg-type]
    if syn_idx:
        skipped[walk[syn_idx[-1]].name] = "last synaptic layer (the output)"
    return plans, skipped


def _why_not(s: Layer, c: Layer, between: list[Layer], merges: set[str],
             through_attention: bool, walk: list[Layer]) -> str:
    if _out_dim(s.module) is None:
        return f"{type(s.module).__name__} is not a Conv (groups=1) or Linear layer"
    if not _is_consumer(c.module):
        return f"its consumer {c.name} ({type(c.module).__name__}) is not a Conv/Linear layer"
    for ly in between:
        ok = ly.role in _PASS_ROLES or (ly.role == "attention" and through_attention) or (
            ly.role == "other" and not any(True for _ in ly.module.parameters()))
        if not ok:
            return f"{ly.name} ({ly.role}) between it and {c.name} mixes or owns channels"
    if merges:
        box = _parent(s.name.removesuffix(".module"))
        first = next((ly.name for ly in walk if ly.role == "synapse"
                      and ly.name.startswith(box + ".")), None) if box in merges else None
        cbox = _parent(c.name.removesuffix(".module"))
        plain = box not in merges and cbox not in merges
        if not (plain or (box in merges and first == s.name and cbox == box)):
            return ("residual model: its output may feed a residual sum (only the first layer "
                    "of a residual block, or layers outside blocks, are pruned)")
    return ""


def _filter_scores(m: nn.Module, criterion: str) -> Tensor:
    w = m.weight.detach().flatten(1)
    return w.abs().sum(1) if criterion == "l1" else w.square().sum(1).sqrt()


@torch.no_grad()
def _shrink_out(m: nn.Module, keep: Tensor) -> nn.Module:
    if isinstance(m, nn.Linear):
        new = nn.Linear(m.in_features, len(keep), m.bias is not None)
    else:
        new = type(m)(m.in_channels, len(keep), m.kernel_size, m.stride, m.padding, m.dilation,
                      1, m.bias is not None, m.padding_mode)
    new = new.to(m.weight.device, m.weight.dtype)
    new.weight.copy_(m.weight[keep])
    if m.bias is not None:
        new.bias.copy_(m.bias[keep])
    return new


@torch.no_grad()
def _shrink_in(m: nn.Module, keep: Tensor, channels: int, name: str) -> nn.Module:
    if isinstance(m, nn.Linear):
        if m.in_features % channels:
            raise ConfigError(f"{name}: in_features {m.in_features} is not a multiple of the "
                              f"{channels} channels feeding it")
        k = m.in_features // channels
        cols = (keep[:, None] * k + torch.arange(k, device=keep.device)).flatten()
        new = nn.Linear(len(cols), m.out_features, m.bias is not None)
        new = new.to(m.weight.device, m.weight.dtype)
        new.weight.copy_(m.weight[:, cols])
    else:
        new = type(m)(len(keep), m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                      1, m.bias is not None, m.padding_mode).to(m.weight.device, m.weight.dtype)
        new.weight.copy_(m.weight[:, keep])
    if m.bias is not None:
        new.bias.copy_(m.bias)
    return new


@torch.no_grad()
def _shrink_channelwise(m: nn.Module, keep: Tensor, channels: int) -> None:
    """Slice every parameter/buffer of ``m`` (and its children) whose dim 0 is ``channels``."""
    for sub in m.modules():
        for store in (sub._parameters, sub._buffers):
            for key, t in list(store.items()):
                if t is not None and t.ndim >= 1 and t.shape[0] == channels and t.numel() > 1:
                    new = t[keep.to(t.device)].clone()
                    store[key] = nn.Parameter(new, t.requires_grad) if isinstance(
                        t, nn.Parameter) else new
        if getattr(sub, "num_features", None) == channels:
            sub.num_features = len(keep)


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)


def prune_channels(model: nn.Module, sparsity: float, criterion: Literal["l1", "l2"] = "l1",
                   layers: Sequence[str] | None = None, exclude: Iterable[str] = (),
                   through_attention: bool = False) -> StructuredResult:
    """Remove ``floor(sparsity · C)`` channels (smallest filter norm) per eligible layer.

    Args:
        model: modified in place (modules are replaced by smaller ones).
        sparsity: fraction of channels removed per layer, in ``[0, 1)``; at least one is kept.
        criterion: ``"l1"`` or ``"l2"`` norm of each output filter.
        layers: prune only these (each must be eligible); ``exclude``: never these.
        through_attention: let chains pass attention layers (their statistics change).

    Returns:
        a :class:`StructuredResult` (kept channel indices, sizes before, skipped with reasons).

    Raises:
        ConfigError: a bad sparsity or criterion, or a named layer that is not eligible.
    """
    sparsity = check_sparsity(sparsity)
    if criterion not in ("l1", "l2"):
        raise ConfigError(f"criterion must be 'l1' or 'l2', got {criterion!r}")
    plans, skipped = plan_channels(model, through_attention)
    by_name = {p.name: p for p in plans}
    if layers is not None:
        bad = {n: skipped.get(n, "not a synaptic layer") for n in layers if n not in by_name}
        if bad:
            raise ConfigError(f"cannot prune channels of {bad}; eligible: {list(by_name)}")
        plans = [by_name[n] for n in layers]
    skip = set(exclude)
    result = StructuredResult(skipped=skipped)
    for p in plans:
        if p.name in skip:
            continue
        m = model.get_submodule(p.name)
        scores = _filter_scores(m, criterion)
        n_keep = max(1, p.channels - math.floor(sparsity * p.channels))
        keep = torch.sort(torch.topk(scores, n_keep).indices).values
        _replace(model, p.name, _shrink_out(m, keep))
        for ly in p.between:
            _shrink_channelwise(model.get_submodule(ly.name), keep, p.channels)
        cons = model.get_submodule(p.consumer)
        _replace(model, p.consumer, _shrink_in(cons, keep, p.channels, p.consumer))
        result.kept[p.name], result.before[p.name] = keep, p.channels
    return result


# --------------------------------------------------------------------------------------------
# `spikeloom compress --method prune-structured`
# --------------------------------------------------------------------------------------------
def _args(p: object) -> None:
    from .methods import add_option

    add_option(p, "--channel-sparsity", type=float, default=0.5,
               help="prune-structured: fraction of channels removed per layer (default 0.5)")
    add_option(p, "--criterion", choices=["l1", "l2"], default="l1",
               help="prune-structured: filter norm that ranks channels")


def _apply(model: nn.Module, args: object, spec: object) -> nn.Module:
    prune_channels(model, args.channel_sparsity, args.criterion)  # type: ignore[attr-defined]
    return model


def _register() -> None:
    from .methods import register_method

    register_method("prune-structured", apply=_apply, add_arguments=_args,
                    description="channel pruning to a smaller dense model")


_register()
