"""Source-Extractor-style shapes and a Sérsic fit residual of the central galaxy of each cutout.

The redshift-conditioning comparison of a conditional DDPM and a conditional VAE describes each
galaxy by the shape measures of Source Extractor (Bertin & Arnouts 1996): the isophotal area
(``ISOAREA``: pixels above a detection threshold in the galaxy's segment), the ellipticity
``1 - b/a`` and orientation from the second moments of the segment, and how well a galaxy model
fits (its "galaxy fitting loss"). Here:

* :func:`isophotal_shapes` segments the central source with
  :func:`~galwidgets.metrics.central_segmap` (photutils detection and deblending) and measures it
  with photutils' :class:`~photutils.segmentation.SourceCatalog`.
* :func:`galaxy_fitting_loss` fits a single Sérsic profile
  (:class:`astropy.modeling.models.Sersic2D`, Levenberg-Marquardt, initial guesses from the image
  moments) and reports its normalised residual and reduced χ², with the fitted index, effective
  radius and ellipticity.

Both return one row per galaxy; a galaxy that cannot be measured (empty, negative or all-NaN
stamp, failed fit) gets NaN and a flag bit (:data:`SHAPE_FLAGS`), never an exception.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from astropy.modeling import fitting
from astropy.modeling.models import Sersic2D
from photutils.segmentation import SegmentationImage, SourceCatalog
from scipy.special import gammaincinv

from .._parallel import check_jobs, imap_chunks
from .._validation import as_images, band_index, check_finite, check_positive, check_positive_int
from . import chunked
from .segmentation import CentralSegmentation, central_segmap

__all__ = ["SHAPE_FLAGS", "galaxy_fitting_loss", "isophotal_shapes"]

#: Bits of the ``flag`` column of :func:`isophotal_shapes` and :func:`galaxy_fitting_loss`.
SHAPE_FLAGS = {
    "no_source": 1,  # nothing detected (empty, constant, negative or all-NaN stamp): values NaN
    "nonfinite_pixels": 2,  # NaN/inf pixels in the stamp: they are ignored
    "touches_edge": 4,  # the central segment reaches the border: the area is a lower limit
    "off_centre": 8,  # no segment covers the stamp centre: the nearest one was measured
    "fit_failed": 16,  # the Sérsic fit raised or gave non-finite parameters: fit values NaN
    "not_converged": 32,  # the fitter stopped at its iteration limit: values kept, use with care
    "at_bound": 64,  # fitted n or r_eff sits at a bound (n in [0.3, 8]): values kept
}

N_BOUNDS = (0.3, 8.0)


# --------------------------------------------------------------------------------------------------
# shared plumbing
# --------------------------------------------------------------------------------------------------


class _StoreBand:
    """The stamps of one band of an on-disk store, read :data:`~galwidgets.data.store.STORE_CHUNK`
    galaxies at a time and handed out in tasks of ``size``."""

    def __init__(self, store: Any, channel: int) -> None:
        self.store, self.channel = store, channel

    def __len__(self) -> int:
        return len(self.store)

    def tasks(self, size: int) -> Any:
        step = chunked.STORE_CHUNK
        for lo in range(0, len(self.store), step):
            block = self.store.read_images(slice(lo, lo + step))[:, self.channel].astype(np.float64)
            for i in range(0, len(block), size):
                yield block[i:i + size]


def _select_band(
    images: Any, band: str | int | None, bands: Sequence[str] | None
) -> tuple[np.ndarray | _StoreBand, str]:
    """The ``(N, H, W)`` float64 stamps of one band (for a store: read in chunks) and its name."""
    if chunked.is_store(images):
        index, bands = band_index(band, bands or images.bands, len(images.bands))
        return _StoreBand(images, index), bands[index]
    arr = as_images(images, "images", allow_nan=True)
    index, bands = band_index(band, bands, arr.shape[1], images)
    name = bands[index] if bands else str(index)
    return arr[:, index].astype(np.float64), name


def _survey_value(images: Any, attr: str, value: float | None, default: float) -> float:
    survey_like = hasattr(images, "images") or chunked.is_store(images)
    if value is None and hasattr(images, attr) and survey_like:
        value = getattr(images, attr)
    return default if value is None else value


def _apply(chunk: np.ndarray, func: Callable[[np.ndarray], dict[str, float]]) -> list[dict[str, float]]:
    return [func(stamp) for stamp in chunk]


def _run(
    func: Callable[..., dict[str, float]], stamps: np.ndarray | _StoreBand, n_jobs: int | None,
    progress: bool, desc: str, scheduler: Any = None, **kwargs: Any,
) -> list[dict[str, float]]:
    """``func(stamp, **kwargs)`` for every stamp, in this process, the project's process pool or on a
    dask.distributed cluster (``scheduler``); a store's stamps are read as the tasks are sent."""
    n = len(stamps)
    n_jobs = check_jobs(n_jobs, n, min_items=200)
    chunk = max(1, min(64, math.ceil(n / (8 * n_jobs))))
    if isinstance(stamps, _StoreBand):
        chunks = stamps.tasks(chunk)
    else:
        chunks = [stamps[i:i + chunk] for i in range(0, n, chunk)]
    parts = imap_chunks(partial(_apply, func=partial(func, **kwargs)), chunks, n_jobs=n_jobs,
                        scheduler=scheduler, progress=progress, desc=desc, total=n)
    return [row for part in parts for row in part]


