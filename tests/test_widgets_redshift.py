import asyncio
import copy
import dataclasses
import json

import ipywidgets as W
import numpy as np
import pandas as pd
import pytest
import traitlets as T

import galwidgets as gw
from galwidgets.checkpoints import ExtrapolationWarning, trained_condition_range
from galwidgets.widgets import RedshiftExplorer, measurement_band, size_and_surface_brightness

pytest.importorskip("holoviews")
pytest.importorskip("panel")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def explorer(z_checkpoint, survey):
    return RedshiftExplorer(z_checkpoint, reference=survey, n=3, steps=2)


def test_draw_measures_galaxies_into_history_and_advances_seed(explorer, survey):
    state = explorer.state
    z = survey.catalog["redshift"].to_numpy()
    assert z.min() <= state.redshift <= z.max()  # default: the survey's median redshift
    assert len(state.history) == 0 and state.samples is None
    state.redshift, state.guidance, state.seed = 0.05, 2.0, 7
    first = state.draw().copy()
    assert first.shape == (3, 3, 32, 32) and np.isfinite(first).all() and not state.busy
    history = state.history
    assert list(history.columns) == ["redshift", "guidance", "seed", "index", "r_half", "mag", "mu_e",
                                     "colour", "flag"]
    assert len(history) == 3 and (history["redshift"] == 0.05).all() and (history["guidance"] == 2.0).all()
    assert (history["seed"] == 7).all() and state.seed == 8
    expected = size_and_surface_brightness(first, survey.bands, survey.zeropoint, survey.pixel_scale)
    np.testing.assert_allclose(history["r_half"], expected["r_half"])
    np.testing.assert_allclose(history["mu_e"], expected["mu_e"])
    np.testing.assert_allclose(history["colour"], expected["colour"])  # g - r for g r z

    state.seed = 7  # the same seed and condition replays the draw exactly...
    np.testing.assert_array_equal(state.draw(), first)
    assert len(state.history) == 6
    state.clear()
    assert len(state.history) == 0 and state.samples is None


def test_draw_passes_condition_guidance_and_seed(explorer, monkeypatch):
    state, calls = explorer.state, []
    real_sample = state.checkpoint.sample

    def spy(n, **kwargs):
        calls.append(dict(kwargs, n=n))
        return real_sample(n, **{**kwargs, "sampler": "ddim", "steps": 1})  # fast: 1 step

    monkeypatch.setattr(state.checkpoint, "sample", spy)
    (low, high), = trained_condition_range(state.checkpoint.config)
    z = (low + high) / 2
    state.redshift, state.guidance, state.seed, state.n, state.steps = z, 2.5, 4, 2, 3
    state.sampler = "ddpm"
    state.draw()
    state.sampler, state.steps = None, None  # None: the checkpoint's defaults, not passed on
    state.draw()
    first, second = calls
    np.testing.assert_allclose(first["cond"], [z, z], rtol=1e-6)
    assert (first["n"], first["guidance"], first["seed"]) == (2, 2.5, 4)
    assert (first["steps"], first["sampler"]) == (3, "ddpm")
    assert "steps" not in second and "sampler" not in second and second["seed"] == 5


def test_the_guidance_slider_starts_at_the_checkpoint_default(z_checkpoint, guided_z_checkpoint, survey):
    explorer = RedshiftExplorer(guided_z_checkpoint, reference=survey[:8], threaded=False)
    assert explorer.state.guidance == 1.5 and explorer.view.guidance.value == 1.5
    chosen = RedshiftExplorer(guided_z_checkpoint, reference=survey[:8], threaded=False, guidance=2.0)
    assert chosen.state.guidance == 2.0
    assert RedshiftExplorer(z_checkpoint, reference=survey[:8], threaded=False).state.guidance == 1.0


def test_default_steps_follow_the_checkpoint(z_checkpoint, survey):
    """Unset, the step count is the checkpoint's default sampler's (Checkpoint.default_sampler), not
    a widget's; a model that records its own sampler (hsc-z-tiny: DDIM 25) is counted by that."""
    explorer = RedshiftExplorer(z_checkpoint, reference=survey[:8], threaded=False)
    state = explorer.state
    assert state.steps is None and state.sampler is None and state.n == 4
    assert z_checkpoint.default_sampler == (gw.samplers.DEFAULT_SAMPLER, gw.samplers.DEFAULT_STEPS)
    assert state.steps_per_draw == gw.samplers.DEFAULT_STEPS
    state.sampler = "ddim"
    assert state.steps_per_draw == 50
    state.sampler = None
    state.steps = 2
    assert state.steps_per_draw == 2
    state.steps = None
    state.checkpoint = gw.pretrained.load("hsc-z-tiny")
    assert state.steps_per_draw == 25
    view = explorer.view
    view.steps.value, view.sampler.value = 0, "ddim"
    assert state.steps is None and state.sampler == "ddim"
    view.sampler.value = "default"
    assert state.sampler is None


