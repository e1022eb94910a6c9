"""Golden tests: the σ-space samplers against diffusers' schedulers driving the same network.

Both sides call one tiny U-Net (random weights, seeded) through a recorder, from the same start
and (for the stochastic samplers) the same generator; every network call (its input and timestep)
and the result must agree to float32 tolerance. diffusers is a test extra, not a dependency: the
module skips without it.

How the two are lined up: a pipeline starts from ``init_noise_sigma · n``, galwidgets from
``√(1 + σ_0²) x_T`` (the VP noise of DDIM), so both start here from our start. diffusers'
``DPMSolverMultistepScheduler`` rounds the timestep it gives the network to an integer where the
noise level falls between training timesteps (Karras spacing); galwidgets, like k-diffusion, calls
the network at the fractional timestep of σ, so for that case the test calls the network at
diffusers' own ``_sigma_to_t`` of its σ. ``EulerAncestralDiscreteScheduler`` and the DPM-Solver
with custom timesteps run on integer timesteps (``steps=10`` of 1000: 999, 888, ..., 0), where the
uniform spacing of both is the same.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import galwidgets as gw

diffusers = pytest.importorskip("diffusers")

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              # diffusers builds numpy arrays from tensors in a way numpy 2 deprecates
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

SHAPE = (2, 3, 16, 16)
TOL = {"atol": 2e-4, "rtol": 2e-4}


class Recorder(torch.nn.Module):
    """A tiny U-Net that logs every call's input and (scalar) timestep."""

    def __init__(self, prediction: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = gw.models.UNet(in_channels=3, base_channels=8, channel_mults=(1, 2), attention_levels=(1,),
                                  groups=4, heads=2, prediction=prediction).eval()
        # random weights give outputs of order 0.01; scale the last layer so the steps matter
        with torch.no_grad():
            for p in self.net.conv_out.parameters():
                p.normal_(0, 0.2, generator=torch.Generator().manual_seed(1))
        self.config = self.net.config
        self.cond_dim = 0
        self.calls: list[tuple[np.ndarray, float]] = []

    def forward(self, x, t, cond=None, drop_cond=None):
        t = torch.as_tensor(t, dtype=torch.float32).reshape(-1)
        self.calls.append((x.detach().double().numpy().copy(), float(t[0])))
        return self.net(x, t.expand(len(x)), cond, drop_cond)


def _schedule(kind: str) -> gw.diffusion.NoiseSchedule:
    return getattr(gw.diffusion.NoiseSchedule, kind)(1000)


def _peer(cls, schedule: gw.diffusion.NoiseSchedule, prediction: str, **config):
    """A diffusers scheduler on the same schedule; its ᾱ in float64 like ours (it builds them in
    float32, which moves the cosine schedule's σ_max by 3e-5 and fractional timesteps by 0.004)."""
    peer = cls(num_train_timesteps=schedule.T, trained_betas=schedule.betas.numpy(),
               prediction_type={"eps": "epsilon", "v": "v_prediction"}[prediction], **config)
    peer.alphas_cumprod = schedule.alphas_cumprod.clone()
    return peer


def _ours(fn, model: Recorder, schedule, x_T: torch.Tensor, **kwargs) -> tuple[torch.Tensor, list]:
    model.calls.clear()
    out = fn(model, schedule, SHAPE, x_T=x_T, clip_x0=False, autocast=False, channels_last=False,
             progress=False, **kwargs)
    return out, list(model.calls)


@torch.no_grad()
def _theirs(scheduler, model: Recorder, x_T: torch.Tensor, timestep_of=None, **step_kwargs):
    """diffusers' denoising loop, as its pipelines write it, from our starting sample."""
    model.calls.clear()
    sigma_0 = float(scheduler.sigmas[0])
    sample = x_T * (1 + sigma_0**2) ** 0.5
    if isinstance(scheduler, diffusers.DPMSolverMultistepScheduler):
        sample = x_T.clone()  # DPM-Solver works on the VP sample x_t itself
    # count steps from the first; found by timestep, repeated (rounded) timesteps lose the count
    scheduler.set_begin_index(0)
    for i, t in enumerate(scheduler.timesteps):
        model_input = scheduler.scale_model_input(sample, t)
        t_net = t if timestep_of is None else timestep_of(scheduler, i)
        out = model(model_input, t_net)
        sample = scheduler.step(out, t, sample, **step_kwargs).prev_sample
    return sample, list(model.calls)


def _assert_close(actual, desired, err_msg: str = "") -> None:
    """TOL, plus float32 round-off at the array's scale: with Karras σ the arrays reach 1e4-1e5,
    where the two implementations' different operation orders leave a few 1e-3 (about one float32
    ulp at that scale) on the elements of order 1-10."""
    desired = np.asarray(desired, dtype=np.float64)
    atol = TOL["atol"] + 1e-6 * float(np.abs(desired).max())
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), desired, rtol=TOL["rtol"], atol=atol,
                               err_msg=err_msg)


