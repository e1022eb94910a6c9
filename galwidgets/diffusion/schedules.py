"""Noise schedules of the forward diffusion process, as values.

A :class:`NoiseSchedule` is a frozen dataclass of tensors built by a named constructor
(:meth:`NoiseSchedule.linear`, :meth:`NoiseSchedule.cosine`); it rebuilds from ``to_config()``.
Notation follows Ho et al. (2020): ``β_t``, ``α_t = 1 - β_t``, ``ᾱ_t = ∏ α_s`` and
``q(x_t | x_0) = N(√ᾱ_t x_0, (1 - ᾱ_t) I)``; timesteps are integers ``0 .. T-1``.

The same process seen as ``x = x_t / √ᾱ_t = x_0 + σ_t ε`` has the noise level
``σ_t = √((1 - ᾱ_t) / ᾱ_t)`` (Song, Meng & Ermon 2021, §4.3; Karras et al. 2022, Table 1, "VP"):
:attr:`NoiseSchedule.sigmas`, :meth:`NoiseSchedule.sigma_to_t` and :meth:`NoiseSchedule.t_to_sigma`
map between the two, and :func:`sampling_sigmas` spaces the noise levels a sampler visits
(uniform or quadratic in t, uniform in log-SNR, or Karras et al.'s ρ-spacing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .._validation import check_positive

__all__ = ["SIGMA_MAX", "SPACINGS", "NoiseSchedule", "karras_sigmas", "sampling_sigmas"]

#: Names :func:`sampling_sigmas` accepts for the spacing of a sampler's noise levels.
SPACINGS = ("uniform", "quadratic", "log_snr", "karras")
#: Highest noise level samplers start from by default: Karras et al. (2022, §5) for data in [-1, 1].
SIGMA_MAX = 80.0


def _gather(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values[t]`` reshaped to broadcast against ``like`` (N, C, H, W)."""
    t = torch.as_tensor(t, device=values.device).long().reshape(-1)
    out = values[t].to(device=like.device, dtype=like.dtype)
    return out.reshape(-1, *([1] * (like.ndim - 1)))


