"""Segmentation of the central galaxy of a cutout, the input every morphology measurement needs.

Sources are detected with photutils (:func:`~photutils.segmentation.detect_sources`) above a
threshold of ``n_sigma`` sky standard deviations, where the sky level and its noise come from
sigma-clipped statistics of the stamp (:func:`astropy.stats.sigma_clipped_stats`); blended sources
are split with :func:`~photutils.segmentation.deblend_sources`. The galaxy of interest is the
segment under the cutout centre, or the segment closest to it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from astropy.stats import sigma_clipped_stats
from photutils.segmentation import deblend_sources, detect_sources

from .._validation import check_positive, check_positive_int

__all__ = ["CentralSegmentation", "central_segmap", "sky_statistics"]


@dataclass(frozen=True)
class CentralSegmentation:
    """Segmentation of one cutout.

    Attributes
    ----------
    segmap : numpy.ndarray of int, shape (H, W)
        Labels of all detected sources (0 is sky).
    label : int
        Label of the central galaxy in ``segmap``; 0 when nothing was detected.
    sky : float
        Sigma-clipped median of the stamp (the sky level).
    sky_sigma : float
        Sigma-clipped standard deviation of the stamp (the sky noise per pixel).
    """

    segmap: np.ndarray
    label: int
    sky: float
    sky_sigma: float

    @property
    def found(self) -> bool:
        """True when a central source was detected."""
        return self.label > 0

    @property
    def central(self) -> np.ndarray:
        """Boolean map of the central galaxy's pixels."""
        return self.segmap == self.label if self.label else np.zeros(self.segmap.shape, bool)

    @property
    def others(self) -> np.ndarray:
        """Boolean map of the pixels of all other detected sources (to mask)."""
        return (self.segmap > 0) & ~self.central

    @property
    def touches_edge(self) -> bool:
        """True when the central segment reaches the border of the cutout."""
        c = self.central
        return bool(c[0].any() or c[-1].any() or c[:, 0].any() or c[:, -1].any())


def sky_statistics(image: np.ndarray, sigma: float = 3.0) -> tuple[float, float]:
    """Sigma-clipped median and standard deviation of the finite pixels of ``image``.

    Returns ``(nan, nan)`` when no finite pixel is left.
    """
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return float("nan"), float("nan")
    _, median, std = sigma_clipped_stats(finite, sigma=sigma, maxiters=10)
    return float(median), float(std)


def central_segmap(
    image: np.ndarray,
    *,
    n_sigma: float = 1.5,
    n_pixels: int = 5,
    deblend: bool = True,
    contrast: float = 0.001,
    sky_sigma: float | None = None,
) -> CentralSegmentation:
    """Detect the sources of one cutout and pick the central galaxy.

    Parameters
    ----------
    image : numpy.ndarray, shape (H, W)
        Flux image of one band; NaN pixels are ignored (never detected).
    n_sigma : float
        Detection threshold above the sky in units of the sky noise.
    n_pixels : int
        Minimum number of connected pixels of a source.
    deblend : bool
        Split blended sources with photutils' multi-threshold deblending.
    contrast : float
        Deblending contrast (photutils' ``contrast``; SExtractor's ``DEBLEND_MINCONT``).
    sky_sigma : float, optional
        Known sky noise per pixel; by default the sigma-clipped standard deviation of the stamp.

    Returns
    -------
    CentralSegmentation
        The segmentation, the central label (0 when no source was found, e.g. for an empty,
        constant or all-NaN stamp) and the sky statistics. Never raises for bad pixel data.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"image: expected one 2-D band, got shape {image.shape}")
    n_sigma = check_positive(n_sigma, "n_sigma")
    n_pixels = check_positive_int(n_pixels, "n_pixels")
    sky, measured_sigma = sky_statistics(image)
    sigma = measured_sigma if sky_sigma is None else check_positive(sky_sigma, "sky_sigma")
    empty = np.zeros(image.shape, dtype=np.int32)
    if not np.isfinite(sky) or not np.isfinite(sigma) or sigma <= 0:
        return CentralSegmentation(empty, 0, sky, measured_sigma)

    nonfinite = ~np.isfinite(image)
    data = np.where(nonfinite, sky, image)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # photutils warns when nothing is detected
        segm = detect_sources(data, sky + n_sigma * sigma, n_pixels, mask=nonfinite)
        if segm is None:
            return CentralSegmentation(empty, 0, sky, measured_sigma)
        if deblend and segm.nlabels > 0:
            try:
                segm = deblend_sources(data, segm, n_pixels, contrast=contrast, progress_bar=False)
            except ValueError:  # photutils refuses e.g. sources too small to deblend
                pass
    segmap = np.asarray(segm.data, dtype=np.int32)
    return CentralSegmentation(segmap, _central_label(segmap), sky, measured_sigma)


def _central_label(segmap: np.ndarray) -> int:
    """Label under the cutout centre, else the label of the pixel nearest to the centre."""
    h, w = segmap.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    # the one central pixel of an odd cutout, the 2x2 central block of an even one
    at_centre = segmap[(h - 1) // 2 : h // 2 + 1, (w - 1) // 2 : w // 2 + 1]
    labels = at_centre[at_centre > 0]
    if labels.size:
        values, counts = np.unique(labels, return_counts=True)
        return int(values[np.argmax(counts)])
    ys, xs = np.nonzero(segmap)
    if ys.size == 0:
        return 0
    nearest = np.argmin((ys - cy) ** 2 + (xs - cx) ** 2)
    return int(segmap[ys[nearest], xs[nearest]])
