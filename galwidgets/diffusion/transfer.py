"""Domain transfer with a diffusion prior: SDEdit (Meng et al. 2022).

SDEdit "edits" an image by noising it part of the way along the forward process and then running
the reverse process from there: noise hides the small-scale details of the input, the model
replaces them with ones it learnt, and the large-scale layout (position, size, shape, colour)
survives. Smith et al. (2022, §5.2 and Fig. 7) "DESI-fy" hand-drawn cartoon galaxies this way,
starting the reverse process at t = 600 of T = 1000.

* :func:`~galwidgets.diffusion.editing.sdedit` is the sampler: model space in, model space out
  (in :mod:`galwidgets.diffusion.editing`, re-exported here).
* :func:`domain_transfer` is the flux-space path through a checkpoint's normalizer: flux images
  (or a :class:`~galwidgets.data.Survey`) in, a Survey of transferred galaxies out, optionally
  with each output's pixel-space nearest neighbour in a reference set.
* :func:`transfer_figure` draws the Fig. 7 layout: inputs, outputs and nearest neighbours.

>>> import galwidgets as gw
>>> from galwidgets.diffusion.transfer import domain_transfer, transfer_figure
>>> ckpt = gw.pretrained.load("desi-tiny")
>>> drawings = gw.data.cartoons(8, seed=0)
>>> mock = gw.data.simulate_survey(2000, seed=1000)
>>> out = domain_transfer(ckpt, drawings, t_start=600, reference=mock)
>>> fig = transfer_figure(drawings, out, mock[out.catalog["nn_index"].to_numpy()])
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .._validation import as_bands, as_images, check_positive_int
from ..checkpoints import Checkpoint
from ..data.surveys import Survey
from ..metrics.structural import nearest_neighbours
from ..viz import rgb_composite
from .editing import SDEDIT_SAMPLERS, SDEditResult, resolve_t_start, sdedit

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["SDEditResult", "domain_transfer", "resolve_t_start", "sdedit", "transfer_figure"]


def _flux_of(images: Any, checkpoint: Checkpoint) -> tuple[np.ndarray, pd.DataFrame | None]:
    """Flux images in the checkpoint's unit, and the catalog of a Survey input."""
    catalog = None
    n_bands = len(checkpoint.bands)
    if hasattr(images, "images") and hasattr(images, "bands"):  # a Survey
        if tuple(images.bands) != checkpoint.bands:
            raise ValueError(f"images: has bands {tuple(images.bands)}, the checkpoint {checkpoint.bands}")
        if not math.isclose(images.pixel_scale, checkpoint.pixel_scale, rel_tol=1e-3):
            warnings.warn(
                f'images: pixel scale {images.pixel_scale:g}"/px differs from the checkpoint\'s '
                f'{checkpoint.pixel_scale:g}"/px; galaxies will look '
                f"{checkpoint.pixel_scale / images.pixel_scale:.2g}x their size to the model",
                RuntimeWarning, stacklevel=3)
        flux = as_images(images, "images", channels=n_bands)
        flux = flux * np.float32(10 ** (0.4 * (checkpoint.zeropoint - images.zeropoint)))
        catalog = images.catalog
    else:
        flux = as_images(images, "images", channels=n_bands)
    size = checkpoint.size
    if flux.shape[-2:] != (size, size):
        raise ValueError(
            f"images: expected {size}x{size} stamps like the checkpoint's training data, got "
            f"{flux.shape[-2]}x{flux.shape[-1]}"
        )
    return flux, catalog


