"""Ready-made spiking networks and a name registry.

All models take time-major input ``[T, B, C, H, W]`` and return logits ``[B, K]`` (the mean
over time of the per-step outputs); ``model.output_per_step(x)`` returns ``[T, B, K]`` for
per-step losses. Models built with ``T=...`` also accept a static batch ``[B, C, H, W]``,
which is repeated at every step (direct encoding, the first conv acts as the encoder).
Neurons start from rest at every call, so no state leaks between two forward passes.

=====================  =======================================================================
name (``MODELS``)      model
=====================  =======================================================================
``"liafnet"``          :class:`LIAFNet`: small conv LIAF/LIF net (default of ``spikeloom train``)
``"spiking_resnet"``   :class:`SpikingResNet` with tdBN (spec §3), any layout
``"resnet19"``         :func:`resnet19`: ResNet-19 of STBP-tdBN (≈12.7 M parameters)
``"resnet_tiny"``      :func:`resnet_tiny`: a 2-stage, 8/16-channel variant for tests and demos
``"tasnn"``            :class:`TASNN`: TA-SNN DVS128-Gesture network (spec §4)
=====================  =======================================================================

Use :func:`build_model` (``build_model("liafnet", input_size=(32, 32))``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from torch import Tensor, nn

from .layers import MeanOverTime, TdBN, TemporalAttention, TimeDistributed
from .neurons import IF, LIAF, LIF, PLIF

__all__ = [
    "SpikingClassifier",
    "LIAFNet",
    "BasicBlock",
    "SpikingResNet",
    "resnet19",
    "resnet_tiny",
    "TASNN",
    "MODELS",
    "build_model",
    "make_neuron_factory",
    "count_parameters",
]

NEURONS: dict[str, type[nn.Module]] = {"lif": LIF, "liaf": LIAF, "if": IF, "plif": PLIF}
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
        key = neuron.lower()
        if key not in NEURONS:
            raise ValueError(f"unknown neuron {neuron!r}; choose one of {sorted(NEURONS)}")
        cls: Callable[..., nn.Module] = NEURONS[key]
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


def _make_norm(kind: NormKind, channels: int, v_th: float, residual: bool = False) -> nn.Module:
    """tdBN (scaled to ``α·V_th``), plain BN (statistics over time, batch, space; no scaling,
    as TA-SNN's BatchNorm2d on ``[B·T, C, H, W]``) or identity."""
    if kind is None or kind == "none":
        return nn.Identity()
    if kind == "tdbn":
        return TdBN(channels, v_th=v_th, residual=residual)
    if kind == "bn":
        return TdBN(channels, alpha=1.0, v_th=1.0)  # == BatchNorm over the folded [T·B, C, ...]
    raise ValueError(f"norm must be 'tdbn', 'bn' or None, got {kind!r}")


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


class SpikingClassifier(nn.Module):
    """Base class: ``forward(x) = output_per_step(x).mean(0)``.

    Subclasses implement :meth:`_per_step` on ``[T, B, C, H, W]``. ``T`` (optional) enables
    static input ``[B, C, H, W]`` (repeated over time) and is checked against sequence input.
    """

    in_channels: int
    T: int | None

    def __init__(self) -> None:
        super().__init__()
        self.readout = MeanOverTime()

    def _prepare(self, x: Tensor) -> Tensor:
        name = type(self).__name__
        if x.ndim == 4:
            if self.T is None:
                raise ValueError(
                    f"{name} got a static batch {tuple(x.shape)}; expected [T, B, C, H, W]. "
                    "Build the model with T=... to repeat static input over time, or add "
                    "the time axis (spikeloom.encoding.DirectEncoder)"
                )
            x = x.unsqueeze(0).expand(self.T, *x.shape)
        if x.ndim != 5:
            raise ValueError(f"{name} expected input [T, B, C, H, W], got shape {tuple(x.shape)}")
        if x.shape[2] != self.in_channels:
            raise ValueError(
                f"{name} was built for {self.in_channels} input channels but got {x.shape[2]} "
                f"on axis 2 of {tuple(x.shape)} (layout must be [T, B, C, H, W])"
            )
        if self.T is not None and x.shape[0] != self.T:
            raise ValueError(
                f"{name} was built for T={self.T} steps, got {x.shape[0]} (shape "
                f"{tuple(x.shape)})"
            )
        return x

    def _per_step(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def output_per_step(self, x: Tensor) -> Tensor:
        """Per-step outputs ``[T, B, K]`` for input ``[T, B, C, H, W]`` (or static ``[B, C, H,
        W]`` when built with ``T``)."""
        return self._per_step(self._prepare(x))

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``[B, K]``: mean over time of :meth:`output_per_step`."""
        return self.readout(self.output_per_step(x))


# --------------------------------------------------------------------------------------------
# LIAF-Net (default model)
# --------------------------------------------------------------------------------------------


class LIAFNet(SpikingClassifier):
    """Small convolutional LIAF (or LIF) network, the default model of ``spikeloom train``.

    Per stage ``i``: ``conv3x3(pad 1) -> norm -> [TA] -> neuron -> avgpool 2``; then
    ``[adaptive avgpool to fc_grid] -> flatten -> dropout -> Linear(hidden) -> norm -> [TA] ->
    neuron -> dropout -> Linear(num_classes)``; logits = mean over time of the last linear
    layer (spec §2 places BN between conv and the LIAF dynamics and pooling after them, as in
    the LIAF research code).

    Defaults are sized for 2 CPU cores: channels ``(16, 32)``, hidden 128, ``fc_grid=(4, 4)``
    give 72,074 parameters for any input size (2×32×32 ES-Digits: > 90 % test accuracy after
    2 epochs, ≈ 99 % after 4, about 30 CPU-seconds per epoch). ``channels=(32, 64)`` (151,818
    parameters) is about twice as slow for a similar accuracy on ES-Digits.

    Args:
        in_channels: input channels (2 polarities for event frames).
        num_classes: ``K``.
        input_size: ``(H, W)`` of the frames (checked against the number of pooling stages);
            may be ``None`` when ``fc_grid`` is set (the model then accepts any size >= 2^S).
        channels: output channels of the conv stages (one stage each).
        hidden: width of the hidden FC layer (``None`` or 0: no hidden layer).
        neuron: ``"liaf"`` (analog output, default), ``"lif"``, ``"if"``, ``"plif"`` or a
            callable taking the neuron keyword arguments.
        norm: ``"tdbn"`` (default; scaled to ``V_th``), ``"bn"`` or ``None``.
        attention: insert :class:`~spikeloom.layers.TemporalAttention` before each neuron
            (needs ``T``).
        T: number of time steps (needed for attention; enables static input).
        reduction: TA reduction ``r``.
        dropout: dropout probability before each FC layer (independent mask per step).
        decay, v_th, activation: neuron parameters (``activation`` only for LIAF).
        fc_grid: adaptive average pooling of the last feature map to this ``(h, w)`` before
            flattening (``None``: flatten the full map, ``channels[-1]·H/2^S·W/2^S`` features).
        neuron_kwargs: further keyword arguments for every neuron (e.g. ``surrogate``).

    Shapes:
        input ``[T, B, in_channels, H, W]`` -> logits ``[B, num_classes]``.
    """

    def __init__(
        self,
        in_channels: int = 2,
        num_classes: int = 10,
        input_size: int | Sequence[int] | None = (32, 32),
        channels: Sequence[int] = (16, 32),
        hidden: int | None = 128,
        neuron: str | Callable[..., nn.Module] = "liaf",
        norm: NormKind = "tdbn",
        attention: bool = False,
        T: int | None = None,
        reduction: int = 4,
        dropout: float = 0.0,
        decay: float = 0.5,
        v_th: float = 0.5,
        activation: str | Callable[[Tensor], Tensor] = "relu",
        fc_grid: int | Sequence[int] | None = (4, 4),
        neuron_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if attention and T is None:
            raise ValueError("attention=True needs the number of time steps T (TA is tied to T)")
        if not channels:
            raise ValueError("channels must name at least one conv stage")
        n_pool = len(channels)
        if input_size is None:
            if fc_grid is None:
                raise ValueError("LIAFNet needs input_size=(H, W) when fc_grid is None")
            h = w = 1
            self.input_size: tuple[int, int] | None = None
        else:
            H, W = _pair(input_size)
            h, w = H >> n_pool, W >> n_pool
            if h < 1 or w < 1:
                raise ValueError(
                    f"input_size {(H, W)} is too small for {n_pool} pooling stages (each halves "
                    "it)"
                )
            self.input_size = (H, W)
        self.in_channels, self.num_classes, self.T = in_channels, num_classes, T
        make = make_neuron_factory(
            neuron, v_th=v_th, decay=decay, activation=activation, **(neuron_kwargs or {})
        )

        def ta() -> nn.Module:
            return TemporalAttention(T, reduction) if attention else nn.Identity()

        stages = []
        c_in = in_channels
        for c in channels:
            stages.append(
                nn.Sequential(
                    TimeDistributed(nn.Conv2d(c_in, c, 3, padding=1, bias=norm is None)),
                    _make_norm(norm, c, v_th),
                    ta(),
                    make(),
                    TimeDistributed(nn.AvgPool2d(2)),
                )
            )
            c_in = c
        self.features = nn.Sequential(*stages)
        if fc_grid is not None:
            gh, gw = _pair(fc_grid)
            self.grid: nn.Module = TimeDistributed(nn.AdaptiveAvgPool2d((gh, gw)))
            h, w = gh, gw
        else:
            self.grid = nn.Identity()
        flat = c_in * h * w
        head: list[nn.Module] = []
        if hidden:
            head += [
                nn.Dropout(dropout),
                nn.Linear(flat, hidden, bias=norm is None),
                _make_norm(norm, hidden, v_th),
                ta(),
                make(),
            ]
            flat = hidden
        head += [nn.Dropout(dropout), nn.Linear(flat, num_classes)]
        self.classifier = nn.Sequential(*head)

    def _per_step(self, x: Tensor) -> Tensor:
        y = self.grid(self.features(x))
        return self.classifier(y.flatten(2))


# --------------------------------------------------------------------------------------------
# Spiking ResNet with tdBN (spec §3)
# --------------------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """Spiking basic block of STBP-tdBN (spec §3), time-major ``[T, B, C, H, W]``::

        out = LIF( tdBN_α=1( conv3x3(x, stride) ) )
        out = tdBN_α=1/√2( conv3x3(out) )
        sc  = x  if shapes match  else  tdBN_α=1/√2( conv1x1(x, stride) )
        y   = LIF( out + sc )

    Args:
        in_channels, out_channels, stride: as for the convolutions.
        make_neuron: zero-argument neuron factory (see :func:`make_neuron_factory`).
        v_th: threshold used to scale the tdBNs.
        norm: ``"tdbn"`` (default), ``"bn"`` or ``None``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        make_neuron: Callable[[], nn.Module],
        v_th: float = 0.5,
        norm: NormKind = "tdbn",
    ) -> None:
        super().__init__()
        bias = norm is None
        self.conv1 = TimeDistributed(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=bias)
        )
        self.bn1 = _make_norm(norm, out_channels, v_th)
        self.sn1 = make_neuron()
        self.conv2 = TimeDistributed(
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=bias)
        )
        self.bn2 = _make_norm(norm, out_channels, v_th, residual=True)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                TimeDistributed(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=bias)),
                _make_norm(norm, out_channels, v_th, residual=True),
            )
        else:
            self.shortcut = nn.Identity()
        self.sn2 = make_neuron()

    def forward(self, x: Tensor) -> Tensor:
        out = self.sn1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.sn2(out + self.shortcut(x))


