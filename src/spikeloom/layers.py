"""Stateless building blocks for time-major spiking networks.

Every layer here takes and returns **time-major** tensors ``[T, B, ...]``. Stateful
dynamics live in :mod:`spikeloom.neurons`; the layers below are either applied to every time
step independently (:class:`TimeDistributed`, which folds time into the batch axis) or mix
information across time in a fixed, stateless way (:class:`TdBN` statistics,
:class:`TemporalAttention` scores, the readouts).

================================  ========================================================
name                              what it does
================================  ========================================================
:func:`permute_layout`            reorder axes by letter names, e.g. ``"BTCHW" -> "TBCHW"``
:func:`to_time_major`             any layout containing ``T`` and ``B`` -> ``[T, B, ...]``
:func:`from_time_major`           the inverse of :func:`to_time_major`
:class:`TimeDistributed`          run a per-frame module (conv, pool, linear, ...) over time
:class:`TdBN`                     threshold-dependent batch norm (STBP-tdBN)
:class:`TemporalAttention`        TA-SNN squeeze-and-excitation along time
:class:`MeanOverTime`             readout ``[T, B, K] -> [B, K]`` (rate / mean output)
:class:`LastStep`                 readout ``[T, B, K] -> [B, K]`` (value at the last step)
:class:`MembraneReadout`          readout: mean membrane potential of a non-firing integrator
:class:`Add`                      residual sum as a module (visible to the layer walk)
================================  ========================================================
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .probes import Probed
from .walk import register_role

__all__ = [
    "permute_layout",
    "to_time_major",
    "from_time_major",
    "TimeDistributed",
    "TdBN",
    "TemporalAttention",
    "MeanOverTime",
    "LastStep",
    "MembraneReadout",
    "Add",
]


# --------------------------------------------------------------------------------------------
# layout helpers
# --------------------------------------------------------------------------------------------


def permute_layout(x: Tensor, src: str, dst: str) -> Tensor:
    """Permute the axes of ``x`` from the layout ``src`` to ``dst`` (one letter per axis).

    Example: the TA-SNN code uses ``[B, T, C, H, W]``, the LIAF code ``[B, C, T, H, W]``;
    ``permute_layout(x, "BCTHW", "TBCHW")`` gives this library's time-major layout.
    Returns a view (no copy); call ``.contiguous()`` if needed.

    Raises:
        ValueError: when the letters repeat, the two layouts do not hold the same letters, or
            ``x.ndim`` differs from ``len(src)``.
    """
    if len(set(src)) != len(src) or sorted(src) != sorted(dst):
        raise ValueError(
            f"layouts {src!r} and {dst!r} must use the same distinct letters (one per axis)"
        )
    if x.ndim != len(src):
        raise ValueError(
            f"layout {src!r} names {len(src)} axes but the tensor has {x.ndim} "
            f"(shape {tuple(x.shape)})"
        )
    return x.permute([src.index(c) for c in dst])


def _time_major_layout(layout: str) -> str:
    if "T" not in layout or "B" not in layout:
        raise ValueError(f"layout {layout!r} must contain a 'T' (time) and a 'B' (batch) axis")
    return "TB" + "".join(c for c in layout if c not in "TB")


def to_time_major(x: Tensor, layout: str) -> Tensor:
    """Reorder ``x`` given in ``layout`` (e.g. ``"BTCHW"``, ``"BCTHW"``, ``"BNT"``) to
    ``[T, B, <other axes in their original order>]``."""
    return permute_layout(x, layout, _time_major_layout(layout))


def from_time_major(x: Tensor, layout: str) -> Tensor:
    """Inverse of :func:`to_time_major`: ``[T, B, ...]`` back to ``layout``."""
    return permute_layout(x, _time_major_layout(layout), layout)


# --------------------------------------------------------------------------------------------
# TimeDistributed
# --------------------------------------------------------------------------------------------

_FRAME_NDIM: dict[type, int] = {}
for _k, _mods in {
    1: (nn.Conv1d, nn.AvgPool1d, nn.MaxPool1d, nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d),
    2: (nn.Conv2d, nn.AvgPool2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d,
        nn.BatchNorm2d, nn.ConvTranspose2d),
    3: (nn.Conv3d, nn.AvgPool3d, nn.MaxPool3d, nn.BatchNorm3d),
}.items():
    for _m in _mods:
        _FRAME_NDIM[_m] = _k + 2  # [B, C, *spatial]
del _k, _mods, _m


class TimeDistributed(nn.Module):
    """Apply a stateless per-frame module to every time step by folding time into the batch.

    ``[T, B, *rest] -> x.flatten(0, 1) = [T·B, *rest] -> module -> [T·B, *out] -> [T, B, *out]``.
    One call of the wrapped module processes all steps (fast); this is exact for modules that
    treat batch rows independently (conv, pooling, linear, dropout, activations). For batch
    norm it means statistics over time *and* batch (which is tdBN's rule).

    Args:
        module: the per-frame module; available as ``.module``.
        min_ndim: smallest accepted input rank (default 3 = ``[T, B, N]``). For convolutions,
            pooling and 2-d/3-d batch norm the exact rank is known and checked instead.

    Shapes:
        input ``[T, B, *rest]``; output ``[T, B, *module_output_rest]``.
    """

    def __init__(self, module: nn.Module, min_ndim: int = 3) -> None:
        super().__init__()
        self.module = module
        self.min_ndim = int(min_ndim)

    def forward(self, x: Tensor) -> Tensor:
        frame_ndim = _FRAME_NDIM.get(type(self.module))
        name = type(self.module).__name__
        if frame_ndim is not None and x.ndim != frame_ndim + 1:
            hint = (
                " (this looks like a single-step batch; add the time axis, e.g. x.unsqueeze(0))"
                if x.ndim == frame_ndim
                else ""
            )
            raise ValueError(
                f"TimeDistributed({name}) expected [T, B, ...] input with {frame_ndim + 1} dims, "
                f"got shape {tuple(x.shape)}{hint}"
            )
        if x.ndim < self.min_ndim:
            raise ValueError(
                f"TimeDistributed({name}) expected [T, B, ...] input with at least "
                f"{self.min_ndim} dims, got shape {tuple(x.shape)}; add the time axis first"
            )
        T, B = x.shape[:2]
        y = self.module(x.flatten(0, 1))
        return y.unflatten(0, (T, B))


# --------------------------------------------------------------------------------------------
# tdBN
# --------------------------------------------------------------------------------------------


class TdBN(nn.Module):
    """Threshold-dependent batch normalisation (Zheng et al., AAAI 2021, arXiv:2011.05280).

    For each channel ``c`` the statistics span time, batch and space::

        mean_c, var_c = mean / biased variance of x[:, :, c, ...] over T·B·(spatial)
        x̂ = α · V_th · (x - mean_c) / sqrt(var_c + ε)
        y = λ_c · x̂ + β_c

    Implementation: the input ``[T, B, C, *spatial]`` is folded to ``[T·B, C, *spatial]`` (a
    view) and passed to :func:`torch.nn.functional.batch_norm` with the effective weight
    ``λ·α·V_th`` and bias ``β`` — one fused kernel, exactly BatchNorm on the folded view with
    the output scaled by ``α·V_th`` before the affine step. Running statistics are updated as in
    :class:`torch.nn.BatchNorm2d` (EMA with ``momentum``; running variance stored *unbiased*,
    ``var·n/(n-1)``); eval mode normalises with them.

    Args:
        num_features: number of channels ``C``.
        alpha: the ``α`` factor; ``None`` (default) means 1, or ``1/√2`` when ``residual``.
        v_th: firing threshold ``V_th`` of the neurons this norm drives (0.5 in STBP-tdBN).
        eps: ``ε`` added to the variance; must be > 0 (``torch.nn.functional.batch_norm``
            rejects 0 in training; an ``ε = 0`` formula is approximated with ``1e-12``).
        momentum: EMA factor of the running statistics; ``None`` = cumulative average.
        affine: learn the per-channel ``λ`` (``weight``) and ``β`` (``bias``).
        track_running_stats: keep running statistics (otherwise batch statistics always).
        residual: this norm feeds a residual sum (last norm of a residual branch or the
            shortcut projection): use ``α = 1/√2`` (STBP-tdBN). Do not combine with ``alpha``.
        scale_mode: ``"fixed"`` (default, the paper): ``y = λ·α·V_th·x_norm + β`` with ``λ``
            initialised to 1, i.e. the ``α·V_th`` scale is a constant. ``"init"``: the variant
            of the Joint A-SNN code (plain BN whose weight is *initialised* to ``α·V_th`` and
            then learned freely, ``y = λ·x_norm + β``). Both agree at initialisation but train
            differently (the gradient w.r.t. ``λ`` differs by the factor ``α·V_th``); both
            exist in published code and neither is known to be better. ``"init"`` requires
            ``affine=True``.

    Shapes:
        input ``[T, B, C]``, ``[T, B, C, L]``, ``[T, B, C, H, W]`` (any ``[T, B, C, *spatial]``);
        output: same shape. Training needs more than one value per channel (``T·B·prod(spatial)
        > 1``).
    """

    def __init__(
        self,
        num_features: int,
        alpha: float | None = None,
        v_th: float = 0.5,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        residual: bool = False,
        scale_mode: Literal["fixed", "init"] = "fixed",
    ) -> None:
        super().__init__()
        if num_features < 1:
            raise ValueError(f"num_features must be >= 1, got {num_features}")
        if residual and alpha is not None:
            raise ValueError("give either residual=True (alpha = 1/sqrt(2)) or alpha, not both")
        if scale_mode not in ("fixed", "init"):
            raise ValueError(f"scale_mode must be 'fixed' or 'init', got {scale_mode!r}")
        if scale_mode == "init" and not affine:
            raise ValueError("scale_mode='init' keeps the scale in the learnable weight; "
                             "it needs affine=True")
        if not eps > 0:
            raise ValueError(
                f"eps must be > 0 (torch's batch_norm refuses eps <= 0 in training), got {eps}; "
                "use a tiny value such as 1e-12 to approximate eps = 0"
            )
        if alpha is None:
            alpha = 1.0 / math.sqrt(2.0) if residual else 1.0
        if not (alpha > 0 and v_th > 0):
            raise ValueError(f"alpha and v_th must be positive, got alpha={alpha}, v_th={v_th}")
        self.num_features = int(num_features)
        self.alpha = float(alpha)
        self.v_th = float(v_th)
        self.eps = float(eps)
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        self.scale_mode = scale_mode
        if affine:
            init_w = self.scale if scale_mode == "init" else 1.0
            self.weight = nn.Parameter(torch.full((num_features,), init_w))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    @property
    def scale(self) -> float:
        """The target standard deviation ``α·V_th`` of the normalised pre-activation."""
        return self.alpha * self.v_th

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, batch counter 0."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def effective_weight(self) -> Tensor | None:
        """Per-channel multiplier applied to the standardised input: ``λ·α·V_th`` (fixed mode)
        or ``λ`` (init mode); ``None`` only when there is nothing to multiply."""
        if self.weight is None:
            return None
        return self.weight * self.scale if self.scale_mode == "fixed" else self.weight

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 3:
            raise ValueError(
                f"TdBN expected [T, B, C, ...] input, got shape {tuple(x.shape)}; "
                "add the time axis first"
            )
        if x.shape[2] != self.num_features:
            raise ValueError(
                f"TdBN({self.num_features}) got {x.shape[2]} channels on axis 2 of input shape "
                f"{tuple(x.shape)}; expected [T, B, C={self.num_features}, ...]"
            )
        factor = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = (
                1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            )
        use_batch_stats = self.training or not self.track_running_stats
        weight = self.effective_weight()
        if weight is None:  # affine=False: constant scale
            weight = x.new_full((self.num_features,), self.scale)
        y = F.batch_norm(
            x.flatten(0, 1),
            self.running_mean if not self.training or self.track_running_stats else None,
            self.running_var if not self.training or self.track_running_stats else None,
            weight,
            self.bias,
            use_batch_stats,
            factor,
            self.eps,
        )
        return y.unflatten(0, x.shape[:2])

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, alpha={self.alpha:.4g}, v_th={self.v_th:g}, eps={self.eps:g}, "
            f"momentum={self.momentum}, affine={self.affine}, scale_mode={self.scale_mode!r}"
        )


# --------------------------------------------------------------------------------------------
# Temporal attention
# --------------------------------------------------------------------------------------------


class TemporalAttention(Probed, nn.Module):
    """Temporal-wise attention of TA-SNN (Yao et al., ICCV 2021, arXiv:2107.11711), time-major.

    One score per frame and per sample, from a squeeze-and-excitation along time::

        z[t, b]  = mean of x[t, b] over all remaining axes            (squeeze)
        a[:, b]  = sigmoid( W2 · ReLU( W1 · z[:, b] + b1 ) + b2 )       (excitation)
        y[t, b]  = a[t, b] · x[t, b]

    with ``W1: T -> max(1, T // reduction)`` and ``W2`` back to ``T`` (``nn.Linear`` with
    bias). The hidden width is **clamped to at least 1** (e.g. ``T=4, reduction=16`` gives 1
    hidden unit; it must be >= 1); use a smaller ``reduction`` for more. The
    module is tied to the ``T`` it was built with. The reference code works on ``[B, T, ...]``;
    here the input is time-major ``[T, B, ...]`` (scores are transposed internally).

    Note: placed after a normalisation layer (as in TA-SNN), ``z`` is close to 0 unless the
    frame activity varies over time, so at initialisation the hidden units sit near their
    (random) biases; with very few hidden units (large ``reduction``) all of them can start in
    the dead zone of the ReLU for some seeds, and then ``W1`` receives no gradient.

    Inference-time frame discarding (optional): when ``discard_threshold`` is set and the module
    is in **eval** mode, frames with ``a[t, b] < discard_threshold`` are zeroed (per sample)
    instead of scaled; the following neuron then only leaks during those steps (a hardware
    implementation could skip their synaptic operations). The paper states that irrelevant
    frames are dropped at inference but neither the paper nor the released code gives the
    threshold value or where (input layer vs. every layer) it is applied — unverified, so it is
    an explicit option here and off by default. Training mode never discards.

    A forward pass stores nothing on the module: the scores ``a`` ``[T, B]`` (before discarding)
    are emitted as the probe ``"scores"`` (:class:`spikeloom.probes.Probed`), and
    :class:`spikeloom.monitor.AttentionMonitor` records them and counts discarded frames.

    Args:
        T: number of time steps the module is built for.
        reduction: ``r``; hidden width ``max(1, T // r)``.
        discard_threshold: eval-mode discard threshold ``d`` in (0, 1), or ``None``.
        bias: use biases in the two linear layers (reference: yes).

    Shapes:
        input ``[T, B, *rest]`` with at least one ``rest`` axis (``[T, B, N]`` or
        ``[T, B, C, H, W]``); output: same shape.
    """

    def __init__(
        self,
        T: int,
        reduction: int = 4,
        discard_threshold: float | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if T < 1:
            raise ValueError(f"T must be >= 1, got {T}")
        if reduction < 1:
            raise ValueError(f"reduction must be >= 1, got {reduction}")
        if discard_threshold is not None and not (0.0 < discard_threshold < 1.0):
            raise ValueError(
                f"discard_threshold must lie in (0, 1) (scores are sigmoids), "
                f"got {discard_threshold}"
            )
        self.T = int(T)
        self.reduction = int(reduction)
        self.hidden = max(1, self.T // self.reduction)
        self.discard_threshold = discard_threshold
        self.fc1 = nn.Linear(self.T, self.hidden, bias=bias)
        self.fc2 = nn.Linear(self.hidden, self.T, bias=bias)
        self._init_probes()

    @property
    def discarding(self) -> bool:
        """Whether the current mode discards frames (eval mode with a threshold)."""
        return not self.training and self.discard_threshold is not None

    def _check(self, x: Tensor) -> None:
        if x.ndim < 3:
            raise ValueError(
                f"TemporalAttention expected [T, B, ...] input with at least 3 dims, got shape "
                f"{tuple(x.shape)}"
            )
        if x.shape[0] != self.T:
            raise ValueError(
                f"TemporalAttention was built for T={self.T} steps but the input has "
                f"{x.shape[0]} on axis 0 (shape {tuple(x.shape)}); the excitation weights are "
                "tied to T — rebuild the layer for the new T"
            )

    def scores(self, x: Tensor) -> Tensor:
        """Attention scores ``a`` ``[T, B]`` in (0, 1) for input ``[T, B, ...]``."""
        self._check(x)
        z = x.flatten(2).mean(dim=2)  # [T, B]
        a = torch.sigmoid(self.fc2(F.relu(self.fc1(z.t()))))  # [B, T]
        return a.t()

    def forward(self, x: Tensor) -> Tensor:
        a = self.scores(x)
        self.emit("scores", a)
        if self.discarding:
            a = a * (a >= self.discard_threshold).to(a.dtype)
        return x * a.reshape(a.shape + (1,) * (x.ndim - 2))

    def extra_repr(self) -> str:
        return (
            f"T={self.T}, reduction={self.reduction}, hidden={self.hidden}, "
            f"discard_threshold={self.discard_threshold}"
        )


# --------------------------------------------------------------------------------------------
# Readouts
# --------------------------------------------------------------------------------------------


def _check_seq(x: Tensor, who: str) -> None:
    if x.ndim < 2:
        raise ValueError(f"{who} expected [T, B, ...] input, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{who} got an empty sequence (T = 0)")


class MeanOverTime(nn.Module):
    """Rate readout: mean over the time axis, ``[T, B, *rest] -> [B, *rest]``."""

    def forward(self, x: Tensor) -> Tensor:
        _check_seq(x, "MeanOverTime")
        return x.mean(dim=0)


class LastStep(nn.Module):
    """Readout of the last time step, ``[T, B, *rest] -> [B, *rest]``."""

    def forward(self, x: Tensor) -> Tensor:
        _check_seq(x, "LastStep")
        return x[-1]


class MembraneReadout(nn.Module):
    """Non-firing leaky integrator readout: mean over time of its membrane potential.

    The output layer integrates its input current without ever firing::

        u[0] = 0,   u[t] = decay · u[t-1] + x[t]        (t = 1..T)
        out  = (1/T) · Σ_t u[t]

    computed in closed form, ``out = Σ_s w[s]·x[s]`` with
    ``w[s] = (1/T) · Σ_{j=0}^{T-s} decay^j`` for ``s = 1..T`` (one weighted sum over time,
    no loop).
    ``decay = 1`` is a plain (non-leaky) integrator, ``decay = 0`` reduces to
    :class:`MeanOverTime`. :meth:`potentials` returns the whole trace ``u``.

    Args:
        decay: leak factor in [0, 1] (default 0.5).
        learnable: learn the decay, parameterised as ``sigmoid(w)`` (then it must be in (0, 1)).

    Shapes:
        input ``[T, B, *rest]`` (typically ``[T, B, K]`` output currents); output ``[B, *rest]``.
    """

    def __init__(self, decay: float = 0.5, learnable: bool = False) -> None:
        super().__init__()
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"decay must lie in [0, 1], got {decay}")
        self.learnable = learnable
        if learnable:
            if not 0.0 < decay < 1.0:
                raise ValueError(f"a learnable decay must lie in (0, 1), got {decay}")
            self.decay_logit = nn.Parameter(torch.tensor(math.log(decay / (1 - decay))))
        else:
            self.register_buffer("_decay", torch.tensor(float(decay)))

    @property
    def decay(self) -> Tensor:
        """The current decay factor (0-d tensor)."""
        return torch.sigmoid(self.decay_logit) if self.learnable else self._decay

    def time_weights(self, T: int) -> Tensor:
        """Weights ``w`` ``[T]`` with ``out = Σ_s w[s]·x[s]``."""
        powers = self.decay ** torch.arange(T, dtype=self.decay.dtype, device=self.decay.device)
        return torch.cumsum(powers, 0).flip(0) / T

    def potentials(self, x: Tensor) -> Tensor:
        """Membrane trace ``u`` ``[T, B, *rest]`` (explicit loop over T; for inspection)."""
        _check_seq(x, "MembraneReadout")
        k = self.decay.to(x.dtype)
        u = torch.zeros_like(x[0])
        out = []
        for t in range(x.shape[0]):
            u = k * u + x[t]
            out.append(u)
        return torch.stack(out)

    def forward(self, x: Tensor) -> Tensor:
        _check_seq(x, "MembraneReadout")
        w = self.time_weights(x.shape[0]).to(x.dtype)
        return torch.tensordot(w, x, dims=([0], [0]))

    def extra_repr(self) -> str:
        return f"decay={float(self.decay):.4g}, learnable={self.learnable}"


# --------------------------------------------------------------------------------------------
# Residual sum
# --------------------------------------------------------------------------------------------


class Add(nn.Module):
    """Elementwise sum of its inputs, ``Add()(a, b) = a + b``: a residual merge as a module.

    Writing ``self.add(out, shortcut)`` instead of ``out + shortcut`` makes the merge point a
    layer that :func:`spikeloom.walk.iter_layers` sees (role ``"merge"``), so cost, export and
    pruning know where branches join.
    """

    def forward(self, *xs: Tensor) -> Tensor:
        if len(xs) < 2:
            raise ValueError(f"Add needs at least two inputs, got {len(xs)}")
        out = xs[0]
        for x in xs[1:]:
            if x.shape != out.shape:
                raise ValueError(
                    f"Add got inputs of shapes {tuple(out.shape)} and {tuple(x.shape)}; the "
                    "branches of a residual block must produce the same shape"
                )
            out = out + x
        return out


register_role(TdBN, "norm")
register_role(TemporalAttention, "attention")
register_role((MeanOverTime, LastStep, MembraneReadout), "readout")
register_role(Add, "merge")
