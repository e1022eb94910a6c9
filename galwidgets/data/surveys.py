"""The :class:`Survey`: flux images of galaxies with their catalog and photometric calibration."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.table import Table

from .._io import atomic_path, to_jsonable
from .._validation import as_bands, as_images, check_positive
from .hdf5 import read_hdf5_fields, write_hdf5_fields

__all__ = ["Survey", "load_hdf5", "save_hdf5"]

PathLike = str | os.PathLike

_FORMAT_VERSION = 1
_HDF5_SUFFIXES = (".h5", ".hdf5")


@dataclass(eq=False)
class Survey:
    """Galaxy cutouts in linear flux units with a per-galaxy catalog.

    Parameters
    ----------
    images : numpy.ndarray
        Flux images shaped ``(N, C, H, W)``, float32, in units where a source of AB magnitude
        ``m`` has total flux ``10 ** (-0.4 * (m - zeropoint))`` (nanomaggies for zeropoint 22.5).
    catalog : pandas.DataFrame
        One row per galaxy (for simulated surveys: the truth used to render it).
    bands : tuple of str
        Band name of each channel, bluest first, e.g. ``("g", "r", "z")``.
    pixel_scale : float
        Arcseconds per pixel.
    zeropoint : float
        AB magnitude zeropoint of the flux unit.
    psf_fwhm : dict, optional
        PSF full width at half maximum per band, in arcseconds.
    meta : dict
        Further JSON-serialisable provenance (simulator settings, source files, ...).
    """

    images: np.ndarray
    catalog: pd.DataFrame
    bands: tuple[str, ...]
    pixel_scale: float
    zeropoint: float = 22.5
    psf_fwhm: dict[str, float] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.images = as_images(self.images, "images")
        self.bands = as_bands(self.bands, self.images.shape[1])
        self.pixel_scale = check_positive(self.pixel_scale, "pixel_scale")
        if isinstance(self.zeropoint, bool) or not np.isfinite(self.zeropoint):
            raise ValueError(f"zeropoint: expected a finite AB magnitude, got {self.zeropoint!r}")
        self.zeropoint = float(self.zeropoint)
        if self.catalog is None:
            self.catalog = pd.DataFrame(index=range(len(self.images)))
        if not isinstance(self.catalog, pd.DataFrame):
            raise TypeError(f"catalog: expected a pandas DataFrame, got {type(self.catalog).__name__}")
        if len(self.catalog) != len(self.images):
            raise ValueError(
                f"catalog: expected one row per image ({len(self.images)}), got {len(self.catalog)} rows"
            )
        self.catalog = self.catalog.reset_index(drop=True)
        if self.psf_fwhm is not None:
            missing = set(self.bands) - set(self.psf_fwhm)
            if missing:
                raise ValueError(f"psf_fwhm: missing a value for band(s) {sorted(missing)}")
            self.psf_fwhm = {b: float(self.psf_fwhm[b]) for b in self.bands}

    # -- container behaviour -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: Any) -> Survey:
        """Select galaxies (slice, integer array or boolean mask) as a new Survey."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        idx = np.arange(len(self))[index]
        return self._with(self.images[idx], self.catalog.iloc[idx])

    def __repr__(self) -> str:
        n, _, h, w = self.images.shape
        return (
            f"Survey({n} galaxies, bands={''.join(self.bands)}, {h}x{w} px at "
            f'{self.pixel_scale:g}"/px, zeropoint={self.zeropoint:g})'
        )

    @property
    def size(self) -> int:
        """Cutout side length in pixels."""
        return int(self.images.shape[-1])

    def band_index(self, band: str) -> int:
        """Channel index of ``band``."""
        if band not in self.bands:
            raise ValueError(f"band: {band!r} is not one of this survey's bands {self.bands}")
        return self.bands.index(band)

    def subset(self, selection: str | np.ndarray | Sequence[int]) -> Survey:
        """Galaxies selected by a catalog query (``"redshift < 0.1 and mag_r < 17"``), a boolean
        mask or indices."""
        if isinstance(selection, str):
            try:
                index = self.catalog.query(selection).index.to_numpy()
            except Exception as exc:
                raise ValueError(f"selection: cannot evaluate {selection!r} on the catalog ({exc})") from exc
            return self[index]
        return self[np.asarray(selection)]

    def split(self, fraction: float = 0.5, seed: int = 0) -> tuple[Survey, Survey]:
        """Randomly split into two disjoint surveys, the first holding ``fraction`` of galaxies."""
        first, second = self.split_indices(fraction, seed)
        return self[first], self[second]

    def split_indices(self, fraction: float = 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The galaxy numbers (sorted) of the two parts :meth:`split` makes with these arguments.

        For splitting tables measured on the whole survey the same way (e.g. a split-half
        baseline from photometry already measured).
        """
        if not 0 < fraction < 1:
            raise ValueError(f"fraction: expected a number in (0, 1), got {fraction!r}")
        order = np.random.default_rng(seed).permutation(len(self))
        cut = round(fraction * len(self))
        if cut == 0 or cut == len(self):
            raise ValueError(f"fraction: {fraction} of {len(self)} galaxies leaves one part empty")
        return np.sort(order[:cut]), np.sort(order[cut:])

    def with_images(self, images: np.ndarray, catalog: pd.DataFrame | None = None) -> Survey:
        """A Survey with the same bands and calibration but other images (e.g. generated ones)."""
        images = as_images(images, "images", channels=len(self.bands))
        if catalog is None:
            catalog = pd.DataFrame(index=range(len(images)))
        return self._with(images, catalog)

    def _with(self, images: np.ndarray, catalog: pd.DataFrame) -> Survey:
        return Survey(
            images=images,
            catalog=catalog.reset_index(drop=True),
            bands=self.bands,
            pixel_scale=self.pixel_scale,
            zeropoint=self.zeropoint,
            psf_fwhm=None if self.psf_fwhm is None else dict(self.psf_fwhm),
            meta=dict(self.meta),
        )

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, overwrite: bool = True) -> Path:
        """Write the survey to one file, atomically: FITS by default, HDF5 for ``.h5``/``.hdf5``.

        In FITS the primary HDU holds the image cube (FITS axis order W, H, C, N) with the bands,
        pixel scale, zeropoint and PSF widths in its header, and a ``CATALOG`` binary table holds
        the catalog. HDF5 files follow the layout of :mod:`galwidgets.data.hdf5`.
        """
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"path: {path} exists and overwrite=False")
        if path.suffix.lower() in _HDF5_SUFFIXES:
            return save_hdf5(self, path)
        header = fits.Header()
        header["GWFORMAT"] = (_FORMAT_VERSION, "galwidgets Survey file version")
        header["BANDS"] = (",".join(self.bands), "band of each channel")
        header["PIXSCALE"] = (self.pixel_scale, "arcsec / pixel")
        header["ZEROPT"] = (self.zeropoint, "AB zeropoint of the flux unit")
        header["BUNIT"] = "nanomaggy" if self.zeropoint == 22.5 else f"flux (AB zp {self.zeropoint:g})"
        if self.psf_fwhm is not None:
            header["PSFFWHM"] = (json.dumps(self.psf_fwhm), "PSF FWHM per band, arcsec")
        header["GWMETA"] = json.dumps(to_jsonable(self.meta))
        hdus = [fits.PrimaryHDU(self.images, header=header)]
        if len(self.catalog.columns):
            hdus.append(fits.BinTableHDU(Table.from_pandas(self.catalog), name="CATALOG"))
        with atomic_path(path) as tmp:
            fits.HDUList(hdus).writeto(tmp, overwrite=True)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Survey:
        """Read a survey written by :meth:`save` (FITS, or HDF5 for ``.h5``/``.hdf5``)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"path: no Survey file at {path}")
        if path.suffix.lower() in _HDF5_SUFFIXES:
            return load_hdf5(path)
        with fits.open(path, memmap=False) as hdul:
            header = hdul[0].header
            if "BANDS" not in header or hdul[0].data is None:
                raise ValueError(f"path: {path} is not a galwidgets Survey file (no BANDS/image cube)")
            images = np.array(hdul[0].data, dtype=np.float32)
            if "CATALOG" in hdul:
                catalog = Table.read(hdul["CATALOG"]).to_pandas()
            else:
                catalog = pd.DataFrame(index=range(len(images)))
            psf = json.loads(header["PSFFWHM"]) if "PSFFWHM" in header else None
            return cls(
                images=images,
                catalog=catalog,
                bands=tuple(header["BANDS"].split(",")),
                pixel_scale=float(header["PIXSCALE"]),
                zeropoint=float(header["ZEROPT"]),
                psf_fwhm=psf,
                meta=json.loads(header.get("GWMETA", "{}")),
            )


