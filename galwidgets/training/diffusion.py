"""Training of ε-prediction diffusion models (Ho et al. 2020, Algorithm 1) that survives interruption.

:func:`train` minimises ``|| ε - ε_θ(√ᾱ_t x_0 + √(1-ᾱ_t) ε, t) ||²`` (or the same loss on the
velocity ``v = √ᾱ_t ε - √(1-ᾱ_t) x_0`` for v-prediction models, Salimans & Ho 2022) with AdamW, learning-rate
warm-up, gradient clipping, an exponential moving average (EMA) of the weights for sampling, random
flips and 90° rotations (galaxies have no preferred orientation) and condition dropout for
classifier-free guidance. Checkpoints hold the model, EMA, optimizer and every random-generator
state, so ``resume=True`` continues an interrupted run and reproduces the uninterrupted one on CPU.

Launched by ``torchrun`` (or inside an initialised ``torch.distributed`` process group), :func:`train`
is data parallel: every rank draws the same global batch and trains on its own slice of it through
:class:`~torch.nn.parallel.DistributedDataParallel`, so the run matches a single process with the
same global ``batch_size`` up to float rounding.

Given a :class:`~galwidgets.data.store.SurveyStore` instead of a survey in memory, :func:`train`
streams: DataLoader worker processes read each rank's share of the coming global batches from disk
while the model trains (:mod:`galwidgets.training.streaming`), one epoch after another, and memory
stays that of a few batches whatever the size of the survey.
"""

from __future__ import annotations

import atexit
import copy
import os
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import viz
from .._device import bf16_is_fast, resolve_device
from .._validation import check_positive, check_positive_int
from ..checkpoints import (
    Checkpoint,
    load_optimizer_state,
    read_checkpoint_tensors,
    state_dict_from,
)
from ..data.store import SurveyStore, is_store
from ..data.surveys import Survey
from ..data.transforms import AsinhStretch, Normalizer
from ..diffusion.samplers import ddim
from ..diffusion.schedules import NoiseSchedule
from .common import (
    apply_dihedral,
    as_survey,
    checkpoint_config,
    dihedral_draws,
    latest_checkpoint,
    random_dihedral,
    read_history,
    resumed_normalizer,
    rng_states,
    set_rng_states,
    write_checkpoint,
)
from .streaming import (
    check_resumed_data,
    check_store_for_model,
    fit_sample,
    per_galaxy_noise,
    store_batches,
)

__all__ = ["train"]


def _conditions(cond: Any, survey: Survey | SurveyStore, cond_dim: int) -> torch.Tensor | None:
    """Condition per galaxy from catalog column name(s) or an array."""
    if cond is None:
        if cond_dim:
            raise ValueError(f"cond: the model expects a {cond_dim}-d condition; pass catalog column(s)")
        return None
    if isinstance(cond, str) or (isinstance(cond, Sequence) and all(isinstance(c, str) for c in cond)):
        columns = [cond] if isinstance(cond, str) else list(cond)
        missing = [c for c in columns if c not in survey.catalog.columns]
        if missing:
            raise ValueError(
                f"cond: catalog has no column(s) {missing}; columns are {list(survey.catalog.columns)}"
            )
        values = survey.catalog[columns].to_numpy(dtype=np.float32)
    else:
        values = np.asarray(cond, dtype=np.float32).reshape(len(survey), -1)
    if values.shape != (len(survey), cond_dim):
        raise ValueError(
            f"cond: expected shape ({len(survey)}, {cond_dim}) for this model, got {values.shape}"
        )
    if not np.isfinite(values).all():
        raise ValueError("cond: expected finite condition values")
    return torch.from_numpy(np.array(values, dtype=np.float32))