def _compare(ours, theirs):
    (x_ours, calls_ours), (x_theirs, calls_theirs) = ours, theirs
    assert len(calls_ours) == len(calls_theirs)
    for k, ((a, ta), (b, tb)) in enumerate(zip(calls_ours, calls_theirs)):
        assert ta == pytest.approx(tb, abs=2e-3), f"timestep of call {k}"
        _assert_close(a, b, err_msg=f"network input of call {k}")
    _assert_close(x_ours.double().numpy(), x_theirs.double().numpy())


def _x_T(seed: int = 0) -> torch.Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed))


def _continuous_t(scheduler, i: int) -> float:
    log_sigmas = np.log(((1 - scheduler.alphas_cumprod) / scheduler.alphas_cumprod).numpy() ** 0.5)
    return float(scheduler._sigma_to_t(np.array(float(scheduler.sigmas[i])), log_sigmas))


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_euler_karras_matches_euler_discrete_scheduler(kind, prediction):
    sched, model = _schedule(kind), Recorder(prediction)
    peer = _peer(diffusers.EulerDiscreteScheduler, sched, prediction, use_karras_sigmas=True)
    peer.set_timesteps(8)
    _compare(_ours(gw.samplers.euler, model, sched, _x_T(), steps=8, spacing="karras", sigma_max=None),
             _theirs(peer, model, _x_T()))


@pytest.mark.parametrize("spacing", ["uniform", "quadratic", "log_snr", "karras"])
def test_euler_on_our_spacings_matches_euler_discrete_scheduler_given_the_sigmas(spacing):
    """Our default range, σ_0 .. 80, handed to diffusers as custom sigmas."""
    sched, model = _schedule("linear"), Recorder("v")
    sigmas = gw.diffusion.schedules.sampling_sigmas(sched, 7, spacing)
    peer = _peer(diffusers.EulerDiscreteScheduler, sched, "v")
    peer.set_timesteps(sigmas=sigmas.tolist())
    _compare(_ours(gw.samplers.euler, model, sched, _x_T(1), steps=7, spacing=spacing),
             _theirs(peer, model, _x_T(1)))


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_heun_karras_matches_heun_discrete_scheduler(kind, prediction):
    sched, model = _schedule(kind), Recorder(prediction)
    peer = _peer(diffusers.HeunDiscreteScheduler, sched, prediction, use_karras_sigmas=True)
    peer.set_timesteps(6)
    ours = _ours(gw.samplers.heun, model, sched, _x_T(2), steps=6, spacing="karras", sigma_max=None)
    assert len(ours[1]) == 2 * 6 - 1  # the last step, to σ = 0, is an Euler step
    _compare(ours, _theirs(peer, model, _x_T(2)))