def _segment(
    image: np.ndarray, n_sigma: float, sky_sigma: float | None, n_pixels: int, deblend: bool,
    filter_fwhm: float | None,
) -> tuple[CentralSegmentation, int]:
    """Central segmentation and the flags that follow from it."""
    flag = 0
    nonfinite = ~np.isfinite(image)
    if nonfinite.any():
        flag |= SHAPE_FLAGS["nonfinite_pixels"]
    seg = central_segmap(image, n_sigma=n_sigma, n_pixels=n_pixels, deblend=deblend, sky_sigma=sky_sigma,
                         filter_fwhm=filter_fwhm)
    if not seg.found:
        return seg, flag | SHAPE_FLAGS["no_source"]
    if seg.touches_edge:
        flag |= SHAPE_FLAGS["touches_edge"]
    h, w = image.shape
    if not seg.central[(h - 1) // 2 : h // 2 + 1, (w - 1) // 2 : w // 2 + 1].any():
        flag |= SHAPE_FLAGS["off_centre"]
    return seg, flag


def _quantity(source: Any, *names: str) -> float:
    """A SourceCatalog property as a float, by its current or older photutils name."""
    for name in names:
        if hasattr(type(source), name):
            value = getattr(source, name)
            return float(getattr(value, "value", value))
    raise AttributeError(names[0])  # pragma: no cover - photutils API change


# --------------------------------------------------------------------------------------------------
# isophotal shapes
# --------------------------------------------------------------------------------------------------

_ISO_COLUMNS = ("isophotal_area", "isophotal_flux", "ellipticity", "orientation", "semimajor_sigma",
                "semiminor_sigma", "x_centroid", "y_centroid", "sky", "sky_sigma")


def _isophotal_one(
    image: np.ndarray, *, n_sigma: float, sky_sigma: float | None, n_pixels: int, deblend: bool,
    filter_fwhm: float | None,
) -> dict[str, float]:
    row = dict.fromkeys(_ISO_COLUMNS, float("nan"))
    seg, flag = _segment(image, n_sigma, sky_sigma, n_pixels, deblend, filter_fwhm)
    row["sky"], row["sky_sigma"], row["flag"] = seg.sky, seg.sky_sigma, flag
    if not seg.found:
        return row
    nonfinite = ~np.isfinite(image)
    data = np.where(nonfinite, 0.0, image - seg.sky)
    # like Source Extractor's ISOAREA: the object's pixels above the threshold in the unfiltered image
    threshold = n_sigma * (seg.sky_sigma if sky_sigma is None else sky_sigma)
    isophote = seg.central & ~nonfinite & (data > threshold)
    if not isophote.any():
        row["flag"] = flag | SHAPE_FLAGS["no_source"]
        return row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = SourceCatalog(data, SegmentationImage(isophote.astype(np.int32)), mask=nonfinite)[0]
        row.update(
            isophotal_area=_quantity(src, "area"),
            isophotal_flux=_quantity(src, "segment_flux"),
            ellipticity=_quantity(src, "ellipticity"),
            orientation=_quantity(src, "orientation") % 180.0,
            semimajor_sigma=_quantity(src, "semimajor_axis", "semimajor_sigma"),
            semiminor_sigma=_quantity(src, "semiminor_axis", "semiminor_sigma"),
            x_centroid=_quantity(src, "x_centroid", "xcentroid"),
            y_centroid=_quantity(src, "y_centroid", "ycentroid"),
        )
    return row


def isophotal_shapes(
    images: Any,
    band: str | int | None = None,
    *,
    threshold: float = 1.5,
    surface_brightness: float | None = None,
    bands: Sequence[str] | None = None,
    pixel_scale: float | None = None,
    zeropoint: float | None = None,
    sky_sigma: float | None = None,
    n_pixels: int = 5,
    deblend: bool = True,
    filter_fwhm: float | None = 3.0,
    n_jobs: int | None = None,
    progress: bool = True,
    scheduler: Any = None,
) -> pd.DataFrame:
    """Isophotal area, ellipticity and orientation of the central galaxy of each cutout.

    The isophote is a detection threshold above the sky (the sigma-clipped median of the stamp):
    by default ``threshold`` times the sky noise per pixel (Source Extractor's ``DETECT_THRESH``
    in sky sigmas), or, with ``surface_brightness``, a fixed surface brightness ``μ``
    (mag/arcsec²), i.e. a flux per pixel of ``10**(-0.4 (μ - zeropoint)) × pixel_scale²``, which
    compares galaxies at the same physical isophote whatever the noise. The central source is
    detected on the filtered stamp and deblended (:func:`~galwidgets.metrics.central_segmap`); as
    for Source Extractor's ``ISOAREA``, its isophotal pixels are those of its segment whose
    unfiltered, sky-subtracted flux is above the threshold, and photutils'
    :class:`~photutils.segmentation.SourceCatalog` measures their area and second moments.

    Parameters
    ----------
    images : Survey, SurveyStore or array (N, C, H, W)
        Flux images; a Survey also supplies ``bands``, ``pixel_scale`` and ``zeropoint``. An
        on-disk :class:`~galwidgets.data.store.SurveyStore` is read a chunk at a time as the work is
        handed out.
    band : str or int, optional
        Band to measure (name or channel index); default ``"r"`` if present, else the middle band.
    threshold : float
        Isophote in sky standard deviations above the sky (ignored with ``surface_brightness``).
    surface_brightness : float, optional
        Isophote as a surface brightness in mag/arcsec² (AB with ``zeropoint``).
    bands : sequence of str, optional
        Band names; default the Survey's, else ``("g", "r", "z")`` for three channels.
    pixel_scale : float, optional
        Arcsec per pixel; default the Survey's, else 0.262.
    zeropoint : float, optional
        AB zeropoint of the flux unit; default the Survey's, else 22.5 (nanomaggies).
    sky_sigma : float, optional
        Known sky noise per pixel for the sigma threshold; default the sigma-clipped standard
        deviation of each stamp. Noise-free images need it (their measured noise is 0).
    n_pixels : int
        Minimum number of connected pixels of a source.
    deblend : bool
        Split blended sources before picking the central one.
    filter_fwhm : float or None
        FWHM (pixels) of the Gaussian filter the detection runs on (Source Extractor's ``FILTER``);
        None detects on the unfiltered stamp. The area itself counts unfiltered pixels.
    n_jobs : int, optional
        Processes; default 1 below 200 stamps, else all usable CPUs; -1 all CPUs. One 64×64
        stamp takes ~20-50 ms.
    progress : bool
        Show a progress bar.
    scheduler : None, "local", address, distributed.Client or cluster
        Run the stamps as tasks of a dask.distributed cluster (an address such as
        ``"tcp://10.0.0.5:8786"``, a ``Client``, or e.g. ``LocalCluster``) instead of the local
        process pool, as :func:`galwidgets.run_batch` does; ``n_jobs`` is then ignored.

    Returns
    -------
    pandas.DataFrame
        One row per galaxy: ``isophotal_area`` (pixels) and ``isophotal_area_arcsec2``,
        ``isophotal_flux`` (sky-subtracted flux in the segment), ``ellipticity`` (``1 - b/a`` of
        the segment's second moments), ``orientation`` (degrees of the major axis,
        counter-clockwise from +x, in [0, 180)), ``semimajor_sigma`` and ``semiminor_sigma`` (the
        moment ellipse, pixels), ``x_centroid``, ``y_centroid``, ``sky``, ``sky_sigma`` and
        ``flag`` (bits of :data:`SHAPE_FLAGS`). ``df.attrs`` records the band and the threshold.
    """
    stamps, band_name = _select_band(images, band, bands)
    pixel_scale = check_positive(_survey_value(images, "pixel_scale", pixel_scale, 0.262), "pixel_scale")
    zeropoint = check_finite(_survey_value(images, "zeropoint", zeropoint, 22.5), "zeropoint")
    n_pixels = check_positive_int(n_pixels, "n_pixels")
    if surface_brightness is not None:
        mu = check_finite(surface_brightness, "surface_brightness")
        n_sigma, sigma = 1.0, 10 ** (-0.4 * (mu - zeropoint)) * pixel_scale**2
        attrs = {"threshold": f"{mu} mag/arcsec2", "threshold_flux": sigma}
    else:
        n_sigma = check_positive(threshold, "threshold")
        sigma = None if sky_sigma is None else check_positive(sky_sigma, "sky_sigma")
        attrs = {"threshold": f"{n_sigma} sky sigma"}
    rows = _run(_isophotal_one, stamps, n_jobs, progress, "isophotal shapes", scheduler, n_sigma=n_sigma,
                sky_sigma=sigma, n_pixels=n_pixels, deblend=deblend, filter_fwhm=filter_fwhm)
    table = pd.DataFrame(rows, columns=[*_ISO_COLUMNS, "flag"])
    table.insert(1, "isophotal_area_arcsec2", table["isophotal_area"] * pixel_scale**2)
    table["flag"] = table["flag"].astype(np.int64)
    table.attrs.update(band=band_name, pixel_scale=pixel_scale, **attrs)
    return table


# --------------------------------------------------------------------------------------------------
# Sérsic fit
# --------------------------------------------------------------------------------------------------


class _PixelSersic2D(Sersic2D):
    """:class:`~astropy.modeling.models.Sersic2D` averaged over sub-pixels near its centre.

    A Sérsic profile sampled at pixel centres overshoots the pixel-integrated flux where it is
    steep, at the centre of high-``n`` profiles, which biases ``n`` upward. The pixels within 2 px
    of the centre are therefore evaluated on an ``oversample × oversample`` sub-grid and averaged;
    elsewhere the centre sample is accurate enough.
    """

    def __init__(self, *args: Any, oversample: int = 5, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.oversample = oversample

    def evaluate(self, x, y, amplitude, r_eff, n, x_0, y_0, ellip, theta):
        model = np.array(Sersic2D.evaluate(x, y, amplitude, r_eff, n, x_0, y_0, ellip, theta), dtype=float)
        s = self.oversample
        if s > 1:
            near = (np.abs(x - x_0) <= 2.5) & (np.abs(y - y_0) <= 2.5)
            offsets = (np.arange(s) + 0.5) / s - 0.5
            dx, dy = (g.ravel() for g in np.meshgrid(offsets, offsets))
            sub = Sersic2D.evaluate(x[near][:, None] + dx, y[near][:, None] + dy,
                                    amplitude, r_eff, n, x_0, y_0, ellip, theta)
            model[near] = sub.mean(axis=1)
        return model


#: Sérsic n against the ratio r_90 / r_50 of the radii enclosing 90 and 50 % of the light.
_N_GRID = np.linspace(N_BOUNDS[0], N_BOUNDS[1], 200)
_R90_R50 = (gammaincinv(2 * _N_GRID, 0.9) / gammaincinv(2 * _N_GRID, 0.5)) ** _N_GRID

_FIT_COLUMNS = ("fit_loss", "chi2_red", "sersic_n", "r_eff", "r_eff_circ", "ellipticity", "theta",
                "amplitude", "x_0", "y_0", "n_segment_pixels", "sky", "sky_sigma")


def _initial_guess(data: np.ndarray, segment: np.ndarray, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Sérsic starting values from the moments and light profile of the segment's pixels."""
    values = np.clip(data[segment], 0, None)
    xs, ys = x[segment], y[segment]
    total = values.sum()
    xc, yc = (values * xs).sum() / total, (values * ys).sum() / total
    cxx = (values * (xs - xc) ** 2).sum() / total
    cyy = (values * (ys - yc) ** 2).sum() / total
    cxy = (values * (xs - xc) * (ys - yc)).sum() / total
    root = np.sqrt(((cxx - cyy) / 2) ** 2 + cxy**2)
    major, minor = (cxx + cyy) / 2 + root, max((cxx + cyy) / 2 - root, 0.0)
    ellip = float(np.clip(1 - np.sqrt(minor / major), 0.0, 0.8)) if major > 0 else 0.0
    theta = 0.5 * np.arctan2(2 * cxy, cxx - cyy)
    # radii (circularised, from the area of the brightest pixels) enclosing 50 and 90 % of the light
    cumulative = np.cumsum(np.sort(values)[::-1]) / total
    r50 = np.sqrt((np.searchsorted(cumulative, 0.5) + 1) / np.pi)
    r90 = np.sqrt((np.searchsorted(cumulative, 0.9) + 1) / np.pi)
    n = float(np.clip(np.interp(r90 / r50, _R90_R50, _N_GRID), 0.5, 4.0))
    r_eff = max(r50 / np.sqrt(1 - ellip), 0.5)
    # surface brightness at the effective radius: mean of the pixels near that ellipse
    dx, dy = xs - xc, ys - yc
    r_ell = np.hypot(dx * np.cos(theta) + dy * np.sin(theta),
                     (-dx * np.sin(theta) + dy * np.cos(theta)) / (1 - ellip))
    ring = np.abs(r_ell - r_eff) < max(0.5, 0.15 * r_eff)
    amplitude = float(values[ring].mean()) if ring.any() else 0.1 * float(values.max())
    return {"amplitude": max(amplitude, 1e-12 * float(values.max())), "r_eff": r_eff, "n": n,
            "x_0": xc, "y_0": yc, "ellip": ellip, "theta": theta}


def _fit_one(
    image: np.ndarray, *, n_sigma: float, sky_sigma: float | None, sky: float | None, n_pixels: int,
    deblend: bool, filter_fwhm: float | None, oversample: int, maxiter: int,
) -> dict[str, float]:
    row = dict.fromkeys(_FIT_COLUMNS, float("nan"))
    seg, flag = _segment(image, n_sigma, sky_sigma, n_pixels, deblend, filter_fwhm)
    noise = seg.sky_sigma if sky_sigma is None else sky_sigma
    sky_level = seg.sky if sky is None else sky
    row.update(sky=sky_level, sky_sigma=noise, flag=flag)
    if not seg.found:
        return row
    h, w = image.shape
    y, x = np.mgrid[:h, :w].astype(np.float64)
    finite = np.isfinite(image)
    data = np.where(finite, image - sky_level, 0.0)
    segment = seg.central & finite
    row["n_segment_pixels"] = int(segment.sum())
    fit_pixels = finite & ~seg.others
    good_noise = bool(np.isfinite(noise) and noise > 0)
    weights = fit_pixels / noise if good_noise else fit_pixels.astype(np.float64)
    size = float(max(h, w))
    try:
        guess = _initial_guess(data, segment, x, y)
        model = _PixelSersic2D(
            **guess, oversample=oversample,
            bounds={"amplitude": (0.0, None), "r_eff": (0.3, 2 * size), "n": N_BOUNDS,
                    "x_0": (-0.5, w - 0.5), "y_0": (-0.5, h - 0.5), "ellip": (0.0, 0.95)},
        )
        fitter = fitting.LevMarLSQFitter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = fitter(model, x, y, data, weights=weights, maxiter=maxiter)
        params = dict(zip(fitted.param_names, (float(v) for v in fitted.parameters)))
        if not all(np.isfinite(v) for v in params.values()):
            raise FloatingPointError("non-finite parameters")
        residual = data - fitted(x, y)
    except Exception:  # a failed fit is a flag, never a crash of the batch
        row["flag"] = flag | SHAPE_FLAGS["fit_failed"]
        return row
    if fitter.fit_info.get("ierr") not in (1, 2, 3, 4):
        flag |= SHAPE_FLAGS["not_converged"]
    n_fit, r_eff = params["n"], params["r_eff"]
    if min(n_fit - N_BOUNDS[0], N_BOUNDS[1] - n_fit) < 1e-3 or min(r_eff - 0.3, 2 * size - r_eff) < 1e-3:
        flag |= SHAPE_FLAGS["at_bound"]
    absolute = np.abs(data[segment]).sum()
    dof = int(segment.sum()) - len(params)
    row.update(
        fit_loss=np.abs(residual[segment]).sum() / absolute if absolute > 0 else np.nan,
        chi2_red=((residual[segment] / noise) ** 2).sum() / dof if good_noise and dof > 0 else np.nan,
        sersic_n=n_fit, r_eff=r_eff, r_eff_circ=r_eff * np.sqrt(1 - params["ellip"]),
        ellipticity=params["ellip"], theta=np.degrees(params["theta"]) % 180.0,
        amplitude=params["amplitude"], x_0=params["x_0"], y_0=params["y_0"], flag=flag,
    )
    return row


def galaxy_fitting_loss(
    images: Any,
    band: str | int | None = None,
    *,
    bands: Sequence[str] | None = None,
    pixel_scale: float | None = None,
    n_sigma: float = 1.5,
    sky_sigma: float | None = None,
    sky: float | None = None,
    n_pixels: int = 5,
    deblend: bool = True,
    filter_fwhm: float | None = 3.0,
    oversample: int = 5,
    maxiter: int = 300,
    n_jobs: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Fit one Sérsic profile to each galaxy and report how badly it fits.

    A fit-residual analogue of the "galaxy fitting loss" of the redshift-conditioning comparison:
    realistic galaxies are roughly, but not exactly, Sérsic profiles, so both a poorer and a
    suspiciously perfect fit distinguish generated from real populations, and the fitted ``n``,
    ``r_eff`` and ellipticity are themselves properties to compare per redshift bin.

    Each stamp's central galaxy is segmented (:func:`~galwidgets.metrics.central_segmap`); a
    :class:`~astropy.modeling.models.Sersic2D` (sub-pixel averaged within 2 px of its centre) is
    fitted by Levenberg-Marquardt to all pixels except other sources, weighted by the sky noise,
    starting from the segment's moments (centroid, ellipticity, orientation), half-light radius and
    concentration; ``n`` is bounded to [0.3, 8]. The PSF is not modelled: fitted sizes and indices
    are those of the observed (blurred) light.

    Parameters
    ----------
    images : Survey or array (N, C, H, W)
        Flux images.
    band : str or int, optional
        Band to fit; default ``"r"`` if present, else the middle band.
    bands : sequence of str, optional
        Band names; default the Survey's, else ``("g", "r", "z")`` for three channels.
    pixel_scale : float, optional
        Arcsec per pixel for ``r_eff_arcsec``; default the Survey's, else 0.262.
    n_sigma : float
        Detection threshold of the segmentation in sky sigmas.
    sky_sigma : float, optional
        Known sky noise per pixel (detection and χ²); default measured per stamp. Noise-free
        images need it.
    sky : float, optional
        Known sky level to subtract (0 for sky-subtracted or noise-free images); default the
        sigma-clipped median of each stamp.
    n_pixels : int
        Minimum number of connected pixels of a source.
    deblend : bool
        Deblend before picking the central source.
    filter_fwhm : float or None
        FWHM (pixels) of the Gaussian detection filter; None detects on the unfiltered stamp.
    oversample : int
        Sub-pixels per side for the model's central pixels; 1 samples pixel centres only.
    maxiter : int
        Maximum number of model evaluations of the fitter.
    n_jobs : int, optional
        Processes; default 1 below 200 stamps, else all usable CPUs; -1 all CPUs. One 64×64 fit
        takes ~20-50 ms.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per galaxy: ``fit_loss`` = Σ|data - model| / Σ|data| over the central segment
        (sky-subtracted), ``chi2_red`` = Σ((data - model)/σ)² / (pixels - 7) over the segment,
        ``sersic_n``, ``r_eff`` (semi-major effective radius, pixels), ``r_eff_circ`` (circularised
        ``r_eff √(1 - ellipticity)``, pixels), ``r_eff_arcsec`` (semi-major, arcsec),
        ``ellipticity`` (1 - b/a), ``theta`` (degrees of the major axis counter-clockwise from +x,
        in [0, 180)), ``amplitude`` (surface brightness at ``r_eff`` per pixel), ``x_0``, ``y_0``,
        ``n_segment_pixels``, ``sky``, ``sky_sigma`` and ``flag`` (bits of :data:`SHAPE_FLAGS`).
    """
    stamps, band_name = _select_band(images, band, bands)
    pixel_scale = check_positive(_survey_value(images, "pixel_scale", pixel_scale, 0.262), "pixel_scale")
    n_sigma = check_positive(n_sigma, "n_sigma")
    if sky_sigma is not None:
        sky_sigma = check_positive(sky_sigma, "sky_sigma")
    if sky is not None:
        sky = check_finite(sky, "sky")
    n_pixels = check_positive_int(n_pixels, "n_pixels")
    oversample = check_positive_int(oversample, "oversample")
    maxiter = check_positive_int(maxiter, "maxiter")
    rows = _run(_fit_one, stamps, n_jobs, progress, "Sérsic fits", n_sigma=n_sigma, sky_sigma=sky_sigma,
                sky=sky, n_pixels=n_pixels, deblend=deblend, filter_fwhm=filter_fwhm, oversample=oversample,
                maxiter=maxiter)
    table = pd.DataFrame(rows, columns=[*_FIT_COLUMNS, "flag"])
    table.insert(table.columns.get_loc("r_eff_circ") + 1, "r_eff_arcsec", table["r_eff"] * pixel_scale)
    table["flag"] = table["flag"].astype(np.int64)
    table.attrs.update(band=band_name, pixel_scale=pixel_scale)
    return table
