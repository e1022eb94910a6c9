"""Domain transfer with a diffusion prior: SDEdit (Meng et al. 2022).

SDEdit "edits" an image by noising it part of the way along the forward process and then running
the reverse process from there: noise hides the small-scale details of the input, the model
replaces them with ones it learnt, and the large-scale layout (position, size, shape, colour)
survives. Smith et al. (2022, §5.2 and Fig. 7) "DESI-fy" hand-drawn cartoon galaxies this way,
starting the reverse process at t = 600 of T = 1000.

* :func:`sdedit` is the sampler: model space in, model space out, reusing :func:`~.samplers.ddim`
  and :func:`~.samplers.ddpm` for the reverse process (their update rules are not repeated here).
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
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from .._validation import as_bands, as_images, check_positive_int
from .samplers import Callback, _device_of, _randn, ddim, ddim_timesteps, ddpm, denoise
from .schedules import NoiseSchedule

if TYPE_CHECKING:  # checkpoints imports the samplers, which import this module
    from matplotlib.figure import Figure

    from ..checkpoints import Checkpoint
    from ..data.surveys import Survey

__all__ = ["SDEditResult", "domain_transfer", "resolve_t_start", "sdedit", "transfer_figure"]

_SAMPLERS = ("ddim", "ddpm")


class SDEditResult(NamedTuple):
    """What :func:`sdedit` returns.

    Attributes
    ----------
    x : torch.Tensor
        The edited images ``x_0`` in model space, ``(N, C, H, W)``.
    timesteps : list of int
        Timesteps (0-based indices into the schedule) at which the network ran, in order; empty
        for ``strength=0``. ``len(timesteps)`` is the number of network evaluations.
    t_start : int
        Start of the reverse process in steps of the schedule (1..T; 0 for ``strength=0``):
        the input was noised to timestep index ``t_start - 1``.
    x_start : torch.Tensor
        The noised input ``x_{t_start}`` the reverse process started from.
    """

    x: torch.Tensor
    timesteps: list[int]
    t_start: int
    x_start: torch.Tensor

    @property
    def steps(self) -> int:
        """Number of denoising steps run (network evaluations)."""
        return len(self.timesteps)


def resolve_t_start(T: int, t_start: int | None = None, strength: float | None = None) -> int:
    """The start step of SDEdit from exactly one of ``t_start`` (1..T) or ``strength`` ([0, 1]).

    ``strength`` is the fraction of the forward process applied, ``t_start = round(strength · T)``
    (halves rounded up), so ``strength=0.6`` on a T = 1000 schedule is the paper's t = 600 and
    ``strength=1`` noises to the last timestep. ``strength=0`` gives 0: the input is returned as
    it is.
    """
    if (t_start is None) == (strength is None):
        raise ValueError(
            "t_start: give exactly one of t_start (a step in 1..T) or strength (a fraction in [0, 1]), "
            f"got t_start={t_start!r} and strength={strength!r}"
        )
    if t_start is not None:
        if isinstance(t_start, bool) or not isinstance(t_start, (int, np.integer)):
            hint = f" (for a fraction of T use strength={t_start!r})" if isinstance(t_start, float) else ""
            raise ValueError(f"t_start: expected an integer step in 1..{T}, got {t_start!r}{hint}")
        if not 1 <= int(t_start) <= T:
            raise ValueError(f"t_start: expected an integer step in 1..{T} (the schedule's T), got {t_start}")
        return int(t_start)
    if isinstance(strength, bool) or not isinstance(strength, (int, float, np.integer, np.floating)):
        raise ValueError(f"strength: expected a number in [0, 1], got {strength!r}")
    if not 0.0 <= float(strength) <= 1.0:  # also rejects NaN
        raise ValueError(f"strength: expected a number in [0, 1], got {strength!r}")
    return math.floor(float(strength) * T + 0.5)


def _model_channels(model: torch.nn.Module) -> int | None:
    config = getattr(model, "config", None)
    if isinstance(config, dict) and "in_channels" in config:
        return int(config["in_channels"])
    return None


@torch.no_grad()
def sdedit(
    model: torch.nn.Module,
    schedule: NoiseSchedule,
    image: torch.Tensor,
    t_start: int | None = None,
    *,
    strength: float | None = None,
    steps: int = 50,
    sampler: str = "ddim",
    eta: float = 0.0,
    variance: str = "small",
    cond: torch.Tensor | None = None,
    guidance: float = 1.0,
    callback: Callback | None = None,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    clip_x0: bool = True,
    autocast: bool | str = "auto",
    device: str | torch.device | None = None,
    progress: bool = True,
    channels_last: bool = True,
    compile: bool = False,
) -> SDEditResult:
    """SDEdit: noise ``image`` to step ``t_start`` of the forward process, then denoise it.

    Meng et al. (2022), Algorithm 1 with the VP-SDE: ``x_t = √ᾱ_t x_0 + √(1 - ᾱ_t) ε``
    (Ho et al. 2020, eq. 4; :meth:`NoiseSchedule.q_sample`) at ``t = t_start``, followed by the
    reverse process from ``t_start`` down to 0 with DDIM (Song et al. 2021, eq. 12) or DDPM
    ancestral sampling (Ho et al. 2020, Algorithm 2). The larger ``t_start``, the more the output
    follows the model rather than the input (the paper's realism-faithfulness trade-off);
    Smith et al. (2022) transfer cartoons with ``t_start = 600`` of ``T = 1000``.

    Parameters
    ----------
    model : torch.nn.Module
        ε- or v-prediction network ``model(x, t, cond)``.
    schedule : NoiseSchedule
        The schedule the model was trained with.
    image : torch.Tensor (N, C, H, W)
        Images in model space ``[-1, 1]`` (map flux with the checkpoint's normalizer, or use
        :func:`domain_transfer`).
    t_start : int, optional
        Start step in ``1..T``: the input is noised to timestep index ``t_start - 1`` (timesteps
        are 0-based), so ``t_start = T`` noises to the last timestep, almost pure noise, and
        ``t_start = 1`` to the first. Give this or ``strength``.
    strength : float, optional
        Alternative to ``t_start``: the fraction of the forward process, ``t_start =
        round(strength · T)``; ``0`` returns the input unchanged (no step run).
    steps : int
        DDIM steps run between ``t_start`` and 0, evenly spaced (at most ``t_start``: fewer are
        run when ``t_start < steps``). Ignored by ``sampler="ddpm"``, which runs all ``t_start``.
    sampler : {"ddim", "ddpm"}
        Reverse process: :func:`~.samplers.ddim` or :func:`~.samplers.ddpm`.
    eta : float
        DDIM noise (0: deterministic given the noised input).
    variance : {"small", "large"}
        DDPM step variance (see :func:`~.samplers.ddpm`).
    cond, guidance
        Condition per image and classifier-free guidance scale (see :func:`~.samplers.model_output`).
    callback : callable, optional
        Called with ``{"i", "t", "x", "x0_pred"}`` once per step; ``t`` is the timestep index in
        the model's schedule.
    generator : torch.Generator, optional
        Source of all randomness (the forward noise first, then the sampler's): a fixed generator
        gives identical outputs.
    noise : torch.Tensor, optional
        The forward-process noise ``ε`` (shaped like ``image``) instead of a draw.
    clip_x0, autocast, device, progress, channels_last, compile
        As in :func:`~.samplers.ddim`.

    Returns
    -------
    SDEditResult
        ``x`` (the outputs, model space), ``timesteps`` (the timesteps run, in order),
        ``t_start`` and ``x_start`` (the noised input).

    Raises
    ------
    ValueError
        For both or neither of ``t_start`` and ``strength``, ``t_start`` outside ``1..T``,
        ``strength`` outside ``[0, 1]``, an ``image`` that is not ``(N, C, H, W)`` with the model's
        channels, a ``noise`` of another shape, or an unknown ``sampler``.

    Notes
    -----
    The reverse process runs on the schedule truncated after ``t_start`` steps: its ``ᾱ_t``,
    ``β_t`` and timestep indices are those of the full schedule, so :func:`~.samplers.ddim` and
    :func:`~.samplers.ddpm` run unchanged from ``x_T := x_{t_start}``. With ``t_start = T`` and
    DDIM this is exactly ``ddim(model, schedule, image.shape, steps, x_T=x_start)``.
    """
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule: expected a NoiseSchedule, got {type(schedule).__name__}")
    if sampler not in _SAMPLERS:
        raise ValueError(f"sampler: expected one of {_SAMPLERS}, got {sampler!r}")
    T = schedule.T
    start = resolve_t_start(T, t_start, strength)
    steps = check_positive_int(steps, "steps")
    if not isinstance(image, torch.Tensor):
        image = torch.as_tensor(np.asarray(image, dtype=np.float32))
    if image.ndim != 4:
        raise ValueError(f"image: expected a batch shaped (N, C, H, W), got shape {tuple(image.shape)}")
    channels = _model_channels(model)
    if channels is not None and image.shape[1] != channels:
        raise ValueError(
            f"image: expected {channels} channels (the model's in_channels), got {image.shape[1]} "
            f"(shape {tuple(image.shape)})"
        )
    if noise is not None and tuple(noise.shape) != tuple(image.shape):
        raise ValueError(f"noise: expected the shape of image {tuple(image.shape)}, got {tuple(noise.shape)}")
    device = torch.device(device) if device is not None else _device_of(model)
    x0 = image.detach().to(device).float()
    if not torch.isfinite(x0).all():
        raise ValueError("image: expected finite model-space values, found NaN or infinite pixels")
    if x0.abs().max() > 1.001:
        warnings.warn(
            f"image: values reach {float(x0.abs().max()):.3g}, outside the model space [-1, 1]; "
            "pass flux images through the checkpoint's normalizer (or use domain_transfer)",
            RuntimeWarning, stacklevel=2)
    if start == 0:
        return SDEditResult(x0.clone(), [], 0, x0.clone())

    t_noise = start - 1  # 0-based index of the noise level
    eps = _randn(x0.shape, generator, device) if noise is None else noise.to(device).float()
    x_start = schedule.q_sample(x0, torch.tensor([t_noise]), eps)
    common = {"cond": cond, "guidance": guidance, "callback": callback, "generator": generator,
              "clip_x0": clip_x0, "autocast": autocast, "device": device, "progress": progress,
              "channels_last": channels_last, "compile": compile}
    if start == 1:
        # one step at t = 0, where both samplers return x̂_0 (ᾱ_{-1} = 1, no noise added); a
        # one-step schedule cannot be built (T >= 2), so call the denoiser directly
        t_batch = torch.zeros(len(x0), dtype=torch.long, device=device)
        c = None if cond is None else torch.as_tensor(cond, dtype=torch.float32, device=device)
        c = None if c is None else c.reshape(len(x0), -1)
        _, x = denoise(model, schedule, x_start, t_batch, c, guidance, autocast, clip_x0)
        if callback is not None:
            callback({"i": 0, "t": 0, "x": x_start, "x0_pred": x})
        return SDEditResult(x.contiguous(), [0], 1, x_start)

    # the first t_start steps of the schedule: same β_t, ᾱ_t and indices, so the samplers run
    # unchanged from x_T := x_{t_start}
    head = schedule if start == T else NoiseSchedule(
        schedule.betas[:start], kind="custom", params={"truncated_from": schedule.kind, "t_start": start})
    if sampler == "ddim":
        n = min(steps, start)
        timesteps = ddim_timesteps(start, n).tolist()
        x = ddim(model, head, tuple(x0.shape), steps=n, eta=eta, x_T=x_start, **common)
    else:
        timesteps = list(range(start - 1, -1, -1))
        x = ddpm(model, head, tuple(x0.shape), x_T=x_start, variance=variance, **common)
    return SDEditResult(x, timesteps, start, x_start)


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
    from ..data.surveys import Survey

    for attr in ("model", "schedule", "normalizer", "bands"):
        if not hasattr(checkpoint, attr):
            raise TypeError(f"checkpoint: expected a galwidgets Checkpoint, got {type(checkpoint).__name__}")
    if sampler not in _SAMPLERS:
        raise ValueError(f"sampler: expected one of {_SAMPLERS}, got {sampler!r}")
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
        from ..metrics.structural import nearest_neighbours

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

    from ..viz import rgb_composite

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
