import asyncio
import json

import ipywidgets as W
import numpy as np
import pandas as pd
import pytest
import torch
import traitlets as T

import galwidgets as gw
from galwidgets.training import latest_checkpoint
from galwidgets.widgets import RedshiftExplorer, size_and_surface_brightness

pytest.importorskip("holoviews")
pytest.importorskip("panel")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def z_checkpoint(tmp_path_factory, survey):
    """A tiny redshift-conditioned U-Net trained for two steps (plumbing, not quality)."""
    directory = tmp_path_factory.mktemp("z-ckpt")
    torch.manual_seed(0)
    model = gw.models.UNet(in_channels=3, base_channels=8, channel_mults=(1, 2), attention_levels=(),
                           cond_dim=1, groups=4)
    gw.train(model, gw.diffusion.NoiseSchedule.linear(50), survey, steps=2, batch_size=4, cond="redshift",
             checkpoint_dir=directory, checkpoint_every=2, progress=False)
    return gw.load_checkpoint(latest_checkpoint(directory))


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
    assert list(history.columns) == ["redshift", "guidance", "seed", "index", "r_half", "mag", "mu_e", "flag"]
    assert len(history) == 3 and (history["redshift"] == 0.05).all() and (history["guidance"] == 2.0).all()
    assert (history["seed"] == 7).all() and state.seed == 8
    expected = size_and_surface_brightness(first, survey.bands, survey.zeropoint, survey.pixel_scale)
    np.testing.assert_allclose(history["r_half"], expected["r_half"])
    np.testing.assert_allclose(history["mu_e"], expected["mu_e"])

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
    state.redshift, state.guidance, state.seed, state.n, state.steps = 0.3, 2.5, 4, 2, 3
    state.sampler = "ddpm"
    state.draw()
    (call,) = calls
    np.testing.assert_allclose(call["cond"], [0.3, 0.3])
    assert (call["n"], call["guidance"], call["seed"]) == (2, 2.5, 4)
    assert (call["steps"], call["sampler"]) == (3, "ddpm")


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
    far = state.history.iloc[:1].assign(r_half=25.0, mu_e=35.0, redshift=0.9)  # an outlier draw
    state.history = pd.concat([state.history, far], ignore_index=True)
    for widget, column in ((view.size_plot, "r_half"), (view.brightness_plot, "mu_e")):
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
    state = RedshiftExplorer(z_checkpoint, reference=survey).state
    with pytest.raises(T.TraitError, match="steps: expected at most the schedule's T = 50"):
        state.steps = 51
    with pytest.raises(T.TraitError, match="redshift: expected a finite number >= 0"):
        state.redshift = float("nan")


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
