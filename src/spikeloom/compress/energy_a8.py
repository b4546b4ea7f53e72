"""First-order accelerator energy model of spec A8 (Schaefer et al. 2023, [RECON] surrogate).

A named energy model beside the 45 nm operation table (:class:`spikeloom.cost.Energy45nm`),
for weight bit width, weight sparsity and storage format::

    E = Σ_layers [ SynOps · (e_add(b) + e_wread(b, fmt))  +  N_neuron_updates · e_lif
                   + S_weights(b, p, fmt) · e_dram_per_bit · dram_loads ]

* ``SynOps``: spike-gated synaptic events of the layer measured by
  :func:`spikeloom.cost.measure_cost` (only non-zero inputs; a pruned layer counts only its
  remaining synapses, :mod:`spikeloom.compress.prune`), i.e. ``N_in_spikes · fanout``;
* ``e_add(b) = b · e_add_per_bit`` (an add-and-compare unit: one add of a weight per event);
* ``e_wread(b, fmt) = read_bits(b, fmt) · e_wread_per_bit`` with ``read_bits`` = ``b``
  (``"dense"``), ``b + rle_bits`` (``"rle"``: run length stored with every non-zero) or
  ``b + 1`` (``"bitmask"``);
* ``S_weights``: stored bits: ``#W·b`` (dense), ``nnz·(b + rle_bits)`` (RLE),
  ``#W + nnz·b`` (bitmask);
* weight bits ``b`` per layer from the compression applied (quantizer parametrizations,
  :func:`spikeloom.compress.size.tensor_bits`), else the dtype width.

Default constants are 45 nm-like orders of magnitude [RECON]: an 8-bit integer add 0.03 pJ
(Horowitz 2014) → 3.75 fJ/bit, an 8 KB SRAM read of 64 bit 10 pJ → 0.156 pJ/bit, a DRAM read
of 64 bit 1.3 nJ → 20 pJ/bit, a LIF update 2 adds + 2 multiplies of 16-bit integers ≈ 0.5 pJ.
The model reproduces the qualitative finding of the paper: sparse formats pay a metadata
overhead, so 80 % pruning at 8 bit costs more than dense ternary weights (tested).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from torch import nn

from ..cost.report import CostReport
from ..errors import ConfigError
from ..walk import layers_with_role
from .size import tensor_bits

__all__ = ["AcceleratorA8", "A8Layer", "a8_energy", "ENERGY_MODEL_NAME"]

ENERGY_MODEL_NAME = "a8-accelerator"
_FORMATS = ("dense", "rle", "bitmask")


@dataclass(frozen=True)
class AcceleratorA8:
    """Constants of the A8 first-order model (joules; see the module docstring)."""

    e_add_per_bit: float = 0.03e-12 / 8
    e_wread_per_bit: float = 10e-12 / 64
    e_dram_per_bit: float = 1.3e-9 / 64
    e_lif: float = 0.5e-12
    fmt: Literal["dense", "rle", "bitmask"] = "rle"
    rle_bits: int = 4
    dram_loads: float = 1.0
    name: str = ENERGY_MODEL_NAME

    def __post_init__(self) -> None:
        if self.fmt not in _FORMATS:
            raise ConfigError(f"AcceleratorA8.fmt must be one of {_FORMATS}, got {self.fmt!r}")
        for f in ("e_add_per_bit", "e_wread_per_bit", "e_dram_per_bit", "e_lif", "rle_bits",
                  "dram_loads"):
            if getattr(self, f) < 0:
                raise ConfigError(f"AcceleratorA8.{f} must be >= 0, got {getattr(self, f)}")

    def read_bits(self, b: int) -> int:
        """Bits read per synaptic event."""
        return b + {"dense": 0, "rle": self.rle_bits, "bitmask": 1}[self.fmt]

    def stored_bits(self, b: int, n_weights: int, nnz: int) -> int:
        """Bits to store a layer's weights in this format."""
        if self.fmt == "dense":
            return n_weights * b
        if self.fmt == "rle":
            return nnz * (b + self.rle_bits)
        return n_weights + nnz * b

    def layer(self, synops: float, neuron_updates: float, n_weights: int, nnz: int,
              bits: int) -> tuple[float, float, float]:
        """``(synaptic, neuron, memory)`` energy of one layer in joules."""
        e_syn = synops * (bits * self.e_add_per_bit + self.read_bits(bits) * self.e_wread_per_bit)
        e_mem = self.stored_bits(bits, n_weights, nnz) * self.e_dram_per_bit * self.dram_loads
        return e_syn, neuron_updates * self.e_lif, e_mem


@dataclass(frozen=True)
class A8Layer:
    """One synapse layer (with the neuron updates of the neuron row it drives, if any)."""

    name: str
    bits: int
    n_weights: int
    nnz: int
    synops: float
    e_syn: float
    e_mem: float


def a8_energy(model: nn.Module, report: CostReport, acc: AcceleratorA8 | None = None,
              bits: Mapping[str, int] | None = None) -> tuple[float, list[A8Layer], float]:
    """Energy per inference of ``model`` under :class:`AcceleratorA8`.

    Args:
        model: the (compressed) model; weight counts, zeros and bit widths come from it.
        report: its :func:`~spikeloom.cost.measure_cost` report (SynOps, neuron updates).
        acc: the constants (default :class:`AcceleratorA8`).
        bits: per-layer weight-bit overrides (layer name -> bits).

    Returns:
        ``(total joules, synapse rows, neuron joules)``.
    """
    acc = acc or AcceleratorA8()
    widths = tensor_bits(model)
    syn_rows = {r.name: r for r in report.rows if r.role == "synapse"}
    out = []
    for ly in layers_with_role(model, "synapse"):
        w = getattr(ly.module, "weight", None)
        row = syn_rows.get(ly.name)
        if w is None or row is None or not hasattr(w, "numel"):
            continue
        b = (bits or {}).get(ly.name) or widths.get(f"{ly.name}.weight", (0, 32))[1]
        n, nnz = int(w.numel()), int((w.detach() != 0).sum())
        synops = float(row.eff_acs + row.eff_macs)
        e_syn, _, e_mem = acc.layer(synops, 0.0, n, nnz, int(b))
        out.append(A8Layer(ly.name, int(b), n, nnz, synops, e_syn, e_mem))
    e_neu = sum(r.neuron_updates for r in report.rows if r.role == "neuron") * acc.e_lif
    return sum(r.e_syn + r.e_mem for r in out) + e_neu, out, e_neu
