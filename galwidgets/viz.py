"""Pictures of galaxies: per-band scaling, RGB composites with astropy stretches, grids.

Colour composites map the reddest band to red and the bluest to blue. Each band is first divided
by a per-band flux scale that grows with wavelength as λ^1.5 (0.01 nanomaggies in r), close to the
g, r, z weights of the Legacy Surveys viewer (6.0, 3.4, 2.2), so colours mean the same in every
image and a flat-spectrum source looks neutral-to-blue as in survey colour images.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy import visualization as apviz
from matplotlib.figure import Figure

from ._io import atomic_path
from ._validation import as_bands, as_images
from .data.instruments import BAND_WAVELENGTHS
from .data.noise import sky_noise

__all__ = ["STRETCHES", "band_scales", "gini_m20_lines", "image_grid", "png_bytes", "rgb_composite",
           "save_grid"]

STRETCHES = ("lupton", "asinh", "log", "sqrt", "linear")


def band_scales(bands: Sequence[str], images: np.ndarray | None = None,
                zeropoint: float = 22.5) -> np.ndarray:
    """Flux scale per band: ``0.01 (λ / λ_r)^1.5`` nanomaggies (converted to the flux unit of
    ``zeropoint``) for known bands, else the robust noise of ``images`` in that band."""
    unit = 10 ** (0.4 * (zeropoint - 22.5))
    scales = []
    for c, band in enumerate(bands):
        if band in BAND_WAVELENGTHS:
            scales.append(0.01 * unit * (BAND_WAVELENGTHS[band] / BAND_WAVELENGTHS["r"]) ** 1.5)
        elif images is not None:
            scales.append(max(float(sky_noise(images[:, c:c + 1])[0]), 1e-12))
        else:
            scales.append(1.0)
    return np.asarray(scales, dtype=np.float32)


def _rgb_channels(n_bands: int) -> list[int]:
    """Channels used for (red, green, blue): reddest, middle, bluest."""
    return [n_bands - 1, n_bands // 2, 0]


def rgb_composite(
    images: np.ndarray,
    bands: Sequence[str],
    stretch: str = "lupton",
    Q: float = 8.0,
    stretch_value: float = 50.0,
    scales: Sequence[float] | None = None,
    percentile: float = 99.5,
    zeropoint: float = 22.5,
) -> np.ndarray:
    """RGB composites of multi-band flux images.

    Parameters
    ----------
    images : array (N, C, H, W)
        Flux images, bluest band first.
    bands : sequence of str
        Band names (used for default scales).
    stretch : {"lupton", "asinh", "log", "sqrt", "linear"}
        ``"lupton"`` is the colour-preserving arcsinh of Lupton et al. (2004) through
        :func:`astropy.visualization.make_lupton_rgb`; the others stretch each channel with the
        astropy stretch of that name between 0 and the ``percentile`` of all scaled pixels.
    Q, stretch_value : float
        Softening and linear range of the Lupton stretch, in units of the band scales.
    scales : sequence of float, optional
        Flux per unit of each band; default :func:`band_scales`.
    percentile : float
        Upper limit of the non-Lupton stretches.
    zeropoint : float
        AB zeropoint of the flux unit (for the default scales).

    Returns
    -------
    numpy.ndarray
        ``uint8`` images shaped ``(N, H, W, 3)``.
    """
    images = as_images(images, "images", allow_nan=True)
    bands = as_bands(bands, images.shape[1])
    if stretch not in STRETCHES:
        raise ValueError(f"stretch: expected one of {STRETCHES}, got {stretch!r}")
    if scales is None:
        scales = band_scales(bands, images, zeropoint)
    scales = np.asarray(scales, dtype=np.float32)
    scaled = np.nan_to_num(images / scales[None, :, None, None])
    rgb = scaled[:, _rgb_channels(len(bands))]  # (N, 3, H, W)
    if stretch == "lupton":
        return np.stack([
            apviz.make_lupton_rgb(*img, minimum=0, stretch=stretch_value, Q=Q) for img in rgb
        ])
    vmax = max(float(np.percentile(rgb, percentile)), 1e-12)
    astropy_stretch = {
        "asinh": apviz.AsinhStretch(0.05),
        "log": apviz.LogStretch(1000),
        "sqrt": apviz.SqrtStretch(),
        "linear": apviz.LinearStretch(),
    }[stretch]
    norm = apviz.ImageNormalize(vmin=0.0, vmax=vmax, stretch=astropy_stretch, clip=True)
    out = np.asarray(norm(rgb.transpose(0, 2, 3, 1)).filled(0))
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


def image_grid(
    images: np.ndarray,
    bands: Sequence[str],
    ncols: int = 8,
    titles: Sequence[str] | None = None,
    panel_size: float = 1.2,
    suptitle: str | None = None,
    **stretch_kwargs,
) -> Figure:
    """A grid of RGB composites as a matplotlib Figure (not attached to pyplot)."""
    rgb = rgb_composite(images, bands, **stretch_kwargs)
    n = len(rgb)
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    title_space = (0.3 if suptitle else 0) + (0.2 * nrows if titles is not None else 0)
    fig = Figure(figsize=(panel_size * ncols, panel_size * nrows + title_space))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            ax.imshow(rgb[i], origin="lower", interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=7)
    if suptitle:
        fig.suptitle(suptitle)
    top = 1 - (0.3 if suptitle else 0.01) / fig.get_figheight() - (
        0.2 / fig.get_figheight() if titles is not None else 0)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=top,
                        wspace=0.04, hspace=0.25 if titles is not None else 0.04)
    return fig


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    """Render a Figure to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_grid(path: str | os.PathLike, images: np.ndarray, bands: Sequence[str], ncols: int = 8,
              dpi: int = 100, **kwargs) -> Path:
    """Save :func:`image_grid` as a PNG file (atomically). Returns the path."""
    fig = image_grid(images, bands, ncols=ncols, **kwargs)
    with atomic_path(path) as tmp:
        tmp.write_bytes(png_bytes(fig, dpi=dpi))
    return Path(path)


