import asyncio

import ipywidgets as W
import numpy as np
import pytest
import traitlets as T

import galwidgets as gw
from galwidgets.widgets import InpaintingDemo

pytest.importorskip("holoviews")
pytest.importorskip("panel")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoint(tiny):
    return tiny


@pytest.fixture
def demo(checkpoint, survey):
    return InpaintingDemo(checkpoint, galaxies=survey[:3], n_samples=2, steps=3)


def test_trail_run_keeps_known_pixels_and_scores(demo, survey):
    state, view = demo.state, demo.view
    assert isinstance(view, W.VBox) and isinstance(view.maps_plot, W.DOMWidget)
    assert "application/vnd.jupyter.widget-view+json" in demo._repr_mimebundle_()
    state.angle, state.width, state.brightness, state.galaxy = 60.0, 3.0, 2.0, 1
    observed, mask = state.observed_and_mask()
    trail, trail_mask = gw.data.satellite_trail((32, 32), angle=60.0, width=3.0, brightness=2.0, offset=0.0,
                                                seed=state.seed)
    np.testing.assert_array_equal(mask, trail_mask)
    np.testing.assert_allclose(observed, survey.images[1] + trail, rtol=1e-6)
    assert np.isnan(state.masked()[:, mask]).all() and (state.masked()[:, ~mask] == observed[:, ~mask]).all()

    view.threaded = False
    blank = view.mean_image.value
    view.run_button.click()
    result = state.result
    assert view.status.value == "" and not state.busy and view.mean_image.value != blank
    assert result.samples.shape == (1, 2, 3, 32, 32) and np.isfinite(result.samples).all()
    np.testing.assert_array_equal(result.mean[0][:, ~mask], observed[:, ~mask])  # known pixels: the input
    assert (result.std[0][:, ~mask] == 0).all() and (result.std[0][:, mask] > 0).any()
    scores = state.scores
    assert scores["n_occluded"] == mask.sum() and 0 <= scores["recovered_mean"] <= 1
    truth, sigma = survey.images[1], state.sky_sigma
    assert scores["n_bright"] == int((mask & (truth > 3 * sigma[:, None, None])).sum()) > 0
    assert scores["recovered_mean"] == gw.metrics.inpainting_recovery(result.mean, truth[None], mask, sigma)
    assert "recovered to within 10 %" in view.scores.value and view.progress.value == 3
    maps = state.maps()
    band = state.band
    np.testing.assert_allclose(maps["error"], (result.mean[0, band] - truth[band]) / sigma[band], rtol=1e-5)
    np.testing.assert_allclose(maps["spread"], result.std[0, band] / sigma[band], rtol=1e-5)
    np.testing.assert_allclose(view._maps.data["error"], maps["error"])

    before = view.input_images.value
    state.angle = 10.0  # a new trail: a new mask, and the old result no longer applies
    assert view.input_images.value != before and state.result is None and state.scores == {}
    assert "not inpainted yet" in view.scores.value


def test_dashes_and_rectangle_masks(demo):
    state = demo.state
    continuous = state.observed_and_mask()[1].sum()
    state.dashed, state.dash_period, state.dash_duty = True, 8.0, 0.5
    assert 0 < state.observed_and_mask()[1].sum() < continuous
    state.mode, state.x0, state.x1, state.y0, state.y1 = "rectangle", 4, 10, 20, 23
    observed, mask = state.observed_and_mask()
    assert mask.sum() == 18 and mask[20:23, 4:10].all() and np.isnan(observed[:, mask]).all()
    result = state.run()
    np.testing.assert_array_equal(result.mean[0][:, ~mask], state.truth()[:, ~mask])
    assert np.isfinite(result.mean).all()


def test_nan_pixels_of_the_galaxy_are_inpainted_too(checkpoint, survey):
    galaxies = survey.images[:2].copy()
    galaxies[0, 1, 2, 3] = np.nan  # one band of one pixel, far from the trail
    demo = InpaintingDemo(checkpoint, galaxies=galaxies, n_samples=2, steps=2, angle=0.0, width=2.0)
    state = demo.state
    mask = state.observed_and_mask()[1]
    assert mask[2, 3] and not mask[2, 4]
    state.run()
    assert np.isfinite(state.result.mean).all() and np.isnan(state.maps()["error"][2, 3]) == (state.band == 1)
    assert np.isfinite(state.scores["recovered_mean"])


def test_empty_mask_is_reported(demo):
    state, view = demo.state, demo.view
    state.mode, state.x0, state.x1 = "rectangle", 5, 5
    with pytest.raises(ValueError, match="mask: nothing is occluded"):
        state.run()
    view.threaded = False
    view.run()
    assert "mask: nothing is occluded" in view.status.value and not state.busy and state.result is None


def test_changing_the_trail_during_a_threaded_run_discards_it(demo):
    state, view = demo.state, demo.view

    async def click_then_move() -> None:
        view.run()  # in a running event loop, as in a kernel: inpaints in a thread
        assert state.busy and view.run_button.disabled
        state.angle = 100.0  # the user moves a slider meanwhile
        for _ in range(400):
            if not state.busy:
                break
            await asyncio.sleep(0.025)

    asyncio.run(click_then_move())
    assert not state.busy and state.result is None and "changed while inpainting" in view.status.value


def test_bad_arguments_raise(checkpoint, survey):
    with pytest.raises(ValueError, match="galaxies: expected 32x32 cutouts"):
        InpaintingDemo(checkpoint, galaxies=survey.images[:2, :, :16, :16])
    with pytest.raises(ValueError, match="galaxies: expected 3 channels"):
        InpaintingDemo(checkpoint, galaxies=survey.images[:2, :2])
    with pytest.raises(ValueError, match="width: expected a finite positive number"):
        InpaintingDemo(checkpoint, galaxies=survey[:1], width=0.0)
    state = InpaintingDemo(checkpoint, galaxies=survey[:1]).state
    with pytest.raises(T.TraitError, match=r"x1: expected an integer in 0\.\.32, got 33"):
        state.x1 = 33
    with pytest.raises(T.TraitError, match=r"steps: expected an integer in 1\.\.100"):
        state.steps = 101
