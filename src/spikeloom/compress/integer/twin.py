"""``frozen_twin(model, program)``: the quantized model in torch computing the program's integers.

A float64 copy of the model whose weights return their integer codes (biases dropped: they are
in the neurons' offsets), whose norms are folded away, whose neurons compute the integer
current ``(acc·M + B + 2^(S−1)) >> S`` of the program, whose residual ``Add`` s form
``Σ_i acc_i·M_i`` (the neuron after them then uses ``M = 1``), whose LIAF neurons output their
integer activation and whose analog input quantizers apply the program's integer
requantisation. Its neuron outputs equal the executor's bit for bit; the last synapse keeps its
float weights and bias, so its logits are the real ones.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from ...errors import ConfigError
from ...layers import TdBN
from ..quant.fake import ActFakeQuant
from ..quant.neuron import QuantNeuron
from .program import IntegerProgram

__all__ = ["frozen_twin"]


class _TwinAdd(nn.Module):
    """``Σ_i round(x_i·div_i)·M_i`` (per channel, axis 2): a residual sum on the common scale."""

    def __init__(self, mults: list, divs: list[float]) -> None:
        super().__init__()
        self.mults = [torch.as_tensor(m, dtype=torch.float64) for m in mults]
        self.divs = [float(d) for d in divs]

    def forward(self, *xs: Tensor) -> Tensor:
        if len(xs) != len(self.mults):
            raise ValueError(f"the lowered Add has {len(self.mults)} inputs, got {len(xs)}")
        out = 0.0
        for x, m, d in zip(xs, self.mults, self.divs):
            m = m.reshape((-1,) + (1,) * (x.ndim - 3)) if x.ndim > 2 else m
            out = out + torch.round(x * d) * m
        return out


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, new)


def frozen_twin(model: nn.Module, program: IntegerProgram) -> nn.Module:
    """A float64 copy of ``model`` computing the program's integers (see the module docstring).

    ``program`` must come from :func:`~.lowering.lower` on this model in this process.
    """
    info = getattr(program, "twin", None)
    if info is None:
        raise ConfigError("frozen_twin needs the program returned by lower() (not a loaded one)")
    twin = copy.deepcopy(model).double().eval()
    out_syn = info.get("(output)", {}).get("synapse")
    for name, m in list(twin.named_modules()):
        if isinstance(m, (TdBN, nn.modules.batchnorm._BatchNorm)):
            _replace(twin, name, nn.Identity())
        elif "mults" in info.get(name, {}):
            _replace(twin, name, _TwinAdd(info[name]["mults"], info[name]["divs"]))
    for name, m in twin.named_modules():
        if isinstance(m, ActFakeQuant):
            m.exact = True
        if parametrize.is_parametrized(m, "weight") and name != out_syn:
            m.parametrizations.weight[0].exact = True
            if m.bias is not None:
                m.bias = None
        aq = getattr(m, "input_quant", None)
        if isinstance(aq, ActFakeQuant):
            act = info.get(name, {})
            if "act_mult" in act:
                aq.rq_mult, aq.rq_shift = act["act_mult"], act["act_shift"]
                aq.rq_div = act["act_div"]
            if name == out_syn:  # float weights: the codes' real value
                aq.rq_out = aq.scale()
        if isinstance(m, QuantNeuron) and name in info:
            m.exact = True
            m.rq_mult = torch.as_tensor(info[name]["mult"], dtype=torch.float64)
            m.rq_bias = torch.as_tensor(info[name]["bias"], dtype=torch.float64)
            m.rq_shift, m.rq_div = int(info[name]["shift"]), float(info[name]["div"])
    return twin
