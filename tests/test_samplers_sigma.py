"""The σ-space samplers (DPM-Solver++, Euler, Heun, ancestral Euler) on analytic models.

For pixels drawn independently from N(μ, s²) the denoiser is known in closed form at every noise
level, ``D(x, σ) = (s² x + σ² μ) / (s² + σ²)``, and so is the probability-flow ODE's map from the
starting noise to the data: ``x_0 = μ + s (x_σmax - μ) / √(s² + σ_max²)``. The ODE samplers must
converge to it at the order of their method, the stochastic ones must draw N(μ, s²), and an
oracle for a one-image data set must be recovered exactly by all of them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import galwidgets as gw
from galwidgets.diffusion.denoisers import Denoiser
from galwidgets.diffusion.schedules import SIGMA_MAX, karras_sigmas, sampling_sigmas
from galwidgets.pretrained.specs import RECIPES

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MU, S = 0.2, 0.3
SIGMA_SAMPLERS = ["dpm_solver", "euler", "heun", "euler_ancestral"]


class GaussianDataModel(torch.nn.Module):
    """The exact ε (or v) predictor for pixels from N(MU, S²), at fractional timesteps."""

    def __init__(self, schedule: gw.diffusion.NoiseSchedule, prediction: str = "eps") -> None:
        super().__init__()
        self.schedule = schedule
        self.config = {"prediction": prediction}
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, t, cond=None, drop_cond=None):
        sigma = self.schedule.t_to_sigma(torch.as_tensor(t, dtype=torch.float64).reshape(-1))
        a = (1 / (1 + sigma**2)).float().view(-1, 1, 1, 1)
        eps = (1 - a).sqrt() * (x - a.sqrt() * MU) / (a * S**2 + 1 - a)
        if self.config["prediction"] == "v":
            x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
            return a.sqrt() * eps - (1 - a).sqrt() * x0
        return eps


class OneImage(torch.nn.Module):
    """The exact ε (or v) for a data set holding one image: every denoiser estimate is that image."""

    def __init__(self, schedule, target, prediction: str = "eps") -> None:
        super().__init__()
        self.schedule, self.target = schedule, target
        self.config = {"prediction": prediction}
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, t, cond=None, drop_cond=None):
        sigma = self.schedule.t_to_sigma(torch.as_tensor(t, dtype=torch.float64).reshape(-1))
        a = (1 / (1 + sigma**2)).float().view(-1, 1, 1, 1)
        eps = (x - a.sqrt() * self.target) / (1 - a).sqrt()
        if self.config["prediction"] == "v":  # Salimans & Ho (2022): v = √ᾱ ε - √(1-ᾱ) x_0
            return a.sqrt() * eps - (1 - a).sqrt() * self.target
        return eps


def _exact_flow(schedule, x_T: torch.Tensor, sigma_max: float = SIGMA_MAX) -> torch.Tensor:
    """The probability-flow ODE's x_0 from our start x = √(1 + σ_max²) x_T, for N(MU, S²) data."""
    sigma_max = min(sigma_max, schedule.sigmas[-1].item())
    start = math.sqrt(1 + sigma_max**2) * x_T.double()
    return (MU + S * (start - MU) / math.sqrt(S**2 + sigma_max**2)).float()


def _run(name, model, sched, shape, **kwargs) -> torch.Tensor:
    return getattr(gw.samplers, name)(model, sched, shape, clip_x0=False, progress=False, **kwargs)


