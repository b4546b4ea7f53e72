"""Second Moment Normalization (SMN) with centred weights (Chen et al., TPAMI; spec A7).

Per channel over (batch, time, space), **without mean subtraction**::

    s = sqrt(mean(x²))          (variant "l2"; "l1": s = mean(|x|))
    y = γ · x / (s + ε) + β

* :class:`SMN` is a drop-in for ``BatchNorm1d/2d`` (input ``[N, C, *]``) and for tdBN
  (``time_major=True``: input ``[T, B, C, *]``, statistics over time and batch as tdBN's). The
  running statistic is an EMA of ``s`` (buffer ``running_s``; momentum as BN); eval mode uses
  it. The "l2" variant has a custom backward (one reduction: ``∂L/∂x_j = (γ/d)·g_j −
  γ·x_j·Σ_i g_i x_i / (d²·M·s)`` with ``d = s + ε``), tested against autograd.
* :class:`CenteredWeight` is the zero-mean weight parametrization (every output filter minus
  its mean over ``(C_in, k, k)``; a linear layer's rows likewise), which keeps pre-activations
  near zero mean so dropping the mean subtraction is harmless.
* :func:`to_smn` swaps every tdBN/BN of a model for SMN and centres the weights of the synapse
  feeding it; :func:`fold_smn` folds an eval-mode SMN into the preceding conv/linear.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ..errors import ConfigError
from ..layers import TdBN
from ..walk import iter_layers, register_role

__all__ = ["SMN", "smn_function", "CenteredWeight", "to_smn", "fold_smn"]


class _SMNFn(torch.autograd.Function):
    """``x [M, C]`` (channels last, rows = all reduced positions) -> ``y``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, gamma: Tensor, beta: Tensor, eps: float) -> Tensor:
        s = x.square().mean(0).sqrt()
        d = s + eps
        ctx.save_for_backward(x, gamma, s, d)
        return x * (gamma / d) + beta

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        x, gamma, s, d = ctx.saved_tensors
        m = x.shape[0]
        gx = (g * x).sum(0)  # the one reduction
        coef = gamma * gx / (d.square() * m * s.clamp_min(torch.finfo(x.dtype).tiny))
        dx = g * (gamma / d) - x * coef
        return dx, gx / d, g.sum(0), None


def smn_function(x: Tensor, gamma: Tensor, beta: Tensor, eps: float = 1e-5) -> Tensor:
    """SMN ("l2") of ``x [M, C]`` with batch statistics and the custom backward."""
    return _SMNFn.apply(x, gamma, beta, eps)


