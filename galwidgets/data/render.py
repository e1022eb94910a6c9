"""Rendering truth catalogs into multi-band cutouts with GalSim.

Each galaxy is a GalSim sum of a Sérsic bulge, an exponential disk and, for late types, a
star-forming component (knots along logarithmic spiral arms plus clumps), all sheared by the same
inclination and position angle. Edge-on disks are thin inclined exponential disks with a sech²
vertical profile, less a thinner dust lane; mergers add a second galaxy, tidal tails and a
lopsided primary disk (:mod:`galwidgets.data.morphotypes`). Each component has a spectrum (a
power law f_ν ∝ λ^β, or a redshifted template of :mod:`galwidgets.data.sed`), so a band's image
is the same shapes with other fluxes. Companions and stars are added as further sources.
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
from .morphotypes import DISK_H_OVER_R, DUST_H_OVER_R
from .sed import band_flux_ratio

__all__ = ["DUST_MAX_FRACTION", "band_flux", "draw_stamp", "galaxy_band_fluxes", "galaxy_profile", "make_psf",
           "render_catalog", "render_galaxy"]

_REFERENCE = BAND_WAVELENGTHS["r"]
#: Looser than GalSim's defaults (folding 5e-3, maxk 1e-3): pixel errors stay below 1e-5 of the
#: peak, far under the sky noise, and rendering is about 20 % faster (BENCHMARKS.md).
GSPARAMS = galsim.GSParams(folding_threshold=2e-2, maxk_threshold=3e-3)
#: Largest share of the disk light a dust lane removes: with the lane's scale height 0.3 of the
#: disk's, the mid-plane of an edge-on disk then keeps at least 10 % of its light (no negative pixels).
DUST_MAX_FRACTION = 0.27


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
    clump_scale = _value(row, "clump_scale", 0.2)
    return galsim.Convolve(knots, galsim.Gaussian(sigma=clump_scale * scale + 0.03, gsparams=GSPARAMS))


def _value(row: Mapping, key: str, default: float) -> float:
    """``row[key]``, or ``default`` where the catalog has no such column or a NaN."""
    value = row.get(key, default)
    return default if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _is_merger(row: Mapping) -> bool:
    return row.get("morphology") == "merger"


def _disk(row: Mapping, angle: galsim.Angle) -> tuple[galsim.GSObject, galsim.GSObject | None]:
    """The disk and, for dusty edge-on disks, its (unit-flux) dust lane."""
    if row.get("morphology") != "edge-on":
        disk = galsim.Exponential(half_light_radius=row["r_disk_arcsec"], gsparams=GSPARAMS)
        return disk.shear(q=row["axis_ratio"], beta=angle), None
    # a thin disk seen edge-on: face-on radius such that the circularised radius is r_disk
    inclination = row["inclination"] * galsim.degrees
    face_on = row["r_disk_arcsec"] / math.sqrt(row["axis_ratio"])
    disk = galsim.InclinedExponential(inclination, half_light_radius=face_on,
                                      scale_h_over_r=DISK_H_OVER_R, gsparams=GSPARAMS).rotate(angle)
    if _value(row, "dust_lane", 0.0) <= 0:
        return disk, None
    lane = galsim.InclinedExponential(inclination, half_light_radius=face_on,
                                      scale_h_over_r=DUST_H_OVER_R, gsparams=GSPARAMS).rotate(angle)
    return disk, lane


def _tidal_tails(row: Mapping, rng: np.random.Generator, primary: tuple[float, float],
                 secondary: tuple[float, float]) -> galsim.GSObject:
    """One or two curved streams of Gaussian knots (unit flux), from each galaxy of the pair outward."""
    r_half = row["r_half_arcsec"]
    length = row["tidal_length_arcsec"]
    away = math.radians(row["merger_angle"])  # direction from the primary to the secondary
    blobs = []
    starts = [(primary, away + math.pi), (secondary, away)][: int(row["n_tails"])]
    for (x0, y0), direction in starts:
        sense = rng.choice([-1.0, 1.0])
        sweep = math.radians(rng.uniform(50, 130))
        start = direction + rng.uniform(-0.6, 0.6)
        s = np.linspace(0, 1, 14)
        radius = r_half * 0.8 + (length - r_half * 0.8) * s
        theta = start + sense * sweep * s
        weights = np.exp(-1.5 * s) * rng.lognormal(0, 0.2, len(s))
        for sk, rk, tk, wk in zip(s, radius, theta, weights / weights.sum()):
            sigma = max(r_half * (0.25 + 0.35 * sk), 0.04)
            blobs.append(galsim.Gaussian(sigma=sigma, flux=wk, gsparams=GSPARAMS)
                         .shift(x0 + rk * math.cos(tk), y0 + rk * math.sin(tk)))
    return galsim.Add(blobs) / len(starts)


def _pair_offsets(row: Mapping) -> tuple[tuple[float, float], tuple[float, float]]:
    """Positions (arcsec) of the primary and the secondary: their light-weighted centre at (0, 0)."""
    ratio = row["merger_flux_ratio"]
    d = row["merger_separation_arcsec"]
    angle = math.radians(row["merger_angle"])
    ux, uy = math.cos(angle), math.sin(angle)
    w2 = ratio / (1 + ratio)
    return (-w2 * d * ux, -w2 * d * uy), ((1 - w2) * d * ux, (1 - w2) * d * uy)


def galaxy_profile(row: Mapping, rng: np.random.Generator) -> dict[str, galsim.GSObject]:
    """Unit-flux GalSim profiles of the components of one catalog row.

    Returns ``{"bulge", "disk"}`` plus ``"sf"`` (galaxies with arms or clumps), ``"dust"`` (the
    dust lane of a dusty edge-on disk, added with negative flux) and, for mergers, ``"secondary"``,
    ``"tidal"`` and ``"nuclei"``; multiply each by its flux in a band (:func:`galaxy_band_fluxes`)
    and add them to get the galaxy in that band.
    """
    angle = row["position_angle"] * galsim.degrees
    disk, lane = _disk(row, angle)
    parts = {
        "bulge": galsim.Sersic(n=row["sersic_n"], half_light_radius=row["r_bulge_arcsec"], gsparams=GSPARAMS)
        .shear(q=row["bulge_axis_ratio"], beta=angle),
        "disk": disk,
    }
    knots = _star_forming_knots(row, rng)
    if knots is not None:
        parts["sf"] = knots
    if lane is not None:
        parts["dust"] = lane
    if _is_merger(row):
        primary, secondary = _pair_offsets(row)
        lopsided = rng.uniform(0, 2 * np.pi)
        shift = row["lopsidedness"] * row["r_half_arcsec"]
        parts = {name: profile.shift(*primary) for name, profile in parts.items()}
        parts["disk"] = parts["disk"].shift(shift * math.cos(lopsided), shift * math.sin(lopsided))
        parts["secondary"] = (
            galsim.Sersic(n=row["secondary_sersic_n"], half_light_radius=row["secondary_r_half_arcsec"],
                          gsparams=GSPARAMS)
            .shear(q=row["secondary_axis_ratio"], beta=row["secondary_position_angle"] * galsim.degrees)
            .shift(*secondary))
        parts["tidal"] = _tidal_tails(row, rng, primary, secondary)
        parts["nuclei"] = _nuclei(row, primary, secondary)
    return parts


def _nuclei(row: Mapping, primary: tuple[float, float], secondary: tuple[float, float]) -> galsim.GSObject:
    """Compact starbursts in both nuclei of a merging pair, in proportion to their light (unit flux)."""
    w2 = row["merger_flux_ratio"] / (1 + row["merger_flux_ratio"])
    return galsim.Add([
        galsim.Gaussian(sigma=max(0.08 * r, 0.04), flux=w, gsparams=GSPARAMS).shift(*position)
        for r, w, position in ((row["r_half_arcsec"], 1 - w2, primary),
                               (row["secondary_r_half_arcsec"], w2, secondary))
    ])


def _uses_templates(row: Mapping) -> bool:
    return row.get("sed") == "template"


def _fractions(row: Mapping, band: str) -> dict[str, float]:
    """Each component's share of the primary's light in the reference band (observed r, or
    rest-frame B for template spectra); the dust lane's is negative, the merger's parts are extra."""
    sf = row["arm_fraction"] + row["clump_fraction"]
    out = {"bulge": row["bulge_fraction"], "disk": 1 - row["bulge_fraction"] - sf, "sf": sf}
    dust = _value(row, "dust_lane", 0.0)
    if dust > 0:
        rest_wavelength = BAND_WAVELENGTHS[band] / (1 + row["redshift"])
        out["dust"] = -out["disk"] * min(DUST_MAX_FRACTION, dust * 550.0 / rest_wavelength)
    if _is_merger(row):
        nuclear = _value(row, "nuclear_fraction", 0.0)
        for part in ("bulge", "disk", "sf"):
            out[part] *= 1 - nuclear
        out["secondary"] = row["merger_flux_ratio"] * (1 - nuclear)
        out["nuclei"] = nuclear * (1 + row["merger_flux_ratio"])
        out["tidal"] = row["tidal_fraction"] * (1 + row["merger_flux_ratio"])
    return out


def _spectra(row: Mapping) -> dict[str, float]:
    """Each component's spectrum: a power-law slope β (f_ν ∝ λ^β) or a template index."""
    if _uses_templates(row):
        disk = row["template_disk"]
        return {"bulge": row["template_bulge"], "disk": disk, "sf": row["template_sf"], "dust": disk,
                "secondary": _value(row, "secondary_template", disk), "tidal": disk,
                "nuclei": row["template_sf"]}
    disk = row["sed_slope_disk"]
    return {"bulge": row["sed_slope_bulge"], "disk": disk, "sf": row["sed_slope_sf"], "dust": disk,
            "secondary": _value(row, "secondary_sed_slope", disk), "tidal": disk,
            "nuclei": row["sed_slope_sf"]}


