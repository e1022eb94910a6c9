import warnings

import numpy as np
import pandas as pd
import pytest

import galwidgets as gw
from galwidgets.metrics import NONPARAMETRIC_FLAGS, central_segmap, gini, gini_m20, m20

FLAGS = NONPARAMETRIC_FLAGS


def gaussian_image(sigma, size=121, centre=(60.3, 59.83)):
    y, x = np.mgrid[:size, :size]
    return np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * sigma**2))


@pytest.fixture(scope="module")
def mocks():
    """Mock 64x64 galaxies whose central segment does not touch the border (regular galaxies: a
    merger or a clumpy irregular is segmented differently with and without deblending)."""
    survey = gw.data.simulate_survey(16, size=64, seed=3, merger_probability=0.0, clumpy_probability=0.0,
                                     progress=False)
    keep = [i for i, img in enumerate(survey.images[:, 1])
            if not central_segmap(img.astype(float)).touches_edge][:8]
    return survey.images[keep]


# ---------------------------------------------------------------- analytic cases


def test_gini_uniform_is_zero_and_single_bright_pixel_is_one():
    assert gini(np.full(100, 3.0)) == pytest.approx(0.0, abs=1e-12)
    assert gini([0.0] * 99 + [5.0]) == 1.0
    assert gini([-2.0, 2.0]) == pytest.approx(0.0)  # absolute values (Lotz et al. 2004)
    assert np.isnan(gini([1.0])) and np.isnan(gini(np.zeros(5)))


def test_gini_of_known_distributions():
    rng = np.random.default_rng(1)
    assert gini(rng.uniform(size=200_000)) == pytest.approx(1 / 3, abs=0.003)
    assert gini(rng.exponential(size=200_000)) == pytest.approx(1 / 2, abs=0.003)


def test_m20_of_two_symmetric_pairs():
    # pairs of flux 3 at distance 2 and of flux 1 at distance 10 about the centre: the brightest
    # 20 % of the flux is the bright pair, so M20 = log10(2*3*2^2 / (2*3*2^2 + 2*1*10^2))
    img = np.zeros((41, 41))
    img[20, 18] = img[20, 22] = 3.0
    img[10, 20] = img[30, 20] = 1.0
    assert m20(img) == pytest.approx(np.log10(24 / 224), abs=1e-12)


def test_m20_of_a_gaussian_matches_the_continuous_value():
    # brightest 20 % of a circular Gaussian: r^2/2s^2 < ln 1.25, so M20/Mtot = 1 - 0.8 (1 + ln 1.25)
    expected = np.log10(1 - 0.8 * (1 + np.log(1.25)))
    assert m20(gaussian_image(8.0)) == pytest.approx(expected, abs=0.005)
    assert np.isnan(m20(np.zeros((8, 8))))


def test_gini_m20_of_a_noisy_gaussian_galaxy():
    broad = gaussian_image(6.0, 64, (31.4, 31.7))[None, None].astype(np.float32)
    noise = np.random.default_rng(0).normal(0, 1e-3, broad.shape).astype(np.float32)
    table = gini_m20(broad + noise, progress=False)
    assert table.flag[0] == 0
    assert table.m20[0] == pytest.approx(np.log10(1 - 0.8 * (1 + np.log(1.25))), abs=0.08)


# ---------------------------------------------------------------- statmorph


def statmorph_gini_m20(images):
    import statmorph

    values = []
    for img in images[:, 1].astype(np.float64):
        seg = central_segmap(img)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            morph = statmorph.SourceMorphology(img - seg.sky, seg.segmap, seg.label,
                                               weightmap=np.full(img.shape, seg.sky_sigma))
            values.append((morph.gini, morph.m20))
    return np.array(values)


def test_agrees_with_statmorph_on_mock_galaxies(mocks):
    pytest.importorskip("statmorph")
    ref = statmorph_gini_m20(mocks)
    segmaps = np.stack([central_segmap(img.astype(float)).segmap for img in mocks[:, 1]])
    for table in (gini_m20(mocks, progress=False, segmaps=segmaps), gini_m20(mocks, progress=False)):
        assert (table.flag & 0b11111 == 0).all()
        dg, dm = np.abs(table.gini - ref[:, 0]), np.abs(table.m20 - ref[:, 1])
        # the largest difference (0.053, fast segmentation without deblending) is an edge-on disk
        # whose dust lane splits its light in two; regular galaxies agree to 0.02
        assert np.median(dg) <= 0.01 and dg.max() < 0.06
        assert np.median(dm) <= 0.05 and dm.max() < 0.25


