"""Unstructured magnitude pruning: masks as parametrizations, schedules, sparsity report.

* :func:`prune_magnitude` zeroes the smallest ``|w|`` of the weights of synaptic layers
  (``nn.Linear``, ``nn.Conv1d/2d/3d``): ``scope="global"`` ranks all weights together (spec A8:
  exactly ``floor(p·#W)`` weights are removed, ties broken by position), ``"layer"`` prunes
  every layer to ``p``. ``min_keep`` guards small layers under global pruning.
* Masks are :class:`PruneMask` parametrizations (``torch.nn.utils.parametrize``): the
  effective weight is ``original · mask``, so masked weights stay exactly 0 through any
  optimizer step, weight decay or fine-tuning.
* **Checkpoints.** A masked layer's ``state_dict`` looks like the plain layer's (``weight`` =
  the masked weight, zeros included; when other parametrizations such as a quantizer are
  stacked on the weight, the usual parametrization keys are kept instead), so a pruned
  checkpoint loads into an unpruned model of the same architecture (the trainer's resume and
  :func:`spikeloom.train.load_run`).
  Loading a plain state dict into a masked model sets each mask to the non-zero pattern of
  the loaded weight; :func:`restore_masks` re-creates the masks of a fresh model from the exact
  zeros of loaded weights (a kept weight that is exactly 0 is treated as pruned);
  :class:`GradualPruning` does this itself on resume.
* :class:`GradualPruning`: the cubic ramp of Zhu & Gupta (2017)
  ``s_t = s_f + (s_i − s_f)·(1 − (t − t_0)/(t_1 − t_0))³`` as a trainer callback, applied every
  ``every`` optimizer steps; a one-shot schedule is ``start == end``.
* A masked layer gets a cost counter that counts only its remaining synapses: for every
  non-zero input its number of non-zero weights (exact fan-out; ``dense_macs`` unchanged).
* :func:`sparsity_report` lists zeros per layer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ..cost.counters import (
    _conv_dense,
    _conv_step_input,
    _conv_step_output,
    _linear_dense,
    counter_of,
    register_counter,
)
from ..errors import ConfigError
from ..train.callbacks import Callback, StepContext
from ..walk import layers_with_role

__all__ = ["PruneMask", "prunable_layers", "prune_magnitude", "apply_masks", "remove_masks",
           "restore_masks", "masks_of", "GradualPruning", "cubic_sparsity", "sparsity_report",
           "SparsityRow", "check_sparsity"]

_PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class PruneMask(nn.Module):
    """Parametrization ``w -> w · mask`` with a fixed 0/1 mask buffer (no gradient)."""

    def __init__(self, mask: Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.detach().to(torch.bool))

    def forward(self, w: Tensor) -> Tensor:
        return w * self.mask.to(w.dtype)


def check_sparsity(sparsity: float, what: str = "sparsity") -> float:
    """``sparsity`` as a float in ``[0, 1)``, else a :class:`ConfigError`."""
    s = float(sparsity)
    if not 0.0 <= s < 1.0 or math.isnan(s):
        raise ConfigError(f"{what} must be in [0, 1), got {sparsity!r}")
    return s


def prunable_layers(model: nn.Module, layers: Sequence[str] | None = None,
                    exclude: Iterable[str] = ()) -> list[tuple[str, nn.Module]]:
    """The ``(name, module)`` of the synaptic layers whose ``weight`` can be masked.

    Raises:
        ConfigError: a name in ``layers`` that is not a prunable layer (lists the allowed).
    """
    found = [(ly.name, ly.module) for ly in layers_with_role(model, "synapse")
             if isinstance(ly.module, _PRUNABLE)]
    if layers is not None:
        names = dict(found)
        bad = [n for n in layers if n not in names]
        if bad:
            raise ConfigError(f"cannot prune {bad}: not a Linear/Conv layer; choose from "
                              f"{list(names)}")
        found = [(n, names[n]) for n in layers]
    skip = set(exclude)
    return [(n, m) for n, m in found if n not in skip]


def _mask_of(m: nn.Module) -> PruneMask | None:
    if parametrize.is_parametrized(m, "weight"):
        for p in m.parametrizations.weight:
            if isinstance(p, PruneMask):
                return p
    return None


def masks_of(model: nn.Module) -> dict[str, Tensor]:
    """The current masks of ``model`` by layer name."""
    out = {}
    for name, m in model.named_modules():
        pm = _mask_of(m)
        if pm is not None:
            out[name] = pm.mask
    return out


def _save_plain(module: nn.Module, state: dict, prefix: str, meta: Any) -> None:
    """State-dict post-hook: store the masked weight as ``weight`` (a plain layer's keys)."""
    orig = prefix + "parametrizations.weight.original"
    if orig in state and len(module.parametrizations.weight) == 1:  # only the mask
        state.pop(orig)
        for k in [k for k in state if k.startswith(prefix + "parametrizations.weight.")]:
            state.pop(k)
        state[prefix + "weight"] = module.weight.detach()


def _load_plain(module: nn.Module, state: dict, prefix: str, meta: Any, strict: bool,
                missing: list, unexpected: list, errors: list) -> None:
    """Load pre-hook: a plain ``weight`` goes into the original and the mask becomes its
    non-zero pattern (the checkpoint's zeros are the pruned weights)."""
    if prefix + "weight" in state and len(module.parametrizations.weight) == 1:
        w = state.pop(prefix + "weight")
        state[prefix + "parametrizations.weight.original"] = w
        state[prefix + "parametrizations.weight.0.mask"] = w != 0


def apply_masks(model: nn.Module, masks: dict[str, Tensor]) -> None:
    """Put (or update) a :class:`PruneMask` on the ``weight`` of each named layer."""
    for name, mask in masks.items():
        m = model.get_submodule(name)
        if tuple(mask.shape) != tuple(m.weight.shape):
            raise ConfigError(f"{name}: mask shape {tuple(mask.shape)} does not match the weight "
                              f"{tuple(m.weight.shape)}")
        pm = _mask_of(m)
        if pm is not None:
            pm.mask.copy_(mask.to(pm.mask.device, torch.bool))
            continue
        parametrize.register_parametrization(m, "weight", PruneMask(mask.to(m.weight.device)))
        m._prune_hooks = (m.register_state_dict_post_hook(_save_plain),
                          m.register_load_state_dict_pre_hook(_load_plain))
        _register_masked_counter(m)


def remove_masks(model: nn.Module) -> None:
    """Bake the masks into the weights (zeros stay) and remove the parametrizations."""
    for _, m in list(model.named_modules()):
        if _mask_of(m) is not None:
            for h in m.__dict__.pop("_prune_hooks", ()):
                h.remove()
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)


