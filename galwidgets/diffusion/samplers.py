"""Reverse-process samplers as small plain functions, in the style of k-diffusion's ``sampling.py``.

Every sampler takes ``(model, schedule, ...)`` and works in model space; use a checkpoint's
normalizer to turn the result into flux. ``callback``, when given, is called once per step with a
dict ``{"i": step index, "t": timestep, "x": the noisy sample x_t fed to the model, "x0_pred": the
model's estimate of x_0}`` so widgets and tutorials can watch the reverse process.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import torch
from tqdm.auto import tqdm

from .._device import bf16_is_fast, device_of, randn
from .schedules import NoiseSchedule

__all__ = [
    "Callback", "compiled", "ddim", "ddim_step", "ddim_timesteps", "ddpm", "denoise", "model_output",
    "prepare_sampling",
]

Callback = Callable[[dict], None]


def model_output(
    model: torch.nn.Module,
    x: torch.Tensor,
    t: torch.Tensor,
    cond: torch.Tensor | None = None,
    guidance: float = 1.0,
    autocast: bool | str = False,
) -> torch.Tensor:
    """The network's raw prediction (ε or v), with classifier-free guidance when ``guidance != 1``.

    ``out = out(x, ∅) + w (out(x, c) - out(x, ∅))`` (Ho & Salimans 2022, with ``w = 1 +
    guidance weight``): ``guidance=1`` is the plain conditional model, ``0`` the unconditional one.
    """
    t = t.reshape(-1).expand(len(x)) if t.numel() == 1 else t
    if guidance != 1.0:
        if not getattr(model, "cond_dim", 0):
            raise ValueError(f"guidance: {guidance} needs a conditional model (cond_dim > 0); "
                             "this one is unconditional: use guidance=1")
        if cond is None:
            raise ValueError(f"guidance: {guidance} needs a condition per image (cond)")
    if autocast == "auto":
        autocast = bf16_is_fast(x.device)
    ctx = torch.autocast(x.device.type, dtype=torch.bfloat16) if autocast else nullcontext()
    with ctx:
        if cond is None or guidance == 1.0:
            out = model(x, t, cond)
        else:
            both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([cond, cond]),
                         drop_cond=torch.arange(2 * len(x), device=x.device) >= len(x))
            out_c, out_u = both.float().chunk(2)
            out = out_u + guidance * (out_c - out_u)
    return out.float()


def denoise(
    model: torch.nn.Module,
    schedule: NoiseSchedule,
    x: torch.Tensor,
    t: torch.Tensor,
    cond: torch.Tensor | None = None,
    guidance: float = 1.0,
    autocast: bool | str = "auto",
    clip_x0: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ε, x̂_0)`` at ``(x_t, t)`` from an ε- or v-prediction model.

    With ``clip_x0``, x̂_0 is clipped to the model space ``[-1, 1]`` and ε made consistent with it
    (Ho et al. 2020's ``clip_denoised``).
    """
    out = model_output(model, x, t, cond, guidance, autocast)
    if getattr(model, "config", {}).get("prediction", "eps") == "v":
        x0, eps = schedule.from_v(x, t, out)
    else:
        eps, x0 = out, schedule.predict_x0(x, t, out)
    if clip_x0:
        x0 = x0.clamp(-1, 1)
        eps = schedule.predict_eps(x, t, x0)
    return eps, x0


class _CompiledOrEager(torch.nn.Module):
    """``torch.compile(model)`` that falls back to ``model`` (with a warning) if compiling fails."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.eager = model
        self.compiled = torch.compile(model)
        self.config = getattr(model, "config", {})
        self.cond_dim = getattr(model, "cond_dim", 0)
        self.failed = False

    def forward(self, *args, **kwargs):
        if not self.failed:
            try:
                return self.compiled(*args, **kwargs)
            except Exception as exc:  # no compiler, unsupported op, ...: sample without it
                warnings.warn(f"compile: torch.compile failed ({type(exc).__name__}: {exc}); "
                              "sampling without it", RuntimeWarning, stacklevel=2)
                self.failed = True
        return self.eager(*args, **kwargs)


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` under ``torch.compile``, built once per model and kept for reuse by later calls.

    Falls back to the plain model, with a warning, where compilation fails. Compiling takes tens
    of seconds and paid off for sampling neither here nor in ``BENCHMARKS.md`` on a 2-core CPU;
    it can on GPUs.
    """
    if model not in _COMPILED:
        _COMPILED[model] = _CompiledOrEager(model)
    return _COMPILED[model]


