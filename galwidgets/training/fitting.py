"""A generic, resumable training loop for the comparison models (VAE, DCGAN, translators, estimators).

The diffusion trainer :func:`galwidgets.train` knows one loss. The baselines of the published
work each have their own (a VAE's evidence lower bound, a GAN's two adversarial losses, a
regression loss), so :func:`fit` owns only what they share: seeded random batches of model-space
images (flux through the :class:`~galwidgets.data.Normalizer`) with random flips and 90° rotations,
optional catalog values per galaxy (e.g. redshift), atomic checkpoints holding the model, every
optimizer's state and the random-generator states, exact resumption, and ``train_log.csv``. The
model-specific ``step`` function does the forward pass, ``zero_grad``/``backward``/``step`` and
returns its losses.

Given a :class:`~galwidgets.data.store.SurveyStore`, :func:`fit` streams the galaxies from disk
through DataLoader workers (:mod:`galwidgets.training.streaming`): epochs of a seeded permutation,
the position in them restored on resume.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .._device import resolve_device
from .._validation import check_positive_int
from ..checkpoints import Checkpoint, load_optimizer_state, read_checkpoint_tensors, state_dict_from
from ..data.store import SurveyStore, is_store
from ..data.surveys import Survey
from ..data.transforms import AsinhStretch, Normalizer
from .common import (
    as_survey,
    checkpoint_config,
    latest_checkpoint,
    random_dihedral,
    read_history,
    resumed_normalizer,
    rng_states,
    set_rng_states,
    write_checkpoint,
)
from .streaming import check_resumed_data, check_store_for_model, fit_sample, store_batches

__all__ = ["Batch", "fit"]


@dataclass
class Batch:
    """One training batch handed to the ``step`` function of :func:`fit`.

    Attributes
    ----------
    x : torch.Tensor
        ``(B, C, H, W)`` model-space images (``normalizer.forward`` of the flux) on the training
        device, randomly flipped and rotated by multiples of 90° when ``augment`` is on.
    values : torch.Tensor or None
        ``(B, k)`` float32 values of the requested catalog ``columns`` (e.g. redshift) on the
        device, or None when no columns were requested.
    step : int
        Global step index, 0-based (``step + 1`` steps are done after this one).
    generator : torch.Generator
        The seeded CPU generator of the run; draw all randomness of the step from it (e.g.
        ``torch.randn(shape, generator=batch.generator).to(batch.x.device)``) so that resumed runs
        repeat uninterrupted ones.
    """

    x: torch.Tensor
    values: torch.Tensor | None
    step: int
    generator: torch.Generator


def _column_names(columns: Any) -> list[str] | None:
    if columns is None:
        return None
    if isinstance(columns, str):
        return [columns]
    if isinstance(columns, Sequence) and columns and all(isinstance(c, str) for c in columns):
        return list(columns)
    raise TypeError(f"columns: expected a catalog column name or a list of names, got {columns!r}")


def _column_values(survey: Survey | SurveyStore, columns: list[str] | None) -> torch.Tensor | None:
    """``(N, k)`` float32 catalog values of ``columns``, or None."""
    if columns is None:
        return None
    if survey.catalog is None:
        raise ValueError(f"columns: {columns} requested but data has no catalog; pass a Survey with one")
    missing = [c for c in columns if c not in survey.catalog.columns]
    if missing:
        raise ValueError(f"columns: the catalog has no column(s) {missing}; "
                         f"it has {list(survey.catalog.columns)}")
    values = survey.catalog[columns].to_numpy(dtype=np.float32)
    if not np.isfinite(values).all():
        raise ValueError(f"columns: expected finite catalog values in {columns}, found NaN or infinite ones")
    return torch.from_numpy(np.array(values, dtype=np.float32))


def _check_optimizers(optimizers: Any) -> dict[str, torch.optim.Optimizer]:
    if not isinstance(optimizers, dict) or not optimizers:
        raise TypeError(
            f"optimizers: expected a non-empty dict of name -> torch.optim.Optimizer, got {optimizers!r}"
        )
    for name, opt in optimizers.items():
        if not isinstance(name, str) or not name or "/" in name:
            raise ValueError(f"optimizers: names must be non-empty strings without '/', got {name!r}")
        if not isinstance(opt, torch.optim.Optimizer):
            raise TypeError(f"optimizers: {name!r} must be a torch.optim.Optimizer, got {type(opt).__name__}")
    return optimizers


def _check_model(model: Any) -> nn.Module:
    if not isinstance(model, nn.Module) or not isinstance(getattr(model, "config", None), dict):
        raise TypeError(
            "model: expected a galwidgets model (an nn.Module with a .config dict of its constructor "
            f"arguments), got {type(model).__name__}"
        )
    return model


def _random_batch(x_all: torch.Tensor, values: torch.Tensor | None, batch_size: int,
                  generator: torch.Generator, augment: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Random galaxies (drawn with replacement) and their catalog values, flipped/rotated if ``augment``."""
    idx = torch.randint(len(x_all), (batch_size,), generator=generator)
    x = random_dihedral(x_all[idx], generator) if augment else x_all[idx]
    return x, None if values is None else values[idx]