def domain_transfer(
    checkpoint: Checkpoint,
    images: Any,
    t_start: int | None = None,
    *,
    strength: float | None = None,
    steps: int = 50,
    sampler: str = "ddim",
    seed: int = 0,
    batch_size: int = 64,
    reference: Any = None,
    progress: bool = True,
    **kwargs: Any,
) -> Survey:
    """SDEdit in flux space: transfer flux images into the domain a checkpoint was trained on.

    Each image is mapped to model space by the checkpoint's normalizer, edited by :func:`sdedit`
    and mapped back, so inputs and outputs are flux images in the checkpoint's unit. This is the
    cartoon-to-DESI transfer of Smith et al. (2022, Fig. 7) with ``t_start=600`` on a T = 1000
    schedule (``strength=0.6``).

    Parameters
    ----------
    checkpoint : Checkpoint
        A trained model with its schedule and normalizer (e.g. ``gw.pretrained.load("desi-tiny")``).
    images : Survey or array (N, C, H, W)
        Flux images with the checkpoint's bands and stamp size. A Survey's flux is converted to the
        checkpoint's zeropoint and its catalog kept.
    t_start, strength
        Where the reverse process starts: exactly one of a step in ``1..T`` or a fraction in
        ``[0, 1]`` (see :func:`sdedit`).
    steps : int
        DDIM steps run from ``t_start`` (at most ``t_start``); ignored by DDPM.
    sampler : {"ddim", "ddpm"}
        Reverse-process sampler.
    seed : int
        Seeds one generator for the whole call: the same seed gives the same outputs.
    batch_size : int
        Images per network call.
    reference : Survey or array (M, C, H, W), optional
        Flux images (e.g. the training set) in which to find each output's nearest neighbour in
        pixel space (:func:`galwidgets.metrics.nearest_neighbours`): adds catalog columns
        ``nn_index`` (row of ``reference``), ``nn_distance`` (L2, flux units) and ``nn_ratio``
        (distance over the median reference-to-reference nearest-neighbour distance; ≈ 0 means
        a copy of a reference galaxy).
    progress : bool
        Show progress bars.
    **kwargs
        Passed to :func:`sdedit` (``eta``, ``autocast``, ``callback``, ``cond``, ...).

    Returns
    -------
    Survey
        The transferred galaxies in the checkpoint's bands, pixel scale and zeropoint. The catalog
        is the input Survey's (or an ``index`` column) plus ``t_start`` (and the ``nn_*`` columns
        with ``reference``); ``meta`` records ``t_start``, ``strength``, ``sampler``, ``steps``
        (the number run), ``timesteps`` (the list run) and ``seed``.
    """

    for attr in ("model", "schedule", "normalizer", "bands"):
        if not hasattr(checkpoint, attr):
            raise TypeError(f"checkpoint: expected a galwidgets Checkpoint, got {type(checkpoint).__name__}")
    if sampler not in SDEDIT_SAMPLERS:
        raise ValueError(f"sampler: expected one of {SDEDIT_SAMPLERS}, got {sampler!r}")
    start = resolve_t_start(checkpoint.schedule.T, t_start, strength)
    batch_size = check_positive_int(batch_size, "batch_size")
    flux, catalog = _flux_of(images, checkpoint)
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    device = checkpoint.device
    out, timesteps = [], []
    starts = range(0, len(flux), batch_size)
    for b0 in tqdm(starts, desc=f"transferring {len(flux)} galaxies",
                   disable=not progress or len(starts) < 2):
        x = checkpoint.normalizer.forward(torch.from_numpy(flux[b0:b0 + batch_size])).to(device)
        when = {"t_start": start} if start else {"strength": 0.0}
        result = sdedit(checkpoint.model, checkpoint.schedule, x, **when, steps=steps, sampler=sampler,
                        generator=generator, progress=progress, **kwargs)
        out.append(checkpoint.normalizer.inverse(result.x.float().cpu()).numpy())
        timesteps = result.timesteps
    catalog = pd.DataFrame({"index": np.arange(len(flux))}) if catalog is None else catalog.copy()
    catalog["t_start"] = start
    survey = Survey(
        images=np.concatenate(out).astype(np.float32),
        catalog=catalog,
        bands=checkpoint.bands,
        pixel_scale=checkpoint.pixel_scale,
        zeropoint=checkpoint.zeropoint,
        meta={"source": "galwidgets.diffusion.transfer.domain_transfer", "method": "SDEdit",
              "t_start": start, "T": checkpoint.schedule.T, "strength": start / checkpoint.schedule.T,
              "sampler": sampler, "steps": len(timesteps), "timesteps": [int(t) for t in timesteps],
              "seed": int(seed), "checkpoint_step": checkpoint.config.get("step")},
    )
    if reference is not None:

        nn = nearest_neighbours(survey, reference, progress=progress)
        survey.catalog["nn_index"] = nn["index_1"].to_numpy()
        survey.catalog["nn_distance"] = nn["distance_1"].to_numpy()
        if "ratio" in nn:
            survey.catalog["nn_ratio"] = nn["ratio"].to_numpy()
        survey.meta["nn_reference_distance"] = nn.attrs.get("reference_distance")
    return survey


