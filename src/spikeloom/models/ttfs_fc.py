"""Registry entry of the fully connected TTFS network (:class:`spikeloom.ttfs.TTFSNet`)."""

from __future__ import annotations

from ..datasets.spec import DataSpec
from ..ttfs.network import TTFSNet
from .registry import register_model

__all__ = ["ttfs_fc"]


def _args(spec: DataSpec) -> dict:
    h, w = spec.size or (1, 1)
    return {"in_features": spec.channels * h * w, "num_classes": spec.num_classes}


@register_model("ttfs_fc", kinds=("frames",), from_spec=_args)
def ttfs_fc(in_features: int = 784, num_classes: int = 10, hidden: tuple[int, ...] = (340,),
            **kw) -> TTFSNet:
    """``TTFSNet((in_features, *hidden, num_classes), **kw)`` — the "FC2" net by default.

    Frames ``[T, B, C, H, W]`` with values in ``[0, 1]`` are coded once as spike times (the
    first frame). Training through ``spikeloom train`` keeps the windows fixed (``x_max``
    1000 by default); :meth:`TTFSNet.grow_windows` is for custom loops.
    """
    return TTFSNet((in_features, *hidden, num_classes), **kw)