def test_slider_spans_the_trained_range_and_warns_beyond_it(z_checkpoint, survey):
    """The redshift slider covers the range of conditions the model was trained on; a redshift set
    beyond it widens the slider, is flagged in the view and warns when drawn."""
    ex = RedshiftExplorer(z_checkpoint, reference=survey[:8], n=1, steps=1, threaded=False)
    (low, high), = trained_condition_range(z_checkpoint.config)
    state, view = ex.state, ex.view
    assert state.redshift_range == (low, high)
    assert (view.redshift.min, view.redshift.max) == (pytest.approx(low), pytest.approx(high))
    assert low <= state.redshift <= high and view.range_note.value == "" and not state.extrapolating
    state.redshift = high + 1.0
    assert state.extrapolating and view.redshift.value == high + 1.0 and view.redshift.max == high + 1.0
    assert "outside the trained range" in view.range_note.value
    with pytest.warns(ExtrapolationWarning, match="outside the range the model was trained on"):
        state.draw()
    state.redshift = low
    assert view.range_note.value == ""


def test_default_is_hsc_z_tiny_measured_in_i():
    """The default explorer opens the shipped hsc-z-tiny on an hsc-deep mock, measured in i."""
    ex = RedshiftExplorer(n_reference=12, threaded=False)
    state, view = ex.state, ex.view
    ckpt = state.checkpoint
    assert ckpt.config["pretrained"]["name"] == "hsc-z-tiny"
    assert state.reference.bands == ("g", "r", "i", "z", "y") and state.reference.pixel_scale == 0.168
    assert (state.band, state.colour_bands) == ("i", ("g", "i"))
    (low, high), = trained_condition_range(ckpt.config)
    assert low < 0.1 and high > 2.9  # trained over 0.05 < z < 3
    assert (view.redshift.min, view.redshift.max) == (pytest.approx(low), pytest.approx(high))
    expected = size_and_surface_brightness(state.reference, band="i", colour=("g", "i"))
    np.testing.assert_allclose(state.reference_table["r_half"], expected["r_half"])
    np.testing.assert_allclose(state.reference_table["colour"], expected["colour"])
    # the faint HSC galaxies are shown with the survey's sky noise as unit, colours as in band_scales
    ratio = state.display_scales / gw.viz.band_scales(ckpt.bands, zeropoint=ckpt.zeropoint)
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-5)
    assert 0.03 < ratio[0] < 0.3

    from bokeh.models import Plot

    labels = ((view.size_plot, "half-light radius in i (arcsec)"),
              (view.brightness_plot, "⟨μ⟩ₑ in i (mag/arcsec²)"), (view.colour_plot, "g − i (mag)"))
    for widget, label in labels:
        (plot,) = widget._model.select({"type": Plot})
        assert plot.yaxis[0].axis_label == label


def test_desi_checkpoint_is_measured_in_r_on_a_desi_mock():
    ex = RedshiftExplorer("desi-z-tiny", n_reference=12, threaded=False)
    state = ex.state
    assert state.reference.bands == ("g", "r", "z") and state.reference.pixel_scale == 0.262
    assert (state.band, state.colour_bands) == ("r", ("g", "r"))
    ratio = state.display_scales / gw.viz.band_scales(state.reference.bands)
    assert 0.7 < ratio[0] < 1.5  # DESI-like: about the usual picture scales
    low, high = state.trained_range  # recorded by the recipe's training run: its mock's 0.02 < z < 0.12
    assert 0.015 < low < 0.03 and 0.11 < high < 0.125 and state.redshift_range == (low, high)


