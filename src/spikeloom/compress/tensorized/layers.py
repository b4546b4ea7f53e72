"""TT / HT linear and conv layers (spec A4), their layer role and their cost counters.

* :class:`TTLinear`, :class:`HTLinear`: ``y = W x + b`` with ``W`` in TT / HT format. Two
  forward paths (``forward_path``): ``"contract"`` (default; contract the reshaped input with
  the factors one at a time, never building ``W``) and ``"reconstruct"`` (build ``W``, then
  ``x @ W.T``). They agree to rounding (tested).
* :class:`TTConv2d`, :class:`HTConv2d`: kernel ``K ∈ R^{S×C×ℓ×ℓ}`` with channel modes
  ``C = Π c_k``, ``S = Π s_k`` and one spatial mode ``ℓ²`` placed first (TT: the spatial core
  ``G_0 ∈ R^{ℓ²×r_0}`` of Garipov et al. 2016; HT: the spatial leaf). ``"reconstruct"``
  (default) builds ``K`` and calls ``conv2d``; ``"contract"`` unfolds the input patches and
  contracts them with the factors.

Initialisation is variance-matched (spec A4 [RECON]): reconstructed entries have the He
variance ``2 / fan_in`` unless ``target_var`` is given. ``from_dense`` builds a layer from a
trained ``nn.Linear`` / ``nn.Conv2d`` by TT-SVD / hierarchical SVD.

Cost counters (:func:`spikeloom.cost.register_counter`): ``dense_macs`` is the dense
equivalent (the ``nn.Linear``/``nn.Conv2d`` of the same shape). Linear layers report
``synops`` as the real operations of the forward path: ``contract`` gives
``(non-zero inputs × fan-out of the first factor, the MACs of the remaining contraction
steps)``; ``reconstruct`` gives the dense fan-out of the non-zero inputs (as ``nn.Linear``).
Conv layers count the convolution with the reconstructed kernel (as ``nn.Conv2d``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from ...cost.counters import (
    _conv_dense,
    _conv_step_input,
    _conv_step_output,
    _conv_synops,
    register_counter,
)
from ...errors import ConfigError
from ...walk import register_role
from ._modes import factorize, mode_pair
from .decompose import load_dense
from .ht import HTMatrix
from .tt import TTMatrix, tt_max_ranks

__all__ = ["TTLinear", "HTLinear", "TTConv2d", "HTConv2d", "TensorLinear", "TensorConv2d",
           "clamp_ranks"]

Path = Literal["contract", "reconstruct"]
_PATHS = ("contract", "reconstruct")


def _format(kind: str, out_modes: list[int], in_modes: list[int], ranks: int | Sequence[int],
            var: float, name: str) -> TTMatrix | HTMatrix:
    cls = TTMatrix if kind == "tt" else HTMatrix
    return cls(out_modes, in_modes, ranks, target_var=var, name=name)


def clamp_ranks(kind: str, out_modes: list[int], in_modes: list[int], rank: int) -> list[int]:
    """Per-edge ranks ``min(rank, full rank of the edge)`` (HT: also ``<= r_l·r_r``)."""
    if kind == "tt":
        return [min(rank, b) for b in tt_max_ranks(out_modes, in_modes)]
    probe = HTMatrix(out_modes, in_modes, 1)
    r = [min(rank, b) for b in probe.max_ranks()]
    for nd in probe.nodes[:-1]:
        if not nd.is_leaf:
            r[nd.index] = min(r[nd.index], r[nd.children[0].index] * r[nd.children[1].index])
    return r


def _check_path(name: str, path: str) -> str:
    if path not in _PATHS:
        raise ConfigError(f"{name}: forward_path must be one of {_PATHS}, got {path!r}")
    return path


class TensorLinear(nn.Module):
    """Linear layer with a TT or HT weight (base of :class:`TTLinear` / :class:`HTLinear`).

    Args:
        in_features, out_features: ``N`` and ``M``.
        in_modes, out_modes: factorisations of ``N`` and ``M`` (same length ``d``); ``None``:
            :func:`~spikeloom.compress.tensorized._modes.factorize` into ``d`` factors.
        ranks: one int (every edge) or a list (TT: ``d − 1``; HT: one per non-root node).
        d: number of modes when the modes are not given (default 3).
        bias: learn a bias.
        forward_path: ``"contract"`` (default) or ``"reconstruct"``.
        target_var: variance of the reconstructed entries (default He ``2 / N``).
        name: layer name used in error messages.

    Shapes:
        input ``[..., N]`` -> output ``[..., M]``.
    """

    kind = "tt"

    def __init__(self, in_features: int, out_features: int, in_modes: Sequence[int] | None = None,
                 out_modes: Sequence[int] | None = None, ranks: int | Sequence[int] = 8,
                 d: int = 3, bias: bool = True, forward_path: Path = "contract",
                 target_var: float | None = None, name: str | None = None) -> None:
        super().__init__()
        name = name or type(self).__name__
        self.in_features, self.out_features = int(in_features), int(out_features)
        n, m = mode_pair(name, self.in_features, self.out_features, in_modes, out_modes, d)
        var = 2.0 / self.in_features if target_var is None else float(target_var)
        self.forward_path = _check_path(name, forward_path)
        self.matrix = _format(self.kind, m, n, ranks, var, name)
        self.bias = nn.Parameter(torch.zeros(self.out_features)) if bias else None

    @property
    def weight_matrix(self) -> Tensor:
        """The reconstructed dense ``M×N`` weight."""
        return self.matrix.weight()

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"{type(self).__name__} expects [..., {self.in_features}] input, got "
                             f"{tuple(x.shape)}")
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.in_features)
        if self.forward_path == "contract":
            y = self.matrix.contract(flat)
        else:
            y = flat @ self.matrix.weight().T
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, self.out_features)

    @classmethod
    def from_dense(cls, linear: nn.Linear, ranks: int | Sequence[int] = 8, d: int = 3,
                   in_modes: Sequence[int] | None = None, out_modes: Sequence[int] | None = None,
                   forward_path: Path = "contract", name: str | None = None) -> TensorLinear:
        """Decompose a trained ``nn.Linear`` (ranks clamped to each edge's full rank)."""
        n = list(in_modes) if in_modes is not None else factorize(linear.in_features, d)
        m = list(out_modes) if out_modes is not None else factorize(linear.out_features, d)
        if isinstance(ranks, int) and len(n) == len(m):
            ranks = clamp_ranks(cls.kind, m, n, ranks)
        layer = cls(linear.in_features, linear.out_features, n, m, ranks,
                    bias=linear.bias is not None, forward_path=forward_path, name=name)
        load_dense(layer.matrix, linear.weight)
        if linear.bias is not None:
            with torch.no_grad():
                layer.bias.copy_(linear.bias)
        return layer.to(linear.weight.dtype)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"path={self.forward_path}, params={sum(p.numel() for p in self.parameters())}")