# -- noise levels --------------------------------------------------------------------------------
def test_sigma_and_timestep_round_trip_and_are_exact_at_integers():
    sched = gw.diffusion.NoiseSchedule.cosine(1000)
    a = sched.alphas_cumprod
    torch.testing.assert_close(sched.sigmas, ((1 - a) / a).sqrt())
    torch.testing.assert_close(sched.t_to_sigma(torch.arange(1000.0)), sched.sigmas, rtol=1e-12, atol=0)
    t = torch.tensor([0.0, 0.25, 17.5, 500.9, 998.5, 999.0], dtype=torch.float64)
    torch.testing.assert_close(sched.sigma_to_t(sched.t_to_sigma(t)), t, rtol=0, atol=1e-9)
    # log σ is linear between integer timesteps
    mid = sched.t_to_sigma(torch.tensor(10.5, dtype=torch.float64))
    geometric_mean = math.sqrt(sched.sigmas[10].item() * sched.sigmas[11].item())
    assert mid.item() == pytest.approx(geometric_mean, rel=1e-12)
    assert sched.sigma_to_t(1e-9).item() == 0 and sched.sigma_to_t(1e9).item() == 999


@pytest.mark.parametrize("spacing", ["uniform", "quadratic", "log_snr", "karras"])
def test_every_spacing_runs_from_sigma_max_down_to_zero(spacing):
    sched = gw.diffusion.NoiseSchedule.linear(1000)
    sigmas = sampling_sigmas(sched, 12, spacing, sigma_max=None)
    assert len(sigmas) == 13 and sigmas[-1] == 0 and torch.all(sigmas[1:] < sigmas[:-1])
    assert sigmas[0].item() == pytest.approx(sched.sigmas[-1].item(), rel=1e-9)
    assert sigmas[-2].item() == pytest.approx(sched.sigmas[0].item(), rel=1e-9)
    assert sampling_sigmas(sched, 1, spacing, sigma_max=None).tolist() == pytest.approx(
        [sched.sigmas[-1].item(), 0.0])
    # by default from σ = 80 (Karras et al. 2022), within the schedule's range either way
    assert sampling_sigmas(sched, 12, spacing)[0].item() == pytest.approx(80.0)
    lo, hi = sched.sigmas[0].item(), sched.sigmas[-1].item()
    assert sampling_sigmas(sched, 12, spacing, sigma_max=1e6)[0].item() == pytest.approx(hi)
    assert sampling_sigmas(sched, 12, spacing, sigma_min=1e-9)[-2].item() == pytest.approx(lo)


def test_spacings_follow_their_formulas():
    sched = gw.diffusion.NoiseSchedule.cosine(1000)
    lo, hi = sched.sigmas[0].item(), sched.sigmas[-1].item()
    # Karras et al. (2022), eq. 5: σ^{1/ρ} evenly spaced
    k = karras_sigmas(9, lo, hi, rho=7.0)
    np.testing.assert_allclose(np.diff(k.numpy() ** (1 / 7)), (lo ** (1 / 7) - hi ** (1 / 7)) / 8, rtol=1e-9)
    torch.testing.assert_close(sampling_sigmas(sched, 9, "karras", rho=7.0, sigma_max=None)[:-1], k)
    # ρ = 1 is evenly spaced in σ
    np.testing.assert_allclose(np.diff(karras_sigmas(5, lo, hi, rho=1.0).numpy()), (lo - hi) / 4, rtol=1e-9)
    # log-SNR: evenly spaced in log σ
    log_snr = sampling_sigmas(sched, 9, "log_snr", sigma_max=None)[:-1]
    np.testing.assert_allclose(np.diff(np.log(log_snr.numpy())), math.log(lo / hi) / 8, rtol=1e-9)
    # uniform and quadratic in t
    t_uniform = sched.sigma_to_t(sampling_sigmas(sched, 10, "uniform", sigma_max=None)[:-1])
    np.testing.assert_allclose(t_uniform.numpy(), np.linspace(999, 0, 10), atol=1e-6)
    t_quadratic = sched.sigma_to_t(sampling_sigmas(sched, 10, "quadratic", sigma_max=None)[:-1])
    np.testing.assert_allclose(t_quadratic.numpy(), 999 * np.linspace(1, 0, 10) ** 2, atol=1e-6)
    # a narrower range
    narrow = sampling_sigmas(sched, 6, "karras", sigma_max=80.0)
    assert narrow[0].item() == pytest.approx(80.0) and narrow[-2].item() == pytest.approx(lo)


