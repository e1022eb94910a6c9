"""Rendering truth catalogs into multi-band cutouts with GalSim.

Each galaxy is a GalSim sum of a Sérsic bulge, an exponential disk and, for late types, a
star-forming component (knots along logarithmic spiral arms plus clumps), all sheared by the same
inclination and position angle. Each component has a power-law spectrum f_ν ∝ λ^β, so a band's
image is the same shapes with other fluxes. Companions and stars are added as further sources.
The sum is convolved with the band's PSF (Moffat β = 3.5 or Kolmogorov) and drawn at the pixel
scale; sky noise (and optionally source Poisson noise) is added per galaxy from its own seed, so
images do not depend on how the work is split over processes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial

import galsim
import numpy as np
import pandas as pd

from .._parallel import map_chunks
from .instruments import BAND_WAVELENGTHS

__all__ = ["band_flux", "draw_stamp", "galaxy_profile", "make_psf", "render_catalog"]

_REFERENCE = BAND_WAVELENGTHS["r"]
#: Looser than GalSim's defaults (folding 5e-3, maxk 1e-3): pixel errors stay below 1e-5 of the
#: peak, far under the sky noise, and rendering is about 20 % faster (BENCHMARKS.md).
GSPARAMS = galsim.GSParams(folding_threshold=2e-2, maxk_threshold=3e-3)


def band_flux(mag_r: float, sed_slope: float, band: str, zeropoint: float) -> float:
    """Flux in ``band`` of a source of r magnitude ``mag_r`` with spectrum f_ν ∝ λ^sed_slope."""
    ratio = BAND_WAVELENGTHS[band] / _REFERENCE
    return 10 ** (-0.4 * (mag_r - zeropoint)) * ratio**sed_slope


def _star_forming_knots(row: Mapping, rng: np.random.Generator) -> galsim.GSObject | None:
    """Knots along log-spiral arms plus random clumps, in the galaxy's (sheared) frame, flux 1."""
    scale = row["r_disk_arcsec"] / 1.678  # exponential scale length from the half-light radius
    xs, ys, fluxes = [], [], []
    if row["has_arms"]:
        tan_pitch = math.tan(math.radians(row["pitch_angle"]))
        phase = rng.uniform(0, 2 * np.pi)
        for arm in range(int(row["n_arms"])):
            r = np.linspace(0.4, 3.5, 8) * scale
            theta = phase + 2 * np.pi * arm / row["n_arms"] + np.log(r / r[0]) / tan_pitch
            jitter = rng.normal(0, 0.08 * scale, (2, len(r)))
            xs.append(r * np.cos(theta) + jitter[0])
            ys.append(r * np.sin(theta) + jitter[1])
            weight = r * np.exp(-r / scale) * rng.lognormal(0, 0.3, len(r))
            fluxes.append(row["arm_fraction"] * weight / weight.sum() / row["n_arms"])
    if row["n_clumps"] > 0:
        k = int(row["n_clumps"])
        r = rng.gamma(2.0, 0.8 * scale, k)
        theta = rng.uniform(0, 2 * np.pi, k)
        xs.append(r * np.cos(theta))
        ys.append(r * np.sin(theta))
        weight = rng.lognormal(0, 0.5, k)
        fluxes.append(row["clump_fraction"] * weight / weight.sum())
    if not xs:
        return None
    x, y, flux = np.concatenate(xs), np.concatenate(ys), np.concatenate(fluxes)
    shear = galsim.Shear(q=row["axis_ratio"], beta=row["position_angle"] * galsim.degrees)
    (x, y) = shear.getMatrix() @ np.vstack([x, y])
    total = flux.sum()
    knots = galsim.Add([galsim.DeltaFunction(flux=f / total, gsparams=GSPARAMS).shift(a, b)
                        for a, b, f in zip(x, y, flux)])
    return galsim.Convolve(knots, galsim.Gaussian(sigma=0.2 * scale + 0.03, gsparams=GSPARAMS))


def galaxy_profile(row: Mapping, rng: np.random.Generator) -> dict[str, galsim.GSObject]:
    """Unit-flux GalSim profiles of the components of one catalog row.

    Returns ``{"bulge": ..., "disk": ..., "sf": ...}`` (``"sf"`` only for galaxies with arms or
    clumps); multiply each by its flux in a band and add them to get the galaxy in that band.
    """
    angle = row["position_angle"] * galsim.degrees
    parts = {
        "bulge": galsim.Sersic(n=row["sersic_n"], half_light_radius=row["r_bulge_arcsec"], gsparams=GSPARAMS)
        .shear(q=row["bulge_axis_ratio"], beta=angle),
        "disk": galsim.Exponential(half_light_radius=row["r_disk_arcsec"], gsparams=GSPARAMS)
        .shear(q=row["axis_ratio"], beta=angle),
    }
    knots = _star_forming_knots(row, rng)
    if knots is not None:
        parts["sf"] = knots
    return parts


