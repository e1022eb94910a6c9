"""Diffusion Posterior Sampling (Chung et al. 2023): samples of ``p(x | y)`` for ``y = A x + n``.

The reverse process of an unconditional diffusion model is steered towards images that explain an
observation ``y`` through a forward model ``A`` (e.g. :class:`~galwidgets.diffusion.operators.PSFOperator`,
PSF blur + resampling): each step is an ordinary ancestral (DDPM) or DDIM step followed by a
gradient step on the data misfit of the denoised estimate ``x̂_0(x_t)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .._device import device_of, randn
from ..data.transforms import AsinhStretch, ClipMinMax
from .samplers import ddim_step, ddim_timesteps, denoise
from .schedules import NoiseSchedule

__all__ = ["dps", "model_noise_sigma", "model_to_flux", "noise_timestep"]

Callback = Callable[[dict], None]


def model_to_flux(normalizer: Any, x: torch.Tensor) -> torch.Tensor:
    """``normalizer.inverse(x)`` without its clip to ``[-1, 1]``, so gradients flow everywhere.

    The clip would zero the gradient of every pixel outside ``[-1, 1]``; None is the identity.
    """
    return x if normalizer is None else normalizer.inverse(x, clip=False)


def model_noise_sigma(normalizer: Any, sky_sigma: Any) -> np.ndarray:
    """Model-space standard deviation of flux noise ``sky_sigma`` near zero flux, per band.

    The normalizer's slope at the sky level times ``sky_sigma``: ``σ / (s · asinh(upper / s))``
    for :class:`~galwidgets.data.AsinhStretch` (softening ``s``; about 1/8 for ``desi-tiny``,
    whose softening is its training sky noise), ``2 σ / A`` for
    :class:`~galwidgets.data.ClipMinMax`; ``sky_sigma`` itself without a normalizer.
    """

    sigma = np.atleast_1d(np.asarray(sky_sigma, dtype=np.float64))
    if not np.all(np.isfinite(sigma) & (sigma > 0)):
        raise ValueError(f"sky_sigma: expected positive finite noise levels, got {sky_sigma!r}")
    if normalizer is None:
        return sigma
    if isinstance(normalizer, AsinhStretch):
        s = np.asarray(normalizer.softening, dtype=np.float64)
        top = np.arcsinh(np.asarray(normalizer.upper, dtype=np.float64) / s)
        return sigma / (s * top)
    if isinstance(normalizer, ClipMinMax):
        return 2 * sigma / np.asarray(normalizer.clip, dtype=np.float64)
    raise TypeError(f"normalizer: expected AsinhStretch, ClipMinMax or None, got {type(normalizer).__name__}")


def noise_timestep(schedule: NoiseSchedule, sigma: float) -> int:
    """First timestep whose diffusion noise, in units of ``x_0``, reaches ``sigma``.

    ``x_t = sqrt(ᾱ_t) x_0 + sqrt(1 − ᾱ_t) ε`` is ``x_0`` plus Gaussian noise of standard deviation
    ``sqrt((1 − ᾱ_t) / ᾱ_t)`` (after dividing by ``sqrt(ᾱ_t)``); the smallest ``t`` where that is
    ``>= sigma``. Use it as ``dps(..., t_stop=...)`` with ``sigma`` a multiple of
    :func:`model_noise_sigma` of the prior's training noise.
    """
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule: expected a NoiseSchedule, got {type(schedule).__name__}")
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma: expected a positive noise level, got {sigma!r}")
    a = schedule.alphas_cumprod.double().cpu().numpy()
    level = np.sqrt((1 - a) / a)
    above = np.nonzero(level >= sigma)[0]
    return int(above[0]) if above.size else schedule.T - 1


def _adjoint(operator: Any, v: torch.Tensor, shape: tuple) -> torch.Tensor:
    """``Aᵀ v``: the operator's own adjoint when it has one, else by autograd (A is linear)."""
    adjoint = getattr(operator, "adjoint", None)
    if adjoint is not None:
        return adjoint(v).to(v.dtype)
    with torch.enable_grad():
        z = torch.zeros(shape, dtype=v.dtype, device=v.device, requires_grad=True)
        (out,) = torch.autograd.grad((operator(z) * v).sum(), z)
    return out


