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