# -- the denoiser --------------------------------------------------------------------------------
@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_denoiser_is_the_posterior_mean_of_gaussian_data(prediction):
    sched = gw.diffusion.NoiseSchedule.cosine(1000)
    D = Denoiser(GaussianDataModel(sched, prediction), sched, autocast=False, clip_x0=False)
    x = torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(0)) * 3
    for sigma in (0.01, 0.3, 2.0, 50.0):
        posterior_mean = (S**2 * x + sigma**2 * MU) / (S**2 + sigma**2)
        np.testing.assert_allclose(D(x, sigma).numpy(), posterior_mean.numpy(), rtol=2e-4, atol=2e-5)
    assert Denoiser(GaussianDataModel(sched), sched, autocast=False)(x * 100, 0.01).abs().max() <= 1


class _Conditional(torch.nn.Module):
    """ε = cond where the condition is kept, 0 where it is dropped."""

    cond_dim = 1

    def __init__(self) -> None:
        super().__init__()
        self.config = {"prediction": "eps"}
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, t, cond=None, drop_cond=None):
        c = cond.reshape(-1, 1, 1, 1).expand_as(x)
        return torch.where(drop_cond.reshape(-1, 1, 1, 1), torch.zeros_like(x), c)


def test_denoiser_applies_classifier_free_guidance():
    sched = gw.diffusion.NoiseSchedule.linear(100)
    cond = torch.tensor([[1.0], [-2.0]])
    D = Denoiser(_Conditional(), sched, cond=cond, guidance=3.0, autocast=False, clip_x0=False)
    x = torch.zeros(2, 1, 2, 2)
    # x̂_0 = x - σ ε with ε = 3 c (guidance 3 over a null prediction of 0)
    np.testing.assert_allclose(D(x, 0.5)[:, 0, 0, 0].numpy(), [-1.5, 3.0], rtol=1e-6)
    out = gw.samplers.euler(_Conditional(), sched, (2, 1, 2, 2), steps=3, cond=cond, guidance=3.0,
                            clip_x0=False, progress=False, x_T=x)
    assert torch.isfinite(out).all()


# -- the samplers on analytic models -------------------------------------------------------------
@pytest.mark.parametrize("name", SIGMA_SAMPLERS)
@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_an_oracle_for_one_image_is_recovered_exactly(name, prediction):
    sched = gw.diffusion.NoiseSchedule.cosine(200)
    target = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8
    model = OneImage(sched, target, prediction)
    out = _run(name, model, sched, (2, 3, 8, 8), steps=6, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, target.expand(2, -1, -1, -1), atol=1e-4, rtol=0)


# error of the probability-flow ODE solution from 20 and 40 steps (default spacing, linear schedule):
# each doubling must shrink it by about 2^order
@pytest.mark.parametrize(("name", "kwargs", "order"), [
    ("euler", {}, 1), ("heun", {}, 2), ("dpm_solver", {"order": 1}, 1), ("dpm_solver", {"order": 2}, 2),
    ("dpm_solver", {"order": 3}, 3),
])
@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_ode_samplers_converge_to_the_flow_at_their_order(name, kwargs, order, prediction):
    sched = gw.diffusion.NoiseSchedule.linear(1000)
    model = GaussianDataModel(sched, prediction)
    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    exact = _exact_flow(sched, x_T)
    errors = [(_run(name, model, sched, x_T.shape, steps=n, x_T=x_T, **kwargs) - exact).abs().max().item()
              for n in (20, 40)]
    assert errors[1] < (0.06 if order == 1 else 0.01), errors
    rate = math.log2(errors[0] / errors[1])  # (at 80 steps 3M meets the float32 floor, 2e-4)
    assert order - 0.6 < rate < order + 1, (errors, rate)


