"""Datasets: the built-in ES-Digits and readers for public neuromorphic datasets.

Every dataset yields ``(frames, label)`` with ``frames`` shaped ``[T, C, H, W]`` (time first);
a DataLoader batch is transposed to ``[T, B, C, H, W]`` by :func:`spikeloom.train.collate`.

:func:`build_dataset` gives datasets by name, as used by ``spikeloom train --dataset NAME``.
"""

from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

__all__ = ["build_dataset", "DATASETS"]


def _esdigits(split: str, root: str | None = None, **kwargs: Any) -> Dataset:
    from .esdigits import ESDigits

    if root is not None:
        raise ValueError("esdigits is built in (scikit-learn's digits): it takes no --root")
    return ESDigits(split=split, **kwargs)


#: name -> factory(split, root=None, **kwargs)
DATASETS: dict[str, Any] = {"esdigits": _esdigits}


def build_dataset(name: str, split: str, root: str | None = None, **kwargs: Any) -> Dataset:
    """Build dataset ``name`` for ``split`` (``"train"``, ``"val"`` or ``"test"``)."""
    try:
        factory = DATASETS[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))}"
        ) from None
    return factory(split, root=root, **kwargs)
