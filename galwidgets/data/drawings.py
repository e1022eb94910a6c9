"""Procedural cartoon galaxies: hand-drawing-like inputs for domain transfer.

Smith et al. (2022, Fig. 7) "DESI-fied" cartoon drawings of galaxies with SDEdit. These are the
project's procedural stand-ins: flat-coloured shapes with sharp edges and uniform colours, on an
empty sky, deliberately unlike real galaxies, in the flux units of the mock survey so they can go
through a checkpoint's normalizer:

* ``"ellipse"``: one uniform ellipse;
* ``"spiral"``: a uniform core (red) with two or three uniform logarithmic-spiral arms (blue);
* ``"ring"``: a uniform annulus (blue), with a small red core in about half of them;
* ``"merger"``: two overlapping uniform ellipses of different colours and sizes.

Edges are anti-aliased by drawing on a finer grid (``oversample``) and averaging, so the shapes
are pixel-integrated but still sharp. Each component's colour comes from a power-law spectrum
``f_ν ∝ λ^β`` (:func:`galwidgets.data.render.band_flux`), so any band of
:data:`~galwidgets.data.instruments.BAND_WAVELENGTHS` works.

>>> import galwidgets as gw
>>> drawings = gw.data.cartoons(8, seed=0)          # two of each kind, 64x64 g r z nanomaggies
>>> drawings.catalog["kind"].tolist()[:4]
['ellipse', 'spiral', 'ring', 'merger']
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .._validation import as_bands, check_positive, check_positive_int
from .instruments import BAND_WAVELENGTHS
from .render import band_flux
from .surveys import Survey

__all__ = ["KINDS", "cartoons"]

#: The cartoon kinds, in the order they are cycled through.
KINDS = ("ellipse", "spiral", "ring", "merger")

# spectral slopes β of f_ν ∝ λ^β (g-r ≈ 0.31 β, r-z ≈ 0.29 β for g, r, z)
_RED = (1.8, 3.0)
_BLUE = (0.2, 1.0)


def _grid(size: int, pixel_scale: float, oversample: int) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel centre coordinates in arcsec, origin at the stamp centre ``(size - 1) / 2``."""
    fine = (np.arange(size * oversample) + 0.5) / oversample - 0.5 - (size - 1) / 2
    x, y = np.meshgrid(fine * pixel_scale, fine * pixel_scale)
    return x, y


def _frame(x: np.ndarray, y: np.ndarray, x0: float, y0: float, q: float, angle: float,
           polar: bool = False):
    """Elliptical frame: radius (and with ``polar`` the polar angle) in the plane of the disc,
    major axis at ``angle``."""
    c, s = math.cos(angle), math.sin(angle)
    u = (x - x0) * c + (y - y0) * s
    v = (-(x - x0) * s + (y - y0) * c) / q
    r = np.sqrt(u * u + v * v)
    return (r, np.arctan2(v, u)) if polar else (r, None)


def _spiral_arms(r: np.ndarray, theta: np.ndarray, r0: float, r1: float, n_arms: int, pitch: float,
                 phase: float, width: float) -> np.ndarray:
    """Pixels within ``width / 2`` (arc length) of ``n_arms`` log spirals from radius r0 to r1."""
    mask = np.zeros(r.shape, dtype=bool)
    inside = (r >= r0) & (r <= r1)
    wind = np.log(np.maximum(r, r0) / r0) / math.tan(pitch)
    for k in range(n_arms):
        arm = phase + 2 * math.pi * k / n_arms + wind
        offset = (theta - arm + math.pi) % (2 * math.pi) - math.pi  # wrapped to [-π, π)
        mask |= inside & (np.abs(offset) * r < width / 2)
    return mask


def _coverage(mask: np.ndarray, size: int, oversample: int) -> np.ndarray:
    """Fraction of each pixel covered by ``mask`` (drawn on the oversampled grid)."""
    return mask.reshape(size, oversample, size, oversample).mean(axis=(1, 3))


