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

from .schedules import NoiseSchedule

__all__ = ["dps", "model_to_flux"]

Callback = Callable[[dict], None]


def model_to_flux(normalizer: Any, x: torch.Tensor) -> torch.Tensor:
    """``normalizer.inverse(x)`` without its clip to ``[-1, 1]``, so gradients flow everywhere.

    The normalizers' ``inverse`` clips model-space values to ``[-1, 1]`` first, which zeroes the
    gradient of every pixel outside that range. Here :class:`~galwidgets.data.AsinhStretch`
    (``sinh(x · asinh(upper/s)) · s``) and :class:`~galwidgets.data.ClipMinMax` (``(x + 1) / 2 ·
    A``) are applied without the clip; other normalizers (or None: the identity) fall back to
    their own ``inverse``.
    """
    from ..data.transforms import AsinhStretch, ClipMinMax, _per_channel

    if normalizer is None:
        return x
    if isinstance(normalizer, AsinhStretch):
        s, top = normalizer._scales(x)
        return torch.sinh(x * top) * s
    if isinstance(normalizer, ClipMinMax):
        return (x + 1) / 2 * _per_channel(normalizer.clip, x)
    return normalizer.inverse(x)


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

    Cost: one network forward and one backward (to ``x_t`` only) per step; see
    ``benchmarks/bench_dps.py`` for the cost relative to a plain DDPM step.
    """
    from .samplers import _device_of, _randn, ddim_timesteps, denoise

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
    device = torch.device(device) if device is not None else _device_of(model)

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
    inv_sigma = (1 / sigma).expand_as(y_t).repeat_interleave(n_samples, 0)

    in_ch = getattr(model, "config", {}).get("in_channels", y_t.shape[1])
    size = getattr(operator, "model_shape", None) or tuple(y_t.shape[-2:])
    shape = (n_obs * n_samples, in_ch, *size)
    x = _randn(shape, generator, device) if x_T is None else x_T.to(device).float()
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
    if steps is None:
        timesteps = list(range(schedule.T - 1, -1, -1))
    else:
        timesteps = ddim_timesteps(schedule.T, steps).tolist()
    n_pix = y_t[0].numel()
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
                      "misfit": (norms.detach() ** 2 / n_pix)})
        if steps is None:  # DDPM ancestral step
            mean, var = schedule.posterior(x0, x, t_batch)
            x_next = mean if t == 0 else mean + var.sqrt() * _randn(x.shape, generator, device)
        else:  # DDIM step
            a_t = a_bar[t]
            a_prev = a_bar[timesteps[i + 1]] if i + 1 < len(timesteps) else a_bar.new_tensor(1.0)
            s = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).sqrt()
            x_next = a_prev.sqrt().float() * x0 + (1 - a_prev - s**2).clamp(min=0).sqrt().float() * eps
            if eta > 0 and i + 1 < len(timesteps):
                x_next = x_next + s.float() * _randn(x.shape, generator, device)
        x = x_next - zeta * grad
    x = x.detach()
    if clip_x0:
        x = x.clamp(-1, 1)
    if return_flux:
        return normalizer.inverse(x) if normalizer is not None else x
    return x.contiguous()
