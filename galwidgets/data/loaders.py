"""Loaders that turn real galaxy images into a :class:`~galwidgets.data.surveys.Survey`.

Three sources, none of which downloads anything:

:func:`load_fits_cutouts`
    Survey cutouts in FITS files, either one file per band per galaxy (as served by the HSC-SSP
    DAS cutout service) or one multi-extension file per galaxy. The flux unit comes from the
    header (``FLUXMAG0``, a ``MAGZERO``-style keyword or ``BUNIT``), the pixel scale from the WCS.

:func:`load_hdf5` / :func:`save_hdf5`
    Image cubes with a catalog in one HDF5 file, in the layout below (which also covers the
    channels-last files of public galaxy machine-learning sets such as 5-band 64×64 cutouts with
    spectroscopic redshifts).

:func:`hubble_deep_field`
    Stamps of real galaxies detected in the Hubble eXtreme Deep Field colour image bundled with
    scikit-image (``skimage.data.hubble_deep_field``).

HDF5 layout
-----------
``/images``
    float32 dataset shaped ``(N, C, H, W)`` in linear flux units. ``load_hdf5(...,
    channels_last=True)`` reads ``(N, H, W, C)`` instead; another name via ``image_key``.
``/catalog/<column>``
    One 1-D dataset of length ``N`` per catalog column (numbers, booleans or UTF-8 strings). The
    group attribute ``columns`` lists the column order; a string column's attribute
    ``pandas_dtype`` records its pandas dtype and ``missing`` (optional, boolean array) marks
    missing values. When the ``catalog`` group is absent, every other top-level 1-D dataset of
    length ``N`` is read as a catalog column.
root attributes
    ``bands`` (array of strings, or one comma-separated string), ``pixel_scale`` (arcsec per
    pixel), ``zeropoint`` (AB magnitude of one flux unit), optional ``psf_fwhm`` (JSON object:
    band -> arcsec) and ``meta`` (JSON object), plus ``format = "galwidgets-hdf5"`` and
    ``format_version`` written by :func:`save_hdf5`.

Missing or non-finite pixels: a Survey holds finite fluxes only, so the loaders replace NaN and
infinite pixels by 0, count them per galaxy in ``meta["nan_pixels"]`` and in the catalog column
``n_masked_pixels``, and :func:`load_fits_cutouts` can return the boolean mask itself
(``return_mask=True``). Galaxies are never dropped silently: a galaxy that cannot be loaded either
raises (the default) or is listed with the reason in ``meta["dropped"]`` and a warning.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import skimage.data
from astropy import units as u
from astropy.convolution import convolve
from astropy.io import fits
from astropy.stats import SigmaClip
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales
from photutils.background import Background2D, MedianBackground
from photutils.segmentation import SourceCatalog, deblend_sources, detect_sources, make_2dgaussian_kernel
from scipy import ndimage
from tqdm.auto import tqdm

from .._io import atomic_path, to_jsonable
from .._validation import as_bands, check_finite, check_positive, check_positive_int
from .surveys import Survey

__all__ = ["hubble_deep_field", "load_fits_cutouts", "load_hdf5", "save_hdf5"]

PathLike = str | os.PathLike

#: Header keywords holding the AB magnitude of one image unit, tried in this order after FLUXMAG0.
ZEROPOINT_KEYWORDS = ("MAGZERO", "MAGZP", "MAGZPT", "ZEROPT", "PHOTZP", "ZPT", "ZP")

#: AB zeropoints of flux units found in ``BUNIT`` (lower case): m_AB = zp - 2.5 log10(value).
BUNIT_ZEROPOINTS = {
    "nanomaggy": 22.5, "nanomaggies": 22.5, "nmgy": 22.5,
    "njy": 31.4, "ujy": 23.9, "µjy": 23.9, "microjy": 23.9, "mjy": 16.4, "jy": 8.9,
}

#: EXTNAMEs of extensions that are not science images (skipped in multi-extension files).
NON_SCIENCE_EXTNAMES = frozenset({
    "MASK", "VARIANCE", "VAR", "IVAR", "INVVAR", "WEIGHT", "WHT", "ERR", "ERROR", "SIGMA", "RMS",
    "PSF", "DQ", "FLAGS", "BADPIX", "EXPOSURE", "EXPMAP",
})

_ON_ERROR = ("raise", "skip")


# -- FITS cutouts ----------------------------------------------------------------------------------
@dataclass
class _Plane:
    """One band of one galaxy as read from a FITS file."""

    data: np.ndarray  # 2-D float64
    zeropoint: float | None
    pixel_scale: float | None
    source: str


def load_fits_cutouts(
    paths: Sequence[Mapping[str, PathLike] | PathLike],
    bands: Sequence[str] | None = None,
    size: int | None = None,
    zeropoint: float | None = None,
    pixel_scale: float | None = None,
    hdu: int | str | Sequence[int | str] | None = None,
    catalog: pd.DataFrame | None = None,
    *,
    on_error: str = "raise",
    return_mask: bool = False,
    progress: bool = True,
) -> Survey | tuple[Survey, np.ndarray]:
    """Read FITS cutouts of galaxies into a Survey.

    Parameters
    ----------
    paths : sequence
        One entry per galaxy, in either form (both may be mixed):

        - a mapping band -> FITS file, one single-image file per band, e.g.
          ``{"g": "cutout-HSC-G-....fits", "r": ..., "i": ...}``. The image is the first HDU with
          image data (HSC cutouts: HDU 1, calibration keywords in HDU 0);
        - one multi-extension FITS file with one image HDU per band, the band named by the HDU's
          ``FILTER`` keyword, else its ``EXTNAME``. HDUs named like MASK, VARIANCE, IVAR, WEIGHT
          or PSF (:data:`NON_SCIENCE_EXTNAMES`) and HDUs without data are skipped.
    bands : sequence of str, optional
        Bands to keep, in this order (bluest first, as a Survey expects). Default: the bands of
        the first galaxy in its mapping / HDU order; every galaxy must then have the same bands.
    size : int, optional
        Cut every image to ``size`` × ``size`` pixels about its centre pixel ``(H // 2, W // 2)``,
        which lands on ``(size // 2, size // 2)``; smaller images are padded with masked pixels.
        Required when the cutouts differ in shape.
    zeropoint : float, optional
        AB zeropoint of the output flux unit. Default: the files' own zeropoint (which must then
        be the same for all). Fluxes are converted as ``f * 10 ** (0.4 * (zeropoint - zp_file))``.
        Files whose headers carry no calibration are taken to be in this unit already.
    pixel_scale : float, optional
        Arcsec per pixel; default from the WCS (``proj_plane_pixel_scales``), which must agree
        between files to 0.1 %.
    hdu : int, str or sequence, optional
        Per-band files: index or EXTNAME of the image HDU. Multi-extension files: the HDUs (one
        per band) to read.
    catalog : pandas.DataFrame, optional
        One row per entry of ``paths``; it becomes the Survey catalog (rows of dropped galaxies
        removed).
    on_error : {"raise", "skip"}
        What to do with a galaxy that cannot be read (missing file, no image data, missing band,
        mismatched shapes): raise, or skip it with a warning and record it in ``meta["dropped"]``.
    return_mask : bool
        Also return the boolean mask ``(N, C, size, size)`` of replaced non-finite and padded
        pixels.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Survey or (Survey, numpy.ndarray)
        Images in the chosen flux unit with non-finite and padded pixels set to 0. The catalog
        gains ``n_masked_pixels`` (masked pixels over all bands); ``meta`` holds ``files`` (the
        files of each galaxy), ``native_zeropoint`` (the files' zeropoint, a list if they differ),
        ``nan_pixels`` (non-finite pixels per galaxy inside the output cutout) and ``dropped`` (a
        list of ``{"index", "reason"}``).

    Raises
    ------
    FileNotFoundError
        If a file does not exist.
    ValueError
        If a file holds no image, bands are missing or mismatched, cutouts differ in shape and no
        ``size`` is given, or the zeropoint or pixel scale cannot be determined.

    Notes
    -----
    ``FLUXMAG0`` is the flux of a zeroth-magnitude source (HSC: 6.3096e10, i.e. zeropoint
    ``2.5 log10(FLUXMAG0) = 27.0``, one count = 57.5 nJy); ``BUNIT = "nanomaggy"`` means 22.5 and
    the Jansky units of :data:`BUNIT_ZEROPOINTS` their AB equivalents (``8.9 - 2.5 log10`` of the
    unit in Jy).
    """
    entries = _check_paths(paths)
    if bands is not None:
        bands = as_bands(bands)
    if size is not None:
        size = check_positive_int(size, "size")
    zeropoint = _check_zeropoint(zeropoint)
    if pixel_scale is not None:
        pixel_scale = check_positive(pixel_scale, "pixel_scale")
    if on_error not in _ON_ERROR:
        raise ValueError(f"on_error: expected one of {_ON_ERROR}, got {on_error!r}")
    if catalog is not None:
        catalog = _check_catalog(catalog, len(entries))

    galaxies, kept, dropped = [], [], []
    wanted = bands
    for i, entry in enumerate(tqdm(entries, desc="FITS cutouts", disable=not progress)):
        try:
            planes = _read_galaxy(entry, hdu)
            planes = _select_bands(planes, wanted, explicit=bands is not None, entry=entry)
        except (FileNotFoundError, ValueError) as exc:
            if on_error == "raise":
                raise
            dropped.append({"index": i, "reason": str(exc)})
            continue
        wanted = wanted or tuple(planes)
        galaxies.append(planes)
        kept.append(i)
    if dropped:
        warnings.warn(
            f"load_fits_cutouts: skipped {len(dropped)} of {len(entries)} galaxies "
            f"(see meta['dropped']); first: {dropped[0]['reason']}",
            stacklevel=2,
        )
    if not galaxies:
        raise ValueError(f"paths: none of the {len(entries)} galaxies could be loaded")

    native = _native_zeropoint(galaxies, zeropoint)
    zeropoint = float(native) if zeropoint is None else zeropoint
    pixel_scale = pixel_scale if pixel_scale is not None else _wcs_pixel_scale(galaxies)
    size_hw = _output_shape(galaxies, size)
    images, mask, nan_pixels = _assemble(galaxies, wanted, size_hw, zeropoint)

    catalog = pd.DataFrame(index=range(len(kept))) if catalog is None else catalog.iloc[kept]
    catalog = catalog.reset_index(drop=True)
    catalog["n_masked_pixels"] = mask.sum(axis=(1, 2, 3)).astype(np.int64)
    survey = Survey(
        images=images,
        catalog=catalog,
        bands=wanted,
        pixel_scale=pixel_scale,
        zeropoint=zeropoint,
        meta={
            "source": "galwidgets.data.load_fits_cutouts",
            "files": [{b: p.source for b, p in g.items()} for g in galaxies],
            "native_zeropoint": native,
            "size": list(size_hw),
            "nan_pixels": nan_pixels,
            "dropped": dropped,
        },
    )
    return (survey, mask) if return_mask else survey


def _check_paths(paths: Any) -> list[Mapping[str, PathLike] | PathLike]:
    """Validate the ``paths`` argument of :func:`load_fits_cutouts`."""
    if isinstance(paths, (str, os.PathLike, Mapping)) or not isinstance(paths, Sequence):
        raise TypeError(
            "paths: expected a sequence with one entry per galaxy (a mapping band -> FITS file, or "
            f"a multi-extension FITS file), got {type(paths).__name__}"
        )
    if len(paths) == 0:
        raise ValueError("paths: expected at least one galaxy, got an empty sequence")
    for i, entry in enumerate(paths):
        if isinstance(entry, Mapping):
            if not entry or not all(isinstance(b, str) for b in entry):
                raise TypeError(f"paths[{i}]: expected a non-empty mapping band name -> file, got {entry!r}")
        elif not isinstance(entry, (str, os.PathLike)):
            raise TypeError(f"paths[{i}]: expected a file path or a mapping band -> file, got {entry!r}")
    return list(paths)


def _check_zeropoint(value: Any) -> float | None:
    """``value`` as a float AB zeropoint, or None."""
    return None if value is None else check_finite(value, "zeropoint", "a finite AB magnitude")


def _check_catalog(catalog: Any, n: int) -> pd.DataFrame:
    if not isinstance(catalog, pd.DataFrame):
        raise TypeError(f"catalog: expected a pandas DataFrame, got {type(catalog).__name__}")
    if len(catalog) != n:
        raise ValueError(f"catalog: expected one row per entry of paths ({n}), got {len(catalog)} rows")
    return catalog.reset_index(drop=True)


def _read_galaxy(entry: Mapping[str, PathLike] | PathLike, hdu: Any) -> dict[str, _Plane]:
    """Read every band of one galaxy, checking the images share one shape."""
    if isinstance(entry, Mapping):
        if hdu is not None and not isinstance(hdu, (int, str)):
            raise TypeError(f"hdu: expected an HDU index or name for per-band files, got {hdu!r}")
        planes = {band: _read_single(path, hdu) for band, path in entry.items()}
    else:
        planes = _read_multi(entry, hdu)
    shapes = {b: p.data.shape for b, p in planes.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"paths: the bands of one galaxy differ in shape: {shapes}")
    return planes


def _open(path: PathLike) -> fits.HDUList:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"paths: no such FITS file {path}")
    try:
        return fits.open(path, memmap=False)
    except OSError as exc:
        raise ValueError(f"paths: {path} is not a readable FITS file ({exc})") from exc


def _image_data(hdu: Any) -> np.ndarray | None:
    """The 2-D image of an HDU (length-1 leading axes dropped), or None if it holds none."""
    if not isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)) or hdu.data is None:
        return None
    data = np.asarray(hdu.data)
    while data.ndim > 2 and data.shape[0] == 1:
        data = data[0]
    return data if data.ndim == 2 and data.size else None


def _describe(hdul: fits.HDUList) -> str:
    return ", ".join(f"{i}: {h.name or '?'} {getattr(h.data, 'shape', None) or '(no data)'}"
                     for i, h in enumerate(hdul))


def _read_single(path: PathLike, hdu: int | str | None) -> _Plane:
    """Read the image of a one-band FITS file."""
    with _open(path) as hdul:
        if hdu is None:
            index = next((i for i, h in enumerate(hdul) if _image_data(h) is not None), None)
        else:
            index = _hdu_index(hdul, hdu, path)
        data = None if index is None else _image_data(hdul[index])
        if data is None:
            raise ValueError(f"paths: {path} holds no 2-D image data (HDUs: {_describe(hdul)})")
        return _plane(hdul, index, data, path)


def _read_multi(path: PathLike, hdu: Any) -> dict[str, _Plane]:
    """Read one band per image HDU of a multi-extension FITS file."""
    with _open(path) as hdul:
        if hdu is None:
            indices = [i for i, h in enumerate(hdul)
                       if h.name.upper() not in NON_SCIENCE_EXTNAMES and _image_data(h) is not None]
        else:
            indices = [_hdu_index(hdul, h, path) for h in ([hdu] if isinstance(hdu, (int, str)) else hdu)]
        planes: dict[str, _Plane] = {}
        for i in indices:
            data = _image_data(hdul[i])
            if data is None:
                raise ValueError(f"paths: HDU {i} of {path} holds no 2-D image data")
            band = _band_name(hdul, i, only=len(indices) == 1)
            if not band:
                raise ValueError(f"paths: HDU {i} of {path} has neither a FILTER keyword nor an EXTNAME")
            if band in planes:
                raise ValueError(f"paths: {path} holds band {band!r} twice")
            planes[band] = _plane(hdul, i, data, path)
        if not planes:
            raise ValueError(f"paths: {path} holds no image data (HDUs: {_describe(hdul)})")
        return planes


def _band_name(hdul: fits.HDUList, index: int, only: bool) -> str:
    """FILTER of the HDU, else its EXTNAME, else (for a file's only image) the primary FILTER."""
    band = str(hdul[index].header.get("FILTER", "")).strip()
    name = hdul[index].name.strip()
    if not band and name and not (index == 0 and name == "PRIMARY"):
        band = name
    if not band and only:
        band = str(hdul[0].header.get("FILTER", "")).strip()
    return band


def _hdu_index(hdul: fits.HDUList, hdu: int | str, path: PathLike) -> int:
    try:
        return hdul.index_of(hdu)
    except (KeyError, IndexError) as exc:
        raise ValueError(f"hdu: {path} has no HDU {hdu!r} (HDUs: {_describe(hdul)})") from exc


def _plane(hdul: fits.HDUList, index: int, data: np.ndarray, path: PathLike) -> _Plane:
    headers = [hdul[index].header] + ([hdul[0].header] if index else [])
    return _Plane(
        data=np.array(data, dtype=np.float64),
        zeropoint=_header_zeropoint(headers),
        pixel_scale=_header_pixel_scale(hdul[index].header),
        source=f"{os.fspath(path)}[{index}]",
    )


def _header_zeropoint(headers: Sequence[fits.Header]) -> float | None:
    """AB zeropoint from FLUXMAG0, a MAGZERO-style keyword or BUNIT (first header first)."""
    for header in headers:
        fluxmag0 = header.get("FLUXMAG0")
        if isinstance(fluxmag0, (int, float)) and fluxmag0 > 0:
            return float(2.5 * np.log10(fluxmag0))
        for key in ZEROPOINT_KEYWORDS:
            value = header.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
                return float(value)
        unit = str(header.get("BUNIT", "")).strip().lower()
        if unit in BUNIT_ZEROPOINTS:
            return BUNIT_ZEROPOINTS[unit]
    return None


def _header_pixel_scale(header: fits.Header) -> float | None:
    """Arcsec per pixel from the celestial WCS (geometric mean of the two axes), if any."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header)
        except Exception:  # malformed WCS keywords: no pixel scale from this header
            return None
    if not wcs.has_celestial:
        return None
    celestial = wcs.celestial
    scales = proj_plane_pixel_scales(celestial) * u.Unit(celestial.wcs.cunit[0] or "deg")
    return float(np.sqrt(np.prod(scales.to_value(u.arcsec))))


def _select_bands(
    planes: dict[str, _Plane], wanted: tuple[str, ...] | None, explicit: bool, entry: Any
) -> dict[str, _Plane]:
    """Keep ``wanted`` bands in order; without an explicit choice the band sets must match."""
    if wanted is None:
        return planes
    missing = [b for b in wanted if b not in planes]
    if missing:
        name = "bands" if explicit else "paths"
        raise ValueError(
            f"{name}: band(s) {missing} missing for galaxy {_short(entry)}, which has {list(planes)}"
        )
    if not explicit and len(planes) != len(wanted):
        raise ValueError(
            f"paths: galaxy {_short(entry)} has bands {list(planes)}, the first galaxy {list(wanted)}; "
            "pass bands= to choose common bands"
        )
    return {b: planes[b] for b in wanted}


def _short(entry: Any) -> str:
    if isinstance(entry, Mapping):
        return "{" + ", ".join(f"{b!r}: {Path(p).name}" for b, p in entry.items()) + "}"
    return os.fspath(entry)


def _native_zeropoint(
    galaxies: list[dict[str, _Plane]], zeropoint: float | None
) -> float | list[float] | None:
    """The files' zeropoint (a sorted list if they differ, None if no header has one).

    Without a requested ``zeropoint`` every file must be calibrated and all must agree.
    """
    found = {round(p.zeropoint, 6) for g in galaxies for p in g.values() if p.zeropoint is not None}
    uncalibrated = [p.source for g in galaxies for p in g.values() if p.zeropoint is None]
    if zeropoint is None and uncalibrated:
        raise ValueError(
            f"zeropoint: {uncalibrated[0]} has no FLUXMAG0, MAGZERO-style or BUNIT calibration; "
            "pass zeropoint= (the AB zeropoint of its pixel unit)"
        )
    if zeropoint is None and len(found) > 1:
        raise ValueError(
            f"zeropoint: the files have different zeropoints {sorted(found)}; pass zeropoint= to "
            "convert them all to one flux unit"
        )
    if not found:
        return None
    return found.pop() if len(found) == 1 else sorted(found)


def _wcs_pixel_scale(galaxies: list[dict[str, _Plane]]) -> float:
    scales = [(p.pixel_scale, p.source) for g in galaxies for p in g.values()]
    missing = [s for v, s in scales if v is None]
    if missing:
        raise ValueError(f"pixel_scale: {missing[0]} has no celestial WCS; pass pixel_scale= (arcsec/px)")
    values = np.array([v for v, _ in scales])
    if values.max() > values.min() * 1.001:
        raise ValueError(
            f"pixel_scale: the files' WCS pixel scales differ ({values.min():.5g}-{values.max():.5g} "
            "arcsec/px); resample them to one scale first"
        )
    return float(values[0])


def _output_shape(galaxies: list[dict[str, _Plane]], size: int | None) -> tuple[int, int]:
    if size is not None:
        return size, size
    shapes = sorted({p.data.shape for g in galaxies for p in g.values()})
    if len(shapes) > 1:
        raise ValueError(f"size: the cutouts differ in shape {shapes}; pass size= to crop or pad them")
    return shapes[0]


def _assemble(
    galaxies: list[dict[str, _Plane]], bands: tuple[str, ...], shape: tuple[int, int], zeropoint: float
) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Stack crops into images with non-finite and padded pixels zeroed and masked."""
    images = np.empty((len(galaxies), len(bands), *shape), np.float32)
    mask = np.zeros(images.shape, bool)
    nan_pixels = []
    for i, planes in enumerate(galaxies):
        bad = 0
        for c, band in enumerate(bands):
            plane = planes[band]
            stamp, padded = _centre_crop(plane.data, shape)
            if plane.zeropoint is not None:
                stamp = stamp * 10 ** (0.4 * (zeropoint - plane.zeropoint))
            nonfinite = ~np.isfinite(stamp) & ~padded
            bad += int(nonfinite.sum())
            mask[i, c] = nonfinite | padded
            images[i, c] = np.where(mask[i, c], 0.0, stamp)
        nan_pixels.append(bad)
    return images, mask, nan_pixels


def _centre_crop(data: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Cut ``shape`` about the centre pixel ``(H // 2, W // 2)``; return it and the padding mask."""
    out = np.zeros(shape)
    padded = np.ones(shape, bool)
    src, dst = [], []
    for n_in, n_out in zip(data.shape, shape):
        start = (n_in - n_out) // 2
        lo, hi = max(start, 0), min(start + n_out, n_in)
        src.append(slice(lo, hi))
        dst.append(slice(lo - start, hi - start))
    out[tuple(dst)] = data[tuple(src)]
    padded[tuple(dst)] = False
    return out, padded


# -- HDF5 ------------------------------------------------------------------------------------------
_HDF5_FORMAT = "galwidgets-hdf5"
_HDF5_VERSION = 1


def save_hdf5(
    survey: Survey, path: PathLike, *, overwrite: bool = True, compression: str | None = "gzip"
) -> Path:
    """Write a Survey to one HDF5 file in the layout of this module's docstring, atomically.

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
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"path: {path} exists and overwrite=False")
    columns = {name: _column_to_hdf5(name, survey.catalog[name]) for name in survey.catalog.columns}
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = _HDF5_FORMAT
        f.attrs["format_version"] = _HDF5_VERSION
        f.attrs["bands"] = np.array(survey.bands, dtype=h5py.string_dtype())
        f.attrs["pixel_scale"] = survey.pixel_scale
        f.attrs["zeropoint"] = survey.zeropoint
        if survey.psf_fwhm is not None:
            f.attrs["psf_fwhm"] = json.dumps(survey.psf_fwhm)
        f.attrs["meta"] = json.dumps(to_jsonable(survey.meta))
        chunks = (1, *survey.images.shape[1:]) if compression else None
        f.create_dataset("images", data=survey.images, chunks=chunks, compression=compression)
        group = f.create_group("catalog", track_order=True)
        group.attrs["columns"] = np.array(list(columns), dtype=h5py.string_dtype())
        for name, (values, attrs) in columns.items():
            dataset = group.create_dataset(name, data=values)
            dataset.attrs.update(attrs)
    return path


def _column_to_hdf5(name: Any, column: pd.Series) -> tuple[np.ndarray, dict[str, Any]]:
    """Values and dataset attributes that store one catalog column."""
    if not isinstance(name, str) or not name or "/" in name or name == ".":
        raise ValueError(f"survey.catalog: column name {name!r} is not a string usable as an HDF5 name")
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return column.to_numpy(), {}
    values = column.to_numpy(dtype=object)
    missing = pd.isna(column).to_numpy()
    if all(isinstance(v, str) for v in values[~missing]):
        data = np.array(["" if m else v for v, m in zip(values, missing)], dtype=h5py.string_dtype())
        attrs: dict[str, Any] = {"pandas_dtype": str(dtype)}
        if missing.any():
            attrs["missing"] = missing
        return data, attrs
    raise TypeError(
        f"survey.catalog: column {name!r} has dtype {dtype}; save_hdf5 stores numbers, booleans and "
        "strings (convert it, e.g. with .astype(str) or .astype(float))"
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
    """Read galaxy images and their catalog from an HDF5 file (layout in the module docstring).

    Parameters
    ----------
    path : str or path-like
        HDF5 file.
    bands : sequence of str, optional
        If the file names its bands (attribute ``bands``): the bands to keep, in this order.
        Otherwise: the names of all channels, bluest first (required).
    columns : sequence of str, optional
        Catalog columns to keep, in this order; default all.
    image_key : str
        Name of the image dataset.
    channels_last : bool
        The image dataset is shaped ``(N, H, W, C)`` rather than ``(N, C, H, W)``.
    rows : slice or sequence of int, optional
        Galaxies to read (e.g. ``slice(0, 1000)``); default all.
    pixel_scale : float, optional
        Arcsec per pixel; required if the file has no ``pixel_scale`` attribute, else overrides it.
    zeropoint : float, optional
        AB zeropoint of the output flux unit. If the file has a ``zeropoint`` attribute the fluxes
        are converted to this one (``f * 10 ** (0.4 * (zeropoint - zp_file))``); if not, it is
        required and labels the stored unit.
    catalog_key : str
        Name of the catalog group.

    Returns
    -------
    Survey
        Non-finite pixels, if any, are set to 0, counted in ``meta["nan_pixels"]`` and the
        catalog column ``n_masked_pixels``, with a warning.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the image dataset is missing or not 4-D, a band or column is unknown, or ``bands``,
        ``pixel_scale`` or ``zeropoint`` is neither stored in the file nor given.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no HDF5 file at {path}")
    if bands is not None:
        bands = as_bands(bands)
    if columns is not None and (isinstance(columns, str) or not isinstance(columns, Sequence)):
        raise TypeError(f"columns: expected a sequence of column names, got {columns!r}")
    zeropoint = _check_zeropoint(zeropoint)
    if pixel_scale is not None:
        pixel_scale = check_positive(pixel_scale, "pixel_scale")
    with h5py.File(path, "r") as f:
        dataset = _image_dataset(f, image_key, path)
        n_total, n_channels = dataset.shape[0], dataset.shape[-1 if channels_last else 1]
        channels, bands = _band_channels(_file_bands(f.attrs.get("bands")), bands, n_channels, path)
        pixel_scale = _attribute(f, "pixel_scale", pixel_scale, path)
        file_zp = f.attrs.get("zeropoint")
        if file_zp is None and zeropoint is None:
            raise ValueError(f"zeropoint: {path} has no 'zeropoint' attribute; pass zeropoint= explicitly")
        index = _row_index(rows, n_total)
        catalog = _read_catalog(f, catalog_key, image_key, n_total, index, columns, path)
        images = np.asarray(dataset[index], dtype=np.float32)
        psf = json.loads(f.attrs["psf_fwhm"]) if "psf_fwhm" in f.attrs else None
        meta = json.loads(f.attrs["meta"]) if "meta" in f.attrs else {}
    if channels_last:
        images = np.moveaxis(images, -1, 1)
    images = np.ascontiguousarray(images[:, channels])
    zeropoint = _convert_zeropoint(images, file_zp, zeropoint)
    _mask_nonfinite(images, catalog, meta, path)
    return Survey(
        images=images,
        catalog=catalog,
        bands=bands,
        pixel_scale=check_positive(pixel_scale, "pixel_scale"),
        zeropoint=zeropoint,
        psf_fwhm=None if psf is None else {b: psf[b] for b in bands if b in psf},
        meta=meta,
    )


def _image_dataset(f: h5py.File, image_key: str, path: Path) -> h5py.Dataset:
    dataset = f.get(image_key)
    if not isinstance(dataset, h5py.Dataset):
        datasets = [k for k in f if isinstance(f[k], h5py.Dataset)]
        raise ValueError(f"image_key: {path} has no dataset {image_key!r}; top-level datasets: {datasets}")
    if dataset.ndim != 4:
        raise ValueError(
            f"image_key: expected the {image_key!r} dataset shaped (N, C, H, W) or, with channels_last, "
            f"(N, H, W, C), got shape {dataset.shape}"
        )
    return dataset


def _row_index(rows: Any, n: int) -> slice | np.ndarray:
    """``rows`` as something h5py can index with (a slice, or sorted unique integers)."""
    if rows is None:
        return slice(None)
    if isinstance(rows, slice):
        if len(range(*rows.indices(n))) == 0:
            raise ValueError(f"rows: {rows} selects no galaxy of {n}")
        return rows
    index = np.asarray(rows)
    if index.ndim != 1 or index.size == 0 or not np.issubdtype(index.dtype, np.integer):
        raise TypeError(f"rows: expected a slice or a non-empty sequence of integers, got {rows!r}")
    if index.min() < -n or index.max() >= n:
        raise ValueError(f"rows: indices must lie in [0, {n}), got {index.min()}..{index.max()}")
    index = index % n
    if np.any(np.diff(index) <= 0):
        raise ValueError("rows: expected strictly increasing indices (h5py reads them in order)")
    return index


def _file_bands(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        return tuple(b.strip() for b in value.split(","))
    return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in np.ravel(value))


def _band_channels(
    file_bands: tuple[str, ...] | None, bands: tuple[str, ...] | None, n_channels: int, path: Path
) -> tuple[list[int], tuple[str, ...]]:
    """Channel indices to read and their band names."""
    if file_bands is None:
        if bands is None:
            raise ValueError(f"bands: {path} has no 'bands' attribute; pass the names of its "
                             f"{n_channels} channels, bluest first")
        as_bands(bands, n_channels)
        return list(range(n_channels)), bands
    file_bands = as_bands(file_bands, n_channels, name=f"bands attribute of {path}")
    if bands is None:
        return list(range(n_channels)), file_bands
    unknown = [b for b in bands if b not in file_bands]
    if unknown:
        raise ValueError(f"bands: {unknown} not in {path}; it holds bands {list(file_bands)}")
    return [file_bands.index(b) for b in bands], bands


def _read_catalog(
    f: h5py.File, key: str, image_key: str, n: int, index: Any, columns: Sequence[str] | None, path: Path
) -> pd.DataFrame:
    """Catalog columns from the catalog group, else from top-level 1-D datasets of length n."""
    group = f.get(key)
    if isinstance(group, h5py.Group):
        order = group.attrs.get("columns")
        names = list(group) if order is None else [str(c) for c in np.ravel(order)]
    else:
        group = f
        names = [k for k in f if k != image_key and isinstance(f[k], h5py.Dataset)
                 and f[k].ndim == 1 and f[k].shape[0] == n]
    if columns is not None:
        unknown = [c for c in columns if c not in names]
        if unknown:
            raise ValueError(f"columns: {unknown} not in {path}; available catalog columns: {names}")
        names = list(columns)
    data = {name: _column_from_hdf5(group[name], index, n, path) for name in names}
    length = len(range(n)[index]) if isinstance(index, slice) else len(index)
    return pd.DataFrame(data, index=range(length))


def _column_from_hdf5(dataset: Any, index: Any, n: int, path: Path) -> pd.Series:
    if not isinstance(dataset, h5py.Dataset) or dataset.ndim != 1 or dataset.shape[0] != n:
        raise ValueError(f"columns: {dataset.name} in {path} is not a 1-D dataset of length {n}")
    if h5py.check_string_dtype(dataset.dtype) is None:
        return pd.Series(dataset[index])
    values = dataset.asstr()[index].astype(object)
    if "missing" in dataset.attrs:
        values[np.asarray(dataset.attrs["missing"], bool)[index]] = None
    return pd.Series(values, dtype=dataset.attrs.get("pandas_dtype", "str"))


def _attribute(f: h5py.File, name: str, given: float | None, path: Path) -> float:
    if given is not None:
        return given
    if name not in f.attrs:
        raise ValueError(f"{name}: {path} has no {name!r} attribute; pass {name}= explicitly")
    return float(f.attrs[name])


def _convert_zeropoint(images: np.ndarray, file_zp: Any, zeropoint: float | None) -> float:
    """Convert ``images`` in place to ``zeropoint`` and return the zeropoint of the result."""
    if file_zp is None:  # load_hdf5 has checked that zeropoint was given
        return float(zeropoint)
    if zeropoint is None or zeropoint == float(file_zp):
        return float(file_zp)
    images *= np.float32(10 ** (0.4 * (zeropoint - float(file_zp))))
    return zeropoint


def _mask_nonfinite(images: np.ndarray, catalog: pd.DataFrame, meta: dict, path: Path) -> None:
    """Zero non-finite pixels in place, recording the counts (no-op when all are finite)."""
    bad = ~np.isfinite(images)
    if not bad.any():
        return
    counts = bad.sum(axis=(1, 2, 3)).astype(np.int64)
    images[bad] = 0.0
    catalog["n_masked_pixels"] = counts
    meta["nan_pixels"] = counts.tolist()
    warnings.warn(
        f"load_hdf5: set {int(counts.sum())} non-finite pixels in {int((counts > 0).sum())} galaxies "
        f"of {path} to 0 (see catalog column n_masked_pixels)",
        stacklevel=3,
    )


# -- Hubble eXtreme Deep Field ---------------------------------------------------------------------
_HDF_BANDS = ("B", "G", "R")
_HDF_UNITS = "arbitrary (8-bit display values of skimage.data.hubble_deep_field)"


def hubble_deep_field(
    size: int = 64,
    n: int | None = None,
    min_area: int = 50,
    *,
    threshold: float = 1.5,
    box_size: int = 50,
) -> Survey:
    """Stamps of the galaxies in the Hubble eXtreme Deep Field image shipped with scikit-image.

    The bundled image (``skimage.data.hubble_deep_field()``, 872 × 1000 RGB, 8-bit JPEG of the
    STScI-2012-37 XDF release) is turned into flux-like floats, its background estimated and
    subtracted per channel (photutils ``Background2D``: sigma-clipped medians in ``box_size``
    boxes, median-filtered and interpolated), and sources are found with photutils segmentation:
    ``detect_sources`` on the channel sum smoothed by a Gaussian of FWHM 3 px, above ``threshold``
    times the background RMS over at least 10 connected pixels, then ``deblend_sources``.
    Each source of at least ``min_area`` pixels gets a ``size`` × ``size`` stamp whose centre pixel
    ``(size // 2, size // 2)`` holds its centroid (``SourceCatalog.centroid``, to the nearest pixel).

    Parameters
    ----------
    size : int
        Stamp side in pixels.
    n : int, optional
        Keep only the ``n`` brightest sources (summed segment flux); default all.
    min_area : int
        Minimum segment area in pixels.
    threshold : float
        Detection threshold in units of the background RMS of the channel sum.
    box_size : int
        Box size of the background mesh in pixels.

    Returns
    -------
    Survey
        Bands ``("B", "G", "R")`` (the image's blue, green and red channels, bluest first),
        ``pixel_scale = 1.0`` and ``zeropoint = 0.0``: the JPEG is a resampled, non-linearly
        stretched display image, so neither the pixel scale nor the flux unit is physical (see
        ``meta["units"]``). Catalog: ``label`` (deblended segment), ``x``, ``y`` (centroid in the
        parent image, zero-based array columns and rows), ``x0``, ``y0`` (stamp origin in the parent),
        ``area`` (segment pixels), ``flux_B``, ``flux_G``, ``flux_R`` (background-subtracted segment
        sums) and ``truncated`` (the segment extends past the stamp). Sources whose stamp would
        extend past the image edge are dropped and listed in ``meta["dropped"]``.
    """
    size = check_positive_int(size, "size")
    if n is not None:
        n = check_positive_int(n, "n")
    min_area = check_positive_int(min_area, "min_area")
    threshold = check_positive(threshold, "threshold")
    box_size = check_positive_int(box_size, "box_size")

    image, rms = _hdf_background(box_size)
    segm, table = _hdf_sources(image, rms, threshold)
    table = table[table["area"] >= min_area].copy()
    height, width = image.shape[1:]
    table["x0"] = np.round(table["x"]).astype(np.int64) - size // 2
    table["y0"] = np.round(table["y"]).astype(np.int64) - size // 2
    inside = ((table["x0"] >= 0) & (table["y0"] >= 0)
              & (table["x0"] + size <= width) & (table["y0"] + size <= height))
    edge = table[~inside]
    table = table[inside].sort_values("flux_total", ascending=False, kind="stable")
    if n is not None:
        table = table.head(n)
    if table.empty:
        raise ValueError(f"size: no source of at least min_area={min_area} px has a {size}x{size} stamp "
                         "inside the image")
    table["truncated"] = ((table["bbox_xmin"] < table["x0"]) | (table["bbox_ymin"] < table["y0"])
                          | (table["bbox_xmax"] >= table["x0"] + size)
                          | (table["bbox_ymax"] >= table["y0"] + size))
    stamps = np.stack([image[:, y0:y0 + size, x0:x0 + size] for x0, y0 in zip(table["x0"], table["y0"])])
    columns = ["label", "x", "y", "x0", "y0", "area", *(f"flux_{b}" for b in _HDF_BANDS), "truncated"]
    return Survey(
        images=stamps,
        catalog=table[columns].reset_index(drop=True),
        bands=_HDF_BANDS,
        pixel_scale=1.0,
        zeropoint=0.0,
        meta={
            "source": "skimage.data.hubble_deep_field (Hubble eXtreme Deep Field, STScI-2012-37)",
            "units": _HDF_UNITS,
            "pixel_scale_units": "arbitrary (pixels of the downsampled JPEG)",
            "detection": {"threshold": threshold, "box_size": box_size, "min_area": min_area,
                          "smoothing_fwhm": 3.0, "n_pixels": 10, "n_segments": len(segm.labels)},
            "dropped": [{"reason": "stamp extends past the image edge", "count": len(edge),
                         "labels": edge["label"].tolist()}] if len(edge) else [],
        },
    )


def _hdf_background(box_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The background-subtracted XDF image as a float (B, G, R) cube and the RMS of the channel sum."""
    rgb = skimage.data.hubble_deep_field()
    cube = np.moveaxis(rgb[..., ::-1], -1, 0).astype(np.float32)  # RGB -> B, G, R, bluest first
    backgrounds = [Background2D(channel, box_size, filter_size=3, sigma_clip=SigmaClip(sigma=3.0),
                                bkg_estimator=MedianBackground()) for channel in cube]
    levels = np.stack([b.background for b in backgrounds]).astype(np.float32)
    rms = np.sqrt(sum(b.background_rms ** 2 for b in backgrounds))
    return cube - levels, rms


def _hdf_sources(image: np.ndarray, rms: np.ndarray, threshold: float) -> tuple[Any, pd.DataFrame]:
    """Deblended segmentation of the channel sum and a table of its sources."""
    detection = image.sum(axis=0)
    smoothed = convolve(detection, make_2dgaussian_kernel(3.0, size=5))
    segm = detect_sources(smoothed, threshold * rms, 10)
    if segm is None:
        raise ValueError(f"threshold: no source detected above {threshold} x background RMS")
    segm = deblend_sources(smoothed, segm, 10, progress_bar=False)
    cat = SourceCatalog(detection, segm, convolved_data=smoothed)
    labels = np.asarray(cat.label)
    table = pd.DataFrame({
        "label": labels.astype(np.int64),
        "x": cat.centroid[:, 0],
        "y": cat.centroid[:, 1],
        "area": np.asarray(cat.area.value, dtype=np.int64),
        "bbox_xmin": cat.bbox_xmin, "bbox_xmax": cat.bbox_xmax,
        "bbox_ymin": cat.bbox_ymin, "bbox_ymax": cat.bbox_ymax,
    })
    for band, channel in zip(_HDF_BANDS, image):
        table[f"flux_{band}"] = ndimage.sum_labels(channel, segm.data, labels)
    table["flux_total"] = table[[f"flux_{b}" for b in _HDF_BANDS]].sum(axis=1)
    return segm, table[np.isfinite(table["x"]) & np.isfinite(table["y"])]
