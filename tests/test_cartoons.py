"""Procedural cartoon galaxies (gw.data.cartoons)."""

from __future__ import annotations

import numpy as np
import pytest

import galwidgets as gw
from galwidgets.data.drawings import KINDS


def test_deterministic_per_seed_and_prefix_stable():
    a, b = gw.data.cartoons(8, seed=3), gw.data.cartoons(8, seed=3)  # also: callable twice
    np.testing.assert_array_equal(a.images, b.images)
    assert a.catalog.equals(b.catalog)
    assert not np.allclose(gw.data.cartoons(8, seed=4).images, a.images)
    np.testing.assert_array_equal(gw.data.cartoons(4, seed=3).images, a.images[:4])


def test_kinds_shapes_catalog():
    s = gw.data.cartoons(10, size=48, bands=("g", "r", "i", "z"))
    assert isinstance(s, gw.data.Survey) and s.images.shape == (10, 4, 48, 48)
    assert s.images.dtype == np.float32 and s.bands == ("g", "r", "i", "z")
    assert s.pixel_scale == 0.262 and s.zeropoint == 22.5
    assert s.catalog["kind"].tolist() == list(KINDS) * 2 + list(KINDS[:2])
    for col in ("mag_g", "mag_r", "mag_i", "mag_z", "radius_arcsec", "axis_ratio", "position_angle",
                "n_arms", "pitch_angle"):
        assert col in s.catalog
    assert (s.catalog.loc[s.catalog.kind == "spiral", "n_arms"] >= 2).all()
    only = gw.data.cartoons(3, kinds=("ring",))
    assert set(only.catalog["kind"]) == {"ring"}


def test_flux_finite_positive_and_survey_like():
    s = gw.data.cartoons(24, seed=1)
    assert np.isfinite(s.images).all() and (s.images >= 0).all()
    totals = s.images.sum(axis=(2, 3))
    assert (totals > 0).all()
    # the drawn r magnitude is the total of the image; in the mock survey's range (r < 18)
    np.testing.assert_allclose(-2.5 * np.log10(totals[:, 1]) + 22.5, s.catalog["mag_r"], atol=1e-4)
    assert s.catalog["mag_r"].between(15.5, 17.5).all()
    # drawn inside the stamp: the border is empty
    border = np.concatenate([s.images[..., 0, :], s.images[..., -1, :], s.images[..., :, 0],
                             s.images[..., :, -1]], axis=-1)
    assert (border == 0).all()
    small = gw.data.cartoons(24, size=24, seed=2)
    assert (small.images[..., 0, :] == 0).all() and (small.images[..., :, -1] == 0).all()


def test_flat_colours_and_sharp_edges():
    s = gw.data.cartoons(4, kinds=("ellipse",), seed=5)
    for img in s.images:
        inside = img[1] > 0.999 * img[1].max()
        assert inside.sum() > 20
        # uniform colour: the g/r ratio is the same in every pixel of the shape
        ratio = img[0][img[1] > 0] / img[1][img[1] > 0]
        assert ratio.std() < 1e-5 * ratio.mean()
        # uniform brightness inside, and a sharp edge: every pixel is full, empty or an edge pixel
        partial = (img[1] > 0) & ~inside
        assert partial.sum() < 0.6 * inside.sum()


def test_noise_and_blur_options():
    clean = gw.data.cartoons(2, seed=0)
    blurred = gw.data.cartoons(2, seed=0, psf_fwhm=1.2)
    assert blurred.images.max() < clean.images.max()
    np.testing.assert_allclose(blurred.images.sum(axis=(2, 3)), clean.images.sum(axis=(2, 3)), rtol=1e-3)
    assert blurred.psf_fwhm == {"g": 1.2, "r": 1.2, "z": 1.2}
    noisy = gw.data.cartoons(2, seed=0, sky_sigma={"g": 0.01, "r": 0.02, "z": 0.04})
    corner = (noisy.images - clean.images)[:, :, :8, :8]
    np.testing.assert_allclose(corner.std(axis=(0, 2, 3)), [0.01, 0.02, 0.04], rtol=0.15)


def test_validation():
    with pytest.raises(ValueError, match="kinds"):
        gw.data.cartoons(2, kinds=("blob",))
    with pytest.raises(ValueError, match="bands"):
        gw.data.cartoons(2, bands=("g", "q"))
    with pytest.raises(ValueError, match="n"):
        gw.data.cartoons(0)
    with pytest.raises(ValueError, match="mag_r"):
        gw.data.cartoons(2, mag_r=(18, 15))
    with pytest.raises(ValueError, match="sky_sigma"):
        gw.data.cartoons(2, sky_sigma={"g": 0.1})
