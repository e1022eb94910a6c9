import numpy as np
import pytest
from scipy.signal import fftconvolve

from galwidgets.data.corruptions import add_satellite_trails, observe, psf_kernel, satellite_trail

# The default mask covers |distance| < σ √(2 ln 100): a band 2.58 FWHM wide.
MASK_WIDTH_PER_FWHM = np.sqrt(2 * np.log(100)) / np.sqrt(2 * np.log(2))


def _principal_angle(mask):
    """Direction (degrees in [0, 180)) of the long axis of the masked pixels, in (x, y)."""
    y, x = np.nonzero(mask)
    points = np.stack([x, y], axis=1).astype(float)
    points -= points.mean(axis=0)
    vector = np.linalg.eigh(points.T @ points)[1][:, -1]
    return np.degrees(np.arctan2(vector[1], vector[0])) % 180


def _fwhm(image):
    """FWHM in pixels of a centred, circular profile: radius where it crosses half its peak."""
    cy, cx = np.unravel_index(np.argmax(image), image.shape)
    y, x = np.indices(image.shape)
    r = np.hypot(x - cx, y - cy).ravel()
    order = np.argsort(r)
    r, v = r[order], image.ravel()[order]
    inside = np.nonzero(v < image.max() / 2)[0][0]  # first sample below half maximum
    r0, r1, v0, v1 = r[inside - 1], r[inside], v[inside - 1], v[inside]
    return 2 * (r0 + (v0 - image.max() / 2) / (v0 - v1) * (r1 - r0))


def _gaussian_source(size=96, sigma=3.0, flux=100.0):
    y, x = np.indices((size, size)) - (size - 1) / 2
    image = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return (flux * image / image.sum()).astype(np.float32)


# -- satellite trails ----------------------------------------------------------------------------
def test_horizontal_trail_is_a_row_stripe_at_the_offset():
    trail, mask = satellite_trail((64, 64), angle=0, width=3, offset=5, seed=1)
    rows = np.nonzero(mask.any(axis=1))[0]
    assert mask[rows].all() and not mask[np.setdiff1d(np.arange(64), rows)].any()  # whole rows only
    assert rows.mean() == pytest.approx(31.5 + 5)
    assert np.ptp(rows) + 1 == pytest.approx(MASK_WIDTH_PER_FWHM * 3, abs=1)
    assert trail.dtype == np.float32 and mask.dtype == bool


def test_vertical_trail_is_a_column_stripe_at_minus_the_offset():
    _, mask = satellite_trail((64, 64), angle=90, width=3, offset=5, seed=1)
    cols = np.nonzero(mask.any(axis=0))[0]
    assert mask[:, cols].all() and mask.sum() == 64 * len(cols)
    assert cols.mean() == pytest.approx(31.5 - 5)


@pytest.mark.parametrize("angle", [30.0, 125.0])
def test_diagonal_trail_runs_at_the_requested_angle(angle):
    _, mask = satellite_trail((128, 128), angle=angle, width=3, offset=0, seed=1)
    assert _principal_angle(mask) == pytest.approx(angle, abs=1.0)


def test_peak_brightness_and_mask_threshold():
    trail, mask = satellite_trail((33, 33), angle=0, width=4, brightness=2.5, offset=0, seed=0)
    assert trail.max() == pytest.approx(2.5)  # the line passes through pixel centres of row 16
    np.testing.assert_array_equal(mask, trail > 0.01 * 2.5)
    _, wide = satellite_trail((33, 33), angle=0, width=4, brightness=2.5, offset=0, mask_fraction=1e-4)
    assert wide.sum() > mask.sum()


def test_width_scales_the_masked_area_linearly():
    counts = np.array(
        [satellite_trail((128, 128), angle=30, width=w, offset=0, seed=1)[1].sum() for w in (2, 4, 8)]
    )
    np.testing.assert_allclose(counts[1:] / counts[:-1], 2.0, rtol=0.05)
    length = 128 / np.cos(np.radians(30))  # the trail crosses the full width of the cutout
    assert counts[1] == pytest.approx(MASK_WIDTH_PER_FWHM * 4 * length, rel=0.05)


@pytest.mark.parametrize("duty", [0.25, 0.5, 0.75])
def test_dashes_light_the_duty_fraction_periodically(duty):
    _, mask = satellite_trail((33, 128), angle=0, width=3, offset=0, dash_period=16, dash_duty=duty, seed=3)
    centre_row = mask[16]
    assert centre_row.mean() == pytest.approx(duty, abs=1 / 64)
    np.testing.assert_array_equal(centre_row[16:], centre_row[:-16])  # period 16 pixels
    assert (mask[mask.any(axis=1)] == centre_row).all()  # dashes cut straight across the trail


