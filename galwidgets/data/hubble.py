"""Galaxies in the Hubble eXtreme Deep Field image that scikit-image ships: :func:`hubble_deep_field`.

Real galaxies with no download: stamps cut from the colour image bundled as
``skimage.data.hubble_deep_field``, with a photutils segmentation catalog.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import skimage.data
from astropy.convolution import convolve
from astropy.stats import SigmaClip
from photutils.background import Background2D, MedianBackground
from photutils.segmentation import SourceCatalog, deblend_sources, detect_sources, make_2dgaussian_kernel
from scipy import ndimage

from .._validation import check_positive, check_positive_int
from .surveys import Survey

__all__ = ["hubble_deep_field"]

_HDF_BANDS = ("B", "G", "R")
_HDF_UNITS = "arbitrary (8-bit display values of skimage.data.hubble_deep_field)"


def hubble_deep_field(
    size: int = 64,
    n: int | None = None,
    min_area: int = 50,
    *,
    threshold: float = 1.5,
    box_size: int = 50,
) -> Survey:
    """Stamps of the galaxies in the Hubble eXtreme Deep Field image shipped with scikit-image.

    The bundled image (``skimage.data.hubble_deep_field()``, 872 × 1000 RGB, 8-bit JPEG of the
    STScI-2012-37 XDF release) is turned into flux-like floats, its background estimated and
    subtracted per channel (photutils ``Background2D``: sigma-clipped medians in ``box_size``
    boxes, median-filtered and interpolated), and sources are found with photutils segmentation:
    ``detect_sources`` on the channel sum smoothed by a Gaussian of FWHM 3 px, above ``threshold``
    times the background RMS over at least 10 connected pixels, then ``deblend_sources``.
    Each source of at least ``min_area`` pixels gets a ``size`` × ``size`` stamp whose centre pixel
    ``(size // 2, size // 2)`` holds its centroid (``SourceCatalog.centroid``, to the nearest pixel).

    Parameters
    ----------
    size : int
        Stamp side in pixels.
    n : int, optional
        Keep only the ``n`` brightest sources (summed segment flux); default all.
    min_area : int
        Minimum segment area in pixels.
    threshold : float
        Detection threshold in units of the background RMS of the channel sum.
    box_size : int
        Box size of the background mesh in pixels.

    Returns
    -------
    Survey
        Bands ``("B", "G", "R")`` (the image's blue, green and red channels, bluest first),
        ``pixel_scale = 1.0`` and ``zeropoint = 0.0``: the JPEG is a resampled, non-linearly
        stretched display image, so neither the pixel scale nor the flux unit is physical (see
        ``meta["units"]``). Catalog: ``label`` (deblended segment), ``x``, ``y`` (centroid in the
        parent image, zero-based array columns and rows), ``x0``, ``y0`` (stamp origin in the parent),
        ``area`` (segment pixels), ``flux_B``, ``flux_G``, ``flux_R`` (background-subtracted segment
        sums) and ``truncated`` (the segment extends past the stamp). Sources whose stamp would
        extend past the image edge are dropped and listed in ``meta["dropped"]``.
    """
    size = check_positive_int(size, "size")
    if n is not None:
        n = check_positive_int(n, "n")
    min_area = check_positive_int(min_area, "min_area")
    threshold = check_positive(threshold, "threshold")
    box_size = check_positive_int(box_size, "box_size")

    image, rms = _hdf_background(box_size)
    segm, table = _hdf_sources(image, rms, threshold)
    table = table[table["area"] >= min_area].copy()
    height, width = image.shape[1:]
    table["x0"] = np.round(table["x"]).astype(np.int64) - size // 2
    table["y0"] = np.round(table["y"]).astype(np.int64) - size // 2
    inside = ((table["x0"] >= 0) & (table["y0"] >= 0)
              & (table["x0"] + size <= width) & (table["y0"] + size <= height))
    edge = table[~inside]
    table = table[inside].sort_values("flux_total", ascending=False, kind="stable")
    if n is not None:
        table = table.head(n)
    if table.empty:
        raise ValueError(f"size: no source of at least min_area={min_area} px has a {size}x{size} stamp "
                         "inside the image")
    table["truncated"] = ((table["bbox_xmin"] < table["x0"]) | (table["bbox_ymin"] < table["y0"])
                          | (table["bbox_xmax"] >= table["x0"] + size)
                          | (table["bbox_ymax"] >= table["y0"] + size))
    stamps = np.stack([image[:, y0:y0 + size, x0:x0 + size] for x0, y0 in zip(table["x0"], table["y0"])])
    columns = ["label", "x", "y", "x0", "y0", "area", *(f"flux_{b}" for b in _HDF_BANDS), "truncated"]
    return Survey(
        images=stamps,
        catalog=table[columns].reset_index(drop=True),
        bands=_HDF_BANDS,
        pixel_scale=1.0,
        zeropoint=0.0,
        meta={
            "source": "skimage.data.hubble_deep_field (Hubble eXtreme Deep Field, STScI-2012-37)",
            "units": _HDF_UNITS,
            "pixel_scale_units": "arbitrary (pixels of the downsampled JPEG)",
            "detection": {"threshold": threshold, "box_size": box_size, "min_area": min_area,
                          "smoothing_fwhm": 3.0, "n_pixels": 10, "n_segments": len(segm.labels)},
            "dropped": [{"reason": "stamp extends past the image edge", "count": len(edge),
                         "labels": edge["label"].tolist()}] if len(edge) else [],
        },
    )


def _hdf_background(box_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The background-subtracted XDF image as a float (B, G, R) cube and the RMS of the channel sum."""
    rgb = skimage.data.hubble_deep_field()
    cube = np.moveaxis(rgb[..., ::-1], -1, 0).astype(np.float32)  # RGB -> B, G, R, bluest first
    backgrounds = [Background2D(channel, box_size, filter_size=3, sigma_clip=SigmaClip(sigma=3.0),
                                bkg_estimator=MedianBackground()) for channel in cube]
    levels = np.stack([b.background for b in backgrounds]).astype(np.float32)
    rms = np.sqrt(sum(b.background_rms ** 2 for b in backgrounds))
    return cube - levels, rms


def _hdf_sources(image: np.ndarray, rms: np.ndarray, threshold: float) -> tuple[Any, pd.DataFrame]:
    """Deblended segmentation of the channel sum and a table of its sources."""
    detection = image.sum(axis=0)
    smoothed = convolve(detection, make_2dgaussian_kernel(3.0, size=5))
    segm = detect_sources(smoothed, threshold * rms, 10)
    if segm is None:
        raise ValueError(f"threshold: no source detected above {threshold} x background RMS")
    segm = deblend_sources(smoothed, segm, 10, progress_bar=False)
    cat = SourceCatalog(detection, segm, convolved_data=smoothed)
    labels = np.asarray(cat.label)
    table = pd.DataFrame({
        "label": labels.astype(np.int64),
        "x": cat.centroid[:, 0],
        "y": cat.centroid[:, 1],
        "area": np.asarray(cat.area.value, dtype=np.int64),
        "bbox_xmin": cat.bbox_xmin, "bbox_xmax": cat.bbox_xmax,
        "bbox_ymin": cat.bbox_ymin, "bbox_ymax": cat.bbox_ymax,
    })
    for band, channel in zip(_HDF_BANDS, image):
        table[f"flux_{band}"] = ndimage.sum_labels(channel, segm.data, labels)
    table["flux_total"] = table[[f"flux_{b}" for b in _HDF_BANDS]].sum(axis=1)
    return segm, table[np.isfinite(table["x"]) & np.isfinite(table["y"])]
