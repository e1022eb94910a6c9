import ipywidgets as W
import numpy as np
import pytest
import traitlets as T

import galwidgets as gw
from galwidgets.diffusion.samplers import DEFAULT_SAMPLER, DEFAULT_STEPS, SAMPLERS, ddim_timesteps
from galwidgets.diffusion.schedules import sampling_sigmas
from galwidgets.widgets import DiffusionStepper

pytest.importorskip("holoviews")
pytest.importorskip("panel")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoint(tiny):
    return tiny


@pytest.fixture
def schedule_only(survey):
    return DiffusionStepper(gw.diffusion.NoiseSchedule.cosine(60), galaxies=survey[:3])


def _marker_y(view, panel: int) -> float:
    """y of the black marker (at t) in plot ``panel`` (0: ᾱ_t, 1: SNR), for the streams' current values."""
    overlay = view.schedule_pane.object[panel][()]
    return float(overlay.Points.I.data.iloc[0, 1])


def test_forward_slider_shows_q_sample_with_fixed_noise(schedule_only, survey):
    stepper = schedule_only
    state, view = stepper.state, stepper.view
    assert isinstance(view, W.VBox) and isinstance(view.schedule_plot, W.DOMWidget)
    assert "application/vnd.jupyter.widget-view+json" in stepper._repr_mimebundle_()
    a_bar = state.schedule.alphas_cumprod.numpy()
    x0, noise = state.x0(), state.noise()
    np.testing.assert_allclose(x0, state.normalizer.forward(survey.images[:1])[0], rtol=1e-6)
    before = view.forward_image.value
    view.t.value = 30  # the control drives the state, the image and the markers
    assert state.t == 30 and view.forward_image.value != before
    np.testing.assert_allclose(state.x_t(), np.sqrt(a_bar[30]) * x0 + np.sqrt(1 - a_bar[30]) * noise,
                               rtol=1e-5, atol=1e-6)
    assert state.alpha_bar_t == pytest.approx(a_bar[30])
    assert state.snr_t == pytest.approx(a_bar[30] / (1 - a_bar[30]))
    assert _marker_y(view, 0) == pytest.approx(a_bar[30]) and _marker_y(view, 1) == pytest.approx(state.snr_t)
    assert f"ᾱ_t = {a_bar[30]:.4f}" in view.forward_label.value
    np.testing.assert_array_equal(state.x_t(), state.x_t())  # fixed noise: the same x_t again
    state.t = 0
    assert np.abs(state.x_t() - x0).max() < 5 * np.sqrt(1 - a_bar[0])  # nearly clean at t = 0
    state.noise_seed = 1
    assert not np.allclose(state.noise(), noise)
    table = state.schedule_table()
    assert len(table) == 60 and table["alpha_bar"].is_monotonic_decreasing
    np.testing.assert_allclose(table["snr"], table["alpha_bar"] / (1 - table["alpha_bar"]), rtol=1e-10)


def test_band_display_and_nan_pixels(survey):
    galaxies = survey.images[:2].copy()
    galaxies[0, :, 5, 7] = np.nan
    stepper = DiffusionStepper(gw.diffusion.NoiseSchedule.linear(40), galaxies=galaxies, t=10)
    state, view = stepper.state, stepper.view
    x_t = state.x_t()
    assert np.isnan(x_t[:, 5, 7]).all() and np.isfinite(x_t).sum() == x_t.size - 3
    rgb = state.picture(x_t)
    assert rgb.shape == (32, 32, 3) and (rgb[5, 7] == 0).all()  # NaN shows black
    before = view.forward_image.value
    view.display.value = "band"
    assert view.forward_image.value != before
    ones = np.ones((3, 32, 32), np.float32)
    ones[1, 0, 0] = -1.0
    grey = state.picture(ones)  # band 1 (r) in model space: +1 white, -1 black
    assert grey[1, 1, 0] == 255 and grey[0, 0, 0] == 0


def test_schedule_only_disables_the_reverse_process(schedule_only):
    state, view = schedule_only.state, schedule_only.view
    assert not state.can_reverse and view.run_button.disabled
    with pytest.raises(ValueError, match="checkpoint: the reverse process needs a trained model"):
        state.run_reverse()
    view.run()
    assert "needs a trained model" in view.status.value and state.frames == []
    assert state.frame_t is None and view.frame_label.value == "no reverse run yet"