def test_slider_spans_the_reference_when_the_checkpoint_records_no_range(z_checkpoint, survey):
    config = copy.deepcopy(z_checkpoint.config)
    del config["cond"]["range"]  # as in checkpoints written before the range was recorded
    ex = RedshiftExplorer(dataclasses.replace(z_checkpoint, config=config), reference=survey[:8], n=1,
                          steps=1, threaded=False)
    assert ex.state.trained_range is None and not ex.state.extrapolating
    z = ex.state.reference_table["redshift"]
    assert ex.state.redshift_range == (pytest.approx(z.min()), pytest.approx(z.max()))


def test_reference_is_measured_like_the_draws(explorer, survey):
    table = explorer.state.reference_table
    assert len(table) == len(survey)
    np.testing.assert_allclose(table["redshift"], survey.catalog["redshift"])
    np.testing.assert_allclose(table["r_half"], size_and_surface_brightness(survey)["r_half"])
    assert table["r_half"].between(0.2, 4).all()


def test_view_links_controls_plots_and_image(explorer):
    state, view = explorer.state, explorer.view
    assert isinstance(view, W.VBox) and isinstance(view.size_plot, W.DOMWidget)
    assert "application/vnd.jupyter.widget-view+json" in explorer._repr_mimebundle_()
    view.redshift.value = 0.08  # control -> state -> the redshift marker of both plots
    assert state.redshift == 0.08 and view._marker.contents["redshift"] == 0.08
    state.guidance = 1.5
    assert view.guidance.value == 1.5
    blank = view.image.value
    view.threaded = False
    view.draw_button.click()
    assert view.image.value != blank and view.image.value[:4] == b"\x89PNG"
    assert len(state.history) == 3 and view.progress.value == view.progress.max == 2
    shown = view._pipe.data
    assert len(shown) == state.history.dropna(subset=["r_half", "mu_e"]).shape[0]
    assert not view.draw_button.disabled and view.status.value == ""


def test_shown_after_a_draw_the_plots_hold_the_draw(explorer):
    """A draw made before the widget is shown (``explorer.state.draw(); explorer`` in one cell)
    reaches the Bokeh documents a new view draws: displaying refreshes each plot's render bundle
    (jupyter_bokeh only patches views already on the page)."""
    plots = (explorer.view.size_plot, explorer.view.brightness_plot)
    before = [json.dumps(p.render_bundle, default=str) for p in plots]
    explorer.state.draw()
    explorer._repr_mimebundle_()
    after = [json.dumps(p.render_bundle, default=str) for p in plots]
    assert all(a != b for a, b in zip(after, before))
    assert all(len(a) > len(b) for a, b in zip(after, before))  # the drawn galaxies were added


def test_plots_draw_every_galaxy_on_a_2d_canvas(explorer):
    """Both plots (two Bokeh documents that render at the same time) use Bokeh's canvas backend:
    with WebGL, BokehJS's shared WebGL canvas is set up twice when two plots start together and one
    plot's points vanish (see galwidgets/widgets/_bokeh.py; checked in the browser by
    tests/test_browser.py). Their axes take in every draw, also one far outside the survey."""
    from bokeh.models import Plot

    state, view = explorer.state, explorer.view
    state.draw()
    far = state.history.iloc[:1].assign(r_half=25.0, mu_e=35.0, colour=6.0, redshift=0.9)  # an outlier draw
    state.history = pd.concat([state.history, far], ignore_index=True)
    plots = ((view.size_plot, "r_half"), (view.brightness_plot, "mu_e"), (view.colour_plot, "colour"))
    for widget, column in plots:
        (plot,) = widget._model.select({"type": Plot})
        assert plot.output_backend == "canvas"
        values = pd.concat([state.history, state.reference_table])[["redshift", column]].dropna()
        for axis, name in ((plot.x_range, "redshift"), (plot.y_range, column)):
            low, high = sorted((axis.start, axis.end))
            assert low <= values[name].min() and values[name].max() <= high, (name, low, high)


def test_threaded_draw_keeps_the_loop_free(explorer):
    state, view = explorer.state, explorer.view

    async def click() -> bool:
        view.draw()  # inside a running event loop, as in a kernel: returns at once
        started_busy = state.busy and view.draw_button.disabled
        for _ in range(400):
            if not state.busy:
                break
            await asyncio.sleep(0.025)
        return started_busy

    assert asyncio.run(click())
    assert not state.busy and len(state.history) == 3 and state.seed == 1