def _draw(kind: str, rng: np.random.Generator, x: np.ndarray, y: np.ndarray, extent: float):
    """Components ``[(coverage mask, r-flux fraction, spectral slope), ...]`` and catalog values."""
    angle = rng.uniform(0, math.pi)
    info = {"position_angle": math.degrees(angle), "n_arms": 0, "pitch_angle": np.nan}
    x0, y0 = rng.uniform(-0.15, 0.15, 2) * extent / 6
    if kind == "ellipse":
        a = min(rng.uniform(2.5, 5.5), extent)
        q = rng.uniform(0.35, 1.0)
        r, _ = _frame(x, y, x0, y0, q, angle)
        slope = rng.uniform(*(_RED if rng.random() < 0.5 else _BLUE))
        parts = [(r <= a, 1.0, slope)]
    elif kind == "spiral":
        a = min(rng.uniform(4.0, 6.5), extent)
        q = rng.uniform(0.6, 1.0)
        r, theta = _frame(x, y, x0, y0, q, angle, polar=True)
        n_arms = 2 if rng.random() < 0.7 else 3
        pitch = math.radians(rng.uniform(14, 28))
        core = a * rng.uniform(0.2, 0.3)
        arms = _spiral_arms(r, theta, 0.8 * core, a, n_arms, pitch, rng.uniform(0, 2 * math.pi),
                            width=a * rng.uniform(0.12, 0.2))
        core_frac = rng.uniform(0.3, 0.5)
        parts = [(r <= core, core_frac, rng.uniform(*_RED)),
                 (arms & (r > core), 1 - core_frac, rng.uniform(*_BLUE))]
        info.update(n_arms=n_arms, pitch_angle=math.degrees(pitch))
    elif kind == "ring":
        a = min(rng.uniform(3.5, 6.5), extent)
        q = rng.uniform(0.6, 1.0)
        r, _ = _frame(x, y, x0, y0, q, angle)
        inner = a * rng.uniform(0.55, 0.75)
        parts = [((r >= inner) & (r <= a), 1.0, rng.uniform(*_BLUE))]
        if rng.random() < 0.5:
            frac = rng.uniform(0.15, 0.3)
            parts = [(parts[0][0], 1 - frac, parts[0][2]),
                     (r <= a * rng.uniform(0.12, 0.2), frac, rng.uniform(*_RED))]
    elif kind == "merger":
        a1, a2 = rng.uniform(2.0, 3.8), rng.uniform(1.4, 3.0)
        sep = rng.uniform(0.65, 1.0) * (a1 + a2)
        # keep both inside the stamp: |offset| + radius <= extent
        scale = min(1.0, extent / (sep / 2 + max(a1, a2)))
        a1, a2, sep = a1 * scale, a2 * scale, sep * scale
        frac = rng.uniform(0.5, 0.7)
        dx, dy = math.cos(angle) * sep / 2, math.sin(angle) * sep / 2
        r1, _ = _frame(x, y, x0 + dx, y0 + dy, rng.uniform(0.4, 1.0), rng.uniform(0, math.pi))
        r2, _ = _frame(x, y, x0 - dx, y0 - dy, rng.uniform(0.4, 1.0), rng.uniform(0, math.pi))
        red_first = rng.random() < 0.5
        parts = [(r1 <= a1, frac, rng.uniform(*(_RED if red_first else _BLUE))),
                 (r2 <= a2, 1 - frac, rng.uniform(*(_BLUE if red_first else _RED)))]
        a, q = sep / 2 + a1, 1.0
    else:  # pragma: no cover - checked by the caller
        raise ValueError(kind)
    info.update(radius_arcsec=float(a), axis_ratio=float(q))
    return parts, info