def _fractions(row: Mapping) -> dict[str, float]:
    sf = row["arm_fraction"] + row["clump_fraction"]
    return {"bulge": row["bulge_fraction"], "disk": 1 - row["bulge_fraction"] - sf, "sf": sf}


def _slopes(row: Mapping) -> dict[str, float]:
    return {"bulge": row["sed_slope_bulge"], "disk": row["sed_slope_disk"], "sf": row["sed_slope_sf"]}


def galaxy_band_fluxes(row: Mapping, band: str, zeropoint: float) -> dict[str, float]:
    """Flux of each galaxy component in ``band`` (the r-band split is given by the fractions)."""
    fractions, slopes = _fractions(row), _slopes(row)
    return {
        part: band_flux(row["mag_r_true"], slopes[part], band, zeropoint) * fractions[part]
        for part in fractions
    }


def _contaminant_sources(row: Mapping, band: str, zeropoint: float) -> list[galsim.GSObject]:
    sources = []
    if row.get("has_companion"):
        flux = band_flux(row["companion_mag_r"], row["companion_sed_slope"], band, zeropoint)
        sources.append(
            galsim.Sersic(n=row["companion_sersic_n"], half_light_radius=row["companion_r_half_arcsec"],
                          flux=flux, gsparams=GSPARAMS)
            .shear(q=row["companion_axis_ratio"], beta=row["companion_position_angle"] * galsim.degrees)
            .shift(row["companion_x_arcsec"], row["companion_y_arcsec"])
        )
    if row.get("has_star"):
        flux = band_flux(row["star_mag_r"], row["star_sed_slope"], band, zeropoint)
        star = galsim.DeltaFunction(flux=flux, gsparams=GSPARAMS)
        sources.append(star.shift(row["star_x_arcsec"], row["star_y_arcsec"]))
    return sources


def make_psf(kind: str, fwhm: float, beta: float = 3.5) -> galsim.GSObject:
    """The survey PSF: a Moffat profile of index ``beta`` or a Kolmogorov (turbulence) profile."""
    if kind == "moffat":
        return galsim.Moffat(beta=beta, fwhm=fwhm, gsparams=GSPARAMS)
    if kind == "kolmogorov":
        return galsim.Kolmogorov(fwhm=fwhm, gsparams=GSPARAMS)
    raise ValueError(f"psf_profile: expected 'moffat' or 'kolmogorov', got {kind!r}")


def render_galaxy(row: Mapping, bands: Sequence[str], size: int, pixel_scale: float, zeropoint: float,
                  psf_profile: str = "moffat", psf: bool = True, contaminants: bool = True) -> np.ndarray:
    """Noise-free ``(C, size, size)`` image of one catalog row (dict or Series)."""
    rng = np.random.default_rng([int(row["render_seed"]), 0])
    parts = galaxy_profile(row, rng)
    offset = (row.get("x_offset", 0.0), row.get("y_offset", 0.0))
    image = np.empty((len(bands), size, size), dtype=np.float32)
    for c, band in enumerate(bands):
        fluxes = galaxy_band_fluxes(row, band, zeropoint)
        sources = [parts[p] * fluxes[p] for p in parts if fluxes[p] > 0]
        if contaminants:
            sources += _contaminant_sources(row, band, zeropoint)
        scene = galsim.Add(sources)
        if psf:
            scene = galsim.Convolve(scene, make_psf(psf_profile, row[f"psf_fwhm_{band}"]))
        elif "sf" not in parts and not (contaminants and (row.get("has_companion") or row.get("has_star"))):
            # smooth profiles sampled at pixel centres: exact and fast without a PSF
            image[c] = scene.drawImage(nx=size, ny=size, scale=pixel_scale, offset=offset,
                                       method="no_pixel").array
            continue
        image[c] = draw_stamp(scene, size, pixel_scale, offset)
    return image


