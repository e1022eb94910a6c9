"""RePaint inpainting in model space: :func:`inpaint` fills occluded pixels with a diffusion prior.

The scheme is that of Smith et al. (2022, MNRAS 511, 1808, §"in-painting" and Fig. 6), the
replacement method of RePaint (Lugmayr et al. 2022, eq. 8): at every reverse step the *known*
pixels of the running sample are replaced by the original image diffused forward to the noise
level of that step, ``q(x_t | x_0)``, and the *occluded* ones come from the model's reverse step.
The model thus always sees a sample whose known part is consistent with the observation, and fills
the rest to match it. Optional resampling (RePaint's Algorithm 1, ``resample`` = their *U*,
``jump_length`` = their *j*) diffuses the sample back up and repeats steps, which lets the
occluded pixels harmonise with the known ones across the boundary.

Mask convention: ``mask`` is boolean and **True marks the occluded (unknown) pixels** to inpaint,
as :func:`galwidgets.data.add_satellite_trails` returns it. The flux-space workflow on a
checkpoint is :func:`galwidgets.diffusion.inpainting.inpaint_flux`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .._device import randn
from .._validation import check_positive_int
from . import samplers
from .samplers import Callback, prepare_sampling
from .schedules import NoiseSchedule

__all__ = ["as_mask", "check_known", "inpaint", "repaint_plan"]


# -- validation ----------------------------------------------------------------------------------
def as_mask(mask: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``mask`` as a bool array broadcast to ``(N, 1 or C, H, W)``; True = occluded."""
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    try:
        arr = np.asarray(mask)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"mask: expected a boolean array, got {type(mask).__name__}") from exc
    if arr.dtype != bool:
        numeric = np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
        if not numeric or not np.isin(arr, (0, 1)).all():
            raise TypeError(f"mask: expected a boolean array (True = occluded pixel), got dtype "
                            f"{arr.dtype}" + (" with values other than 0 and 1" if numeric else ""))
        arr = arr.astype(bool)
    n, c, h, w = shape
    expected = f"a shape broadcastable to the images' {tuple(shape)}, e.g. ({n}, 1, {h}, {w}) or ({h}, {w})"
    if not 2 <= arr.ndim <= 4 or arr.shape[-2:] != (h, w):
        raise ValueError(f"mask: expected {expected}; got shape {arr.shape}")
    arr = arr.reshape((1,) * (4 - arr.ndim) + arr.shape)
    if arr.shape[0] not in (1, n) or arr.shape[1] not in (1, c):
        raise ValueError(f"mask: expected {expected}; got shape {np.shape(mask)}")
    arr = np.broadcast_to(arr, (n, arr.shape[1], h, w))
    if not arr.any():
        raise ValueError("mask: no occluded pixels (mask is all False), nothing to inpaint; "
                         "True marks the occluded pixels")
    full = arr.reshape(n, -1).all(axis=1)
    if full.any():
        raise ValueError(f"mask: image {int(np.argmax(full))} is occluded everywhere (mask all True), "
                         "so nothing is known to condition on; True marks the occluded pixels "
                         "(use samplers.ddim/ddpm for unconditional samples)")
    return arr.copy()  # writable and contiguous


def check_known(image: np.ndarray, mask: np.ndarray, name: str) -> np.ndarray:
    """Known pixels must be finite; occluded ones may hold anything (NaN included) and are zeroed."""
    bad = ~np.isfinite(image) & ~mask
    if bad.any():
        raise ValueError(f"{name}: expected finite known pixels (where mask is False), found "
                         f"{int(bad.sum())} NaN or infinite ones")
    return np.where(mask, np.float32(0), image).astype(np.float32, copy=False)


def repaint_plan(steps: int, resample: int = 1, jump_length: int = 1) -> list[tuple[int, int]]:
    """The moves of RePaint's resampling schedule (Lugmayr et al. 2022, Algorithm 1 and §4.2).

    Positions ``0 .. steps`` index the sampler's timestep grid (``0`` is the first, noisiest
    timestep, ``steps`` the clean image). A move ``(p, p + 1)`` is one reverse step (one network
    call); a move ``(p, q)`` with ``q < p`` diffuses the sample forward from position ``p`` back up
    to ``q``. Whenever the descent reaches a multiple of ``jump_length`` (or the clean end) it jumps
    back over the last block of ``jump_length`` steps, ``resample - 1`` times, so **every step is
    taken exactly ``resample`` times**: ``steps * resample`` network calls in all.

    Parameters
    ----------
    steps : int
        Reverse steps in the grid.
    resample : int
        Times each step is taken (RePaint's *U*); 1 means no resampling.
    jump_length : int
        Steps jumped back at once (RePaint's *j*).
    """
    steps = check_positive_int(steps, "steps")
    resample = check_positive_int(resample, "resample")
    jump_length = check_positive_int(jump_length, "jump_length")
    moves: list[tuple[int, int]] = []
    jumps: dict[int, int] = {}
    p = 0
    while p < steps:
        moves.append((p, p + 1))
        p += 1
        if (p % jump_length == 0 or p == steps) and jumps.get(p, 0) < resample - 1:
            jumps[p] = jumps.get(p, 0) + 1
            back = (p - 1) // jump_length * jump_length
            moves.append((p, back))
            p = back
    return moves