def save_hdf5(
    survey: Survey, path: PathLike, *, overwrite: bool = True, compression: str | None = "gzip"
) -> Path:
    """Write a Survey to one HDF5 file (layout in :mod:`galwidgets.data.hdf5`), atomically.

    Parameters
    ----------
    survey : Survey
        The survey to write.
    path : str or path-like
        Output file.
    overwrite : bool
        Replace an existing file.
    compression : str or None
        h5py compression filter of the image dataset (chunked one image per chunk); None for
        contiguous storage.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TypeError
        If a catalog column has a type HDF5 cannot hold here (not numeric, boolean or string).
    ValueError
        If a catalog column name is not a string usable as an HDF5 name.
    """
    if not isinstance(survey, Survey):
        raise TypeError(f"survey: expected a galwidgets Survey, got {type(survey).__name__}")
    return write_hdf5_fields(
        path, images=survey.images, catalog=survey.catalog, bands=survey.bands,
        pixel_scale=survey.pixel_scale, zeropoint=survey.zeropoint, psf_fwhm=survey.psf_fwhm,
        meta=survey.meta, overwrite=overwrite, compression=compression, argument="survey.catalog",
    )


def load_hdf5(
    path: PathLike,
    bands: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    image_key: str = "images",
    *,
    channels_last: bool = False,
    rows: slice | Sequence[int] | None = None,
    pixel_scale: float | None = None,
    zeropoint: float | None = None,
    catalog_key: str = "catalog",
) -> Survey:
    """Read galaxy images and their catalog from an HDF5 file as a Survey.

    The layout is described in :mod:`galwidgets.data.hdf5`; the parameters are those of
    :func:`galwidgets.data.hdf5.read_hdf5_fields` (bands and columns to keep, the image dataset's
    name and axis order, rows to read, and the pixel scale or zeropoint when the file lacks them
    or to convert the fluxes to). Non-finite pixels are set to 0 and counted in the catalog column
    ``n_masked_pixels``, with a warning.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the image dataset is missing or not 4-D, a band or column is unknown, or ``bands``,
        ``pixel_scale`` or ``zeropoint`` is neither stored in the file nor given.
    """
    return Survey(**read_hdf5_fields(
        path, bands, columns, image_key, channels_last=channels_last, rows=rows,
        pixel_scale=pixel_scale, zeropoint=zeropoint, catalog_key=catalog_key,
    ))
