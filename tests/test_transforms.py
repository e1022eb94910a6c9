import numpy as np
import pytest
import torch

import galwidgets as gw


@pytest.fixture
def flux():
    rng = np.random.default_rng(0)
    return (rng.gamma(0.5, 1.0, size=(4, 3, 16, 16)) - 0.05).astype(np.float32)


def test_clipminmax_maps_range_and_inverts(flux):
    norm = gw.data.ClipMinMax(clip=5.5)
    x = norm.forward(flux)
    assert x.min() >= -1 and x.max() <= 1 and x.dtype == np.float32
    assert norm.forward(np.array([[[[0.0, 5.5]]]]))[0, 0, 0].tolist() == [-1.0, 1.0]
    inside = np.clip(flux, 0, 5.5)
    np.testing.assert_allclose(norm.inverse(x), inside, atol=1e-6)


def test_asinh_round_trip_numpy_and_torch(flux):
    norm = gw.data.AsinhStretch(softening=(0.01, 0.02, 0.03), upper=50.0)
    x = norm.forward(flux)
    assert -1 <= x.min() and x.max() <= 1
    kept = np.clip(flux, -3 * np.array([0.01, 0.02, 0.03])[:, None, None], 50.0)  # clip at lower, upper
    np.testing.assert_allclose(norm.inverse(x), kept, rtol=1e-4, atol=1e-6)
    t = norm.forward(torch.from_numpy(flux))
    assert isinstance(t, torch.Tensor)
    np.testing.assert_allclose(t.numpy(), x, atol=1e-6)


def test_asinh_is_monotonic_and_fit_reads_noise(survey):
    norm = gw.data.AsinhStretch.fit(survey.images)
    sky = [survey.meta["sky_sigma"][b] for b in survey.bands]
    np.testing.assert_allclose(norm.softening, sky, rtol=0.1)
    s, u = np.array(norm.softening), np.array(norm.upper)
    ramp = np.linspace(-2.9 * s, 0.99 * u, 100, dtype=np.float32).T.reshape(1, 3, 1, 100)
    assert np.all(np.diff(norm.forward(ramp)[0, :, 0], axis=-1) > 0)


@pytest.mark.parametrize("norm", [gw.data.ClipMinMax(3.0), gw.data.AsinhStretch(0.02, (5, 6, 7))])
def test_config_round_trip(norm):
    assert gw.data.normalizer_from_config(norm.to_config()) == norm


def test_bad_parameters():
    with pytest.raises(ValueError, match="clip"):
        gw.data.ClipMinMax(clip=-1)
    with pytest.raises(ValueError, match="config"):
        gw.data.normalizer_from_config({"name": "Pickle"})


def _two_groups(n_faint=40, n_bright=4, size=24, seed=0):
    """Faint galaxies peaking near 1 and a few bright outliers peaking near 50 (flux units)."""
    rng = np.random.default_rng(seed)
    y, x = np.indices((size, size)) - (size - 1) / 2
    profile = np.exp(-(x**2 + y**2) / (2 * 2.0**2))
    peaks = np.concatenate([rng.uniform(0.7, 1.3, n_faint), rng.uniform(40, 60, n_bright)])
    colours = np.array([0.6, 1.0, 1.4])  # band flux ratios g : r : z
    images = peaks[:, None, None, None] * colours[None, :, None, None] * profile
    images += rng.normal(0, 0.01, images.shape)
    return images.astype(np.float32)


def test_clipminmax_fit_separates_faint_bulk_from_bright_outliers():
    images = _two_groups()
    norm = gw.data.ClipMinMax.fit(images)
    faint_top = images[:40].max()  # brightest pixel of any faint galaxy (z band, ~1.8)
    bright_bottom = np.percentile(images[40:].reshape(4, -1), 99.9, axis=1).min()
    assert isinstance(norm.clip, float)
    assert faint_top < norm.clip < bright_bottom
    # the midpoint of the two cluster centroids of the per-galaxy 99.9th percentiles
    p999 = np.percentile(images.reshape(len(images), -1), 99.9, axis=1)
    assert norm.clip == pytest.approx((p999[:40].mean() + p999[40:].mean()) / 2, rel=1e-3)
    # the two-means split does not depend on the order of the galaxies
    assert gw.data.ClipMinMax.fit(images[::-1]) == norm


def test_clipminmax_fit_per_band_and_deterministic(survey):
    images = _two_groups()
    norm = gw.data.ClipMinMax.fit(images, per_band=True)
    assert isinstance(norm.clip, tuple) and len(norm.clip) == 3
    assert norm.clip[0] < norm.clip[1] < norm.clip[2]  # follows the band colours 0.6 : 1.0 : 1.4
    for c, a in enumerate(norm.clip):
        assert images[:40, c].max() < a < images[40:, c].max()
    assert gw.data.ClipMinMax.fit(images, per_band=True) == norm
    assert gw.data.ClipMinMax.fit(survey) == gw.data.ClipMinMax.fit(survey.images)


@pytest.mark.parametrize("per_band", [False, True])
def test_fitted_clipminmax_config_round_trip(per_band):
    norm = gw.data.ClipMinMax.fit(_two_groups(), per_band=per_band)
    config = norm.to_config()
    assert config["name"] == "ClipMinMax"
    rebuilt = gw.data.normalizer_from_config(config)
    assert rebuilt == norm
    x = _two_groups(seed=1)
    np.testing.assert_array_equal(rebuilt.forward(x), norm.forward(x))


def test_clipminmax_fit_bad_inputs():
    images = _two_groups()
    with pytest.raises(ValueError, match="percentile"):
        gw.data.ClipMinMax.fit(images, percentile=0)
    with pytest.raises(ValueError, match="images"):
        gw.data.ClipMinMax.fit(images[0])
    with pytest.raises(ValueError, match="images"):
        gw.data.ClipMinMax.fit(images[:1])  # one galaxy: nothing to cluster
    with pytest.raises(ValueError, match="images"):
        gw.data.ClipMinMax.fit(-np.abs(images))  # no positive flux


@pytest.mark.parametrize("norm", [gw.data.ClipMinMax(5.5), gw.data.AsinhStretch(0.01, 10.0)])
def test_inverse_without_clip_extends_smoothly_and_keeps_gradients(norm):
    x = torch.tensor([[[[0.5, 1.0, 1.2]]]], requires_grad=True)
    clipped, free = norm.inverse(x), norm.inverse(x, clip=False)
    assert torch.equal(clipped[..., :2], free[..., :2])  # identical inside [-1, 1]
    assert free[..., 2] > clipped[..., 2]  # beyond it, continues instead of saturating
    free.sum().backward()
    assert (x.grad > 0).all()  # every pixel gets a gradient (the clip would zero the last one)