def test_euler_is_ddim_in_sigma_space_and_dpm_solver_order_1_is_euler():
    """x ← (σ'/σ) x + (1 - σ'/σ) D: the first-order DPM-Solver++ step, Euler's and DDIM's (η = 0)."""
    sched = gw.diffusion.NoiseSchedule.cosine(1000)
    model = GaussianDataModel(sched, "v")
    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    a = _run("euler", model, sched, x_T.shape, steps=9, x_T=x_T, spacing="uniform")
    b = _run("dpm_solver", model, sched, x_T.shape, steps=9, x_T=x_T, spacing="uniform", order=1)
    torch.testing.assert_close(a, b, atol=5e-4, rtol=0)  # float32 rounding at σ ~ 2e4 only
    # DDIM's grid (integer timesteps 999 .. 0 evenly) is the uniform spacing for 10 steps of 1000;
    # DDIM takes one step more, from t = 0 to the clean image, where x̂_0 hardly moves
    c = gw.samplers.ddim(model, sched, x_T.shape, steps=10, x_T=x_T, clip_x0=False, progress=False)
    d = _run("euler", model, sched, x_T.shape, steps=10, x_T=x_T, spacing="uniform")
    torch.testing.assert_close(c, d, atol=2e-3, rtol=0)


@pytest.mark.parametrize(("name", "kwargs"), [
    ("euler_ancestral", {}), ("dpm_solver", {"order": 1, "eta": 1.0}),
    ("dpm_solver", {"order": 2, "eta": 1.0}), ("dpm_solver", {"order": 3, "eta": 1.0}),
    ("euler", {"s_churn": 40.0}), ("heun", {"s_churn": 40.0}),
])
def test_stochastic_samplers_draw_the_data_distribution(name, kwargs):
    """With many steps; with few, the first-order ones draw too narrow a distribution (60 steps:
    σ 21 % low for ancestral Euler, as for DDPM's strided ancestral step) and the second-order
    ones too wide (+9 %), converging as the steps grow."""
    sched = gw.diffusion.NoiseSchedule.cosine(1000)
    x = _run(name, GaussianDataModel(sched), sched, (4, 1, 32, 32), steps=500,
             generator=torch.Generator().manual_seed(5), **kwargs)
    n = x.numel()  # 4096 independent pixels
    assert abs(x.mean().item() - MU) < 4 * S / math.sqrt(n)
    assert abs(x.std().item() / S - 1) < 0.045


@pytest.mark.parametrize("name", ["euler", "heun"])
def test_churn_raises_the_noise_level_inside_its_window(name):
    """Karras et al. (2022), Alg. 2: σ̂ = σ_i (1 + γ), γ = min(S_churn / N, √2 - 1) on [S_tmin, S_tmax]."""
    sched = gw.diffusion.NoiseSchedule.cosine(1000)
    model = GaussianDataModel(sched)
    levels = sampling_sigmas(sched, 5, "log_snr").tolist()[:-1]
    calls = []
    churned = _run(name, model, sched, (2, 1, 8, 8), steps=5, s_churn=1.0, s_tmin=0.5, s_tmax=10.0,
                   callback=calls.append, generator=torch.Generator().manual_seed(3))
    expected = [s * 1.2 if 0.5 <= s <= 10.0 else s for s in levels]
    assert [c["sigma"] for c in calls] == pytest.approx(expected)
    assert sum(e != s for e, s in zip(expected, levels)) == 2  # only the levels inside the window
    plain = _run(name, model, sched, (2, 1, 8, 8), steps=5, generator=torch.Generator().manual_seed(3))
    assert not torch.allclose(churned, plain, atol=1e-3)
    calls.clear()
    _run(name, model, sched, (2, 1, 8, 8), steps=5, s_churn=10.0, callback=calls.append)
    assert [c["sigma"] for c in calls] == pytest.approx([s * math.sqrt(2) for s in levels])


