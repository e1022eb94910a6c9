"""PSFOperator: linearity, adjoint, flux conservation, analytic PSFs, redshift rescaling, validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from astropy.convolution import Gaussian2DKernel
from scipy.signal import fftconvolve

import galwidgets as gw
from galwidgets.diffusion.operators import (
    PSFOperator,
    angular_pixel_scale,
    crop_center,
    estimate_sigma_y,
    resampling_matrix,
)


def _gauss_psf(sigma=1.5, size=15):
    return Gaussian2DKernel(sigma, x_size=size, y_size=size).array / Gaussian2DKernel(
        sigma, x_size=size, y_size=size).array.sum()


@pytest.fixture
def resampling_op():
    psf = np.stack([_gauss_psf(s) for s in (1.0, 1.5, 2.0)])
    return PSFOperator(psf, (32, 32), model_pixel_scale=0.262, obs_pixel_scale=0.42,
                       model_zeropoint=22.5, obs_zeropoint=27.0)


def test_matches_observe_convolution():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 24, 24)).astype(np.float32)
    _, kernels = gw.data.observe(x, 0.6, 0.262, 0.0, seed=0)
    op = PSFOperator(kernels, (24, 24))
    expected = fftconvolve(x.astype(np.float64), kernels[None], mode="same", axes=(-2, -1))
    np.testing.assert_allclose(op(torch.from_numpy(x)).numpy(), expected, atol=1e-5)


def test_linear_and_adjoint(resampling_op):
    op = resampling_op
    g = torch.Generator().manual_seed(1)
    x1, x2 = torch.randn(2, 3, 32, 32, generator=g, dtype=torch.float64).unbind(0)
    x1, x2 = x1[None], x2[None]
    torch.testing.assert_close(op(2 * x1 - 3 * x2), 2 * op(x1) - 3 * op(x2))
    y = torch.randn(1, 3, *op.obs_shape, generator=g, dtype=torch.float64)
    lhs = (op(x1) * y).sum()
    rhs = (x1 * op.adjoint(y)).sum()
    torch.testing.assert_close(lhs, rhs, rtol=1e-10, atol=1e-10)


def test_flux_conservation_with_resampling(resampling_op):
    op = resampling_op
    assert op.obs_shape == (20, 20)  # 32 px of 0.262" cover 8.4" = 20 px of 0.42"
    x = torch.zeros(1, 3, 32, 32, dtype=torch.float64)
    x[..., 13:19, 12:17] = torch.rand(3, 6, 5, generator=torch.Generator().manual_seed(2))
    y = op(x)
    np.testing.assert_allclose(y.sum((2, 3)).numpy(), x.sum((2, 3)).numpy() * 10 ** (0.4 * 4.5), rtol=1e-10)
    m = resampling_matrix(32, 20, 1.6)
    np.testing.assert_allclose(m.sum(0), 1.0)  # every input pixel fully shared out


def test_analytic_gaussian_psf():
    """A Gaussian of σ₁ blurred by a Gaussian PSF of σ₂ is a Gaussian of √(σ₁² + σ₂²)."""
    n = 65
    yy, xx = np.mgrid[:n, :n] - (n - 1) / 2
    s1, s2 = 2.0, 1.5
    img = np.exp(-(xx**2 + yy**2) / (2 * s1**2))
    op = PSFOperator(Gaussian2DKernel(s2, x_size=21, y_size=21), (n, n))
    out = op(torch.from_numpy(img)[None, None]).numpy()[0, 0]
    var = (out * xx**2).sum() / out.sum()
    assert var == pytest.approx(s1**2 + s2**2, rel=2e-3)
    assert out.sum() == pytest.approx(img.sum(), rel=1e-6)


def test_redshift_rescaling():
    scale = angular_pixel_scale(0.262, 0.094, 0.2)
    assert 0.13 < scale < 0.15  # 1.75 / 3.3 kpc per arcsec
    assert angular_pixel_scale(0.262, 0.1, 0.1) == pytest.approx(0.262)
    op = PSFOperator(_gauss_psf(), (64, 64), model_pixel_scale=0.262, obs_pixel_scale=0.168,
                     model_redshift=0.094, redshift=0.2)
    assert op.effective_pixel_scale == pytest.approx(scale)
    assert op.obs_shape == (round(64 * scale / 0.168),) * 2
    dimmed = PSFOperator(_gauss_psf(), (64, 64), model_pixel_scale=0.262, obs_pixel_scale=0.168,
                         model_redshift=0.094, redshift=0.2, dimming=True)
    assert 0.1 < dimmed.flux_scale[0] < 0.3


def test_from_checkpoint(tiny_checkpoint):
    ckpt = gw.load_checkpoint(tiny_checkpoint, device="cpu")
    op = PSFOperator.from_checkpoint(ckpt, _gauss_psf(), obs_pixel_scale=0.262, obs_zeropoint=27.0)
    assert op.model_shape == (ckpt.size, ckpt.size) == op.obs_shape
    assert op.flux_scale == pytest.approx([10 ** 1.8] * 3)
    with pytest.raises(ValueError, match="model_redshift"):
        PSFOperator.from_checkpoint(ckpt, _gauss_psf(), obs_pixel_scale=0.168, redshift=0.2)


def test_differentiable(resampling_op):
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    resampling_op(x).square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_estimate_sigma_and_crop():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(3, 64, 64)) * np.array([0.01, 0.02, 0.05])[:, None, None]
    y[:, 28:36, 28:36] += 5.0  # a bright source is clipped away
    np.testing.assert_allclose(estimate_sigma_y(y), [0.01, 0.02, 0.05], rtol=0.08)
    assert crop_center(np.zeros((3, 259, 259)), (53, 53)).shape == (3, 53, 53)
    img = np.arange(25).reshape(5, 5)
    assert crop_center(img, (3, 3))[1, 1] == 12


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"psf": np.ones((5, 5))}, "psf: expected a normalised kernel"),
        ({"psf": np.ones((41, 41)) / 41**2}, "psf: kernel of 41x41 pixels is larger"),
        ({"psf": np.ones((4, 4)) / 16}, "odd kernel sides"),
        ({"psf": np.full((3, 3), np.nan)}, "finite"),
        ({"psf": np.ones((3, 3)) / 9, "model_shape": (32,)}, "model_shape"),
        ({"psf": np.ones((3, 3)) / 9, "model_pixel_scale": 0.2}, "obs_pixel_scale"),
        ({"psf": np.ones((3, 3)) / 9, "flux_scale": -1.0}, "flux_scale"),
        ({"psf": np.ones((3, 3)) / 9, "model_pixel_scale": -0.2, "obs_pixel_scale": 0.2},
         "model_pixel_scale"),
    ],
)
def test_validation(kwargs, match):
    kwargs.setdefault("model_shape", (32, 32))
    with pytest.raises(ValueError, match=match):
        PSFOperator(**kwargs)


def test_band_mismatch():
    op = PSFOperator(np.stack([_gauss_psf()] * 3), (32, 32))
    with pytest.raises(ValueError, match=r"x: expected images shaped \(N, 3, 32, 32\)"):
        op(torch.zeros(1, 2, 32, 32))
    with pytest.raises(ValueError, match="y: expected"):
        op.adjoint(torch.zeros(1, 3, 16, 16))