def restore_masks(model: nn.Module, layers: Sequence[str] | None = None) -> dict[str, Tensor]:
    """Masks ``weight != 0`` on the prunable layers that contain exact zeros (after loading a
    pruned checkpoint into a fresh model); returns them."""
    masks = {n: (m.weight.detach() != 0) for n, m in prunable_layers(model, layers)}
    masks = {n: k for n, k in masks.items() if not bool(k.all())}
    apply_masks(model, masks)
    return masks


def _keep_masks(scores: list[Tensor], sparsity: float, scope: str,
                min_keep: int) -> list[Tensor]:
    """Boolean keep-masks: remove the ``floor(p·n)`` smallest scores (globally or per layer)."""
    if scope == "layer":
        out = []
        for s in scores:
            k = min(math.floor(sparsity * s.numel()), s.numel() - min(min_keep, s.numel()))
            keep = torch.ones(s.numel(), dtype=torch.bool, device=s.device)
            keep[torch.argsort(s.flatten(), stable=True)[:k]] = False
            out.append(keep.view_as(s))
        return out
    flat = torch.cat([s.flatten() for s in scores])
    k = math.floor(sparsity * flat.numel())
    keep = torch.ones(flat.numel(), dtype=torch.bool, device=flat.device)
    keep[torch.argsort(flat, stable=True)[:k]] = False
    out = list(torch.split(keep, [s.numel() for s in scores]))
    for i, s in enumerate(scores):  # per-layer guard: keep the min_keep largest
        if min_keep and int(out[i].sum()) < min(min_keep, s.numel()):
            top = torch.topk(s.flatten(), min(min_keep, s.numel())).indices
            out[i] = out[i].clone()
            out[i][top] = True
    return [k.view_as(s) for k, s in zip(out, scores)]