def test_trail_is_deterministic_per_seed_and_random_otherwise():
    a = satellite_trail((48, 48), width=(1, 5), brightness=(0.5, 5), dash_period=(5, 15), seed=7)
    b = satellite_trail((48, 48), width=(1, 5), brightness=(0.5, 5), dash_period=(5, 15), seed=7)
    c = satellite_trail((48, 48), width=(1, 5), brightness=(0.5, 5), dash_period=(5, 15), seed=8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    assert 0.5 <= a[0].max() <= 5


def test_random_trails_cross_the_central_region():
    for seed in range(20):
        _, mask = satellite_trail((64, 64), width=1, seed=seed)
        assert mask[16:48, 16:48].any()


def test_add_satellite_trails_to_images_and_survey(survey):
    images = np.zeros((3, 3, 32, 32), dtype=np.float32)
    corrupted, mask = add_satellite_trails(images, n_trails=2, seed=4, bands=(1.0, 0.5, 0.0), brightness=2.0)
    assert corrupted.shape == images.shape and corrupted.dtype == np.float32
    assert mask.shape == (3, 1, 32, 32) and mask.dtype == bool
    np.testing.assert_allclose(corrupted[:, 1], 0.5 * corrupted[:, 0], atol=1e-7)
    assert not corrupted[:, 2].any()
    assert corrupted[:, 0][~mask[:, 0]].max() < 2 * 0.01 * 2.0  # two trails, each < 1 % of its peak
    assert corrupted[:, 0][mask[:, 0]].min() > 0
    assert not np.array_equal(mask[0], mask[1])  # each image gets its own trails
    kwargs = {"n_trails": 2, "seed": 4, "bands": (1.0, 0.5, 0.0), "brightness": 2.0}
    again, mask_again = add_satellite_trails(images, **kwargs)
    np.testing.assert_array_equal(again, corrupted)
    np.testing.assert_array_equal(mask_again, mask)

    from_survey, survey_mask = add_satellite_trails(survey, seed=0, bands={"g": 1.0, "r": 1.0, "z": 2.0})
    added = from_survey - survey.images
    np.testing.assert_allclose(added[:, 2], 2 * added[:, 0], atol=1e-6)
    assert survey_mask.shape == (len(survey), 1, survey.size, survey.size)


def test_trail_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="width"):
        satellite_trail((32, 32), width=-1.0)
    with pytest.raises(ValueError, match="shape"):
        satellite_trail((2, 32, 32))
    with pytest.raises(ValueError, match="dash_duty"):
        satellite_trail((32, 32), dash_period=8, dash_duty=1.5)
    with pytest.raises(ValueError, match="brightness"):
        satellite_trail((32, 32), brightness=(5, 1))
    with pytest.raises(ValueError, match="images"):
        add_satellite_trails(np.zeros((3, 32, 32)))
    with pytest.raises(ValueError, match="bands"):
        add_satellite_trails(np.zeros((1, 3, 32, 32)), bands=(1.0, 1.0))
    with pytest.raises(TypeError, match="bands"):
        add_satellite_trails(np.zeros((1, 3, 32, 32)), bands={"g": 1.0})


# -- PSF and noise -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["moffat", "kolmogorov"])
def test_psf_kernel_is_normalised_odd_and_centred(kind):
    kernel = psf_kernel(1.2, 0.262, kind)
    assert kernel.shape[0] % 2 == 1 and kernel.shape[0] == kernel.shape[1]
    assert kernel.sum() == pytest.approx(1.0, abs=1e-12)
    centre = kernel.shape[0] // 2
    assert np.unravel_index(np.argmax(kernel), kernel.shape) == (centre, centre)
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-12)


@pytest.mark.parametrize("kind", ["moffat", "kolmogorov"])
def test_observe_conserves_flux_and_returns_the_kernel_used(kind):
    source = _gaussian_source()[None, None].repeat(3, axis=1)
    observed, kernels = observe(source, (1.0, 1.2, 1.4), 0.262, sky_sigma=0.0, psf=kind)
    np.testing.assert_allclose(observed.sum(axis=(-2, -1)), source.sum(axis=(-2, -1)), rtol=1e-4)
    assert kernels.shape[0] == 3 and kernels.shape[1] % 2 == 1
    np.testing.assert_allclose(kernels.sum(axis=(1, 2)), 1.0, atol=1e-12)
    expected = fftconvolve(source[0, 1].astype(np.float64), kernels[1], mode="same")
    np.testing.assert_allclose(observed[0, 1], expected, atol=1e-6)
    assert _fwhm(observed[0, 0]) < _fwhm(observed[0, 2])  # per-band PSFs were applied