@pytest.mark.parametrize("name", SIGMA_SAMPLERS)
def test_callback_reports_every_step_in_ddims_form_plus_sigma(name):
    sched = gw.diffusion.NoiseSchedule.cosine(100)
    calls = []
    out = _run(name, GaussianDataModel(sched, "v"), sched, (2, 1, 8, 8), steps=5, callback=calls.append,
               generator=torch.Generator().manual_seed(0))
    assert [c["i"] for c in calls] == list(range(5))
    assert set(calls[0]) == {"i", "t", "sigma", "x", "x0_pred"}
    sigmas = sampling_sigmas(sched, 5, "log_snr").tolist()
    assert [c["sigma"] for c in calls] == pytest.approx(sigmas[:-1])
    assert [c["t"] for c in calls] == pytest.approx(sched.sigma_to_t(torch.tensor(sigmas[:-1])).tolist())
    assert calls[0]["sigma"] == pytest.approx(80) and calls[-1]["t"] == pytest.approx(0, abs=1e-6)
    assert 90 < calls[0]["t"] < 99  # σ = 80 of the 100-step cosine schedule
    # x is the VP sample the network sees (unit variance at the start), not x_0 + σ n
    assert 0.5 < calls[0]["x"].std().item() < 2 and calls[-1]["x0_pred"].shape == out.shape


@pytest.mark.parametrize("name", SIGMA_SAMPLERS)
def test_a_generator_fixes_the_samples(name):
    sched = gw.diffusion.NoiseSchedule.cosine(100)
    model = GaussianDataModel(sched)
    runs = [_run(name, model, sched, (2, 1, 8, 8), steps=4, generator=torch.Generator().manual_seed(s))
            for s in (1, 1, 2)]
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_the_same_x_T_starts_every_sampler_alike():
    """Common random numbers: every ODE sampler maps one x_T to nearly the same galaxy."""
    sched = gw.diffusion.NoiseSchedule.linear(1000)
    model = GaussianDataModel(sched)
    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    ddim = gw.samplers.ddim(model, sched, x_T.shape, steps=100, x_T=x_T, clip_x0=False, progress=False)
    for name in ("dpm_solver", "euler", "heun"):
        out = _run(name, model, sched, x_T.shape, steps=50, x_T=x_T)
        torch.testing.assert_close(out, ddim, atol=0.05, rtol=0)


# -- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SIGMA_SAMPLERS)
def test_bad_sampler_settings_are_named(name):
    sched = gw.diffusion.NoiseSchedule.linear(10)
    model = GaussianDataModel(sched)
    fn, shape = getattr(gw.samplers, name), (1, 1, 4, 4)
    for steps in (0, 11, 2.5, True):
        with pytest.raises(ValueError, match=r"^steps: expected an integer in 1\.\.10 \(the schedule's T\)"):
            fn(model, sched, shape, steps=steps, progress=False)
    for rho in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match=r"^rho: expected a finite positive number"):
            fn(model, sched, shape, steps=3, rho=rho, progress=False)
    with pytest.raises(ValueError, match=r"^spacing: expected one of 'uniform', 'quadratic', 'log_snr', "
                                         "'karras', got 'linear'"):
        fn(model, sched, shape, steps=3, spacing="linear", progress=False)
    with pytest.raises(ValueError, match=r"^sigma_min, sigma_max: expected sigma_min < sigma_max"):
        fn(model, sched, shape, steps=3, sigma_max=1e-4, progress=False)
    with pytest.raises(ValueError, match=r"^s_noise: expected a number >= 0"):
        fn(model, sched, shape, steps=3, s_noise=-1, progress=False)