def gaussian_data_step(
    x0: torch.Tensor,
    a_bar: float,
    operator: Any,
    normalizer: Any,
    y: torch.Tensor,
    inv_sigma: torch.Tensor,
    iterations: int = 100,
    chi2_target: float | None = 1.0,
) -> torch.Tensor:
    """Mean of ``p(x_0 | x_t, y)`` under a Gaussian approximation of ``p(x_0 | x_t)``, in flux.

    Pseudoinverse-guided diffusion (ΠGDM, Song et al. 2023, ICLR) approximates ``p(x_0 | x_t)``
    by ``N(x̂_0, r_t² I)`` with ``r_t² = 1 − ᾱ_t`` (in model space, for data of unit scale). Mapped
    to flux linearly (``F(x̂_0) + J δx``, ``J`` the normalizer's slope at ``x̂_0``) this is a
    Gaussian of per-pixel standard deviation ``τ = r_t J``; with the linear Gaussian likelihood
    ``y ~ N(A x, σ_y²)`` the posterior is Gaussian, and its mean solves::

        (Aᵀ W A + T⁻²) x = Aᵀ W y + T⁻² F(x̂_0),   W = (w / σ_y)²,  T = diag(τ)

    solved here by conjugate gradients from ``F(x̂_0)``. Modes the data determine (the galaxy's
    light at the PSF's resolution) are fitted to the noise level; modes it does not (below the
    PSF, masked pixels) keep the prior's estimate.

    *Discrepancy stop.* When the observation is much deeper than the prior's own noise (a
    DESI-trained prior against HSC data), ``τ`` is far above ``σ_y`` and the exact solution fits
    the noise too (χ²_ν well below 1). With ``chi2_target`` each sample's iterations stop once its
    reduced χ² over the fitted pixels (``w > 0``) reaches that value: Morozov's discrepancy
    principle (Morozov 1966), with the conjugate-gradient iteration count as the regulariser
    (Hanke 1995, "Conjugate gradient type methods for ill-posed problems"). Early CG iterates
    hold the smooth, well-determined modes; the noise-fitting ones come last. Samples that start
    below the target are not moved. None solves to convergence.

    Returns flux images (float64).
    """
    x0 = x0.detach().double().requires_grad_(True)
    with torch.enable_grad():
        m = model_to_flux(normalizer, x0)
        (slope,) = torch.autograd.grad(m.sum(), x0)  # elementwise map: the diagonal Jacobian
    m = m.detach()
    tau2 = (1.0 - float(a_bar)) * slope.double() ** 2
    prec = 1.0 / tau2.clamp(min=1e-30)
    w = inv_sigma.double() ** 2
    y = y.double()
    n_fit = (w > 0).flatten(1).sum(1).double().clamp(min=1)
    target = float("-inf") if chi2_target is None else float(chi2_target)

    def adjoint(v):
        return _adjoint(operator, v, tuple(m.shape))

    misfit = y - operator(m).double()  # data residual of the current iterate
    rhs = adjoint(w * misfit)
    delta = torch.zeros_like(m)
    r = rhs.clone()
    d = r.clone()
    rr = (r * r).flatten(1).sum(1)
    rr0 = rr.clone()
    active = (w * misfit**2).flatten(1).sum(1) / n_fit > target
    for _ in range(int(iterations)):
        if not bool(active.any()):
            break
        ad = operator(d).double()
        q = adjoint(w * ad) + prec * d
        alpha = rr / (d * q).flatten(1).sum(1).clamp(min=1e-300)
        alpha = torch.where(active, alpha, torch.zeros_like(alpha))
        delta = delta + alpha[:, None, None, None] * d
        misfit = misfit - alpha[:, None, None, None] * ad
        r = r - alpha[:, None, None, None] * q
        active = active & ((w * misfit**2).flatten(1).sum(1) / n_fit > target)
        rr_new = (r * r).flatten(1).sum(1)
        if bool((rr_new <= 1e-16 * rr0).all()):
            break
        d = r + (rr_new / rr.clamp(min=1e-300))[:, None, None, None] * d
        rr = rr_new
    return m + delta


