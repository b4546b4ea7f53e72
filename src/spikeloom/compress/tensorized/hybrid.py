"""Replace a model's dense layers by tensorized ones in one call (spec A4 hybrid strategy).

``tensorize(model, "hybrid")`` puts every ``nn.Conv2d`` into TT format and every ``nn.Linear``
into HT format (TT suits conv kernels, HT suits FC matrices, Wu et al. 2020 [ABS]);
``"tt"`` and ``"ht"`` use one format for both. The first conv and the last linear layer (the
classifier) stay dense by default (``skip_first`` / ``skip_last``, common practice [RECON]).
Layers are found with the layer walk; by default each new layer is the decomposition of the
trained dense one (``init="decompose"``), else a fresh variance-matched layer (``"random"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from torch import nn

from ...errors import ConfigError
from ...walk import layers_with_role
from .layers import HTConv2d, HTLinear, TTConv2d, TTLinear

__all__ = ["tensorize", "STRATEGIES", "replace_module"]

#: strategy -> (conv class, linear class)
STRATEGIES = {
    "hybrid": (TTConv2d, HTLinear),
    "tt": (TTConv2d, TTLinear),
    "ht": (HTConv2d, HTLinear),
}


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` at the qualified name ``name`` inside ``model``."""
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)


def tensorize(model: nn.Module, strategy: Literal["hybrid", "tt", "ht"] = "hybrid",
              rank: int = 8, conv_rank: int | None = None, linear_rank: int | None = None,
              d_conv: int = 2, d_linear: int = 3, skip_first: bool = True,
              skip_last: bool = True, init: Literal["decompose", "random"] = "decompose",
              layers: Sequence[str] | None = None,
              kinds: Sequence[str] = ("conv", "linear")) -> list[str]:
    """Replace dense conv/linear layers of ``model`` in place; returns the replaced names.

    Args:
        model: any model (walked with :func:`spikeloom.walk.layers_with_role`).
        strategy: ``"hybrid"`` (TT conv + HT linear), ``"tt"`` or ``"ht"``.
        rank: rank of every edge (clamped to each edge's full rank); ``conv_rank`` /
            ``linear_rank`` override it per layer kind.
        d_conv, d_linear: number of channel / feature modes.
        skip_first, skip_last: keep the first conv and the last linear dense.
        init: ``"decompose"`` (TT-SVD / hierarchical SVD of the trained weights) or
            ``"random"`` (variance-matched fresh factors).
        layers: only these qualified names (overrides the skips).
        kinds: which layer kinds to replace: ``"conv"``, ``"linear"`` or both.

    Raises:
        ConfigError: unknown strategy or init, or a named layer that cannot be tensorized.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown tensorize strategy {strategy!r}; choose one of "
                          f"{sorted(STRATEGIES)}")
    if init not in ("decompose", "random"):
        raise ConfigError(f"init must be 'decompose' or 'random', got {init!r}")
    conv_cls, lin_cls = STRATEGIES[strategy]
    syn = [(ly.name, ly.module) for ly in layers_with_role(model, "synapse")]
    convs = [n for n, m in syn if type(m) is nn.Conv2d]
    lins = [n for n, m in syn if type(m) is nn.Linear]
    if layers is not None:
        chosen = list(layers)
        bad = [n for n in chosen if n not in convs and n not in lins]
        if bad:
            raise ConfigError(f"cannot tensorize {bad}: only nn.Conv2d/nn.Linear layers, "
                              f"choose from {convs + lins}")
    else:
        chosen = (convs[1:] if skip_first else convs) if "conv" in kinds else []
        chosen = chosen + ((lins[:-1] if skip_last else lins) if "linear" in kinds else [])
    mods = dict(syn)
    for name in chosen:
        m = mods[name]
        is_conv = name in convs
        r = (conv_rank if is_conv else linear_rank) or rank
        if is_conv:
            new = conv_cls.from_dense(m, ranks=r, d=d_conv, name=name)
        else:
            new = lin_cls.from_dense(m, ranks=r, d=d_linear, name=name)
        if init == "random":
            new = _fresh(new, name)
        replace_module(model, name, new.to(m.weight.device))
    return chosen


def _fresh(layer: nn.Module, name: str) -> nn.Module:
    """A fresh variance-matched layer with the same shape, modes and ranks as ``layer``."""
    mat = layer.matrix
    if isinstance(layer, (TTLinear, HTLinear)):
        return type(layer)(layer.in_features, layer.out_features, mat.in_modes, mat.out_modes,
                           mat.ranks, bias=layer.bias is not None, name=name)
    return type(layer)(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                       layer.padding, layer.dilation, layer.bias is not None, mat.in_modes[1:],
                       mat.out_modes[1:], mat.ranks, name=name)


# --------------------------------------------------------------------------------------------
# `spikeloom compress --method tt|ht|hybrid`
# --------------------------------------------------------------------------------------------
def _args(p: object) -> None:
    from ..methods import add_option

    add_option(p, "--rank", type=int, default=8,
               help="tt/ht/hybrid/kcp: rank of every tensor edge (KCP: number of terms)")
    add_option(p, "--tensor-d", type=int, default=3,
               help="tt/ht/hybrid/kcp: number of modes of a linear layer (conv: 2)")
    add_option(p, "--tensor-init", choices=["decompose", "random"], default="decompose",
               help="tt/ht/hybrid: decompose the trained weights or start from fresh factors")
    add_option(p, "--tensor-scope", choices=["all", "conv", "linear"], default="all",
               help="tt/ht/hybrid: tensorize conv and linear layers, or only one kind")


def _method(strategy: str):  # noqa: ANN202
    def apply(model: nn.Module, args: object, spec: object) -> nn.Module:
        scope = args.tensor_scope  # type: ignore[attr-defined]
        tensorize(model, strategy, rank=args.rank, d_linear=args.tensor_d,  # type: ignore
                  init=args.tensor_init,  # type: ignore[attr-defined]
                  kinds=("conv", "linear") if scope == "all" else (scope,))
        return model
    return apply


def _register() -> None:
    from ..methods import register_method

    for name, what in (("tt", "tensor-train conv and linear layers"),
                       ("ht", "hierarchical Tucker conv and linear layers"),
                       ("hybrid", "TT conv + HT linear layers (spec A4)")):
        register_method(name, apply=_method(name), add_arguments=_args, description=what)


_register()
