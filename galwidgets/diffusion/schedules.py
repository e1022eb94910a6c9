"""Noise schedules of the forward diffusion process, as values.

A :class:`NoiseSchedule` is a frozen dataclass of tensors built by a named constructor
(:meth:`NoiseSchedule.linear`, :meth:`NoiseSchedule.cosine`); it rebuilds from ``to_config()``.
Notation follows Ho et al. (2020): ``β_t``, ``α_t = 1 - β_t``, ``ᾱ_t = ∏ α_s`` and
``q(x_t | x_0) = N(√ᾱ_t x_0, (1 - ᾱ_t) I)``; timesteps are integers ``0 .. T-1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

__all__ = ["NoiseSchedule"]


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


def _check_T(T: int) -> int:
    if isinstance(T, bool) or not isinstance(T, int) or T < 2:
        raise ValueError(f"T: expected an integer number of diffusion steps >= 2, got {T!r}")
    return T
