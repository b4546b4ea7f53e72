"""Run an :class:`~.program.IntegerProgram` with numpy integers only (this module never imports
torch).

Every op of the network body computes on ``int64`` arrays (accumulators, membrane, spikes); the
input is converted to integer codes once and the final logits are dequantized once (see
:mod:`.program`). ``run_program`` returns the logits, the integer output accumulators and
every neuron layer's spike tensor ``[T, B, ...]`` (``uint8``).
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


def neuron_int(acc: np.ndarray, op: dict[str, Any]) -> np.ndarray:
    """The integer neuron op on accumulators ``[T, B, C, ...]``: spikes (int64 0/1)."""
    shift = int(op["shift"])
    m = _channel_shape(np.asarray(op["mult"], np.int64), acc.ndim)
    b = _channel_shape(np.asarray(op["bias"], np.int64), acc.ndim)
    lo, hi, th = int(op["lo"]), int(op["hi"]), int(op["theta"])
    cur = np.clip((acc * m + b + (1 << (shift - 1))) >> shift, lo, hi)
    km, kb = int(op["decay_m"]), int(op["decay_bits"])
    rst, soft, ge = int(op["v_reset"]), bool(op["soft"]), bool(op["fire_ge"])
    v = np.zeros(cur.shape[1:], np.int64)
    spikes = np.empty(cur.shape, np.int64)
    for t in range(cur.shape[0]):
        u = np.clip(v + cur[t], lo, hi)
        s = (u >= th) if ge else (u > th)
        r = u - th * s if soft else np.where(s, rst, u)
        v = (km * r + (1 << (kb - 1))) >> kb
        spikes[t] = s
    return spikes


def run_program(program: IntegerProgram, frames: np.ndarray) -> dict[str, Any]:
    """Run ``program`` on input frames ``[T, B, ...]`` (any real dtype).

    Returns:
        ``{"logits": float64 [B, K], "acc": int64 [T, B, K], "spikes": {name: uint8 [T, B,
        ...]}, "pred": int64 [B]}``.
    """
    x = np.asarray(frames)
    T, B = x.shape[:2]
    spikes: dict[str, np.ndarray] = {}
    out: dict[str, Any] = {}
    for op in program.ops:
        kind = op["op"]
        if kind == "input_quant":
            q = np.floor(x.astype(np.float64) / float(op["scale"]) + 0.5)
            x = np.clip(q, int(op["qmin"]), int(op["qmax"])).astype(np.int64)
        elif kind == "conv2d":
            flat = x.reshape(T * B, *x.shape[2:])
            y = conv2d_int(flat, op["weight"], int(op["stride"]), int(op["padding"]))
            x = y.reshape(T, B, *y.shape[1:])
        elif kind == "linear":
            x = x.reshape(T, B, -1) @ np.asarray(op["weight"], np.int64).T
        elif kind == "neuron":
            x = neuron_int(x, op)
            spikes[str(op["name"])] = x.astype(np.uint8)
        elif kind == "sumpool":
            k = int(op["k"])
            h, w = x.shape[-2] // k * k, x.shape[-1] // k * k
            x = x[..., :h, :w].reshape(*x.shape[:-2], h // k, k, w // k, k).sum(axis=(-3, -1))
        elif kind == "output":
            out["acc"] = x
            logits = x.sum(axis=0) * np.asarray(op["scale"], np.float64) / T
            out["logits"] = logits + np.asarray(op["bias"], np.float64)
        else:
            raise ValueError(f"unknown integer op {kind!r} (program version mismatch?)")
    if "logits" not in out:
        raise ValueError("the program has no output op")
    out["spikes"] = spikes
    out["pred"] = out["logits"].argmax(axis=1)
    return out
