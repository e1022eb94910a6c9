"""How well an inpainting recovers occluded flux: the figure of merit of Smith et al. (2022, Fig. 6)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import as_real_array

__all__ = ["inpainting_recovery"]


def inpainting_recovery(
    pred: Any,
    truth: Any,
    mask: Any,
    sky_sigma: Any,
    n_sigma: float = 3.0,
    tolerance: float = 0.1,
) -> float:
    """Fraction of occluded bright pixels recovered to within ``tolerance`` of their true flux.

    Smith et al. (2022, MNRAS 511, 1808, §4.3 and Fig. 6) score inpainted satellite trails by the
    occluded pixels brighter than ``n_sigma`` times the sky noise in the true image: the fraction
    with ``|pred − truth| <= tolerance · |truth|``.

    Parameters
    ----------
    pred, truth : array, (N, C, H, W)
        Inpainted and true flux images.
    mask : bool array, broadcastable to (N, C, H, W)
        True for occluded pixels (as :func:`galwidgets.data.add_satellite_trails` returns it).
    sky_sigma : float or array, (C,)
        Sky noise per band (e.g. :func:`galwidgets.data.sky_noise` of the truth).
    n_sigma : float
        Pixels scored: occluded and brighter than ``n_sigma · sky_sigma`` in the truth.
    tolerance : float
        Relative tolerance on the flux.

    Returns
    -------
    float
        The fraction, or NaN when no occluded pixel is bright enough to score.
    """
    pred = as_real_array(pred, "pred")
    truth = as_real_array(truth, "truth")
    if pred.shape != truth.shape or truth.ndim != 4:
        raise ValueError(f"pred: expected images shaped like truth (N, C, H, W) {truth.shape}, "
                         f"got {pred.shape}")
    try:
        occluded = np.broadcast_to(np.asarray(mask, dtype=bool), truth.shape)
    except ValueError:
        raise ValueError(f"mask: shape {np.shape(mask)} does not broadcast to the images' "
                         f"{truth.shape}") from None
    sigma = np.asarray(sky_sigma, dtype=np.float64)
    if sigma.ndim > 1 or sigma.size not in (1, truth.shape[1]) or not np.all(sigma > 0):
        raise ValueError(f"sky_sigma: expected a positive noise level or one per band "
                         f"({truth.shape[1]}), got {sky_sigma!r}")
    if not (np.isfinite(n_sigma) and n_sigma >= 0):
        raise ValueError(f"n_sigma: expected a threshold >= 0, got {n_sigma!r}")
    if not (np.isfinite(tolerance) and tolerance > 0):
        raise ValueError(f"tolerance: expected a positive relative tolerance, got {tolerance!r}")
    scored = occluded & (truth > n_sigma * sigma.reshape(1, -1, 1, 1))
    if not scored.any():
        return float("nan")
    return float((np.abs(pred - truth) <= tolerance * np.abs(truth))[scored].mean())