def _destroy_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _setup_distributed(device: torch.device) -> tuple[int, int, torch.device]:
    """This process's ``(rank, world_size, device)``; joins or starts a process group when launched so.

    An initialised default process group is used as it is. Otherwise, when torchrun's environment
    (``WORLD_SIZE`` > 1, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``, ...) is set, one is initialised
    with the ``nccl`` backend on CUDA and ``gloo`` on CPU, and destroyed at exit. On CUDA each rank
    trains on ``cuda:LOCAL_RANK`` unless ``device`` names a GPU. A lone process is rank 0 of 1.
    """
    if not dist.is_available():
        return 0, 1, device
    if not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, device
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", torch.cuda.current_device())))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_destroy_process_group)
    return dist.get_rank(), dist.get_world_size(), device


def _data_parallel(model: torch.nn.Module, device: torch.device, world_size: int) -> torch.nn.Module:
    """``model`` wrapped in DistributedDataParallel (which starts every rank from rank 0's weights)."""
    if world_size == 1:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def _barrier(world_size: int) -> None:
    if world_size > 1:
        dist.barrier()


def _mean_over_ranks(value: torch.Tensor, world_size: int) -> float:
    """The mean of a scalar over all ranks (the global-batch loss when each rank has an equal slice)."""
    if world_size == 1:
        return value.item()
    total = value.detach().float().clone()
    dist.all_reduce(total)
    return total.item() / world_size


def _check_same_start(start: int, world_size: int, device: torch.device) -> None:
    """Refuse to train when the ranks resumed from different checkpoints (e.g. unshared directories)."""
    if world_size == 1:
        return
    bounds = torch.tensor([start, -start], device=device)
    dist.all_reduce(bounds, op=dist.ReduceOp.MAX)
    if bounds[0] != -bounds[1]:
        raise ValueError(
            f"checkpoint_dir: ranks resumed from steps {-int(bounds[1])} to {int(bounds[0])}; it must be "
            "a directory shared by all ranks"
        )


def _draw_batch(
    x_all: torch.Tensor,
    conditions: torch.Tensor | None,
    T: int,
    batch_size: int,
    generator: torch.Generator,
    augment: bool,
    cond_drop: float,
) -> tuple[torch.Tensor | None, ...]:
    """A global batch ``(x0, t, noise, drop, cond)`` on the CPU: random indices, flips and rotations,
    timesteps, noise and condition dropout, drawn from ``generator`` in this fixed order."""
    idx = torch.randint(len(x_all), (batch_size,), generator=generator)
    x0 = x_all[idx]
    if augment:
        x0 = random_dihedral(x0, generator)
    t = torch.randint(T, (batch_size,), generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    drop = torch.rand(batch_size, generator=generator) < cond_drop
    c = None if conditions is None else conditions[idx]
    return x0, t, noise, drop, c


def _stream_batch(
    x_local: torch.Tensor,
    rows: torch.Tensor,
    conditions: torch.Tensor | None,
    T: int,
    batch_size: int,
    lo: int,
    hi: int,
    generator: torch.Generator,
    step: int,
    seed: int,
    augment: bool,
    cond_drop: float,
) -> tuple[torch.Tensor | None, ...]:
    """This rank's ``(x0, t, noise, drop, cond)`` of a streamed global batch: flips and rotations,
    timesteps and condition dropout drawn for the whole batch (the same on every rank), the noise of
    each galaxy from its own seed (:func:`per_galaxy_noise`)."""
    if augment:
        k, flip = dihedral_draws(batch_size, generator)
        x_local = apply_dihedral(x_local, k[lo:hi], flip[lo:hi])
    t = torch.randint(T, (batch_size,), generator=generator)
    drop = torch.rand(batch_size, generator=generator) < cond_drop
    noise = per_galaxy_noise(x_local.shape[1:], seed, step, range(lo, hi))
    c = None if conditions is None else conditions[rows]
    return x_local, t[lo:hi], noise, drop[lo:hi], c


@torch.no_grad()
def _update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.lerp_(p.detach(), 1 - decay)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)


