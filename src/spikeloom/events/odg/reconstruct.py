"""Edge-Integral: a gray image reconstructed from ODG frames (Lin et al. 2021, arXiv:2110.12211).

Each ODG step sees the image shifted by the trajectory offset of that step; shifting the signed
frames ``ON - OFF`` back and summing them integrates the directional gradients into an
edge map that resembles the image's gradient magnitude (the paper's sanity check of the
conversion).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .frames import Layout
from .geometry import ES_IMAGENET, check_trajectory

__all__ = ["edge_integral"]


def edge_integral(
    frames: np.ndarray | torch.Tensor,
    *,
    layout: Layout = "es_imagenet",
    trajectory: Sequence[tuple[int, int]] = ES_IMAGENET.trajectory,
) -> np.ndarray | torch.Tensor:
    """Edge-Integral gray image ``[..., H, W]`` from ODG frames (Lin et al. 2021).

    ``frames``: ``[..., 2, T, H, W]`` (``layout="es_imagenet"``, channel 0 = ON) or
    ``[..., T, 2, H, W]`` (``"tpchw"``, channel 1 = ON); numpy array or torch tensor, any
    ``H, W`` (ES-ImageNet's case is ``224 x 224``). Signed frames ``ON - OFF`` of step ``t`` are
    shifted back by the image offset of that step, ``(R - row_t, C - col_t)`` with ``R, C`` the
    largest trajectory offsets (2 for ES), summed into ``S`` ``[H + R, W + C]`` and the result
    is ``S[1:H+1, 1:W+1]`` -> ``[..., H, W]``. Bool/integer frames give int32, float frames keep
    their dtype.
    """
    traj = check_trajectory(trajectory, pad=10**6)
    if layout == "es_imagenet":
        t_axis, p_axis, on_ch = -3, -4, 0
    elif layout == "tpchw":
        t_axis, p_axis, on_ch = -4, -3, 1
    else:
        raise ValueError(f"layout must be 'tpchw' or 'es_imagenet', got {layout!r}")
    is_torch = isinstance(frames, torch.Tensor)
    f = frames if is_torch else np.asarray(frames)
    if f.ndim < 4 or f.shape[p_axis] != 2:
        raise ValueError(
            f"expected frames [..., 2, T, H, W] (es_imagenet) or [..., T, 2, H, W] (tpchw) "
            f"for layout={layout!r}, got shape {tuple(f.shape)}"
        )
    steps = f.shape[t_axis]
    if steps != len(traj) - 1:
        raise ValueError(f"frames have T={steps} steps but the trajectory gives {len(traj) - 1}")
    if is_torch:
        if f.dtype == torch.bool or not f.is_floating_point():
            f = f.to(torch.int32)
        on = f.select(p_axis, on_ch)
        off = f.select(p_axis, 1 - on_ch)
    else:
        if not np.issubdtype(f.dtype, np.floating):
            f = f.astype(np.int32)
        on = np.take(f, on_ch, axis=p_axis)
        off = np.take(f, 1 - on_ch, axis=p_axis)
    signed = on - off  # [..., T, H, W]
    h, w = signed.shape[-2:]
    rmax = max(r for r, _ in traj[1:])
    cmax = max(c for _, c in traj[1:])
    shape = (*signed.shape[:-3], h + max(rmax, 1), w + max(cmax, 1))
    if is_torch:
        acc = torch.zeros(shape, dtype=signed.dtype, device=signed.device)
    else:
        acc = np.zeros(shape, dtype=signed.dtype)
    for k, (r, c) in enumerate(traj[1:]):  # one slice-add per step
        r0, c0 = rmax - r, cmax - c
        acc[..., r0 : r0 + h, c0 : c0 + w] += signed[..., k, :, :]
    return acc[..., 1 : h + 1, 1 : w + 1]
