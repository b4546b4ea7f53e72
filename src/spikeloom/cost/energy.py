"""Energy per operation at 45 nm (Horowitz, ISSCC 2014), in joules.

The table is the one of M. Horowitz, "Computing's energy problem (and what we can do about
it)", ISSCC 2014: adds and multiplies per precision, SRAM and DRAM reads. The synaptic energies
``e_mac`` / ``e_ac`` follow the common SNN convention ``E_MAC = 4.6 pJ`` (32-bit FP mult 3.7 +
add 0.9) and ``E_AC = 0.9 pJ`` (32-bit FP add).

Sub-8-bit rows (``int4``, ``ternary``) are not in Horowitz's table; they are *derived* from its
int8 entries by the textbook scaling of integer arithmetic with operand width ``n``: a
ripple-carry adder is ``n`` full adders (energy ∝ ``n``), an array multiplier ``n²`` partial
products (energy ∝ ``n²``). The table itself follows these laws within 20 %: int32/int8 add
0.1/0.03 = 3.3 (linear law: 4), mult 3.1/0.2 = 15.5 (quadratic law: 16). Hence::

    int4:    add = 0.03 pJ · 4/8 = 0.015 pJ      mult = 0.2 pJ · (4/8)² = 0.05 pJ
    ternary: add = 0.03 pJ · 2/8 = 0.0075 pJ     mult = 0.2 pJ · (2/8)² = 0.0125 pJ

(ternary = 2-bit codes {−1, 0, 1}). Like the int8 row, a row's precision is its weight
operand's; the wider accumulator (int32 in the integer program) is not priced separately, so
these are estimates of the relative saving, not circuit measurements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

__all__ = ["Energy45nm", "NeuronOpCount", "precision_for_bits"]


def precision_for_bits(bits: int) -> str:
    """Cost-report precision of ``bits``-bit integers: rounded up to the next width with an
    energy entry (2 → ``"ternary"``, 3–4 → ``"int4"``, 5–8 → ``"int8"``, wider → ``"int32"``).

    Raises:
        ValueError: ``bits`` < 2.
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or bits < 2:
        raise ValueError(f"bits must be an integer >= 2, got {bits!r}")
    for width, name in ((2, "ternary"), (4, "int4"), (8, "int8")):
        if bits <= width:
            return name
    return "int32"


