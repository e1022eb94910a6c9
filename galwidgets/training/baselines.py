"""Training of the comparison models of the published work: VAE, DCGAN, band translators, redshift CNN.

Each trainer validates its model and data, builds the optimizers and the per-step update from the
model's own loss (:func:`~galwidgets.models.vae.vae_loss`, :func:`~galwidgets.models.gan.dcgan_losses`,
:func:`~galwidgets.models.translator.paired_step` / :func:`~galwidgets.models.translator.cycle_step`,
a regression in ``log(1 + z)``), and hands them to the shared, resumable loop
:func:`galwidgets.training.fitting.fit`, which returns a :class:`~galwidgets.checkpoints.Checkpoint`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .._device import resolve_device
from .._validation import check_finite, check_positive
from ..checkpoints import Checkpoint
from ..data.store import SurveyStore, is_store
from ..data.surveys import Survey
from ..models.gan import DCGAN, dcgan_losses
from ..models.redshift import RedshiftEstimator
from ..models.translator import BandTranslator, band_channels, cycle_step, paired_step
from ..models.vae import VAE, ConditionalVAE, vae_loss
from .common import as_survey, cond_range
from .fitting import Batch, fit

__all__ = ["train_dcgan", "train_redshift_estimator", "train_translator", "train_vae"]


def _check_vae(model: Any) -> VAE | ConditionalVAE:
    if not isinstance(model, (VAE, ConditionalVAE)):
        raise TypeError(f"model: expected a VAE or ConditionalVAE, got {type(model).__name__}")
    return model

def train_vae(
    model: VAE | ConditionalVAE,
    data: Survey | np.ndarray,
    steps: int = 2000,
    batch_size: int = 64,
    *,
    lr: float = 1e-3,
    kl_weight: float = 1e-3,
    cond: str | Sequence[str] | None = None,
    **fit_kwargs: Any,
) -> Checkpoint:
    """Train a :class:`VAE` or :class:`ConditionalVAE` on flux images with Adam and :func:`vae_loss`.

    Parameters
    ----------
    model : VAE or ConditionalVAE
        Trained in place.
    data : Survey or array
        Training galaxies as flux images ``(N, C, H, W)`` of side ``model.config["image_size"]``.
    steps, batch_size : int
        Optimisation steps and galaxies per step.
    lr : float
        Adam learning rate.
    kl_weight : float
        Weight of the KL term of :func:`vae_loss`.
    cond : str or list of str, optional
        Catalog column(s) to condition a :class:`ConditionalVAE` on; ``"redshift"`` by default.
        Must stay None for an unconditional :class:`VAE`.
    **fit_kwargs
        Passed to :func:`~galwidgets.training.fitting.fit` (``normalizer``, ``augment``,
        ``checkpoint_dir``, ``checkpoint_every``, ``resume``, ``seed``, ``device``, ``progress``, ...).

    Returns
    -------
    Checkpoint
        The model (eval mode) with ``schedule=None``; :meth:`Checkpoint.sample` draws galaxies
        through :meth:`VAE.generate` (pass ``cond=`` redshifts for a conditional model). The loss
        history has ``loss``, ``reconstruction`` and ``kl`` columns.
    """
    model = _check_vae(model)
    check_positive(lr, "lr")
    kl_weight = check_finite(kl_weight, "kl_weight", "a finite non-negative number")
    if kl_weight < 0:
        raise ValueError(f"kl_weight: expected a finite non-negative number, got {kl_weight!r}")
    if model.cond_dim and cond is None:
        cond = "redshift"
    if not model.cond_dim and cond is not None:
        raise ValueError(f"cond: an unconditional VAE takes no condition; got {cond!r} (use ConditionalVAE)")
    survey = data if is_store(data) else as_survey(data)
    if _stamp_shape(survey) != (model.image_size, model.image_size):
        raise ValueError(f"data: expected {model.image_size}x{model.image_size} images for this model, "
                         "got {}x{}".format(*_stamp_shape(survey)))
    columns = [cond] if isinstance(cond, str) else (None if cond is None else list(cond))
    if columns is not None and len(columns) != model.cond_dim:
        raise ValueError(f"cond: the model expects {model.cond_dim} condition column(s), got {columns}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    def step(batch: Batch) -> dict[str, float]:
        recon, mu, logvar = model(batch.x, batch.values, generator=batch.generator)
        loss, reconstruction, kl = vae_loss(recon, batch.x, mu, logvar, kl_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item(), "reconstruction": reconstruction.item(), "kl": kl.item()}

    extra = {"training": {"lr": lr, "kl_weight": kl_weight, "optimizer": "Adam"},
             "cond": {"columns": columns, "dim": model.cond_dim, "range": cond_range(columns, survey)}}
    config = {**extra, **fit_kwargs.pop("config", {})}
    return fit(model, step, {"adam": optimizer}, survey, steps, batch_size, columns=columns, config=config,
               **fit_kwargs)

def train_dcgan(
    model: DCGAN,
    data: Survey | np.ndarray,
    steps: int = 2000,
    batch_size: int = 64,
    *,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    real_label: float = 0.9,
    checkpoint_dir: str | os.PathLike | None = None,
    **fit_kwargs: Any,
) -> Checkpoint:
    """Train a :class:`DCGAN` on flux images with :func:`~galwidgets.training.fitting.fit`.

    Parameters
    ----------
    model : DCGAN
        Trained in place.
    data : Survey or array (N, C, H, W)
        Training galaxies (flux); ``C`` and ``H = W`` must match the model.
    steps, batch_size : int
        Total alternating updates (including any already done when resuming) and galaxies per step.
    lr, betas : float, (float, float)
        Adam settings of both players (Radford et al. 2016: 2e-4, (0.5, 0.999)).
    real_label : float
        Target of real images in the discriminator loss (one-sided label smoothing; 1 disables it).
    checkpoint_dir : path-like, optional
        Where checkpoints (with both optimizers, to resume) and the training log go.
    **fit_kwargs
        Passed to :func:`~galwidgets.training.fitting.fit`: ``normalizer``, ``augment``,
        ``checkpoint_every``, ``keep_last``, ``resume``, ``seed``, ``device``, ``progress``.

    Returns
    -------
    Checkpoint
        The model (schedule None; :meth:`~galwidgets.Checkpoint.sample` draws from the generator)
        with normalizer, config and the loss ``history`` (``loss`` of the generator, ``loss_d`` of
        the discriminator, ``d_real``/``d_fake`` mean discriminator probabilities).
    """
    if not isinstance(model, DCGAN):
        raise TypeError(f"model: expected a DCGAN, got {type(model).__name__}")
    check_positive(lr, "lr")
    if not 0 < real_label <= 1:
        raise ValueError(f"real_label: expected a target in (0, 1], got {real_label!r}")
    size = model.config["image_size"]
    shape = _stamp_shape(data if is_store(data) else as_survey(data))
    if shape != (size, size):
        raise ValueError(f"data: expected {size}x{size} px images for this DCGAN, "
                         f"got {shape[-2]}x{shape[-1]}")
    model.to(resolve_device(fit_kwargs.get("device")))
    optimizers = {
        "generator": torch.optim.Adam(model.generator.parameters(), lr=lr, betas=tuple(betas)),
        "discriminator": torch.optim.Adam(model.discriminator.parameters(), lr=lr, betas=tuple(betas)),
    }

    def step(batch) -> dict[str, float]:
        return dcgan_losses(model, batch.x, optimizers, batch.generator, real_label)

    settings = {"trainer": "train_dcgan", "lr": lr, "betas": list(betas), "real_label": real_label}
    return fit(model, step, optimizers, data, steps, batch_size, checkpoint_dir=checkpoint_dir,
               config={"training": settings}, **fit_kwargs)

def _derangement(n: int, generator: torch.Generator) -> torch.Tensor:
    """A random permutation of ``range(n)`` without fixed points (one random cycle) for ``n > 1``."""
    order = torch.randperm(n, generator=generator)
    out = torch.empty_like(order)
    out[order] = order.roll(1)
    return out


def _stamp_shape(data: Survey | SurveyStore) -> tuple[int, int]:
    """``(H, W)`` of the stamps of a survey in memory or on disk."""
    return tuple(data.image_shape[-2:] if is_store(data) else data.images.shape[-2:])


def _check_sizes(model: BandTranslator, survey: Survey | SurveyStore, cycle: bool) -> None:
    h, w = _stamp_shape(survey)
    factor = 2 ** model.config["n_downsampling"]
    if h % factor or w % factor:
        raise ValueError(f"data: image sides must be divisible by {factor} (2 ** n_downsampling), "
                         f"got {h}x{w}")
    layers = model.config["patch_layers"]
    need = 3 * 2 ** layers
    if cycle and min(h, w) < need:
        raise ValueError(f"data: the PatchGAN discriminators with patch_layers={layers} need images of "
                         f"at least {need} px, got {h}x{w}; build the model with fewer patch_layers")

def train_translator(
    model: BandTranslator,
    data: Survey,
    steps: int = 2000,
    batch_size: int = 16,
    *,
    lr: float = 2e-4,
    betas: tuple[float, float] = (0.5, 0.999),
    loss: str = "l1",
    cycle: bool = False,
    lambda_cycle: float = 10.0,
    lambda_identity: float = 0.5,
    checkpoint_dir: str | os.PathLike | None = None,
    **fit_kwargs: Any,
) -> Checkpoint:
    """Train a :class:`BandTranslator` on the bands of one survey with :func:`.fitting.fit`.

    Input and target channels are picked by band name from ``data.bands``; one normalizer fitted on
    all bands of ``data`` (by default :meth:`~galwidgets.data.AsinhStretch.fit`, per-band scales)
    maps every channel with its own band's scale, and goes into the checkpoint for
    :func:`translate`.

    Parameters
    ----------
    model : BandTranslator
        Trained in place.
    data : Survey
        Galaxies imaged in (at least) the model's input and target bands, e.g.
        ``simulate_survey(n, instrument="uv-ir")`` (FUV NUV u g r i z K).
    steps, batch_size : int
        Total updates (including any already done when resuming) and galaxies per update.
    lr, betas : float, (float, float)
        Adam settings (pix2pix and CycleGAN: 2e-4, (0.5, 0.999)).
    loss : {"l1", "mse"}
        Paired loss: L1 (pix2pix; sharper, robust to bright cores) or mean squared error.
    cycle : bool
        Unpaired CycleGAN training (Zhu et al. 2017) instead of paired regression; needs a model
        built with ``cycle=True``. The targets of each batch are the target bands of its galaxies
        in a random cyclic order (a derangement), so no input is seen with its own target (unless
        the galaxy was drawn twice into the batch). ``loss`` does not apply; the history's
        ``l1_paired`` still reports the L1 error on the true pairs.
    lambda_cycle, lambda_identity : float
        Cycle weight λ (10) and identity weight relative to it (0.5, i.e. 5 in total), CycleGAN's
        defaults. The identity term is skipped when input and target band counts differ.
    checkpoint_dir : path-like, optional
        Where checkpoints (with the optimizers, to resume) and the training log go.
    **fit_kwargs
        Passed to :func:`~galwidgets.training.fitting.fit`: ``normalizer``, ``augment``,
        ``checkpoint_every``, ``keep_last``, ``resume``, ``seed``, ``device``, ``progress``.

    Returns
    -------
    Checkpoint
        The model, the all-band normalizer, config (``data.bands`` are all bands of ``data``) and
        the loss ``history``.
    """
    if not isinstance(model, BandTranslator):
        raise TypeError(f"model: expected a BandTranslator, got {type(model).__name__}")
    if not isinstance(data, Survey | SurveyStore):
        raise TypeError(f"data: expected a Survey or SurveyStore (its band names pick the channels), "
                        f"got {type(data).__name__}")
    if loss not in ("l1", "mse"):
        raise ValueError(f"loss: expected 'l1' or 'mse', got {loss!r}")
    if cycle and not model.config["cycle"]:
        raise ValueError("cycle: True needs a model built with BandTranslator(..., cycle=True) (second "
                         "generator and discriminators); got a paired-only model")
    check_positive(lr, "lr")
    lambda_cycle = check_positive(lambda_cycle, "lambda_cycle")
    lambda_identity = check_finite(lambda_identity, "lambda_identity")
    if lambda_identity < 0:
        raise ValueError(f"lambda_identity: expected a weight >= 0, got {lambda_identity!r}")
    i_in = band_channels(data.bands, model.in_bands, "data")
    i_out = band_channels(data.bands, model.out_bands, "data")
    _check_sizes(model, data, cycle)
    model.to(resolve_device(fit_kwargs.get("device")))
    generators = [model.generator, *([model.inverse] if cycle else [])]
    optimizers = {"generator": torch.optim.Adam([p for g in generators for p in g.parameters()], lr=lr,
                                                betas=tuple(betas))}
    if cycle:
        discs = [model.discriminator_in, model.discriminator_out]
        optimizers["discriminator"] = torch.optim.Adam([p for d in discs for p in d.parameters()], lr=lr,
                                                       betas=tuple(betas))

    def step(batch) -> dict[str, float]:
        a, b = batch.x[:, i_in], batch.x[:, i_out]
        if not cycle:
            return paired_step(model, a, b, optimizers["generator"], loss)
        return cycle_step(model, a, b[_derangement(len(b), batch.generator).to(b.device)], optimizers,
                          lambda_cycle, lambda_identity, b_paired=b)

    settings = {"trainer": "train_translator", "lr": lr, "betas": list(betas), "loss": loss, "cycle": cycle,
                "lambda_cycle": lambda_cycle, "lambda_identity": lambda_identity}
    return fit(model, step, optimizers, data, steps, batch_size, checkpoint_dir=checkpoint_dir,
               config={"training": settings}, **fit_kwargs)

def _lr_factor(schedule: str, step: int, steps: int, warmup: int) -> float:
    """Learning-rate multiplier: linear warm-up, then constant or cosine decay to 0."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