def prepare_sampling(
    model: torch.nn.Module,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    cond: Any,
    generator: torch.Generator | None,
    x_T: torch.Tensor | None,
    device: str | torch.device | None,
    channels_last: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.device]:
    """Validate a sampler's inputs; return the starting noise ``x_T``, the condition and the device.

    ``cond`` becomes a float tensor with one row per image; with ``channels_last`` the model is
    converted in place and ``x_T`` laid out to match.
    """
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule: expected a NoiseSchedule, got {type(schedule).__name__}")
    if len(shape) != 4 or any(isinstance(v, bool) or not hasattr(v, "__index__") or v < 1 for v in shape):
        raise ValueError(f"shape: expected (N, C, H, W) with N, the number of images, and every other "
                         f"size a positive integer, got {tuple(shape)!r}")
    shape = tuple(int(v) for v in shape)
    device = torch.device(device) if device is not None else device_of(model)
    x = randn(shape, generator, device) if x_T is None else x_T.to(device).float()
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"x_T: expected shape {tuple(shape)}, got {tuple(x.shape)}")
    if cond is not None:
        cond = torch.as_tensor(cond, dtype=torch.float32, device=device).reshape(shape[0], -1)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return x, cond, device


def ddim_timesteps(T: int, steps: int) -> torch.Tensor:
    """Evenly spaced timesteps ``T-1 .. 0`` for a ``steps``-step DDIM run (Song et al. 2021, §4.2)."""
    if not isinstance(steps, int) or not 1 <= steps <= T:
        raise ValueError(f"steps: expected an integer in 1..{T} (the schedule's T), got {steps!r}")
    return torch.linspace(T - 1, 0, steps, dtype=torch.float64).round().long()


def ddim_step(
    x0: torch.Tensor, eps: torch.Tensor, a_t: torch.Tensor, a_prev: torch.Tensor, eta: float = 0.0,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """One DDIM update from ``x_t`` to ``x_prev`` given ``(x̂_0, ε)`` (Song et al. 2021, eq. 12).

    ``a_t``, ``a_prev`` are ᾱ at the two timesteps (``a_prev = 1`` for the last step); the noise
    scale is ``σ = η sqrt((1 - ᾱ_prev) / (1 - ᾱ_t)) sqrt(1 - ᾱ_t / ᾱ_prev)`` (eq. 16), applied to
    ``noise`` when given (pass None for η = 0 or the last step).
    """
    sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).sqrt()
    x = a_prev.sqrt().float() * x0 + (1 - a_prev - sigma**2).clamp(min=0).sqrt().float() * eps
    return x if noise is None else x + sigma.float() * noise