def train(
    model: torch.nn.Module,
    schedule: NoiseSchedule,
    data: Survey | np.ndarray | SurveyStore,
    steps: int = 1000,
    batch_size: int = 32,
    *,
    lr: float = 2e-4,
    weight_decay: float = 0.0,
    warmup_steps: int = 100,
    grad_clip: float = 1.0,
    ema_decay: float = 0.999,
    normalizer: Normalizer | None = None,
    cond: str | Sequence[str] | np.ndarray | None = None,
    cond_drop: float = 0.1,
    augment: bool = True,
    checkpoint_dir: str | os.PathLike | None = None,
    checkpoint_every: int = 500,
    keep_last: int = 2,
    sample_every: int = 0,
    resume: bool = True,
    seed: int = 0,
    device: str | torch.device | None = None,
    autocast: bool | str = "auto",
    channels_last: bool = True,
    num_workers: int = 2,
    prefetch_factor: int = 2,
    progress: bool = True,
) -> Checkpoint:
    """Train an ε-prediction model on flux images, on one device or data parallel across processes.

    Run a script calling :func:`train` under ``torchrun --nproc_per_node N script.py`` to train on N
    processes (GPUs with the ``nccl`` backend, CPU processes with ``gloo``). Every rank draws the
    same global batch from the seeded generator and trains on its contiguous slice, with gradients
    averaged by :class:`~torch.nn.parallel.DistributedDataParallel`; the weights stay identical on
    every rank and match a single-process run with the same ``batch_size`` up to float rounding.
    Only rank 0 writes checkpoints, the log and sample grids; all ranks resume from the newest
    checkpoint, so ``checkpoint_dir`` must be shared by them. Dropout masks come from the global
    torch generator, seeded alike on every rank.

    With a :class:`~galwidgets.data.store.SurveyStore` as ``data`` the galaxies are streamed from
    disk: ``num_workers`` DataLoader processes per rank read and normalise the coming batches while
    the model trains. Each epoch is a seeded permutation of the store cut into global batches, and
    under ``torchrun`` each rank reads only its contiguous slice of each, so every galaxy is read by
    one rank once per epoch; the checkpoint records the position in the epochs, so ``resume=True``
    continues exactly. (Batches are drawn without replacement here and with replacement from a
    survey in memory, so the two runs differ.)

    Parameters
    ----------
    model : torch.nn.Module
        An ε-prediction network such as :class:`galwidgets.models.UNet`; trained in place.
    schedule : NoiseSchedule
        Forward-process schedule.
    data : Survey, array or SurveyStore
        Training galaxies as flux images ``(N, C, H, W)``, in memory or in an on-disk store.
    steps : int
        Total optimisation steps (including any already done when resuming).
    batch_size : int
        Galaxies per step: the global batch, split evenly across the ranks of a distributed run
        (so it must be divisible by their number).
    lr, weight_decay, warmup_steps, grad_clip
        AdamW learning rate and weight decay, linear warm-up length, gradient-norm clip.
    ema_decay : float
        EMA decay of the weights used for sampling (warmed up as ``min(decay, (1+s)/(10+s))``).
    normalizer : Normalizer, optional
        Flux → model space map; by default :meth:`AsinhStretch.fit` on ``data`` (on a store: on at
        most 2,000 of its galaxies, evenly spaced). A resumed run keeps its checkpoint's normalizer
        whatever data it is given (passing a different one is an error).
    cond : str, list of str or array, optional
        Catalog column(s) (e.g. ``"redshift"``) or values to condition on; needs ``cond_dim > 0``.
    cond_drop : float
        Probability of dropping the condition (classifier-free guidance training).
    augment : bool
        Random flips and 90° rotations.
    checkpoint_dir : path-like, optional
        Where checkpoints (``step_*.safetensors``), ``train_log.csv`` and sample grids go.
    checkpoint_every, keep_last
        Checkpoint period in steps and how many checkpoints to keep.
    sample_every : int
        Write a PNG grid of EMA samples every this many steps (0: never).
    resume : bool
        Continue from the newest checkpoint in ``checkpoint_dir`` if there is one.
    seed : int
        Seeds batches, timesteps, noise, augmentation and dropout.
    device : str or torch.device, optional
        ``cuda`` when available by default.
    autocast : bool or "auto"
        bf16 autocast; "auto" enables it where it is faster (see :func:`bf16_is_fast`).
    channels_last : bool
        Use the channels-last memory format (faster convolutions on CPU and GPU).
    num_workers : int
        With a store: reading processes per rank (0 reads between steps, in this process).
    prefetch_factor : int
        With a store: batches each reading process reads ahead.
    progress : bool
        Show a progress bar with the loss (on rank 0).

    Returns
    -------
    Checkpoint
        The EMA model with schedule, normalizer, config and the loss ``history`` (the mean over
        ranks); the same on every rank.
    """
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "config"):
        raise TypeError(f"model: expected a galwidgets model (e.g. UNet), got {type(model).__name__}")
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule: expected a NoiseSchedule, got {type(schedule).__name__}")
    streaming = is_store(data)
    survey = data if streaming else as_survey(data)
    steps = check_positive_int(steps, "steps")
    batch_size = check_positive_int(batch_size, "batch_size")
    check_positive(lr, "lr")
    checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
    if streaming:
        check_store_for_model(survey, model, normalizer)
    elif survey.images.shape[1] != model.config["in_channels"]:
        raise ValueError(
            f"data: has {survey.images.shape[1]} bands but the model expects {model.config['in_channels']}"
        )
    if not 0 <= cond_drop < 1:
        raise ValueError(f"cond_drop: expected a probability in [0, 1), got {cond_drop!r}")
    rank, world_size, device = _setup_distributed(resolve_device(device))
    if batch_size % world_size:
        raise ValueError(
            f"batch_size: the global batch of {batch_size} must be divisible by the {world_size} ranks"
        )
    lo, hi = rank * batch_size // world_size, (rank + 1) * batch_size // world_size
    use_bf16 = bf16_is_fast(device) if autocast == "auto" else bool(autocast)
    normalizer = resumed_normalizer(normalizer, checkpoint_dir, resume)
    normalizer = normalizer or AsinhStretch.fit(fit_sample(survey) if streaming else survey.images)
    conditions = _conditions(cond, survey, model.config.get("cond_dim", 0))
    settings = {
        "steps": steps, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
        "warmup_steps": warmup_steps, "grad_clip": grad_clip, "ema_decay": ema_decay,
        "cond_drop": cond_drop, "augment": augment, "seed": seed, "bf16": use_bf16,
        "channels_last": channels_last,
    }

    v_prediction = model.config.get("prediction", "eps") == "v"
    x_all = None if streaming else torch.from_numpy(np.ascontiguousarray(normalizer.forward(survey.images)))
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.to(device=device, memory_format=memory_format).train()
    net = _data_parallel(model, device, world_size)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    history: list[dict] = []
    start = 0

    ckpt_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckpt_dir is not None and resume and (last := latest_checkpoint(ckpt_dir)) is not None:
        start, history = _restore(last, model, ema, optimizer, generator, ckpt_dir,
                                  survey if streaming else None)
    _check_same_start(start, world_size, device)
    batches = sampler = None
    if streaming and start < steps:
        loader, sampler = store_batches(survey, normalizer, batch_size, rank=rank, world_size=world_size,
                                        seed=seed, start=start, stop=steps, num_workers=num_workers,
                                        prefetch_factor=prefetch_factor, pin_memory=device.type == "cuda")
        batches = iter(loader)

    def checkpoint(step: int) -> None:
        if rank != 0:
            return
        if sampler is not None:
            settings["data_position"] = sampler.position(step)
        config = checkpoint_config(model, schedule, normalizer, survey, cond, settings, step)
        write_checkpoint(ckpt_dir, step, history, keep_last, model, schedule, normalizer, config,
                          ema=ema, optimizer=optimizer, rng=rng_states(generator, device))

    bar = tqdm(range(start + 1, steps + 1), desc="training", disable=not progress or rank != 0,
               initial=start, total=steps)
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()
    t0 = time.perf_counter()
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, step / max(1, warmup_steps))
        if streaming:
            x_local, rows = next(batches)
            batch = _stream_batch(x_local, rows, conditions, schedule.T, batch_size, lo, hi, generator,
                                  step - 1, seed, augment, cond_drop)
            x0, t, noise, drop, c = (None if v is None else v.to(device, non_blocking=True) for v in batch)
        else:
            batch = _draw_batch(x_all, conditions, schedule.T, batch_size, generator, augment, cond_drop)
            x0, t, noise, drop, c = (None if v is None else v[lo:hi].to(device) for v in batch)
        x_t = schedule.q_sample(x0, t, noise).contiguous(memory_format=memory_format)
        with ctx:
            pred = net(x_t, t, c, drop if c is not None else None)
        target = noise if not v_prediction else schedule.v_target(x0, t, noise)
        loss = F.mse_loss(pred.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        _update_ema(ema, model, min(ema_decay, (1 + step) / (10 + step)))
        mean_loss = _mean_over_ranks(loss, world_size)
        history.append({"step": step, "loss": mean_loss, "grad_norm": float(grad_norm),
                        "lr": optimizer.param_groups[0]["lr"],
                        "seconds": time.perf_counter() - t0})
        bar.set_postfix(loss=f"{mean_loss:.4f}")
        if ckpt_dir is not None and (step % checkpoint_every == 0 or step == steps):
            checkpoint(step)
            _barrier(world_size)  # no rank runs ahead of (or returns before) a checkpoint on disk
        if ckpt_dir is not None and sample_every and step % sample_every == 0:
            if rank == 0:
                _sample_grid(ema, schedule, normalizer, survey, ckpt_dir / f"samples_{step:07d}.png")
            _barrier(world_size)
    bar.close()
    del batches  # stops the reading workers

    ema_model = copy.deepcopy(ema).to(memory_format=torch.contiguous_format)
    return Checkpoint(
        model=ema_model,
        schedule=schedule,
        normalizer=normalizer,
        config=checkpoint_config(model, schedule, normalizer, survey, cond, settings, max(start, steps)),
        history=pd.DataFrame(history),
    )


def _restore(path: Path, model, ema, optimizer, generator, ckpt_dir: Path,
             store: SurveyStore | None = None) -> tuple[int, list[dict]]:
    """Load model, EMA, optimizer and RNG states from ``path``; return (step, history)."""
    config, tensors = read_checkpoint_tensors(path)
    if config["model"]["kwargs"] != model.config or config["model"]["name"] != type(model).__name__:
        raise ValueError(
            f"checkpoint_dir: {path} holds a different model ({config['model']}); "
            "pass resume=False or another checkpoint_dir"
        )
    if store is not None:
        check_resumed_data(config, store.bands, store.size, len(store), store.path)
    model.load_state_dict(state_dict_from(tensors, "model"))
    ema.load_state_dict(state_dict_from(tensors, "ema"))
    load_optimizer_state(optimizer, tensors, config["optimizer"])
    set_rng_states(tensors, generator)
    step = int(config["step"])
    return step, read_history(ckpt_dir, step)


def _sample_grid(ema, schedule, normalizer, survey: Survey | SurveyStore, path: Path, n: int = 16) -> None:
    """Save a grid of EMA samples (fixed seed, 25 DDIM steps) to watch training progress."""
    shape = (n, *(survey.image_shape if is_store(survey) else survey.images.shape[1:]))
    x = ddim(ema, schedule, shape, steps=min(25, schedule.T), generator=torch.Generator().manual_seed(0),
             progress=False)
    flux = normalizer.inverse(x.float().cpu()).numpy()
    viz.save_grid(path, flux, survey.bands, ncols=8)