class SpikingResNet(SpikingClassifier):
    """Deep spiking ResNet of STBP-tdBN (Zheng et al., AAAI 2021; spec §3).

    ``conv3x3(stem) -> tdBN -> LIF -> stages of BasicBlocks (first stage stride 1, the others
    stride 2 in their first block) -> global avg-pool -> [FC(fc_hidden) -> LIF] -> FC(K)``;
    logits = mean over time of the last FC. Stateless layers run on all steps at once; only the
    LIF layers carry state. For static images build with ``T`` and pass ``[B, C, H, W]``
    (repeated at every step; the stem is the encoding layer).

    Neuron defaults (spec §3, from the Joint A-SNN reimplementation, believed to be the paper's):
    LIF with ``V_th = 0.5``, decay ``0.25``, hard reset to 0, rectangular surrogate ``a = 1``.

    Args:
        block_layout: number of blocks per stage, e.g. ``(3, 3, 2)`` for ResNet-19.
        widths: channels per stage.
        stem: channels of the first conv (128 for ResNet-19 per the parameter count; the
            STBP-simple demo uses 64).
        in_channels, num_classes: input channels and ``K``.
        fc_hidden: width of the hidden FC + LIF layer (256 in ResNet-19; ``None``: none).
        fc_norm: put a tdBN between the hidden FC and its LIF (not in the spec's layout, so off
            by default; without it the FC-LIF is usually silent at initialisation — it still
            trains through the surrogate window, but the last FC gets no gradient at first).
        T: time steps (optional; enables static input).
        neuron, v_th, decay, surrogate, width: neuron settings; ``neuron_kwargs`` adds more.
        norm: ``"tdbn"`` (default), ``"bn"`` or ``None``.
        input_size: accepted for a uniform model interface and stored; the network ends with a
            global average pool, so it works for any ``(H, W)``.
    """

    def __init__(
        self,
        block_layout: Sequence[int] = (3, 3, 2),
        widths: Sequence[int] = (128, 256, 512),
        stem: int = 128,
        in_channels: int = 3,
        num_classes: int = 10,
        fc_hidden: int | None = 256,
        T: int | None = None,
        neuron: str | Callable[..., nn.Module] = "lif",
        v_th: float = 0.5,
        decay: float = 0.25,
        surrogate: str = "rectangular",
        width: float | None = 1.0,
        norm: NormKind = "tdbn",
        fc_norm: bool = False,
        neuron_kwargs: dict[str, Any] | None = None,
        input_size: int | Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if len(block_layout) != len(widths) or not widths:
            raise ValueError(
                f"block_layout {tuple(block_layout)} and widths {tuple(widths)} must have the "
                "same, non-zero length (one entry per stage)"
            )
        if any(n < 1 for n in block_layout):
            raise ValueError(f"every stage needs at least one block, got {tuple(block_layout)}")
        self.in_channels, self.num_classes, self.T = in_channels, num_classes, T
        self.input_size = None if input_size is None else _pair(input_size)
        make = make_neuron_factory(
            neuron, v_th=v_th, decay=decay, surrogate=surrogate, width=width,
            **(neuron_kwargs or {}),
        )
        self.stem = nn.Sequential(
            TimeDistributed(nn.Conv2d(in_channels, stem, 3, padding=1, bias=norm is None)),
            _make_norm(norm, stem, v_th),
            make(),
        )
        blocks: list[nn.Module] = []
        c_in = stem
        for i, (n, c) in enumerate(zip(block_layout, widths)):
            for j in range(n):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(BasicBlock(c_in, c, stride, make, v_th, norm))
                c_in = c
        self.layers = nn.Sequential(*blocks)
        self.pool = TimeDistributed(nn.AdaptiveAvgPool2d(1))
        head: list[nn.Module] = []
        if fc_hidden:
            if fc_norm:
                head += [nn.Linear(c_in, fc_hidden, bias=norm is None),
                         _make_norm(norm, fc_hidden, v_th), make()]
            else:
                head += [nn.Linear(c_in, fc_hidden), make()]
            c_in = fc_hidden
        head.append(nn.Linear(c_in, num_classes))
        self.classifier = nn.Sequential(*head)

    def _per_step(self, x: Tensor) -> Tensor:
        y = self.pool(self.layers(self.stem(x)))
        return self.classifier(y.flatten(2))


def resnet19(in_channels: int = 3, num_classes: int = 10, **kwargs: Any) -> SpikingResNet:
    """ResNet-19 of STBP-tdBN (spec §3): stem 128, stages 3×128, 3×256 (stride 2), 2×512
    (stride 2), global avg-pool, FC 256 + LIF, FC ``num_classes``. 12.70 M parameters for
    3-channel input and 10 classes (the spec quotes ≈ 12.63 M from a comparison table)."""
    kwargs.setdefault("block_layout", (3, 3, 2))
    kwargs.setdefault("widths", (128, 256, 512))
    kwargs.setdefault("stem", 128)
    kwargs.setdefault("fc_hidden", 256)
    return SpikingResNet(in_channels=in_channels, num_classes=num_classes, **kwargs)


def resnet_tiny(in_channels: int = 2, num_classes: int = 10, **kwargs: Any) -> SpikingResNet:
    """A tiny spiking ResNet (stem 8, stages 1×8 and 1×16 with stride 2, FC 32 with tdBN) with
    the same block structure as ResNet-19; for tests, demos and CPU smoke runs."""
    kwargs.setdefault("block_layout", (1, 1))
    kwargs.setdefault("widths", (8, 16))
    kwargs.setdefault("stem", 8)
    kwargs.setdefault("fc_hidden", 32)
    kwargs.setdefault("fc_norm", True)
    return SpikingResNet(in_channels=in_channels, num_classes=num_classes, **kwargs)


# --------------------------------------------------------------------------------------------
# TA-SNN (spec §4)
# --------------------------------------------------------------------------------------------


class TASNN(SpikingClassifier):
    """Temporal-wise attention SNN, DVS128-Gesture configuration of TA-SNN (spec §4).

    Conv layers (``ConvTA-LIF``): ``conv3x3(pad 1) -> BN -> [avgpool 2] -> TA -> LIF``;
    FC layers (``FC-TA-LIF``): ``Linear -> BN -> TA -> LIF``; the last FC layer is also an
    FC-TA-LIF, so the per-step output is the spikes of the ``K`` output neurons and the
    logits are their firing rates in [0, 1] (the reference trains them with MSE against the
    one-hot label). BN is plain batch norm with statistics over time, batch and space (the
    reference applies BatchNorm2d to ``[B·T, C, H, W]``).

    Defaults follow the Gesture config: 2×32×32 input, channels 64/128/128 with pooling after
    the 2nd and 3rd conv, FC 8192 -> 256 -> 11, reduction 16, LIF with decay 0.3, ``V_th = 0.3``,
    ``>=`` firing, rectangular surrogate of width 0.5, hard reset to 0. The reference cell resets
    to ``V_th`` instead of 0 (spec §2 pitfall, probably unintended): pass ``v_reset=0.3`` to
    reproduce it.

    Args:
        in_channels, num_classes, input_size: input channels, ``K`` and ``(H, W)``.
        T: number of time steps (required; the TA weights are tied to it).
        reduction: TA reduction ``r`` (hidden width ``max(1, T // r)``).
        channels, pool: conv widths and whether each conv layer pools by 2.
        hidden: widths of the hidden FC layers (``()`` for none).
        attention: set False for the plain LIF-SNN baseline of the same structure.
        discard_threshold: inference-time frame discarding threshold passed to every TA layer.
        neuron, v_th, decay, width, fire_ge, v_reset: neuron settings (``neuron="liaf"`` gives a
            TA-LIAF network; ``neuron_kwargs`` adds more).
        norm: ``"bn"`` (default, as the reference), ``"tdbn"`` or ``None``.

    Shapes:
        input ``[T, B, in_channels, H, W]`` -> rates ``[B, num_classes]``.
    """

    def __init__(
        self,
        in_channels: int = 2,
        num_classes: int = 11,
        input_size: int | Sequence[int] = (32, 32),
        T: int = 60,
        reduction: int = 16,
        channels: Sequence[int] = (64, 128, 128),
        pool: Sequence[bool] = (False, True, True),
        hidden: Sequence[int] = (256,),
        attention: bool = True,
        discard_threshold: float | None = None,
        neuron: str | Callable[..., nn.Module] = "lif",
        v_th: float = 0.3,
        decay: float = 0.3,
        width: float | None = 0.5,
        fire_ge: bool = True,
        v_reset: float = 0.0,
        norm: NormKind = "bn",
        neuron_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if len(pool) != len(channels):
            raise ValueError(f"pool {tuple(pool)} needs one flag per conv layer {tuple(channels)}")
        H, W = _pair(input_size)
        n_pool = sum(bool(p) for p in pool)
        h, w = H >> n_pool, W >> n_pool
        if h < 1 or w < 1:
            raise ValueError(f"input_size {(H, W)} is too small for {n_pool} pooling layers")
        self.in_channels, self.num_classes, self.T = in_channels, num_classes, int(T)
        self.input_size = (H, W)
        make = make_neuron_factory(
            neuron, v_th=v_th, decay=decay, width=width, fire_ge=fire_ge, v_reset=v_reset,
            **(neuron_kwargs or {}),
        )

        def ta() -> nn.Module:
            if not attention:
                return nn.Identity()
            return TemporalAttention(self.T, reduction, discard_threshold=discard_threshold)

        convs: list[nn.Module] = []
        c_in = in_channels
        for c, p in zip(channels, pool):
            layer = [
                TimeDistributed(nn.Conv2d(c_in, c, 3, padding=1, bias=norm is None)),
                _make_norm(norm, c, v_th),
            ]
            if p:
                layer.append(TimeDistributed(nn.AvgPool2d(2)))
            layer += [ta(), make()]
            convs.append(nn.Sequential(*layer))
            c_in = c
        self.features = nn.Sequential(*convs)
        fcs: list[nn.Module] = []
        n_in = c_in * h * w
        for n_out in (*hidden, num_classes):
            fcs.append(
                nn.Sequential(
                    nn.Linear(n_in, n_out, bias=norm is None),
                    _make_norm(norm, n_out, v_th),
                    ta(),
                    make(),
                )
            )
            n_in = n_out
        self.classifier = nn.Sequential(*fcs)

    def attention_layers(self) -> list[TemporalAttention]:
        """All :class:`~spikeloom.layers.TemporalAttention` modules, input side first."""
        return [m for m in self.modules() if isinstance(m, TemporalAttention)]

    def _per_step(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(2))


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------

MODELS: dict[str, Callable[..., nn.Module]] = {
    "liafnet": LIAFNet,
    "spiking_resnet": SpikingResNet,
    "resnet19": resnet19,
    "resnet_tiny": resnet_tiny,
    "tasnn": TASNN,
}


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model by name (case-insensitive, ``-`` == ``_``) with ``kwargs``."""
    key = name.lower().replace("-", "_")
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}")
    return MODELS[key](**kwargs)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)

