"""Samplers against a float64 reference of the published equations, with an analytic model.

For data whose pixels are independent N(μ, s²), the exact noise predictor is known in closed form:
``E[ε | x_t] = √(1-ᾱ_t) (x_t - √ᾱ_t μ) / (ᾱ_t s² + 1 - ᾱ_t)``. With it, DDIM (Song et al. 2021,
eq. 12) and DDPM (Ho et al. 2020, Algorithm 2 with eqs. 6-7) are written out below in numpy
float64 and compared step by step with ``gw.samplers``; DDPM must also reproduce N(μ, s²).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import galwidgets as gw

MU, S = 0.2, 0.3
SHAPE = (2, 3, 8, 8)


class GaussianDataModel(torch.nn.Module):
    """The exact ε (or v) predictor for pixels drawn from N(MU, S²)."""

    def __init__(self, schedule: gw.diffusion.NoiseSchedule, prediction: str = "eps") -> None:
        super().__init__()
        self.schedule = schedule
        self.config = {"prediction": prediction}
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, t, cond=None, drop_cond=None):
        a = self.schedule.alphas_cumprod[t].float().view(-1, 1, 1, 1)
        eps = (1 - a).sqrt() * (x - a.sqrt() * MU) / (a * S**2 + 1 - a)
        if self.config["prediction"] == "v":
            x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
            return a.sqrt() * eps - (1 - a).sqrt() * x0
        return eps


def _eps64(x: np.ndarray, a: float) -> np.ndarray:
    return np.sqrt(1 - a) * (x - np.sqrt(a) * MU) / (a * S**2 + 1 - a)


def _ddim_reference(a_bar: np.ndarray, x_T: np.ndarray, timesteps: list[int], eta: float,
                    noises: list[np.ndarray]) -> list[np.ndarray]:
    """Song et al. (2021) eq. 12 with σ_t(η) of eq. 16, in float64; returns x at every step and x_0."""
    xs, x = [], x_T
    for i, t in enumerate(timesteps):
        xs.append(x)
        a_t = a_bar[t]
        a_prev = a_bar[timesteps[i + 1]] if i + 1 < len(timesteps) else 1.0
        eps = _eps64(x, a_t)
        x0 = (x - np.sqrt(1 - a_t) * eps) / np.sqrt(a_t)
        sigma = eta * np.sqrt((1 - a_prev) / (1 - a_t)) * np.sqrt(1 - a_t / a_prev)
        x = np.sqrt(a_prev) * x0 + np.sqrt(1 - a_prev - sigma**2) * eps
        if eta > 0 and i + 1 < len(timesteps):
            x = x + sigma * noises[i]
    return [*xs, x]


def _ddpm_reference(betas: np.ndarray, x_T: np.ndarray, noises: list[np.ndarray],
                    variance: str) -> list[np.ndarray]:
    """Ho et al. (2020) Algorithm 2 through the posterior mean of eqs. 6-7, in float64."""
    a_bar = np.cumprod(1 - betas)
    xs, x = [], x_T
    for i, t in enumerate(range(len(betas) - 1, -1, -1)):
        xs.append(x)
        a_t, a_prev, beta = a_bar[t], (a_bar[t - 1] if t > 0 else 1.0), betas[t]
        x0 = (x - np.sqrt(1 - a_t) * _eps64(x, a_t)) / np.sqrt(a_t)
        mean = np.sqrt(a_prev) * beta / (1 - a_t) * x0 + np.sqrt(1 - beta) * (1 - a_prev) / (1 - a_t) * x
        if t == 0:
            x = mean
        else:
            var = beta * (1 - a_prev) / (1 - a_t) if variance == "small" else beta
            x = mean + np.sqrt(var) * noises[i]
    return [*xs, x]


def _draws(seed: int, count: int) -> tuple[torch.Tensor, list[np.ndarray]]:
    """x_T and the per-step noises, drawn in the order the samplers draw them."""
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn(SHAPE, generator=g)
    g = torch.Generator().manual_seed(seed + 1)
    return x_T, [torch.randn(SHAPE, generator=g).double().numpy() for _ in range(count)]


def _record(fn, **kwargs) -> list[np.ndarray]:
    seen: list[np.ndarray] = []
    out = fn(callback=lambda d: seen.append(d["x"].double().numpy()), clip_x0=False, progress=False,
             **kwargs)
    return [*seen, out.double().numpy()]


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("prediction", ["eps", "v"])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_trajectory_matches_float64_reference(kind, prediction, eta):
    sched = getattr(gw.diffusion.NoiseSchedule, kind)(1000)
    steps = 25
    x_T, noises = _draws(0, steps)
    ours = _record(gw.samplers.ddim, model=GaussianDataModel(sched, prediction), schedule=sched,
                   shape=SHAPE, steps=steps, eta=eta, x_T=x_T,
                   generator=torch.Generator().manual_seed(1))
    timesteps = gw.samplers.ddim_timesteps(sched.T, steps).tolist()
    reference = _ddim_reference(sched.alphas_cumprod.numpy(), x_T.double().numpy(), timesteps, eta, noises)
    assert len(ours) == len(reference) == steps + 1
    # float32 against float64: at the last cosine timesteps ᾱ_t ~ 1e-9, so rounding in x̂_0 is
    # amplified; a wrong coefficient anywhere shows as differences of order 0.01-1
    for i, (a, b) in enumerate(zip(ours, reference)):
        np.testing.assert_allclose(a, b, atol=3e-4, rtol=1e-3, err_msg=f"step {i}")


@pytest.mark.parametrize("variance", ["small", "large"])
def test_ddpm_trajectory_matches_float64_reference(variance):
    sched = gw.diffusion.NoiseSchedule.linear(100)
    x_T, noises = _draws(3, sched.T)
    ours = _record(gw.samplers.ddpm, model=GaussianDataModel(sched), schedule=sched, shape=SHAPE,
                   x_T=x_T, generator=torch.Generator().manual_seed(4), variance=variance)
    reference = _ddpm_reference(sched.betas.numpy(), x_T.double().numpy(), noises, variance)
    for i, (a, b) in enumerate(zip(ours, reference)):
        np.testing.assert_allclose(a, b, atol=3e-4, rtol=1e-3, err_msg=f"step {i}")


@pytest.mark.parametrize("variance", ["small", "large"])
def test_ddpm_with_the_exact_model_samples_the_data_distribution(variance):
    sched = gw.diffusion.NoiseSchedule.cosine(200)
    x = gw.samplers.ddpm(GaussianDataModel(sched), sched, (4, 1, 32, 32), clip_x0=False,
                         generator=torch.Generator().manual_seed(5), progress=False, variance=variance)
    n = x.numel()  # 4096 independent pixels
    assert abs(x.mean().item() - MU) < 4 * S / np.sqrt(n)
    assert abs(x.std().item() / S - 1) < 0.06


def test_ddim_eta0_is_deterministic_and_maps_noise_quantiles():
    """Deterministic DDIM with the exact model is the probability-flow map: N(0,1) → N(μ, s²)."""
    sched = gw.diffusion.NoiseSchedule.cosine(1000)
    x_T = torch.randn(4, 1, 32, 32, generator=torch.Generator().manual_seed(6))
    model = GaussianDataModel(sched)
    a = gw.samplers.ddim(model, sched, x_T.shape, steps=200, x_T=x_T, clip_x0=False, progress=False)
    b = gw.samplers.ddim(model, sched, x_T.shape, steps=200, x_T=x_T, clip_x0=False, progress=False)
    assert torch.equal(a, b)
    # for Gaussian data the probability-flow ODE is affine, x_0 = μ + s x_T; 200 DDIM steps
    # follow it to ~1 % (discretisation), a wrong update would not
    np.testing.assert_allclose(a.numpy(), (MU + S * x_T).numpy(), atol=0.03)
    assert abs(a.std().item() / S - 1) < 0.03


class _Conditional(torch.nn.Module):
    """out = cond (conditional) or 0 (dropped): guidance must give w * cond."""

    cond_dim = 1

    def __init__(self) -> None:
        super().__init__()
        self.config = {"prediction": "eps"}

    def forward(self, x, t, cond=None, drop_cond=None):
        c = cond.reshape(-1, 1, 1, 1).expand_as(x)
        return torch.where(drop_cond.reshape(-1, 1, 1, 1), torch.zeros_like(x), c)


def test_classifier_free_guidance_combination():
    x = torch.zeros(3, 1, 2, 2)
    cond = torch.tensor([[1.0], [2.0], [-1.0]])
    out = gw.samplers.model_output(_Conditional(), x, torch.tensor(5), cond, guidance=3.0)
    np.testing.assert_allclose(out[:, 0, 0, 0].numpy(), [3.0, 6.0, -3.0])


def test_bad_sampler_inputs_are_named():
    sched = gw.diffusion.NoiseSchedule.linear(10)
    unet = gw.models.UNet(in_channels=3, base_channels=8, channel_mults=(1,), attention_levels=(),
                          groups=4)
    conditional = gw.models.UNet(in_channels=3, base_channels=8, channel_mults=(1,),
                                 attention_levels=(), groups=4, cond_dim=1)
    with pytest.raises(ValueError, match="cond: this model is unconditional"):
        gw.samplers.ddim(unet, sched, (1, 3, 8, 8), steps=2, cond=[0.3], progress=False)
    with pytest.raises(ValueError, match=r"guidance: .* needs a conditional model"):
        gw.samplers.ddim(unet, sched, (1, 3, 8, 8), steps=2, guidance=2.0, progress=False)
    with pytest.raises(ValueError, match=r"guidance: .* needs a condition per image"):
        gw.samplers.ddim(conditional, sched, (1, 3, 8, 8), steps=2, guidance=2.0, progress=False)
    with pytest.raises(ValueError, match="x: expected 3 channels, got 4"):
        gw.samplers.ddim(unet, sched, (1, 4, 8, 8), steps=2, progress=False)
    with pytest.raises(ValueError, match=r"steps: expected an integer in 1..10"):
        gw.samplers.ddim(unet, sched, (1, 3, 8, 8), steps=11, progress=False)
    with pytest.raises(ValueError, match="variance: expected 'small' or 'large'"):
        gw.samplers.ddpm(unet, sched, (1, 3, 8, 8), variance="medium", progress=False)
    for make in (gw.diffusion.NoiseSchedule.linear, gw.diffusion.NoiseSchedule.cosine):
        with pytest.raises(ValueError, match="T: expected an integer number of diffusion steps >= 2"):
            make(1)


def test_compile_falls_back_to_the_plain_model_with_a_warning(monkeypatch):
    class Broken(torch.nn.Module):
        def forward(self, *args, **kwargs):
            raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", lambda model: Broken())
    sched = gw.diffusion.NoiseSchedule.cosine(50)
    model = GaussianDataModel(sched)
    x_T = torch.randn(SHAPE, generator=torch.Generator().manual_seed(8))
    plain = gw.samplers.ddim(model, sched, SHAPE, steps=5, x_T=x_T, clip_x0=False, progress=False)
    with pytest.warns(RuntimeWarning, match="compile: torch.compile failed .*no C\\+\\+ compiler"):
        fallback = gw.samplers.ddim(model, sched, SHAPE, steps=5, x_T=x_T, clip_x0=False,
                                    progress=False, compile=True)
    assert torch.equal(plain, fallback)
    assert gw.samplers.compiled(model) is gw.samplers.compiled(model)  # built once per model
