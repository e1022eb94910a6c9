"""Training from a :class:`~galwidgets.data.store.SurveyStore`: what the loops add to the data layer's loader.

Both :func:`galwidgets.train` and the comparison models' :func:`~galwidgets.training.fitting.fit`
accept a store instead of an in-memory survey. Then each step's galaxies come from a
``DataLoader`` whose worker processes read (and map to model space) the next batches while the
model trains (:func:`galwidgets.data.streaming.batch_loader`), in the order of
:class:`~galwidgets.data.streaming.ShardedBatchSampler`: a seeded permutation per epoch, each
``torchrun`` rank reading its own slice of every global batch. The rest of a step's randomness
(flips and rotations, timesteps, condition dropout) is drawn for the whole global batch from the
run's generator on every rank, and the noise of each galaxy from a generator seeded by (seed, step,
position in the global batch), so a run gives the same batches on any number of ranks, and a
resumed run (the sampler restarts at the checkpoint's step) repeats an uninterrupted one.

Memory holds the catalog, the few batches in flight and, once, an evenly spaced sample of at most
:data:`FIT_SAMPLE` galaxies to fit the default normalizer (:func:`fit_sample`) — never the survey.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ..data.store import SurveyStore, open_store
from ..data.streaming import ShardedBatchSampler, StoreBatches, batch_loader
from ..data.transforms import Normalizer

__all__ = ["FIT_SAMPLE", "check_resumed_data", "check_store_for_model", "fit_sample", "per_galaxy_noise",
           "store_batches"]

#: Galaxies (evenly spaced through the store) the default normalizer is fitted on: its softening is
#: the median sky noise (robust with far fewer galaxies) and its upper flux twice the brightest
#: pixel; a fixed sample keeps the memory of training from a store independent of its size.
FIT_SAMPLE = 2_000


def fit_sample(store: SurveyStore, limit: int = FIT_SAMPLE) -> np.ndarray:
    """Flux images of at most ``limit`` galaxies spread evenly through the store (all of a small one)."""
    n = len(store)
    rows = np.unique(np.linspace(0, n - 1, min(n, limit)).round().astype(np.int64))
    return store.read_images(rows)


def check_store_for_model(store: SurveyStore, model: torch.nn.Module, normalizer: Normalizer | None) -> None:
    """Refuse a store the model cannot train on, naming what differs, before any worker starts."""
    if len(store) == 0:
        raise ValueError(f"data: the store {store.path} holds no complete galaxy")
    in_channels = model.config.get("in_channels")
    if in_channels is not None and len(store.bands) != in_channels:
        raise ValueError(f"data: the store {store.path.name} has {len(store.bands)} bands {store.bands} but "
                         f"the model expects {in_channels}")
    image_size = model.config.get("image_size")
    if image_size is not None and store.size != image_size:
        raise ValueError(f"data: the store {store.path.name} holds {store.size}x{store.size} px stamps but "
                         f"the model expects {image_size}x{image_size}")
    mults = model.config.get("channel_mults")
    if mults and store.size % 2 ** (len(mults) - 1):
        raise ValueError(f"data: {store.size}-px stamps cannot pass the U-Net's {len(mults) - 1} halvings; "
                         f"use stamps whose side is a multiple of {2 ** (len(mults) - 1)}")
    if normalizer is not None:
        try:
            normalizer.forward(store.read_images(slice(0, 1)))
        except (ValueError, IndexError, RuntimeError) as exc:
            raise ValueError(f"normalizer: does not fit the store's {len(store.bands)} bands "
                             f"({exc})") from exc


def check_resumed_data(config: dict, store_bands: Sequence[str], size: int, n: int, path: Any) -> None:
    """On resume: the data the checkpoint was trained on must be this one (bands, stamp size, count)."""
    data = config.get("data", {})
    if data.get("bands") is not None and list(data["bands"]) != list(store_bands):
        raise ValueError(f"data: the checkpoint in checkpoint_dir was trained on bands {data['bands']}, the "
                         f"data has {list(store_bands)}; pass resume=False or the same data")
    if data.get("size") is not None and int(data["size"]) != int(size):
        raise ValueError(f"data: the checkpoint in checkpoint_dir was trained on {data['size']}-px stamps, "
                         f"the data has {size}-px ones; pass resume=False or the same data")
    position = config.get("training", {}).get("data_position")
    if position is not None and int(position["n_galaxies"]) != int(n):
        raise ValueError(f"data: the checkpoint in checkpoint_dir streamed a store of "
                         f"{position['n_galaxies']} galaxies, {path} has {n}; resume with the same store "
                         "(or pass resume=False)")


def store_batches(store: SurveyStore, normalizer: Normalizer, batch_size: int, *, rank: int = 0,
                  world_size: int = 1, seed: int = 0, start: int = 0, stop: int | None = None,
                  num_workers: int = 2, prefetch_factor: int = 2, pin_memory: bool = False
                  ) -> tuple[DataLoader, ShardedBatchSampler]:
    """The loader of model-space batches ``(x, rows)`` of this rank, from global batch ``start`` on."""
    reader = store if not store.writable else open_store(store.path)
    sampler = ShardedBatchSampler(len(reader), batch_size, rank=rank, world_size=world_size, seed=seed,
                                  start=start, stop=stop)
    loader = batch_loader(StoreBatches(reader, normalizer.forward), sampler, num_workers=num_workers,
                          prefetch_factor=prefetch_factor, pin_memory=pin_memory)
    return loader, sampler


def per_galaxy_noise(shape: Sequence[int], seed: int, step: int, positions: range) -> torch.Tensor:
    """Standard normal noise for the galaxies at ``positions`` of the global batch of ``step``.

    Each galaxy's noise comes from its own generator seeded by ``(seed, step, position)``: a rank
    draws only its own galaxies' noise, yet the noise of every galaxy is the same on any number of
    ranks and after a resume (nothing to checkpoint).
    """
    noise = torch.empty((len(positions), *shape))
    for i, j in enumerate(positions):
        key = ((int(seed) * 2**24 + int(step)) * 2**24 + int(j)) % 2**63
        noise[i] = torch.randn(tuple(shape), generator=torch.Generator().manual_seed(key))
    return noise
