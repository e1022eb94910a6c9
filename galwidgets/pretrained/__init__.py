"""Small checkpoints shipped inside the package, trained by the project on its mock survey.

>>> import galwidgets as gw
>>> gw.pretrained.list()               # names and what they are (same as available())
>>> ckpt = gw.pretrained.load("desi-tiny")
>>> ckpt = gw.pretrained.as_checkpoint("runs/my_model.safetensors")   # a file, a name or a Checkpoint

No download happens: the files are package data. How each was made (command, wall time) is in
``galwidgets/pretrained/README.md`` and in :mod:`galwidgets.pretrained.recipes`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..checkpoints import Checkpoint, load_checkpoint
from .specs import RECIPES

__all__ = ["as_checkpoint", "available", "list", "load", "path"]

_DIR = Path(__file__).parent


def path(name: str = "desi-tiny") -> Path:
    """File of the shipped checkpoint ``name``."""
    if name not in RECIPES:
        raise ValueError(f"name: unknown pretrained model {name!r}; available: {sorted(RECIPES)}")
    file = _DIR / f"{name.replace('-', '_')}.safetensors"
    if not file.is_file():
        raise FileNotFoundError(
            f"name: the checkpoint file for {name!r} is missing from the installation ({file}); "
            f"rebuild it with `python -m galwidgets.pretrained.recipes {name} --workdir DIR`"
        )
    return file


def available() -> pd.DataFrame:
    """Shipped checkpoints with their description and whether the file is present."""
    rows = []
    for name, recipe in RECIPES.items():
        file = _DIR / f"{name.replace('-', '_')}.safetensors"
        rows.append({"name": name, "description": recipe["description"], "installed": file.is_file(),
                     "megabytes": round(file.stat().st_size / 1e6, 2) if file.is_file() else None})
    return pd.DataFrame(rows)


def load(name: str = "desi-tiny", device: str | torch.device | None = None) -> Checkpoint:
    """Load a shipped checkpoint (EMA weights, schedule, normalizer, config)."""
    return load_checkpoint(path(name), device=device)


def as_checkpoint(checkpoint: Any, name: str = "checkpoint",
                  device: str | torch.device | None = None) -> Checkpoint:
    """``checkpoint`` as a :class:`Checkpoint`: itself, loaded from a file, or a shipped model by name.

    What the notebooks, widgets and command line accept wherever they take a model: a
    :class:`Checkpoint`, the path of a ``.safetensors`` file written by
    :func:`~galwidgets.checkpoints.save_checkpoint`, or a name of :func:`available`. An existing
    file wins over a shipped name. Errors name the argument as ``name``.
    """
    if isinstance(checkpoint, Checkpoint):
        return checkpoint
    if not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a Checkpoint, a checkpoint file or the name of a shipped "
                        f"model (gw.pretrained.available()), got {type(checkpoint).__name__}")
    if Path(checkpoint).is_file():
        return load_checkpoint(checkpoint, device=device)
    try:
        return load(str(checkpoint), device=device)
    except (ValueError, FileNotFoundError) as exc:
        raise ValueError(f"{name}: {str(checkpoint)!r} is neither a checkpoint file nor an installed "
                         f"shipped model ({exc})") from exc


list = available  # (``gw.pretrained.list()``, the name the design uses; shadows the builtin only here)