def test_reverse_player_records_ddim_and_ddpm_frames(checkpoint):
    stepper = DiffusionStepper(checkpoint, sampler="ddim", steps=4)
    state, view = stepper.state, stepper.view
    assert state.galaxies.shape == (4, 3, 32, 32) and state.can_reverse and not view.run_button.disabled
    view.threaded = False
    view.run_button.click()
    frames = state.frames
    assert len(frames) == 4 and [f["i"] for f in frames] == [0, 1, 2, 3]
    assert [f["t"] for f in frames] == ddim_timesteps(100, 4).tolist()
    assert frames[0]["x"].shape == (3, 32, 32) and frames[0]["x0_pred"].shape == (3, 32, 32)
    assert view.play.max == view.frame.max == 3 and view.progress.value == 4
    first_x = view.x_image.value
    view.frame.value = 3  # the player's slider drives the state and both images
    assert state.frame == 3 and view.x_image.value != first_x
    assert view.x0_image.value == state.png(frames[3]["x0_pred"])
    assert state.frame_t == frames[3]["t"] and view._frame_stream.contents["frame_t"] == frames[3]["t"]
    assert "step 4 of 4" in view.frame_label.value
    again = state.run_reverse()  # same seed: the same trajectory; new frames rewind the player
    np.testing.assert_array_equal(again[-1]["x0_pred"], frames[-1]["x0_pred"])
    assert state.frame == 0
    state.sampler = "ddpm"
    assert view.steps.disabled
    assert len(state.run_reverse()) == 100 and [f["t"] for f in state.frames[:2]] == [99, 98]


def test_the_stepper_switches_sampler_and_shows_each_ones_steps(checkpoint):
    stepper = DiffusionStepper(checkpoint)
    state, view = stepper.state, stepper.view
    assert (state.sampler, state.steps) == (DEFAULT_SAMPLER, DEFAULT_STEPS)
    assert tuple(view.sampler.options) == tuple(SAMPLERS) and view.sampler.value == DEFAULT_SAMPLER
    view.threaded = False
    state.steps = 5
    view.run()
    frames = state.frames
    # DPM-Solver++ over the noise levels σ: one frame per step at the fractional timestep of σ
    sigmas = sampling_sigmas(state.schedule, 5, "log_snr")[:-1]
    assert [f["sigma"] for f in frames] == pytest.approx(sigmas.tolist())
    assert [f["t"] for f in frames] == pytest.approx(state.schedule.sigma_to_t(sigmas).tolist())
    assert isinstance(frames[1]["t"], float) and state.frame_t == round(frames[0]["t"])
    assert view.progress.value == 5 and "σ = 80" in view.frame_label.value
    assert view.eta.disabled is False and state.eta == 1.0  # the SDE default: η = 1
    view.sampler.value = "heun"  # the dropdown drives the state; Heun takes no η
    assert state.sampler == "heun" and view.eta.disabled and not view.steps.disabled and state.eta == 0
    state.sampler = "ddim"  # choosing a sampler sets its own default η
    assert state.eta == 0.0 and DiffusionStepper(checkpoint, sampler="ddim", eta=0.5).state.eta == 0.5
    state.sampler = "heun"
    heun = state.run_reverse()
    assert len(heun) == 5 and not np.array_equal(heun[-1]["x0_pred"], frames[-1]["x0_pred"])
    state.sampler, state.eta = "euler_ancestral", 1.0  # η reaches the samplers that take it
    a = state.run_reverse()[-1]["x0_pred"]
    state.eta = 0.0
    b = state.run_reverse()[-1]["x0_pred"]
    assert not np.allclose(a, b)
    with pytest.raises(T.TraitError):
        state.sampler = "plms"


def test_bad_arguments_raise(checkpoint, survey):
    with pytest.raises(TypeError, match="checkpoint: expected a Checkpoint"):
        DiffusionStepper(3.0)
    with pytest.raises(ValueError, match="galaxies: expected 3 channels"):
        DiffusionStepper(checkpoint, galaxies=survey.images[:, :2])
    with pytest.raises(ValueError, match=r"t: expected an integer in 0\.\.39, got 40"):
        DiffusionStepper(gw.diffusion.NoiseSchedule.linear(40), galaxies=survey[:1], t=40)
    state = DiffusionStepper(gw.diffusion.NoiseSchedule.linear(40), galaxies=survey[:1]).state
    with pytest.raises(T.TraitError, match=r"galaxy: expected an integer in 0\.\.0"):
        state.galaxy = 1
    with pytest.raises(ValueError, match="which: expected 'x' or 'x0_pred'"):
        state.frame_png("eps")
