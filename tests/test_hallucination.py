import warnings

import numpy as np
import pytest
import torch

import galwidgets as gw


def samples(n, seed, shape=(3, 24, 24), scale=1.0):
    return scale * np.random.default_rng(seed).normal(size=(n, *shape))


def test_ratio_is_one_when_posterior_and_prior_share_a_distribution():
    ratio = gw.metrics.variance_ratio(samples(300, 0), samples(300, 1), radius=8)
    assert isinstance(ratio, float)
    assert ratio == pytest.approx(1.0, abs=0.05)
    per_band = gw.metrics.variance_ratio(samples(300, 0), samples(300, 1), radius=8, per_band=True)
    assert per_band.shape == (3,) and np.allclose(per_band, 1.0, atol=0.06)


def test_scaled_samples_give_the_squared_scale():
    prior = samples(50, 2)
    assert gw.metrics.variance_ratio(0.5 * prior, prior, radius=6) == pytest.approx(0.25, rel=1e-12)
    ratio_map = gw.metrics.variance_ratio_map(torch.from_numpy(0.5 * prior), prior)
    assert ratio_map.shape == (3, 24, 24)
    np.testing.assert_allclose(ratio_map, 0.25, rtol=1e-6)
    # independent samples with half the spread
    assert gw.metrics.variance_ratio(samples(400, 3, scale=0.5), samples(400, 4), radius=8) == \
        pytest.approx(0.25, rel=0.05)


def test_batched_posteriors_with_shared_or_per_galaxy_priors():
    prior = samples(40, 5)
    scales = np.array([0.1, 0.5, 1.0, 2.0])
    posterior = scales[:, None, None, None, None] * prior[None]  # (N=4, S=40, C, H, W)
    shared = gw.metrics.variance_ratio(posterior, prior, radius=5)
    np.testing.assert_allclose(shared, scales**2, rtol=1e-10)
    per_galaxy = gw.metrics.variance_ratio(posterior, np.stack([prior] * 4), radius=5, per_band=True)
    assert per_galaxy.shape == (4, 3)
    np.testing.assert_allclose(per_galaxy, np.repeat(scales[:, None] ** 2, 3, axis=1), rtol=1e-10)
    assert gw.metrics.variance_ratio_map(posterior, prior).shape == (4, 3, 24, 24)


def test_aperture_averages_only_the_pixels_inside_the_circle():
    prior = samples(30, 6, shape=(1, 32, 32))
    y, x = np.mgrid[:32, :32] - 15.5
    constrained = np.hypot(x, y) > 4.5  # data pin down everything but the central disc
    posterior = np.where(constrained, 0.0, prior)
    assert gw.metrics.variance_ratio(posterior, prior, radius=3) == pytest.approx(1.0)
    wide = gw.metrics.variance_ratio(posterior, prior, radius=12)
    assert wide == pytest.approx(np.sum(~constrained) / (np.pi * 144), rel=0.1)
    assert gw.metrics.variance_ratio(posterior, prior, radius=3, center=(5.0, 5.0)) == 0.0
    mask = gw.metrics.prior_driven_mask(posterior, prior)
    np.testing.assert_array_equal(mask[0], ~constrained)


def test_zero_prior_variance_gives_nan_without_warnings():
    prior = samples(20, 7)
    prior[:, 0] = 1.0  # a band the prior never varies
    prior[:, 1, :12] = 0.0  # and half of another band
    posterior = samples(20, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ratio_map = gw.metrics.variance_ratio_map(posterior, prior)
        per_band = gw.metrics.variance_ratio(posterior, prior, radius=8, per_band=True)
        overall = gw.metrics.variance_ratio(posterior, prior, radius=8)
        mask = gw.metrics.prior_driven_mask(posterior, prior)
    assert np.isnan(ratio_map[0]).all() and np.isnan(ratio_map[1, :12]).all()
    assert np.isfinite(ratio_map[1, 12:]).all() and np.isfinite(ratio_map[2]).all()
    assert np.isnan(per_band[0]) and np.isfinite(per_band[1:]).all()
    assert np.isnan(overall)
    assert not mask[0].any()


def test_validation_names_the_argument():
    prior = samples(5, 9)
    with pytest.raises(ValueError, match="posterior: expected at least 2 samples"):
        gw.metrics.variance_ratio(prior[:1], prior)
    with pytest.raises(ValueError, match="prior: expected at least 2 samples"):
        gw.metrics.variance_ratio_map(prior, prior[:1])
    with pytest.raises(ValueError, match="prior"):
        gw.metrics.variance_ratio(prior, prior[:, :2])
    with pytest.raises(ValueError, match="posterior"):
        gw.metrics.variance_ratio(prior[0], prior)
    with pytest.raises(ValueError, match="radius"):
        gw.metrics.variance_ratio(prior, prior, radius=13)
    with pytest.raises(ValueError, match="radius"):
        gw.metrics.variance_ratio(prior, prior, radius=0)
    with pytest.raises(ValueError, match="prior"):
        gw.metrics.variance_ratio(np.stack([prior] * 2), np.stack([prior] * 3))
    with pytest.raises(TypeError, match="posterior"):
        gw.metrics.variance_ratio(np.array([["a"]]), prior)