@pytest.mark.parametrize(("kind", "fwhm", "pixel_scale"), [("moffat", 1.2, 0.262), ("kolmogorov", 1.0, 0.2)])
def test_point_source_takes_the_requested_fwhm_without_shift(kind, fwhm, pixel_scale):
    point = np.zeros((1, 1, 65, 65), dtype=np.float32)
    point[0, 0, 32, 32] = 1.0
    observed, _ = observe(point, fwhm, pixel_scale, sky_sigma=0.0, psf=kind)
    assert _fwhm(observed[0, 0]) * pixel_scale == pytest.approx(fwhm, rel=0.05)
    y, x = np.indices(observed.shape[-2:])
    image = observed[0, 0]
    centroid = (image * x).sum() / image.sum(), (image * y).sum() / image.sum()
    np.testing.assert_allclose(centroid, (32, 32), atol=1e-3)


def test_sky_noise_std_matches_sky_sigma_and_is_seeded():
    zeros = np.zeros((4, 3, 64, 64), dtype=np.float32)
    sigma = np.array([0.01, 0.02, 0.05])
    observed, _ = observe(zeros, 1.2, 0.262, sky_sigma=sigma, seed=5)
    np.testing.assert_allclose(observed.std(axis=(0, 2, 3)), sigma, rtol=0.05)
    np.testing.assert_array_equal(observe(zeros, 1.2, 0.262, sky_sigma=sigma, seed=5)[0], observed)
    assert not np.array_equal(observe(zeros, 1.2, 0.262, sky_sigma=sigma, seed=6)[0], observed)


@pytest.mark.parametrize(("flux", "gain"), [(1.0, 100.0), (4.0, 100.0), (4.0, 25.0)])
def test_poisson_variance_is_flux_over_gain(flux, gain):
    flat = np.full((2, 1, 80, 80), flux, dtype=np.float32)
    delta = np.ones((1, 1), dtype=np.float32)  # identity kernel: the model image stays flat
    observed, _ = observe(flat, None, 0.262, sky_sigma=0.0, psf=delta, poisson_gain=gain, seed=1)
    assert observed.mean() == pytest.approx(flux, rel=0.01)
    assert observed.var() == pytest.approx(flux / gain, rel=0.05)


def test_user_kernel_is_used_as_given():
    kernel = np.zeros((3, 3))
    kernel[1, 2] = 1.0  # a one-pixel shift
    image = _gaussian_source(size=32)[None, None]
    observed, used = observe(image, None, 0.262, sky_sigma=0.0, psf=kernel)
    np.testing.assert_allclose(observed[0, 0, :, 1:], image[0, 0, :, :-1], atol=1e-6)
    assert used.shape == (1, 3, 3)


def test_observe_bad_inputs_name_the_argument():
    images = np.zeros((1, 3, 32, 32), dtype=np.float32)
    with pytest.raises(ValueError, match="psf"):
        observe(images, 1.2, 0.262, 0.01, psf="airy")
    with pytest.raises(ValueError, match=r"psf.*sum"):
        observe(images, None, 0.262, 0.01, psf=np.full((3, 3), 0.2))
    with pytest.raises(ValueError, match=r"psf.*odd"):
        observe(images, None, 0.262, 0.01, psf=np.full((2, 2), 0.25))
    with pytest.raises(ValueError, match="images"):
        observe(images[0], 1.2, 0.262, 0.01)
    with pytest.raises(ValueError, match="psf_fwhm"):
        observe(images, (1.0, 1.2), 0.262, 0.01)
    with pytest.raises(ValueError, match="psf_fwhm"):
        observe(images, -1.0, 0.262, 0.01)
    with pytest.raises(ValueError, match="sky_sigma"):
        observe(images, 1.2, 0.262, -0.01)
    with pytest.raises(ValueError, match="pixel_scale"):
        observe(images, 1.2, 0.0, 0.01)
    with pytest.raises(ValueError, match="poisson_gain"):
        observe(images, 1.2, 0.262, 0.01, poisson_gain=0.0)
    with pytest.raises(ValueError, match="kind"):
        psf_kernel(1.2, 0.262, kind="gaussian")