@torch.no_grad()
def prune_magnitude(model: nn.Module, sparsity: float,
                    scope: Literal["global", "layer"] = "global",
                    layers: Sequence[str] | None = None, exclude: Iterable[str] = (),
                    min_keep: int = 0) -> dict[str, Tensor]:
    """Mask the smallest-magnitude weights of ``model``'s synaptic layers (in place).

    Already-masked weights count as 0, so calling it again with a higher sparsity extends the
    masks (gradual pruning). Returns the masks by layer name.

    Raises:
        ConfigError: a sparsity outside ``[0, 1)``, an unknown scope or layer name.
    """
    sparsity = check_sparsity(sparsity)
    if scope not in ("global", "layer"):
        raise ConfigError(f"scope must be 'global' or 'layer', got {scope!r}")
    chosen = prunable_layers(model, layers, exclude)
    if not chosen:
        raise ConfigError("the model has no prunable Linear/Conv layer")
    scores = [m.weight.detach().abs().float() for _, m in chosen]
    keeps = _keep_masks(scores, sparsity, scope, int(min_keep))
    masks = {n: k for (n, _), k in zip(chosen, keeps)}
    apply_masks(model, masks)
    return masks


def cubic_sparsity(step: int, final: float, start: int, end: int, initial: float = 0.0) -> float:
    """Zhu & Gupta's cubic ramp from ``initial`` at ``start`` to ``final`` at ``end``."""
    if step < start:
        return 0.0
    if end <= start or step >= end:
        return final
    frac = (step - start) / (end - start)
    return final + (initial - final) * (1.0 - frac) ** 3


class GradualPruning(Callback):
    """Magnitude pruning on the cubic schedule, as a trainer callback.

    Args:
        final: target sparsity in ``[0, 1)``.
        start, end: optimizer steps (global) where the ramp begins and reaches ``final``;
            ``start == end`` prunes once at ``start`` (one-shot).
        every: prune every this many steps inside the ramp.
        initial: sparsity applied at ``start``.
        scope, layers, exclude, min_keep: as :func:`prune_magnitude`.
    """

    def __init__(self, final: float, start: int = 0, end: int = 0, every: int = 1,
                 initial: float = 0.0, scope: Literal["global", "layer"] = "global",
                 layers: Sequence[str] | None = None, exclude: Iterable[str] = (),
                 min_keep: int = 0) -> None:
        self.final = check_sparsity(final, "final sparsity")
        self.initial = check_sparsity(initial, "initial sparsity")
        if end < start or every < 1:
            raise ConfigError(f"GradualPruning needs start <= end and every >= 1, got "
                              f"start={start}, end={end}, every={every}")
        self.start, self.end, self.every = int(start), int(end), int(every)
        self.scope, self.layers, self.exclude = scope, layers, tuple(exclude)
        self.min_keep = int(min_keep)
        self.current = 0.0
        self._restore = False

    def _restore_once(self, model: nn.Module) -> None:
        """After a resume: re-create the masks from the loaded zeros before the first update."""
        if self._restore:
            restore_masks(model, self.layers)
            self._restore = False

    def after_backward(self, ctx: StepContext) -> None:
        """Restore masks after a resume and zero the gradients under them (the gradient of
        a weight loaded as plain zeros is not masked yet; clipping sees the true norm)."""
        if not self._restore:
            return
        self._restore_once(ctx.model)
        for _, m in ctx.model.named_modules():
            pm = _mask_of(m)
            g = m.parametrizations.weight.original.grad if pm is not None else None
            if g is not None:
                g.mul_(pm.mask.to(g.dtype))

    def after_step(self, ctx: StepContext) -> None:
        self._restore_once(ctx.model)
        step = ctx.global_step
        if step < self.start or (step < self.end and (step - self.start) % self.every):
            return
        s = cubic_sparsity(step, self.final, self.start, self.end, self.initial)
        if s > self.current:
            prune_magnitude(ctx.model, s, self.scope, self.layers, self.exclude, self.min_keep)
            self.current = s

    def state_dict(self) -> dict[str, Any]:
        return {"current": self.current}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.current = float(state.get("current", 0.0))
        self._restore = self.current > 0


# --------------------------------------------------------------------------------------------
# Sparsity report
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SparsityRow:
    """One layer of :func:`sparsity_report`."""

    name: str
    type: str
    params: int
    zeros: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.params if self.params else 0.0


def sparsity_report(model: nn.Module) -> tuple[list[SparsityRow], str]:
    """Per synaptic layer: weights, exact zeros and sparsity; plus a text table with a total."""
    rows = []
    for ly in layers_with_role(model, "synapse"):
        ps = [p.detach() for n, p in _weights(ly.module)]
        if ps:
            rows.append(SparsityRow(ly.name, type(ly.module).__name__.replace("Parametrized", ""),
                                    sum(p.numel() for p in ps), sum(int((p == 0).sum())
                                                                    for p in ps)))
    tot_p, tot_z = sum(r.params for r in rows), sum(r.zeros for r in rows)
    lines = [f"{'layer':<28} {'type':<12} {'weights':>10} {'zeros':>10} {'sparsity':>8}"]
    lines += [f"{r.name:<28} {r.type:<12} {r.params:>10} {r.zeros:>10} {r.sparsity:>8.1%}"
              for r in rows]
    lines.append(f"{'total':<28} {'':<12} {tot_p:>10} {tot_z:>10} "
                 f"{(tot_z / tot_p if tot_p else 0):>8.1%}")
    return rows, "\n".join(lines)