def cartoons(
    n: int,
    size: int = 64,
    kinds: Sequence[str] = KINDS,
    bands: Sequence[str] = ("g", "r", "z"),
    seed: int = 0,
    *,
    pixel_scale: float = 0.262,
    zeropoint: float = 22.5,
    mag_r: tuple[float, float] = (15.5, 17.5),
    oversample: int = 4,
    psf_fwhm: float | None = None,
    sky_sigma: float | Mapping[str, float] | None = None,
) -> Survey:
    """Draw ``n`` cartoon galaxies: flat-coloured shapes with sharp edges, in survey flux units.

    Parameters
    ----------
    n : int
        Number of cartoons.
    size : int
        Stamp side in pixels; shapes are drawn in arcsec and kept inside the stamp.
    kinds : sequence of {"ellipse", "spiral", "ring", "merger"}
        Kinds to draw, cycled through in order (galaxy ``i`` is ``kinds[i % len(kinds)]``), so
        every kind is present once ``n >= len(kinds)``.
    bands : sequence of str
        Bands, bluest first, from :data:`~galwidgets.data.instruments.BAND_WAVELENGTHS`.
    seed : int
        Seed: galaxy ``i`` depends only on ``(seed, i, kind)``, so the first galaxies of a larger
        set are those of a smaller one.
    pixel_scale : float
        Arcsec per pixel (DESI Legacy Surveys: 0.262).
    zeropoint : float
        AB zeropoint of the flux unit (22.5: nanomaggies).
    mag_r : (float, float)
        Range of the total r magnitude, drawn uniformly (the mock survey's galaxies are
        brighter than r = 18, median about 17.4).
    oversample : int
        Sub-pixels per pixel side for anti-aliased edges.
    psf_fwhm : float, optional
        Blur with a Gaussian of this FWHM in arcsec; default none (sharp edges, as drawn).
    sky_sigma : float or dict, optional
        Add Gaussian sky noise of this standard deviation (flux units), one value or one per band;
        default none (an empty sky).

    Returns
    -------
    Survey
        Images ``(n, len(bands), size, size)`` and a catalog with ``kind``, ``mag_r`` (drawn),
        ``mag_<band>`` (total magnitude of the drawing in each band), ``radius_arcsec`` (outer
        semi-major axis; for mergers, half the separation plus the first radius),
        ``axis_ratio``, ``position_angle`` (degrees), ``n_arms`` and ``pitch_angle`` (spirals;
        0 and NaN otherwise), ``seed``.
    """
    n = check_positive_int(n, "n")
    size = check_positive_int(size, "size")
    oversample = check_positive_int(oversample, "oversample")
    pixel_scale = check_positive(pixel_scale, "pixel_scale")
    bands = as_bands(bands)
    unknown = [b for b in bands if b not in BAND_WAVELENGTHS]
    if unknown:
        raise ValueError(f"bands: no wavelength known for {unknown}; known: {sorted(BAND_WAVELENGTHS)}")
    if isinstance(kinds, str):
        kinds = (kinds,)
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if not kinds or bad:
        raise ValueError(f"kinds: expected a non-empty selection of {KINDS}, got {kinds!r}")
    lo, hi = (float(v) for v in mag_r)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise ValueError(f"mag_r: expected a range (bright, faint) of finite magnitudes, got {mag_r!r}")
    if psf_fwhm is not None:
        psf_fwhm = check_positive(psf_fwhm, "psf_fwhm")
    if isinstance(sky_sigma, Mapping):
        missing = sorted(set(bands) - set(sky_sigma))
        if missing:
            raise ValueError(f"sky_sigma: missing a value for band(s) {missing}")
        noise = np.array([check_positive(sky_sigma[b], "sky_sigma") for b in bands], dtype=np.float32)
    elif sky_sigma is not None:
        noise = np.full(len(bands), check_positive(sky_sigma, "sky_sigma"), dtype=np.float32)
    else:
        noise = None

    x, y = _grid(size, pixel_scale, oversample)
    extent = 0.45 * size * pixel_scale  # outer radius limit, arcsec
    images = np.zeros((n, len(bands), size, size), dtype=np.float32)
    rows = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        rng = np.random.default_rng([int(seed), i, KINDS.index(kind)])
        parts, info = _draw(kind, rng, x, y, extent)
        mag = float(rng.uniform(lo, hi))
        for mask, frac, slope in parts:
            cover = _coverage(mask, size, oversample)
            area = cover.sum()
            if area <= 0:  # a component too small to cover any sub-pixel: nothing to draw
                continue
            for c, band in enumerate(bands):
                flux = band_flux(mag, slope, band, zeropoint) * frac
                images[i, c] += (flux / area * cover).astype(np.float32)
        if psf_fwhm is not None:
            from scipy.ndimage import gaussian_filter

            sigma_px = psf_fwhm / (2 * math.sqrt(2 * math.log(2))) / pixel_scale
            for c in range(len(bands)):
                images[i, c] = gaussian_filter(images[i, c], sigma_px, mode="constant")
        totals = images[i].sum(axis=(1, 2), dtype=np.float64)
        if noise is not None:
            images[i] += (rng.standard_normal(images[i].shape) * noise[:, None, None]).astype(np.float32)
        rows.append({"kind": kind, "mag_r": mag,
                     **{f"mag_{b}": float(zeropoint - 2.5 * np.log10(t)) for b, t in zip(bands, totals)},
                     **info, "seed": int(seed)})
    catalog = pd.DataFrame(rows)
    return Survey(
        images=images,
        catalog=catalog,
        bands=bands,
        pixel_scale=pixel_scale,
        zeropoint=zeropoint,
        psf_fwhm=None if psf_fwhm is None else dict.fromkeys(bands, psf_fwhm),
        meta={"source": "galwidgets.data.cartoons", "kinds": list(kinds), "seed": int(seed),
              "mag_r": [lo, hi], "oversample": oversample, "psf_fwhm": psf_fwhm,
              "sky_sigma": None if noise is None else noise.tolist()},
    )
