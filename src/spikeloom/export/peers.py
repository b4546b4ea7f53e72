"""Weights from SpikingJelly and snnTorch state dicts, and their neurons as spikeloom neurons.

:func:`load_peer_state_dict` copies a peer model's ``state_dict()`` into a spikeloom model of
the same architecture. The peer's entries are grouped by module (key prefix) in state-dict
order and classified by their keys; the spikeloom model's layers come from the layer walk
(:func:`spikeloom.walk.iter_layers`, forward order). Synapses, norms and parametrised neurons
are matched by order within their kind:

==================  ===========================================  ==============================
peer entries         kind                                         spikeloom target
==================  ===========================================  ==============================
``weight[, bias]``   Linear / Conv (``weight.ndim >= 2``)         ``nn.Linear`` / ``Conv`` (also
                                                                  inside ``TimeDistributed``)
``weight, bias,      BatchNorm (``nn.BatchNorm*d``,               :class:`~spikeloom.layers.TdBN`
running_mean, ...``  SpikingJelly ``layer.BatchNorm2d``)          (weight divided by ``α·V_th``)
                                                                  or ``nn.BatchNorm*d``
``beta, threshold,   snnTorch ``Leaky``                           LIF: ``decay = beta``,
reset_mechanism_val``                                             ``v_th = threshold``, reset
                                                                  ``0 = subtract -> "soft"``,
                                                                  ``1 = zero -> "hard"``
``w``                SpikingJelly ``ParametricLIFNode``           PLIF ``w`` (same
                                                                  ``sigmoid(w) = 1/τ``)
==================  ===========================================  ==============================

Neurons without state entries (SpikingJelly ``LIFNode``/``IFNode``, whose ``tau`` is a plain
attribute) are built with :func:`spikingjelly_neuron` / :func:`snntorch_neuron`, which state
the equivalences (checked spike for spike in the tests):

* SpikingJelly ``LIFNode(tau, decay_input=False, v_reset=0)`` = ``LIF(decay=1 - 1/tau,
  fire_ge=True)``; ``decay_input=True`` = ``PLIF`` with ``sigmoid(w) = 1/tau`` (input scaled
  by ``1/tau``), ``fire_ge=True``; ``IFNode`` = ``IF(fire_ge=True)``; ``v_reset=None`` = soft
  reset. SpikingJelly starts at and leaks toward ``v_reset``; equal for ``v_reset = 0`` only.
* snnTorch ``Leaky(beta, threshold, reset_mechanism="zero")`` = ``LIF(decay=beta,
  v_th=threshold)`` (any ``reset_delay``); ``reset_mechanism="subtract"`` = ``reset="soft"``
  only with ``reset_delay=False`` (snnTorch's default ``True`` subtracts the threshold one
  step late, after the leak) and while the membrane stays below ``2·threshold``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import ExportError
from ..layers import TdBN, TimeDistributed
from ..neurons import IF, LIF, PLIF, BaseNeuron
from ..registry import Registry
from ..walk import iter_layers

__all__ = ["PEERS", "load_peer_state_dict", "spikingjelly_neuron", "snntorch_neuron"]

_BN_KEYS = {"running_mean", "running_var", "num_batches_tracked"}


@dataclass(frozen=True)
class _Peer:
    """A peer library: the key sets of its parametrised neurons and how to apply them."""

    name: str
    neuron_keys: frozenset[str]
    #: spikeloom neuron types that carry these entries (matched in order)
    targets: tuple[type, ...] = (BaseNeuron,)


#: peer library name -> convention (``"snntorch"``, ``"spikingjelly"``)
PEERS: Registry[_Peer] = Registry("peer library")
PEERS.register("snntorch", _Peer("snntorch", frozenset(
    {"beta", "threshold", "graded_spikes_factor", "reset_mechanism_val"})))
PEERS.register("spikingjelly", _Peer("spikingjelly", frozenset({"w"}), (PLIF,)),
               aliases=("sj",))


def _groups(state: Mapping[str, Tensor]) -> list[tuple[str, dict[str, Tensor]]]:
    groups: dict[str, dict[str, Tensor]] = {}
    for key, val in state.items():
        prefix, _, leaf = key.rpartition(".")
        groups.setdefault(prefix, {})[leaf] = val
    return list(groups.items())


def _kind(prefix: str, entries: dict[str, Tensor], peer: _Peer) -> str:
    keys = set(entries)
    if "running_mean" in keys:
        return "norm"
    if "weight" in keys and entries["weight"].ndim >= 2 and keys <= {"weight", "bias"}:
        return "synapse"
    if keys <= peer.neuron_keys:
        return "neuron"
    if keys <= {"mem", "v"}:  # stored membrane state: not a parameter
        return "state"
    raise ExportError(f"{peer.name} state dict entry {prefix or '(root)'!r} with keys "
                      f"{sorted(keys)} is not a supported layer; supported: Linear/Conv "
                      "(weight, bias), BatchNorm (running stats), "
                      f"neurons ({', '.join(sorted(peer.neuron_keys))})")


def _copy(dst: Tensor, src: Tensor, where: str) -> None:
    if dst.shape != src.shape:
        raise ExportError(f"{where}: shape {tuple(src.shape)} in the state dict, "
                          f"{tuple(dst.shape)} in the model")
    with torch.no_grad():
        dst.copy_(src.to(dst.dtype))


def _load_synapse(m: nn.Module, entries: dict[str, Tensor], where: str) -> None:
    m = m.module if isinstance(m, TimeDistributed) else m
    _copy(m.weight, entries["weight"], where + ".weight")
    if m.bias is not None:
        _copy(m.bias, entries.get("bias", torch.zeros_like(m.bias)), where + ".bias")
    elif "bias" in entries and bool(entries["bias"].any()):
        raise ExportError(f"{where}: the peer layer has a bias, the spikeloom layer has none")


def _load_norm(m: nn.Module, entries: dict[str, Tensor], where: str) -> None:
    scale = m.scale if isinstance(m, TdBN) and m.scale_mode == "fixed" else 1.0
    if m.weight is not None and "weight" in entries:
        _copy(m.weight, entries["weight"] / scale, where + ".weight")
    if m.bias is not None and "bias" in entries:
        _copy(m.bias, entries["bias"], where + ".bias")
    for k in _BN_KEYS & set(entries):
        if getattr(m, k, None) is not None:
            _copy(getattr(m, k), entries[k], f"{where}.{k}")


def _scalar(t: Tensor, what: str, where: str) -> float:
    if t.numel() != 1:
        raise ExportError(f"{where}: per-neuron {what} ({t.numel()} values) is not supported")
    return float(t.reshape(()))


def _load_snntorch_neuron(m: nn.Module, entries: dict[str, Tensor], where: str,
                          reset_delay: bool) -> None:
    if not isinstance(m, LIF) or isinstance(m, IF):
        raise ExportError(f"{where}: an snnTorch Leaky maps to a spikeloom LIF, got "
                          f"{type(m).__name__}")
    if "graded_spikes_factor" in entries and \
            _scalar(entries["graded_spikes_factor"], "spike factor", where) != 1.0:
        raise ExportError(f"{where}: graded spikes (graded_spikes_factor != 1) are not supported")
    if "reset_mechanism_val" in entries:
        code = int(_scalar(entries["reset_mechanism_val"], "reset", where))
        if code == 2:
            raise ExportError(f"{where}: reset_mechanism='none' has no spikeloom neuron")
        if code == 0 and reset_delay:
            raise ExportError(f"{where}: snnTorch's subtractive reset with reset_delay=True "
                              "subtracts the threshold one step late; only reset_delay=False "
                              "(or reset_mechanism='zero') matches spikeloom")
        m.reset = "soft" if code == 0 else "hard"
        m.v_reset = 0.0
    if "threshold" in entries:
        m.v_th = _scalar(entries["threshold"], "threshold", where)
    if "beta" in entries:
        beta = min(max(_scalar(entries["beta"], "beta", where), 0.0), 1.0)  # snnTorch clamps
        if m.learn_decay:
            with torch.no_grad():
                m.decay_logit.fill_(math.log(beta / (1 - beta)))
        else:
            m.decay = beta


def _load_neuron(peer: _Peer, m: nn.Module, entries: dict[str, Tensor], where: str,
                 reset_delay: bool) -> None:
    if peer.name == "snntorch":
        _load_snntorch_neuron(m, entries, where, reset_delay)
    elif isinstance(m, PLIF):
        _copy(m.w, entries["w"].reshape(()), where + ".w")
    else:
        raise ExportError(f"{where}: a SpikingJelly ParametricLIFNode maps to a spikeloom PLIF, "
                          f"got {type(m).__name__}")


def load_peer_state_dict(
    model: nn.Module, state_dict: Mapping[str, Tensor], peer: str, *, reset_delay: bool = True
) -> list[tuple[str, str]]:
    """Copy a SpikingJelly or snnTorch ``state_dict`` into ``model`` (see the module table).

    Args:
        model: a spikeloom model with the same layers in the same order.
        state_dict: the peer model's ``state_dict()`` (or a checkpoint's).
        peer: ``"snntorch"`` or ``"spikingjelly"``.
        reset_delay: the snnTorch ``Leaky`` neurons' ``reset_delay`` (not stored in the state
            dict; snnTorch's default ``True``).

    Returns:
        the pairs ``(peer key prefix, spikeloom layer name)`` that were loaded.

    Raises:
        ExportError: unknown entries, different numbers of layers of a kind, shape mismatches,
            or neuron settings without a spikeloom equivalent (the message names the entry).
    """
    conv = PEERS.get(peer)
    ours: dict[str, list] = {"synapse": [], "norm": [], "neuron": []}
    for layer in iter_layers(model):
        if layer.role in ours and (layer.role != "neuron" or
                                   isinstance(layer.module, conv.targets)):
            ours[layer.role].append(layer)
    theirs: dict[str, list] = {"synapse": [], "norm": [], "neuron": [], "state": []}
    for prefix, entries in _groups(state_dict):
        theirs[_kind(prefix, entries, conv)].append((prefix, entries))
    pairs: list[tuple[str, str]] = []
    for kind in ("synapse", "norm", "neuron"):
        if kind == "neuron" and not theirs[kind]:
            continue  # neurons without parameters: configure them (spikingjelly_neuron, ...)
        if len(theirs[kind]) != len(ours[kind]):
            raise ExportError(
                f"the {conv.name} state dict has {len(theirs[kind])} {kind} layers "
                f"({[p for p, _ in theirs[kind]]}) but the model has {len(ours[kind])} "
                f"({[lay.name for lay in ours[kind]]})"
            )
        for (prefix, entries), layer in zip(theirs[kind], ours[kind]):
            where = f"{conv.name} {prefix!r} -> {layer.name!r}"
            if kind == "synapse":
                _load_synapse(layer.module, entries, where)
            elif kind == "norm":
                _load_norm(layer.module, entries, where)
            else:
                _load_neuron(conv, layer.module, entries, where, reset_delay)
            pairs.append((prefix, layer.name))
    return pairs


def spikingjelly_neuron(kind: str = "lif", tau: float = 2.0, *, decay_input: bool = True,
                        v_threshold: float = 1.0, v_reset: float | None = 0.0) -> BaseNeuron:
    """The spikeloom neuron equal to SpikingJelly's ``LIFNode``/``IFNode``/
    ``ParametricLIFNode`` with these arguments (fires on ``>=`` like SpikingJelly).

    Raises:
        ExportError: a non-zero ``v_reset`` (SpikingJelly leaks toward it, spikeloom toward 0).
    """
    if v_reset not in (None, 0.0):
        raise ExportError(f"SpikingJelly v_reset={v_reset}: SpikingJelly starts at and leaks "
                          "toward v_reset, spikeloom toward 0; only v_reset=0 or None matches")
    reset = "soft" if v_reset is None else "hard"
    kw = {"v_th": v_threshold, "reset": reset, "fire_ge": True}
    kind = kind.lower()
    if kind == "if":
        return IF(**kw)
    if kind not in ("lif", "plif"):
        raise ExportError(f"unknown SpikingJelly neuron {kind!r}; choose lif, plif or if")
    if kind == "plif" or decay_input:
        plif = PLIF(init_tau=tau, surrogate="sigmoid", width=4.0, detach_reset=False, **kw)
        if kind == "lif":
            plif.w.requires_grad_(False)  # a fixed tau
        return plif
    return LIF(decay=1.0 - 1.0 / tau, **kw)


def snntorch_neuron(beta: float, threshold: float = 1.0, *, reset_mechanism: str = "subtract",
                    reset_delay: bool = True) -> LIF:
    """The spikeloom LIF equal to snnTorch's ``Leaky(beta, threshold, reset_mechanism,
    reset_delay)`` (see the module docstring for the conditions).

    Raises:
        ExportError: ``reset_mechanism="none"``, or ``"subtract"`` with ``reset_delay=True``.
    """
    code = {"subtract": 0, "zero": 1, "none": 2}.get(reset_mechanism)
    if code is None:
        raise ExportError(f"unknown snnTorch reset_mechanism {reset_mechanism!r}; choose "
                          "subtract, zero or none")
    lif = LIF(decay=min(max(beta, 1e-12), 1.0))
    _load_snntorch_neuron(lif, {"beta": torch.tensor(beta), "threshold": torch.tensor(threshold),
                                "reset_mechanism_val": torch.tensor(code)}, "snntorch Leaky",
                          reset_delay)
    return lif