class TTLinear(TensorLinear):
    """:class:`TensorLinear` in tensor-train format."""

    kind = "tt"


class HTLinear(TensorLinear):
    """:class:`TensorLinear` in hierarchical Tucker format."""

    kind = "ht"


class TensorConv2d(nn.Module):
    """2-d convolution with a TT or HT kernel (base of :class:`TTConv2d` / :class:`HTConv2d`).

    The kernel is the matrix with output modes ``[1, s_1..s_d]`` and input modes
    ``[ℓ·ℓ, c_1..c_d]`` (spatial mode first), ``groups = 1``, zero padding.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, bias: as
            ``nn.Conv2d``.
        in_modes, out_modes: factorisations of ``C`` and ``S``; ``None``: ``d`` factors.
        ranks: one int or a list (TT: ``d`` edges incl. ``r_0``; HT: one per non-root node).
        d: channel modes when not given (default 2).
        forward_path: ``"reconstruct"`` (default) or ``"contract"``.
        target_var: variance of kernel entries (default He ``2 / (C·ℓ²)``).
        name: layer name used in error messages.
    """

    kind = "tt"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | Sequence[int],
                 stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
                 dilation: int | Sequence[int] = 1, bias: bool = True,
                 in_modes: Sequence[int] | None = None, out_modes: Sequence[int] | None = None,
                 ranks: int | Sequence[int] = 8, d: int = 2, forward_path: Path = "reconstruct",
                 target_var: float | None = None, name: str | None = None) -> None:
        super().__init__()
        name = name or type(self).__name__
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size)
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        if isinstance(padding, str):
            raise ConfigError(f"{name}: string padding is not supported; give integers")
        self.groups, self.padding_mode = 1, "zeros"
        c, s = mode_pair(name, self.in_channels, self.out_channels, in_modes, out_modes, d,
                         "channel")
        area = math.prod(self.kernel_size)
        var = 2.0 / (self.in_channels * area) if target_var is None else float(target_var)
        self.forward_path = _check_path(name, forward_path)
        self.matrix = _format(self.kind, [1, *s], [area, *c], ranks, var, name)
        self.bias = nn.Parameter(torch.zeros(self.out_channels)) if bias else None

    @property
    def weight(self) -> Tensor:
        """The reconstructed kernel ``[S, C, kh, kw]``."""
        w = self.matrix.weight().reshape(self.out_channels, math.prod(self.kernel_size), -1)
        return w.transpose(1, 2).reshape(self.out_channels, self.in_channels, *self.kernel_size)

    def _out_size(self, h: int, w: int) -> tuple[int, int]:
        return tuple(  # type: ignore[return-value]
            (v + 2 * p - dl * (k - 1) - 1) // st + 1
            for v, p, dl, k, st in zip((h, w), self.padding, self.dilation, self.kernel_size,
                                       self.stride)
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__} expects [B, {self.in_channels}, H, W] "
                             f"input, got {tuple(x.shape)}")
        if self.forward_path == "reconstruct":
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)
        B, area = x.shape[0], math.prod(self.kernel_size)
        ho, wo = self._out_size(x.shape[2], x.shape[3])
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)
        cols = cols.reshape(B, self.in_channels, area, -1).permute(0, 3, 2, 1)
        y = self.matrix.contract(cols.reshape(-1, area * self.in_channels))
        y = y.reshape(B, ho * wo, self.out_channels).transpose(1, 2)
        if self.bias is not None:
            y = y + self.bias[:, None]
        return y.reshape(B, self.out_channels, ho, wo)

    @classmethod
    def from_dense(cls, conv: nn.Conv2d, ranks: int | Sequence[int] = 8, d: int = 2,
                   in_modes: Sequence[int] | None = None, out_modes: Sequence[int] | None = None,
                   forward_path: Path = "reconstruct", name: str | None = None) -> TensorConv2d:
        """Decompose a trained ``nn.Conv2d`` (``groups=1``, zero padding)."""
        name = name or type(conv).__name__
        if conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            raise ConfigError(f"{name}: only groups=1, zero-padded convs with integer padding "
                              f"can be tensorized (got groups={conv.groups}, "
                              f"padding={conv.padding!r}, mode={conv.padding_mode!r})")
        c = list(in_modes) if in_modes is not None else factorize(conv.in_channels, d)
        s = list(out_modes) if out_modes is not None else factorize(conv.out_channels, d)
        area = math.prod(conv.kernel_size)
        if isinstance(ranks, int) and len(c) == len(s):
            ranks = clamp_ranks(cls.kind, [1, *s], [area, *c], ranks)
        layer = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                    conv.padding, conv.dilation, conv.bias is not None, c, s, ranks,
                    forward_path=forward_path, name=name)
        w = conv.weight.detach().reshape(conv.out_channels, conv.in_channels, area)
        load_dense(layer.matrix, w.transpose(1, 2).reshape(conv.out_channels, -1))
        if conv.bias is not None:
            with torch.no_grad():
                layer.bias.copy_(conv.bias)
        return layer.to(conv.weight.dtype)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, path={self.forward_path}, "
                f"params={sum(p.numel() for p in self.parameters())}")


