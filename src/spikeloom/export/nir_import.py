"""NIR import: :func:`from_nir` builds a runnable :class:`~.nir_modules.NIRNetwork`.

Node types are looked up in :data:`NIR_IMPORTERS` (a :class:`~spikeloom.registry.Registry`
keyed by the NIR class name; register more there). Discretisation with step ``dt``:

* **spikeloom's own graphs** (neuron nodes carry ``metadata["spikeloom_neuron"]``): the stored
  discrete parameters rebuild the same LIF/IF/PLIF, the exact inverse of
  :func:`~spikeloom.export.to_nir` (round trips give identical spikes). The metadata is used
  only when it agrees with the node's ``tau``/``r`` (within 1e-6); an edited node falls back to
  the rule below.
* **other graphs**: forward Euler, the discretisation snnTorch, SpikingJelly and Norse use:
  ``k = 1 - dt/τ``, input current ``(dt/τ)·(R·I + v_leak)`` (an
  :class:`~.nir_modules.ElementwiseAffine` before the neuron when it is not the identity);
  ``IF``: ``k = 1``, current ``dt·R·I``. ``CubaLIF``: the synaptic current is updated first
  (``I[t] = (1 - dt/τ_syn)·I[t-1] + (dt/τ_syn)·w_in·x[t]``) and drives the membrane in the
  same step (snnTorch's ``Synaptic`` order). ``LI``/``I``: non-spiking integrators.
  Per-neuron ``τ`` is supported; thresholds and reset potentials must be uniform per node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nir
import numpy as np
import torch
from torch import nn

from ..errors import ExportError
from ..layers import TimeDistributed
from ..neurons import IF, LIF, PLIF
from ..registry import Registry
from .nir_modules import NIRLIF, ElementwiseAffine, LeakyIntegrator, NIRNetwork

__all__ = ["from_nir", "read_nir", "NIR_IMPORTERS", "ImportContext"]


@dataclass
class ImportContext:
    """What an importer knows: the node's name and the time step."""

    name: str
    dt: float


Importer = Callable[[nir.NIRNode, ImportContext], nn.Module | None]

#: NIR node type name -> importer ``(node, ctx) -> module`` (``None`` = identity)
NIR_IMPORTERS: Registry[Importer] = Registry("NIR node type")


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float32))


def _uniform(a, what: str, ctx: ImportContext) -> float:
    arr = np.asarray(a, dtype=np.float64)
    if arr.size and not np.all(arr == arr.flat[0]):
        raise ExportError(f"NIR node {ctx.name!r}: per-neuron {what} is not supported "
                          "(spikeloom neurons have one value per layer)")
    return float(arr.flat[0]) if arr.size else 0.0


def _seq(*mods: nn.Module | None) -> nn.Module | None:
    mods = tuple(m for m in mods if m is not None)
    return None if not mods else (mods[0] if len(mods) == 1 else nn.Sequential(*mods))


@NIR_IMPORTERS.register("Affine")
def _affine(node: nir.Affine, ctx: ImportContext) -> nn.Module:
    w = _t(node.weight)
    lin = nn.Linear(w.shape[1], w.shape[0], bias=True)
    lin.weight.data.copy_(w)
    lin.bias.data.copy_(_t(node.bias))
    return lin


@NIR_IMPORTERS.register("Linear")
def _linear(node: nir.Linear, ctx: ImportContext) -> nn.Module:
    w = _t(node.weight)
    lin = nn.Linear(w.shape[1], w.shape[0], bias=False)
    lin.weight.data.copy_(w)
    return lin


def _conv(node, ctx: ImportContext) -> nn.Module:
    w = _t(node.weight)
    cls = nn.Conv1d if w.ndim == 3 else nn.Conv2d
    pad = node.padding
    pad = pad if isinstance(pad, str) else tuple(int(p) for p in np.atleast_1d(pad))
    conv = cls(w.shape[1] * int(node.groups), w.shape[0], tuple(w.shape[2:]),
               stride=tuple(int(s) for s in np.atleast_1d(node.stride)), padding=pad,
               dilation=tuple(int(d) for d in np.atleast_1d(node.dilation)),
               groups=int(node.groups), bias=True)
    conv.weight.data.copy_(w)
    conv.bias.data.copy_(_t(node.bias) if node.bias is not None else 0.0)
    return TimeDistributed(conv)


NIR_IMPORTERS.register("Conv1d", _conv)
NIR_IMPORTERS.register("Conv2d", _conv)


def _pool(node, ctx: ImportContext, sum_: bool) -> nn.Module:
    k = tuple(int(n) for n in np.broadcast_to(node.kernel_size, (2,)))
    s = tuple(int(n) for n in np.broadcast_to(node.stride, (2,)))
    p = tuple(int(n) for n in np.broadcast_to(node.padding, (2,)))
    return TimeDistributed(nn.AvgPool2d(k, s, p, divisor_override=1 if sum_ else None))


