"""Registry entry of the fully connected TTFS network (:class:`spikeloom.ttfs.TTFSNet`)."""

from __future__ import annotations

from ..errors import ConfigError
from ..ttfs.network import TTFSNet
from .registry import frames_args, register_model

__all__ = ["ttfs_fc"]


@register_model("ttfs_fc", kinds=("frames",), from_spec=frames_args)
def ttfs_fc(in_channels: int = 1, num_classes: int = 10, input_size: object = (28, 28),
            T: int | None = None, hidden: tuple[int, ...] = (340,), **kw) -> TTFSNet:
    """``TTFSNet((C·H·W, *hidden, num_classes), **kw)`` — the "FC2" net for MNIST by default.

    Frames ``[T, B, C, H, W]`` with values in ``[0, 1]`` are coded once as spike times (the
    first frame). Training through ``spikeloom train`` keeps the windows fixed (``x_max``
    1000 by default); :meth:`TTFSNet.grow_windows` is for custom loops.
    """
    if input_size is None:
        raise ConfigError("ttfs_fc needs input_size=(H, W) (a fully connected input layer)")
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    return TTFSNet((in_channels * h * w, *hidden, num_classes), **kw)
