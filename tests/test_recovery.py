"""``gw.metrics.inpainting_recovery`` and the classical fills it is compared against."""

from __future__ import annotations

import numpy as np
import pytest

import galwidgets as gw
from galwidgets.diffusion.inpainting import classical_fill


def test_recovery_counts_bright_occluded_pixels_within_tolerance():
    truth = np.zeros((1, 2, 8, 8), np.float32)
    truth[0, :, 2:4, 2:6] = 10.0  # 8 bright pixels per band
    mask = np.zeros((1, 1, 8, 8), bool)
    mask[0, 0, 2:4, 2:4] = True  # 4 of them occluded, plus faint ones below
    mask[0, 0, 6, :] = True
    pred = truth.copy()
    pred[0, 0, 2, 2] = 10.5  # within 10 %
    pred[0, 1, 2, 2] = 12.0  # off by 20 %
    pred[0, :, 6, :] = 99.0  # faint truth: not scored whatever the prediction
    assert gw.metrics.inpainting_recovery(pred, truth, mask, [1.0, 1.0]) == pytest.approx(7 / 8)
    assert gw.metrics.inpainting_recovery(pred, truth, mask, 1.0, tolerance=0.25) == 1.0
    assert np.isnan(gw.metrics.inpainting_recovery(pred, truth, mask, 1.0, n_sigma=20))
    with pytest.raises(ValueError, match="sky_sigma"):
        gw.metrics.inpainting_recovery(pred, truth, mask, [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="mask"):
        gw.metrics.inpainting_recovery(pred, truth, mask[..., :4], 1.0)


def test_classical_fills_keep_known_pixels_and_fill_a_plane_exactly():
    yy, xx = np.mgrid[:16, :16].astype(np.float32)
    images = np.stack([np.stack([xx + yy, 2 * xx])] * 2)  # (2, 2, 16, 16) linear ramps
    mask = np.zeros((2, 1, 16, 16), bool)
    mask[:, :, 6:9, 3:12] = True
    corrupted = np.where(mask, np.nan, images)
    biharmonic = classical_fill(corrupted, mask, "biharmonic")
    np.testing.assert_allclose(biharmonic, images, atol=1e-3)  # a plane is biharmonic
    nearest = classical_fill(corrupted, mask, "nearest")
    np.testing.assert_array_equal(nearest[~np.broadcast_to(mask, images.shape)],
                                  images[~np.broadcast_to(mask, images.shape)])
    assert np.isfinite(nearest).all() and not np.allclose(nearest, images)
    with pytest.raises(ValueError, match="method"):
        classical_fill(images, mask, "mean")