def draw_stamp(profile: galsim.GSObject, size: int, pixel_scale: float,
               offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Pixel-integrated ``(size, size)`` image of ``profile`` centred on the stamp, by FFT.

    The same as ``profile.drawImage(nx=size, ny=size, scale=pixel_scale, offset=offset)``
    (GalSim's FFT path: ``drawFFT_makeKImage``, ``drawKImage``, ``drawFFT_finish``), except for
    the size of the FFT. GalSim sizes it so that at most ``folding_threshold`` of the flux folds
    anywhere into the periodic box; only the ``size``-pixel stamp is kept here, so the box need
    only be large enough that light folded past its edge lands outside the stamp unless it
    comes from beyond GalSim's folding radius R = π / stepk: N ≥ R + |offset| + size / 2 pixels,
    against GalSim's N ≥ 2R (and its 128-pixel floor). Large galaxies in small stamps render 1.5-2x
    faster; pixels differ from ``drawImage`` by < 1e-3 nanomaggies, a tenth of the faintest sky
    noise of the presets (BENCHMARKS.md).
    """
    image_to_pixels = galsim.PixelScale(pixel_scale)
    centre = -0.5 if size % 2 == 0 else 0.0  # GalSim's true centre of an even-sized image
    shifted = image_to_pixels.profileToImage(profile).shift(offset[0] + centre, offset[1] + centre)
    pixelated = galsim.Convolve(shifted, galsim.Pixel(1.0, gsparams=GSPARAMS))
    image = galsim.ImageF(size, size, scale=1.0)
    view = image.view()
    view.setCenter(0, 0)
    fold_radius = math.pi / pixelated.stepk
    n_fft = galsim.Image.good_fft_size(
        max(size, math.ceil(fold_radius + math.hypot(*offset) + size / 2 + 1)))
    dk = 2 * math.pi / n_fft
    n_k = n_fft if n_fft * dk / 2 > pixelated.maxk else 2 * math.ceil(pixelated.maxk / dk)
    if n_k > pixelated.gsparams.maximum_fft_size:
        raise ValueError(f"profile: needs a {n_k}-pixel FFT (a point source without a PSF?); "
                         "render it with psf=True or without contaminants")
    kimage = galsim.ImageCF(galsim.BoundsI(0, n_k // 2, -n_k // 2, n_k // 2), scale=dk)
    pixelated.drawKImage(image=kimage, scale=dk, recenter=False)
    pixelated.drawFFT_finish(view, kimage, n_fft, add_to_image=False)
    return image.array


def _add_noise(image: np.ndarray, row: Mapping, sky_sigma: np.ndarray | None,
               poisson_gain: float | None) -> np.ndarray:
    rng = np.random.default_rng([int(row["render_seed"]), 1])
    if poisson_gain:
        electrons = rng.poisson(np.clip(image, 0, None) * poisson_gain)
        image = (electrons / poisson_gain).astype(np.float32)
    if sky_sigma is not None:
        image = image + rng.standard_normal(image.shape, dtype=np.float32) * sky_sigma[:, None, None]
    return image


def _render_rows(rows: list[dict], kwargs: dict) -> np.ndarray:
    kwargs = dict(kwargs)
    sky, gain = kwargs.pop("sky_sigma"), kwargs.pop("poisson_gain")
    out = np.empty((len(rows), len(kwargs["bands"]), kwargs["size"], kwargs["size"]), dtype=np.float32)
    for i, row in enumerate(rows):
        out[i] = _add_noise(render_galaxy(row, **kwargs), row, sky, gain)
    return out


def render_catalog(
    catalog: pd.DataFrame,
    bands: Sequence[str],
    size: int,
    pixel_scale: float,
    zeropoint: float,
    *,
    psf_profile: str = "moffat",
    psf: bool = True,
    contaminants: bool = True,
    sky_sigma: Sequence[float] | None = None,
    poisson_gain: float | None = None,
    n_jobs: int = 1,
    progress: bool = True,
) -> np.ndarray:
    """Render every row of a truth catalog (from :func:`draw_population` plus per-band
    ``psf_fwhm_<band>``) into flux images ``(N, C, size, size)``.

    Parameters
    ----------
    catalog : pandas.DataFrame
        Truth catalog; ``x_offset``/``y_offset`` (pixels) shift galaxies from the cutout centre.
    bands, size, pixel_scale, zeropoint
        Output bands, cutout side (pixels), arcsec per pixel and AB zeropoint of the flux unit.
    psf_profile : {"moffat", "kolmogorov"}
        PSF shape.
    psf : bool
        Convolve with the PSF (False: the intrinsic galaxy, pixel-integrated).
    contaminants : bool
        Draw companions and stars.
    sky_sigma : sequence of float, optional
        Gaussian sky noise per band (None: noise-free).
    poisson_gain : float, optional
        Source Poisson noise with this many electrons per flux unit.
    n_jobs : int
        Processes to render in (results are identical for any number).
    progress : bool
        Show a progress bar.
    """
    rows = catalog.to_dict("records")
    kwargs = {"bands": tuple(bands), "size": size, "pixel_scale": pixel_scale, "zeropoint": zeropoint,
              "psf_profile": psf_profile, "psf": psf, "contaminants": contaminants,
              "sky_sigma": None if sky_sigma is None else np.asarray(sky_sigma, dtype=np.float32),
              "poisson_gain": poisson_gain}
    chunk = max(8, min(256, math.ceil(len(rows) / (4 * max(1, n_jobs)))))
    chunks = [rows[i:i + chunk] for i in range(0, len(rows), chunk)]
    parts = map_chunks(partial(_render_rows, kwargs=kwargs), chunks, n_jobs=n_jobs, progress=progress,
                       desc="rendering galaxies")
    return np.concatenate(parts)