def test_dpm_solver_defaults_to_third_order_unguided_and_second_order_guided():
    """Lu et al. (2022b): 3M for unconditional sampling, 2M under classifier-free guidance."""
    sched = gw.diffusion.NoiseSchedule.linear(1000)
    x_T = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(6))
    model = GaussianDataModel(sched)
    by_order = {k: _run("dpm_solver", model, sched, x_T.shape, steps=8, x_T=x_T, order=k) for k in (2, 3)}
    assert not torch.allclose(by_order[2], by_order[3])
    torch.testing.assert_close(_run("dpm_solver", model, sched, x_T.shape, steps=8, x_T=x_T), by_order[3])
    class Guided(GaussianDataModel):  # the Gaussian ε, scaled by (1 + c) where the condition is kept
        cond_dim = 1

        def forward(self, x, t, cond=None, drop_cond=None):
            scale = 1 + torch.where(drop_cond, 0.0, cond.reshape(-1)).reshape(-1, 1, 1, 1)
            return super().forward(x, t) * scale

    cond = torch.tensor([[0.1], [-0.2]])
    guided = {k: _run("dpm_solver", Guided(sched), sched, x_T.shape, steps=8, x_T=x_T, cond=cond, guidance=2,
                      order=k) for k in (None, 2, 3)}
    torch.testing.assert_close(guided[None], guided[2])
    assert not torch.allclose(guided[2], guided[3])


def test_dpm_solver_3m_sde_is_the_third_order_sde_solver_and_second_under_guidance():
    sched = gw.diffusion.NoiseSchedule.cosine(1000)
    model = GaussianDataModel(sched)
    runs = [_run(name, model, sched, (2, 1, 8, 8), steps=6, generator=torch.Generator().manual_seed(9), **kw)
            for name, kw in (("dpm_solver_3m_sde", {}), ("dpm_solver", {"order": 3, "eta": 1.0}),
                             ("dpm_solver_sde", {}))]
    assert torch.equal(runs[0], runs[1]) and not torch.allclose(runs[0], runs[2])
    conditional = GaussianDataModel(sched)
    conditional.cond_dim = 1  # (it ignores the condition: only the order chosen under guidance matters)
    seeded = torch.Generator().manual_seed
    guided = [_run(name, conditional, sched, (2, 1, 8, 8), steps=6, generator=seeded(9),
                   cond=torch.zeros(2, 1), guidance=2.0) for name in ("dpm_solver_3m_sde", "dpm_solver_sde")]
    assert torch.equal(guided[0], guided[1])


def test_dpm_solver_sde_is_the_second_order_sde_solver():
    sched = gw.diffusion.NoiseSchedule.cosine(1000)
    model = GaussianDataModel(sched)
    runs = [_run(name, model, sched, (2, 1, 8, 8), steps=6, generator=torch.Generator().manual_seed(9), **kw)
            for name, kw in (("dpm_solver_sde", {}), ("dpm_solver", {"order": 2, "eta": 1.0}),
                             ("dpm_solver", {"order": 2}))]
    assert torch.equal(runs[0], runs[1]) and not torch.allclose(runs[0], runs[2])


def test_bad_dpm_solver_and_ancestral_settings_are_named():
    sched = gw.diffusion.NoiseSchedule.linear(10)
    model = GaussianDataModel(sched)
    for order in (0, 4, 2.0, True):
        with pytest.raises(ValueError, match=r"^order: expected 1, 2, 3 or None, got"):
            gw.samplers.dpm_solver(model, sched, (1, 1, 4, 4), steps=3, order=order, progress=False)
    with pytest.raises(ValueError, match=r"^eta: expected a number >= 0, got -0.5"):
        gw.samplers.dpm_solver(model, sched, (1, 1, 4, 4), steps=3, eta=-0.5, progress=False)
    with pytest.raises(ValueError, match=r"^eta: expected a number >= 0"):
        gw.samplers.euler_ancestral(model, sched, (1, 1, 4, 4), steps=3, eta=-1, progress=False)
    with pytest.raises(ValueError, match=r"^s_churn: expected a number >= 0"):
        gw.samplers.heun(model, sched, (1, 1, 4, 4), steps=3, s_churn=-1, progress=False)


