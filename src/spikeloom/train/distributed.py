"""Data parallelism under ``torchrun``: process info, global batches and per-rank loaders.

Every process takes an equal contiguous slice of each *global* batch (``batch_size`` is the
global batch size); DistributedDataParallel averages gradients over processes, and the loss is
scaled so that the update equals the single-process update on the same global batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset

__all__ = ["DistInfo", "init_distributed", "global_batches", "RankBatches", "make_loader"]


@dataclass
class DistInfo:
    """This process's place in a (possibly single-process) run."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_sum(self, values: list[float]) -> list[float]:
        """Sum ``values`` over processes (identity for one process)."""
        if not self.enabled:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def init_distributed(device: str) -> DistInfo:
    """Join the process group set up by ``torchrun`` (gloo on CPU, nccl on CUDA), if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def global_batches(n: int, batch_size: int, seed: int, epoch: int,
                   shuffle: bool) -> list[np.ndarray]:
    """Index arrays of the global batches of one epoch (the same on every process).

    The order depends only on ``(seed, epoch)``, so a resumed run sees the same batches.
    """
    if shuffle:
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(n, generator=g).numpy()
    else:
        order = np.arange(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


class RankBatches(torch.utils.data.Sampler[list[int]]):
    """This process's contiguous slice of every global batch (empty slices are skipped)."""

    def __init__(self, batches: list[np.ndarray], rank: int, world: int) -> None:
        slices = (np.array_split(b, world)[rank].tolist() for b in batches)
        self.batches = [b for b in slices if b]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def make_loader(ds: Dataset, batches: list[np.ndarray], d: DistInfo, *, num_workers: int = 0,
                seed: int = 0) -> DataLoader:
    """A DataLoader over this rank's slices of ``batches`` with the time-major collate."""
    from ..datasets.collate import collate

    own = getattr(ds, "graph_loader", None)  # graph datasets batch themselves
    if own is not None:
        return own(batches, d, seed=seed)
    g = torch.Generator().manual_seed(seed)
    return DataLoader(ds, batch_sampler=RankBatches(batches, d.rank, d.world),
                      collate_fn=collate, num_workers=num_workers, generator=g,
                      persistent_workers=False)