def transfer_figure(
    inputs: Any,
    outputs: Any,
    neighbours: Any = None,
    *,
    bands: Sequence[str] | None = None,
    titles: Sequence[str] | None = None,
    row_labels: Sequence[str] = ("input", "transferred", "nearest neighbour"),
    panel_size: float = 1.3,
    zeropoint: float = 22.5,
    **stretch_kwargs: Any,
) -> Figure:
    """The layout of Smith et al. (2022) Fig. 7: one column per galaxy, rows input / output / NN.

    Parameters
    ----------
    inputs, outputs : Survey or array (N, C, H, W)
        Flux images before and after transfer (same unit).
    neighbours : Survey or array (N, C, H, W), optional
        Each output's nearest neighbour in a reference set (e.g. ``reference[nn_index]`` after
        :func:`domain_transfer` with ``reference``); the third row is left out without it.
    bands : sequence of str, optional
        Band names; default the first Survey's, else ``("g", "r", "z")`` for three channels.
    titles : sequence of str, optional
        One title per column (e.g. the cartoon ``kind``).
    row_labels : sequence of str
        Labels of the rows.
    panel_size : float
        Size of one panel in inches.
    zeropoint : float
        AB zeropoint of the flux unit (for the colour scales).
    **stretch_kwargs
        Passed to :func:`galwidgets.viz.rgb_composite` (``stretch``, ``Q``, ...). All rows use the
        same fixed band scales, so brightness and colour compare across rows.

    Returns
    -------
    matplotlib.figure.Figure
        Not attached to pyplot; save with ``fig.savefig(path)``.
    """
    from matplotlib.figure import Figure


    rows = [("inputs", inputs), ("outputs", outputs)]
    if neighbours is not None:
        rows.append(("neighbours", neighbours))
    if bands is None:
        bands = next((r.bands for _, r in rows if hasattr(r, "bands")), None)
    arrays = [as_images(r, name, allow_nan=True) for name, r in rows]
    n, c = arrays[0].shape[:2]
    for (name, _), arr in zip(rows[1:], arrays[1:]):
        if arr.shape != arrays[0].shape:
            raise ValueError(f"{name}: expected the shape of inputs {arrays[0].shape}, got {arr.shape}")
    if bands is None:
        bands = ("g", "r", "z") if c == 3 else tuple(str(i) for i in range(c))
    bands = as_bands(bands, c)
    if titles is not None and len(titles) != n:
        raise ValueError(f"titles: expected one per galaxy ({n}), got {len(titles)}")
    if len(row_labels) < len(rows):
        raise ValueError(f"row_labels: expected {len(rows)} labels, got {len(row_labels)}")
    top = 0.25 if titles is not None else 0.05
    fig = Figure(figsize=(panel_size * n + 0.4, panel_size * len(rows) + top))
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, arr in enumerate(arrays):
        rgb = rgb_composite(arr, bands, zeropoint=zeropoint, **stretch_kwargs)
        for j in range(n):
            ax = axes[r, j]
            ax.imshow(rgb[j], origin="lower", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(row_labels[r], fontsize=8)
            if r == 0 and titles is not None:
                ax.set_title(str(titles[j]), fontsize=8)
    fig.subplots_adjust(left=0.4 / fig.get_figwidth(), right=0.995, bottom=0.01,
                        top=1 - top / fig.get_figheight(),
                        wspace=0.04, hspace=0.04)
    return fig