# -- model space ---------------------------------------------------------------------------------
@torch.no_grad()
def inpaint(
    model: torch.nn.Module,
    schedule: NoiseSchedule,
    image: torch.Tensor | np.ndarray,
    mask: torch.Tensor | np.ndarray,
    sampler: str = "ddim",
    steps: int | None = None,
    resample: int = 1,
    jump_length: int = 1,
    eta: float | None = None,
    cond: torch.Tensor | None = None,
    guidance: float = 1.0,
    callback: Callback | None = None,
    generator: torch.Generator | None = None,
    x_T: torch.Tensor | None = None,
    paste: bool = True,
    clip_x0: bool = True,
    autocast: bool | str = "auto",
    device: str | torch.device | None = None,
    progress: bool = True,
    channels_last: bool = True,
    compile: bool = False,
) -> torch.Tensor:
    """Fill the occluded pixels of model-space images with samples from a diffusion prior.

    The replacement scheme of Smith et al. (2022, MNRAS 511, 1808; inpainting of satellite trails,
    Fig. 6), which is RePaint's eq. 8 (Lugmayr et al. 2022): after every reverse step to timestep
    ``s``, ``x_s = mask ⊙ x_s^model + (1 - mask) ⊙ x_s^known`` with the known pixels drawn afresh
    from ``q(x_s | x_0) = N(√ᾱ_s x_0, (1 - ᾱ_s) I)`` (Ho et al. 2020, eq. 4); the starting noise
    gets the same treatment at the first timestep. The reverse step is DDIM's (Song et al. 2021,
    eq. 12) with ``σ(η)`` of their eq. 16: ``η = 0`` for ``sampler="ddim"``, ``η = 1`` for
    ``sampler="ddpm"``, which over all T timesteps is exactly the ancestral sampler of Ho et al.
    (2020, Algorithm 2, posterior variance ``β̃_t``) and over fewer a strided version of it.

    After the last step the known pixels are pasted back exactly (``paste=True``): the result
    equals ``image`` wherever ``mask`` is False. Smith et al.'s published code leaves this paste
    out and returns the network's final denoised estimate everywhere, so the known pixels come back
    as the network's (smoothed) rendering of the data instead of the data; ``paste=False``
    reproduces that. With ``desi-tiny`` the difference is small (median 0.05 σ_sky, 90th
    percentile 0.2 σ_sky, ``benchmarks/bench_inpainting.py``) but it is not the data.

    Resampling matters: with ``desi-tiny`` on 16 held-out mock galaxies (the benchmark's default
    run, mean of 4 samples), plain replacement with 50 DDIM steps fills trails 8.5 % too faint
    (median) and recovers 37 % of the occluded pixels above 3 σ_sky to within 10 %; 25 steps with
    ``resample=4`` (twice the network calls) removes the bias (+0.6 %) and recovers 46 % (61 %
    against the noise-free truth); biharmonic interpolation recovers 23 %. Replacement alone
    shows the model the known pixels only through noise it cannot tell from its own; RePaint's
    repeats let the filled pixels catch up with them.

    Parameters
    ----------
    model : torch.nn.Module
        ε- or v-prediction network ``model(x, t, cond)`` (its ``config["prediction"]`` says which).
    schedule : NoiseSchedule
        The schedule the model was trained with.
    image : torch.Tensor or numpy.ndarray, (N, C, H, W)
        Images in model space (the checkpoint normaliser's ``forward`` of flux). Occluded pixels
        are ignored and may hold anything, NaN included; known pixels must be finite.
    mask : bool array, broadcastable to (N, C, H, W)
        **True on the occluded (unknown) pixels** to inpaint, False on the known ones, as
        :func:`galwidgets.data.add_satellite_trails` returns it: ``(N, 1, H, W)`` (all bands
        occluded together), ``(N, C, H, W)`` (per band) or ``(H, W)`` (the same for every image).
        0/1 integers are accepted. Every image needs at least one known pixel, and the batch at
        least one occluded one.
    sampler : {"ddim", "ddpm"}
        Deterministic DDIM steps between the replacements, or ancestral (DDPM) steps.
    steps : int, optional
        Reverse steps, spaced evenly over the T training timesteps (:func:`ddim_timesteps`);
        default 50 for DDIM and T (every timestep) for DDPM.
    resample : int
        RePaint resampling (Lugmayr et al. 2022, Algorithm 1, their *U*): every step is taken
        ``resample`` times, diffusing the sample back up between the repeats, for better harmony
        of the filled pixels with their surroundings. 1 (default) means no resampling; the cost
        grows as ``steps * resample`` network calls.
    jump_length : int
        Steps jumped back at once when resampling (RePaint's *j*); see :func:`repaint_plan`.
    eta : float, optional
        Overrides the η of the sampler (0 for DDIM, 1 for DDPM).
    cond, guidance
        Condition per image and classifier-free guidance scale (see :func:`samplers.model_output`).
    callback : callable, optional
        Called once per network call, i.e. ``steps * resample`` times, with ``{"i": call index,
        "t": timestep, "x": the sample x_t fed to the model (known pixels already replaced),
        "x0_pred": the model's x̂_0}``. With resampling ``t`` goes down and back up.
    generator : torch.Generator, optional
        Source of all randomness (starting noise, noise of the known pixels, DDPM and jump noise):
        a fixed generator gives identical results.
    x_T : torch.Tensor, optional
        Starting noise instead of a fresh draw (its known pixels are replaced).
    paste : bool
        Paste the known pixels back after the last step (see above).
    clip_x0, autocast, device, progress, channels_last, compile
        As in :func:`samplers.ddim`; the network runs through :func:`samplers.denoise`.

    Returns
    -------
    torch.Tensor
        ``(N, C, H, W)`` inpainted images in model space, on ``device``.

    Raises
    ------
    ValueError
        If ``mask`` does not match ``image``, is all False, or is all True for some image; if a
        known pixel is not finite; if ``sampler``, ``steps``, ``resample``, ``jump_length`` or
        ``eta`` are out of range.
    """
    if sampler not in ("ddim", "ddpm"):
        raise ValueError(f"sampler: expected 'ddim' or 'ddpm', got {sampler!r}")
    if isinstance(image, torch.Tensor):
        image_np = image.detach().cpu().float().numpy()
    else:
        image_np = np.asarray(image, dtype=np.float32)
    if image_np.ndim != 4 or image_np.size == 0:
        raise ValueError(f"image: expected a non-empty (N, C, H, W) batch in model space, got shape "
                         f"{image_np.shape}")
    shape = tuple(image_np.shape)
    mask_np = as_mask(mask, shape)
    known_np = check_known(image_np, mask_np, "image")
    if steps is None:
        steps = 50 if sampler == "ddim" else schedule.T if isinstance(schedule, NoiseSchedule) else 0
    eta = (0.0 if sampler == "ddim" else 1.0) if eta is None else float(eta)
    if not eta >= 0:
        raise ValueError(f"eta: expected eta >= 0, got {eta!r}")

    x, cond, device = prepare_sampling(model, schedule, shape, cond, generator, x_T, device,
                                        channels_last)
    timesteps = samplers.ddim_timesteps(schedule.T, steps).tolist()
    moves = repaint_plan(steps, resample, jump_length)
    model = samplers.compiled(model) if compile else model
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    known = torch.from_numpy(known_np).to(device).contiguous(memory_format=fmt)
    occluded = torch.from_numpy(mask_np).to(device)
    a_bar = schedule.alphas_cumprod.to(device)
    one = a_bar.new_tensor(1.0)

    def level(p: int) -> torch.Tensor:  # ᾱ at grid position p; the clean end has ᾱ = 1
        return a_bar[timesteps[p]] if p < steps else one

    def replace(x: torch.Tensor, p: int) -> torch.Tensor:
        """Known pixels diffused to grid position p (exact at the clean end): RePaint eq. 8."""
        if p < steps:
            noise = randn(shape, generator, device)
            forward = schedule.q_sample(known, torch.tensor([timesteps[p]]), noise)
        else:
            forward = known
        return torch.where(occluded, x, forward)

    x = replace(x, 0)
    bar = tqdm(total=steps * resample, desc=f"inpaint ({sampler.upper()})", disable=not progress,
               leave=False)
    calls = 0
    for p, q in moves:
        a_p, a_q = level(p), level(q)
        if q < p:  # RePaint jump: x_q ~ q(x_q | x_p) = N(√(ᾱ_q/ᾱ_p) x_p, (1 - ᾱ_q/ᾱ_p) I)
            ratio = a_q / a_p
            x = ratio.sqrt().float() * x + (1 - ratio).sqrt().float() * randn(
                shape, generator, device)
            continue
        t = timesteps[p]
        t_batch = torch.full((shape[0],), t, device=device, dtype=torch.long)
        eps, x0 = samplers.denoise(model, schedule, x, t_batch, cond, guidance, autocast, clip_x0)
        if callback is not None:
            callback({"i": calls, "t": t, "x": x, "x0_pred": x0})
        noise = randn(shape, generator, device) if eta > 0 and q < steps else None
        x = samplers.ddim_step(x0, eps, a_p, a_q, eta, noise)
        if q < steps or paste:
            x = replace(x, q)
        calls += 1
        bar.update()
    bar.close()
    return x.contiguous()
