"""The embedded mock survey: :func:`simulate_survey` draws a galaxy population and renders it.

No survey data can be downloaded at run time, so this simulator is the project's default data.
Every galaxy carries its true parameters in the catalog, which is what lets metrics and models be
checked against known physics. The population is described in :mod:`galwidgets.data.population`,
the rendering in :mod:`galwidgets.data.render`, the instruments in
:mod:`galwidgets.data.instruments`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._parallel import check_jobs
from .._validation import as_bands, check_positive, check_positive_int
from .evolving import draw_evolving_population
from .instruments import BAND_WAVELENGTHS, Instrument, get_instrument
from .population import draw_population
from .render import galaxy_band_fluxes, render_catalog
from .surveys import Survey

if TYPE_CHECKING:
    from .store import SurveyStore

__all__ = ["simulate_survey"]


def _per_band(value: float | Mapping[str, float] | None, bands: Sequence[str], name: str):
    if value is None:
        return None
    if isinstance(value, Mapping):
        missing = sorted(set(bands) - set(value))
        if missing:
            raise ValueError(f"{name}: missing a value for band(s) {missing}")
        return {b: check_positive(value[b], name) for b in bands}
    value = check_positive(value, name)
    return dict.fromkeys(bands, value)


def _check_probability(value: float, name: str) -> float:
    if not 0 <= value <= 1:
        raise ValueError(f"{name}: expected a probability in [0, 1], got {value!r}")
    return float(value)


def _check_finite(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating) \
            or not np.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return float(value)


def _draw_catalog(inst: Instrument, n: int, seed: int, *, size_evolution: float, **kwargs) -> pd.DataFrame:
    """The truth catalog of the preset's population (before rendering)."""
    if inst.population == "evolving":
        return draw_evolving_population(n, seed, mag_band=inst.mag_band, **kwargs)
    return draw_population(n, seed, size_evolution=size_evolution, **kwargs)


def _sky(inst: Instrument, bands, pixel_scale: float, zeropoint: float, sky_sigma) -> dict[str, float]:
    """Per-band sky noise: given, or the preset's scaled to this pixel scale and flux unit."""
    given = _per_band(sky_sigma, bands, "sky_sigma")
    if given is not None:
        return given
    missing = [b for b in bands if b not in inst.sky_sigma]
    if missing:
        raise ValueError(
            f"bands: {missing} are not bands of instrument {inst.name!r} {inst.bands}; "
            "pick another instrument or pass sky_sigma for every band"
        )
    unit = 10 ** (0.4 * (zeropoint - inst.zeropoint))
    return {b: inst.sky_sigma[b] * pixel_scale / inst.pixel_scale * unit for b in bands}


#: Catalog rows turned into dicts at a time to compute the true magnitudes (a dict per row of a
#: 200,000-galaxy catalog would take about a gigabyte).
_MAGNITUDE_ROWS = 10_000


def _add_true_magnitudes(catalog: pd.DataFrame, bands: Sequence[str], zeropoint: float) -> None:
    """Add ``mag_<band>``, the true total AB magnitude of each galaxy, to ``catalog`` in place."""
    mags: dict[str, list[float]] = {b: [] for b in bands}
    for lo in range(0, len(catalog), _MAGNITUDE_ROWS):
        rows = catalog.iloc[lo:lo + _MAGNITUDE_ROWS].to_dict("records")
        for b in bands:
            mags[b] += [zeropoint - 2.5 * np.log10(sum(galaxy_band_fluxes(r, b, zeropoint).values()))
                        for r in rows]
    for b in bands:
        catalog[f"mag_{b}"] = mags[b]


