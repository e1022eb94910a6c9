import numpy as np
import pandas as pd
import pytest
from photutils.aperture import CircularAperture, aperture_photometry

import galwidgets as gw
from galwidgets.metrics import FLAGS


def gaussian(flux=100.0, sigma=3.0, size=64, bands=3):
    y, x = np.mgrid[:size, :size] - (size - 1) / 2
    img = flux * np.exp(-(x**2 + y**2) / (2 * sigma**2)) / (2 * np.pi * sigma**2)
    return np.repeat(img[None, None], bands, axis=1).astype(np.float32)


def test_uniform_image_aperture_flux_is_value_times_area():
    img = np.full((1, 3, 32, 32), 0.2, np.float32)
    table = gw.metrics.photometry(img, aperture_radius=5, background_method=None)
    assert table.flux_r[0] == pytest.approx(0.2 * np.pi * 25, rel=1e-5)
    assert table.mag_r[0] == pytest.approx(22.5 - 2.5 * np.log10(0.2 * np.pi * 25), abs=1e-5)
    assert table["g-r"][0] == pytest.approx(0.0, abs=1e-6)


def test_gaussian_aperture_flux_and_half_light_radius():
    sigma = 3.0
    table = gw.metrics.photometry(gaussian(sigma=sigma), aperture_radius=6, pixel_scale=0.5,
                                  background_method=None)
    expected = 100 * (1 - np.exp(-36 / (2 * sigma**2)))
    assert table.flux_g[0] == pytest.approx(expected, rel=5e-3)
    # half-light radius of a circular Gaussian: sigma sqrt(2 ln 2), here in arcsec at 0.5"/px
    assert table.r_half[0] == pytest.approx(sigma * np.sqrt(2 * np.log(2)) * 0.5, rel=0.01)
    assert table.flag[0] == 0


def test_matches_photutils_on_simulated_galaxies(survey):
    table = gw.metrics.photometry(survey, aperture_radius=6)
    sky = gw.metrics.background(survey.images.astype(float))
    for i in (0, 5, 17):
        ref = aperture_photometry(survey.images[i, 1].astype(float) - sky[i, 1],
                                  CircularAperture((15.5, 15.5), 6), method="exact")
        assert table.flux_r[i] == pytest.approx(ref["aperture_sum"][0], rel=1e-10)


def test_background_is_median_of_corners():
    img = np.zeros((1, 1, 64, 64), np.float32)
    img[..., :20, :20] = 1.0
    img[..., :20, -20:] = 2.0
    img[..., -20:, :20] = 3.0
    img[..., -20:, -20:] = 4.0
    assert gw.metrics.background(img)[0, 0] == pytest.approx(2.5)


def test_unmeasurable_galaxies_get_nan_and_flags():
    imgs = np.concatenate([gaussian(), -gaussian(), gaussian()])
    imgs[2, 0, 30, 30] = np.nan
    table = gw.metrics.photometry(imgs, background_method=None)
    assert len(table) == 3 and table.flag[0] == 0
    assert np.isnan(table.mag_g[1]) and table.flag[1] & FLAGS["nonpositive_flux"]
    assert table.flag[1] & FLAGS["no_half_light_radius"]
    assert np.isnan(table.mag_g[2]) and table.flag[2] & FLAGS["nonfinite_pixels"]
    assert np.isfinite(table.mag_r[2])  # other bands still measured


def test_sgd_zero_for_identical_and_equal_to_shift(survey):
    same = gw.metrics.synthetic_galaxy_distance(survey, survey)
    assert set(same) == {"g", "r", "z", "g-r", "r-z", "r_half", "total"}
    assert all(v == 0 for v in same.values())
    brighter = survey.with_images(survey.images * 2.0)
    shifted = gw.metrics.synthetic_galaxy_distance(survey, brighter)
    assert shifted["r"] == pytest.approx(2.5 * np.log10(2), rel=1e-6)  # W1 of a shift is the shift
    assert shifted["g-r"] == pytest.approx(0, abs=1e-6)
    assert shifted["total"] > 2.0


