"""Sky-noise estimates from the images themselves."""

from __future__ import annotations

import numpy as np

__all__ = ["sky_noise"]


def sky_noise(images: np.ndarray, border: int = 4) -> np.ndarray:
    """Per-band pixel noise from differences of neighbouring pixels near the cutout edge.

    Differences of adjacent pixels cancel the smooth light of galaxies that reach the edge, so
    ``σ = 1.4826 · MAD(Δ) / √2`` over the ``border``-pixel frame estimates the white sky noise even
    in tight cutouts (correlated noise, as in resampled coadds, is underestimated).

    Parameters
    ----------
    images : array (N, C, H, W)
        Flux images.
    border : int
        Width of the frame used, in pixels.

    Returns
    -------
    numpy.ndarray
        σ per band, shape ``(C,)``.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 4:
        raise ValueError(f"images: expected (N, C, H, W), got shape {images.shape}")
    if not 1 <= border <= min(images.shape[-2:]) // 2:
        raise ValueError(f"border: expected 1..{min(images.shape[-2:]) // 2} pixels, got {border}")
    rows = np.concatenate([images[..., :border, :], images[..., -border:, :]], axis=-2)
    cols = np.concatenate([images[..., :, :border], images[..., :, -border:]], axis=-1)
    diffs = np.concatenate(
        [np.diff(rows, axis=-1).reshape(*images.shape[:2], -1),
         np.diff(cols, axis=-2).reshape(*images.shape[:2], -1)], axis=-1,
    )
    diffs = np.moveaxis(diffs, 1, 0).reshape(images.shape[1], -1)
    diffs = diffs[:, np.isfinite(diffs).all(axis=0)] if np.isfinite(diffs).any() else diffs
    mad = np.median(np.abs(diffs - np.median(diffs, axis=1, keepdims=True)), axis=1)
    return 1.4826 * mad / np.sqrt(2)
