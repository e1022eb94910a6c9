import galsim
import numpy as np
import pandas as pd
import pytest

import galwidgets as gw
from galwidgets.metrics import SHAPE_FLAGS

SIZE = 64
Y, X = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2


def disc(radius=10.0, value=1.0):
    return np.where(np.hypot(X, Y) <= radius, value, 0.0)


def elliptical_gaussian(sigma_major=6.0, q=0.5, angle_deg=30.0, flux=100.0, dx=0.0, dy=0.0):
    t = np.radians(angle_deg)
    u = (X - dx) * np.cos(t) + (Y - dy) * np.sin(t)
    v = -(X - dx) * np.sin(t) + (Y - dy) * np.cos(t)
    sigma_minor = q * sigma_major
    norm = flux / (2 * np.pi * sigma_major * sigma_minor)
    return norm * np.exp(-0.5 * ((u / sigma_major) ** 2 + (v / sigma_minor) ** 2))


def batch(*images):
    return np.stack(images)[:, None].astype(np.float32)


def sersic(n, hlr, q=1.0, beta=0.0, flux=100.0):
    profile = galsim.Sersic(n=n, half_light_radius=hlr, flux=flux)
    if q < 1:
        profile = profile.shear(q=q, beta=beta * galsim.degrees)
    return profile.drawImage(nx=SIZE, ny=SIZE, scale=1.0).array  # pixel-integrated ("auto")


def test_isophotal_area_of_a_uniform_disc():
    image = disc(10.0)
    noisy = image + np.random.default_rng(0).normal(0, 0.01, image.shape)
    # at 5 sky sigmas no noise pixel next to the disc is above the isophote
    table = gw.metrics.isophotal_shapes(batch(noisy), band=0, threshold=5, pixel_scale=0.5, progress=False)
    assert table.isophotal_area[0] == pytest.approx(np.pi * 100, rel=0.02)
    assert table.isophotal_area_arcsec2[0] == pytest.approx(table.isophotal_area[0] * 0.25)
    assert table.ellipticity[0] == pytest.approx(0.0, abs=0.02)
    assert table.flag[0] == 0
    # noise-free, at a surface brightness threshold: exactly the disc's pixels
    mu = 22.5 - 2.5 * np.log10(0.5 / 0.5**2)  # 0.5 flux units per pixel at 0.5"/px
    exact = gw.metrics.isophotal_shapes(batch(image), band=0, pixel_scale=0.5, surface_brightness=mu,
                                        progress=False)
    assert exact.isophotal_area[0] == (image > 0).sum()
    assert exact.isophotal_area[0] == pytest.approx(np.pi * 100, rel=0.01)
    assert exact.attrs["threshold_flux"] == pytest.approx(0.5)


@pytest.mark.parametrize(("q", "angle"), [(0.5, 30.0), (0.8, 120.0)])
def test_ellipticity_and_orientation_of_an_elliptical_gaussian(q, angle):
    image = elliptical_gaussian(q=q, angle_deg=angle)
    table = gw.metrics.isophotal_shapes(batch(image), band=0, sky_sigma=1e-3, progress=False)
    assert table.ellipticity[0] == pytest.approx(1 - q, abs=0.01)
    assert table.orientation[0] == pytest.approx(angle, abs=1.0)
    assert table.semiminor_sigma[0] / table.semimajor_sigma[0] == pytest.approx(q, abs=0.01)


def test_galsim_ellipticity_is_recovered():
    image = sersic(1.0, 5.0, q=0.6, beta=-20.0)
    table = gw.metrics.isophotal_shapes(batch(image), band=0, sky_sigma=1e-4, progress=False)
    assert table.ellipticity[0] == pytest.approx(0.4, abs=0.02)
    assert table.orientation[0] == pytest.approx(160.0, abs=1.0)


def test_survey_input_uses_its_band_and_pixel_scale(survey):
    table = gw.metrics.isophotal_shapes(survey, progress=False)
    assert len(table) == len(survey.images) and table.attrs["band"] == "r"
    assert np.isfinite(table.isophotal_area).sum() >= len(table) - 2
    np.testing.assert_allclose(table.isophotal_area_arcsec2, table.isophotal_area * 0.262**2)
    assert table.flag.dtype == np.int64
    by_index = gw.metrics.isophotal_shapes(survey.images, band=1, progress=False)
    np.testing.assert_array_equal(by_index.isophotal_area, table.isophotal_area)