NIR_IMPORTERS.register("AvgPool2d", lambda n, c: _pool(n, c, False))
NIR_IMPORTERS.register("SumPool2d", lambda n, c: _pool(n, c, True))


@NIR_IMPORTERS.register("Flatten")
def _flatten(node: nir.Flatten, ctx: ImportContext) -> nn.Module:
    start, end = int(node.start_dim), int(node.end_dim)
    return nn.Flatten(start + 2 if start >= 0 else start, end + 2 if end >= 0 else end)


@NIR_IMPORTERS.register("Scale")
def _scale(node: nir.Scale, ctx: ImportContext) -> nn.Module:
    return ElementwiseAffine(_t(node.scale), torch.zeros(()))


def _current(gain: np.ndarray, shift: np.ndarray) -> nn.Module | None:
    """The input-current map before a neuron, or ``None`` when it is the identity."""
    if np.all(gain == 1.0) and np.all(shift == 0.0):
        return None
    return ElementwiseAffine(_t(gain), _t(shift))


def _decay(tau, ctx: ImportContext) -> tuple[np.ndarray, float | torch.Tensor]:
    tau = np.asarray(tau, dtype=np.float64)
    if np.any(tau < ctx.dt):
        raise ExportError(f"NIR node {ctx.name!r}: tau = {tau.min():g} s is below dt = "
                          f"{ctx.dt:g} s; forward Euler would be unstable (pass a smaller dt)")
    a = ctx.dt / tau  # dt/τ
    k = 1.0 - a
    k_out: float | torch.Tensor = float(k.flat[0]) if np.all(k == k.flat[0]) else _t(k)
    return a, k_out


def _exact(node, ctx: ImportContext) -> nn.Module | None:
    """spikeloom's own neuron, rebuilt from the node's metadata (None if absent/edited)."""
    meta = getattr(node, "metadata", None) or {}
    kind = meta.get("spikeloom_neuron")
    if isinstance(kind, bytes):
        kind = kind.decode()
    if kind not in ("lif", "if", "plif") or (kind != "if" and float(meta["decay"]) >= 1.0):
        return None
    k, s_in = float(meta["decay"]), float(meta["input_scale"])
    thr = _uniform(node.v_threshold, "threshold", ctx)
    rst = _uniform(node.v_reset, "reset potential", ctx)
    if kind == "if":
        ok = np.allclose(node.r, s_in / ctx.dt, rtol=1e-6)
    else:
        tau = ctx.dt / (1.0 - k)
        ok = np.allclose(node.tau, tau, rtol=1e-6) and np.allclose(node.r, s_in * tau / ctx.dt,
                                                                   rtol=1e-6)
    if not ok:
        return None
    if kind == "if":
        return IF(v_th=thr, v_reset=rst)
    if kind == "lif":
        return LIF(v_th=thr, decay=k, v_reset=rst)
    plif = PLIF(init_tau=2.0, v_th=thr, v_reset=rst)
    w = meta.get("w")
    with torch.no_grad():  # the stored parameter gives sigmoid(w) = 1 - k bit for bit
        plif.w.copy_(torch.tensor(float(w)) if w is not None else
                     torch.logit(torch.tensor(s_in, dtype=torch.float64)).float())
    return plif if float(plif.input_scale().detach()) == np.float32(s_in) else None


@NIR_IMPORTERS.register("LIF")
def _lif(node: nir.LIF, ctx: ImportContext) -> nn.Module:
    exact = _exact(node, ctx)
    if exact is not None:
        return exact
    a, k = _decay(node.tau, ctx)
    thr = _uniform(node.v_threshold, "threshold", ctx)
    rst = _uniform(node.v_reset, "reset potential", ctx)
    neuron = LIF(v_th=thr, decay=k, v_reset=rst) if isinstance(k, float) else \
        NIRLIF(k, thr, rst)
    r, v_leak = np.asarray(node.r, np.float64), np.asarray(node.v_leak, np.float64)
    return _seq(_current(a * r, a * v_leak), neuron)


@NIR_IMPORTERS.register("IF")
def _if(node: nir.IF, ctx: ImportContext) -> nn.Module:
    exact = _exact(node, ctx)
    if exact is not None:
        return exact
    thr = _uniform(node.v_threshold, "threshold", ctx)
    rst = _uniform(node.v_reset, "reset potential", ctx)
    gain = ctx.dt * np.asarray(node.r, np.float64)
    return _seq(_current(gain, np.zeros_like(gain)), IF(v_th=thr, v_reset=rst))


@NIR_IMPORTERS.register("LI")
def _li(node: nir.LI, ctx: ImportContext) -> nn.Module:
    a, k = _decay(node.tau, ctx)
    r, v_leak = np.asarray(node.r, np.float64), np.asarray(node.v_leak, np.float64)
    return _seq(_current(a * r, a * v_leak), LeakyIntegrator(k))


@NIR_IMPORTERS.register("I")
def _integrator(node: nir.I, ctx: ImportContext) -> nn.Module:
    gain = ctx.dt * np.asarray(node.r, np.float64)
    return _seq(_current(gain, np.zeros_like(gain)), LeakyIntegrator(1.0))


