"""SDEdit in model space (Meng et al. 2022): noise an image part of the way, then denoise it.

SDEdit "edits" an image by noising it part of the way along the forward process and then running
the reverse process from there: noise hides the small-scale details of the input, the model
replaces them with ones it learnt, and the large-scale layout (position, size, shape, colour)
survives. Smith et al. (2022, §5.2 and Fig. 7) "DESI-fy" hand-drawn cartoon galaxies this way,
starting the reverse process at t = 600 of T = 1000.

:func:`sdedit` reuses :func:`~.samplers.ddim` and :func:`~.samplers.ddpm` for the reverse process
(their update rules are not repeated here). The flux-space workflow on a checkpoint is
:func:`galwidgets.diffusion.transfer.domain_transfer`.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
import torch

from .._device import device_of, randn
from .._validation import check_positive_int
from .samplers import Callback, ddim, ddim_timesteps, ddpm, denoise
from .schedules import NoiseSchedule

__all__ = ["SDEDIT_SAMPLERS", "SDEditResult", "resolve_t_start", "sdedit"]

#: Reverse-process samplers :func:`sdedit` can run from the noised input.
SDEDIT_SAMPLERS = ("ddim", "ddpm")


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
    if sampler not in SDEDIT_SAMPLERS:
        raise ValueError(f"sampler: expected one of {SDEDIT_SAMPLERS}, got {sampler!r}")
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
    device = torch.device(device) if device is not None else device_of(model)
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
    eps = randn(x0.shape, generator, device) if noise is None else noise.to(device).float()
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