def _weights(m: nn.Module) -> list[tuple[str, Tensor]]:
    """The weight tensors of a synapse (the masked weight of a pruned layer; no biases)."""
    if isinstance(m, _PRUNABLE):
        return [("weight", m.weight)]
    return [(n, p) for n, p in m.named_parameters() if n != "bias" and not n.endswith(".bias")]


# --------------------------------------------------------------------------------------------
# Cost counters of masked layers: only remaining synapses
# --------------------------------------------------------------------------------------------
def _masked_linear_synops(m: nn.Module, nz: Tensor, y: Tensor, cache: dict) -> int:
    per_input = (m.weight.detach() != 0).sum(0).to(torch.int64)  # non-zero fan-out per input
    return int((nz.reshape(-1, m.in_features).sum(0, dtype=torch.int64) * per_input).sum())


def _masked_conv_synops(m: nn.Module, nz: Tensor, y: Tensor, cache: dict) -> int:
    """Spikes × exact fan-out per (channel, position) through the non-zero weights only."""
    d = len(m.kernel_size)
    if nz.ndim == d + 1:
        nz, y = nz.unsqueeze(0), y.unsqueeze(0)
    nzw = (m.weight.detach() != 0).to(torch.float64)
    key = (tuple(nz.shape[1:]), tuple(y.shape[2:]), int(nzw.sum()))
    f = cache.get(key)
    if f is None:
        conv = getattr(F, f"conv{d}d")
        with torch.inference_mode(False), torch.enable_grad():
            x = torch.ones((1, *nz.shape[1:]), dtype=torch.float64, device=nzw.device,
                           requires_grad=True)
            xp, pad = x, m.padding
            if m.padding_mode != "zeros":
                xp, pad = F.pad(x, m._reversed_padding_repeated_twice, mode=m.padding_mode), 0
            out = conv(xp, nzw, None, m.stride, pad, m.dilation, m.groups)
            (g,) = torch.autograd.grad(out.sum(), x)
        f = cache[key] = torch.round(g[0]).to(torch.int64)
    return int((nz.sum(0, dtype=torch.int64) * f).sum())


def _register_masked_counter(m: nn.Module) -> None:
    """Register the remaining-synapse counter for ``m``'s parametrized class (once)."""
    cls = type(m)
    if counter_of(m) is not None and cls in _MASKED_TYPES:
        return
    if isinstance(m, nn.Linear):
        register_counter(cls, dense_macs=_linear_dense, synops=_masked_linear_synops)
    else:
        register_counter(cls, dense_macs=_conv_dense, synops=_masked_conv_synops,
                         step_input=_conv_step_input, step_output=_conv_step_output)
    _MASKED_TYPES.add(cls)


_MASKED_TYPES: set[type] = set()


# --------------------------------------------------------------------------------------------
# `spikeloom compress --method prune`
# --------------------------------------------------------------------------------------------
def _prune_args(p: Any) -> None:
    from .methods import add_option

    add_option(p, "--sparsity", type=float, default=0.8,
               help="prune: fraction of the weights removed, in [0, 1) (default 0.8)")
    add_option(p, "--scope", choices=["global", "layer"], default="global",
               help="prune: rank weights over all layers (global) or per layer")
    add_option(p, "--ramp-steps", type=int, default=0,
               help="prune: 0 = one-shot before fine-tuning; N = cubic ramp over the first N "
                    "fine-tuning steps")


def _prune_apply(model: nn.Module, args: Any, spec: Any) -> nn.Module:
    if int(args.ramp_steps) <= 0:
        prune_magnitude(model, args.sparsity, args.scope)
    else:
        check_sparsity(args.sparsity)
    return model


def _prune_callbacks(args: Any, *_: Any) -> list[Callback]:
    if int(args.ramp_steps) <= 0:
        return []
    return [GradualPruning(args.sparsity, start=1, end=int(args.ramp_steps), scope=args.scope)]


def _register() -> None:
    from .methods import register_method

    register_method("prune", apply=_prune_apply, add_arguments=_prune_args,
                    callbacks=_prune_callbacks,
                    description="unstructured magnitude pruning (one-shot or cubic ramp)")


_register()
