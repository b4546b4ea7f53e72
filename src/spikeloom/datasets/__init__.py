"""Datasets: the built-in ES-Digits and readers for public neuromorphic datasets.

Every dataset yields ``(frames, label)`` with ``frames`` shaped ``[T, C, H, W]`` (time first)
and exposes ``spec``, a :class:`~spikeloom.datasets.spec.DataSpec` saying what it yields; a
DataLoader batch is transposed to ``[T, B, C, H, W]`` by
:func:`~spikeloom.datasets.collate.collate`.

:func:`build_dataset` gives datasets by name from :data:`DATASETS`, as used by
``spikeloom train --dataset NAME``: ``esdigits`` (built in, :mod:`.esdigits`) and the public
event datasets, one module each (``nmnist``, ``dvsgesture``, ``cifar10dvs``, ``ncaltech101``,
``shd``, ``esimagenet``), static ``mnist`` (:mod:`.mnist`, IDX files) and ``eventfolder``
(your own class folders of event files, or ``spikeloom convert`` output), which need
``--root DIR`` (the event datasets cache their frames on disk, :mod:`.cache`). Their
shared base is :mod:`.base`, their splits :mod:`.splits`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from torch.utils.data import Dataset

from ..registry import Registry

__all__ = [
    "CIFAR10DVS", "DATASETS", "DVSGesture", "ESDigits", "ESImageNet", "EventDataset",
    "EventFolder", "MNIST",
    "NCaltech101", "NMNIST", "SHD", "build_dataset",
]

#: class name -> module; imported on first access (``from spikeloom.datasets import NMNIST``)
_LAZY = {
    "CIFAR10DVS": "cifar10dvs", "DVSGesture": "dvsgesture", "ESDigits": "esdigits",
    "ESImageNet": "esimagenet", "EventDataset": "base", "EventFolder": "eventfolder",
    "MNIST": "mnist", "NCaltech101": "ncaltech101",
    "NMNIST": "nmnist", "SHD": "shd",
}


def __getattr__(name: str) -> Any:
    """The dataset classes, imported from their modules on first access (PEP 562)."""
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


Factory = Callable[..., Dataset]


def _esdigits(split: str, root: str | None = None, **kwargs: Any) -> Dataset:
    from .esdigits import ESDigits

    if root is not None:
        raise ValueError("esdigits is built in (scikit-learn's digits): it takes no --root")
    return ESDigits(split=split, **kwargs)


def _mnist(split: str, root: str | None = None, **kwargs: Any) -> Dataset:
    from .mnist import MNIST

    if root is None:
        raise ValueError(
            "dataset 'mnist' needs --root DIR holding the four original IDX files "
            "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
            "t10k-labels-idx1-ubyte.gz). spikeloom never downloads data."
        )
    return MNIST(root, split, **kwargs)


def _event_dataset(module: str, cls_name: str) -> Factory:
    """Registry factory of an event dataset class (its module is imported on first use)."""

    def factory(split: str, root: str | None = None, **kwargs: Any) -> Dataset:
        cls = getattr(importlib.import_module(f".{module}", __name__), cls_name)
        if root is None:
            raise ValueError(
                f"dataset {cls.name!r} ({cls.title}) needs --root DIR, the local dataset "
                f"folder; expected layout: " + "; ".join(cls.layout)
                + ". spikeloom never downloads data."
            )
        return cls(root, split, **kwargs)

    factory.__name__ = f"_{module}"
    factory.__doc__ = f"Build :class:`spikeloom.datasets.{module}.{cls_name}`."
    return factory


#: name -> factory(split, root=None, **kwargs); metadata ``needs_root``.
DATASETS: Registry[Factory] = Registry("dataset")
DATASETS.register("esdigits", _esdigits, needs_root=False)
DATASETS.register("mnist", _mnist, needs_root=True)
for _module, _cls in (
    ("nmnist", "NMNIST"),
    ("dvsgesture", "DVSGesture"),
    ("cifar10dvs", "CIFAR10DVS"),
    ("ncaltech101", "NCaltech101"),
    ("shd", "SHD"),
    ("esimagenet", "ESImageNet"),
    ("eventfolder", "EventFolder"),
):
    DATASETS.register(_module, _event_dataset(_module, _cls), needs_root=True)


def _graph_dataset(name: str) -> Factory:
    """Registry factory of a graph dataset (:mod:`spikeloom.graph`; a split of one graph)."""

    def factory(split: str, root: str | None = None, **kwargs: Any) -> Dataset:
        from ..graph.training import graph_split

        return graph_split(name, split, root, **kwargs)

    factory.__name__ = f"_{name}"
    return factory


for _name in ("cora", "citeseer", "pubmed"):
    DATASETS.register(_name, _graph_dataset(_name), needs_root=True)
DATASETS.register("sbm", _graph_dataset("sbm"), needs_root=False)


def build_dataset(name: str, split: str, root: str | None = None, **kwargs: Any) -> Dataset:
    """Build dataset ``name`` for ``split`` (``"train"``, ``"val"`` or ``"test"``).

    Raises:
        UnknownNameError: (a ``ValueError``) for an unknown name, listing the registered ones.
        ValueError: ``root`` given to ``esdigits``, or missing for an event dataset (the
            message shows the expected folder layout).
    """
    return DATASETS.get(name)(split, root=root, **kwargs)
