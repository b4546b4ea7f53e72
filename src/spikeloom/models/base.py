"""The base class of spikeloom's classifiers."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["SpikingClassifier"]


class SpikingClassifier(nn.Module):
    """Base class of the classifiers: ``forward(x)`` gives logits ``[B, K]``, the readout
    (mean over time) of the per-step outputs; ``forward(x, per_step=True)`` gives the per-step
    outputs ``[T, B, K]`` (for per-step losses).

    Subclasses implement :meth:`_per_step` on ``[T, B, C, H, W]`` and assign ``self.readout``
    last in their constructor (so that the layer walk yields it after the layers). ``T``
    (optional) enables static input ``[B, C, H, W]`` (repeated over time) and is checked
    against sequence input.
    """

    in_channels: int
    T: int | None

    readout: nn.Module

    def _prepare(self, x: Tensor) -> Tensor:
        name = type(self).__name__
        if x.ndim == 4:
            if self.T is None:
                raise ValueError(
                    f"{name} got a static batch {tuple(x.shape)}; expected [T, B, C, H, W]. "
                    "Build the model with T=... to repeat static input over time, or add "
                    "the time axis (spikeloom.encoding.DirectEncoder)"
                )
            x = x.unsqueeze(0).expand(self.T, *x.shape)
        if x.ndim != 5:
            raise ValueError(f"{name} expected input [T, B, C, H, W], got shape {tuple(x.shape)}")
        if x.shape[2] != self.in_channels:
            raise ValueError(
                f"{name} was built for {self.in_channels} input channels but got {x.shape[2]} "
                f"on axis 2 of {tuple(x.shape)} (layout must be [T, B, C, H, W])"
            )
        if self.T is not None and x.shape[0] != self.T:
            raise ValueError(
                f"{name} was built for T={self.T} steps, got {x.shape[0]} (shape "
                f"{tuple(x.shape)})"
            )
        return x

    def _per_step(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: Tensor, per_step: bool = False) -> Tensor:
        """Logits ``[B, K]`` (mean over time of the per-step outputs), or the per-step outputs
        ``[T, B, K]`` when ``per_step``.

        Args:
            x: ``[T, B, C, H, W]``, or static ``[B, C, H, W]`` when built with ``T``.
            per_step: return ``[T, B, K]`` instead of the readout.
        """
        out = self._per_step(self._prepare(x))
        return out if per_step else self.readout(out)

    def output_per_step(self, x: Tensor) -> Tensor:
        """Per-step outputs ``[T, B, K]`` (same as ``forward(x, per_step=True)``)."""
        return self(x, per_step=True)
