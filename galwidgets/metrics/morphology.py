"""Non-parametric morphology and Sérsic fits of galaxy cutouts with statmorph, in a process pool.

Each stamp is segmented with photutils (:func:`.segmentation.central_segmap`): sources are detected
above the sky, blends are split, and the segment under the cutout centre is the galaxy. The sky
level is subtracted and :class:`statmorph.SourceMorphology` (Rodriguez-Gomez et al. 2019, MNRAS 483,
4140) measures that segment; the other segments keep their own labels, which statmorph masks. The
measurements are the Gini coefficient and M20 (Lotz, Primack & Madau 2004, AJ 128, 163), the
concentration, asymmetry and smoothness of the CAS system (Conselice 2003, ApJS 147, 1), the radii
of the curve of growth and a single 2-D Sérsic (1963) fit.

statmorph costs 0.1 to 0.3 s of pure Python per 64x64 stamp, so :func:`morphology` spreads chunks
of stamps over the project's process pool (``galwidgets._parallel``: ``forkserver`` workers that
import statmorph once per session, one thread each). Measured on 2 cores with torch used in the
parent (60 stamps, CPU seconds per worker): fork 5.7, forkserver 6.2 plus 3.1 once, spawn 9.8
(each spawned worker re-imports everything). A script (not a notebook) that asks for several
processes needs the ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import statmorph

from .._parallel import check_jobs, imap_chunks
from .._validation import as_images, band_index, check_positive, check_positive_int
from . import chunked
from .segmentation import central_segmap

__all__ = [
    "MORPHOLOGY_COLUMNS",
    "MORPHOLOGY_FLAGS",
    "STATMORPH_QUANTITIES",
    "morphology",
    "stamp_morphology",
]

#: Bits of the ``flag`` column of :func:`morphology` (and of :func:`stamp_morphology`).
MORPHOLOGY_FLAGS = {
    "no_source": 1,  # no central source detected (empty, constant, all-NaN stamp): all values NaN
    "statmorph_warning": 2,  # statmorph's own flag > 0 (1 suspect, 2 bad): values kept, use with care
    "edge": 4,  # the central segment touches the cutout border: the galaxy may be cut off
    "nonfinite_pixels": 8,  # NaN or inf pixels in the stamp: they are masked for statmorph
    "failed": 16,  # statmorph raised or aborted (e.g. nonpositive flux): all values NaN
    "sersic_failed": 32,  # the Sérsic fit raised or statmorph's flag_sersic >= 2: Sérsic values NaN
}

#: Measurements of the :func:`morphology` table (radii in arcsec, everything else dimensionless).
MORPHOLOGY_COLUMNS = (
    "gini", "m20", "concentration", "asymmetry", "smoothness", "r20", "r50", "r80", "rpetro",
    "sersic_n", "sersic_rhalf", "ellipticity", "sn_per_pixel",
)
_RADII = ("r20", "r50", "r80", "rpetro", "sersic_rhalf")
# table column <- statmorph attribute
_TABLE_SOURCES = {"rpetro": "rpetro_circ", "ellipticity": "ellipticity_asymmetry"}

#: statmorph attributes returned by :func:`stamp_morphology` (statmorph's names and pixel units).
STATMORPH_QUANTITIES = (
    "xc_centroid", "yc_centroid", "ellipticity_centroid", "elongation_centroid",
    "orientation_centroid", "xc_asymmetry", "yc_asymmetry", "ellipticity_asymmetry",
    "elongation_asymmetry", "orientation_asymmetry", "flux_circ", "flux_ellip", "rpetro_circ",
    "rpetro_ellip", "rmax_circ", "rmax_ellip", "rhalf_circ", "rhalf_ellip", "r20", "r50", "r80",
    "gini", "m20", "gini_m20_bulge", "gini_m20_merger", "sn_per_pixel", "concentration",
    "asymmetry", "smoothness", "multimode", "intensity", "deviation", "rms_asymmetry2",
    "outer_asymmetry", "shape_asymmetry", "sersic_amplitude", "sersic_rhalf", "sersic_n",
    "sersic_xc", "sersic_yc", "sersic_ellip", "sersic_theta", "sersic_chi2_dof", "sersic_aic",
    "sersic_bic", "sky_mean", "sky_median", "sky_sigma", "xmin_stamp", "ymin_stamp", "xmax_stamp",
    "ymax_stamp", "nx_stamp", "ny_stamp",
)
_DOUBLESERSIC_QUANTITIES = (
    "doublesersic_xc", "doublesersic_yc", "doublesersic_amplitude1", "doublesersic_rhalf1",
    "doublesersic_n1", "doublesersic_ellip1", "doublesersic_theta1", "doublesersic_amplitude2",
    "doublesersic_rhalf2", "doublesersic_n2", "doublesersic_ellip2", "doublesersic_theta2",
    "doublesersic_chi2_dof", "doublesersic_aic", "doublesersic_bic",
)
_SENTINEL = -99.0  # statmorph's value for "could not be measured"
_NOT_RUN = -1  # statmorph_flag* when statmorph did not run or did not return
_DEFAULT_PIXEL_SCALE = 0.262  # arcsec per pixel (DESI Legacy Surveys), as in photometry
_OWN_KWARGS = ("image", "segmap", "label", "mask", "weightmap", "gain")


# --------------------------------------------------------------------------- one stamp


class _NonParametricMorphology(statmorph.SourceMorphology):
    """statmorph's ``SourceMorphology`` without the (lazily evaluated) Sérsic fit.

    statmorph evaluates every quantity in its constructor; this subclass evaluates all but the
    ``sersic_*`` ones, so the least-squares fit never runs. It overrides statmorph's private
    ``_calculate_morphology``: should a statmorph release rename it, the fit simply runs again.
    """

    def _calculate_morphology(self):
        for name in STATMORPH_QUANTITIES:
            if not name.startswith("sersic_"):
                getattr(self, name)


def _value(morph: Any, name: str) -> float:
    """A statmorph attribute as a float; its -99 sentinel (or a missing/bad value) becomes NaN."""
    try:
        value = float(getattr(morph, name))
    except (AttributeError, TypeError, ValueError):
        return float("nan")
    return float("nan") if value == _SENTINEL or not np.isfinite(value) else value


def _empty_row(flag: int, names: Sequence[str]) -> dict[str, float]:
    row: dict[str, Any] = dict.fromkeys(names, float("nan"))
    row.update(flag=flag, statmorph_flag=_NOT_RUN, statmorph_flag_sersic=_NOT_RUN)
    return row


def _touches_edge(region: np.ndarray) -> bool:
    return bool(region[0].any() or region[-1].any() or region[:, 0].any() or region[:, -1].any())


def stamp_morphology(
    image: np.ndarray,
    segmap: np.ndarray,
    label: int = 1,
    *,
    mask: np.ndarray | None = None,
    gain: float | None = None,
    weightmap: np.ndarray | None = None,
    include_sersic: bool = True,
    **statmorph_kwargs: Any,
) -> dict[str, float]:
    """statmorph measurements of one source of one background-subtracted stamp.

    Parameters
    ----------
    image : numpy.ndarray, shape (H, W)
        Background-subtracted flux image. NaN or inf pixels are set to zero and masked.
    segmap : numpy.ndarray of int, shape (H, W)
        Segmentation map: 0 is sky, the source is ``label``, other positive labels are other
        sources, which statmorph masks.
    label : int
        Label of the source to measure.
    mask : numpy.ndarray of bool, shape (H, W), optional
        Extra pixels to ignore (True = bad).
    gain : float, optional
        Electrons per flux unit; statmorph then makes the noise map
        ``sqrt(|image| / gain + sky_sigma**2)`` with its own sky estimate.
    weightmap : numpy.ndarray, shape (H, W), optional
        Per-pixel 1-sigma noise (statmorph's "weightmap"). One of ``gain`` and ``weightmap`` is
        required.
    include_sersic : bool
        Fit the single Sérsic profile; False skips the fit (its values are NaN), which saves time.
    **statmorph_kwargs
        Other :class:`statmorph.SourceMorphology` options (``cutout_extent``, ``skybox_size``,
        ``include_doublesersic``, ``psf``, ...).

    Returns
    -------
    dict
        Every quantity of :data:`STATMORPH_QUANTITIES` under statmorph's name and in its units
        (pixels, image flux), with statmorph's -99 sentinel turned into NaN; the double Sérsic
        quantities when ``include_doublesersic=True``; ``statmorph_flag`` and
        ``statmorph_flag_sersic`` (and ``statmorph_flag_doublesersic``): statmorph's own flags
        (0 good, 1 suspect, 2 bad, 4 catastrophic; -1 when statmorph did not run or the fit was
        skipped); ``flag``: bits of :data:`MORPHOLOGY_FLAGS`. Never raises for bad pixel data:
        a failure gives NaN and a flag.

    Raises
    ------
    ValueError
        If the arrays are not 2-D of one shape, or the options are inconsistent.
    """
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"image: expected one 2-D band, got shape {image.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        image = image.astype(np.float64)
    segmap = np.asarray(segmap)
    if segmap.shape != image.shape or not np.issubdtype(segmap.dtype, np.integer):
        raise ValueError(
            f"segmap: expected integer labels shaped like image {image.shape}, "
            f"got {segmap.dtype} shape {segmap.shape}"
        )
    mask = np.zeros(image.shape, bool) if mask is None else np.asarray(mask)
    if mask.shape != image.shape or mask.dtype != np.bool_:
        raise ValueError(
            f"mask: expected booleans shaped like image {image.shape}, got {mask.dtype} {mask.shape}"
        )
    if weightmap is not None:
        weightmap = np.asarray(weightmap, dtype=np.float64)
        if weightmap.shape != image.shape:
            raise ValueError(f"weightmap: expected the shape of image {image.shape}, got {weightmap.shape}")
    elif gain is None:
        raise ValueError("gain, weightmap: statmorph needs one of them to estimate the noise, got neither")
    if gain is not None:
        gain = check_positive(gain, "gain")
    bad = [k for k in statmorph_kwargs if k in _OWN_KWARGS]
    if bad:
        raise TypeError(f"statmorph_kwargs: {bad} are arguments of stamp_morphology itself")

    doublesersic = bool(statmorph_kwargs.get("include_doublesersic", False))
    names = STATMORPH_QUANTITIES + (_DOUBLESERSIC_QUANTITIES if doublesersic else ())
    nonfinite = ~np.isfinite(image)
    flag = MORPHOLOGY_FLAGS["nonfinite_pixels"] if nonfinite.any() else 0
    source = segmap == label
    if label <= 0 or not source.any():
        return _empty_row(flag | MORPHOLOGY_FLAGS["no_source"], names)
    if _touches_edge(source):
        flag |= MORPHOLOGY_FLAGS["edge"]
    if nonfinite.any():
        image = np.where(nonfinite, 0.0, image).astype(image.dtype)
        mask = mask | nonfinite

    morph = None
    errors = []
    for sersic in ((True, False) if include_sersic else (False,)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # statmorph warns for every oddity; flags carry it
                cls = statmorph.SourceMorphology if sersic else _NonParametricMorphology
                morph = cls(
                    image, segmap, label, mask=mask if mask.any() else None,
                    weightmap=weightmap, gain=gain, **statmorph_kwargs,
                )
            break
        except Exception as exc:  # any statmorph failure becomes a flag
            errors.append(exc)  # retried without the Sérsic fit, which raises most often
    if morph is None:
        return _empty_row(flag | MORPHOLOGY_FLAGS["failed"], names)

    row: dict[str, Any] = {name: _value(morph, name) for name in names}
    fitted = include_sersic and not errors
    row["statmorph_flag"] = int(morph.flag)
    row["statmorph_flag_sersic"] = int(morph.flag_sersic) if fitted else _NOT_RUN
    if doublesersic:
        row["statmorph_flag_doublesersic"] = int(getattr(morph, "flag_doublesersic", _NOT_RUN))
    if morph.flag >= 4:  # statmorph aborted: "Total flux is nonpositive"
        flag |= MORPHOLOGY_FLAGS["failed"]
    if morph.flag > 0:
        flag |= MORPHOLOGY_FLAGS["statmorph_warning"]
    if include_sersic and (errors or morph.flag_sersic >= 2):
        flag |= MORPHOLOGY_FLAGS["sersic_failed"]
    if not fitted or morph.flag_sersic >= 2:
        row.update({name: float("nan") for name in names if name.startswith("sersic_")})
    row["flag"] = flag
    return row


# --------------------------------------------------------------------------- workers


def _measure(image: np.ndarray, sky_sigma: float | None, options: Mapping[str, Any]) -> dict[str, Any]:
    """Segment one stamp, subtract its sky, build the noise map and run statmorph on it."""
    nonfinite = ~np.isfinite(image)
    nonfinite_flag = MORPHOLOGY_FLAGS["nonfinite_pixels"] if nonfinite.any() else 0
    try:
        seg = central_segmap(image, sky_sigma=sky_sigma, **options["segmentation"])
    except Exception:  # photutils failures become a flag
        return _empty_row(nonfinite_flag | MORPHOLOGY_FLAGS["failed"], ())
    if not seg.found:
        return _empty_row(nonfinite_flag | MORPHOLOGY_FLAGS["no_source"], ())
    data = np.where(nonfinite, 0.0, image.astype(np.float64) - seg.sky)
    sigma = seg.sky_sigma if sky_sigma is None else sky_sigma
    variance = np.full(data.shape, sigma**2)
    if options["gain"] is not None:
        variance += np.clip(data, 0.0, None) / options["gain"]
    row = stamp_morphology(
        data, seg.segmap, seg.label, mask=nonfinite, weightmap=np.sqrt(variance),
        include_sersic=options["include_sersic"], **options["statmorph"],
    )
    out = {c: row[_TABLE_SOURCES.get(c, c)] for c in MORPHOLOGY_COLUMNS}
    out.update(flag=row["flag"] | nonfinite_flag, statmorph_flag=row["statmorph_flag"],
               statmorph_flag_sersic=row["statmorph_flag_sersic"])
    return out


def _measure_chunk(chunk: tuple[np.ndarray, Sequence[float | None]], options: Mapping[str, Any]
                   ) -> list[dict[str, Any]]:
    """Worker task: the rows of a chunk of stamps and their sky sigmas."""
    stamps, sky_sigmas = chunk
    return [_measure(s, sig, options) for s, sig in zip(stamps, sky_sigmas)]


# --------------------------------------------------------------------------- table


def _sky_sigmas(sky_sigma: Any, n: int) -> list[float | None]:
    if sky_sigma is None:
        return [None] * n
    values = np.asarray(sky_sigma, dtype=np.float64)
    if values.ndim == 0:
        return [check_positive(float(values), "sky_sigma")] * n
    if values.shape != (n,):
        raise ValueError(
            f"sky_sigma: expected a number or one value per image ({n}), got shape {values.shape}"
        )
    if not (np.isfinite(values) & (values > 0)).all():
        raise ValueError("sky_sigma: expected finite positive values")
    return [float(v) for v in values]


def _check_statmorph_kwargs(kwargs: Mapping[str, Any]) -> None:
    allowed = set(inspect.signature(statmorph.SourceMorphology.__init__).parameters) - {"self"}
    for key in kwargs:
        if key in _OWN_KWARGS:
            raise TypeError(f"{key}: set by morphology() itself; use stamp_morphology() to pass your own")
        if key not in allowed:
            raise TypeError(
                f"{key}: not an option of statmorph.SourceMorphology (options: {sorted(allowed)})"
            )


def morphology(
    images: Any,
    band: str | int | None = None,
    *,
    bands: Sequence[str] | None = None,
    pixel_scale: float | None = None,
    gain: float | None = None,
    sky_sigma: float | Sequence[float] | np.ndarray | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
    include_sersic: bool = True,
    n_sigma: float = 1.5,
    n_pixels: int = 5,
    deblend: bool = True,
    contrast: float = 0.001,
    chunk_size: int | None = None,
    start_method: str | None = None,
    scheduler: Any = None,
    **statmorph_kwargs: Any,
) -> pd.DataFrame:
    """statmorph morphology of the central galaxy of every cutout, in parallel.

    For each stamp of one band: photutils detects and deblends the sources
    (:func:`~galwidgets.metrics.segmentation.central_segmap`); the sigma-clipped sky median is
    subtracted; statmorph (Rodriguez-Gomez et al. 2019) measures the central segment while the
    other segments stay in the segmentation map under their own labels, which statmorph masks.

    Parameters
    ----------
    images : Survey, SurveyStore or array (N, C, H, W)
        Flux images; a Survey also supplies ``bands`` and ``pixel_scale``. NaN pixels are masked.
        An on-disk :class:`~galwidgets.data.store.SurveyStore` is read a chunk at a time as the
        stamps are handed to the workers.
    band : str or int, optional
        Band to measure (name or channel index); default ``"r"`` if present, else the middle band.
    bands : sequence of str, optional
        Band names; default the Survey's, else ``("g", "r", "z")`` for 3-channel arrays.
    pixel_scale : float, optional
        Arcsec per pixel for the radii; default the Survey's, else 0.262.
    gain : float, optional
        Electrons per flux unit. The noise map given to statmorph (its "weightmap", the per-pixel
        1-sigma error) is ``sqrt(sky_sigma**2 + max(image, 0) / gain)`` on the sky-subtracted
        image, or the constant ``sky_sigma`` when ``gain`` is None (background-limited noise, right
        for faint survey galaxies). It only affects ``sn_per_pixel`` and the Sérsic fit weights.
    sky_sigma : float or array (N,), optional
        Sky noise per pixel (one value or one per image); default the sigma-clipped standard
        deviation of each stamp. Also sets the detection threshold.
    n_jobs : int, optional
        Processes to use; default 1 below 32 stamps (starting workers costs ~3 s once per session)
        and all usable CPUs from there; -1 all CPUs; 1 runs in this process without a pool.
    progress : bool
        Show a progress bar (``tqdm.auto``).
    include_sersic : bool
        Fit a single Sérsic profile (``sersic_n``, ``sersic_rhalf``); False skips it and is faster.
    n_sigma, n_pixels, deblend, contrast
        Segmentation: detection threshold in sky sigmas, minimum source size in pixels, deblending
        on/off and deblending contrast (see :func:`~galwidgets.metrics.segmentation.central_segmap`).
    chunk_size : int, optional
        Stamps per task sent to a worker; default about a sixteenth of a worker's share (at most 16).
    start_method : str, optional
        How the pool's workers start (see :data:`galwidgets._parallel.START_METHODS`); default
        ``"loky"``, which works from scripts without a ``__main__`` guard, notebooks and dask
        workers. ``"fork"`` starts faster but can hang when the parent runs threads (torch,
        Jupyter).
    scheduler : None, "local", address, distributed.Client or cluster
        Measure the stamps as tasks of a dask.distributed cluster (an address such as
        ``"tcp://10.0.0.5:8786"``, a ``Client``, or e.g. ``LocalCluster``) instead of the local
        process pool, as :func:`galwidgets.run_batch` does; ``n_jobs`` and ``start_method`` are then
        ignored. The table is the same.
    **statmorph_kwargs
        Passed to :class:`statmorph.SourceMorphology` (e.g. ``cutout_extent``, ``skybox_size``,
        ``psf``).

    Returns
    -------
    pandas.DataFrame
        One row per galaxy, in input order: ``gini``, ``m20`` (Lotz et al. 2004); ``concentration``,
        ``asymmetry``, ``smoothness`` (Conselice 2003; statmorph's definitions); ``r20``, ``r50``,
        ``r80`` (circular radii enclosing 20, 50, 80 % of the flux within 1.5 Petrosian radii),
        ``rpetro`` (circular Petrosian radius) and ``sersic_rhalf`` (half-light semi-major axis of
        the Sérsic fit), all in **arcsec** (``pixel_scale`` times statmorph's pixels; the scale used
        is in ``table.attrs["pixel_scale"]``); ``sersic_n``; ``ellipticity``: statmorph's
        ``ellipticity_asymmetry``, ``1 - b/a`` from the second moments about the asymmetry centre
        (the ellipse of its elliptical apertures); ``sn_per_pixel``; ``flag``: bits of
        :data:`MORPHOLOGY_FLAGS`; ``statmorph_flag`` and ``statmorph_flag_sersic``: statmorph's raw
        flags (0 good, 1 suspect, 2 bad, 4 catastrophic; -1 when it did not run). Values statmorph
        could not measure (its -99) are NaN.

    Raises
    ------
    ValueError, TypeError
        For bad arguments (naming them). Bad pixel data never raises; it is flagged.

    Notes
    -----
    A clean sample is usually ``flag & (no_source | failed | edge) == 0`` and ``statmorph_flag <= 1``
    (Rodriguez-Gomez et al. 2019 recommend ``flag == 0`` for the most reliable values).
    """
    store = images if chunked.is_store(images) else None
    if hasattr(images, "bands") and (hasattr(images, "images") or store is not None):
        pixel_scale = pixel_scale or images.pixel_scale
    if store is not None:
        n, n_channels = len(store), len(store.bands)
        channel, _ = band_index(band, bands or store.bands, n_channels)
    else:
        arr = as_images(images, "images", allow_nan=True)
        n, n_channels = arr.shape[:2]
        channel, _ = band_index(band, bands, n_channels, images)
    pixel_scale = check_positive(pixel_scale or _DEFAULT_PIXEL_SCALE, "pixel_scale")
    gain = None if gain is None else check_positive(gain, "gain")
    sigmas = _sky_sigmas(sky_sigma, n)
    n_jobs = check_jobs(n_jobs, n, min_items=32)
    chunk_size = None if chunk_size is None else check_positive_int(chunk_size, "chunk_size")
    segmentation = {"n_sigma": check_positive(n_sigma, "n_sigma"),
                    "n_pixels": check_positive_int(n_pixels, "n_pixels"),
                    "deblend": bool(deblend), "contrast": check_positive(contrast, "contrast")}
    _check_statmorph_kwargs(statmorph_kwargs)
    options = {"segmentation": segmentation, "gain": gain, "include_sersic": bool(include_sersic),
               "statmorph": dict(statmorph_kwargs)}

    if chunk_size is None:
        chunk_size = max(1, min(16, math.ceil(n / (16 * min(n_jobs, n)))))
    if store is not None:
        chunks = _store_tasks(store, channel, sigmas, chunk_size)
    else:
        stamps = np.ascontiguousarray(arr[:, channel])
        chunks = [(stamps[i:i + chunk_size], sigmas[i:i + chunk_size]) for i in range(0, n, chunk_size)]
    parts = imap_chunks(partial(_measure_chunk, options=options), chunks, n_jobs=n_jobs,
                        scheduler=scheduler, progress=progress, desc="statmorph", size=lambda c: len(c[0]),
                        total=n, start_method=start_method, quiet=True)
    rows = [row for part in parts for row in part]
    return _table(rows, pixel_scale)


def _store_tasks(store: Any, channel: int, sigmas: Sequence[float | None], size: int) -> Any:
    """``(stamps, sky sigmas)`` tasks of ``size`` galaxies, read from the store a chunk at a time."""
    step = chunked.STORE_CHUNK
    for lo in range(0, len(store), step):
        block = np.ascontiguousarray(store.read_images(slice(lo, lo + step))[:, channel])
        for i in range(0, len(block), size):
            yield block[i:i + size], sigmas[lo + i:lo + i + size]


def _table(rows: Sequence[dict[str, Any]], pixel_scale: float) -> pd.DataFrame:
    table = pd.DataFrame.from_records(list(rows), columns=[*MORPHOLOGY_COLUMNS, "flag", "statmorph_flag",
                                                           "statmorph_flag_sersic"])
    table[list(MORPHOLOGY_COLUMNS)] = table[list(MORPHOLOGY_COLUMNS)].astype(np.float64)
    for name in _RADII:
        table[name] = table[name] * pixel_scale
    for name in ("flag", "statmorph_flag", "statmorph_flag_sersic"):
        table[name] = table[name].astype(np.int64)
    table.attrs.update(pixel_scale=pixel_scale, radius_unit="arcsec")
    return table
