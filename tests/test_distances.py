"""The Synthetic Galaxy Distance against the published measurement, its bootstrap, binned KL."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wasserstein_distance

import galwidgets as gw


def published_aperture_magnitude(band_image, radius=6):
    """The published SGD code's measurement, restated loop by loop for one band of one galaxy.

    Whole pixels with centre distance <= radius from pixel (h//2, w//2); background the median of
    the four 20x20 corners stacked together, times the number of pixels; zeropoint 22.5.
    """
    h, w = band_image.shape
    rows, cols = np.ogrid[:h, :w]
    inside = np.sqrt((cols - int(w / 2)) ** 2 + (rows - int(h / 2)) ** 2) <= radius
    corners = np.stack([band_image[:20, :20], band_image[:20, -20:],
                        band_image[-20:, :20], band_image[-20:, -20:]])
    flux = band_image[inside].sum() - np.median(corners) * inside.sum()
    return 22.5 - 2.5 * np.log10(flux)


def published_terms(set_0, set_1):
    mags = [np.array([[published_aperture_magnitude(gal[c].astype(np.float64)) for c in range(3)]
                      for gal in s]) for s in (set_0, set_1)]
    terms = {"g": 0, "r": 1, "z": 2}
    out = {name: wasserstein_distance(mags[0][:, c], mags[1][:, c]) for name, c in terms.items()}
    out["g-r"] = wasserstein_distance(mags[0][:, 0] - mags[0][:, 1], mags[1][:, 0] - mags[1][:, 1])
    out["r-z"] = wasserstein_distance(mags[0][:, 1] - mags[0][:, 2], mags[1][:, 1] - mags[1][:, 2])
    return out


@pytest.fixture(scope="module")
def two_sets():
    a = gw.data.simulate_survey(40, seed=3, progress=False)
    b = gw.data.simulate_survey(40, seed=4, progress=False, mag_limit=21.5)  # the script pairs them
    return a, b


def test_smith2022_terms_equal_the_published_measurement(two_sets):
    a, b = two_sets
    ours = gw.metrics.synthetic_galaxy_distance(a, b, convention="smith2022")
    reference = published_terms(a.images, b.images)
    for term, value in reference.items():
        assert ours[term] == pytest.approx(value, rel=1e-9, abs=1e-12), term


def test_smith2022_aperture_includes_pixels_at_exactly_the_radius():
    weights = gw.metrics.whole_pixel_aperture((64, 64), 6)
    assert weights.sum() == 113 and weights[32, 38] == 1 and weights[32 - 6, 32] == 1
    image = np.zeros((1, 3, 64, 64), np.float32)
    image[..., 32, 38] = 10.0  # on the aperture edge of the (H//2, W//2) centre
    table = gw.metrics.photometry(image, convention="smith2022")
    assert table.flux_r[0] == pytest.approx(10.0)


def test_smith2022_refuses_arguments_that_change_it(two_sets):
    a, _ = two_sets
    with pytest.raises(ValueError, match="center: convention='smith2022' fixes"):
        gw.metrics.photometry(a, convention="smith2022", center=(10, 10))
    with pytest.raises(ValueError, match="zeropoint"):
        gw.metrics.photometry(a.images, convention="smith2022", zeropoint=27)
    with pytest.raises(ValueError, match="images: convention='smith2022' needs cutouts of at least 40"):
        gw.metrics.photometry(np.ones((1, 3, 32, 32)), convention="smith2022")
    with pytest.raises(ValueError, match="convention: expected one of"):
        gw.metrics.photometry(a, convention="smith")


def test_smith2022_half_light_radius_is_a_curve_of_growth_in_g():
    """A Gaussian's half-light radius is sigma sqrt(2 ln 2), even under the published convention."""
    y, x = np.mgrid[:64, :64]
    sigma = 3.0
    g = np.exp(-((x - 32) ** 2 + (y - 32) ** 2) / (2 * sigma**2))
    image = np.stack([g, 4 * g, 4 * g])[None].astype(np.float32)
    table = gw.metrics.photometry(image, convention="smith2022", pixel_scale=1.0)
    assert table.r_half[0] == pytest.approx(sigma * np.sqrt(2 * np.log(2)), rel=0.01)


def test_bootstrap_error_shrinks_with_sample_size():
    rng = np.random.default_rng(0)

    def table(n, shift):
        return pd.DataFrame({"mag_g": rng.normal(shift, 1, n), "mag_r": rng.normal(0, 1, n),
                             "g-r": rng.normal(0, 0.3, n), "r_half": rng.gamma(2, 1, n)})

    small = gw.metrics.synthetic_galaxy_distance(table(100, 0.5), table(100, 0), bootstrap=50, seed=1)
    large = gw.metrics.synthetic_galaxy_distance(table(1600, 0.5), table(1600, 0), bootstrap=50, seed=1)
    assert {"g_err", "total_err"} <= set(small)
    # the standard error of a W1 estimate falls like 1/sqrt(n): 16x the galaxies, ~1/4 the error
    assert 0.12 < large["g_err"] / small["g_err"] < 0.45
    assert large["g"] == pytest.approx(0.5, abs=3 * large["g_err"] + 0.02)
    plain = gw.metrics.synthetic_galaxy_distance(table(50, 0), table(50, 0))
    assert "g_err" not in plain
    with pytest.raises(ValueError, match="bootstrap"):
        gw.metrics.synthetic_galaxy_distance(table(50, 0), table(50, 0), bootstrap=-1)


def test_binned_kl_analytic_cases():
    kl = gw.metrics.binned_kl
    rng = np.random.default_rng(0)
    u = rng.uniform(0, 1, 5000)
    assert kl(u, u) == 0.0
    # p: 10,000 points evenly over [0, 1) -> p_i = 0.1 in each of the 10 bins. q: 10,000 points
    # evenly over [0, 0.5) plus one at the top -> q_i = 2000/10001 in bins 0-4, 1/10001 in bin 9,
    # 0 in bins 5-8 (empty bins: epsilon)
    p = np.linspace(0.0, 1.0, 10_000, endpoint=False) + 0.5e-4
    q = np.concatenate([np.linspace(0.0, 0.5, 10_000, endpoint=False) + 0.25e-4, [1.0 - 1e-9]])
    eps = 1e-10
    q_low, q_top = 2000 / 10001, 1 / 10001
    expected_pq = 5 * 0.1 * np.log(0.1 / q_low) + 4 * 0.1 * np.log(0.1 / eps) + 0.1 * np.log(0.1 / q_top)
    expected_qp = 5 * q_low * np.log(q_low / 0.1) + q_top * np.log(q_top / 0.1)
    assert kl(p, q, epsilon=eps) == pytest.approx(expected_pq, rel=1e-6)  # large but finite
    assert kl(q, p) == pytest.approx(expected_qp, rel=1e-6)  # bins empty in p contribute nothing
    assert kl([1, 1, 1], [1, 1]) == 0.0
    assert np.isnan(kl([np.nan], [1.0, 2.0]))
    with pytest.raises(ValueError, match="bins"):
        kl(u, u, bins=0)


def test_binned_kl_uses_joint_range_and_ten_bins():
    # two narrow samples far apart share no bin of the joint range -> large penalty both ways
    far = gw.metrics.binned_kl(np.full(50, 0.0), np.full(50, 10.0))
    assert far == pytest.approx(np.log(1 / 1e-10), rel=1e-3)
    # two samples in different halves of one bin of 10 are the same histogram
    assert gw.metrics.binned_kl([0.0, 0.01, 1.0], [0.02, 0.03, 1.0]) == pytest.approx(0.0, abs=1e-9)


def test_galaxy_kl_loss_per_redshift_bin():
    rng = np.random.default_rng(2)
    n = 3000
    z = rng.uniform(0, 1, n)
    z2 = rng.uniform(0, 1, n)

    def galaxies(z):
        return pd.DataFrame({"z": z, "sersic_n": rng.normal(1 + 2 * z, 0.3),
                             "ellipticity": rng.uniform(0, 1, n)})

    real, good = galaxies(z), galaxies(z2)
    blind = good.assign(sersic_n=rng.normal(2, 0.3, n))  # ignores redshift: wrong in every bin but one
    props = ("sersic_n", "ellipticity")
    kl_good = gw.metrics.galaxy_kl_loss(real, good, props, redshift_bins=5)
    kl_blind = gw.metrics.galaxy_kl_loss(real, blind, props, redshift_bins=5)
    assert list(kl_good.columns) == ["z_min", "z_max", "n_real", "n_generated", *props, "total"]
    assert len(kl_good) == 5 and kl_good.n_real.sum() == n
    assert kl_good.attrs["mean"]["sersic_n"] < 0.1
    assert kl_blind.attrs["mean"]["sersic_n"] > 5 * kl_good.attrs["mean"]["sersic_n"]
    # the middle bin (z ~ 0.5, n ~ 2) is where the blind model happens to be right
    assert kl_blind.sersic_n.idxmin() == 2
    sparse = gw.metrics.galaxy_kl_loss(real, good.iloc[:20], props, redshift_bins=5)
    assert sparse.sersic_n.isna().all()  # < 10 generated galaxies per bin: NaN, not noise
    with pytest.raises(ValueError, match="generated: missing columns"):
        gw.metrics.galaxy_kl_loss(real, good.drop(columns="z"), props)


def test_galaxy_kl_loss_value_range_pooled_per_bin_or_global():
    # redshift bin [0, 1): real at the 10 bin centres of [0.05, 0.95] (100 each), generated only at
    # the lower 5 (200 each). Bin [1, 2]: identical samples reaching 100.
    centres = np.arange(10) / 10 + 0.05
    low = pd.DataFrame({"z": 0.5, "area": np.repeat(centres, 100)})
    gen_low = pd.DataFrame({"z": 0.5, "area": np.repeat(centres[:5], 200)})
    high = pd.DataFrame({"z": 1.5, "area": np.linspace(0.05, 100.0, 1000)})
    real, generated = pd.concat([low, high]), pd.concat([gen_low, high])
    eps = 1e-10
    p = np.full(10, 0.1 + eps) / (1 + 10 * eps)
    q = np.r_[np.full(5, 0.2 + eps), np.full(5, eps)] / (1 + 10 * eps)
    expected = float(np.sum(p * np.log(p / q)))  # = 0.5 ln(1/2) + 0.5 ln(0.1 / eps), nearly
    kw = dict(redshift_bins=[0, 1, 2], min_galaxies=10)
    pooled = gw.metrics.galaxy_kl_loss(real, generated, ["area"], **kw)
    assert pooled.attrs["value_range"] == "pooled"
    assert pooled.area.tolist() == pytest.approx([expected, 0.0], rel=1e-9, abs=1e-12)
    assert pooled.area[0] == pytest.approx(gw.metrics.binned_kl(low.area, gen_low.area))
    # one range 0.05-100 for both redshift bins: bins 10 wide, so [0, 1) holds all its galaxies in
    # one histogram bin for both samples and the difference vanishes
    overall = gw.metrics.galaxy_kl_loss(real, generated, ["area"], value_range="global", **kw)
    assert overall.attrs["value_range"] == "global"
    assert overall.area.tolist() == pytest.approx([0.0, 0.0], abs=1e-12)
    # a galaxy outside the redshift edges does not widen the global range
    halved = pd.concat([gen_low, high.assign(area=high.area / 2)])
    base = gw.metrics.galaxy_kl_loss(real, halved, ["area"], value_range="global", **kw)
    assert base.area[1] > 1
    stray = pd.concat([halved, pd.DataFrame({"z": [5.0], "area": [1e6]})])
    shifted = gw.metrics.galaxy_kl_loss(real, stray, ["area"], value_range="global", **kw)
    assert shifted.area.tolist() == pytest.approx(base.area.tolist(), abs=1e-12)
    # half the generated galaxies of [0, 1) are outliers at 1000: the pooled range 0.05-1000 puts every
    # real galaxy in the first bin (KL = ln 2); the real range keeps the real histogram and counts the
    # outliers in its last bin (q = 0.05 in bins 0-8, 0.55 in bin 9)
    outliers = pd.concat([pd.DataFrame({"z": 0.5, "area": np.r_[np.repeat(centres, 50), np.full(500, 1e3)]}),
                          high])
    q_real = np.r_[np.full(9, 0.05 + eps), 0.55 + eps] / (1 + 10 * eps)
    with_outliers = {r: gw.metrics.galaxy_kl_loss(real, outliers, ["area"], value_range=r, **kw).area.tolist()
                     for r in ("pooled", "real")}
    one = np.r_[1 + eps, np.full(9, eps)] / (1 + 10 * eps)
    half = np.r_[0.5 + eps, np.full(8, eps), 0.5 + eps] / (1 + 10 * eps)
    assert with_outliers["pooled"] == pytest.approx([float(np.sum(one * np.log(one / half))), 0.0], abs=1e-9)
    assert with_outliers["real"] == pytest.approx([float(np.sum(p * np.log(p / q_real))), 0.0], abs=1e-9)
    assert gw.metrics.galaxy_kl_loss(real, generated, ["area"], value_range="real", **kw).area.tolist() == \
        pytest.approx(pooled.area.tolist())  # no generated value beyond the real range: as pooled
    with pytest.raises(ValueError, match="value_range"):
        gw.metrics.galaxy_kl_loss(real, generated, ["area"], value_range="joint", **kw)
    with pytest.raises(ValueError, match="bins"):
        gw.metrics.galaxy_kl_loss(real, generated, ["area"], bins=0, **kw)
