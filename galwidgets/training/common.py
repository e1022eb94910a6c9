"""What every training loop here shares: checkpoint files, resumption, random states, augmentation.

Both the diffusion trainer (:func:`galwidgets.training.diffusion.train`) and the fit loop of the
comparison models (:func:`galwidgets.training.fitting.fit`) write ``step_<step>.safetensors``
checkpoints and ``train_log.csv`` atomically, resume from the newest checkpoint with every random
generator restored, and augment galaxies with random flips and 90° rotations.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._io import atomic_path
from .._validation import as_images
from ..checkpoints import read_checkpoint_tensors, save_checkpoint
from ..data.surveys import Survey
from ..data.transforms import Normalizer, normalizer_from_config
from ..diffusion.schedules import NoiseSchedule

__all__ = [
    "CHECKPOINT_GLOB", "apply_dihedral", "as_survey", "checkpoint_config", "cond_columns", "cond_range",
    "dihedral_draws", "latest_checkpoint", "random_dihedral", "read_history", "resumed_normalizer",
    "rng_states", "set_rng_states", "write_checkpoint",
]

#: File names of the checkpoints a training run writes.
CHECKPOINT_GLOB = "step_*.safetensors"


def latest_checkpoint(checkpoint_dir: str | os.PathLike) -> Path | None:
    """The checkpoint with the highest step in ``checkpoint_dir``, or None."""
    files = sorted(Path(checkpoint_dir).glob(CHECKPOINT_GLOB))
    return files[-1] if files else None


def resumed_normalizer(normalizer: Normalizer | None, checkpoint_dir: str | os.PathLike | None,
                       resume: bool) -> Normalizer | None:
    """The normalizer a run resumed from ``checkpoint_dir`` trains with: its newest checkpoint's.

    Refitting it to the data on resume would drift silently when the data changed between runs
    (e.g. a later recipe phase that oversamples part of the survey): the network would go on
    learning in another model space. A ``normalizer`` given for a resumed run must therefore equal
    the checkpoint's. Without a checkpoint to resume, ``normalizer`` as given (None: fit it later).
    """
    last = latest_checkpoint(checkpoint_dir) if checkpoint_dir is not None and resume else None
    if last is None:
        return normalizer
    config, _ = read_checkpoint_tensors(last)
    if "normalizer" not in config:
        return normalizer
    trained = normalizer_from_config(config["normalizer"])
    if normalizer is not None and normalizer != trained:
        raise ValueError(
            f"normalizer: {normalizer!r} differs from {trained!r}, with which {last} was trained; "
            "leave normalizer=None to continue with it, or pass resume=False"
        )
    return trained


def as_survey(data: Any) -> Survey:
    if isinstance(data, Survey):
        return data
    images = as_images(data, "data")
    bands = tuple(f"band{i}" for i in range(images.shape[1]))
    return Survey(images=images, catalog=None, bands=bands, pixel_scale=1.0)


def dihedral_draws(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Quarter turns (0-3) and left-right flips of ``n`` galaxies, turns drawn first."""
    k = torch.randint(4, (n,), generator=generator)
    flip = torch.randint(2, (n,), generator=generator).bool()
    return k, flip


def apply_dihedral(x: torch.Tensor, k: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Flip (left-right) then turn by ``k`` quarter turns each image of ``x`` (non-square: flip only)."""
    x = torch.where(flip.to(x.device)[:, None, None, None], x.flip(-1), x)
    if x.shape[-1] != x.shape[-2]:
        return x
    out = torch.empty_like(x)
    for r in range(4):
        mask = (k == r).to(x.device)
        out[mask] = torch.rot90(x[mask], r, dims=(-2, -1))
    return out


def random_dihedral(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Apply a random flip and 90° rotation to each image (the dihedral group D4)."""
    return apply_dihedral(x, *dihedral_draws(len(x), generator))


def cond_columns(cond: Any) -> list[str] | None:
    """Catalog columns conditioned on, when ``cond`` names them (arrays leave no names)."""
    if isinstance(cond, str):
        return [cond]
    if isinstance(cond, Sequence) and cond and all(isinstance(c, str) for c in cond):
        return list(cond)
    return None


def cond_range(cond: Any, survey: Survey) -> list[list[float]] | None:
    """``[min, max]`` of each condition in the training data, which samplers warn beyond."""
    if cond is None:
        return None
    columns = cond_columns(cond)
    if columns is not None:
        if any(c not in survey.catalog.columns for c in columns):
            return None
        values = survey.catalog[columns].to_numpy(dtype=np.float64)
    else:
        values = np.asarray(cond, dtype=np.float64).reshape(len(survey), -1)
    return [[float(np.nanmin(v)), float(np.nanmax(v))] for v in values.T]


def checkpoint_config(model: torch.nn.Module, schedule: NoiseSchedule | None, normalizer: Normalizer,
                      survey: Survey, cond: Any, settings: dict, step: int) -> dict:
    """The full checkpoint config: model, schedule, normalizer, data calibration, training, step."""
    return {
        "model": {"name": type(model).__name__, "kwargs": model.config},
        "schedule": None if schedule is None else schedule.to_config(),
        "normalizer": normalizer.to_config(),
        "data": {
            "bands": list(survey.bands),
            "pixel_scale": survey.pixel_scale,
            "zeropoint": survey.zeropoint,
            "size": int(survey.size),  # Survey or SurveyStore
            "n_train": len(survey),
            "source": survey.meta.get("source", "user data"),
        },
        "cond": {"columns": cond_columns(cond), "dim": model.config.get("cond_dim", 0),
                 "range": cond_range(cond, survey)},
        "training": settings,
        "step": step,
    }


def rng_states(generator: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
    """The states of ``generator``, the global torch generator and (on CUDA) the device's generator."""
    rng = {"generator": generator.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    return rng


def set_rng_states(tensors: dict[str, torch.Tensor], generator: torch.Generator) -> None:
    """Restore the generator states saved by :func:`rng_states` from checkpoint ``tensors``."""
    generator.set_state(tensors["rng/generator"])
    torch.set_rng_state(tensors["rng/torch"])
    if "rng/cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng/cuda"])


def read_history(ckpt_dir: Path, step: int) -> list[dict]:
    """The rows of ``ckpt_dir/train_log.csv`` up to ``step`` (those the checkpoint at ``step`` saw)."""
    log = ckpt_dir / "train_log.csv"
    history = pd.read_csv(log).to_dict("records") if log.is_file() else []
    return [row for row in history if row["step"] <= step]


def write_checkpoint(ckpt_dir: Path, step: int, history: list[dict], keep_last: int, *args: Any,
                      **kwargs: Any) -> None:
    """Write ``train_log.csv``, then ``step_<step>.safetensors`` (``save_checkpoint(path, *args,
    **kwargs)``), then delete all but the newest ``keep_last`` checkpoints."""
    # the log first: killed in between, the newest checkpoint is older than the log, and
    # resuming keeps the log's rows up to that checkpoint (the other order loses an interval)
    with atomic_path(ckpt_dir / "train_log.csv") as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)
    save_checkpoint(ckpt_dir / f"step_{step:07d}.safetensors", *args, **kwargs)
    for old in sorted(ckpt_dir.glob(CHECKPOINT_GLOB))[:-keep_last]:
        old.unlink()
