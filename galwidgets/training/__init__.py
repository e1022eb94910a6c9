"""Training loops: the diffusion trainer ``gw.train`` and the fit loop of the comparison models.

:mod:`.diffusion` (:func:`train`: ε/v-prediction diffusion models, resumable, data parallel under
``torchrun``), :mod:`.fitting` (:func:`fit`: the shared loop of the comparison models, with
:class:`Batch`), :mod:`.baselines` (``train_vae``, ``train_dcgan``, ``train_translator``,
``train_redshift_estimator``) and :mod:`.common` (checkpoint files, resumption, random states and
augmentation that every loop shares, :func:`latest_checkpoint`).

This ``__init__`` only names what the package offers; names are imported on first use.
"""

from __future__ import annotations

from .._lazy import attach

_NAMES = {
    "baselines": ".baselines",
    "common": ".common",
    "diffusion": ".diffusion",
    "fitting": ".fitting",
    "Batch": ".fitting:Batch",
    "fit": ".fitting:fit",
    "latest_checkpoint": ".common:latest_checkpoint",
    "train": ".diffusion:train",
    "train_dcgan": ".baselines:train_dcgan",
    "train_redshift_estimator": ".baselines:train_redshift_estimator",
    "train_translator": ".baselines:train_translator",
    "train_vae": ".baselines:train_vae",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