def _sigma_tensor(sigma_y: Any, y: torch.Tensor, operator: Any) -> torch.Tensor:
    """σ_y broadcast to ``y`` (N, C, H, W): scalar, (C,), (N, C) or a map; estimated when None."""
    n, c = y.shape[:2]
    if sigma_y is None:
        estimate = getattr(operator, "estimate_sigma", None)
        if estimate is None:
            from .operators import estimate_sigma_y as estimate
        sigma_y = estimate(y)
    if isinstance(sigma_y, torch.Tensor):
        sigma_y = sigma_y.detach().cpu().numpy()
    try:
        s = np.asarray(sigma_y, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"sigma_y: expected a number or an array of noise levels, got "
                        f"{type(sigma_y).__name__}") from None
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"sigma_y: expected positive finite noise levels, got {np.round(s, 6).tolist()!r}"
                         if s.size < 20 else "sigma_y: expected positive finite noise levels, found values "
                         f"<= 0 or not finite (min {np.nanmin(s):g})")
    if s.ndim == 1 and s.size not in (1, c):
        raise ValueError(f"sigma_y: expected one value per band ({c}), got {s.size}")
    if s.ndim == 1:
        s = s.reshape(1, -1, 1, 1)
    elif s.ndim == 2:
        if s.shape not in ((n, c), (1, c)):
            raise ValueError(f"sigma_y: expected (N, C) = {(n, c)} noise levels, got shape {s.shape}")
        s = s[:, :, None, None]
    try:
        out = np.broadcast_to(s, y.shape)
    except ValueError:
        raise ValueError(f"sigma_y: shape {s.shape} does not broadcast to the observation's "
                         f"{tuple(y.shape)}") from None
    return torch.as_tensor(np.ascontiguousarray(out), dtype=torch.float32, device=y.device)


