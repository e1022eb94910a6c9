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
from galwidgets.widgets.deconvolution import DECONVOLUTION_PANELS

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
    circle = overlay.get(1)  # about the stamp centre; without pixel scales lengths are model pixels
    assert state.aperture() == (15.5, 15.5, 4.0) and state.sky_unit == "model px"
    assert (circle.x, circle.y, circle.width) == (0.0, 0.0, 8.0)
    assert f"{expected[1]:.2f} in r < 4 px" in overlay.get(0).label
    assert f"{expected.mean():.2f}" in view.status.value
    with pytest.raises(T.TraitError, match="radius"):
        state.radius = 17.0
    state.radius = 8.0


def _result(truth, observation, prior):
    """A DeconvolutionResult whose posterior is ``truth`` (three copies) and residual 0."""
    samples = np.repeat(truth[None], 3, axis=0) * np.array([0.99, 1.0, 1.01])[:, None, None, None]
    summary = gw.metrics.posterior_summary(samples, prior, radius=8.0, reference="flux")
    zeros = np.zeros_like(observation, dtype=np.float64)
    return DeconvolutionResult(
        samples=samples, prior=prior, mean=summary["mean"], std=summary["std"],
        variance_ratio_map=summary["variance_ratio_map"], variance_ratio=float(summary["variance_ratio"]),
        reconvolved=observation.astype(np.float64), residual=zeros, chi2=0.0, chi2_per_band=zeros[:, 0, 0],
        settings={"radius": 8.0, "reference": "flux", "n_samples": 3})


def _centroid(state, panel):
    """Flux-weighted centre of a panel's band on the sky, from its extent (rows run bottom to top)."""
    image = state.raw(panel)
    left, bottom, right, top = state.extent(panel)
    h, w = image.shape
    x = left + (np.arange(w) + 0.5) * (right - left) / w
    y = bottom + (np.arange(h) + 0.5) * (top - bottom) / h
    weights = np.clip(image, 0, None) / np.clip(image, 0, None).sum()
    return float((weights.sum(0) * x).sum()), float((weights.sum(1) * y).sum())


@pytest.fixture(scope="module")
def finer_grid(survey):
    """A galaxy 1.0" east and 0.5" south of the stamp centre on the model's 32 x 0.262" grid, observed
    on HSC-like 0.168" pixels (50 x 50) through a PSFOperator; its result has the truth as posterior."""
    import torch

    h = w = 32
    yy, xx = np.mgrid[:h, :w]
    x0, y0 = (w - 1) / 2 + 1.0 / 0.262, (h - 1) / 2 - 0.5 / 0.262
    blob = np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * 1.5**2))
    truth = np.stack([blob, 2 * blob, 3 * blob])
    operator = PSFOperator(gw.data.psf_kernel(0.5, 0.168, size=9), (h, w), model_pixel_scale=0.262,
                           obs_pixel_scale=0.168)
    with torch.no_grad():
        y = operator(torch.from_numpy(truth[None].astype(np.float32))).numpy()[0]
    prior = survey.images[1:6].astype(np.float64)
    return _result(truth, y, prior), y, operator


def test_observation_and_model_share_one_sky(finer_grid):
    """An observation on a finer pixel grid than the model's covers the same field (same extent in
    arcsec) and shows the galaxy where the model panels do."""
    result, y, operator = finer_grid
    assert y.shape == (3, 50, 50) and result.mean.shape == (3, 32, 32)
    state = DeconvolutionViewer(result, y, operator=operator).state
    assert state.sky_unit == "arcsec" and (state.pixel_scale, state.obs_pixel_scale) == (0.262, 0.168)
    assert state.pixel_scales("observation") == state.pixel_scales("residual") == (0.168, 0.168)
    model = state.extent("posterior mean")
    np.testing.assert_allclose(model, np.array([-1, -1, 1, 1]) * 16 * 0.262)
    np.testing.assert_allclose(state.extent("observation"), np.array([-1, -1, 1, 1]) * 25 * 0.168)
    # the same field to within the rounding of the observation's shape (0.008" here, < 1 pixel)
    np.testing.assert_allclose(state.extent("observation"), model, atol=0.168 / 2)
    for panel in ("posterior sample", "posterior std", "variance ratio"):
        assert state.extent(panel) == model
    assert state.extent("residual") == state.extent("observation")
    # the galaxy is where it is on the sky in both grids: (+1.0", -0.5") from the centre
    np.testing.assert_allclose(_centroid(state, "posterior mean"), (1.0, -0.5), atol=0.02)
    np.testing.assert_allclose(_centroid(state, "observation"), (1.0, -0.5), atol=0.03)
    # without the operator the observation is taken to cover the model's field, in model pixels
    bare = DeconvolutionViewer(result, y).state
    assert bare.sky_unit == "model px"
    assert bare.extent("observation") == bare.extent("posterior mean") == (-16.0, -16.0, 16.0, 16.0)
    np.testing.assert_allclose(_centroid(bare, "observation"), _centroid(bare, "posterior mean"), atol=0.1)


@needs_bokeh
def test_panels_are_drawn_on_one_sky(finer_grid):
    """The Bokeh images of all six panels span the same rectangle of the shared frame, the aperture
    circle is centred on it with the radius in arcsec."""
    from bokeh.models import Image, Plot

    result, y, operator = finer_grid
    viewer = DeconvolutionViewer(result, y, operator=operator)
    plots = list(viewer.view.plot._model.select({"type": Plot}))
    rects = []
    for plot in plots:
        images = [r for r in plot.renderers if isinstance(getattr(r, "glyph", None), Image)]
        if images:
            data = images[0].data_source.data
            rects.append([float(np.ravel(data[k])[0]) for k in ("x", "y", "dw", "dh")])
    assert len(rects) == len(DECONVOLUTION_PANELS)
    np.testing.assert_allclose(rects, [[-4.192, -4.192, 8.384, 8.384]] * 6, atol=0.168 / 2)
    assert {plot.output_backend for plot in plots} == {"canvas"}  # not WebGL: see widgets/_bokeh.py
    circle = viewer.view.panels["observation"][()].get(1)
    assert (circle.x, circle.y) == (0.0, 0.0) and circle.width == pytest.approx(2 * 8.0 * 0.262)
    assert "arcsec" in _element(viewer.view, "observation").kdims[0].label


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
    with pytest.raises(TypeError, match="operator: expected the PSFOperator"):
        DeconvolutionViewer(result, y, operator=0.262)
    fine = PSFOperator(np.ones((1, 1)), (32, 32), model_pixel_scale=0.262, obs_pixel_scale=0.168)
    with pytest.raises(ValueError, match=r"operator: expected the operator of this result.*\(50, 50\)"):
        DeconvolutionViewer(result, y, operator=fine)
    with pytest.raises(T.TraitError, match="pixel_scale"):
        DeconvolutionViewer(result, y, pixel_scale=-0.2)


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
