"""Deconvolution viewer, headless: shared stretch, sample slider, aperture metric, NaN pixels."""

from __future__ import annotations

import importlib.util
from functools import partial

import numpy as np
import pytest
import traitlets as T
from scipy.ndimage import gaussian_filter

import galwidgets as gw
from galwidgets.diffusion import DeconvolutionResult
from galwidgets.diffusion.operators import PSFOperator
from galwidgets.widgets import DeconvolutionViewer

needs_bokeh = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("holoviews", "panel", "jupyter_bokeh")),
    reason="the view needs the [all] extras: holoviews, panel, jupyter_bokeh")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def deconvolved(survey):
    """A DeconvolutionResult of a Gaussian-blurred observation, built directly (fast, exact numbers)."""
    rng = np.random.default_rng(0)
    blur = partial(gaussian_filter, sigma=(0, 1.5, 1.5))  # the forward operator A
    truth = survey.images[0].astype(np.float64)
    y = (blur(truth) + rng.normal(0, 0.02, truth.shape)).astype(np.float32)
    samples = truth + rng.normal(0, 0.01, (3, *truth.shape)) * (1 + 5 * truth / truth.max())
    prior = survey.images[1:6] + rng.normal(0, 0.02, (5, *truth.shape))
    summary = gw.metrics.posterior_summary(samples, prior, radius=8.0, reference="flux")
    reconvolved = blur(summary["mean"])
    residual = (y - reconvolved) / 0.02
    result = DeconvolutionResult(
        samples=samples, prior=prior, mean=summary["mean"], std=summary["std"],
        variance_ratio_map=summary["variance_ratio_map"], variance_ratio=float(summary["variance_ratio"]),
        reconvolved=reconvolved, residual=residual, chi2=float(np.mean(residual**2)),
        chi2_per_band=np.mean(residual**2, axis=(1, 2)),
        settings={"radius": 8.0, "reference": "flux", "n_samples": 3})
    return result, y


@pytest.fixture(scope="module")
def viewer(deconvolved):
    result, y = deconvolved
    return DeconvolutionViewer(result, y)


def _element(view, panel):
    """The image a panel's DynamicMap shows now (the first layer of the overlay, if any)."""
    element = view.panels[panel][()]
    return element.get(0) if hasattr(element, "get") else element


def test_flux_panels_share_one_stretch(viewer, deconvolved):
    result, y = deconvolved
    state = viewer.state
    state.stretch, state.percentile = "linear", 100.0
    assert state.band == "r"
    vmax = result.mean[1].max()
    assert state.limits("posterior mean") == state.limits("posterior std") == (0.0, vmax)
    np.testing.assert_allclose(state.panel("posterior mean"), np.clip(result.mean[1] / vmax, 0, 1))
    np.testing.assert_allclose(state.panel("posterior std"), np.clip(result.std[1] / vmax, 0, 1))
    np.testing.assert_allclose(state.panel("posterior sample"), np.clip(result.samples[0, 1] / vmax, 0, 1))
    # the observation: same stretch, limits of the re-convolved mean (its units and grid)
    top = result.reconvolved[1].max()
    assert top < 0.9 * vmax  # the blur lowers the peak: these are other limits
    np.testing.assert_allclose(state.panel("observation"), np.clip(y[1] / top, 0, 1))
    np.testing.assert_array_equal(state.panel("variance ratio"), result.variance_ratio_map[1])
    state.stretch, state.percentile = "asinh", 99.5
    assert 0 < np.median(state.panel("posterior mean")) < 1


