"""Survey cutouts in FITS files as a :class:`~galwidgets.data.surveys.Survey`: :func:`load_fits_cutouts`.

Either one file per band per galaxy (as served by the HSC-SSP DAS cutout service) or one
multi-extension file per galaxy. The flux unit comes from the header (``FLUXMAG0``, a
``MAGZERO``-style keyword or ``BUNIT``), the pixel scale from the WCS.

Missing or non-finite pixels: a Survey holds finite fluxes only, so the loader replaces NaN and
infinite pixels by 0, counts them per galaxy in ``meta["nan_pixels"]`` and in the catalog column
``n_masked_pixels``, and can return the boolean mask itself (``return_mask=True``). Galaxies are
never dropped silently: a galaxy that cannot be loaded either raises (the default) or is listed
with the reason in ``meta["dropped"]`` and a warning.

Folder trees of 10^5 cutouts do not fit in memory: ``load_fits_cutouts(..., out="real.h5")``
converts them into an on-disk :class:`~galwidgets.data.store.SurveyStore` a chunk at a time (files
read in a process pool), records dropped files in ``store.dropped`` and resumes after an
interruption where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy import units as u
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales
from tqdm.auto import tqdm

from .._io import to_jsonable
from .._parallel import check_jobs, imap_chunks
from .._validation import as_bands, check_finite, check_positive, check_positive_int
from .hdf5 import EncodedImages, encode_images
from .store import SurveyStore, open_store
from .surveys import Survey

__all__ = ["BUNIT_ZEROPOINTS", "NON_SCIENCE_EXTNAMES", "ZEROPOINT_KEYWORDS", "load_fits_cutouts"]

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
    out: PathLike | None = None,
    chunk_size: int = 256,
    n_jobs: int | None = None,
    overwrite: bool = False,
) -> Survey | tuple[Survey, np.ndarray] | SurveyStore:
    """Read FITS cutouts of galaxies into a Survey, or convert them into an on-disk store.

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
    out : str or path-like, optional
        Convert into this survey store (``.h5``, :class:`~galwidgets.data.store.SurveyStore`)
        instead of memory, ``chunk_size`` galaxies at a time, and return the store: for folder trees
        of 10^5 cutouts. The bands, cutout shape, zeropoint and pixel scale come from the first
        readable galaxy (or the arguments), and every later one must agree (else it raises or, with
        ``on_error="skip"``, is dropped). Dropped files are recorded in ``store.dropped``, the
        files of each galaxy in the catalog column ``source_files`` (JSON) and its entry number in
        ``source_index``. Interrupted (even by ``kill -9``), the same call resumes after the last
        complete chunk; a store written from other ``paths`` or settings raises unless ``overwrite``.
    chunk_size : int
        Galaxies committed together to ``out``.
    n_jobs : int, optional
        Processes reading files for ``out``; default 1 below 2000 galaxies, else all usable CPUs.
    overwrite : bool
        Replace a store at ``out`` written by another conversion.

    Returns
    -------
    Survey or (Survey, numpy.ndarray) or SurveyStore
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
    if out is not None:
        if return_mask:
            raise ValueError("return_mask: not available with out= (the catalog column n_masked_pixels "
                             "counts each galaxy's masked pixels)")
        options = _ReadOptions(bands=bands, explicit=bands is not None, size=size, zeropoint=zeropoint,
                               pixel_scale=pixel_scale, hdu=hdu, on_error=on_error)
        chunk_size = check_positive_int(chunk_size, "chunk_size")
        return _convert_to_store(entries, catalog, options, Path(out), chunk_size, n_jobs, overwrite,
                                 progress)

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


# -- conversion into a store -----------------------------------------------------------------------
@dataclass(frozen=True)
class _ReadOptions:
    """How each galaxy is read and what it must agree with (fixed by the first readable galaxy)."""

    bands: tuple[str, ...] | None
    explicit: bool
    size: int | None
    zeropoint: float | None
    pixel_scale: float | None
    hdu: Any
    on_error: str
    shape: tuple[int, int] | None = None
    native_zeropoint: float | None = None  # the output unit when no zeropoint is given
    native_pixel_scale: float | None = None  # the output pixel scale when none is given