# -- Checkpoint.sample ---------------------------------------------------------------------------
@pytest.mark.parametrize("sampler", sorted(gw.samplers.SAMPLERS))
def test_checkpoint_sample_offers_every_sampler(tiny, sampler):
    survey = tiny.sample(2, sampler=sampler, steps=3, seed=1, progress=False)
    assert survey.images.shape == (2, 3, 32, 32) and np.isfinite(survey.images).all()
    assert survey.meta["sampler"] == sampler
    assert survey.meta["steps"] == (None if sampler == "ddpm" else 3)
    again = tiny.sample(2, sampler=sampler, steps=3, seed=1, progress=False)
    np.testing.assert_array_equal(survey.images, again.images)


def test_checkpoint_sample_defaults_to_the_measured_default_and_the_samplers_own_steps(tiny):
    from galwidgets.diffusion.samplers import DEFAULT_SAMPLER, DEFAULT_STEPS

    meta = tiny.sample(1, progress=False).meta
    assert (meta["sampler"], meta["steps"]) == (DEFAULT_SAMPLER, DEFAULT_STEPS)
    assert tiny.sample(1, sampler="ddim", progress=False).meta["steps"] == 50
    assert tiny.sample(1, sampler="euler", progress=False).meta["steps"] == 25
    assert tiny.sample(1, sampler="ddpm", steps=None, progress=False).meta["steps"] is None
    # the default sampler's own default steps are DEFAULT_STEPS (widgets read either)
    assert gw.samplers.default_steps(DEFAULT_SAMPLER) == DEFAULT_STEPS
    assert gw.samplers.default_steps("ddpm") is None
    # the default is the same draw as naming it
    np.testing.assert_array_equal(
        tiny.sample(2, seed=3, progress=False).images,
        tiny.sample(2, sampler=DEFAULT_SAMPLER, steps=DEFAULT_STEPS, seed=3, progress=False).images)


def test_a_recorded_guidance_is_the_default_of_conditioned_draws(z_checkpoint, guided_z_checkpoint):
    """``config["sampling"]["guidance"]`` is what ``sample(cond=...)`` uses when no guidance is
    given; an explicit value wins; a draw without a condition stays unguided (1)."""
    import copy

    guided, z = guided_z_checkpoint, np.array([0.05, 0.1])
    assert z_checkpoint.default_guidance == 1.0 and guided.default_guidance == 1.5
    by_default = guided.sample(2, steps=2, seed=1, cond=z, progress=False)
    assert by_default.meta["guidance"] == 1.5
    explicit = z_checkpoint.sample(2, steps=2, seed=1, cond=z, guidance=1.5, progress=False)
    np.testing.assert_array_equal(by_default.images, explicit.images)
    plain = guided.sample(2, steps=2, seed=1, cond=z, guidance=1.0, progress=False)
    assert plain.meta["guidance"] == 1.0 and not np.array_equal(plain.images, by_default.images)
    assert guided.sample(1, steps=2, progress=False).meta["guidance"] == 1.0  # no cond: no guidance
    assert gw.pretrained.load("hsc-z-tiny").default_guidance == RECIPES["hsc-z-tiny"]["sampling"]["guidance"]
    for bad, error in (("x", TypeError), (-1.0, ValueError), (float("nan"), ValueError)):
        config = {**copy.deepcopy(z_checkpoint.config), "sampling": {"guidance": bad}}
        broken = gw.Checkpoint(z_checkpoint.model, z_checkpoint.schedule, z_checkpoint.normalizer, config)
        with pytest.raises(error, match=r"sampling\.guidance"):
            broken.sample(1, steps=2, cond=[0.1], progress=False)


