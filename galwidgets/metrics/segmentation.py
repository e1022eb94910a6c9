"""Segmentation of the central galaxy of a cutout, the input every morphology measurement needs.

As in Source Extractor (Bertin & Arnouts 1996) and photutils' recommended recipe, the stamp is
first convolved with a Gaussian filter (FWHM 3 px), then sources are detected with photutils
(:func:`~photutils.segmentation.detect_sources`) above a threshold of ``n_sigma`` sky standard
deviations of the unfiltered stamp, where the sky level and its noise come from sigma-clipped
statistics (:func:`astropy.stats.sigma_clipped_stats`) of the pixels outside the sources of a first
detection pass (dilated by 2 px), so that a large galaxy does not inflate its own threshold;
blended sources are split with
:func:`~photutils.segmentation.deblend_sources`. The galaxy of interest is the
segment under the cutout centre, or the segment closest to it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from astropy.convolution import convolve
from astropy.stats import sigma_clipped_stats
from photutils.segmentation import deblend_sources, detect_sources, make_2dgaussian_kernel
from scipy.ndimage import binary_dilation

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
    filter_fwhm: float | None = 3.0,
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
    filter_fwhm : float or None
        FWHM in pixels of the Gaussian detection filter; None detects on the unfiltered stamp.

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
    if filter_fwhm is not None:
        check_positive(filter_fwhm, "filter_fwhm")
    if sky_sigma is not None:
        check_positive(sky_sigma, "sky_sigma")
    empty = np.zeros(image.shape, dtype=np.int32)
    nonfinite = ~np.isfinite(image)
    sky, measured_sigma = sky_statistics(image)
    segm = None
    for first_pass in (True, False):
        sigma = measured_sigma if sky_sigma is None else sky_sigma
        if not (np.isfinite(sky) and np.isfinite(sigma) and sigma > 0):
            return CentralSegmentation(empty, 0, sky, measured_sigma)
        segm = _detect(np.where(nonfinite, sky, image), sky + n_sigma * sigma, n_pixels, nonfinite,
                       filter_fwhm)
        if segm is None:
            return CentralSegmentation(empty, 0, sky, measured_sigma)
        sources = binary_dilation(segm.data > 0, iterations=2)
        if not first_pass or (~sources & ~nonfinite).sum() < 0.1 * image.size:
            break
        # sky statistics again without the sources found in the first pass
        sky, measured_sigma = sky_statistics(np.where(sources, np.nan, image))
    if deblend:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                segm = deblend_sources(segm.smoothed, segm.image, n_pixels, contrast=contrast,
                                       progress_bar=False)
            except ValueError:  # photutils refuses e.g. sources too small to deblend
                segm = segm.image
        segmap = np.asarray(segm.data, dtype=np.int32)
    else:
        segmap = np.asarray(segm.image.data, dtype=np.int32)
    return CentralSegmentation(segmap, _central_label(segmap), sky, measured_sigma)


@dataclass(frozen=True)
class _Detection:
    image: object  # photutils SegmentationImage
    smoothed: np.ndarray

    @property
    def data(self) -> np.ndarray:
        return self.image.data


def _detect(
    data: np.ndarray, threshold: float, n_pixels: int, mask: np.ndarray, filter_fwhm: float | None
) -> _Detection | None:
    """photutils detection on the (optionally Gaussian-filtered) stamp; None if nothing found."""
    if filter_fwhm:
        data = convolve(data, make_2dgaussian_kernel(filter_fwhm, size=5), boundary="extend")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # photutils warns when nothing is detected
        segm = detect_sources(data, threshold, n_pixels, mask=mask)
    return None if segm is None else _Detection(segm, data)


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
