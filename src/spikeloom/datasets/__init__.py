"""Datasets: the built-in ES-Digits and readers for public neuromorphic datasets.

Every dataset yields ``(frames, label)`` with ``frames`` shaped ``[T, C, H, W]`` (time first);
a DataLoader batch is transposed to ``[T, B, C, H, W]`` by :func:`spikeloom.train.collate`.

:func:`build_dataset` gives datasets by name, as used by ``spikeloom train --dataset NAME``:
``esdigits`` (built in) and the public event datasets of :mod:`.neuromorphic` (``nmnist``,
``dvsgesture``, ``cifar10dvs``, ``ncaltech101``, ``shd``, ``esimagenet``), which need
``--root DIR`` and cache their frames on disk (:mod:`.cache`).
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


def _event_dataset(cls_name: str) -> Any:
    """Registry factory of a :mod:`.neuromorphic` dataset class (imported lazily)."""

    def factory(split: str, root: str | None = None, **kwargs: Any) -> Dataset:
        from . import neuromorphic

        cls = getattr(neuromorphic, cls_name)
        if root is None:
            raise ValueError(
                f"dataset {cls.name!r} ({cls.title}) needs --root DIR, the local dataset "
                f"folder; expected layout: " + "; ".join(cls.layout)
                + ". spikeloom never downloads data."
            )
        return cls(root, split, **kwargs)

    factory.__name__ = f"_{cls_name.lower()}"
    factory.__doc__ = f"Build :class:`spikeloom.datasets.neuromorphic.{cls_name}`."
    return factory


#: name -> factory(split, root=None, **kwargs)
DATASETS: dict[str, Any] = {
    "esdigits": _esdigits,
    "nmnist": _event_dataset("NMNIST"),
    "dvsgesture": _event_dataset("DVSGesture"),
    "cifar10dvs": _event_dataset("CIFAR10DVS"),
    "ncaltech101": _event_dataset("NCaltech101"),
    "shd": _event_dataset("SHD"),
    "esimagenet": _event_dataset("ESImageNet"),
}


def build_dataset(name: str, split: str, root: str | None = None, **kwargs: Any) -> Dataset:
    """Build dataset ``name`` for ``split`` (``"train"``, ``"val"`` or ``"test"``)."""
    try:
        factory = DATASETS[name.lower()]
    except KeyError:
        raise ValueError(
            f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))}"
        ) from None
    return factory(split, root=root, **kwargs)