def simulate_survey(
    n: int,
    size: int = 64,
    bands: Sequence[str] | None = None,
    pixel_scale: float | None = None,
    seed: int = 0,
    *,
    instrument: str | Instrument = "desi",
    zeropoint: float | None = None,
    redshift: tuple[float, float] | Sequence[float] | np.ndarray | None = None,
    mag_limit: float | None = None,
    psf_fwhm: float | Mapping[str, float] | None = None,
    psf_profile: str | None = None,
    sky_sigma: float | Mapping[str, float] | None = None,
    poisson_gain: float | None = None,
    arm_probability: float = 0.7,
    companion_probability: float = 0.0,
    star_probability: float = 0.0,
    size_evolution: float = -0.75,
    merger_probability: float = 0.05,
    merger_evolution: float = 2.0,
    clumpy_probability: float = 0.08,
    clumpy_evolution: float = 1.6,
    n_jobs: int | None = None,
    progress: bool = True,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Survey | SurveyStore:
    """Simulate a mock survey of galaxies with their truth catalog, in memory or into a store on disk.

    Parameters
    ----------
    n : int
        Number of galaxies.
    size : int
        Cutout side in pixels; galaxies sit at the cutout centre ``((size - 1) / 2)`` to within
        half a pixel.
    bands : sequence of str, optional
        Bands, bluest first; default the instrument's.
    pixel_scale : float, optional
        Arcsec per pixel; default the instrument's (0.262 for ``"desi"``).
    seed : int
        Seed of every random draw: the same seed gives identical images and catalog, whatever
        ``n_jobs`` is.
    instrument : {"desi", "hsc", "hsc-deep", "uv-ir"} or Instrument
        Preset for bands, pixel scale, flux unit, seeing, PSF shape, sky noise and galaxy
        population (see :mod:`galwidgets.data.instruments`). ``"hsc-deep"`` is a deep, evolving
        population (0.05 < z < 3, i < 24.5, template colours; :mod:`galwidgets.data.evolving`)
        at HSC PDR3 Wide depth; the others draw the local population
        (:mod:`galwidgets.data.population`).
    zeropoint : float, optional
        AB zeropoint of the output flux unit; default the instrument's (22.5: nanomaggies).
    redshift : (z_min, z_max) or array of n redshifts, optional
        A range (uniform in comoving volume, thinned by the flux limit) or one value per galaxy;
        default the instrument's range ((0.02, 0.12) for ``"desi"``, (0.05, 3.0) for ``"hsc-deep"``).
    mag_limit : float, optional
        Keep galaxies brighter than this true total magnitude in the instrument's selection band
        (r; i for ``"hsc-deep"``); default the instrument's (18 for ``"desi"``, 24.5 for
        ``"hsc-deep"``); ``float("inf")`` for no flux limit.
    psf_fwhm : float or dict, optional
        PSF FWHM in arcsec, one value or one per band. By default each galaxy gets r-band seeing
        uniform in the instrument's range, scaled to other bands as λ^-0.2 (Kolmogorov).
    psf_profile : {"moffat", "kolmogorov"}, optional
        Default the instrument's.
    sky_sigma : float or dict, optional
        Per-pixel Gaussian sky noise in output flux units; default the instrument's, scaled to
        ``pixel_scale`` and ``zeropoint``. Use a tiny value for effectively noise-free images.
    poisson_gain : float, optional
        Add source Poisson noise with this many electrons per flux unit.
    arm_probability : float
        Fraction of late types (bulge fraction < 0.5) with spiral arms (all late types get clumps).
    companion_probability, star_probability : float
        Fractions of cutouts with a close companion galaxy or a bright star.
    size_evolution : float
        γ of the disk size evolution ``(1 + z)^γ`` of the local population (the evolving one
        follows van der Wel et al. 2014 by type).
    merger_probability, merger_evolution : float
        Fraction of major mergers and interacting pairs (with tidal tails), ``min(0.3, p (1 + z)^m)``
        (:func:`galwidgets.data.evolution.merger_fraction`); 0 for none.
    clumpy_probability, clumpy_evolution : float
        Fraction of star-forming galaxies that are clumpy irregulars, ``min(0.6, p (1 + z)^k)``
        (:func:`galwidgets.data.evolution.clumpy_fraction`); 0 for none. Edge-on disks (with dust
        lanes) follow from the isotropic inclinations; see :mod:`galwidgets.data.morphotypes`.
    n_jobs : int, optional
        Rendering processes; default 1 below 500 galaxies, else all usable CPUs; -1 all CPUs.
    progress : bool
        Show a progress bar.
    out : str or path-like, optional
        Write the survey to this HDF5 :class:`~galwidgets.data.store.SurveyStore` instead of
        returning it in memory: the galaxies are rendered chunk by chunk straight into the store
        (:func:`~galwidgets.data.store.render_to_store`), so memory holds the catalog and a few
        chunks, never the images. A run interrupted (even by ``kill -9``) resumes where it stopped
        when called again with the same arguments; the images equal those of the in-memory call.
    overwrite : bool
        With ``out``: replace a store at ``out`` that holds another survey (other arguments), instead
        of raising ``ValueError``.

    Returns
    -------
    Survey or SurveyStore
        The Survey (or, with ``out``, the complete store opened read-only) holding
        images ``(n, len(bands), size, size)`` and the truth catalog of
        :func:`galwidgets.data.population.draw_population` (or, for the evolving population,
        :func:`galwidgets.data.evolving.draw_evolving_population`, with ``type``, ``early_type`` and
        ``template``) plus ``mag_<band>`` (true total AB magnitude of the galaxy, with a merging
        galaxy and tidal tails, contaminants excluded), ``psf_fwhm_<band>`` and the sub-pixel
        offsets ``x_offset``, ``y_offset``.
    """
    n = check_positive_int(n, "n")
    size = check_positive_int(size, "size")
    if out is not None and not isinstance(out, str | os.PathLike):
        raise TypeError(f"out: expected a path (str or os.PathLike) of the store to write, got "
                        f"{type(out).__name__}")
    inst = get_instrument(instrument)
    bands = as_bands(bands if bands is not None else inst.bands)
    unknown = [b for b in bands if b not in BAND_WAVELENGTHS]
    if unknown:
        raise ValueError(f"bands: unknown band(s) {unknown}; known bands are {list(BAND_WAVELENGTHS)}")
    pixel_scale = check_positive(pixel_scale if pixel_scale is not None else inst.pixel_scale, "pixel_scale")
    zeropoint = float(inst.zeropoint if zeropoint is None else zeropoint)
    psf_profile = psf_profile or inst.psf_profile
    fixed_psf = _per_band(psf_fwhm, bands, "psf_fwhm")
    widest = max(fixed_psf.values()) if fixed_psf else inst.seeing[1] * 1.3
    if size < 16 or size * pixel_scale < 4 * widest:
        raise ValueError(
            f"size: {size} px ({size * pixel_scale:.1f}″) is too small for a {widest:.2f}″ PSF; "
            f"use at least {max(16, int(np.ceil(4 * widest / pixel_scale)))} px"
        )
    sky = _sky(inst, bands, pixel_scale, zeropoint, sky_sigma)
    redshift = inst.redshift if redshift is None else redshift
    mag_limit = inst.mag_limit if mag_limit is None else mag_limit
    mag_limit = None if np.isinf(mag_limit) else float(mag_limit)
    if poisson_gain is not None:
        check_positive(poisson_gain, "poisson_gain")

    catalog = _draw_catalog(
        inst, n, seed, redshift=redshift, mag_limit=mag_limit, max_r_half=size * pixel_scale / 4,
        size_evolution=size_evolution,
        arm_probability=_check_probability(arm_probability, "arm_probability"),
        companion_probability=_check_probability(companion_probability, "companion_probability"),
        star_probability=_check_probability(star_probability, "star_probability"),
        max_separation=0.45 * size * pixel_scale,
        merger_probability=_check_probability(merger_probability, "merger_probability"),
        merger_evolution=_check_finite(merger_evolution, "merger_evolution"),
        clumpy_probability=_check_probability(clumpy_probability, "clumpy_probability"),
        clumpy_evolution=_check_finite(clumpy_evolution, "clumpy_evolution"),
    )
    rng = np.random.default_rng([seed, 1])
    catalog["x_offset"] = rng.uniform(-0.5, 0.5, n)
    catalog["y_offset"] = rng.uniform(-0.5, 0.5, n)
    seeing = rng.uniform(*inst.seeing, n)
    for b in bands:
        catalog[f"psf_fwhm_{b}"] = seeing * inst.fwhm_ratio(b) if fixed_psf is None else fixed_psf[b]
    _add_true_magnitudes(catalog, bands, zeropoint)

    render_settings = {"bands": bands, "size": size, "pixel_scale": pixel_scale, "zeropoint": zeropoint,
                       "psf_profile": psf_profile, "sky_sigma": [sky[b] for b in bands],
                       "poisson_gain": poisson_gain}
    psf_median = {b: float(np.median(catalog[f"psf_fwhm_{b}"])) for b in bands}
    meta = {
        "source": "galwidgets.data.simulate_survey",
        "instrument": inst.name,
        "seed": seed,
        "redshift": list(redshift) if isinstance(redshift, tuple) else "per-galaxy array",
        "mag_limit": mag_limit,
        "mag_band": inst.mag_band,
        "population": inst.population,
        "psf_profile": psf_profile,
        "sky_sigma": sky,
        "poisson_gain": poisson_gain,
    }
    if out is not None:
        return _simulate_into_store(catalog, out, render_settings, psf_median, meta, n_jobs=n_jobs,
                                    progress=progress, overwrite=overwrite)
    images = render_catalog(catalog, **render_settings, n_jobs=check_jobs(n_jobs, n, min_items=500),
                            progress=progress)
    return Survey(images=images, catalog=catalog, bands=bands, pixel_scale=pixel_scale, zeropoint=zeropoint,
                  psf_fwhm=psf_median, meta=meta)


def _simulate_into_store(catalog: pd.DataFrame, out: str | os.PathLike, render_settings: dict[str, Any],
                         psf_fwhm: dict[str, float], meta: dict[str, Any], *, n_jobs: int | None,
                         progress: bool, overwrite: bool) -> SurveyStore:
    """Render the planned survey chunk by chunk into the store ``out`` (resuming the same survey)."""
    from .store import render_to_store

    return render_to_store(catalog, out, psf_fwhm=psf_fwhm, meta=meta, n_jobs=n_jobs, progress=progress,
                           overwrite=overwrite, **render_settings)