@NIR_IMPORTERS.register("CubaLIF")
def _cubalif(node: nir.CubaLIF, ctx: ImportContext) -> nn.Module:
    a_syn, k_syn = _decay(node.tau_syn, ctx)
    w_in = np.asarray(node.w_in, np.float64)
    syn = _seq(_current(a_syn * w_in, np.zeros_like(w_in)), LeakyIntegrator(k_syn))
    mem = _lif(nir.LIF(tau=node.tau_mem, r=node.r, v_leak=node.v_leak,
                       v_threshold=node.v_threshold, v_reset=node.v_reset),
               ImportContext(ctx.name, ctx.dt))
    return nn.Sequential(syn, mem)


def _order(graph: nir.NIRGraph) -> list[str]:
    """Topological order of the non-I/O nodes (Kahn); refuses cycles."""
    preds: dict[str, set[str]] = {k: set() for k in graph.nodes}
    for a, b in graph.edges:
        preds[b].add(a)
    done: list[str] = []
    ready = [k for k, p in preds.items() if not p]
    remaining = {k: set(p) for k, p in preds.items()}
    while ready:
        k = ready.pop(0)
        done.append(k)
        for m, p in remaining.items():
            if k in p:
                p.discard(k)
                if not p and m not in done and m not in ready:
                    ready.append(m)
    if len(done) != len(graph.nodes):
        cyc = sorted(set(graph.nodes) - set(done))
        raise ExportError(f"the NIR graph has a cycle through nodes {cyc}; spikeloom runs "
                          "feed-forward NIR graphs only")
    return done


def _graph_dt(graph: nir.NIRGraph, dt: float | None) -> float:
    meta = graph.metadata if isinstance(graph.metadata, dict) else {}
    if dt is None and "dt" in meta:
        dt = float(np.asarray(meta["dt"]))
    if dt is None:
        raise ExportError("from_nir needs dt= (seconds per step) for a graph that does not "
                          "store one in its metadata; snnTorch and SpikingJelly export with "
                          "dt=1e-4 by default")
    if not dt > 0:
        raise ExportError(f"dt must be > 0 seconds, got {dt}")
    return float(dt)


def from_nir(graph: nir.NIRGraph | str | Path, *, dt: float | None = None) -> NIRNetwork:
    """Build a spikeloom module from a NIR graph (or a ``.nir`` file).

    Args:
        graph: a :class:`nir.NIRGraph` or the path of a NIR (HDF5) file.
        dt: seconds per time step; default the graph's ``metadata["dt"]`` (spikeloom writes
            it); required otherwise.

    Returns:
        a :class:`~.nir_modules.NIRNetwork` running ``[T, B, *input] -> [T, B, *output]``.

    Raises:
        ExportError: missing ``dt``; a node of an unsupported type (named, with the supported
            types); several inputs/outputs; a cycle; per-neuron thresholds.
    """
    if isinstance(graph, (str, Path)):
        graph = nir.read(graph)
    dt = _graph_dt(graph, dt)
    ins = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    outs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Output)]
    if len(ins) != 1 or len(outs) != 1:
        raise ExportError(f"from_nir supports graphs with one Input and one Output node, got "
                          f"inputs {ins} and outputs {outs}")
    for name, node in graph.nodes.items():
        t = type(node).__name__
        if not isinstance(node, (nir.Input, nir.Output)) and t not in NIR_IMPORTERS:
            raise ExportError(f"NIR node {name!r} has type {t!r}, which spikeloom cannot "
                              f"import; supported node types: {', '.join(NIR_IMPORTERS)}")
    preds: dict[str, list[str]] = {k: [] for k in graph.nodes}
    for a, b in graph.edges:
        preds[b].append(a)
    key = {k: "input" if k == ins[0] else
           ("node_input" if k == "input" else k.replace(".", "__")) for k in graph.nodes}
    layers: dict[str, nn.Module] = {}
    inputs: dict[str, list[str]] = {}
    alias: dict[str, list[str]] = {}  # identity nodes forward their (summed) sources
    for name in _order(graph):
        node = graph.nodes[name]
        if isinstance(node, (nir.Input, nir.Output)):
            continue
        srcs = [s for p in preds[name] for s in alias.get(p, [key[p]])]
        if not srcs:
            raise ExportError(f"NIR node {name!r} has no input edge")
        mod = NIR_IMPORTERS.get(type(node).__name__)(node, ImportContext(name, dt))
        if mod is None:
            alias[name] = srcs
            continue
        layers[key[name]] = mod
        inputs[key[name]] = srcs
    out_srcs = [s for p in preds[outs[0]] for s in alias.get(p, [key[p]])]
    return NIRNetwork(layers, inputs, out_srcs, dt)


def read_nir(path: str | Path, **kwargs) -> NIRNetwork:
    """:func:`from_nir` of a NIR file."""
    return from_nir(Path(path), **kwargs)