def gini_m20_lines(ax: Any, m20_range: tuple[float, float] = (-3.0, 0.0), regions: bool = True) -> None:
    """Draw the Lotz et al. (2008, ApJ 672, 177, eqs. 4-6) lines on a Gini-M20 axis and set M20 to
    decrease rightwards.

    Dashed: the merger line ``G = -0.14 M20 + 0.33`` (mergers above); dotted: the bulge/disc line
    ``G = 0.14 M20 + 0.80`` below the merger line (E/S0/Sa above, Sb-Ir below). With ``regions``
    the three regions are labelled. The coefficients are :data:`galwidgets.metrics.LOTZ_2008`.
    """
    from .metrics.nonparametric import LOTZ_2008

    (a, b), (c, d) = LOTZ_2008["merger"], LOTZ_2008["bulge"]
    lo, hi = sorted(m20_range)
    meet = (d - b) / (a - c)  # where the two lines cross; the bulge line stops there
    m20 = np.array([lo, hi])
    ax.plot(m20, a * m20 + b, "k--", lw=0.8, label="merger line (Lotz et al. 2008)")
    bulge = np.array([lo, min(max(meet, lo), hi)])
    ax.plot(bulge, c * bulge + d, "k:", lw=0.8, label="bulge/disc line")
    ax.set_xlim(hi, lo)
    if regions:  # each label just inside its region: above the merger line, between the lines, below both
        span = hi - lo
        for name, m, offset in (("mergers", lo + 0.75 * span, 0.08), ("E/S0/Sa", lo + 0.12 * span, -0.06),
                                ("Sb–Ir", lo + 0.55 * span, -0.12)):
            ax.text(m, a * m + b + offset, name, ha="center", va="center", fontsize=8, style="italic",
                    color="0.3")