def test_a_checkpoint_that_records_its_sampler_draws_with_it_by_default(tiny):
    """``config["sampling"]`` (written by a recipe's ``"sampling"``) sets what ``sample()`` uses when
    no sampler is named; naming a sampler gives that sampler's own default steps."""
    import copy

    own = gw.Checkpoint(tiny.model, tiny.schedule, tiny.normalizer,
                        {**copy.deepcopy(tiny.config), "sampling": {"sampler": "ddim", "steps": 4}})
    assert own.default_sampler == ("ddim", 4)
    assert own.resolve_sampler() == ("ddim", 4) and own.resolve_sampler(None, 6) == ("ddim", 6)
    assert own.resolve_sampler("euler") == ("euler", 25) and own.resolve_sampler("ddpm", 5) == ("ddpm", None)
    assert tiny.resolve_sampler() == (gw.samplers.DEFAULT_SAMPLER, gw.samplers.DEFAULT_STEPS)
    assert (own.sample(1, progress=False).meta["sampler"], own.sample(1, progress=False).meta["steps"]) == (
        "ddim", 4)
    assert own.sample(1, steps=6, progress=False).meta["steps"] == 6
    assert own.sample(1, sampler="ddim", progress=False).meta["steps"] == 50
    np.testing.assert_array_equal(own.sample(2, seed=3, progress=False).images,
                                  tiny.sample(2, sampler="ddim", steps=4, seed=3, progress=False).images)
    only_name = gw.Checkpoint(tiny.model, tiny.schedule, tiny.normalizer,
                              {**tiny.config, "sampling": {"sampler": "euler"}})
    assert only_name.default_sampler == ("euler", 25)
    assert gw.pretrained.load("hsc-z-tiny").default_sampler == ("ddim", 25)
    assert gw.pretrained.load("desi-tiny").default_sampler == (gw.samplers.DEFAULT_SAMPLER,
                                                               gw.samplers.DEFAULT_STEPS)
    bad = gw.Checkpoint(tiny.model, tiny.schedule, tiny.normalizer,
                        {**tiny.config, "sampling": {"sampler": "x"}})
    with pytest.raises(ValueError, match="sampler: expected one of"):
        bad.sample(1, progress=False)
    with pytest.raises(ValueError, match=r"sampler: expected one of .* got 'dpm'"):
        tiny.resolve_sampler("dpm")


def test_checkpoint_sample_names_bad_sampler_settings(tiny):
    with pytest.raises(ValueError, match=r"^sampler: expected one of 'ddim', 'ddpm', 'dpm_solver', "
                                         "'dpm_solver_sde', 'dpm_solver_3m_sde', 'euler', 'euler_ancestral', "
                                         "'heun', got 'dpm'"):
        tiny.sample(1, sampler="dpm", progress=False)
    for steps in (0, 101, 1.5):
        with pytest.raises(ValueError, match=r"^steps: expected an integer in 1\.\.100"):
            tiny.sample(1, sampler="euler", steps=steps, progress=False)
    with pytest.raises(ValueError, match=r"^order: expected 1, 2, 3 or None, got 4"):
        tiny.sample(1, sampler="dpm_solver", steps=2, order=4, progress=False)
    with pytest.raises(ValueError, match=r"^rho: expected a finite positive number"):
        tiny.sample(1, sampler="heun", steps=2, rho=0, progress=False)


def test_network_evaluations_count_what_each_sampler_calls():
    assert gw.samplers.network_evaluations("dpm_solver", 12, 1000) == 12
    assert gw.samplers.network_evaluations("heun", 8, 1000) == 15  # trial + corrector but the last step
    assert gw.samplers.network_evaluations("ddpm", None, 1000) == 1000
    default = gw.samplers.DEFAULT_SAMPLER
    assert gw.samplers.network_evaluations(default, None, 1000) == gw.samplers.DEFAULT_STEPS
    with pytest.raises(ValueError, match="sampler"):
        gw.samplers.network_evaluations("plms", 10, 1000)
    with pytest.raises(ValueError, match="steps"):
        gw.samplers.network_evaluations("ddim", 0, 1000)
