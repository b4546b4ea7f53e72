"""MNIST (static images) read from the four original IDX files, as ``[T, 1, 28, 28]`` frames.

Expected files in ``root`` (gzip-compressed or raw, as published by LeCun & Cortes at
http://yann.lecun.com/exdb/mnist/ and mirrored widely; spikeloom never downloads them)::

    train-images-idx3-ubyte.gz  train-labels-idx1-ubyte.gz
    t10k-images-idx3-ubyte.gz   t10k-labels-idx1-ubyte.gz

(the same names without ``.gz`` are accepted).

Splits: ``test`` is the official 10,000-image test set. The official 60,000 training images
are split, stratified by class and seeded (:func:`~spikeloom.datasets.splits.stratified_split`),
into ``val`` (``val_size`` images, default 5,000) and ``train`` (the rest, default 55,000), so
that model selection never looks at the test set.

Encoding (``encoding``): the pixel intensities ``x / 255`` in ``[0, 1]`` are

* ``"direct"`` (default): repeated over the ``T`` steps (the first layer sees the analog
  image at every step, "direct"/"analog" input coding);
* ``"rate"``: Bernoulli spikes with probability ``x`` per step, drawn from a generator seeded by
  ``(seed, sample index)`` so that a sample is the same every time it is read.

``T = 1`` with ``"direct"`` gives a plain image classifier input ``[1, 1, 28, 28]``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import MissingDataError
from ..events.io import read_idx
from .spec import DataSpec
from .splits import stratified_split

__all__ = ["MNIST", "load_mnist_arrays"]

Split = Literal["train", "val", "test"]
Encoding = Literal["direct", "rate"]

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_SOURCE = "http://yann.lecun.com/exdb/mnist/ (or any mirror of the four original IDX files)"


def _find(root: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    return None


def load_mnist_arrays(
    root: str | Path, part: Literal["train", "test"]
) -> tuple[np.ndarray, np.ndarray]:
    """The official ``part`` as ``(images uint8 [N, 28, 28], labels int64 [N])``.

    Raises:
        MissingDataError: a file is missing (the message lists every expected file and where
            they are published).
        EventFileError: a file is not a valid IDX file, or images and labels disagree in count.
    """
    root = Path(root)
    paths = [_find(root, stem) for stem in _FILES[part]]
    if any(p is None for p in paths):
        expected = [s + ".gz" for pair in _FILES.values() for s in pair]
        raise MissingDataError(
            f"MNIST files missing in {root}: expected {', '.join(expected)} (or without .gz); "
            f"published at {_SOURCE}. spikeloom never downloads data."
        )
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise MissingDataError(
            f"MNIST {part} files disagree: images {images.shape} vs labels {labels.shape} "
            f"({paths[0]}, {paths[1]})"
        )
    return images, labels.astype(np.int64)


class MNIST(Dataset):
    """MNIST as a torch ``Dataset`` of ``(frames [T, 1, 28, 28] float32, label int)``.

    Args:
        root: folder holding the four IDX files (see the module docstring).
        split: ``"train"`` (55,000 by default), ``"val"`` (``val_size``) or ``"test"``
            (10,000).
        T: time steps (frames per sample), default 1.
        encoding: ``"direct"`` (analog image at every step) or ``"rate"`` (Bernoulli spikes).
        val_size: images of the official training set held out for validation.
        seed: seed of the stratified train/val split and of the rate coding.
        transform: optional callable applied to each sample's frames.
    """

    num_classes = 10

    def __init__(
        self,
        root: str | Path,
        split: Split = "train",
        *,
        T: int = 1,
        encoding: Encoding = "direct",
        val_size: int = 5000,
        seed: int = 0,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        if encoding not in ("direct", "rate"):
            raise ValueError(f"encoding must be 'direct' or 'rate', got {encoding!r}")
        if not (isinstance(T, int) and T >= 1):
            raise ValueError(f"T must be a positive integer, got {T!r}")
        if not 0 <= val_size < 60000:
            raise ValueError(f"val_size must be in [0, 60000), got {val_size}")
        if split == "test":
            images, labels = load_mnist_arrays(root, "test")
            self.indices = np.arange(labels.shape[0])
        else:
            images, labels = load_mnist_arrays(root, "train")
            train_idx, val_idx = stratified_split(labels, val_size / labels.shape[0], seed)
            self.indices = np.sort(train_idx if split == "train" else val_idx)
            images, labels = images[self.indices], labels[self.indices]
        self.root, self.split, self.T = Path(root), split, T
        self.encoding, self.seed = encoding, seed
        self.transform = transform
        self.images = torch.from_numpy(np.ascontiguousarray(images))  # uint8 [N, 28, 28]
        self.labels = torch.from_numpy(np.ascontiguousarray(labels))

    @property
    def spec(self) -> DataSpec:
        """``frames`` ``[T, 1, 28, 28]``, 10 classes."""
        return DataSpec("frames", 10, T=self.T, channels=1, size=(28, 28))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = self.images[i].to(torch.float32).div_(255.0)[None]  # [1, 28, 28]
        if self.encoding == "direct":
            frames = x.expand(self.T, 1, 28, 28).clone()
        else:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(self.indices[i]))
            frames = (torch.rand((self.T, 1, 28, 28), generator=g) < x).to(torch.float32)
        if self.transform is not None:
            frames = self.transform(frames)
        return frames, int(self.labels[i])

    def __repr__(self) -> str:
        return (
            f"MNIST(split={self.split!r}, n={len(self)}, T={self.T}, "
            f"encoding={self.encoding!r}, root={str(self.root)!r})"
        )