@dataclass(frozen=True)
class Energy45nm:
    """Energy per operation at 45 nm, 0.9 V (Horowitz, ISSCC 2014). Joules.

    ``e_mac`` / ``e_ac`` are the energies used for synaptic MACs and accumulates; the defaults are
    ``E_MAC = 4.6 pJ`` (32-bit FP mult 3.7 + add 0.9) and ``E_AC = 0.9 pJ`` (32-bit FP add).
    :meth:`for_precision` builds the same pair from the table for fp16 / int8 / int32 (and the
    derived int4 / ternary entries, see the module docstring). The
    remaining table entries are kept for reference and for the optional terms:

    * neuron updates (``include_neuron``, off by default): per update
      ``adds·e_neuron_add + mults·e_neuron_mult`` (op counts from :class:`NeuronOpCount`);
    * memory accesses (``include_memory``, off by default): ``e_mem`` per access (3.12 pJ as used
      by several later works), ``mem_per_synop`` accesses per synaptic operation and
      ``mem_per_neuron_update`` per neuron update.

    The SRAM/DRAM entries are per 64-bit read; the DRAM figure is a range (min/max).

    ``precision`` names the precision of ``e_mac``/``e_ac``/``e_neuron_*`` (``"fp32"`` by
    default, set by :meth:`for_precision`). A report row of another precision takes its
    energies from the table entries of that precision (:meth:`synaptic`, :meth:`neuron`).
    """

    e_mac: float = 4.6e-12
    e_ac: float = 0.9e-12
    int8_add: float = 0.03e-12
    int32_add: float = 0.1e-12
    int8_mult: float = 0.2e-12
    int32_mult: float = 3.1e-12
    fp16_add: float = 0.4e-12
    fp32_add: float = 0.9e-12
    fp16_mult: float = 1.1e-12
    fp32_mult: float = 3.7e-12
    int4_add: float = 0.015e-12  # derived: int8_add · 4/8 (module docstring)
    int4_mult: float = 0.05e-12  # derived: int8_mult · (4/8)²
    ternary_add: float = 0.0075e-12  # derived: int8_add · 2/8
    ternary_mult: float = 0.0125e-12  # derived: int8_mult · (2/8)²
    sram_read64_8kb: float = 10e-12
    sram_read64_32kb: float = 20e-12
    sram_read64_1mb: float = 100e-12
    dram_read64_min: float = 1.3e-9
    dram_read64_max: float = 2.6e-9
    include_neuron: bool = False
    e_neuron_add: float = 0.9e-12
    e_neuron_mult: float = 3.7e-12
    include_memory: bool = False
    e_mem: float = 3.12e-12
    mem_per_synop: float = 1.0
    mem_per_neuron_update: float = 2.0
    precision: str = "fp32"

    def __post_init__(self) -> None:
        self.add_mult(self.precision)  # validates the name
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "precision":
                continue
            if f.type in ("bool", bool):
                if not isinstance(v, bool):
                    raise TypeError(f"Energy45nm.{f.name} must be a bool, got {v!r}")
                continue
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise ValueError(f"Energy45nm.{f.name} must be a finite number, got {v!r}")
            if v < 0:
                raise ValueError(f"Energy45nm.{f.name} must be >= 0, got {v!r}")

    def add_mult(self, precision: str) -> tuple[float, float]:
        """``(add, mult)`` energies of one precision from the table, joules.

        Raises:
            ValueError: an unknown precision (``fp32``, ``fp16``, ``int32``, ``int8``, ``int4``,
                ``ternary`` exist).
        """
        table = {
            "fp32": (self.fp32_add, self.fp32_mult),
            "fp16": (self.fp16_add, self.fp16_mult),
            "int32": (self.int32_add, self.int32_mult),
            "int8": (self.int8_add, self.int8_mult),
            "int4": (self.int4_add, self.int4_mult),
            "ternary": (self.ternary_add, self.ternary_mult),
        }
        if precision not in table:
            raise ValueError(f"precision must be one of {sorted(table)}, got {precision!r}")
        return table[precision]

    @classmethod
    def for_precision(
        cls, precision: Literal["fp32", "fp16", "int32", "int8", "int4", "ternary"] = "fp32",
        **overrides: Any,
    ) -> Energy45nm:
        """Energy model with ``e_mac = mult + add`` and ``e_ac = add`` of one precision.

        The neuron-update energies use the same precision. ``overrides`` replace any field.
        ``for_precision("fp32")`` equals the default ``Energy45nm()``.
        """
        base = cls()
        add, mult = base.add_mult(precision)
        kw: dict[str, Any] = dict(
            e_mac=add + mult, e_ac=add, e_neuron_add=add, e_neuron_mult=mult, precision=precision
        )
        kw.update(overrides)
        return replace(base, **kw)

    def synaptic(self, precision: str | None = None) -> tuple[float, float]:
        """``(e_mac, e_ac)`` in joules for synaptic operations of ``precision``.

        The model's own ``e_mac``/``e_ac`` for its ``precision`` (or ``None``), else
        ``(mult + add, add)`` of that precision's table entries.
        """
        if precision is None or precision == self.precision:
            return self.e_mac, self.e_ac
        add, mult = self.add_mult(precision)
        return add + mult, add

    def neuron(self, precision: str | None = None) -> tuple[float, float]:
        """``(e_neuron_add, e_neuron_mult)`` in joules for neuron updates of ``precision``."""
        if precision is None or precision == self.precision:
            return self.e_neuron_add, self.e_neuron_mult
        return self.add_mult(precision)

    def terms(self) -> list[str]:
        """Names of the terms included in ``E_SNN``."""
        out = ["synaptic MACs (e_mac)", "synaptic ACs (e_ac)"]
        if self.include_neuron:
            out.append("neuron updates (e_neuron_add/e_neuron_mult)")
        if self.include_memory:
            out.append("memory accesses (e_mem)")
        return out

    def excluded_terms(self) -> list[str]:
        """Names of the optional terms left out of ``E_SNN``."""
        out = []
        if not self.include_neuron:
            out.append("neuron updates")
        if not self.include_memory:
            out.append("memory accesses")
        return out


@dataclass(frozen=True)
class NeuronOpCount:
    """Operations per neuron per time step: 2 adds + 2 multiplies by default.

    Adds: integration and threshold compare; multiplies: leak (decay) and reset (the iterative
    LIF update of Wu et al. 2018, arXiv:1706.02609).
    """

    adds: float = 2.0
    mults: float = 2.0

    def __post_init__(self) -> None:
        for name in ("adds", "mults"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"NeuronOpCount.{name} must be a finite number >= 0, got {v!r}")