def galaxy_band_fluxes(row: Mapping, band: str, zeropoint: float) -> dict[str, float]:
    """Flux of each galaxy component in ``band`` (the reference-band split is given by the fractions).

    Power-law rows (``sed`` ``"power-law"`` or absent) scale the true r magnitude ``mag_r_true``
    by ``(λ / λ_r)^β``; template rows (``sed == "template"``) take the rest-frame B absolute
    magnitude plus distance modulus through the template's k-correction
    (:func:`galwidgets.data.sed.band_flux_ratio`).
    """
    fractions, spectra = _fractions(row, band), _spectra(row)
    if _uses_templates(row):
        reference = 10 ** (-0.4 * (row["abs_mag_B"] + row["distmod"] - zeropoint))
        return {part: reference * fraction * float(band_flux_ratio(spectra[part], band, row["redshift"]))
                for part, fraction in fractions.items()}
    return {part: band_flux(row["mag_r_true"], spectra[part], band, zeropoint) * fraction
            for part, fraction in fractions.items()}


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
        sources = [parts[p] * fluxes[p] for p in parts if fluxes[p] != 0]
        if contaminants:
            sources += _contaminant_sources(row, band, zeropoint)
        scene = galsim.Add(sources)
        if psf:
            scene = galsim.Convolve(scene, make_psf(psf_profile, row[f"psf_fwhm_{band}"]))
        elif set(parts) <= {"bulge", "disk"} and not (contaminants and (row.get("has_companion")
                                                                       or row.get("has_star"))):
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
