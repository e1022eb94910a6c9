"""Batches of galaxies streamed from a :class:`~galwidgets.data.store.SurveyStore` by DataLoader workers.

A training loop over a survey that does not fit in memory reads each step's galaxies from disk.
:class:`ShardedBatchSampler` decides which (a seeded permutation of the store per epoch, cut into
global batches; under ``torchrun`` each rank takes its contiguous slice of every global batch, so
every galaxy is read by exactly one rank once per epoch, like ``DistributedSampler``, and the
batches are the same whatever the number of ranks); :class:`StoreBatches` reads them
(one ``DataLoader`` item is one batch, read in one go by a worker process and mapped to model
space there); :func:`batch_loader` puts both into a ``torch.utils.data.DataLoader`` whose
``num_workers`` processes read ahead (``prefetch_factor`` batches each) while the model trains.

Nothing here knows about training: the sampler's position is a number of global batches, so a
loop that checkpoints its step resumes exactly where it stopped (``start=step``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .._validation import check_positive_int
from .store import SurveyStore

__all__ = ["ShardedBatchSampler", "StoreBatches", "batch_loader"]


class ShardedBatchSampler(Sampler[np.ndarray]):
    """Row indices of this rank's share of each global batch, epoch after epoch, from a given batch on.

    Epoch ``e`` is ``torch.randperm(n)`` drawn from a generator seeded with ``seed + e`` (as
    :class:`torch.utils.data.DistributedSampler` does), cut into ``n // batch_size`` global batches
    (the incomplete last one is skipped); global batch ``b`` counts on across epochs. Rank ``r`` of
    ``world_size`` takes positions ``[r B / W, (r + 1) B / W)`` of each, so the ranks read disjoint
    galaxies and together exactly the global batch.

    Parameters
    ----------
    n : int
        Galaxies in the store.
    batch_size : int
        Global batch size (divisible by ``world_size``, at most ``n``).
    rank, world_size : int
        This process's rank and the number of ranks.
    seed : int
        Seed of the permutations.
    start : int
        Global batches already consumed (a resumed run's step).
    stop : int, optional
        Global batch to stop before; default never.
    shuffle : bool
        Permute each epoch (False: galaxies in store order).
    """

    def __init__(self, n: int, batch_size: int, *, rank: int = 0, world_size: int = 1, seed: int = 0,
                 start: int = 0, stop: int | None = None, shuffle: bool = True) -> None:
        self.n = check_positive_int(n, "n")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        if batch_size > n:
            raise ValueError(f"batch_size: {batch_size} is larger than the {n} galaxies of the store")
        if batch_size % world_size:
            raise ValueError(f"batch_size: the global batch of {batch_size} must be divisible by the "
                             f"{world_size} ranks")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank: expected 0 <= rank < {world_size}, got {rank}")
        self.rank, self.world_size, self.seed, self.shuffle = rank, world_size, int(seed), shuffle
        self.start, self.stop = int(start), stop
        self.per_epoch = n // batch_size
        self._lo, self._hi = rank * batch_size // world_size, (rank + 1) * batch_size // world_size

    def position(self, batch: int) -> dict[str, int]:
        """Epoch and batch within the epoch of global batch ``batch`` (what a checkpoint records)."""
        epoch, within = divmod(int(batch), self.per_epoch)
        return {"epoch": epoch, "batch_in_epoch": within, "batches_per_epoch": self.per_epoch,
                "n_galaxies": self.n, "batch_size": self.batch_size, "seed": self.seed}

    def permutation(self, epoch: int) -> np.ndarray:
        """The order of the galaxies in ``epoch``."""
        if not self.shuffle:
            return np.arange(self.n)
        return torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + epoch)).numpy()

    def __iter__(self) -> Iterator[np.ndarray]:
        epoch, order = -1, None
        batch = self.start
        while self.stop is None or batch < self.stop:
            e, within = divmod(batch, self.per_epoch)
            if e != epoch:
                epoch, order = e, self.permutation(e)
            rows = order[within * self.batch_size:(within + 1) * self.batch_size]
            yield rows[self._lo:self._hi]
            batch += 1

    def __len__(self) -> int:
        if self.stop is None:
            raise TypeError("ShardedBatchSampler: an endless sampler (stop=None) has no length")
        return max(0, self.stop - self.start)


class StoreBatches(Dataset):
    """A map-style dataset whose item for an array of rows is that batch: ``(images, rows)``.

    ``images`` is a float32 tensor ``(k, C, H, W)``, ``transform(flux)`` if a transform is given
    (e.g. ``normalizer.forward`` to model space, done in the worker); ``rows`` the int64 rows. The
    store travels to worker processes by its path and is opened there.
    """

    def __init__(self, store: SurveyStore,
                 transform: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        if not isinstance(store, SurveyStore):
            raise TypeError(f"store: expected a galwidgets SurveyStore, got {type(store).__name__}")
        self.store = store
        self.transform = transform

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, rows: Any) -> tuple[torch.Tensor, torch.Tensor]:
        rows = np.asarray(rows, dtype=np.int64)
        images = self.store.read_images(rows)
        if self.transform is not None:
            images = self.transform(images)
        return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)), torch.from_numpy(rows)


def _worker_init(_: int) -> None:
    """One thread per reading worker: the training process owns the cores' math libraries."""
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


def batch_loader(dataset: StoreBatches, sampler: ShardedBatchSampler, *, num_workers: int = 2,
                 prefetch_factor: int = 2, pin_memory: bool = False) -> DataLoader:
    """A DataLoader yielding one ``(images, rows)`` batch per sampler item, read by worker processes.

    Parameters
    ----------
    dataset, sampler
        What to read and in which order.
    num_workers : int
        Reading processes (0: read in this process, between steps).
    prefetch_factor : int
        Batches each worker reads ahead.
    pin_memory : bool
        Page-locked batches for faster copies to a GPU.
    """
    if isinstance(num_workers, bool) or not isinstance(num_workers, int | np.integer) or num_workers < 0:
        raise ValueError(f"num_workers: expected a number of reading processes >= 0, got {num_workers!r}")
    prefetch_factor = check_positive_int(prefetch_factor, "prefetch_factor")
    # its own generator: a DataLoader without one draws its workers' base seed from the global torch
    # generator, which would shift the dropout masks of a resumed run against an uninterrupted one
    return DataLoader(dataset, batch_size=None, sampler=sampler, num_workers=int(num_workers),
                      prefetch_factor=prefetch_factor if num_workers else None, pin_memory=pin_memory,
                      worker_init_fn=_worker_init if num_workers else None, persistent_workers=False,
                      generator=torch.Generator().manual_seed(0))