def test_failed_draw_is_reported_not_raised(explorer, monkeypatch):
    state, view = explorer.state, explorer.view

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(state.checkpoint, "sample", broken)
    view.threaded = False
    view.draw()
    assert "RuntimeError: out of memory" in view.status.value
    assert not state.busy and len(state.history) == 0


def test_unconditional_checkpoint_and_bad_settings_raise(tiny_checkpoint, z_checkpoint, survey):
    with pytest.raises(ValueError, match=r"checkpoint: expected a redshift-conditioned model.*cond_dim=0"):
        RedshiftExplorer(gw.load_checkpoint(tiny_checkpoint), reference=survey)
    with pytest.raises(TypeError, match="checkpoint: expected a Checkpoint"):
        RedshiftExplorer(42, reference=survey)
    with pytest.raises(ValueError, match="checkpoint: 'no-such-model' is neither"):
        RedshiftExplorer("no-such-model", reference=survey)
    no_z = survey.with_images(survey.images, catalog=survey.catalog.drop(columns="redshift"))
    with pytest.raises(ValueError, match="reference: expected a Survey with a 'redshift' catalog column"):
        RedshiftExplorer(z_checkpoint, reference=no_z)
    with pytest.raises(ValueError, match="guidance: expected a finite number >= 0"):
        RedshiftExplorer(z_checkpoint, reference=survey, guidance=-1.0)
    with pytest.raises(ValueError, match=r"sampler: expected None .* or one of 'ddim', 'ddpm'.*got 'fast'"):
        RedshiftExplorer(z_checkpoint, reference=survey, sampler="fast")
    state = RedshiftExplorer(z_checkpoint, reference=survey).state
    with pytest.raises(T.TraitError, match="steps: expected at most the schedule's T = 50"):
        state.steps = 51
    with pytest.raises(T.TraitError, match="redshift: expected a finite number >= 0"):
        state.redshift = float("nan")


def test_measurement_band_is_i_for_hsc_and_r_for_desi():
    assert measurement_band(("g", "r", "i", "z", "y")) == "i"
    assert measurement_band(("g", "r", "z")) == "r"
    assert measurement_band(("u", "v", "w")) == "v"
    with pytest.raises(ValueError, match="bands: expected at least one band"):
        measurement_band(())


def test_hsc_bands_are_measured_in_i(survey):
    """Five HSC-like bands: sizes and magnitudes in i (the third band), colour g - i; an i band
    twice as bright is 0.753 mag brighter and g - i 0.753 mag redder, r_half unchanged."""
    images = np.concatenate([survey.images[:4], survey.images[:4, :2]], axis=1)  # g r z g r as "g r i z y"
    bands = ("g", "r", "i", "z", "y")
    table = size_and_surface_brightness(images, bands, survey.zeropoint, survey.pixel_scale)
    assert table.attrs == {"band": "i", "colour": ("g", "i")}
    brighter = images.copy()
    brighter[:, 2] *= 2
    other = size_and_surface_brightness(brighter, bands, survey.zeropoint, survey.pixel_scale)
    np.testing.assert_allclose(other["mag"] - table["mag"], -2.5 * np.log10(2), atol=1e-6)
    np.testing.assert_allclose(other["colour"] - table["colour"], 2.5 * np.log10(2), atol=1e-6)
    np.testing.assert_allclose(other["r_half"], table["r_half"], rtol=1e-6)
    with pytest.raises(ValueError, match="colour: expected two band names"):
        size_and_surface_brightness(images, bands, colour=("g", "u"))


def test_size_and_surface_brightness_dimming_and_nan(survey):
    images = survey.images[:4].copy()
    table = size_and_surface_brightness(images)
    np.testing.assert_allclose(table["mu_e"], table["mag"] + 2.5 * np.log10(2 * np.pi * table["r_half"] ** 2))
    faint = size_and_surface_brightness(images / 16)  # 16x fainter, same shape: +3.01 mag/arcsec²
    np.testing.assert_allclose(faint["r_half"], table["r_half"], rtol=1e-6)
    np.testing.assert_allclose(faint["mu_e"] - table["mu_e"], 2.5 * np.log10(16), atol=1e-6)
    images[1, :, 3, 3] = np.nan
    masked = size_and_surface_brightness(images)
    assert np.isnan(masked.loc[1, "mu_e"]) and masked.loc[1, "flag"] & 4
    np.testing.assert_allclose(masked.drop(index=1)["mu_e"], table.drop(index=1)["mu_e"])