def _fingerprint(entries: list, catalog: pd.DataFrame | None, options: _ReadOptions) -> str:
    """A hash of the inputs and settings: a store resumes only the conversion that made it."""
    settings = {k: v for k, v in asdict(options).items() if k not in ("shape", "native_zeropoint")}
    digest = hashlib.sha256(json.dumps(to_jsonable(settings), sort_keys=True, default=str).encode())
    for entry in entries:
        digest.update(json.dumps(to_jsonable(dict(entry) if isinstance(entry, Mapping) else os.fspath(entry)),
                                 sort_keys=True).encode())
    if catalog is not None:
        digest.update(pd.util.hash_pandas_object(catalog, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _galaxy(entry: Any, options: _ReadOptions) -> tuple[np.ndarray, np.ndarray, int, dict[str, str]]:
    """One galaxy as ``(image (C, H, W), mask, non-finite pixel count, sources)``, checked against
    the settings fixed by the first galaxy; raises ValueError / FileNotFoundError otherwise."""
    planes = _select_bands(_read_galaxy(entry, options.hdu), options.bands, options.explicit, entry)
    shape = options.shape
    if options.size is None and {p.data.shape for p in planes.values()} != {shape}:
        raise ValueError(f"size: galaxy {_short(entry)} is {next(iter(planes.values())).data.shape} px, the "
                         f"first galaxy {shape}; pass size= to crop or pad them")
    target = options.zeropoint if options.zeropoint is not None else options.native_zeropoint
    for plane in planes.values():
        if plane.zeropoint is None and options.zeropoint is None:
            raise ValueError(f"zeropoint: {plane.source} has no FLUXMAG0, MAGZERO-style or BUNIT "
                             "calibration; pass zeropoint= (the AB zeropoint of its pixel unit)")
        if options.zeropoint is None and abs(plane.zeropoint - target) > 1e-6:
            raise ValueError(f"zeropoint: {plane.source} has zeropoint {plane.zeropoint:.6g}, the first "
                             f"galaxy {target:.6g}; pass zeropoint= to convert them all to one flux unit")
        if options.pixel_scale is None:
            scale = plane.pixel_scale
            if scale is None:
                raise ValueError(f"pixel_scale: {plane.source} has no celestial WCS; pass pixel_scale=")
            if abs(scale - options.native_pixel_scale) > 1e-3 * options.native_pixel_scale:
                raise ValueError(f"pixel_scale: {plane.source} has {scale:.5g} arcsec/px, the first galaxy "
                                 f"{options.native_pixel_scale:.5g}; resample them to one scale first")
    images, mask, nan_pixels = _assemble([planes], options.bands, shape, target)
    return images[0], mask[0], nan_pixels[0], {b: p.source for b, p in planes.items()}


def _read_chunk(chunk: list[tuple[int, Any]], options: _ReadOptions,
                compression: str | bool | None = False) -> dict[str, Any]:
    """Read the galaxies of one chunk (in a worker): images (encoded as the store's chunks unless
    ``compression`` is False) and per-galaxy columns, and the drops."""
    images, masked, nonfinite, kept, sources, dropped = [], [], [], [], [], []
    for index, entry in chunk:
        try:
            image, mask, bad, files = _galaxy(entry, options)
        except (FileNotFoundError, ValueError) as exc:
            if options.on_error == "raise":
                raise
            dropped.append({"index": index, "source": _short(entry), "reason": str(exc)})
            continue
        images.append(image)
        masked.append(int(mask.sum()))
        nonfinite.append(bad)
        kept.append(index)
        sources.append(json.dumps({b: str(f) for b, f in files.items()}))
    stacked = np.stack(images) if images else None
    if stacked is not None and compression is not False:
        stacked = encode_images(stacked, compression)
    return {"images": stacked, "n_masked_pixels": masked,
            "n_nonfinite_pixels": nonfinite, "source_index": kept, "source_files": sources,
            "dropped": dropped}


def _first_galaxy(entries: list, options: _ReadOptions, start: int) -> tuple[_ReadOptions, list[dict]]:
    """Fix bands, shape, flux unit and pixel scale from the first readable galaxy at or after ``start``."""
    dropped = []
    for index in range(start, len(entries)):
        try:
            planes = _select_bands(_read_galaxy(entries[index], options.hdu), options.bands, options.explicit,
                                   entries[index])
        except (FileNotFoundError, ValueError) as exc:
            if options.on_error == "raise":
                raise
            dropped.append({"index": index, "source": _short(entries[index]), "reason": str(exc)})
            continue
        first = next(iter(planes.values()))
        native = first.zeropoint
        if native is None and options.zeropoint is None:
            raise ValueError(f"zeropoint: {first.source} has no FLUXMAG0, MAGZERO-style or BUNIT "
                             "calibration; pass zeropoint= (the AB zeropoint of its pixel unit)")
        if options.pixel_scale is None and first.pixel_scale is None:
            raise ValueError(f"pixel_scale: {first.source} has no celestial WCS; pass pixel_scale= "
                             "(arcsec/px)")
        shape = (options.size, options.size) if options.size is not None else first.data.shape
        return replace(options, bands=tuple(planes), shape=tuple(shape), native_zeropoint=native,
                       native_pixel_scale=first.pixel_scale), dropped
    raise ValueError(f"paths: none of the {len(entries)} galaxies could be loaded")


def _convert_to_store(entries: list, catalog: pd.DataFrame | None, options: _ReadOptions, out: Path,
                      chunk_size: int, n_jobs: int | None, overwrite: bool, progress: bool) -> SurveyStore:
    """``load_fits_cutouts(..., out=)``: read chunk by chunk (in a pool), append, resume."""
    fingerprint = _fingerprint(entries, catalog, options)
    store, options, start = _open_conversion(out, fingerprint, overwrite, options)
    if store is not None and not store.writable:
        return store
    if store is None:
        options, dropped = _first_galaxy(entries, options, 0)
        store = _create_conversion_store(out, entries, catalog, options, fingerprint)
        store.add_dropped(dropped)
        start = dropped[-1]["index"] + 1 if dropped else 0
    jobs = check_jobs(n_jobs, len(entries) - start, min_items=2000)
    starts = range(start, len(entries), chunk_size)
    pieces: Iterator = ([(i, entries[i]) for i in range(lo, min(lo + chunk_size, len(entries)))]
                        for lo in starts)
    results = imap_chunks(partial(_read_chunk, options=options, compression=store.compression), pieces,
                          n_jobs=jobs, progress=progress, total=len(entries) - start, desc="FITS cutouts",
                          size=len, max_pending=4 * jobs)
    n_dropped = len(store.dropped)
    for result in results:
        if isinstance(result["images"], EncodedImages):
            store.append_encoded(result["images"], _chunk_catalog(result, catalog))
        elif result["images"] is not None:
            store.append(Survey(images=result["images"], catalog=_chunk_catalog(result, catalog),
                                bands=store.bands, pixel_scale=store.pixel_scale, zeropoint=store.zeropoint))
        store.add_dropped(result["dropped"])
        n_dropped += len(result["dropped"])
    store.set_writer_state(entries_done=len(entries))
    if n_dropped:
        warnings.warn(f"load_fits_cutouts: skipped {n_dropped} of {len(entries)} galaxies "
                      "(see store.dropped)", stacklevel=3)
    store.close()
    return open_store(out)


def _chunk_catalog(result: dict[str, Any], catalog: pd.DataFrame | None) -> pd.DataFrame:
    """The catalog rows of one chunk's galaxies with the columns the conversion adds."""
    rows = pd.DataFrame(index=range(len(result["source_index"]))) if catalog is None else \
        catalog.iloc[result["source_index"]].reset_index(drop=True)
    for name in ("n_masked_pixels", "n_nonfinite_pixels", "source_index"):
        rows[name] = np.asarray(result[name], dtype=np.int64)
    rows["source_files"] = pd.Series(result["source_files"], dtype=object)
    return rows


def _create_conversion_store(out: Path, entries: list, catalog: pd.DataFrame | None, options: _ReadOptions,
                             fingerprint: str) -> SurveyStore:
    template_rows = pd.DataFrame(index=range(1)) if catalog is None else \
        catalog.iloc[:1].reset_index(drop=True)
    for name in ("n_masked_pixels", "n_nonfinite_pixels", "source_index"):
        template_rows[name] = np.zeros(1, np.int64)
    template_rows["source_files"] = pd.Series(["{}"], dtype=object)
    zeropoint = options.zeropoint if options.zeropoint is not None else options.native_zeropoint
    pixel_scale = options.pixel_scale if options.pixel_scale is not None else options.native_pixel_scale
    template = Survey(images=np.zeros((1, len(options.bands), *options.shape), np.float32),
                      catalog=template_rows, bands=options.bands, pixel_scale=pixel_scale,
                      zeropoint=zeropoint)
    meta = {"source": "galwidgets.data.load_fits_cutouts", "native_zeropoint": options.native_zeropoint,
            "size": list(options.shape), "n_entries": len(entries), "conversion_fingerprint": fingerprint,
            "options": {k: v for k, v in asdict(options).items() if k != "hdu"}}
    return SurveyStore.create(out, template, meta=meta, overwrite=True)


def _open_conversion(out: Path, fingerprint: str, overwrite: bool, options: _ReadOptions
                     ) -> tuple[SurveyStore | None, _ReadOptions, int]:
    """The store of this conversion at ``out`` (read-only when complete), the options it fixed and the
    entry to resume at."""
    if overwrite or not out.exists():
        return None, options, 0
    store = open_store(out)
    if store.meta.get("conversion_fingerprint") != fingerprint:
        store.close()
        raise ValueError(f"out: {out} exists and holds another conversion (other paths or settings); pass "
                         "overwrite=True to replace it, or another path")
    fixed = store.meta["options"]
    options = replace(options, bands=tuple(fixed["bands"]), shape=tuple(fixed["shape"]),
                      native_zeropoint=fixed["native_zeropoint"],
                      native_pixel_scale=fixed["native_pixel_scale"])
    if store.writer_state.get("entries_done") == store.meta["n_entries"]:
        return store, options, store.meta["n_entries"]
    store.close()
    store = open_store(out, mode="a")
    done = store.catalog["source_index"]
    start = int(done.max()) + 1 if len(done) else 0
    store.truncate_dropped(start)
    return store, options, start
