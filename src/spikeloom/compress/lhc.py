"""Learnable Heterogeneous Convolution (LHC; Zhao, Wu, Zhang 2021; spec A6).

:class:`LHCConv2d` learns, next to its weights, a binary *shape* per group of
``g_o × g_i`` kernel slices (which of the ``k×k`` taps exist):

* ``variant="f"`` (LHC-F, free shape): effects ``E ∈ R^{⌈C_out/g_o⌉×⌈C_in/g_i⌉×k×k}``,
  mask ``1[E > 0]``; backward: straight-through with damping (gradient ``g`` where ``|E| < 1``,
  ``0.1·g`` elsewhere);
* ``variant="r"`` (LHC-R, rigid shapes, ``k = 3``): effects over a dictionary of 15 fixed shapes
  (:data:`RIGID_SHAPES`), mask = the shape with the largest effect; backward passes ``g`` where
  ``|E − mean_15(E)| < 1``, else ``0.1·g``.

Group masks are tiled over their ``g_o × g_i`` slices and cropped when ``C % g ≠ 0``;
``y = conv(x, W ⊙ mask) + b``. The training schedule is :class:`LHCSchedule` (a trainer
callback): the mask regulariser ``L_mask = 0.01·FLOPs_kept/FLOPs_all + 0.99·|d_t − density|``
(:func:`mask_loss`; density over the taps of all LHC layers, FLOPs weighted by each layer's
output size) added with the λ warm-up, the mask-enabling warm-up (each output channel uses its
learned mask with probability ``e / n_e``, re-drawn every epoch) and the two stages (coarse:
weights and effects trained; fine: effects frozen).

``effect_scale`` [RECON, not in the paper]: the effects are stored divided by this factor and
multiplied back in the forward, so an adaptive optimizer moves them ``effect_scale`` times
faster than the weights (useful for short fine-tuning; 1 = the paper's parametrisation).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..cost.counters import (
    _conv_dense,
    _conv_step_input,
    _conv_step_output,
    register_counter,
)
from ..errors import ConfigError
from ..train.callbacks import Callback, StepContext
from ..walk import register_role

__all__ = ["LHCConv2d", "RIGID_SHAPES", "mask_loss", "lhc_layers", "LHCSchedule",
           "lhc_report", "LHCRow", "to_lhc", "loss_max"]


def _rigid_shapes() -> Tensor:
    s = torch.zeros(15, 3, 3)
    s[1, 1, 1] = 1                                   # centre
    s[2, 1, :] = 1                                   # horizontal line
    s[3, :, 1] = 1                                   # vertical line
    s[4] = torch.eye(3)                              # diagonal
    s[5] = torch.eye(3).flip(1)                      # anti-diagonal
    for i, (r, c) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        s[6 + i, r:r + 2, c:c + 2] = 1               # 2x2 corner squares
    s[10, :2, :] = 1                                 # top half (2x3)
    s[11, 1:, :] = 1                                 # bottom half
    s[12, :, :2] = 1                                 # left half (3x2)
    s[13, :, 1:] = 1                                 # right half
    s[14] = 1                                        # full
    return s                                         # s[0]: empty


#: the 15 shapes of LHC-R (tap counts 0, 1, 3, 3, 3, 3, 4, 4, 4, 4, 6, 6, 6, 6, 9)
RIGID_SHAPES: Tensor = _rigid_shapes()


class _DampedStep(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, e: Tensor) -> Tensor:
        ctx.save_for_backward(e)
        return (e > 0).to(e.dtype)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Tensor:
        (e,) = ctx.saved_tensors
        return g * torch.where(e.abs() < 1, 1.0, 0.1).to(g.dtype)


class _DampedArgmax(torch.autograd.Function):
    """One-hot argmax over dim 0; backward ``g`` where ``|E − mean(E)| < 1`` else ``0.1·g``."""

    @staticmethod
    def forward(ctx: Any, e: Tensor) -> Tensor:
        ctx.save_for_backward(e)
        return F.one_hot(e.argmax(0), e.shape[0]).movedim(-1, 0).to(e.dtype)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Tensor:
        (e,) = ctx.saved_tensors
        return g * torch.where((e - e.mean(0, keepdim=True)).abs() < 1, 1.0, 0.1).to(g.dtype)


class LHCConv2d(nn.Conv2d):
    """Conv2d with learned grouped kernel shapes (see the module docstring).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, bias: as
            ``nn.Conv2d`` (``groups = 1``).
        variant: ``"f"`` (free shapes) or ``"r"`` (15 rigid shapes; ``kernel_size`` 3).
        group_in, group_out: ``g_i`` and ``g_o`` (slices sharing one shape).
        effect_scale: see the module docstring (default 1).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, padding: int = 1, dilation: int = 1, bias: bool = True,
                 variant: Literal["f", "r"] = "f", group_in: int = 1, group_out: int = 1,
                 effect_scale: float = 1.0) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, 1,
                         bias)
        if variant not in ("f", "r"):
            raise ConfigError(f"LHC variant must be 'f' or 'r', got {variant!r}")
        if variant == "r" and tuple(self.kernel_size) != (3, 3):
            raise ConfigError(f"LHC-R needs 3x3 kernels, got {tuple(self.kernel_size)}")
        if group_in < 1 or group_out < 1 or effect_scale <= 0:
            raise ConfigError(f"LHC groups must be >= 1 and effect_scale > 0, got g_i="
                              f"{group_in}, g_o={group_out}, scale={effect_scale}")
        self.variant, self.group_in, self.group_out = variant, int(group_in), int(group_out)
        self.effect_scale = float(effect_scale)
        go, gi = math.ceil(out_channels / group_out), math.ceil(in_channels / group_in)
        shape = (go, gi, *self.kernel_size) if variant == "f" else (15, go, gi)
        fan_in = gi * math.prod(self.kernel_size) if variant == "f" else 15 * gi
        std = math.sqrt(2.0 / fan_in)  # He normal
        self.effects = nn.Parameter(torch.randn(shape) * std / self.effect_scale)
        self.register_buffer("use_learned", torch.ones(out_channels, dtype=torch.bool))
        self.register_buffer("shapes", RIGID_SHAPES.clone(), persistent=False)
        self.out_hw = None  # (H_out, W_out) of the last forward (for FLOPs)

    def group_mask(self) -> Tensor:
        """The binary mask per group, ``[⌈C_out/g_o⌉, ⌈C_in/g_i⌉, k, k]`` (differentiable)."""
        e = self.effects * self.effect_scale
        if self.variant == "f":
            return _DampedStep.apply(e)
        onehot = _DampedArgmax.apply(e)
        return torch.einsum("sab,sij->abij", onehot, self.shapes.to(e.dtype))

    def mask(self) -> Tensor:
        """Tiled, cropped mask ``[C_out, C_in, k, k]`` with the mask-enabling warm-up."""
        m = self.group_mask().repeat_interleave(self.group_out, 0)
        m = m.repeat_interleave(self.group_in, 1)[: self.out_channels, : self.in_channels]
        return torch.where(self.use_learned[:, None, None, None], m, torch.ones_like(m))

    def forward(self, x: Tensor) -> Tensor:
        y = F.conv2d(x, self.weight * self.mask(), self.bias, self.stride, self.padding,
                     self.dilation)
        self.out_hw = tuple(y.shape[-2:])
        return y

    def freeze_shapes(self, frozen: bool = True) -> None:
        """Fine stage: stop training the effects (masks fixed)."""
        self.effects.requires_grad_(not frozen)

    def extra_repr(self) -> str:
        return (super().extra_repr() + f", variant={self.variant}, g_i={self.group_in}, "
                f"g_o={self.group_out}")


