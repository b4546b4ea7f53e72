"""Run an :class:`~.program.IntegerProgram` with numpy integers only (this module never imports
torch).

Every op of the network body computes on ``int64`` arrays (accumulators, membrane, spikes,
LIAF activations); the input is converted to integer codes once and the final logits are
dequantized once (see :mod:`.program`). ``run_program`` returns the logits, the integer output
accumulators, every spiking neuron layer's spike tensor ``[T, B, ...]`` (``uint8``) and every
LIAF layer's integer activations.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .program import IntegerProgram

__all__ = ["run_program", "conv2d_int", "neuron_int"]


def conv2d_int(x: np.ndarray, w: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """Integer 2-D convolution ``[N, C, H, W] * [O, C, kh, kw] -> [N, O, H', W']`` (int64)."""
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    kh, kw = w.shape[2:]
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    n, c, ho, wo = win.shape[:4]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw)
    out = cols @ w.reshape(w.shape[0], -1).astype(np.int64).T
    return out.reshape(n, ho, wo, -1).transpose(0, 3, 1, 2)


def _channel_shape(a: np.ndarray, ndim: int) -> np.ndarray:
    return a.reshape((-1,) + (1,) * (ndim - 3)) if ndim > 2 else a


def neuron_int(accs: list[np.ndarray], op: dict[str, Any]) -> np.ndarray:
    """The integer neuron op on the accumulators ``[T, B, C, ...]`` of its terms: spikes
    (int64 0/1), or the integer activation ``relu(u)`` / ``relu(u − θ)`` of an analog (LIAF)
    neuron."""
    shift = int(op["shift"])
    mult = np.asarray(op["mult"], np.int64).reshape(len(accs), -1)  # version 1: one term [C]
    z = sum(a * _channel_shape(m, a.ndim) for a, m in zip(accs, mult))
    b = _channel_shape(np.asarray(op["bias"], np.int64), z.ndim)
    lo, hi, th = int(op["lo"]), int(op["hi"]), int(op["theta"])
    cur = np.clip((z + b + (1 << (shift - 1))) >> shift, lo, hi)
    km, kb = int(op["decay_m"]), int(op["decay_bits"])
    rst, soft, ge = int(op["v_reset"]), bool(op["soft"]), bool(op["fire_ge"])
    analog = bool(op.get("analog", False))
    v = np.zeros(cur.shape[1:], np.int64)
    out = np.empty(cur.shape, np.int64)
    for t in range(cur.shape[0]):
        u = np.clip(v + cur[t], lo, hi)
        s = (u >= th) if ge else (u > th)
        r = u - th * s if soft else np.where(s, rst, u)
        v = (km * r + (1 << (kb - 1))) >> kb
        out[t] = np.maximum(u - th if op.get("tr", False) else u, 0) if analog else s
    return out


def _sumpool(x: np.ndarray, k: int) -> np.ndarray:
    h, w = x.shape[-2] // k * k, x.shape[-1] // k * k
    return x[..., :h, :w].reshape(*x.shape[:-2], h // k, k, w // k, k).sum(axis=(-3, -1))


def _maxpool(x: np.ndarray, k: int, stride: int, padding: int) -> np.ndarray:
    if padding:
        pad = [(0, 0)] * (x.ndim - 2) + [(padding, padding)] * 2
        x = np.pad(x, pad, constant_values=np.iinfo(np.int64).min)
    win = sliding_window_view(x, (k, k), axis=(-2, -1))[..., ::stride, ::stride, :, :]
    return win.max(axis=(-2, -1))


def run_program(program: IntegerProgram, frames: np.ndarray) -> dict[str, Any]:
    """Run ``program`` on input frames ``[T, B, ...]`` (any real dtype).

    Each op reads the slots ``src`` and writes slot ``dst`` (slot 0: the frames); a version-1
    program without them is a chain (each op reads the previous op's result).

    Returns:
        ``{"logits": float64 [B, K], "acc": int64 [T, B, K], "spikes": {name: uint8 [T, B,
        ...]}, "analog": {name: int64 [T, B, ...]} (LIAF activations), "pred": int64 [B]}``.
    """
    x = np.asarray(frames)
    T, B = x.shape[:2]
    slots: dict[int, np.ndarray] = {0: x}
    spikes: dict[str, np.ndarray] = {}
    analog: dict[str, np.ndarray] = {}
    out: dict[str, Any] = {}
    for op in program.ops:
        kind = op["op"]
        src = [slots[int(i)] for i in np.atleast_1d(op["src"])] if "src" in op else [x]
        a = src[0]
        if kind == "input_quant":
            q = np.floor(a.astype(np.float64) / float(op["scale"]) + 0.5)
            x = np.clip(q, int(op["qmin"]), int(op["qmax"])).astype(np.int64)
        elif kind == "act_requant":
            shift = int(op["shift"])
            x = np.clip((a * int(op["mult"]) + (1 << (shift - 1))) >> shift, int(op["qmin"]),
                        int(op["qmax"]))
        elif kind == "conv2d":
            y = conv2d_int(a.reshape(T * B, *a.shape[2:]), op["weight"], int(op["stride"]),
                           int(op["padding"]))
            x = y.reshape(T, B, *y.shape[1:])
        elif kind == "linear":
            x = a.reshape(T, B, -1) @ np.asarray(op["weight"], np.int64).T
        elif kind == "neuron":
            x = neuron_int(src, op)
            if op.get("analog", False):
                analog[str(op["name"])] = x
            else:
                spikes[str(op["name"])] = x.astype(np.uint8)
        elif kind == "sumpool":
            x = _sumpool(a, int(op["k"]))
        elif kind == "maxpool":
            x = _maxpool(a, int(op["k"]), int(op["stride"]), int(op["padding"]))
        elif kind == "output":
            out["acc"] = a
            logits = a.sum(axis=0) * np.asarray(op["scale"], np.float64) / T
            out["logits"] = logits + np.asarray(op["bias"], np.float64)
        else:
            raise ValueError(f"unknown integer op {kind!r} (program version mismatch?)")
        if "dst" in op:
            slots[int(op["dst"])] = x
    if "logits" not in out:
        raise ValueError("the program has no output op")
    out["spikes"], out["analog"] = spikes, analog
    out["pred"] = out["logits"].argmax(axis=1)
    return out
