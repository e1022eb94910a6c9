"""The HDF5 layout of galaxy cutouts with their catalog: arrays and calibration in, arrays out.

This module reads and writes the fields of a :class:`~galwidgets.data.surveys.Survey` (images,
catalog, bands, pixel scale, zeropoint, PSF widths, provenance) without knowing the class, so
that the Survey (``Survey.save``, ``Survey.load``, :func:`~galwidgets.data.surveys.load_hdf5`)
builds on it from the floor above. The layout also covers the channels-last files of public galaxy
machine-learning sets (e.g. 5-band 64×64 cutouts with spectroscopic redshifts).

HDF5 layout
-----------
``/images``
    float32 dataset shaped ``(N, C, H, W)`` in linear flux units. ``read_hdf5_fields(...,
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
    ``format_version`` written by :func:`write_hdf5_fields`.

Missing or non-finite pixels: a Survey holds finite fluxes only, so the reader replaces NaN and
infinite pixels by 0, counts them per galaxy in ``meta["nan_pixels"]`` and in the catalog column
``n_masked_pixels``, with a warning.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from .._io import atomic_path, to_jsonable
from .._validation import as_bands, check_finite, check_positive

__all__ = ["read_hdf5_fields", "write_hdf5_fields"]

PathLike = str | os.PathLike

#: The ``format`` attribute of files written here, and their layout version.
HDF5_FORMAT = "galwidgets-hdf5"
HDF5_VERSION = 1


def write_hdf5_fields(
    path: PathLike,
    *,
    images: np.ndarray,
    catalog: pd.DataFrame,
    bands: Sequence[str],
    pixel_scale: float,
    zeropoint: float,
    psf_fwhm: Mapping[str, float] | None = None,
    meta: Mapping[str, Any] | None = None,
    overwrite: bool = True,
    compression: str | None = "gzip",
    argument: str = "catalog",
) -> Path:
    """Write images, catalog and calibration to one HDF5 file in this module's layout, atomically.

    Parameters
    ----------
    path : str or path-like
        Output file.
    images : numpy.ndarray
        ``(N, C, H, W)`` float32 fluxes.
    catalog : pandas.DataFrame
        One row per image.
    bands, pixel_scale, zeropoint, psf_fwhm, meta
        Calibration and provenance, as the attributes of a Survey.
    overwrite : bool
        Replace an existing file.
    compression : str or None
        h5py compression filter of the image dataset (chunked one image per chunk); None for
        contiguous storage.
    argument : str
        How error messages name the catalog (the caller's argument, e.g. ``"survey.catalog"``).

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
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"path: {path} exists and overwrite=False")
    columns = {name: _column_to_hdf5(name, catalog[name], argument) for name in catalog.columns}
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = HDF5_FORMAT
        f.attrs["format_version"] = HDF5_VERSION
        f.attrs["bands"] = np.array(list(bands), dtype=h5py.string_dtype())
        f.attrs["pixel_scale"] = float(pixel_scale)
        f.attrs["zeropoint"] = float(zeropoint)
        if psf_fwhm is not None:
            f.attrs["psf_fwhm"] = json.dumps(dict(psf_fwhm))
        f.attrs["meta"] = json.dumps(to_jsonable(dict(meta or {})))
        chunks = (1, *images.shape[1:]) if compression else None
        f.create_dataset("images", data=images, chunks=chunks, compression=compression)
        group = f.create_group("catalog", track_order=True)
        group.attrs["columns"] = np.array(list(columns), dtype=h5py.string_dtype())
        for name, (values, attrs) in columns.items():
            dataset = group.create_dataset(name, data=values)
            dataset.attrs.update(attrs)
    return path


def _column_to_hdf5(name: Any, column: pd.Series, argument: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Values and dataset attributes that store one catalog column."""
    if not isinstance(name, str) or not name or "/" in name or name == ".":
        raise ValueError(f"{argument}: column name {name!r} is not a string usable as an HDF5 name")
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
        f"{argument}: column {name!r} has dtype {dtype}; HDF5 files store numbers, booleans and "
        "strings (convert it, e.g. with .astype(str) or .astype(float))"
    )


def read_hdf5_fields(
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
) -> dict[str, Any]:
    """Read galaxy images, their catalog and calibration from an HDF5 file (this module's layout).

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
    dict
        The keyword arguments of a Survey: ``images``, ``catalog``, ``bands``, ``pixel_scale``,
        ``zeropoint``, ``psf_fwhm``, ``meta``. Non-finite pixels, if any, are set to 0, counted in
        ``meta["nan_pixels"]`` and the catalog column ``n_masked_pixels``, with a warning.

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
    if zeropoint is not None:
        zeropoint = check_finite(zeropoint, "zeropoint", "a finite AB magnitude")
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
    return {
        "images": images,
        "catalog": catalog,
        "bands": bands,
        "pixel_scale": check_positive(pixel_scale, "pixel_scale"),
        "zeropoint": zeropoint,
        "psf_fwhm": None if psf is None else {b: psf[b] for b in bands if b in psf},
        "meta": meta,
    }


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
    if file_zp is None:  # read_hdf5_fields has checked that zeropoint was given
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
        f"set {int(counts.sum())} non-finite pixels in {int((counts > 0).sum())} galaxies "
        f"of {path} to 0 (see catalog column n_masked_pixels)",
        stacklevel=4,
    )


# -- Hubble eXtreme Deep Field ---------------------------------------------------------------------