@torch.no_grad()
def ddim(
    model: torch.nn.Module,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    steps: int = 50,
    eta: float = 0.0,
    cond: torch.Tensor | None = None,
    guidance: float = 1.0,
    callback: Callback | None = None,
    generator: torch.Generator | None = None,
    x_T: torch.Tensor | None = None,
    clip_x0: bool = True,
    autocast: bool | str = "auto",
    device: str | torch.device | None = None,
    progress: bool = True,
    channels_last: bool = True,
    compile: bool = False,
) -> torch.Tensor:
    """Denoising diffusion implicit model sampler (Song, Meng & Ermon 2021, eq. 12).

    Parameters
    ----------
    model : torch.nn.Module
        ε- or v-prediction network ``model(x, t, cond)`` (its ``config["prediction"]`` says which).
    schedule : NoiseSchedule
        The schedule the model was trained with.
    shape : (N, C, H, W)
        Shape of the batch to draw.
    steps : int
        Number of denoising steps (≤ T), spaced evenly over the T training timesteps.
    eta : float
        0 gives the deterministic DDIM; 1 recovers DDPM-like ancestral noise.
    cond, guidance
        Condition per image and classifier-free guidance scale (see :func:`model_output`).
    callback : callable, optional
        Called with ``{"i", "t", "x", "x0_pred"}`` once per step.
    generator : torch.Generator, optional
        Source of all randomness: a fixed generator gives identical samples.
    x_T : torch.Tensor, optional
        Starting noise instead of a fresh draw.
    clip_x0 : bool
        Clip the predicted ``x_0`` to the model space ``[-1, 1]``.
    autocast : bool or "auto"
        Run the network under bf16 autocast; ``"auto"`` does so where it is faster (GPUs with
        bf16, CPUs with AVX512-BF16 or AMX; see ``BENCHMARKS.md``).
    device : optional
        Defaults to the model's device.
    progress : bool
        Show a progress bar.
    channels_last : bool
        Run the network in the channels-last memory format (converts ``model`` in place): 1.2-1.5x
        faster sampling on CPU under bf16 (BENCHMARKS.md). Results are returned contiguous.
    compile : bool
        Run the network through :func:`compiled` (``torch.compile``, built once per model, with
        a plain fallback).

    Returns
    -------
    torch.Tensor
        Samples ``x_0`` in model space.
    """
    x, cond, device = prepare_sampling(model, schedule, shape, cond, generator, x_T, device, channels_last)
    model = compiled(model) if compile else model
    if eta < 0:
        raise ValueError(f"eta: expected eta >= 0, got {eta!r}")
    a_bar = schedule.alphas_cumprod.to(device)
    timesteps = ddim_timesteps(schedule.T, steps).tolist()
    for i, t in enumerate(tqdm(timesteps, desc="DDIM", disable=not progress, leave=False)):
        t_batch = torch.full((len(x),), t, device=device, dtype=torch.long)
        eps, x0 = denoise(model, schedule, x, t_batch, cond, guidance, autocast, clip_x0)
        if callback is not None:
            callback({"i": i, "t": t, "x": x, "x0_pred": x0})
        a_prev = a_bar[timesteps[i + 1]] if i + 1 < len(timesteps) else a_bar.new_tensor(1.0)
        noise = randn(x.shape, generator, device) if eta > 0 and i + 1 < len(timesteps) else None
        x = ddim_step(x0, eps, a_bar[t], a_prev, eta, noise)
    return x.contiguous()


@torch.no_grad()
def ddpm(
    model: torch.nn.Module,
    schedule: NoiseSchedule,
    shape: Sequence[int],
    cond: torch.Tensor | None = None,
    guidance: float = 1.0,
    callback: Callback | None = None,
    generator: torch.Generator | None = None,
    x_T: torch.Tensor | None = None,
    clip_x0: bool = True,
    autocast: bool | str = "auto",
    device: str | torch.device | None = None,
    progress: bool = True,
    variance: str = "small",
    channels_last: bool = True,
    compile: bool = False,
) -> torch.Tensor:
    """Ancestral sampler of Ho et al. (2020), Algorithm 2, over all T steps.

    Each step draws from a Gaussian with the mean of the posterior ``q(x_{t-1} | x_t, x̂_0)``
    (eqs. 6-7, with the clipped ``x̂_0``). Parameters as in :func:`ddim`, plus:

    variance : {"small", "large"}
        ``σ_t² = β̃_t = β_t (1 - ᾱ_{t-1}) / (1 - ᾱ_t)``, the posterior variance (``"small"``, the
        lower bound of Ho et al. §3.2, exact for deterministic data) or ``σ_t² = β_t`` (``"large"``,
        exact for data from N(0, I)); the paper found both give similar samples. The last step
        adds no noise.
    """
    if variance not in ("small", "large"):
        raise ValueError(f"variance: expected 'small' or 'large', got {variance!r}")
    x, cond, device = prepare_sampling(model, schedule, shape, cond, generator, x_T, device, channels_last)
    model = compiled(model) if compile else model
    for i, t in enumerate(tqdm(range(schedule.T - 1, -1, -1), desc="DDPM", disable=not progress,
                               leave=False)):
        t_batch = torch.full((len(x),), t, device=device, dtype=torch.long)
        _, x0 = denoise(model, schedule, x, t_batch, cond, guidance, autocast, clip_x0)
        if callback is not None:
            callback({"i": i, "t": t, "x": x, "x0_pred": x0})
        mean, small = schedule.posterior(x0, x, t_batch)
        if t == 0:
            x = mean
            continue
        var = small if variance == "small" else schedule.betas[t].to(mean)
        x = mean + var.sqrt() * randn(x.shape, generator, device)
    return x.contiguous()