def train_redshift_estimator(
    model: RedshiftEstimator,
    data: Survey,
    steps: int = 2000,
    batch_size: int = 64,
    *,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    lr_schedule: str = "cosine",
    warmup_steps: int = 100,
    column: str = "redshift",
    **fit_kwargs: Any,
) -> Checkpoint:
    """Train a :class:`RedshiftEstimator` on galaxies with known redshifts (e.g. mock galaxies).

    Minimises the mean squared error in ``log(1 + z)`` with AdamW, a linear warm-up and (by default)
    a cosine decay of the learning rate; random flips and 90° rotations augment the images.

    Parameters
    ----------
    model : RedshiftEstimator
        Trained in place.
    data : Survey
        Flux images with a catalog holding the true redshifts (column ``column``), e.g.
        :func:`galwidgets.data.simulate_survey`.
    steps, batch_size : int
        Optimisation steps and galaxies per step.
    lr, weight_decay : float
        AdamW learning rate (peak) and weight decay.
    lr_schedule : {"cosine", "constant"}
        Learning rate after the warm-up.
    warmup_steps : int
        Linear warm-up length (0 for none).
    column : str
        Catalog column of the true redshift.
    **fit_kwargs
        Passed to :func:`~galwidgets.training.fitting.fit` (``normalizer``, ``augment``,
        ``checkpoint_dir``, ``resume``, ``seed``, ``device``, ``progress``, ...).

    Returns
    -------
    Checkpoint
        The estimator with the normalizer that maps flux to its input; use it with
        :func:`predict_redshift`.
    """
    if not isinstance(model, RedshiftEstimator):
        raise TypeError(f"model: expected a RedshiftEstimator, got {type(model).__name__}")
    check_positive(lr, "lr")
    weight_decay = check_finite(weight_decay, "weight_decay", "a finite non-negative number")
    if weight_decay < 0:
        raise ValueError(f"weight_decay: expected a finite non-negative number, got {weight_decay!r}")
    if lr_schedule not in ("cosine", "constant"):
        raise ValueError(f"lr_schedule: expected 'cosine' or 'constant', got {lr_schedule!r}")
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, (int, np.integer)) or warmup_steps < 0:
        raise ValueError(f"warmup_steps: expected a non-negative integer, got {warmup_steps!r}")
    if not isinstance(column, str):
        raise TypeError(f"column: expected a catalog column name, got {column!r}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)

    def step(batch: Batch) -> dict[str, float]:
        factor = _lr_factor(lr_schedule, batch.step, steps, warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr * factor
        target = torch.log1p(batch.values[:, 0])
        loss = F.mse_loss(model.log1p_redshift(batch.x), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": loss.item(), "lr": lr * factor}

    settings = {"lr": lr, "weight_decay": weight_decay, "lr_schedule": lr_schedule,
                "warmup_steps": int(warmup_steps), "optimizer": "AdamW", "target": f"log1p({column})"}
    config = {"training": settings, "target": {"column": column, "transform": "log1p"},
              **fit_kwargs.pop("config", {})}
    return fit(model, step, {"adamw": optimizer}, data, steps, batch_size, columns=column, config=config,
               **fit_kwargs)
