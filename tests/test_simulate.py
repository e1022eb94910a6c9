import numpy as np
import pandas as pd
import pytest

import galwidgets as gw
from galwidgets.data.simulate import half_light_radius


def test_same_seed_same_survey_and_other_seed_differs():
    a = gw.data.simulate_survey(6, size=32, seed=3, progress=False)
    b = gw.data.simulate_survey(6, size=32, seed=3, progress=False)
    c = gw.data.simulate_survey(6, size=32, seed=4, progress=False)
    assert np.array_equal(a.images, b.images)
    pd.testing.assert_frame_equal(a.catalog, b.catalog)
    assert not np.allclose(a.images, c.images)


def test_shape_units_and_catalog(survey):
    assert survey.images.shape == (24, 3, 32, 32)
    assert survey.images.dtype == np.float32
    assert survey.bands == ("g", "r", "z")
    assert survey.zeropoint == 22.5 and survey.pixel_scale == 0.262
    for column in ["redshift", "r_half_arcsec", "sersic_n", "bulge_fraction", "ellipticity",
                   "position_angle", "mag_g", "mag_r", "mag_z", "psf_fwhm_g", "psf_fwhm_r", "psf_fwhm_z"]:
        assert column in survey.catalog and survey.catalog[column].notna().all(), column
    assert survey.catalog.redshift.between(0.02, 0.12).all()
    assert (survey.catalog.mag_r < 18.0).all()  # the flux limit


def test_total_flux_matches_truth_magnitude():
    """Noise-free, PSF-convolved flux summed over a big stamp equals 10^(-0.4 (m - 22.5))."""
    s = gw.data.simulate_survey(8, size=128, seed=5, sky_sigma=1e-9, progress=False)
    flux = s.images.sum(axis=(2, 3))  # (N, C)
    truth = 10 ** (-0.4 * (s.catalog[["mag_g", "mag_r", "mag_z"]].to_numpy() - 22.5))
    np.testing.assert_allclose(flux, truth, rtol=0.03)


def test_sky_noise_level_and_colours_redden_with_bulge_fraction():
    noisy = gw.data.simulate_survey(100, size=32, seed=6, progress=False)
    clean = gw.data.simulate_survey(100, size=32, seed=6, sky_sigma=1e-9, progress=False)
    noise = (noisy.images - clean.images).std(axis=(0, 2, 3))  # same draws, only the noise differs
    np.testing.assert_allclose(noise, [noisy.meta["sky_sigma"][b] for b in noisy.bands], rtol=0.02)
    np.testing.assert_allclose(noise, [0.007, 0.0115, 0.028], rtol=0.02)  # DESI-like depths
    colour = noisy.catalog.mag_g - noisy.catalog.mag_r
    assert np.corrcoef(colour, noisy.catalog.bulge_fraction)[0, 1] > 0.5


def test_half_light_radius_limits():
    # a pure exponential disk and a pure de Vaucouleurs bulge return their own radii
    assert half_light_radius(0.0, 1.0, 4.0, 2.5) == pytest.approx(2.5, rel=1e-6)
    assert half_light_radius(1.0, 1.7, 4.0, 3.0) == pytest.approx(1.7, rel=1e-6)
    mixed = half_light_radius(0.5, 1.0, 4.0, 3.0)
    assert 1.0 < mixed < 3.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 0}, "n: expected a positive integer"),
        ({"n": 2, "bands": ("g", "q")}, "bands: unknown band"),
        ({"n": 2, "size": 8}, "size: expected at least 16"),
        ({"n": 2, "pixel_scale": -1.0}, "pixel_scale"),
        ({"n": 2, "redshift_range": (0.3, 0.1)}, "redshift_range"),
        ({"n": 2, "psf_fwhm": {"g": 1.0}}, "psf_fwhm: missing"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        gw.data.simulate_survey(progress=False, **kwargs)
