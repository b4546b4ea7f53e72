"""The data contract between datasets, models and the trainer.

Every dataset exposes a frozen :class:`DataSpec` as ``dataset.spec``: what kind of samples it
yields and their sizes. Models are registered with the kinds they accept and built from a spec
by :func:`spikeloom.models.build_model`; the trainer never loads a sample to find sizes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["DataSpec", "DataKind", "DATA_KINDS"]

DataKind = Literal["frames", "sequence", "graph"]
#: ``frames``: samples ``[T, C, H, W]``; ``sequence``: samples ``[T, C]`` (e.g. SHD channels);
#: ``graph``: node classification on one graph (features per node).
DATA_KINDS: tuple[str, ...] = ("frames", "sequence", "graph")


@dataclass(frozen=True)
class DataSpec:
    """What a dataset yields.

    Attributes:
        kind: ``"frames"`` (``[T, C, H, W]`` per sample), ``"sequence"`` (``[T, C]``) or
            ``"graph"``.
        num_classes: number of classes ``K``.
        T: time steps per sample (``None`` when it varies or does not apply).
        channels: channels ``C`` per step (polarities for event frames, input channels for
            sequences).
        size: spatial size ``(H, W)`` of frames (``None`` for sequences and graphs).
        features: feature count per node (graphs) or per step; ``None`` if not meaningful.
    """

    kind: str
    num_classes: int
    T: int | None = None
    channels: int | None = None
    size: tuple[int, ...] | None = None
    features: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in DATA_KINDS:
            raise ValueError(f"DataSpec kind must be one of {DATA_KINDS}, got {self.kind!r}")
        if not (isinstance(self.num_classes, int) and self.num_classes >= 1):
            raise ValueError(f"num_classes must be a positive integer, got {self.num_classes!r}")
        for name in ("T", "channels", "features"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int) and v >= 1):
                raise ValueError(f"DataSpec.{name} must be a positive integer or None, got {v!r}")
        if self.size is not None:
            size = tuple(int(s) for s in self.size)
            if not size or any(s < 1 for s in size):
                raise ValueError(f"DataSpec.size must hold positive sizes, got {self.size!r}")
            object.__setattr__(self, "size", size)
        if self.kind == "frames" and (self.channels is None or self.size is None):
            raise ValueError("a 'frames' DataSpec needs channels and size")

    @property
    def sample_shape(self) -> tuple[int, ...] | None:
        """Shape of one sample (``[T, C, *size]`` or ``[T, C]``); ``None`` if it varies."""
        if self.T is None or self.channels is None or self.kind == "graph":
            return None
        return (self.T, self.channels, *(self.size or ()))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