def test_sgd_accepts_tables_and_split_half_baseline(survey):
    table = gw.metrics.photometry(survey)
    half = gw.metrics.split_half_baseline(table, seed=0)
    assert half["total"] > 0 and np.isfinite(half["total"])
    sgd = gw.metrics.synthetic_galaxy_distance
    assert sgd(table, survey) == sgd(survey, survey)
    with pytest.raises(ValueError, match="b: has SGD terms"):
        gw.metrics.synthetic_galaxy_distance(table, table.drop(columns=["mag_z", "r-z"]))


def test_cohens_d_analytic():
    assert gw.metrics.cohens_d([1, 2, 3], [2, 3, 4]) == pytest.approx(-1.0)
    assert gw.metrics.cohens_d([1, 2, 3, np.nan], [1, 2, 3]) == 0.0
    assert np.isnan(gw.metrics.cohens_d([1, np.nan], [1, 2]))  # too few values: NaN, no crash


def test_cohens_d_of_two_normals_with_known_means():
    """N(0.5, 2) against N(0, 2): d = 0.5 / 2 = 0.25, within its standard error ~sqrt(2/n)."""
    rng = np.random.default_rng(7)
    u, v = rng.normal(0.5, 2.0, 20_000), rng.normal(0.0, 2.0, 20_000)
    assert gw.metrics.cohens_d(u, v) == pytest.approx(0.25, abs=3 * np.sqrt(2 / 20_000))
    assert gw.metrics.cohens_d(v, u) == pytest.approx(-gw.metrics.cohens_d(u, v))


@pytest.mark.parametrize("bad, match", [(np.zeros((32, 32)), "images: expected a 4-D array"),
                                        ("text", "images: expected a real numeric")])
def test_bad_images_named(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        gw.metrics.photometry(bad)


def test_photometry_is_a_table_with_one_row_per_galaxy(survey):
    table = gw.metrics.photometry(survey)
    assert isinstance(table, pd.DataFrame) and len(table) == len(survey)
    # the 6 px aperture misses light, so aperture magnitudes are fainter than the truth
    assert (table.mag_r > survey.catalog.mag_r - 0.05).all()


def test_sgd_is_wasserstein_not_a_difference_of_means():
    """Same mean, different spread: W1 = mean |x - 1.5| = 1.0 (a mean difference would say 0)."""
    a = pd.DataFrame({"mag_g": [0.0, 1.0, 2.0, 3.0], "mag_r": [1.0, 1.0, 1.0, 1.0],
                      "g-r": [0.0, 0.0, 0.0, 0.0], "r_half": [1.0, 2.0, 3.0, 4.0]})
    b = pd.DataFrame({"mag_g": [1.5] * 4, "mag_r": [1.0] * 4, "g-r": [0.0] * 4,
                      "r_half": [4.0, 3.0, 2.0, 1.0]})
    sgd = gw.metrics.synthetic_galaxy_distance(a, b)
    assert sgd == {"g": 1.0, "r": 0.0, "g-r": 0.0, "r_half": 0.0, "total": 1.0}


def test_photometry_and_sgd_stream_stores_chunk_by_chunk(survey, tmp_path, monkeypatch):
    import galwidgets.metrics.chunked as chunked

    monkeypatch.setattr(chunked, "STORE_CHUNK", 5)  # 24 galaxies: five chunks
    a, b = survey.split(0.5, seed=1)
    store_a = gw.data.open_store(a.save(tmp_path / "a.h5"))
    store_b = gw.data.open_store(b.save(tmp_path / "b.h5"))
    pd.testing.assert_frame_equal(gw.metrics.photometry(store_a, aperture_radius=4),
                                  gw.metrics.photometry(a, aperture_radius=4))
    sgd = gw.metrics.synthetic_galaxy_distance
    assert sgd(store_a, store_b) == sgd(a, b)
    with pytest.raises(TypeError, match="an on-disk SurveyStore is not read whole here"):
        gw.metrics.flux_scale(store_a, store_b)
