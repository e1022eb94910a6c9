"""Diffusion Posterior Sampling: plumbing on a tiny model, errors, posterior_summary, and the
shipped model's fit to a simulated observation (slow)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import galwidgets as gw
from galwidgets.diffusion.operators import PSFOperator, crop_center
from galwidgets.diffusion.posterior import model_to_flux

from .conftest import SHARED_DATA


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    return gw.load_checkpoint(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def observation(survey, tiny):
    truth = survey.images[:1]
    y, kernels = gw.data.observe(truth, 0.6, 0.262, 0.02, seed=0)
    return y, PSFOperator(kernels, (32, 32))


def test_shapes_callback_and_seed(tiny, observation):
    y, op = observation
    seen = []
    kw = dict(n_samples=3, steps=4, zeta=0.01, progress=False)
    x = gw.samplers.dps(tiny, None, y[0], op, 0.02, callback=seen.append,
                        generator=torch.Generator().manual_seed(0), **kw)
    assert x.shape == (3, 3, 32, 32) and torch.isfinite(x).all()
    assert x.abs().max() <= 1
    assert len(seen) == 4 and {"i", "t", "x", "x0_pred", "misfit"} <= set(seen[0])
    assert seen[0]["misfit"].shape == (3,)
    again = gw.samplers.dps(tiny, None, y[0], op, 0.02, generator=torch.Generator().manual_seed(0), **kw)
    torch.testing.assert_close(x, again)
    flux = gw.samplers.dps(tiny, None, y, op, 0.02, generator=torch.Generator().manual_seed(0),
                           return_flux=True, **kw)
    torch.testing.assert_close(flux, tiny.normalizer.inverse(x))
    # two observations: samples grouped by observation
    two = gw.samplers.dps(tiny.model, tiny.schedule, np.concatenate([y, y]), op, [0.02] * 3,
                          normalizer=tiny.normalizer, n_samples=2, steps=2, progress=False)
    assert two.shape == (4, 3, 32, 32)


@pytest.mark.slow
def test_ddpm_all_steps(tiny, observation):
    y, op = observation
    x = gw.samplers.dps(tiny, None, y, op, n_samples=1, zeta=0.01, progress=False,
                        generator=torch.Generator().manual_seed(1))  # sigma_y estimated
    assert x.shape == (1, 3, 32, 32) and torch.isfinite(x).all()


def test_zero_step_size_is_ddim(tiny, observation):
    y, op = observation
    x_T = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    dps = gw.samplers.dps(tiny, None, y, op, 0.02, n_samples=2, steps=5, zeta=0.0, eta=0.0, x_T=x_T,
                          progress=False)
    ddim = gw.samplers.ddim(tiny.model, tiny.schedule, (2, 3, 32, 32), steps=5, eta=0.0, x_T=x_T,
                            autocast=False, channels_last=False, progress=False)
    torch.testing.assert_close(dps, ddim, atol=1e-4, rtol=1e-4)


def test_step_size_is_per_sample(tiny, observation):
    """A sample's trajectory does not depend on the other samples of the batch (unlike a norm
    over the whole batch, as in the public DPS code)."""
    y, op = observation
    x_T = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    kw = dict(steps=5, zeta=0.05, eta=0.0, progress=False)
    batch = gw.samplers.dps(tiny, None, y, op, 0.02, n_samples=3, x_T=x_T, **kw)
    alone = gw.samplers.dps(tiny, None, y, op, 0.02, n_samples=1, x_T=x_T[1:2], **kw)
    torch.testing.assert_close(batch[1:2], alone, atol=1e-4, rtol=1e-4)
    moved = gw.samplers.dps(tiny, None, y, op, 0.02, n_samples=1, x_T=x_T[1:2], **{**kw, "zeta": 0.0})
    assert (moved - alone).abs().max() > 1e-4  # the guidance does act


def test_gradient_survives_clipping(tiny):
    x = torch.full((1, 3, 4, 4), 1.5, requires_grad=True)
    clipped = x + (x.clamp(-1, 1) - x).detach()
    model_to_flux(tiny.normalizer, clipped).sum().backward()
    assert (x.grad > 0).all()
    torch.testing.assert_close(model_to_flux(tiny.normalizer, clipped.detach()),
                               tiny.normalizer.inverse(x.detach()))


def test_errors(tiny, observation):
    y, op = observation
    kw = dict(steps=2, progress=False)
    with pytest.raises(ValueError, match="sigma_y"):
        gw.samplers.dps(tiny, None, y, op, -0.1, **kw)
    with pytest.raises(ValueError, match="sigma_y"):
        gw.samplers.dps(tiny, None, y, op, [0.1, 0.1], **kw)
    with pytest.raises(ValueError, match="y: expected"):
        gw.samplers.dps(tiny, None, y[:, :, :16], op, 0.1, **kw)
    with pytest.raises(ValueError, match="y: expected"):
        gw.samplers.dps(tiny, None, y[:, :2], PSFOperator(np.ones((3, 3)) / 9, (32, 32)), 0.1, **kw)
    with pytest.raises(TypeError, match="schedule"):
        gw.samplers.dps(tiny.model, None, y, op, 0.1, **kw)
    with pytest.raises(ValueError, match="n_samples"):
        gw.samplers.dps(tiny, None, y, op, 0.1, n_samples=0, **kw)
    with pytest.raises(ValueError, match="steps"):
        gw.samplers.dps(tiny, None, y, op, 0.1, steps=0, progress=False)
    with pytest.raises(ValueError, match="y: expected finite"):
        gw.samplers.dps(tiny, None, np.full_like(y, np.nan), op, 0.1, **kw)


def test_posterior_summary():
    rng = np.random.default_rng(0)
    prior = rng.normal(size=(8, 3, 16, 16))
    post = 1.0 + 0.5 * rng.normal(size=(6, 3, 16, 16))
    out = gw.metrics.posterior_summary(post, prior, radius=5)
    assert out["mean"].shape == out["std"].shape == out["variance_ratio_map"].shape == (3, 16, 16)
    np.testing.assert_allclose(out["mean"], post.mean(0))
    np.testing.assert_allclose(out["std"] ** 2, np.var(post, axis=0, ddof=1))
    assert out["variance_ratio"] == pytest.approx(gw.metrics.variance_ratio(post, prior, radius=5))
    assert 0.1 < out["variance_ratio"] < 0.5 and out["variance_ratio_per_band"].shape == (3,)
    assert out["n_samples"] == 6
    batched = gw.metrics.posterior_summary(np.stack([post, post]), prior, radius=5)
    assert batched["mean"].shape == (2, 3, 16, 16) and batched["variance_ratio"].shape == (2,)
    with pytest.raises(ValueError, match="samples"):
        gw.metrics.posterior_summary(post[:1], prior)


# -- the shipped model ------------------------------------------------------------------------
MOCK_SIGMA = np.array([0.00702, 0.0115, 0.028])  # the desi-tiny training sky noise per band


@pytest.mark.slow
def test_mock_deconvolution_fits_and_improves():
    """Acceptance 1 at reduced size: χ²_ν of the re-convolved posterior mean within 0.5-2, and
    closer to the truth than the observation."""
    torch.set_num_threads(2)
    ckpt = gw.pretrained.load("desi-tiny", device="cpu")
    truth = gw.data.simulate_survey(1, size=64, seed=12345, progress=False).images
    y, kernels = gw.data.observe(truth, 2.0, 0.262, MOCK_SIGMA, seed=1)
    op = PSFOperator.from_checkpoint(ckpt, kernels)
    x = gw.samplers.dps(ckpt, None, y, op, MOCK_SIGMA, n_samples=2, steps=30, zeta=0.006,
                        generator=torch.Generator().manual_seed(0), progress=False, return_flux=True)
    mean = x.mean(0, keepdim=True)
    chi2 = float((((y - op(mean).numpy()) / MOCK_SIGMA[:, None, None]) ** 2).mean())
    assert 0.5 < chi2 < 2.0
    rms = np.sqrt(((mean.numpy() - truth) ** 2).mean())
    assert rms < np.sqrt(((y - truth) ** 2).mean())


def _hsc_available() -> bool:
    return (SHARED_DATA / "hsc_pdr3" / "test1").is_dir()


@pytest.mark.skipif(not _hsc_available(), reason="needs ../shared/data/hsc_pdr3")
def test_hsc_operator_grid():
    """The HSC cutout is cropped to the model's field of view at its redshift and its PSF accepted."""
    from astropy.io import fits

    folder = SHARED_DATA / "hsc_pdr3" / "test1"
    psf = fits.getdata(next(folder.glob("psf-*HSC-I*.fits"))).astype(np.float64)
    image = fits.getdata(next(folder.glob("cutout-HSC-I*.fits")), ext=1)
    op = PSFOperator(np.stack([psf] * 3), (64, 64), model_pixel_scale=0.262, obs_pixel_scale=0.168,
                     model_redshift=0.094, redshift=0.2168, model_zeropoint=22.5, obs_zeropoint=27.0)
    crop = crop_center(image, op.obs_shape)
    assert crop.shape == op.obs_shape and 45 < op.obs_shape[0] < 55  # 64 x 0.132\" / 0.168\"
    assert op(torch.zeros(1, 3, 64, 64)).shape == (1, 3, *op.obs_shape)