class TTConv2d(TensorConv2d):
    """:class:`TensorConv2d` in tensor-train format (spatial core first)."""

    kind = "tt"


class HTConv2d(TensorConv2d):
    """:class:`TensorConv2d` in hierarchical Tucker format (spatial leaf first)."""

    kind = "ht"


# --------------------------------------------------------------------------------------------
# Layer role and cost counters
# --------------------------------------------------------------------------------------------
def _linear_dense(m: TensorLinear, x: Tensor, y: Tensor) -> int:
    return int(x.numel()) * m.out_features


def _linear_synops(m: TensorLinear, nz: Tensor, y: Tensor, cache: dict) -> int | tuple[int, int]:
    if m.forward_path == "reconstruct":
        return int(nz.sum()) * m.out_features
    steps = m.matrix.contract_macs()
    samples = int(nz.numel()) // m.in_features
    first_fanout = steps[0] // m.in_features  # MACs of step 1 per input element
    return int(nz.sum()) * first_fanout, samples * sum(steps[1:])


register_role((TensorLinear, TensorConv2d), "synapse")
register_counter(TensorLinear, dense_macs=_linear_dense, synops=_linear_synops)
register_counter(TensorConv2d, dense_macs=_conv_dense, synops=_conv_synops,
                 step_input=_conv_step_input, step_output=_conv_step_output)
