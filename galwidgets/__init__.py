"""galwidgets: Jupyter-first diffusion models of galaxy images.

>>> import galwidgets as gw
>>> survey = gw.data.simulate_survey(64)                 # mock DESI-like g, r, z galaxies
>>> ckpt = gw.pretrained.load("desi-tiny")               # small shipped model, no download
>>> generated = ckpt.sample(16, steps=50)                # a Survey of generated flux images
>>> gw.metrics.synthetic_galaxy_distance(survey, generated)["total"]
"""

from __future__ import annotations

import importlib
from typing import Any

from . import data, diffusion, metrics, models, pretrained, viz
from .checkpoints import Checkpoint, load_checkpoint
from .diffusion import samplers
from .notebooks import run_batch, run_notebook
from .training import train

__version__ = "0.1.0"

__all__ = [
    "Checkpoint",
    "data",
    "diffusion",
    "load_checkpoint",
    "metrics",
    "models",
    "pretrained",
    "run_batch",
    "run_notebook",
    "samplers",
    "train",
    "viz",
    "widgets",
]


def __getattr__(name: str) -> Any:
    # widgets pull in ipywidgets (and later HoloViews/Bokeh): imported on first use only
    if name == "widgets":
        return importlib.import_module(".widgets", __name__)
    raise AttributeError(f"module 'galwidgets' has no attribute {name!r}")