register_role(LHCConv2d, "synapse")


def _lhc_synops(m: LHCConv2d, nz: Tensor, y: Tensor, cache: dict) -> int:
    """Spikes × fan-out through the kept taps only (like a pruned conv)."""
    from .prune import _masked_conv_synops

    class _View:  # the conv geometry with the masked kernel as weight
        kernel_size, stride, padding, dilation = m.kernel_size, m.stride, m.padding, m.dilation
        groups, padding_mode = 1, "zeros"
        weight = (m.weight * m.mask()).detach()

    return _masked_conv_synops(_View(), nz, y, cache)  # type: ignore[arg-type]


register_counter(LHCConv2d, dense_macs=_conv_dense, synops=_lhc_synops,
                 step_input=_conv_step_input, step_output=_conv_step_output)


def lhc_layers(model: nn.Module) -> list[tuple[str, LHCConv2d]]:
    """``(name, layer)`` of every :class:`LHCConv2d` in ``model``."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LHCConv2d)]


def loss_max(d_t: float) -> float:
    """``L_max = 0.01 + 0.99·max(|1 − d_t|, d_t)`` (the regulariser of an all-ones mask)."""
    return 0.01 + 0.99 * max(abs(1 - d_t), d_t)


def mask_loss(layers: Iterable[LHCConv2d], d_t: float) -> Tensor:
    """``0.01·FLOPs_kept/FLOPs_all + 0.99·|d_t − Σm/#m|`` over all LHC layers.

    FLOPs weight each layer's kept taps by its output size ``H_out·W_out`` of the last
    forward (1 before any forward).
    """
    kept = total = taps = n = 0
    for m in layers:
        mk = m.mask()
        hw = math.prod(m.out_hw) if m.out_hw else 1
        s = mk.sum()
        kept, total = kept + s * hw, total + mk.numel() * hw
        taps, n = taps + s, n + mk.numel()
    if n == 0:
        raise ConfigError("mask_loss: the model has no LHC layer")
    return 0.01 * kept / total + 0.99 * (d_t - taps / n).abs()


class LHCSchedule(Callback):
    """The LHC training schedule (spec A6) as a trainer callback.

    Args:
        density: target ``d_t``.
        warmup_epochs: ``n_e = n_r`` (mask enabling and λ warm-up); 0 = no warm-up.
        coarse_epochs: epochs of the coarse stage; afterwards effects are frozen (fine stage).
        scale0: ``L_task / L_max`` scale; ``None`` = measured after epoch 0 (the paper), and
            then λ is 0 during epoch 0.
    """

    def __init__(self, density: float = 0.1, warmup_epochs: int = 20, coarse_epochs: int = 100,
                 scale0: float | None = None) -> None:
        if not 0 < density <= 1:
            raise ConfigError(f"LHC density target must be in (0, 1], got {density}")
        self.density, self.n_w, self.coarse = float(density), int(warmup_epochs), int(coarse_epochs)
        self.scale0 = scale0
        self.epoch = 0

    def lam(self, epoch: int) -> float:
        """``λ(e) = min(e, n_r)·(4/n_r)·scale0`` (``4·scale0`` without warm-up)."""
        if self.scale0 is None:
            return 0.0
        if self.n_w <= 0:
            return 4.0 * self.scale0
        return min(epoch, self.n_w) * (4.0 / self.n_w) * self.scale0

    def _configure(self, model: nn.Module, seed: int) -> None:
        layers = lhc_layers(model)
        p = 1.0 if self.n_w <= 0 else min(self.epoch / self.n_w, 1.0)
        g = torch.Generator().manual_seed(seed * 1000 + self.epoch)
        for _, m in layers:
            draw = torch.rand(m.out_channels, generator=g) < p
            m.use_learned.copy_(draw.to(m.use_learned.device))
            m.freeze_shapes(self.epoch >= self.coarse)

    def after_backward(self, ctx: StepContext) -> None:
        if ctx.step == 0 and ctx.epoch == self.epoch:  # first step of the epoch
            self._configure(ctx.model, int(getattr(ctx.config, "seed", 0) or 0))
        lam = self.lam(self.epoch)
        if lam > 0 and self.epoch < self.coarse:
            (lam * mask_loss([m for _, m in lhc_layers(ctx.model)], self.density)).backward()

    def epoch_end(self, ctx: StepContext) -> None:
        if self.scale0 is None and "train_loss" in ctx.record:
            self.scale0 = float(ctx.record["train_loss"]) / loss_max(self.density)
        self.epoch = ctx.epoch + 1

    def state_dict(self) -> dict[str, Any]:
        return {"scale0": self.scale0, "epoch": self.epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scale0, self.epoch = state.get("scale0"), int(state.get("epoch", 0))


@dataclass(frozen=True)
class LHCRow:
    """Per LHC layer: tap density, FLOPs kept / all, empty-slice (structured) sparsity."""

    name: str
    density: float
    flops_kept: int
    flops_all: int
    empty_slices: float


@torch.no_grad()
def lhc_report(model: nn.Module) -> list[LHCRow]:
    """Density, FLOPs (MACs per sample, from the last forward's output size) and the fraction
    of ``k×k`` kernel slices that are entirely empty, per LHC layer (learned masks)."""
    rows = []
    for name, m in lhc_layers(model):
        g = m.group_mask().repeat_interleave(m.group_out, 0).repeat_interleave(m.group_in, 1)
        mk = g[: m.out_channels, : m.in_channels]
        hw = math.prod(m.out_hw) if m.out_hw else 1
        rows.append(LHCRow(name, float(mk.mean()), int(mk.sum()) * hw, mk.numel() * hw,
                           float((mk.flatten(2).sum(-1) == 0).float().mean())))
    return rows


def to_lhc(model: nn.Module, variant: Literal["f", "r"] = "f", group_in: int = 1,
           group_out: int = 1, skip_first: bool = True, effect_scale: float = 1.0) -> list[str]:
    """Replace ``nn.Conv2d`` layers (``groups=1``; all but the first by default) by
    :class:`LHCConv2d` with the same weights; returns their names."""
    from ..walk import layers_with_role
    from .tensorized.hybrid import replace_module

    convs = [(ly.name, ly.module) for ly in layers_with_role(model, "synapse")
             if type(ly.module) is nn.Conv2d and ly.module.groups == 1
             and not isinstance(ly.module.padding, str)]
    chosen = convs[1:] if skip_first else convs
    for name, c in chosen:
        new = LHCConv2d(c.in_channels, c.out_channels, c.kernel_size[0], c.stride[0],
                        c.padding[0], c.dilation[0], c.bias is not None, variant, group_in,
                        group_out, effect_scale).to(c.weight.device)
        with torch.no_grad():
            new.weight.copy_(c.weight)
            if c.bias is not None:
                new.bias.copy_(c.bias)
        replace_module(model, name, new)
    return [n for n, _ in chosen]


# --------------------------------------------------------------------------------------------
# `spikeloom compress --method lhc`
# --------------------------------------------------------------------------------------------
def _args(p: Any) -> None:
    from .methods import add_option

    add_option(p, "--density", type=float, default=0.1, help="lhc: target tap density d_t")
    add_option(p, "--lhc-variant", choices=["f", "r"], default="f", help="lhc: LHC-F or LHC-R")
    add_option(p, "--lhc-groups", type=int, nargs=2, default=[4, 4], metavar=("G_IN", "G_OUT"),
               help="lhc: input/output slices sharing one shape (default 4 4)")
    add_option(p, "--lhc-warmup", type=int, default=0, help="lhc: warm-up epochs n_e = n_r")
    add_option(p, "--lhc-coarse", type=int, default=1, help="lhc: coarse-stage epochs")
    add_option(p, "--lhc-effect-scale", type=float, default=20.0,
               help="lhc: effect learning-speed factor (see spikeloom.compress.lhc)")


def _apply(model: nn.Module, args: Any, spec: Any) -> nn.Module:
    gi, go = args.lhc_groups
    to_lhc(model, args.lhc_variant, gi, go, effect_scale=args.lhc_effect_scale)
    return model


def _callbacks(args: Any, *_: Any) -> list[Callback]:
    return [LHCSchedule(args.density, args.lhc_warmup, args.lhc_coarse,
                        scale0=None if args.lhc_warmup > 0 else 1.0)]


def _register() -> None:
    from .methods import register_method

    register_method("lhc", apply=_apply, add_arguments=_args, callbacks=_callbacks,
                    description="learnable heterogeneous convolution (spec A6)")


_register()
