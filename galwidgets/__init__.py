"""galwidgets: Jupyter-first diffusion models of galaxy images.

>>> import galwidgets as gw
>>> survey = gw.data.simulate_survey(64)                 # mock DESI-like g, r, z galaxies
>>> ckpt = gw.pretrained.load("desi-tiny")               # small shipped model, no download
>>> generated = ckpt.sample(16, steps=50)                # a Survey of generated flux images
>>> gw.metrics.synthetic_galaxy_distance(survey, generated)["total"]

Submodules are imported on first use, so ``import galwidgets`` is quick. How the library is
built (its one-way floors, and where a new sampler, metric, widget or notebook goes):
``docs/architecture.md``.
"""

from __future__ import annotations

from ._lazy import attach
from ._version import __version__  # noqa: F401  (public)

_NAMES = {
    "data": ".data",
    "diffusion": ".diffusion",
    "metrics": ".metrics",
    "models": ".models",
    "notebooks": ".notebooks",
    "pretrained": ".pretrained",
    "samplers": ".samplers",
    "viz": ".viz",
    "widgets": ".widgets",
    "Checkpoint": ".checkpoints:Checkpoint",
    "load_checkpoint": ".checkpoints:load_checkpoint",
    "run_batch": ".notebooks:run_batch",
    "run_notebook": ".notebooks:run_notebook",
    "train": ".training.diffusion:train",
    "training": ".training",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)

