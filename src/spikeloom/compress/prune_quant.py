"""Joint pruning + quantization (spec A8): ``spikeloom compress --method prune-quant``.

The *joint* schedule of Schaefer et al. (2023): a one-shot global magnitude mask
(:func:`~spikeloom.compress.prune.prune_magnitude`) and the weight quantizer (uniform or DuQ,
:func:`spikeloom.compress.quant.quantize`) are both active from the first fine-tuning step; the
pruned weights are set to exact zeros first, the quantizer is put on the weight and the mask
after it (``w_q = mask · Q(w)``): the stored weights under the mask get no gradient and stay 0,
so their integer codes are 0 too (the integer lowering reads the quantizer's codes of the
stored weight). The *sequential* schedule of the paper (quantization
switched on after the pruned model has been fine-tuned) is run as two ``compress`` calls:
``--method prune`` and then ``--method prune-quant --sparsity`` with the same sparsity on the
pruned run (its zeros are the smallest weights, so the mask is the same).
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .prune import _prune_args, apply_masks, prune_magnitude, remove_masks

__all__ = ["prune_and_quantize"]


def prune_and_quantize(model: nn.Module, sparsity: float, config: Any,
                       scope: str = "global") -> nn.Module:
    """Mask the smallest weights, then quantize the masked weights (in place)."""
    from .quant import quantize

    masks = prune_magnitude(model, sparsity, scope)  # type: ignore[arg-type]
    remove_masks(model)  # pruned weights become exact zeros of the stored weight
    model = quantize(model, config)
    apply_masks(model, masks)  # after the quantizer: its gradient there is 0, zeros stay
    return model


def _args(p: Any) -> None:
    from .quant.register import _add_args

    _prune_args(p)
    _add_args(p)
    from .methods import add_option

    add_option(p, "--quant-method", choices=["uniform", "duq"], default="duq",
               help="prune-quant: weight quantizer (default duq, spec A8)")


def _apply(model: nn.Module, args: Any, spec: Any) -> nn.Module:
    from .quant.register import config_from_args

    default = 2 if args.quant_method == "duq" else 8
    cfg = config_from_args(args, args.quant_method, default)
    return prune_and_quantize(model, args.sparsity, cfg, args.scope)


def _register() -> None:
    from .methods import register_method

    register_method("prune-quant", apply=_apply, add_arguments=_args,
                    description="joint magnitude pruning + weight quantization (spec A8)")


_register()