@needs_bokeh
def test_controls_drive_the_panels(viewer):
    state, view = viewer.state, viewer.view
    first = _element(view, "posterior sample").data.copy()
    view.sample.value = 2  # the slider flips through the posterior samples
    assert state.sample == 2
    shown = _element(view, "posterior sample")
    assert not np.array_equal(shown.data, first) and "3 of 3" in shown.label
    # row 0 of the images is the bottom row of the picture
    np.testing.assert_array_equal(np.flipud(shown.data), state.panel("posterior sample"))
    view.band.value = "g"
    mean = _element(view, "posterior mean").data
    np.testing.assert_array_equal(np.flipud(mean), state.panel("posterior mean"))
    view.band.value = "r"
    before = _element(view, "posterior mean").data.copy()
    view.stretch.value = "log"
    assert state.stretch == "log" and not np.array_equal(_element(view, "posterior mean").data, before)
    view.stretch.value = "asinh"
    assert WIDGET_MIME in viewer._repr_mimebundle_() and "masked" not in view.status.value
    with pytest.raises(T.TraitError, match="sample"):
        state.sample = 3


@needs_bokeh
def test_aperture_metric_follows_the_radius(viewer, deconvolved):
    result, _ = deconvolved
    state, view = viewer.state, viewer.view
    assert state.radius == result.settings["radius"] == 8.0
    assert state.variance_ratio == pytest.approx(result.variance_ratio)
    view.radius.value = 4.0
    expected = gw.metrics.variance_ratio(result.samples, result.prior, 4.0, per_band=True, reference="flux")
    np.testing.assert_allclose(state.variance_ratio_per_band, expected)
    assert state.variance_ratio == pytest.approx(expected.mean())
    overlay = view.panels["variance ratio"][()]
    circle = overlay.get(1)
    assert (circle.x, circle.y, circle.width) == (15.5, 15.5, 8.0)
    assert f"{expected[1]:.2f} in r < 4 px" in overlay.get(0).label
    assert f"{expected.mean():.2f}" in view.status.value
    with pytest.raises(T.TraitError, match="radius"):
        state.radius = 17.0
    state.radius = 8.0


def test_nan_pixels_and_missing_observation(deconvolved):
    result, y = deconvolved
    masked = y.copy()
    masked[:, :2] = np.nan
    viewer = DeconvolutionViewer(result, masked, band="g")
    shown = viewer.state.panel("observation")
    assert np.isnan(shown[:2]).all() and np.isfinite(shown[2:]).all()
    assert "64 masked (NaN) pixels" in viewer.state.summary()
    assert np.isfinite(viewer.state.limits("observation")).all()
    bare = DeconvolutionViewer(result)  # no y: the re-convolved mean stands in
    np.testing.assert_array_equal(bare.state.raw("observation"), result.reconvolved[1])
    assert "no y" in bare.state.title("observation")


def test_errors(deconvolved):
    result, y = deconvolved
    with pytest.raises(TypeError, match="result: expected a DeconvolutionResult"):
        DeconvolutionViewer(result.mean, y)
    with pytest.raises(T.TraitError, match="y: expected the observation shaped like"):
        DeconvolutionViewer(result, y[:2])
    with pytest.raises(ValueError, match="bands"):
        DeconvolutionViewer(result, y, bands=("g", "r"))
    with pytest.raises(T.TraitError, match="band"):
        DeconvolutionViewer(result, y, band="K")


@pytest.mark.slow
@needs_bokeh
def test_shows_a_real_deconvolution(tiny_checkpoint, survey):
    """The viewer on the output of ``gw.diffusion.deconvolve`` (a tiny prior, a PSF operator)."""
    tiny = gw.load_checkpoint(tiny_checkpoint, device="cpu")
    y, kernels = gw.data.observe(survey.images[:1], 0.6, 0.262, 0.02, seed=0)
    result = gw.diffusion.deconvolve(tiny, y[0], PSFOperator(kernels, (32, 32)), 0.02, n_samples=2, n_prior=3,
                                     steps=3, reference="flux", progress=False)
    viewer = DeconvolutionViewer(result, y[0])
    assert viewer.state.variance_ratio == pytest.approx(result.variance_ratio)
    viewer.view.sample.value = 1
    assert "2 of 2" in _element(viewer.view, "posterior sample").label
    assert WIDGET_MIME in viewer._repr_mimebundle_()
