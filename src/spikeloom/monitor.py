"""Monitors: record firing rates, spike rasters and attention scores while active.

A monitor is a context manager over a model. On entry it registers probe hooks
(:mod:`spikeloom.probes`) on the layers it watches (found by :func:`spikeloom.walk.iter_layers`);
on exit it removes them. Forward passes outside a monitor record nothing and write nothing
onto modules::

    with SpikeMonitor(model) as mon:
        model(x)
    mon.rates()          # {"features.0.3": 0.12, ...}: spikes per neuron per step

    with AttentionMonitor(model) as att:
        model.eval(); model(x)
    att.discard_report() # frames zeroed by TA's inference-time discarding, per layer

Accumulation stays on the tensors' device: reading :meth:`SpikeMonitor.rates` synchronises once,
so a monitor that is read only when logging costs no per-step device sync.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from .probes import Probed
from .walk import iter_layers

__all__ = ["Monitor", "SpikeMonitor", "AttentionMonitor"]


class Monitor:
    """Base class: hooks the probe ``probe`` of every probed layer with role in ``roles``.

    Args:
        model: the model to watch (a DDP wrapper is unwrapped).
        roles: layer roles to watch.
        probe: probe name to record (``"spikes"``, ``"scores"``, ...).
        layers: restrict to these layer names (default: all layers with the roles).
    """

    def __init__(self, model: nn.Module, roles: tuple[str, ...], probe: str,
                 layers: list[str] | None = None) -> None:
        model = getattr(model, "module", model) if isinstance(
            model, nn.parallel.DistributedDataParallel) else model
        self.probe = probe
        self.layers: dict[str, nn.Module] = {
            layer.name: layer.module
            for layer in iter_layers(model)
            if layer.role in roles and isinstance(layer.module, Probed)
            and (layers is None or layer.name in layers)
        }
        self._names = {id(m): n for n, m in self.layers.items()}
        self._handles: list[RemovableHandle] = []
        self.reset()

    def reset(self) -> None:  # pragma: no cover - overridden
        """Forget what was recorded."""

    def _record(self, name: str, module: nn.Module, value: Tensor) -> None:  # pragma: no cover
        raise NotImplementedError

    def _hook(self, module: Any, name: str, value: Tensor) -> None:
        if name == self.probe:
            self._record(self._names[id(module)], module, value)

    @property
    def active(self) -> bool:
        return bool(self._handles)

    def __enter__(self) -> Monitor:
        if self._handles:
            raise RuntimeError(f"{type(self).__name__} is already active")
        self._handles = [m.register_probe_hook(self._hook) for m in self.layers.values()]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


class SpikeMonitor(Monitor):
    """Firing rates (and optionally rasters) of the neuron layers.

    Args:
        model: the model.
        raster: keep the spikes of the last forward pass of each layer (``rasters``).
        raster_samples: keep only this many leading samples of the batch in the raster.
        layers: restrict to these layer names.

    Attributes:
        rasters: ``{layer: spikes [T, b, ...]}`` of the last forward (when ``raster=True``).
    """

    def __init__(self, model: nn.Module, *, raster: bool = False, raster_samples: int | None = 1,
                 layers: list[str] | None = None) -> None:
        self.raster = raster
        self.raster_samples = raster_samples
        super().__init__(model, ("neuron",), "spikes", layers)

    def reset(self) -> None:
        self._sums: dict[str, Tensor] = {}
        self._counts: dict[str, int] = {}
        self._last: dict[str, Tensor] = {}
        self.rasters: dict[str, Tensor] = {}

    def _record(self, name: str, module: nn.Module, s: Tensor) -> None:
        rate = s.float().mean()  # stays on device: no sync
        self._last[name] = rate
        self._sums[name] = self._sums[name] + rate if name in self._sums else rate
        self._counts[name] = self._counts.get(name, 0) + 1
        if self.raster:
            n = self.raster_samples
            self.rasters[name] = (s[:, :n] if n is not None and s.ndim > 1 else s).cpu()

    @property
    def calls(self) -> int:
        """Number of forward passes recorded (of the most-called layer)."""
        return max(self._counts.values(), default=0)

    def _to_floats(self, d: dict[str, Tensor], div: dict[str, int] | None = None) -> dict:
        names = [n for n in self.layers if n in d]
        if not names:
            return {}
        vals = torch.stack([d[n].detach().float().cpu() for n in names]).tolist()
        return {n: v / (div[n] if div else 1) for n, v in zip(names, vals)}

    def rates(self) -> dict[str, float]:
        """Mean spikes per neuron per step of each layer, averaged over the recorded passes."""
        return self._to_floats(self._sums, self._counts)

    def sums(self) -> dict[str, float]:
        """Sum over recorded passes of each layer's per-pass rate (for distributed reduction)."""
        return self._to_floats(self._sums)

    def last_rates(self) -> dict[str, float]:
        """Per-layer rate of the last forward pass."""
        return self._to_floats(self._last)

    def mean_rate(self) -> float:
        """Mean over layers of :meth:`rates` (0 when nothing was recorded)."""
        r = self.rates()
        return sum(r.values()) / len(r) if r else 0.0


class AttentionMonitor(Monitor):
    """Scores and inference-time frame discarding of the temporal-attention layers.

    Attributes:
        scores: ``{layer: a [T, B]}`` of the last forward pass.
    """

    def __init__(self, model: nn.Module, layers: list[str] | None = None) -> None:
        super().__init__(model, ("attention",), "scores", layers)

    def reset(self) -> None:
        self.scores: dict[str, Tensor] = {}
        self._total: dict[str, int] = {}
        self._discarded: dict[str, int] = {}

    def _record(self, name: str, module: nn.Module, a: Tensor) -> None:
        self.scores[name] = a
        if getattr(module, "discarding", False):
            disc = int((a < module.discard_threshold).sum())
            self._total[name] = self._total.get(name, 0) + a.numel()
            self._discarded[name] = self._discarded.get(name, 0) + disc

    def discard_report(self) -> dict[str, dict[str, float]]:
        """Per layer ``{"total_frames", "discarded_frames", "fraction"}`` over the recorded
        passes in which the layer discarded (eval mode with a threshold)."""
        out = {}
        for name in self._total:
            total, disc = self._total[name], self._discarded[name]
            out[name] = {"total_frames": total, "discarded_frames": disc,
                         "fraction": disc / total if total else 0.0}
        return out
