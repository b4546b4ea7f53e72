"""Planetoid citation graphs (Cora, Citeseer, Pubmed) from the original ``ind.<name>.*`` files.

The files of Yang, Cohen and Salakhutdinov (ICML 2016, github.com/kimiyoung/planetoid,
``data/``; the same files are in github.com/tkipf/gcn, ``gcn/data/``) are read as published:
``x``/``tx``/``allx`` (pickled sparse features), ``y``/``ty``/``ally`` (one-hot labels),
``graph`` (adjacency lists) and ``test.index``. The standard public split is returned:
20 labelled nodes per class for training (the rows of ``y``), the next 500 nodes for
validation and the 1000 listed test nodes.

Citeseer has 15 test-range nodes without features or labels (isolated nodes absent from
``tx``); as in the original GCN code they are inserted as all-zero feature rows with label 0
and are *not* in the test mask. The graph is made undirected and self-loops are removed.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, MissingDataError
from .data import Graph, to_undirected

__all__ = ["load_planetoid", "PLANETOID_NAMES", "PLANETOID_FILES", "PLANETOID_SOURCE"]

PLANETOID_NAMES: tuple[str, ...] = ("cora", "citeseer", "pubmed")
PLANETOID_FILES: tuple[str, ...] = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")
PLANETOID_SOURCE = ("https://github.com/kimiyoung/planetoid/tree/master/data (also "
                    "https://github.com/tkipf/gcn/tree/master/gcn/data)")


class _Py2Unpickler(pickle.Unpickler):
    """Reads the Python 2 pickles; maps old scipy module paths to the current ones."""

    def find_class(self, module: str, name: str):
        if module.startswith("scipy.sparse."):
            module = "scipy.sparse"
        return super().find_class(module, name)


def _read(path: Path):
    with open(path, "rb") as f:
        return _Py2Unpickler(f, encoding="latin1").load()


def _dense(a) -> np.ndarray:
    return np.asarray(a.todense() if hasattr(a, "todense") else a, dtype=np.float32)


def load_planetoid(root: str | Path, name: str) -> Graph:
    """Load ``cora``, ``citeseer`` or ``pubmed`` from ``root/ind.<name>.*``.

    Raises:
        MissingDataError: files are missing (all missing ones are listed, with the URL where
            they are published).
        ConfigError: an unknown name.
    """
    name = name.lower()
    if name not in PLANETOID_NAMES:
        raise ConfigError(f"unknown Planetoid graph {name!r}; choose one of "
                          f"{', '.join(PLANETOID_NAMES)}")
    root = Path(root)
    paths = {k: root / f"ind.{name}.{k}" for k in PLANETOID_FILES}
    missing = [p.name for p in paths.values() if not p.is_file()]
    if missing:
        raise MissingDataError(
            f"Planetoid {name!r}: missing file(s) in {root}: {', '.join(missing)}. They are "
            f"published at {PLANETOID_SOURCE}; spikeloom never downloads data."
        )
    x, y, tx, ty, allx, ally = (_read(paths[k]) for k in ("x", "y", "tx", "ty", "allx", "ally"))
    graph = _read(paths["graph"])
    test_idx = np.loadtxt(paths["test.index"], dtype=np.int64).reshape(-1)
    test_sorted = np.sort(test_idx)
    tx, ty = _dense(tx), np.asarray(ty)
    if name == "citeseer":  # isolated test-range nodes have no row in tx: insert zero rows
        full = np.arange(test_sorted[0], test_sorted[-1] + 1)
        tx_ext = np.zeros((len(full), tx.shape[1]), np.float32)
        ty_ext = np.zeros((len(full), ty.shape[1]), ty.dtype)
        tx_ext[test_sorted - test_sorted[0]] = tx
        ty_ext[test_sorted - test_sorted[0]] = ty
        tx, ty = tx_ext, ty_ext
    feats = np.concatenate([_dense(allx), tx])
    onehot = np.concatenate([np.asarray(ally), ty])
    # the rows of tx follow test.index order; put them at their node ids
    feats[test_idx] = feats[test_sorted]
    onehot[test_idx] = onehot[test_sorted]
    n = feats.shape[0]
    src = np.fromiter((s for s, nb in graph.items() for _ in nb), np.int64)
    dst = np.fromiter((d for nb in graph.values() for d in nb), np.int64)
    keep = (src < n) & (dst < n)
    ei = to_undirected(torch.from_numpy(np.stack([src[keep], dst[keep]])), n)
    masks = {k: torch.zeros(n, dtype=torch.bool) for k in ("train", "val", "test")}
    n_train = np.asarray(y).shape[0]
    masks["train"][:n_train] = True
    masks["val"][n_train:n_train + 500] = True
    masks["test"][torch.from_numpy(test_idx)] = True
    labels = torch.from_numpy(onehot.argmax(1).astype(np.int64))
    return Graph(ei, torch.from_numpy(feats), labels, masks, name)
