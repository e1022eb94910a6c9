"""HSC PDR3 cutouts as the HSC data-access tools deliver them: one image file and one PSF file per band.

A folder holds ``cutout-HSC-<BAND>-<tract>-<rerun>.fits`` (image in HDU 1, counts at AB zeropoint
27, i.e. ``FLUXMAG0 = 10**10.8``, 0.168″ per pixel), ``psf-calexp-<rerun>-HSC-<BAND>-<tract>.fits``
(the PSF model at the galaxy's position) and a one-row CSV whose last column is the spectroscopic
redshift, as in ``../shared/data/hsc_pdr3``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["HSCCutout", "load_hsc_pdr3"]

HSC_PIXEL_SCALE = 0.168  # arcsec per pixel of the coadds
HSC_ZEROPOINT = 27.0  # AB magnitude of one count


@dataclass(eq=False)
class HSCCutout:
    """One galaxy's HSC cutout: images and PSFs per band, redshift and calibration.

    Its forward model from a diffusion prior's grid is
    ``gw.diffusion.operators.PSFOperator.from_cutout(cutout, checkpoint, model_redshift=...)``.
    """

    name: str
    bands: tuple[str, ...]
    images: np.ndarray  # (C, H, W) counts at zeropoint 27
    psfs: np.ndarray  # (C, h, w), each normalised to unit sum
    redshift: float
    pixel_scale: float = HSC_PIXEL_SCALE
    zeropoint: float = HSC_ZEROPOINT


def _one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise FileNotFoundError(f"folder: expected one file matching {pattern!r} in {folder}, "
                                f"found {len(found)}")
    return found[0]


def load_hsc_pdr3(folder: str | os.PathLike, bands: tuple[str, ...] = ("g", "r", "i")) -> HSCCutout:
    """Read an HSC PDR3 cutout folder (images, PSFs, redshift) for the bands asked for.

    Parameters
    ----------
    folder : path
        The folder of one galaxy (see the module docstring for its layout).
    bands : sequence of str
        HSC bands (g, r, i, z, y), bluest first.

    Raises
    ------
    FileNotFoundError
        When the folder or a band's image or PSF file is missing.
    """
    from astropy.io import fits

    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder: no HSC cutout folder at {folder}")
    bands = tuple(str(b).lower() for b in bands)
    if not bands or any(b not in "grizy" or len(b) != 1 for b in bands):
        raise ValueError(f"bands: expected HSC bands among g, r, i, z, y, got {bands!r}")
    images = [fits.getdata(_one(folder, f"cutout-HSC-{b.upper()}-*.fits"), ext=1) for b in bands]
    psfs = [np.asarray(fits.getdata(_one(folder, f"psf-*-HSC-{b.upper()}-*.fits")), dtype=np.float64)
            for b in bands]
    table = _one(folder, "*.csv")
    redshift = float(np.atleast_1d(np.loadtxt(table, delimiter=",", comments="#"))[-1])
    return HSCCutout(name=folder.name, bands=bands, images=np.stack(images).astype(np.float64),
                     psfs=np.stack([p / p.sum() for p in psfs]), redshift=redshift)