class SMN(nn.Module):
    """Second Moment Normalization (see the module docstring).

    Args:
        num_features: channels ``C``.
        eps: added to ``s`` (outside the square root, as the reference code).
        momentum: EMA factor of ``running_s``.
        affine: learn ``γ`` (``weight``, init ``gamma_init``) and ``β`` (``bias``, init 0).
        time_major: input ``[T, B, C, *]`` (tdBN drop-in) instead of ``[N, C, *]``.
        variant: ``"l2"`` (second moment, custom backward) or ``"l1"`` (``mean|x|``).
        gamma_init: initial ``γ`` (tdBN drop-in: its ``α·V_th``).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, time_major: bool = False,
                 variant: Literal["l2", "l1"] = "l2", gamma_init: float = 1.0) -> None:
        super().__init__()
        if variant not in ("l2", "l1"):
            raise ConfigError(f"SMN variant must be 'l2' or 'l1', got {variant!r}")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.time_major, self.variant = time_major, variant
        w = torch.full((self.num_features,), float(gamma_init))
        self.weight = nn.Parameter(w) if affine else None
        self.bias = nn.Parameter(torch.zeros(self.num_features)) if affine else None
        self.register_buffer("running_s", torch.ones(self.num_features))

    def _gamma_beta(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.weight is None:
            return x.new_ones(self.num_features), x.new_zeros(self.num_features)
        return self.weight, self.bias

    def forward(self, x: Tensor) -> Tensor:
        cdim = 2 if self.time_major else 1
        if x.ndim <= cdim or x.shape[cdim] != self.num_features:
            raise ValueError(f"SMN({self.num_features}) expects channels at dim {cdim}, got "
                             f"{tuple(x.shape)}")
        xc = x.movedim(cdim, -1)
        flat = xc.reshape(-1, self.num_features)
        gamma, beta = self._gamma_beta(x)
        if self.training:
            if self.variant == "l2":
                y = smn_function(flat, gamma, beta, self.eps)
                s = flat.detach().square().mean(0).sqrt()
            else:
                s_g = flat.abs().mean(0)
                y = flat * (gamma / (s_g + self.eps)) + beta
                s = s_g.detach()
            with torch.no_grad():
                self.running_s.mul_(1 - self.momentum).add_(self.momentum * s)
        else:
            y = flat * (gamma / (self.running_s + self.eps)) + beta
        return y.reshape(xc.shape).movedim(-1, cdim)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"time_major={self.time_major}, variant={self.variant}")


register_role(SMN, "norm")


class CenteredWeight(nn.Module):
    """Parametrization ``W_o ← W_o − mean(W_o)`` over all but the output dimension."""

    def forward(self, w: Tensor) -> Tensor:
        return w - w.mean(dim=tuple(range(1, w.ndim)), keepdim=True)


def _norm_to_smn(norm: nn.Module) -> SMN:
    """An SMN with the norm's channels, ε, momentum and affine values (tdBN: ``γ = λ·α·V_th``
    in its ``"fixed"`` scale mode, so the layer starts with the same output scale)."""
    tdbn = isinstance(norm, TdBN)
    k = norm.alpha * norm.v_th if tdbn and norm.scale_mode == "fixed" else 1.0
    new = SMN(norm.num_features, eps=norm.eps, momentum=norm.momentum or 0.1,
              affine=norm.affine, time_major=tdbn, gamma_init=k)
    if norm.affine:
        with torch.no_grad():
            new.weight.copy_(norm.weight * k)
            new.bias.copy_(norm.bias)
    return new.to(next(iter(norm.buffers()), torch.empty(0)).device)


def to_smn(model: nn.Module, center: bool = True) -> list[str]:
    """Replace every ``TdBN`` / ``BatchNorm1d/2d`` by :class:`SMN` (in place) and put a
    :class:`CenteredWeight` on the synapse right before each (layer walk order); returns the
    replaced norm names. ``BatchNorm`` inside a ``TimeDistributed`` keeps its layout."""
    from .tensorized.hybrid import replace_module

    done, last_syn = [], None
    for ly in list(iter_layers(model)):
        if ly.role == "synapse":
            last_syn = ly.module
        if ly.role != "norm" or not isinstance(ly.module, (TdBN, nn.BatchNorm1d, nn.BatchNorm2d)):
            continue
        replace_module(model, ly.name, _norm_to_smn(ly.module))
        if center and isinstance(last_syn, (nn.Conv2d, nn.Conv1d, nn.Linear)) and not \
                parametrize.is_parametrized(last_syn, "weight"):
            parametrize.register_parametrization(last_syn, "weight", CenteredWeight())
        done.append(ly.name)
    return done


@torch.no_grad()
def fold_smn(layer: nn.Module, smn: SMN) -> nn.Module:
    """A plain ``nn.Conv1d/2d`` / ``nn.Linear`` equal to ``smn(layer(x))`` in eval mode
    (weight centring included)."""
    w = layer.weight.detach()  # the centred weight when parametrized
    if smn.num_features != w.shape[0]:
        raise ConfigError(f"fold_smn: SMN has {smn.num_features} channels, the layer "
                          f"{w.shape[0]} outputs")
    gamma = smn.weight if smn.weight is not None else torch.ones_like(smn.running_s)
    beta = smn.bias if smn.bias is not None else torch.zeros_like(smn.running_s)
    scale = gamma / (smn.running_s + smn.eps)
    if isinstance(layer, nn.Linear):
        new = nn.Linear(layer.in_features, layer.out_features)
    elif isinstance(layer, (nn.Conv1d, nn.Conv2d)):
        new = type(layer).__mro__[1] if parametrize.is_parametrized(layer) else type(layer)
        new = new(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                  layer.padding, layer.dilation, layer.groups, True, layer.padding_mode)
    else:
        raise ConfigError(f"fold_smn: cannot fold into {type(layer).__name__}")
    new = new.to(w.device, w.dtype)
    new.weight.copy_(w * scale.view(-1, *([1] * (w.ndim - 1))))
    b = layer.bias.detach() if layer.bias is not None else torch.zeros_like(scale)
    new.bias.copy_(b * scale + beta)
    return new


# --------------------------------------------------------------------------------------------
# `spikeloom compress --method smn`
# --------------------------------------------------------------------------------------------
def _apply(model: nn.Module, args: Any, spec: Any) -> nn.Module:
    to_smn(model)
    return model


def _register() -> None:
    from .methods import register_method

    register_method("smn", apply=_apply,
                    description="second moment normalization + centred weights (spec A7)")


_register()
