"""``quantize(model, config)`` / ``dequantize(model)``: quantization-aware training for any model.

Through the layer walk (:func:`spikeloom.walk.iter_layers`):

* every synapse (``nn.Linear``, ``nn.Conv1d``, ``nn.Conv2d``) gets a weight parametrization
  (:class:`~.fake.WeightFakeQuant` or :class:`~.fake.DuQ`, ``torch.nn.utils.parametrize``);
* the analog inputs of synapses — the first synapse's input and the inputs after a neuron that
  does not emit spikes (LIAF) — get an :class:`~.fake.ActFakeQuant` (submodule
  ``input_quant`` of the synapse, called by a forward pre-hook);
* every neuron is swapped for a :class:`~.neuron.QuantNeuron` wrapping it (integer membrane,
  threshold and leak).

Quantized layers carry ``cost_precision`` so :func:`spikeloom.cost.measure_cost` prices them at
integer energies. All quantizer state (DuQ's ``a``/``c``, activation ranges, the original
weights) is in the state dict, so checkpoints and ``--resume`` restore it once the same
``quantize`` has been applied to the rebuilt model (``spikeloom compress`` runs do that from
their config). ``dequantize`` undoes everything and leaves the (trained) float weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch import nn
from torch.nn.utils import parametrize

from ...cost.energy import precision_for_bits
from ...errors import ConfigError
from ...neurons import BaseNeuron
from ...walk import iter_layers
from .fake import DUQ_INITS, ActFakeQuant, DuQ, WeightFakeQuant, check_bits
from .neuron import QuantNeuron

__all__ = ["QuantConfig", "quantize", "dequantize", "is_quantized", "SUPPORTED_SYNAPSES",
           "synapse_bits"]

#: synapse types ``quantize`` handles
SUPPORTED_SYNAPSES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d)
_HOOK = "_spikeloom_act_hook"
_CONFIG = "_spikeloom_quant_config"


@dataclass(frozen=True)
class QuantConfig:
    """What to quantize and how.

    Attributes:
        weight_bits: 2..8.
        weight_method: ``"uniform"`` (max-abs / min-max scale) or ``"duq"`` (spec A8,
            learnable clip and scale).
        per_channel: one weight scale per output channel instead of one per tensor; ``None``:
            the method's default (uniform per channel, DuQ per tensor as in spec A8).
        duq_init: DuQ's initial clip/scale, ``"3sigma"`` (spec) or ``"mse"`` (least squares,
            :func:`~.fake.duq_mse_init`).
        symmetric: symmetric weight grid (uniform only).
        act_bits: bits of analog synapse inputs (``None``: leave them in float).
        neurons: put neurons on the fixed-point grid (:class:`QuantNeuron`).
        mem_bits, decay_bits, v_range: the neuron grid (see :class:`QuantNeuron`).
        first_last_bits: weight bits of the first and the last synapse (found by the layer
            walk, in registration order); ``None``: every synapse at ``weight_bits``.
            E.g. 8 keeps the input and output layers at 8 bits under ternary DuQ.
    """

    weight_bits: int = 8
    weight_method: str = "uniform"
    per_channel: bool | None = None
    symmetric: bool = True
    duq_init: str = "3sigma"
    act_bits: int | None = 8
    neurons: bool = True
    mem_bits: int = 16
    decay_bits: int = 8
    v_range: int = 4
    first_last_bits: int | None = None

    def __post_init__(self) -> None:
        check_bits(self.weight_bits, "weight_bits")
        if self.first_last_bits is not None:
            check_bits(self.first_last_bits, "first_last_bits")
        if self.act_bits is not None:
            check_bits(self.act_bits, "act_bits")
        if self.weight_method not in ("uniform", "duq"):
            raise ConfigError(f"weight_method must be 'uniform' or 'duq', got "
                              f"{self.weight_method!r}")
        if self.duq_init not in DUQ_INITS:
            raise ConfigError(f"duq_init must be one of {', '.join(DUQ_INITS)}, got "
                              f"{self.duq_init!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_quantized(model: nn.Module) -> bool:
    return getattr(model, _CONFIG, None) is not None


def _input_hook(module: nn.Module, args: tuple) -> tuple:
    return (module.input_quant(args[0]), *args[1:])


def _set_child(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def synapse_bits(model: nn.Module, config: QuantConfig) -> dict[str, int]:
    """``{synapse name: weight bits}`` under ``config``: ``first_last_bits`` for the first and
    the last synapse of the layer walk, ``weight_bits`` for the others."""
    names = [layer.name for layer in iter_layers(model) if layer.role == "synapse"]
    bits = {n: config.weight_bits for n in names}
    if config.first_last_bits is not None and names:
        bits[names[0]] = bits[names[-1]] = config.first_last_bits
    return bits


def quantize(model: nn.Module, config: QuantConfig | None = None) -> nn.Module:
    """Quantize ``model`` in place for quantization-aware training (see the module docstring).

    Raises:
        ConfigError: the model is quantized already, or holds a synapse type that cannot be
            quantized (the message names the layer and lists the supported types).
    """
    cfg = config or QuantConfig()
    if is_quantized(model):
        raise ConfigError("the model is quantized already; dequantize(model) first")
    layers = list(iter_layers(model))
    for layer in layers:
        if layer.role == "synapse" and not isinstance(layer.module, SUPPORTED_SYNAPSES):
            raise ConfigError(
                f"layer {layer.name!r} ({type(layer.module).__name__}) cannot be quantized; "
                f"supported synapses: {', '.join(t.__name__ for t in SUPPORTED_SYNAPSES)}")
    bits = synapse_bits(model, cfg)
    analog_input = True  # the first synapse sees the (analog) network input
    for layer in layers:
        m = layer.module
        if layer.role == "synapse":
            pc = cfg.per_channel if cfg.per_channel is not None else cfg.weight_method != "duq"
            b = bits[layer.name]
            q = (DuQ(m.weight, b, pc, cfg.duq_init) if cfg.weight_method == "duq"
                 else WeightFakeQuant(b, pc, cfg.symmetric))
            parametrize.register_parametrization(m, "weight", q)
            m.cost_precision = precision_for_bits(b)
            if analog_input and cfg.act_bits is not None:
                m.input_quant = ActFakeQuant(cfg.act_bits, signed=False)
                setattr(m, _HOOK, m.register_forward_pre_hook(_input_hook))
            analog_input = False
        elif layer.role == "neuron":
            analog_input = not getattr(m, "emits_spikes", True)
            if cfg.neurons and isinstance(m, BaseNeuron) and not isinstance(m, QuantNeuron):
                if not layer.name:
                    raise ConfigError("quantize a model that contains the neuron, not the "
                                      "neuron itself (wrap it: QuantNeuron(neuron))")
                qn = QuantNeuron(m, cfg.mem_bits, cfg.decay_bits, cfg.v_range)
                qn.cost_precision = precision_for_bits(cfg.mem_bits)
                _set_child(model, layer.name, qn)
    setattr(model, _CONFIG, cfg)
    return model


def dequantize(model: nn.Module) -> nn.Module:
    """Undo :func:`quantize` in place: float weights (the trained originals), original neurons,
    no activation quantizers."""
    if not is_quantized(model):
        raise ConfigError("the model is not quantized")
    for name, m in list(model.named_modules()):
        if isinstance(m, QuantNeuron):
            _set_child(model, name, m.inner)
            continue
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
        handle = m.__dict__.pop(_HOOK, None)
        if handle is not None:
            handle.remove()
            del m.input_quant
        m.__dict__.pop("cost_precision", None)
    delattr(model, _CONFIG)
    return model
