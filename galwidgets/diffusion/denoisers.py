"""A noise-prediction network as the denoiser ``D(x, σ) ≈ E[x_0 | x]`` that samplers integrate.

Karras et al. (2022, §2 and Table 1) write every diffusion model as a denoiser of
``x = x_0 + σ n``; a sampler is then a loop over noise levels σ calling ``D`` (k-diffusion's
``sampling.py``). :class:`Denoiser` is the one place where a galwidgets network becomes that
denoiser: the variance-preserving scaling ``x_t = x / √(1 + σ²)`` and the timestep of σ
(:meth:`~galwidgets.diffusion.schedules.NoiseSchedule.sigma_to_t`), ε- or v-prediction,
classifier-free guidance, bf16 autocast and the clipping of ``x̂_0`` to model space. The samplers
in :mod:`galwidgets.diffusion.samplers` only integrate.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from .._device import bf16_is_fast
from .schedules import NoiseSchedule

__all__ = ["Denoiser", "denoise", "model_output"]


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
    ``t`` may be fractional.
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
            return model(x, t, cond).float()
        if x.device.type == "cpu":  # the cost per image grows with the batch: two calls, ~25 % faster
            drop = torch.ones(len(x), dtype=torch.bool)
            out_c = model(x, t, cond, drop_cond=~drop).float()
            out_u = model(x, t, cond, drop_cond=drop).float()
        else:  # one call on the doubled batch keeps an accelerator busy
            both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([cond, cond]),
                         drop_cond=torch.arange(2 * len(x), device=x.device) >= len(x))
            out_c, out_u = both.float().chunk(2)
    return out_u + guidance * (out_c - out_u)


class Denoiser:
    """A trained ε- or v-prediction network as the denoiser of Karras et al. (2022).

    Calling it, ``D(x, σ)``, returns ``x̂_0`` for ``x = x_0 + σ n`` (the σ-space, or
    variance-exploding, view of the VP process: ``x = x_t / √ᾱ_t`` with ``ᾱ_t = 1 / (1 + σ²)``).
    The network sees ``x_t = c_in x``, ``c_in = 1/√(1 + σ²)``, at the fractional timestep
    ``t(σ)``; from its output

    - ε-prediction: ``x̂_0 = x - σ ε̂`` (Ho et al. 2020, eq. 15 in σ-space);
    - v-prediction: ``x̂_0 = c_in² x - σ c_in v̂`` (Salimans & Ho 2022, §4, ``x̂_0 = √ᾱ x_t - √(1-ᾱ) v̂``).

    With ``clip_x0`` ``x̂_0`` is clipped to the model space ``[-1, 1]`` (Ho et al.'s
    ``clip_denoised``). :meth:`predict` gives ``(ε̂, x̂_0)`` at an integer timestep instead, for the
    discrete-time samplers (DDPM, DDIM and the guided ones).

    Parameters
    ----------
    model : torch.nn.Module
        ``model(x_t, t, cond)``; its ``config["prediction"]`` (``"eps"`` or ``"v"``) says what it
        predicts.
    schedule : NoiseSchedule
        The schedule it was trained with.
    cond, guidance
        Condition per image and classifier-free guidance scale (:func:`model_output`).
    autocast : bool or "auto"
        bf16 autocast for the network; ``"auto"`` where it is faster (``bf16_is_fast``).
    clip_x0 : bool
        Clip ``x̂_0`` to ``[-1, 1]``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        schedule: NoiseSchedule,
        cond: torch.Tensor | None = None,
        guidance: float = 1.0,
        autocast: bool | str = "auto",
        clip_x0: bool = True,
    ) -> None:
        if not isinstance(schedule, NoiseSchedule):
            raise TypeError(f"schedule: expected a NoiseSchedule, got {type(schedule).__name__}")
        self.model, self.schedule = model, schedule
        self.cond, self.guidance, self.autocast, self.clip_x0 = cond, guidance, autocast, clip_x0
        self.v_prediction = getattr(model, "config", {}).get("prediction", "eps") == "v"

    def _output(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return model_output(self.model, x_t, t, self.cond, self.guidance, self.autocast)

    def __call__(self, x: torch.Tensor, sigma: float | torch.Tensor) -> torch.Tensor:
        """``x̂_0`` of ``x = x_0 + σ n`` at one noise level ``sigma > 0`` for the whole batch."""
        sigma = float(sigma)
        c_in = (1 + sigma**2) ** -0.5
        t = self.schedule.sigma_to_t(sigma).float().to(x.device).expand(len(x))
        out = self._output(x * c_in, t)
        x0 = c_in**2 * x - sigma * c_in * out if self.v_prediction else x - sigma * out
        return x0.clamp(-1, 1) if self.clip_x0 else x0

    def predict(self, x_t: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ε̂, x̂_0)`` at ``(x_t, t)`` with integer timesteps ``t``, in the VP form.

        With ``clip_x0`` the ε is made consistent with the clipped ``x̂_0``.
        """
        out = self._output(x_t, t)
        if self.v_prediction:
            x0, eps = self.schedule.from_v(x_t, t, out)
        else:
            eps, x0 = out, self.schedule.predict_x0(x_t, t, out)
        if self.clip_x0:
            x0 = x0.clamp(-1, 1)
            eps = self.schedule.predict_eps(x_t, t, x0)
        return eps, x0


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
    """``(ε, x̂_0)`` at ``(x_t, t)`` from an ε- or v-prediction model: :meth:`Denoiser.predict`.

    With ``clip_x0``, x̂_0 is clipped to the model space ``[-1, 1]`` and ε made consistent with it
    (Ho et al. 2020's ``clip_denoised``).
    """
    return Denoiser(model, schedule, cond, guidance, autocast, clip_x0).predict(x, t)
