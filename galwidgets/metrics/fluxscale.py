"""The flux-scale check of Smith et al. (2022): is a generator's brightness off by a constant factor?

Smith et al. sorted the per-galaxy median pixel fluxes of their generated and real DESI galaxies,
plotted one sorted list against the other and fitted a line: its slope, the multiplier that maps
real fluxes onto generated ones, was 1.16-1.23 per band for their model (generated galaxies
slightly too bright). A slope of 1 and an offset of 0 mean the brightness distribution is right.

Here the per-galaxy statistic is the median flux inside a central circular aperture (the
sky-subtracted stamps of the mock survey have a median of about zero over the whole stamp, so the
whole-stamp median of Smith et al.'s sky-included cutouts would measure only noise), and the two
sorted lists are matched by quantile so that the sets may differ in size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .._validation import as_bands, as_images, check_positive

__all__ = ["central_median_flux", "flux_scale"]


def central_median_flux(images: Any, radius: float = 6.0, name: str = "images") -> np.ndarray:
    """Median flux per galaxy and band inside a central circle of ``radius`` pixels.

    Parameters
    ----------
    images : Survey or array (N, C, H, W)
        Flux images; non-finite pixels are ignored.
    radius : float
        Aperture radius in pixels, around the stamp centre ``((H - 1) / 2, (W - 1) / 2)``.
    name : str
        Argument name used in error messages.

    Returns
    -------
    ndarray (N, C)
        NaN where a galaxy has no finite pixel in the aperture.
    """
    arr = as_images(images, name, allow_nan=True)
    check_positive(radius, "radius")
    h, w = arr.shape[-2:]
    y, x = np.mgrid[:h, :w]
    inside = np.hypot(y - (h - 1) / 2, x - (w - 1) / 2) <= radius
    if not inside.any():
        raise ValueError(f"radius: {radius} px holds no pixel centre of a {h}x{w} stamp")
    pixels = arr[:, :, inside]
    out = np.full(arr.shape[:2], np.nan)
    finite = np.isfinite(pixels).any(axis=-1)
    out[finite] = np.nanmedian(pixels[finite], axis=-1)
    return out


def flux_scale(
    generated: Any,
    reference: Any,
    *,
    bands: Sequence[str] | None = None,
    radius: float = 6.0,
    trim: float = 0.05,
) -> pd.DataFrame:
    """Multiplier and offset that map reference fluxes onto generated ones, per band.

    For each band the per-galaxy central median fluxes (:func:`central_median_flux`) of both sets
    are sorted and matched at ``n = min(N_gen, N_ref)`` common quantiles ``(i + 1/2) / n``
    (those between ``trim`` and ``1 - trim``). The least-squares line through the origin,
    ``f_gen = multiplier * f_ref``, is the flux-scale check of Smith et al. (2022; their multipliers
    were 1.16-1.23); the free line ``f_gen = slope * f_ref + offset`` separates a change of scale
    from an additive offset (e.g. a sky level).

    Parameters
    ----------
    generated, reference : Survey or array (N, C, H, W)
        Flux images with the same bands in the same order.
    bands : sequence of str, optional
        Band names for the index; default the Survey's, else ``band0, band1, ...``.
    radius : float
        Central aperture radius in pixels.
    trim : float
        Fraction of quantiles left out of the fit at each end: the brightest few galaxies of a
        heavy-tailed flux distribution are single draws that would otherwise set the slope.

    Returns
    -------
    pandas.DataFrame
        One row per band: ``multiplier``, ``slope``, ``offset`` (flux units), ``median_ratio`` (median
        generated over median reference flux) and ``n`` (galaxies with a finite value in both sets,
        the smaller count).
    """
    if not 0 <= trim < 0.5:
        raise ValueError(f"trim: expected a fraction in [0, 0.5), got {trim!r}")
    gen = central_median_flux(generated, radius, "generated")
    ref = central_median_flux(reference, radius, "reference")
    if gen.shape[1] != ref.shape[1]:
        raise ValueError(f"generated: has {gen.shape[1]} bands, reference has {ref.shape[1]}")
    if bands is None:
        bands = getattr(reference, "bands", None) or getattr(generated, "bands", None)
    n_bands = gen.shape[1]
    bands = as_bands(bands, n_bands) if bands is not None else tuple(f"band{i}" for i in range(n_bands))
    rows = []
    for i, band in enumerate(bands):
        g, r = gen[:, i], ref[:, i]
        g, r = np.sort(g[np.isfinite(g)]), np.sort(r[np.isfinite(r)])
        n = min(len(g), len(r))
        row = {"band": band, "multiplier": np.nan, "slope": np.nan, "offset": np.nan, "median_ratio": np.nan,
               "n": n}
        if n >= 2:
            q = (np.arange(n) + 0.5) / n
            q = q[(q >= trim) & (q <= 1 - trim)] if n * (1 - 2 * trim) >= 2 else q
            x, y = np.quantile(r, q), np.quantile(g, q)
            if np.any(x != 0):
                row["multiplier"] = float(np.dot(x, y) / np.dot(x, x))
            if np.ptp(x) > 0:
                row["slope"], row["offset"] = (float(v) for v in np.polyfit(x, y, 1))
            row["median_ratio"] = float(np.median(g) / np.median(r)) if np.median(r) != 0 else np.nan
        rows.append(row)
    return pd.DataFrame(rows).set_index("band")