def dps(
    model: torch.nn.Module,
    schedule: NoiseSchedule | None,
    y: Any,
    operator: Callable[[torch.Tensor], torch.Tensor],
    sigma_y: Any = None,
    *,
    normalizer: Any = None,
    n_samples: int = 1,
    steps: int | None = None,
    zeta: float | None = None,
    eta: float = 1.0,
    clip_x0: bool = True,
    cond: torch.Tensor | None = None,
    guidance: float = 1.0,
    callback: Callback | None = None,
    generator: torch.Generator | None = None,
    x_T: torch.Tensor | None = None,
    autocast: bool | str = False,
    device: str | torch.device | None = None,
    progress: bool = True,
    return_flux: bool = False,
    weights: Any = None,
    t_stop: int | None = None,
    output: str = "sample",
    data_step: bool = False,
    data_chi2: float | None = 1.0,
) -> torch.Tensor:
    """Diffusion Posterior Sampling (Chung et al. 2023, ICLR, "Diffusion posterior sampling for
    general noisy inverse problems", Algorithm 1), with a per-sample step size.

    At every reverse step, with the network run under autograd:

    1. ``x̂_0 = x̂_0(x_t)`` from the ε- or v-prediction (Tweedie's formula, their eq. 11);
    2. ``x'_{t-1}`` from an ordinary reverse step: DDPM ancestral (Ho et al. 2020, eqs. 6-7) over
       all T timesteps, or DDIM (Song et al. 2021, eq. 12, noise ``eta``) over ``steps``;
    3. the misfit of each sample ``i``, weighted by the noise, ``r_i = ‖(y − A(F(x̂_0,i))) / σ_y‖``
       with ``F`` the normalizer's map to flux (A acts in flux space);
    4. ``x_{t-1,i} = x'_{t-1,i} − ζ ∇_{x_t,i} r_i = x'_{t-1,i} − ζ_i ∇_{x_t,i} r_i²`` with ``ζ_i = ζ /
       (2 r_i)``: the step size of Algorithm 1 (``ζ_i = ζ' / ‖y − A(x̂_0)‖``) defined per sample.

    Parameters
    ----------
    model : torch.nn.Module or Checkpoint
        The prior: an ε- or v-prediction network, or a :class:`~galwidgets.Checkpoint` (then
        ``schedule`` and ``normalizer`` default to the checkpoint's).
    schedule : NoiseSchedule or None
        The model's schedule (None only with a Checkpoint).
    y : array or torch.Tensor, (C, H', W') or (N, C, H', W')
        Observation(s) in the operator's output flux units.
    operator : callable
        Differentiable linear forward model ``A`` from flux images (N, C, H, W) on the model grid
        to observations (N, C, H', W'), e.g. :class:`~galwidgets.diffusion.operators.PSFOperator`.
    sigma_y : float, sequence or array, optional
        Noise standard deviation of ``y``: scalar, one per band (C,), per observation and band
        (N, C), or a per-pixel map broadcastable to ``y``. None: estimated per band by sigma
        clipping (``operator.estimate_sigma`` or
        :func:`~galwidgets.diffusion.operators.estimate_sigma_y`).
    normalizer : Normalizer, optional
        Maps model space to flux; None means the operator acts on model-space values directly.
    n_samples : int
        Posterior samples per observation, drawn in one batch.
    steps : int, optional
        None: DDPM ancestral steps over all T timesteps. An integer: DDIM-style steps over that
        many evenly spaced timesteps (cheaper; ``eta=1`` keeps them stochastic).
    zeta : float, optional
        Step size ``ζ`` of the guidance: each sample moves by ``ζ`` times the gradient of its
        (unsquared) noise-weighted residual norm. Default ``0.2 / number of steps`` (6.7e-3 for 30
        steps, 2e-4 for all 1000 DDPM steps of ``desi-tiny``). Unlike Chung et al.'s ζ' (0.1-1 for
        images in [0, 1] and unweighted residuals) it is small because the residual is in units of
        σ_y and the asinh normalizer's Jacobian reaches ~10⁴ σ per model-space unit in bright
        cores; with 30 DDIM steps on ``desi-tiny`` 0.003-0.006 fits mock observations to χ²_ν
        ≈ 1-2 while 0.012 diverges (``benchmarks/bench_dps.py``).
    eta : float
        DDIM noise (only with ``steps``).
    clip_x0 : bool
        Clip ``x̂_0`` to the model space ``[-1, 1]`` for the reverse step, and evaluate the misfit
        on the clipped value with a straight-through gradient (the clip is the identity in the
        backward pass). A hard clamp before the misfit would zero the gradient of every pixel
        outside ``[-1, 1]``, which at high noise is most of them, and stall the guidance.
    cond, guidance
        Condition and classifier-free guidance (see :func:`~galwidgets.diffusion.samplers.model_output`).
    callback : callable, optional
        Called once per step with ``{"i", "t", "x", "x0_pred", "misfit"}`` (``misfit``: reduced
        χ² per sample of ``x̂_0``, ``r_i² / (C H' W')``).
    generator : torch.Generator, optional
        Source of all randomness.
    x_T : torch.Tensor, optional
        Starting noise (N·S, C, H, W).
    autocast : bool or "auto"
        bf16 autocast of the network; off by default (the gradient is worth float32).
    device : optional
        Defaults to the model's device.
    progress : bool
        Show a progress bar.
    return_flux : bool
        Return flux images (through ``normalizer.inverse``) instead of model space.
    weights : array, optional
        Per-pixel weights of the misfit, broadcastable to ``y`` (e.g. ``(H', W')``), in ``[0, 1]``:
        the residual becomes ``w (y − A x̂_0) / σ_y``. 0 leaves a pixel out of the likelihood, e.g.
        pixels of other sources than the galaxy being deconvolved
        (:func:`~galwidgets.diffusion.operators.neighbour_weights`), which the prior (one central
        galaxy per stamp) cannot explain and which would otherwise pull the fit.
    t_stop : int, optional
        Stop the reverse process at this timestep (the last evaluated one; DDIM steps are spread
        evenly over ``T-1 .. t_stop``) and return the denoised estimate there; requires
        ``output="x0_hat"``. See Notes.
    output : {"sample", "x0_hat"}
        ``"sample"``: the final state of the reverse process (a posterior sample). ``"x0_hat"``:
        the network's minimum-mean-square-error estimate ``x̂_0 = E[x_0 | x_t]`` (Tweedie) at the
        last timestep (``t_stop``, or the final step).
    data_step : bool
        With ``output="x0_hat"``: replace ``x̂_0`` by the mean of ``p(x_0 | x_t, y)`` under ΠGDM's
        Gaussian approximation of ``p(x_0 | x_t)`` (:func:`gaussian_data_step`): a linear,
        noise-weighted fit of the observation around ``x̂_0`` in which the prior's uncertainty
        at ``t_stop`` sets how far each pixel may move. DPS's few gradient steps leave misfits of
        many σ against deep data (high S/N); this conditions the estimate on ``y`` exactly where
        the Gaussian approximation holds.
    data_chi2 : float or None
        Discrepancy stop of the data step: each sample's fit stops once its reduced χ² over the
        fitted pixels reaches this value (default 1, the noise level; see
        :func:`gaussian_data_step`). None fits to convergence, which against data much deeper
        than the prior's own noise fits the noise as well.

    Returns
    -------
    torch.Tensor
        ``(N · n_samples, C, H, W)`` posterior samples in model space (or flux with
        ``return_flux``), grouped by observation: sample ``s`` of observation ``n`` at index
        ``n · n_samples + s``. For one observation this is the ``(S, C, H, W)`` stack that
        :func:`galwidgets.metrics.posterior_summary` takes.

    Notes
    -----
    The public implementation of DPS (``ConditioningMethod`` in Chung et al.'s code) takes the
    norm ``‖y − A(x̂_0)‖`` over the whole batch and differentiates it, so every sample's step size
    depends on the misfits of the others: results change with the batch size and a badly fitting
    sample slows all. Here each sample has its own norm (the gradient of the sum of per-sample
    norms is per sample, as the network treats samples independently), so drawing samples one at a
    time or in a batch gives the same distribution.

    *Early stop.* ``desi-tiny`` was trained on noisy images: its samples carry its training sky
    noise (about 0.007, 0.011, 0.028 nanomaggies in g, r, z, i.e. ~0.125 in model space,
    :func:`model_noise_sigma`). Run to ``t = 0`` the reverse process draws that noise too, which is
    fine against observations as noisy as the training data but dominates the residuals of a
    deeper observation (HSC: the model's noise through the PSF and resampling is 5-20 times the
    observed sky noise). Stopping at the timestep where the diffusion noise is a few times the
    model's own pixel noise (:func:`noise_timestep`) and returning ``E[x_0 | x_t]`` averages that
    independent pixel noise out (its variance shrinks by ``σ_m² / (σ_m² + σ_t²)``) while the
    galaxy, which the guided ``x_t`` already determines at that noise level, is kept.

    Cost: one network forward and one backward (to ``x_t`` only) per step; see
    ``benchmarks/bench_dps.py`` for the cost relative to a plain DDPM step.
    """

    if hasattr(model, "model") and hasattr(model, "normalizer") and hasattr(model, "schedule"):
        schedule = model.schedule if schedule is None else schedule
        normalizer = model.normalizer if normalizer is None else normalizer
        model = model.model
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule: expected a NoiseSchedule, got {type(schedule).__name__}")
    if not callable(operator):
        raise TypeError(f"operator: expected a callable forward model, got {type(operator).__name__}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples: expected a positive integer, got {n_samples!r}")
    n_steps = schedule.T if steps is None else steps
    if zeta is None:
        zeta = 0.2 / max(int(n_steps), 1) if isinstance(n_steps, (int, np.integer)) else 0.0
    if not (np.isfinite(zeta) and zeta >= 0):
        raise ValueError(f"zeta: expected a step size >= 0, got {zeta!r}")
    if eta < 0:
        raise ValueError(f"eta: expected eta >= 0, got {eta!r}")
    if output not in ("sample", "x0_hat"):
        raise ValueError(f"output: expected 'sample' or 'x0_hat', got {output!r}")
    if t_stop is not None:
        if isinstance(t_stop, bool) or not isinstance(t_stop, (int, np.integer)) or not (
                0 <= t_stop < schedule.T):
            raise ValueError(f"t_stop: expected a timestep in 0..{schedule.T - 1}, got {t_stop!r}")
        if output != "x0_hat":
            raise ValueError("t_stop: stopping early needs output='x0_hat' (x_t at t_stop is still noisy)")
        t_stop = int(t_stop)
    if data_step and output != "x0_hat":
        raise ValueError("data_step: needs output='x0_hat'")
    if data_chi2 is not None and not (np.isfinite(data_chi2) and data_chi2 > 0):
        raise ValueError(f"data_chi2: expected a positive reduced chi-square or None, got {data_chi2!r}")
    device = torch.device(device) if device is not None else device_of(model)

    y_t = y.detach() if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y, dtype=np.float32))
    y_t = y_t.float().to(device)
    if y_t.ndim == 3:
        y_t = y_t[None]
    if y_t.ndim != 4:
        raise ValueError(f"y: expected an observation (C, H, W) or (N, C, H, W), got shape "
                         f"{tuple(y_t.shape)}")
    if not torch.isfinite(y_t).all():
        raise ValueError("y: expected finite pixel values (mask or fill NaN pixels first)")
    sigma = _sigma_tensor(sigma_y, y_t, operator)
    n_obs, n_samples = len(y_t), int(n_samples)
    # the observation and its noise per sample, grouped by observation
    y_rep = y_t.repeat_interleave(n_samples, 0)
    inv_sigma = (1 / sigma).expand_as(y_t)
    if weights is not None:
        w = weights.detach().cpu().numpy() if isinstance(weights, torch.Tensor) else weights
        try:
            w = np.asarray(w, dtype=np.float64)
            w = np.broadcast_to(w, tuple(y_t.shape))
        except (TypeError, ValueError):
            raise ValueError(f"weights: expected weights broadcastable to the observation's "
                             f"{tuple(y_t.shape)}, got shape {np.shape(weights)}") from None
        if not np.all(np.isfinite(w) & (w >= 0)) or not np.any(w > 0):
            raise ValueError("weights: expected finite weights >= 0, not all 0")
        inv_sigma = inv_sigma * torch.as_tensor(np.ascontiguousarray(w), dtype=torch.float32,
                                                device=device)
    n_fit = (inv_sigma > 0).flatten(1).sum(1).float().clamp(min=1)  # fitted pixels per observation
    inv_sigma = inv_sigma.repeat_interleave(n_samples, 0)
    n_fit = n_fit.repeat_interleave(n_samples, 0)

    in_ch = getattr(model, "config", {}).get("in_channels", y_t.shape[1])
    size = getattr(operator, "model_shape", None) or tuple(y_t.shape[-2:])
    shape = (n_obs * n_samples, in_ch, *size)
    x = randn(shape, generator, device) if x_T is None else x_T.to(device).float()
    if tuple(x.shape) != shape:
        raise ValueError(f"x_T: expected shape {shape}, got {tuple(x.shape)}")
    if cond is not None:
        cond = torch.as_tensor(cond, dtype=torch.float32, device=device).reshape(n_obs, -1)
        cond = cond.repeat_interleave(n_samples, 0)
    # check the operator against the model grid once, before the expensive loop
    with torch.no_grad():
        probe = operator(torch.zeros(1, *shape[1:], device=device))
    if tuple(probe.shape[1:]) != tuple(y_t.shape[1:]):
        raise ValueError(f"y: expected observations shaped (N, {', '.join(map(str, probe.shape[1:]))}) "
                         f"like the operator's output, got {tuple(y_t.shape)}")

    a_bar = schedule.alphas_cumprod.to(device)
    last = 0 if t_stop is None else t_stop
    if steps is None:
        timesteps = list(range(schedule.T - 1, last - 1, -1))
    else:
        ddim_timesteps(schedule.T, steps)  # validates steps
        if steps > schedule.T - last:
            raise ValueError(f"steps: expected at most {schedule.T - last} steps between T-1 and "
                             f"t_stop={last}, got {steps}")
        timesteps = torch.linspace(schedule.T - 1, last, steps, dtype=torch.float64).round().long().tolist()
    desc = "DPS" if steps is None else f"DPS-DDIM{steps}"
    for i, t in enumerate(tqdm(timesteps, desc=desc, disable=not progress, leave=False)):
        t_batch = torch.full((len(x),), t, device=device, dtype=torch.long)
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            eps, x0 = denoise(model, schedule, x, t_batch, cond, guidance, autocast, clip_x0=False)
            if clip_x0:  # clipped values forward, identity backward (straight-through)
                x0_fit = x0 + (x0.clamp(-1, 1) - x0).detach()
            else:
                x0_fit = x0
            residual = (y_rep - operator(model_to_flux(normalizer, x0_fit)).float()) * inv_sigma
            norms = residual.flatten(1).norm(dim=1)
            (grad,) = torch.autograd.grad(norms.sum(), x)
        x0, eps, x = x0.detach(), eps.detach(), x.detach()
        if clip_x0:
            x0 = x0.clamp(-1, 1)
            eps = schedule.predict_eps(x, t_batch, x0)
        if callback is not None:
            callback({"i": i, "t": t, "x": x, "x0_pred": x0,
                      "misfit": (norms.detach() ** 2 / n_fit)})
        if output == "x0_hat" and i == len(timesteps) - 1:
            x = x0  # E[x_0 | x_t] at the last timestep (t_stop), no further step
            if data_step:
                flux = gaussian_data_step(x0, float(a_bar[t]), operator, normalizer, y_rep, inv_sigma,
                                          chi2_target=data_chi2)
                if return_flux:
                    return flux.float().contiguous()
                x = normalizer.forward(flux).float() if normalizer is not None else flux.float()
            break
        if steps is None:  # DDPM ancestral step
            mean, var = schedule.posterior(x0, x, t_batch)
            x_next = mean if t == 0 else mean + var.sqrt() * randn(x.shape, generator, device)
        else:  # DDIM step
            a_prev = a_bar[timesteps[i + 1]] if i + 1 < len(timesteps) else a_bar.new_tensor(1.0)
            noise = randn(x.shape, generator, device) if eta > 0 and i + 1 < len(timesteps) else None
            x_next = ddim_step(x0, eps, a_bar[t], a_prev, eta, noise)
        x = x_next - zeta * grad
    x = x.detach()
    if clip_x0:
        x = x.clamp(-1, 1)
    if return_flux:
        return normalizer.inverse(x) if normalizer is not None else x
    return x.contiguous()