def test_reference_galaxy_of_statmorph(shared_slice):
    image, segmap, reference = shared_slice
    table = gini_m20(image[None, None], segmaps=segmap[None], subtract_sky=False, progress=False)
    # same stamp, mask and centroid as statmorph; Gini, M20 and rpetro differ by 0.0007, 0.0005
    # and 0.065 px because of the approximations (partial pixels, centroid-centred ellipses)
    assert table.xc_centroid[0] == pytest.approx(reference["xc_centroid"], rel=1e-9)
    assert table.yc_centroid[0] == pytest.approx(reference["yc_centroid"], rel=1e-9)
    assert table.gini[0] == pytest.approx(reference["gini"], abs=0.002)
    assert table.m20[0] == pytest.approx(reference["m20"], abs=0.005)
    assert table.rpetro_ellip[0] == pytest.approx(reference["rpetro_ellip"], rel=0.005)


@pytest.fixture
def shared_slice():
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "shared" / "data" / "statmorph_slice"
    if not folder.exists():
        pytest.skip("../shared/data is not available")
    import json

    from astropy.io import fits

    with fits.open(folder / "slice.fits") as hdus:
        image, segmap = hdus[0].data.astype(np.float32), hdus[1].data.astype(np.int64)
    return image, segmap, json.loads((folder / "reference.json").read_text())["values"]


# ---------------------------------------------------------------- bad stamps and inputs


def test_bad_stamps_give_nan_and_flags_never_an_exception(mocks):
    good = mocks[0]
    edge = np.roll(good, 31, axis=-1)
    nan_pixel = good.copy()
    nan_pixel[:, 20, 20] = np.nan
    batch = np.stack([
        np.zeros_like(good), -np.abs(good) - 1, np.full_like(good, np.nan), np.full_like(good, 3.0),
        edge, nan_pixel, good,
    ])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = gini_m20(batch, progress=False)
    assert list(table.columns[:2]) == ["gini", "m20"] and len(table) == 7
    for i in range(5):
        assert np.isnan(table.gini[i]) and np.isnan(table.m20[i]) and table.flag[i] > 0
    for i in (0, 1, 2, 3):
        assert table.flag[i] & FLAGS["no_source"]
    assert table.flag[2] == FLAGS["no_source"] | FLAGS["nonfinite_pixels"]
    assert table.flag[4] & FLAGS["edge"]
    assert table.flag[5] == FLAGS["nonfinite_pixels"] and np.isfinite(table.gini[5])
    assert table.flag[6] == 0 and table.gini[5] == pytest.approx(table.gini[6], abs=0.01)
    kept = gini_m20(edge[None], keep_edge=True, progress=False)
    assert kept.flag[0] & FLAGS["edge"] and np.isfinite(kept.gini[0])


def test_band_survey_and_batches_agree(mocks):
    survey = gw.data.simulate_survey(5, size=64, seed=4, progress=False)
    a = gini_m20(survey, progress=False)
    b = gini_m20(survey.images, band="r", batch_size=2, progress=False)
    c = gini_m20(survey.images[:, 1:2], progress=False)
    np.testing.assert_allclose(a.gini, b.gini)
    np.testing.assert_allclose(a.m20, c.m20)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"images": np.zeros((2, 64, 64))}, ValueError, "images: expected a 4-D array"),
        ({"images": np.zeros((1, 3, 16, 16)), "band": "i"}, ValueError, "band: expected one of"),
        ({"images": np.zeros((1, 3, 16, 16)), "band": 3}, ValueError, "band: index 3"),
        ({"images": np.zeros((1, 3, 16, 16)), "bands": ("g", "r")}, ValueError, "bands: got 2"),
        ({"images": np.zeros((1, 1, 16, 16)), "n_sigma": -1}, ValueError, "n_sigma"),
        ({"images": np.zeros((1, 1, 16, 16)), "batch_size": 0}, ValueError, "batch_size"),
        ({"images": np.zeros((1, 1, 16, 16)), "segmaps": np.zeros((1, 8, 8), int)}, ValueError, "segmaps"),
        ({"images": np.array([["a"]])}, TypeError, "images"),
    ],
)
def test_input_validation_names_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        gini_m20(progress=False, **kwargs)
    with pytest.raises(ValueError, match="image: expected a 2-D"):
        m20(np.zeros((2, 3, 3)))


def test_gini_m20_of_a_store_equals_the_survey_in_chunks(tmp_path, monkeypatch):
    import galwidgets.metrics.chunked as chunked

    monkeypatch.setattr(chunked, "STORE_CHUNK", 4)
    survey = gw.data.simulate_survey(10, size=48, seed=5, progress=False)
    store = gw.data.open_store(survey.save(tmp_path / "s.h5"))
    expected = gini_m20(survey, progress=False)
    pd.testing.assert_frame_equal(gini_m20(store, progress=False), expected)
    segmaps = np.stack([central_segmap(img.astype(float)).segmap for img in survey.images[:, 1]])
    pd.testing.assert_frame_equal(gini_m20(store, segmaps=segmaps, progress=False),
                                  gini_m20(survey, segmaps=segmaps, progress=False))
    with pytest.raises(ValueError, match="segmaps: expected integer label maps shaped"):
        gini_m20(store, segmaps=segmaps[:3], progress=False)