@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_euler_ancestral_matches_euler_ancestral_discrete_scheduler(prediction):
    sched, model = _schedule("linear"), Recorder(prediction)
    peer = _peer(diffusers.EulerAncestralDiscreteScheduler, sched, prediction)
    peer.set_timesteps(10)
    assert peer.timesteps.tolist() == [999, 888, 777, 666, 555, 444, 333, 222, 111, 0]
    ours = _ours(gw.samplers.euler_ancestral, model, sched, _x_T(3), steps=10, spacing="uniform",
                 sigma_max=None, generator=torch.Generator().manual_seed(7))
    _compare(ours, _theirs(peer, model, _x_T(3), generator=torch.Generator().manual_seed(7)))


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_dpm_solver_matches_dpm_solver_multistep_on_integer_timesteps(order, prediction):
    sched, model = _schedule("linear"), Recorder(prediction)
    peer = _peer(diffusers.DPMSolverMultistepScheduler, sched, prediction, solver_order=order)
    peer.set_timesteps(timesteps=list(range(999, -1, -111)))
    ours = _ours(gw.samplers.dpm_solver, model, sched, _x_T(4), steps=10, spacing="uniform", sigma_max=None,
                 order=order)
    _compare(ours, _theirs(peer, model, _x_T(4)))


@pytest.mark.parametrize("order", [2, 3])
@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("steps", [8, 20])
def test_dpm_solver_karras_matches_dpm_solver_multistep(order, kind, steps):
    """Karras levels, 8 steps (the last but one lowered to second order) and 20 (not lowered)."""
    sched, model = _schedule(kind), Recorder("v")
    peer = _peer(diffusers.DPMSolverMultistepScheduler, sched, "v", solver_order=order,
                 use_karras_sigmas=True)
    peer.set_timesteps(steps)
    ours = _ours(gw.samplers.dpm_solver, model, sched, _x_T(5), steps=steps, order=order, spacing="karras",
                 sigma_max=None)
    _compare(ours, _theirs(peer, model, _x_T(5), timestep_of=_continuous_t))


# Not order 3: diffusers' third-order "sde-dpmsolver++" update (added in diffusers PR #9104) weights
# the second difference D2 by (1 - e^{-2h} - 2h) / (2h)^2 - 1/2, which tends to -1 as h -> 0, where
# the exponential integrator's weight -φ_3(2h) = 1/2 - (e^{-2h} - 1 + 2h) / (2h)^2 tends to 0 (as in
# its own ODE branch with h for 2h, and in k-diffusion's sample_dpmpp_3m_sde). Ours is the latter; it
# is checked against the Gaussian's exact distribution in test_samplers_sigma.py instead.
@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("prediction", ["eps", "v"])
def test_dpm_solver_sde_matches_sde_dpmsolver_plus_plus(order, prediction):
    sched, model = _schedule("linear"), Recorder(prediction)
    peer = _peer(diffusers.DPMSolverMultistepScheduler, sched, prediction, solver_order=order,
                 algorithm_type="sde-dpmsolver++")
    peer.set_timesteps(timesteps=list(range(999, -1, -111)))
    ours = _ours(gw.samplers.dpm_solver, model, sched, _x_T(6), steps=10, spacing="uniform", sigma_max=None,
                 order=order, eta=1.0, generator=torch.Generator().manual_seed(8))
    _compare(ours, _theirs(peer, model, _x_T(6), generator=torch.Generator().manual_seed(8)))


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_noise_level_spacings_match_diffusers(kind):
    sched = _schedule(kind)
    for config, spacing in (({"use_karras_sigmas": True}, "karras"),
                            ({"use_exponential_sigmas": True}, "log_snr"), ({}, "uniform")):
        peer = _peer(diffusers.EulerDiscreteScheduler, sched, "eps", **config)
        peer.set_timesteps(10)  # linspace: integer timesteps 999, 888, ..., 0 for 10 steps of 1000
        ours = gw.diffusion.schedules.sampling_sigmas(sched, 10, spacing, sigma_max=None)
        np.testing.assert_allclose(ours.numpy(), peer.sigmas.double().numpy(), rtol=1e-4, err_msg=spacing)
