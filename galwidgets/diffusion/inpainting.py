"""Inpainting flux images with a diffusion prior: :func:`inpaint_flux`, and classical fills to compare.

:func:`inpaint_flux` takes flux images and a :class:`~galwidgets.checkpoints.Checkpoint`, maps the
images to the model's space, fills the occluded pixels with RePaint
(:func:`galwidgets.diffusion.repaint.inpaint`, Smith et al. 2022; Lugmayr et al. 2022), draws
several samples per image and returns their mean and per-pixel spread in flux units.
:func:`classical_fill` gives the interpolation baselines.

Mask convention: ``mask`` is boolean and **True marks the occluded (unknown) pixels** to inpaint,
as :func:`galwidgets.data.add_satellite_trails` returns it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .._validation import as_images, check_positive_int
from ..checkpoints import Checkpoint
from .repaint import as_mask, check_known, inpaint, repaint_plan

__all__ = ["InpaintResult", "classical_fill", "inpaint", "inpaint_flux", "repaint_plan"]


# -- flux space ----------------------------------------------------------------------------------
@dataclass(eq=False)
class InpaintResult:
    """Inpainted flux images: every sample, and their per-pixel mean and spread.

    Attributes
    ----------
    samples : numpy.ndarray
        ``(N, S, C, H, W)`` float32: ``S`` inpainted samples per input image, in flux units.
        Known pixels equal the input exactly.
    mean : numpy.ndarray
        ``(N, C, H, W)`` float32 mean over the samples (the input on known pixels).
    std : numpy.ndarray
        ``(N, C, H, W)`` float32 per-pixel standard deviation over the samples (``ddof=1``): the
        spread of the prior's completions, 0 on known pixels, NaN on occluded pixels when ``S = 1``.
    mask : numpy.ndarray
        ``(N, 1 or C, H, W)`` bool, True on the inpainted pixels.
    """

    samples: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    mask: np.ndarray

    @property
    def n_samples(self) -> int:
        return self.samples.shape[1]


def inpaint_flux(
    checkpoint: Checkpoint,
    images: Any,
    mask: Any,
    n_samples: int = 8,
    sampler: str = "ddim",
    steps: int | None = None,
    resample: int = 1,
    jump_length: int = 1,
    seed: int | torch.Generator = 0,
    cond: Any = None,
    batch_size: int = 64,
    progress: bool = True,
    **kwargs: Any,
) -> InpaintResult:
    """Inpaint flux images with a checkpoint's model, ``n_samples`` draws per image.

    The images go to model space through ``checkpoint.normalizer.forward``, are inpainted by
    :func:`inpaint` (the scheme of Smith et al. 2022, see there) and come back through
    ``normalizer.inverse``; the known pixels are then pasted back in flux units, so every sample
    equals the input exactly where ``mask`` is False (even where the normaliser clips).

    Parameters
    ----------
    checkpoint : Checkpoint
        Trained model, schedule and normaliser (e.g. ``gw.pretrained.load("desi-tiny")``).
    images : array (N, C, H, W), torch.Tensor or Survey
        Flux images in the checkpoint's bands and units. Occluded pixels are ignored (they may
        hold the trail, or NaN).
    mask : bool array, broadcastable to (N, C, H, W)
        True on the occluded pixels, as :func:`galwidgets.data.add_satellite_trails` returns it.
    n_samples : int
        Independent completions per image; their spread measures how well the prior pins the
        occluded flux down.
    sampler, steps, resample, jump_length
        See :func:`inpaint`.
    seed : int or torch.Generator
        Seeds all draws: the same seed (and ``batch_size``) gives the same samples.
    cond : array_like, optional
        One condition per image for conditional models (repeated for its samples).
    batch_size : int
        Samples per network call (the ``N * n_samples`` samples are drawn in chunks).
    progress : bool
        Show progress bars.
    **kwargs
        Passed to :func:`inpaint` (``eta``, ``autocast``, ``callback``, ``paste``, ...); the
        callback's ``i`` restarts with every chunk.

    Returns
    -------
    InpaintResult
        ``samples`` (N, S, C, H, W), ``mean`` and ``std`` (N, C, H, W) in flux units, ``mask``.
    """
    flux = as_images(images, "images", allow_nan=True, channels=len(checkpoint.bands))
    mask_np = as_mask(mask, flux.shape)
    flux = check_known(flux, mask_np, "images")
    n_samples = check_positive_int(n_samples, "n_samples")
    batch_size = check_positive_int(batch_size, "batch_size")
    n = len(flux)
    if cond is not None:
        cond = np.asarray(cond, dtype=np.float32).reshape(n, -1)
    generator = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(int(seed))

    model_space = np.asarray(checkpoint.normalizer.forward(flux), dtype=np.float32)
    index = np.repeat(np.arange(n), n_samples)  # image-major: the samples of one image together
    out = np.empty((n * n_samples, *flux.shape[1:]), dtype=np.float32)
    starts = range(0, len(index), batch_size)
    for start in tqdm(starts, desc=f"inpainting {n} images x {n_samples}",
                      disable=not progress or len(starts) < 2):
        rows = index[start:start + batch_size]
        c = None if cond is None else torch.from_numpy(cond[rows])
        x = inpaint(checkpoint.model, checkpoint.schedule, model_space[rows],
                    mask_np[rows], sampler=sampler, steps=steps, resample=resample,
                    jump_length=jump_length, cond=c, generator=generator, progress=progress, **kwargs)
        out[start:start + len(rows)] = np.asarray(checkpoint.normalizer.inverse(x.float().cpu()))
    samples = out.reshape(n, n_samples, *flux.shape[1:])
    samples = np.where(mask_np[:, None], samples, flux[:, None]).astype(np.float32)
    mean = np.where(mask_np, samples.mean(axis=1), flux).astype(np.float32)
    if n_samples > 1:
        std = np.where(mask_np, samples.std(axis=1, ddof=1), 0).astype(np.float32)
    else:
        std = np.where(mask_np, np.float32(np.nan), np.zeros_like(flux))
    return InpaintResult(samples=samples, mean=mean, std=std, mask=mask_np)


def classical_fill(images: Any, mask: Any, method: str = "biharmonic") -> np.ndarray:
    """Fill occluded pixels without a model: the baselines of the inpainting benchmark.

    ``"biharmonic"``: :func:`skimage.restoration.inpaint_biharmonic` (smooth continuation of the
    known pixels, per band). ``"nearest"``: each occluded pixel takes the value of the nearest
    known pixel (:func:`scipy.ndimage.distance_transform_edt`). Known pixels are unchanged.

    Parameters
    ----------
    images : array, (N, C, H, W)
        Flux images with occluded pixels.
    mask : bool array, (N, 1 or C, H, W) or (H, W)
        True for occluded pixels; one mask per image is used for all its bands (its first band).
    method : {"biharmonic", "nearest"}
    """
    from scipy import ndimage
    from skimage.restoration import inpaint_biharmonic

    if method not in ("biharmonic", "nearest"):
        raise ValueError(f"method: expected 'biharmonic' or 'nearest', got {method!r}")
    images = as_images(images, "images", allow_nan=True)  # occluded pixels may be NaN
    occluded = as_mask(mask, images.shape)
    out = images.astype(np.float64, copy=True)
    for i in range(len(images)):
        m = occluded[i, 0]
        if not m.any():
            continue
        if method == "biharmonic":
            out[i] = inpaint_biharmonic(images[i], m, channel_axis=0)
        else:
            _, (rows, cols) = ndimage.distance_transform_edt(m, return_indices=True)
            out[i] = images[i][:, rows, cols]
    return out.astype(images.dtype)