@pytest.mark.parametrize(("n", "hlr"), [(1.0, 5.0), (4.0, 4.0)])
def test_sersic_fit_recovers_index_and_effective_radius(n, hlr):
    image = sersic(n, hlr, q=0.7, beta=30.0)
    table = gw.metrics.galaxy_fitting_loss(batch(image), band=0, sky_sigma=1e-3 * image.max(), sky=0.0,
                                           pixel_scale=0.2, progress=False)
    row = table.iloc[0]
    assert row.flag == 0
    assert row.sersic_n == pytest.approx(n, rel=0.03)
    assert row.r_eff_circ == pytest.approx(hlr, rel=0.02)  # galsim's shear keeps the area: sqrt(ab)
    assert row.r_eff == pytest.approx(hlr / np.sqrt(0.7), rel=0.02)
    assert row.r_eff_arcsec == pytest.approx(0.2 * row.r_eff)
    assert row.ellipticity == pytest.approx(0.3, abs=0.02)
    assert row.theta == pytest.approx(30.0, abs=1.0)
    assert row.fit_loss < 0.02


def test_fit_of_a_noisy_sersic_has_unit_reduced_chi2_and_a_non_sersic_fits_worse():
    rng = np.random.default_rng(1)
    sigma = 0.005
    galaxy = sersic(1.5, 5.0, q=0.8)
    two_blobs = elliptical_gaussian(3.0, 1.0, dx=-4) + elliptical_gaussian(3.0, 1.0, dx=4)
    noise = rng.normal(0, sigma, (2, *galaxy.shape))
    images = batch(galaxy + noise[0], two_blobs + noise[1])
    table = gw.metrics.galaxy_fitting_loss(images, band=0, sky_sigma=sigma, progress=False)
    assert table.chi2_red[0] == pytest.approx(1.0, abs=0.15)
    assert table.sersic_n[0] == pytest.approx(1.5, rel=0.1)
    assert table.chi2_red[1] > 5 and table.fit_loss[1] > table.fit_loss[0]


def test_bad_stamps_give_full_tables_with_flags():
    good = elliptical_gaussian(4.0, 0.7)
    with_nan = good.copy()
    with_nan[5, 5] = np.nan
    edge = elliptical_gaussian(4.0, 0.7, dx=-28.0)
    images = batch(good, np.zeros_like(good), -good, np.full_like(good, np.nan), edge, with_nan)
    for table in (
        gw.metrics.isophotal_shapes(images, band=0, sky_sigma=1e-3, progress=False),
        gw.metrics.galaxy_fitting_loss(images, band=0, sky_sigma=1e-3, progress=False),
    ):
        assert len(table) == 6
        value = "isophotal_area" if "isophotal_area" in table else "sersic_n"
        assert table.flag[0] == 0 and np.isfinite(table[value][0])
        for i in (1, 2, 3):
            assert table.flag[i] & SHAPE_FLAGS["no_source"] and np.isnan(table[value][i])
        assert table.flag[3] & SHAPE_FLAGS["nonfinite_pixels"]
        assert table.flag[4] & SHAPE_FLAGS["touches_edge"] and np.isfinite(table[value][4])
        assert table.flag[5] == SHAPE_FLAGS["nonfinite_pixels"] and np.isfinite(table[value][5])
        assert table[value][5] == pytest.approx(table[value][0], rel=0.05)


def test_parallel_fits_equal_serial_fits(survey):
    serial = gw.metrics.galaxy_fitting_loss(survey.images[:4], progress=False)
    parallel = gw.metrics.galaxy_fitting_loss(survey.images[:4], n_jobs=2, progress=False)
    np.testing.assert_allclose(parallel.drop(columns="flag"), serial.drop(columns="flag"))
    np.testing.assert_array_equal(parallel.flag, serial.flag)


def test_validation_names_the_argument(survey):
    with pytest.raises(ValueError, match="band"):
        gw.metrics.isophotal_shapes(survey, band="i", progress=False)
    with pytest.raises(ValueError, match="band"):
        gw.metrics.galaxy_fitting_loss(survey, band=3, progress=False)
    with pytest.raises(ValueError, match="n_jobs"):
        gw.metrics.galaxy_fitting_loss(survey, n_jobs=0, progress=False)
    with pytest.raises(ValueError, match="threshold"):
        gw.metrics.isophotal_shapes(survey, threshold=-1, progress=False)
    with pytest.raises(ValueError, match="surface_brightness"):
        gw.metrics.isophotal_shapes(survey, surface_brightness=float("nan"), progress=False)
    with pytest.raises(ValueError, match="images"):
        gw.metrics.isophotal_shapes(np.zeros((4, 32, 32)), progress=False)


def test_isophotal_shapes_of_a_store_read_in_chunks(survey, tmp_path, monkeypatch):
    import galwidgets.metrics.chunked as chunked

    monkeypatch.setattr(chunked, "STORE_CHUNK", 7)
    store = gw.data.open_store(survey.save(tmp_path / "s.h5"))
    expected = gw.metrics.isophotal_shapes(survey, progress=False)
    table = gw.metrics.isophotal_shapes(store, progress=False)
    pd.testing.assert_frame_equal(table, expected)
    assert table.attrs == expected.attrs and table.attrs["band"] == "r"