@dataclass(frozen=True, eq=False)
class NoiseSchedule:
    """Variance schedule ``β_1 .. β_T`` and the quantities derived from it.

    Build with :meth:`linear` or :meth:`cosine`; all tensors are float64 on the CPU and are cast
    to the dtype and device of the data they act on.
    """

    betas: torch.Tensor
    kind: str = "custom"
    params: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        betas = torch.as_tensor(self.betas, dtype=torch.float64)
        if betas.ndim != 1 or len(betas) < 2:
            raise ValueError(f"betas: expected a 1-D tensor of length T >= 2, got shape {tuple(betas.shape)}")
        if not torch.all((betas > 0) & (betas < 1)):
            raise ValueError("betas: expected every β_t in (0, 1)")
        object.__setattr__(self, "betas", betas)

    # -- constructors --------------------------------------------------------------------------
    @classmethod
    def linear(cls, T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> NoiseSchedule:
        """Linear β schedule of Ho et al. (2020), §4: β from ``beta_start`` to ``beta_end``.

        The endpoints are rescaled by ``1000 / T`` so that shorter chains keep the same total noise.
        """
        T = _check_T(T)
        scale = 1000 / T
        betas = torch.linspace(beta_start * scale, beta_end * scale, T, dtype=torch.float64)
        betas = betas.clamp(max=0.999)
        return cls(betas, "linear", {"T": T, "beta_start": beta_start, "beta_end": beta_end})

    @classmethod
    def cosine(cls, T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> NoiseSchedule:
        """Cosine schedule of Nichol & Dhariwal (2021), eq. 17: ``ᾱ_t = f(t)/f(0)``,
        ``f(t) = cos²((t/T + s)/(1 + s) · π/2)``, with β clipped at ``max_beta``."""
        T = _check_T(T)
        steps = torch.arange(T + 1, dtype=torch.float64) / T
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
        betas = (1 - f[1:] / f[:-1]).clamp(1e-8, max_beta)
        return cls(betas, "cosine", {"T": T, "s": s, "max_beta": max_beta})

    @classmethod
    def from_config(cls, config: dict) -> NoiseSchedule:
        """Rebuild from :meth:`to_config` output."""
        kind = config.get("kind")
        if kind not in ("linear", "cosine"):
            raise ValueError(f"config: expected kind 'linear' or 'cosine', got {kind!r}")
        return getattr(cls, kind)(**config.get("params", {}))

    def to_config(self) -> dict:
        """Plain-data description ``{"kind": ..., "params": {...}}``."""
        if self.kind not in ("linear", "cosine"):
            raise ValueError("only named schedules (linear, cosine) can be serialised")
        return {"kind": self.kind, "params": dict(self.params)}

    # -- derived quantities --------------------------------------------------------------------
    @property
    def T(self) -> int:
        """Number of diffusion steps."""
        return len(self.betas)

    @property
    def alphas(self) -> torch.Tensor:
        return 1 - self.betas

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        """``ᾱ_t``."""
        return torch.cumprod(self.alphas, 0)

    @property
    def snr(self) -> torch.Tensor:
        """Signal-to-noise ratio ``ᾱ_t / (1 - ᾱ_t)`` (Kingma et al. 2021)."""
        a = self.alphas_cumprod
        return a / (1 - a)

    @property
    def sigmas(self) -> torch.Tensor:
        """Noise level ``σ_t = √((1 - ᾱ_t) / ᾱ_t)`` of every timestep (rising with t), float64.

        ``x_t / √ᾱ_t = x_0 + σ_t ε``: the variance-preserving process as a variance-exploding one
        (Song et al. 2021, DDIM §4.3; Karras et al. 2022, Table 1). ``1 / σ_t²`` is the SNR.
        """
        a = self.alphas_cumprod
        return ((1 - a) / a).sqrt()

    def sigma_to_t(self, sigma: torch.Tensor | float) -> torch.Tensor:
        """The (fractional) timestep of noise level ``sigma``, float64.

        ``log σ`` is interpolated linearly between neighbouring integer timesteps (as k-diffusion's
        ``DiscreteSchedule.sigma_to_t`` and diffusers' ``_sigma_to_t``); levels outside the
        schedule's range map to 0 or T-1. The inverse of :meth:`t_to_sigma`.
        """
        log_sigmas = self.sigmas.log()
        log_sigma = torch.as_tensor(sigma, dtype=torch.float64).clamp(min=1e-30).log()
        low = (torch.searchsorted(log_sigmas, log_sigma, right=True) - 1).clamp(0, self.T - 2)
        w = (log_sigma - log_sigmas[low]) / (log_sigmas[low + 1] - log_sigmas[low])
        return low + w.clamp(0, 1)

    def t_to_sigma(self, t: torch.Tensor | float) -> torch.Tensor:
        """Noise level at a (fractional) timestep ``t`` in ``[0, T-1]``: ``log σ`` interpolated
        linearly between integer timesteps, float64 (exact at integers)."""
        t = torch.as_tensor(t, dtype=torch.float64).clamp(0, self.T - 1)
        low = t.floor().long().clamp(max=self.T - 2)
        log_sigmas = self.sigmas.log()
        return ((1 - (t - low)) * log_sigmas[low] + (t - low) * log_sigmas[low + 1]).exp()

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Draw ``x_t ~ q(x_t | x_0) = N(√ᾱ_t x_0, (1 - ᾱ_t) I)`` (Ho et al. 2020, eq. 4)."""
        if noise is None:
            noise = torch.randn_like(x0)
        a = _gather(self.alphas_cumprod, t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """``x_0 = (x_t - √(1 - ᾱ_t) ε) / √ᾱ_t`` (Ho et al. 2020, eq. 15 rearranged)."""
        a = _gather(self.alphas_cumprod, t, x_t)
        return (x_t - (1 - a).sqrt() * eps) / a.sqrt()

    def predict_eps(self, x_t: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """The ε consistent with ``x_t`` and a (possibly clipped) ``x_0``."""
        a = _gather(self.alphas_cumprod, t, x_t)
        return (x_t - a.sqrt() * x0) / (1 - a).sqrt()

    def v_target(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """Velocity ``v = √ᾱ_t ε - √(1 - ᾱ_t) x_0`` (Salimans & Ho 2022)."""
        a = _gather(self.alphas_cumprod, t, x0)
        return a.sqrt() * eps - (1 - a).sqrt() * x0

    def from_v(
        self, x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x_0, ε)`` from a velocity: ``x_0 = √ᾱ x_t - √(1-ᾱ) v``, ``ε = √(1-ᾱ) x_t + √ᾱ v``.

        Unlike ``x_0`` from ε, neither divides by a vanishing ``√ᾱ_t``: both stay well defined at
        the lowest signal-to-noise ratios (Salimans & Ho 2022).
        """
        a = _gather(self.alphas_cumprod, t, x_t)
        return a.sqrt() * x_t - (1 - a).sqrt() * v, (1 - a).sqrt() * x_t + a.sqrt() * v

    def posterior(
        self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of ``q(x_{t-1} | x_t, x_0)`` (Ho et al. 2020, eqs. 6-7)."""
        a_bar = self.alphas_cumprod
        a_prev = torch.cat([a_bar.new_ones(1), a_bar[:-1]])
        beta = _gather(self.betas, t, x_t)
        ab, ab_prev = _gather(a_bar, t, x_t), _gather(a_prev, t, x_t)
        mean = (ab_prev.sqrt() * beta / (1 - ab)) * x0 + (
            (1 - beta).sqrt() * (1 - ab_prev) / (1 - ab)
        ) * x_t
        variance = beta * (1 - ab_prev) / (1 - ab)
        return mean, variance


def karras_sigmas(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """``n`` noise levels from ``sigma_max`` down to ``sigma_min`` of Karras et al. (2022), eq. 5.

    ``σ_i = (σ_max^{1/ρ} + i/(n-1) (σ_min^{1/ρ} - σ_max^{1/ρ}))^ρ``, ``i = 0 .. n-1``: ``ρ = 7``
    (their choice) packs the steps towards low noise, ``ρ = 1`` spaces them evenly in σ and
    ``ρ → ∞`` evenly in log σ. Float64, without the final 0.
    """
    rho = check_positive(rho, "rho")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"sigma_min, sigma_max: expected 0 < sigma_min < sigma_max, got {sigma_min!r}, "
                         f"{sigma_max!r}")
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    high, low = sigma_max ** (1 / rho), sigma_min ** (1 / rho)
    return (high + ramp * (low - high)) ** rho


def sampling_sigmas(
    schedule: NoiseSchedule,
    steps: int,
    spacing: str = "karras",
    rho: float = 7.0,
    sigma_min: float | None = None,
    sigma_max: float | None = SIGMA_MAX,
) -> torch.Tensor:
    """The noise levels a ``steps``-step sampler visits: ``steps`` levels from high to low, then 0.

    Parameters
    ----------
    schedule : NoiseSchedule
        Bounds the range to its own, ``σ_0 .. σ_{T-1}``.
    steps : int
        Number of noise levels before the final 0, in ``1 .. T``.
    spacing : {"uniform", "quadratic", "log_snr", "karras"}
        ``"uniform"``: timesteps evenly spaced from ``t(sigma_max)`` to ``t(sigma_min)`` (DDIM's
        grid, Song et al. 2021, §4.2, but fractional; k-diffusion's ``get_sigmas``);
        ``"quadratic"``: ``t_i = t_min + (t_max - t_min) (1 - i/(steps-1))²``, dense at low noise
        (Song et al. 2021, Appendix D.2; DPM-Solver's "time_quadratic"); ``"log_snr"``: evenly
        in ``log σ = -log-SNR/2`` (DPM-Solver's "logSNR", Lu et al. 2022, §3.3; diffusers'
        ``use_exponential_sigmas``); ``"karras"``: :func:`karras_sigmas` with ``rho``
        (diffusers' ``use_karras_sigmas``).
    rho : float
        Exponent of the Karras spacing (> 0).
    sigma_min, sigma_max : float or None
        The range, within the schedule's; None for the schedule's own end. ``sigma_max`` defaults
        to 80, Karras et al.'s (2022, §5) choice for data in ``[-1, 1]``: above it the data add
        less than 1/6400 to the variance of ``x``, so a sampler starting there from pure noise
        loses nothing, while a cosine schedule's ``σ_{T-1} = 2·10⁴`` would spend steps on noise
        (with the spacings that follow σ, log-SNR and Karras, a step from 2·10⁴ to ~10³ is wasted).

    Returns
    -------
    torch.Tensor
        ``steps + 1`` noise levels, float64, falling, the last one 0.
    """
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule: expected a NoiseSchedule, got {type(schedule).__name__}")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= schedule.T:
        raise ValueError(f"steps: expected an integer in 1..{schedule.T} (the schedule's T), got {steps!r}")
    if spacing not in SPACINGS:
        raise ValueError(f"spacing: expected one of {', '.join(map(repr, SPACINGS))}, got {spacing!r}")
    rho = check_positive(rho, "rho")
    low, high = schedule.sigmas[0].item(), schedule.sigmas[-1].item()
    low = low if sigma_min is None else max(low, check_positive(sigma_min, "sigma_min"))
    high = high if sigma_max is None else min(high, check_positive(sigma_max, "sigma_max"))
    if not low < high:
        raise ValueError(f"sigma_min, sigma_max: expected sigma_min < sigma_max, got {low!r}, {high!r}")
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    if spacing == "karras":
        sigmas = karras_sigmas(steps, low, high, rho)
    elif spacing == "log_snr":
        sigmas = (math.log(high) + ramp * (math.log(low) - math.log(high))).exp()
    else:
        t_high, t_low = schedule.sigma_to_t(high), schedule.sigma_to_t(low)
        fraction = 1 - ramp if spacing == "uniform" else (1 - ramp) ** 2
        sigmas = schedule.t_to_sigma(t_low + (t_high - t_low) * fraction)
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def _check_T(T: int) -> int:
    if isinstance(T, bool) or not isinstance(T, int) or T < 2:
        raise ValueError(f"T: expected an integer number of diffusion steps >= 2, got {T!r}")
    return T
