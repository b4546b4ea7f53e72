"""MNIST from the original IDX files: splits, encodings and missing-file errors."""

import numpy as np
import pytest
import torch

from spikeloom.datasets import MNIST, build_dataset
from spikeloom.errors import MissingDataError


def test_mnist_splits_and_direct_encoding(shared_data):
    root = shared_data / "mnist"
    train = MNIST(root, "train", T=2)
    val = MNIST(root, "val", T=2)
    test = build_dataset("mnist", "test", root=str(root))
    assert (len(train), len(val), len(test)) == (55000, 5000, 10000)
    assert not set(train.indices.tolist()) & set(val.indices.tolist())
    # stratified: every class holds about a tenth of the validation set
    counts = np.bincount(val.labels.numpy(), minlength=10)
    assert counts.min() > 400 and counts.sum() == 5000
    x, y = train[0]
    assert x.shape == (2, 1, 28, 28) and x.dtype == torch.float32
    assert torch.equal(x[0], x[1]) and 0.0 <= x.min() and x.max() <= 1.0
    assert train.spec.sample_shape == (2, 1, 28, 28)
    # the first official test digit is a 7
    assert test[0][1] == 7


def test_mnist_rate_encoding_is_deterministic(shared_data):
    ds = MNIST(shared_data / "mnist", "test", T=16, encoding="rate")
    a, _ = ds[3]
    b, _ = ds[3]
    assert torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}
    img = ds.images[3].float() / 255
    assert torch.all(a.sum(0)[0][img == 0] == 0)  # black pixels never spike


def test_mnist_missing_files_are_named(tmp_path):
    with pytest.raises(MissingDataError, match="t10k-labels-idx1-ubyte.gz"):
        MNIST(tmp_path, "test")
    with pytest.raises(ValueError, match="needs --root"):
        build_dataset("mnist", "train")