def _resume(path: Path, model: nn.Module, optimizers: dict, generator: torch.Generator,
            store: SurveyStore | None = None) -> int:
    """Load model, optimizer and generator states from ``path``; return its step."""
    config, tensors = read_checkpoint_tensors(path)
    if config["model"]["name"] != type(model).__name__ or config["model"]["kwargs"] != model.config:
        raise ValueError(
            f"checkpoint_dir: {path} holds a different model ({config['model']}); "
            "pass resume=False or another checkpoint_dir"
        )
    if store is not None:
        check_resumed_data(config, store.bands, store.size, len(store), store.path)
    stored = config.get("optimizers", {})
    if set(stored) != set(optimizers):
        raise ValueError(
            f"optimizers: {path} holds optimizers {sorted(stored)}, got {sorted(optimizers)}; "
            "pass resume=False or another checkpoint_dir"
        )
    model.load_state_dict(state_dict_from(tensors, "model"))
    for name, opt in optimizers.items():
        load_optimizer_state(opt, tensors, stored[name], prefix=f"optim/{name}")
    set_rng_states(tensors, generator)
    return int(config["step"])


def fit(
    model: nn.Module,
    step: Callable[[Batch], dict[str, float]],
    optimizers: dict[str, torch.optim.Optimizer],
    data: Survey | np.ndarray | SurveyStore,
    steps: int,
    batch_size: int,
    *,
    normalizer: Normalizer | None = None,
    columns: str | Sequence[str] | None = None,
    augment: bool = True,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 500,
    keep_last: int = 2,
    resume: bool = True,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
    config: dict | None = None,
    num_workers: int = 2,
    prefetch_factor: int = 2,
) -> Checkpoint:
    """Train ``model`` with a model-specific ``step`` function on seeded random batches of galaxies.

    Each step draws ``batch_size`` galaxies (with replacement) from ``data`` with the run's seeded
    generator, maps them to model space, flips and rotates them at random (galaxies have no
    preferred orientation) and calls ``step(batch)``, which updates the weights and returns its
    losses. Checkpoints hold the model, every optimizer's state and the generator states, so a
    run resumed from one reaches the same weights as an uninterrupted run (on CPU).

    Parameters
    ----------
    model : torch.nn.Module
        A galwidgets model (registered in :data:`galwidgets.models.MODELS`, with ``model.config``)
        holding *all* trained sub-networks (e.g. a GAN's generator and discriminator); trained in
        place and moved to ``device``.
    step : callable
        ``step(batch: Batch) -> dict[str, float]``: one optimisation step (its own ``zero_grad``,
        ``backward`` and ``optimizer.step()`` with ``optimizers``); the returned losses are logged.
    optimizers : dict of str to torch.optim.Optimizer
        The optimizers ``step`` uses, by name (e.g. ``{"generator": ..., "discriminator": ...}``);
        their states are checkpointed.
    data : Survey, array or SurveyStore
        Training galaxies as flux images ``(N, C, H, W)``, in memory or in an on-disk store (then
        streamed: each epoch a seeded permutation, read ahead by ``num_workers`` processes).
    steps : int
        Total optimisation steps (including any already done when resuming).
    batch_size : int
        Galaxies per step.
    normalizer : Normalizer, optional
        Flux → model space map; by default :meth:`AsinhStretch.fit` on ``data`` (on a store: on at
        most 2,000 of its galaxies, evenly spaced). A resumed run keeps its checkpoint's normalizer
        (passing a different one is an error).
    columns : str or list of str, optional
        Catalog columns handed to ``step`` as ``batch.values`` (e.g. ``"redshift"`` as a condition
        or a regression target); needs a Survey with a catalog.
    augment : bool
        Random flips and 90° rotations.
    checkpoint_dir : path-like, optional
        Where checkpoints ``step_XXXXXXX.safetensors`` and ``train_log.csv`` go.
    checkpoint_every, keep_last : int
        Checkpoint period in steps (a checkpoint is also written after the last step) and how many
        checkpoints to keep.
    resume : bool
        Continue from the newest checkpoint in ``checkpoint_dir`` if there is one.
    seed : int
        Seeds the batch generator and the global torch generator (dropout).
    device : str or torch.device, optional
        ``cuda`` when available by default.
    progress : bool
        Show a progress bar with the losses.
    config : dict, optional
        Extra JSON-serialisable entries for the checkpoint config (e.g. ``{"cond": ...}``); a
        ``"training"`` entry is merged into the training settings (e.g. learning rate, loss weights).
    num_workers, prefetch_factor : int
        With a store: reading processes and batches each reads ahead.

    Returns
    -------
    Checkpoint
        ``model`` in eval mode, ``schedule=None``, the normalizer, the config (``"data"``,
        ``"training"``, ``"step"``, ...) and the loss ``history`` (one row per step: ``step``, the
        number of steps done, then the losses and the elapsed ``seconds``).
    """
    model = _check_model(model)
    if not callable(step):
        raise TypeError(f"step: expected a callable step(batch) -> dict of losses, got {type(step).__name__}")
    optimizers = _check_optimizers(optimizers)
    streaming = is_store(data)
    survey = data if streaming else as_survey(data)
    steps = check_positive_int(steps, "steps")
    batch_size = check_positive_int(batch_size, "batch_size")
    checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
    keep_last = check_positive_int(keep_last, "keep_last")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed: expected an integer, got {type(seed).__name__} {seed!r}")
    if config is not None and not isinstance(config, dict):
        raise TypeError(f"config: expected a dict or None, got {type(config).__name__}")
    if normalizer is not None and not isinstance(normalizer, Normalizer):
        raise TypeError(f"normalizer: expected a galwidgets Normalizer, got {type(normalizer).__name__}")
    in_channels = model.config.get("in_channels")
    if streaming:
        check_store_for_model(survey, model, normalizer)
    elif in_channels is not None and survey.images.shape[1] != in_channels:
        raise ValueError(f"data: has {survey.images.shape[1]} bands but the model expects {in_channels}")
    names = _column_names(columns)
    values = _column_values(survey, names)
    device = resolve_device(device)
    normalizer = resumed_normalizer(normalizer, checkpoint_dir, resume)
    normalizer = normalizer or AsinhStretch.fit(fit_sample(survey) if streaming else survey.images)
    x_all = None if streaming else \
        torch.from_numpy(np.ascontiguousarray(normalizer.forward(survey.images), dtype=np.float32))
    extra = dict(config or {})
    settings = {"steps": steps, "batch_size": batch_size, "augment": bool(augment), "seed": int(seed),
                "columns": names, "optimizers": {k: type(v).__name__ for k, v in optimizers.items()},
                **extra.pop("training", {})}

    def full_config(done: int) -> dict:
        return {**checkpoint_config(model, None, normalizer, survey, None, settings, done), **extra}

    model.to(device).train()
    generator = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    start, history = 0, []
    if ckpt_dir is not None and resume and (last := latest_checkpoint(ckpt_dir)) is not None:
        start = _resume(last, model, optimizers, generator, survey if streaming else None)
        history = read_history(ckpt_dir, start)
    batches = sampler = None
    if streaming and start < steps:
        loader, sampler = store_batches(survey, normalizer, batch_size, seed=int(seed), start=start,
                                        stop=steps, num_workers=num_workers,
                                        prefetch_factor=prefetch_factor, pin_memory=device.type == "cuda")
        batches = iter(loader)

    bar = tqdm(range(start, steps), desc=f"training {type(model).__name__}", disable=not progress,
               initial=start, total=steps)
    t0 = time.perf_counter()
    for i in bar:
        if streaming:
            x, rows = next(batches)
            x = random_dihedral(x, generator) if augment else x
            v = None if values is None else values[rows]
        else:
            x, v = _random_batch(x_all, values, batch_size, generator, augment)
        losses = step(Batch(x=x.to(device), values=None if v is None else v.to(device), step=i,
                            generator=generator))
        if not isinstance(losses, dict):
            raise TypeError(f"step: expected it to return a dict of losses, got {type(losses).__name__}")
        row = {k: float(val) for k, val in losses.items()}
        history.append({"step": i + 1, **row, "seconds": time.perf_counter() - t0})
        bar.set_postfix({k: f"{val:.4g}" for k, val in row.items()})
        if ckpt_dir is not None and ((i + 1) % checkpoint_every == 0 or i + 1 == steps):
            if sampler is not None:
                settings["data_position"] = sampler.position(i + 1)
            write_checkpoint(ckpt_dir, i + 1, history, keep_last, model, None, normalizer,
                              full_config(i + 1), optimizers=optimizers, rng=rng_states(generator, device))
    bar.close()
    del batches  # stops the reading workers
    model.eval()
    return Checkpoint(model=model, schedule=None, normalizer=normalizer,
                      config=full_config(max(start, steps)), history=pd.DataFrame(history))
