"""The flux-scale check (Smith et al. 2022): multiplier and offset between sorted per-galaxy fluxes."""

import numpy as np
import pytest

import galwidgets as gw
from galwidgets.metrics import central_median_flux, flux_scale


def _galaxies(n, seed=0, size=24):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    profile = np.exp(-np.hypot(y, x) / 3.0)
    amplitude = rng.lognormal(0.0, 0.3, size=(n, 2, 1, 1))
    return (amplitude * profile + rng.normal(0, 0.01, (n, 2, size, size))).astype(np.float32)


def test_a_scaled_copy_gives_its_multiplier_and_no_offset():
    ref = _galaxies(200)
    table = flux_scale(1.2 * ref, ref, bands=["g", "r"])
    assert list(table.index) == ["g", "r"]
    np.testing.assert_allclose(table.multiplier, 1.2, rtol=1e-5)
    np.testing.assert_allclose(table.slope, 1.2, rtol=1e-5)
    np.testing.assert_allclose(table.offset, 0.0, atol=1e-5)
    np.testing.assert_allclose(table.median_ratio, 1.2, rtol=1e-5)
    assert (table.n == 200).all()


def test_sets_of_different_size_from_one_population_give_a_multiplier_near_one():
    table = flux_scale(_galaxies(300, seed=1), _galaxies(500, seed=2))
    assert np.all(np.abs(table.multiplier - 1) < 0.05), table
    assert (table.n == 300).all()


def test_an_offset_is_an_offset_not_a_multiplier():
    ref = _galaxies(200)
    table = flux_scale(ref + 0.05, ref)
    np.testing.assert_allclose(table.slope, 1.0, rtol=1e-4)
    np.testing.assert_allclose(table.offset, 0.05, rtol=1e-3)


def test_central_median_ignores_nan_and_the_outskirts():
    images = np.zeros((2, 1, 9, 9), np.float32)
    images[:, :, 3:6, 3:6] = 2.0  # the 3x3 core
    images[1, 0, 4, 4] = np.nan
    images[:, :, 0, :] = 100.0  # a bright edge outside the aperture
    np.testing.assert_array_equal(central_median_flux(images, radius=1.5), [[2.0], [2.0]])
    images[1] = np.nan
    assert np.isnan(central_median_flux(images, radius=1.5)[1, 0])


def test_survey_bands_name_the_rows(survey):
    table = gw.metrics.flux_scale(survey, survey)
    assert list(table.index) == list(survey.bands)
    np.testing.assert_allclose(table.multiplier, 1.0)


def test_errors_name_the_argument():
    ref = _galaxies(10)
    with pytest.raises(ValueError, match="generated"):
        flux_scale(ref[:, :1], ref)
    with pytest.raises(ValueError, match="radius"):
        flux_scale(ref, ref, radius=-1)
    with pytest.raises(ValueError, match="trim"):
        flux_scale(ref, ref, trim=0.5)
    with pytest.raises(ValueError, match="reference"):
        flux_scale(ref, ref[0])
