"""The integer program: a list of integer ops, saved as one versioned ``.npz`` (numpy only).

Ops (each a dict with ``"op"`` and its fields; arrays are numpy integers). Every op reads the
value slots ``src`` (slot 0: the input frames) and writes the slot ``dst`` (version 2; a
version-1 program is a chain without them):

==============  ==============================================================================
op              fields and meaning
==============  ==============================================================================
input_quant     ``scale`` (a power of two), ``qmin``, ``qmax``: codes ``clip(floor(x/scale +
                0.5))`` of the input frames ``[T, B, C, H, W]`` (the only float op but the
                final logit scale; division by a power of two is exact)
conv2d          ``weight`` int8 ``[O, I, kh, kw]``, ``stride``, ``padding``: int64 accumulators
linear          ``weight`` int8 ``[O, I]`` (flattens its input first)
neuron          ``mult`` int64 ``[n, C]`` (one row per ``src`` term), ``bias`` int64 ``[C]``,
                ``shift``: current ``I = (Σ_i acc_i·M_i + B + 2^(S−1)) >> S`` (``n > 1``:
                a residual sum on a common scale); then the integer LIF step (``theta``,
                ``v_reset``, ``decay_m``/``decay_bits`` leak ``round(k_m·r / 2^k_s)``,
                ``lo``/``hi`` clamp, ``soft`` reset, ``fire_ge``); output spikes (0/1), or
                with ``analog`` (LIAF, ReLU) the activation ``max(u, 0)`` (``max(u − θ, 0)``
                with ``tr``); recorded under ``name``
act_requant     ``mult``, ``shift``, ``qmin``, ``qmax``: ``clip((a·mult + 2^(S−1)) >> S)``, an
                analog (LIAF) value onto the next synapse's input grid
sumpool         ``k``: sum over ``k × k`` windows (the ``1/k²`` of average pooling is folded
                into the next multiplier)
maxpool         ``k``, ``stride``, ``padding``: max over ``k × k`` windows (of spikes or LIAF
                activations: non-negative codes, the scale is unchanged)
output          ``scale`` float64 ``[K]``, ``bias`` float64 ``[K]``: logits ``=
                Σ_t acc · scale / T + bias`` (mean over time of the dequantized last layer)
==============  ==============================================================================

File layout: ``format`` = ``"spikeloom-integer"``, ``version`` = :data:`VERSION`, ``n_ops``,
and ``op{i}.{field}`` entries (``op{i}.op`` names the op).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["IntegerProgram", "VERSION", "FORMAT"]

VERSION = 2
FORMAT = "spikeloom-integer"


@dataclass
class IntegerProgram:
    """A lowered network: ``ops`` run in order by :func:`~.executor.run_program`."""

    ops: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def save(self, path: str | os.PathLike) -> Path:
        """Write one ``.npz`` file (with format name and version)."""
        arrays: dict[str, np.ndarray] = {
            "format": np.array(FORMAT), "version": np.array(VERSION),
            "n_ops": np.array(len(self.ops)),
        }
        for k, v in self.meta.items():
            arrays[f"meta.{k}"] = np.asarray(v)
        for i, op in enumerate(self.ops):
            for k, v in op.items():
                arrays[f"op{i}.{k}"] = np.asarray(v)
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> IntegerProgram:
        """Read a file written by :meth:`save`; refuses other formats and newer versions."""
        with np.load(path, allow_pickle=False) as z:
            if "format" not in z or str(z["format"]) != FORMAT:
                raise ValueError(f"{path} is not a spikeloom integer program")
            version = int(z["version"])
            if version > VERSION:
                raise ValueError(f"{path} has integer-program version {version}; this spikeloom "
                                 f"reads up to {VERSION}")
            ops: list[dict[str, Any]] = [{} for _ in range(int(z["n_ops"]))]
            meta: dict[str, Any] = {}
            for key in z.files:
                if key.startswith("op"):
                    idx, _, name = key[2:].partition(".")
                    ops[int(idx)][name] = _scalar(z[key])
                elif key.startswith("meta."):
                    meta[key[5:]] = _scalar(z[key])
        return cls(ops, meta)

    def weight_bytes(self) -> int:
        """Bytes of the integer weights (int8 storage)."""
        return int(sum(op["weight"].size for op in self.ops if "weight" in op))


def _scalar(a: np.ndarray) -> Any:
    if a.ndim == 0:
        return a.item() if a.dtype.kind != "U" else str(a)
    return a
