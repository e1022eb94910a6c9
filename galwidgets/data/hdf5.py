"""The HDF5 layout of galaxy cutouts with their catalog: arrays and calibration in, arrays out.

This module reads and writes the fields of a :class:`~galwidgets.data.surveys.Survey` (images,
catalog, bands, pixel scale, zeropoint, PSF widths, provenance) without knowing the class, so
that the Survey (``Survey.save``, ``Survey.load``, :func:`~galwidgets.data.surveys.load_hdf5`)
builds on it from the floor above. The layout also covers the channels-last files of public galaxy
machine-learning sets (e.g. 5-band 64×64 cutouts with spectroscopic redshifts).

HDF5 layout
-----------
``/images``
    float32 dataset shaped ``(N, C, H, W)`` in linear flux units, chunked one galaxy per chunk,
    resizable along N and compressed after HDF5's byte shuffle: gzip level 1 for ``Survey.save``
    (readable by any HDF5 tool; noise-limited float images shrink by about 13 %, and higher levels
    gain under 1 %), LZF for the stores written chunk by chunk (:mod:`galwidgets.data.store`: 7 %
    smaller at under half gzip's cost, so writing keeps up with rendering; read by h5py).
    ``read_hdf5_fields(..., channels_last=True)`` reads ``(N, H, W, C)`` instead; another name via
    ``image_key``.
``/catalog/<column>``
    One 1-D dataset of length ``N`` per catalog column (numbers, booleans or UTF-8 strings),
    chunked and resizable like the images. The group attribute ``columns`` lists the column
    order; a string column's attribute ``pandas_dtype`` records its pandas dtype and its missing
    values are marked by the boolean dataset ``<column>__missing`` (files of layout version 1: by
    the boolean attribute ``missing``). When the ``catalog`` group is absent, every other top-level
    1-D dataset of length ``N`` is read as a catalog column.
root attributes
    ``bands`` (array of strings, or one comma-separated string), ``pixel_scale`` (arcsec per
    pixel), ``zeropoint`` (AB magnitude of one flux unit), optional ``psf_fwhm`` (JSON object:
    band -> arcsec) and ``meta`` (JSON object; a large one is the scalar string dataset ``/meta``
    instead), ``format = "galwidgets-hdf5"``, ``format_version`` and ``n_rows``.

Appending and interrupted writes
--------------------------------
``n_rows`` is the number of complete galaxies. :func:`append_hdf5_rows` grows every dataset,
writes the new rows, flushes the file, and only then raises ``n_rows`` and flushes again, so a
writer killed at any moment leaves a file whose first ``n_rows`` galaxies are complete; readers use
those only, and the next writer discards the rest (:func:`discard_uncommitted`) before appending.
Files without ``n_rows`` (other writers, layout version 1) hold ``len(images)`` galaxies.

Missing or non-finite pixels: a Survey holds finite fluxes only, so the reader replaces NaN and
infinite pixels by 0, counts them per galaxy in ``meta["nan_pixels"]`` and in the catalog column
``n_masked_pixels``, with a warning.
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

from .._io import atomic_path, to_jsonable
from .._validation import as_bands, check_finite, check_positive

__all__ = [
    "EncodedImages", "append_hdf5_rows", "catalog_schema", "committed_rows", "create_hdf5_layout",
    "dataset_compression", "discard_uncommitted", "encode_images", "read_hdf5_fields", "read_hdf5_meta",
    "stored_columns", "write_hdf5_fields",
]

PathLike = str | os.PathLike

#: The ``format`` attribute of files written here, and their layout version.
HDF5_FORMAT = "galwidgets-hdf5"
HDF5_VERSION = 2

_MISSING = "__missing"  # suffix of the missing-value mask of a string column
_CATALOG_CHUNK = 1024  # catalog rows per chunk (gzip-compressed: a part-filled chunk costs little)
_MAX_META_ATTRIBUTE = 48_000  # characters of meta JSON kept in an attribute
_CATALOG_FILTERS = {"compression": "gzip", "compression_opts": 1}
#: Filters of the image dataset by ``compression`` name.
_COMPRESSIONS: dict[str | None, dict[str, Any]] = {
    "gzip": {"compression": "gzip", "compression_opts": 1, "shuffle": True},
    "lzf": {"compression": "lzf", "shuffle": True},
    None: {},
}


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

    The file can be appended to later (:func:`append_hdf5_rows`, ``SurveyStore.append``).

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
    compression : {"gzip", "lzf"} or None
        Filter of the image dataset (chunked one image per chunk, byte-shuffled first); None
        stores the chunks uncompressed.
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
    schema = catalog_schema(catalog, argument)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        create_hdf5_layout(f, image_shape=tuple(images.shape[1:]), bands=bands, pixel_scale=pixel_scale,
                           zeropoint=zeropoint, psf_fwhm=psf_fwhm, meta=meta, schema=schema,
                           compression=compression)
        append_hdf5_rows(f, images, catalog, argument=argument)
    return path


def catalog_schema(catalog: pd.DataFrame, argument: str = "catalog") -> dict[str, str]:
    """Storage type of each catalog column: a numpy dtype string, or ``"str:<pandas dtype>"``.

    Raises, naming ``argument``, for a column HDF5 cannot hold (see :func:`write_hdf5_fields`).
    """
    return {name: _column_kind(name, catalog[name], argument) for name in catalog.columns}


def _column_kind(name: Any, column: pd.Series, argument: str) -> str:
    if not isinstance(name, str) or not name or "/" in name or name == "." or name.endswith(_MISSING):
        raise ValueError(f"{argument}: column name {name!r} is not a string usable as an HDF5 name")
    dtype = column.dtype
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return dtype.str
    values = column.to_numpy(dtype=object)
    if all(isinstance(v, str) for v in values[~pd.isna(column).to_numpy()]):
        return f"str:{dtype}"
    raise TypeError(
        f"{argument}: column {name!r} has dtype {dtype}; HDF5 files store numbers, booleans and "
        "strings (convert it, e.g. with .astype(str) or .astype(float))"
    )


def create_hdf5_layout(
    f: h5py.File,
    *,
    image_shape: tuple[int, int, int],
    bands: Sequence[str],
    pixel_scale: float,
    zeropoint: float,
    psf_fwhm: Mapping[str, float] | None = None,
    meta: Mapping[str, Any] | None = None,
    schema: Mapping[str, str] | None = None,
    compression: str | None = "gzip",
) -> None:
    """Create the empty, appendable datasets and the attributes of this module's layout in ``f``.

    ``image_shape`` is ``(C, H, W)``; ``schema`` maps catalog columns to their storage type
    (:func:`catalog_schema`). ``n_rows`` starts at 0.
    """
    if compression not in _COMPRESSIONS:
        raise ValueError(f"compression: expected one of {list(_COMPRESSIONS)}, got {compression!r}")
    f.attrs["format"] = HDF5_FORMAT
    f.attrs["format_version"] = HDF5_VERSION
    f.attrs["bands"] = np.array(list(bands), dtype=h5py.string_dtype())
    f.attrs["pixel_scale"] = float(pixel_scale)
    f.attrs["zeropoint"] = float(zeropoint)
    if psf_fwhm is not None:
        f.attrs["psf_fwhm"] = json.dumps(dict(psf_fwhm))
    text = json.dumps(to_jsonable(dict(meta or {})))
    if len(text) <= _MAX_META_ATTRIBUTE:
        f.attrs["meta"] = text
    else:  # attributes of the default (portable) file format hold at most 64 kB
        f.create_dataset("meta", data=text, dtype=h5py.string_dtype())
    f.attrs["n_rows"] = 0
    filters = _COMPRESSIONS[compression]
    f.create_dataset("images", shape=(0, *image_shape), maxshape=(None, *image_shape), dtype=np.float32,
                     chunks=(1, *image_shape), **filters)
    group = f.create_group("catalog", track_order=True)
    schema = dict(schema or {})
    group.attrs["columns"] = np.array(list(schema), dtype=h5py.string_dtype())
    for name, kind in schema.items():
        if kind.startswith("str:"):
            dataset = group.create_dataset(name, shape=(0,), maxshape=(None,), dtype=h5py.string_dtype(),
                                           chunks=(_CATALOG_CHUNK,), **_CATALOG_FILTERS)
            dataset.attrs["pandas_dtype"] = kind[len("str:"):]
            group.create_dataset(name + _MISSING, shape=(0,), maxshape=(None,), dtype=bool,
                                 chunks=(_CATALOG_CHUNK,), **_CATALOG_FILTERS)
        else:
            group.create_dataset(name, shape=(0,), maxshape=(None,), dtype=np.dtype(kind),
                                 chunks=(_CATALOG_CHUNK,), **_CATALOG_FILTERS)


def committed_rows(f: h5py.File, image_key: str = "images") -> int:
    """Number of complete galaxies in ``f``: ``n_rows``, or the length of the images without it."""
    if "n_rows" in f.attrs:
        return int(f.attrs["n_rows"])
    dataset = f.get(image_key)
    return int(dataset.shape[0]) if isinstance(dataset, h5py.Dataset) else 0


def _row_datasets(f: h5py.File) -> list[h5py.Dataset]:
    """The images and every catalog dataset (the datasets with one entry per galaxy)."""
    datasets = [f["images"]]
    group = f.get("catalog")
    if isinstance(group, h5py.Group):
        datasets += [d for d in group.values() if isinstance(d, h5py.Dataset)]
    return datasets


def discard_uncommitted(f: h5py.File) -> int:
    """Shrink every dataset of ``f`` (open for writing) to its committed rows; returns their number.

    Rows past ``n_rows`` are what an interrupted :func:`append_hdf5_rows` left behind.
    """
    n = committed_rows(f)
    changed = False
    for dataset in _row_datasets(f):
        if dataset.shape[0] != n:
            if dataset.maxshape[0] is not None:
                raise ValueError(f"path: {f.filename} was not written to be appended to (dataset "
                                 f"{dataset.name} is not resizable); copy it into a new store")
            dataset.resize(n, axis=0)
            changed = True
    if changed:
        f.flush()
    return n


@dataclass
class EncodedImages:
    """Galaxies already passed through the image dataset's filters: one HDF5 chunk (bytes) each.

    Made by :func:`encode_images` where the pixels are made (e.g. in the rendering processes), so
    that the writing process only copies bytes into the file (``write_direct_chunk``) instead of
    compressing: the compression then runs in parallel and the writer keeps up.
    """

    chunks: list[bytes]
    shape: tuple[int, int, int]
    compression: str | None

    def __len__(self) -> int:
        return len(self.chunks)

    @property
    def nbytes(self) -> int:
        return sum(len(c) for c in self.chunks)


def encode_images(images: np.ndarray, compression: str | None = "lzf") -> EncodedImages:
    """Each galaxy of ``images`` as the chunk the layout stores with ``compression`` (filtered bytes).

    The images pass through HDF5's own filters (byte shuffle, then LZF or deflate) in a file held in
    memory, and the chunks are read back raw, so the bytes are exactly those h5py would write.
    """
    if compression not in _COMPRESSIONS:
        raise ValueError(f"compression: expected one of {list(_COMPRESSIONS)}, got {compression!r}")
    images = np.ascontiguousarray(images, dtype=np.float32)
    shape = tuple(images.shape[1:])
    with h5py.File(f"encode-{id(images)}", "w", driver="core", backing_store=False) as f:
        dataset = f.create_dataset("images", data=images, chunks=(1, *shape), **_COMPRESSIONS[compression])
        chunks = [dataset.id.read_direct_chunk((i, 0, 0, 0))[1] for i in range(len(images))]
    return EncodedImages(chunks, shape, compression)


def dataset_compression(dataset: h5py.Dataset) -> str | bool | None:
    """The ``compression`` name whose filters the dataset uses (False: none of ours)."""
    for name, filters in _COMPRESSIONS.items():
        same = (dataset.compression == filters.get("compression") and dataset.compression_opts ==
                filters.get("compression_opts") and dataset.shuffle == filters.get("shuffle", False))
        if same:
            return name
    return False


def append_hdf5_rows(f: h5py.File, images: np.ndarray | EncodedImages, catalog: pd.DataFrame,
                     argument: str = "catalog") -> int:
    """Append galaxies to a file of this layout open for writing, committing them at the end.

    Every dataset grows by ``len(images)``, the rows are written and flushed, then ``n_rows`` is
    raised and flushed: an interruption anywhere leaves the earlier galaxies complete and the new
    ones uncommitted (never half-counted). Returns the new number of galaxies.

    Raises
    ------
    ValueError
        If the images do not match the file's ``(C, H, W)``, the catalog's columns differ from the
        file's, a column's values cannot be stored in its type, or the file cannot be appended to.
    """
    n = committed_rows(f)
    k = len(images)
    dataset = f["images"]
    shape = images.shape if isinstance(images, EncodedImages) else tuple(images.shape[1:])
    if tuple(shape) != tuple(dataset.shape[1:]):
        raise ValueError(f"images: expected galaxies shaped {tuple(dataset.shape[1:])} (C, H, W) like the "
                         f"store, got {tuple(shape)}")
    if isinstance(images, EncodedImages) and images.compression != dataset_compression(dataset):
        raise ValueError(f"images: encoded for compression {images.compression!r}, which the store's image "
                         "dataset does not use")
    if len(catalog) != k:
        raise ValueError(f"{argument}: expected one row per image ({k}), got {len(catalog)} rows")
    columns = stored_columns(f)
    if list(catalog.columns) != list(columns):
        missing = [c for c in columns if c not in catalog.columns]
        extra = [c for c in catalog.columns if c not in columns]
        raise ValueError(f"{argument}: expected the store's catalog columns {list(columns)}; missing "
                         f"{missing}, not in the store {extra}")
    values = {name: _column_values(name, catalog[name], columns[name], argument) for name in columns}
    if f["images"].shape[0] != n:
        discard_uncommitted(f)
    for ds in _row_datasets(f):
        if ds.maxshape[0] is None:
            ds.resize(n + k, axis=0)
        elif k:
            raise ValueError(f"path: {f.filename} was not written to be appended to (dataset {ds.name} is "
                             "not resizable); copy it into a new store")
    if isinstance(images, EncodedImages):
        for i, chunk in enumerate(images.chunks):
            dataset.id.write_direct_chunk((n + i, 0, 0, 0), chunk, filter_mask=0)
    else:
        dataset[n:n + k] = np.asarray(images, dtype=np.float32)
    group = f.get("catalog")
    for name, (data, missing) in values.items():
        group[name][n:n + k] = data
        if missing is not None:
            group[name + _MISSING][n:n + k] = missing
    f.flush()
    f.attrs["n_rows"] = n + k
    f.flush()
    return n + k


def stored_columns(f: h5py.File) -> dict[str, str]:
    """Catalog columns of a file of this layout and their storage type (as :func:`catalog_schema`)."""
    group = f.get("catalog")
    if not isinstance(group, h5py.Group):
        return {}
    order = group.attrs.get("columns")
    names = list(group) if order is None else [str(c) for c in np.ravel(order)]
    out = {}
    for name in names:
        dataset = group[name]
        if h5py.check_string_dtype(dataset.dtype) is not None:
            out[name] = "str:" + str(dataset.attrs.get("pandas_dtype", "str"))
        else:
            out[name] = dataset.dtype.str
    return out


def _column_values(name: str, column: pd.Series, kind: str, argument: str
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """Values (and missing mask, for strings) of one column in its stored type."""
    if kind.startswith("str:"):
        values = column.to_numpy(dtype=object)
        missing = pd.isna(column).to_numpy()
        if not all(isinstance(v, str) for v in values[~missing]):
            raise ValueError(f"{argument}: column {name!r} holds strings in the store, got {column.dtype}")
        data = np.array(["" if m else v for v, m in zip(values, missing)], dtype=h5py.string_dtype())
        return data, missing
    target = np.dtype(kind)
    dtype = column.dtype
    numeric = isinstance(dtype, np.dtype) and dtype.kind in "biuf"
    if not numeric or not np.can_cast(dtype, target, "same_kind"):
        raise ValueError(f"{argument}: column {name!r} is {target} in the store, got {dtype}")
    return column.to_numpy().astype(target, copy=False), None


def read_hdf5_meta(f: h5py.File) -> dict[str, Any]:
    """The ``meta`` object of a file (attribute, or the ``/meta`` dataset of large ones)."""
    if "meta" in f.attrs:
        return json.loads(f.attrs["meta"])
    dataset = f.get("meta")
    if isinstance(dataset, h5py.Dataset) and dataset.ndim == 0:
        value = dataset[()]
        return json.loads(value.decode() if isinstance(value, bytes) else value)
    return {}


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
        n_total, n_channels = committed_rows(f, image_key), dataset.shape[-1 if channels_last else 1]
        if n_total == 0:
            raise ValueError(f"path: {path} holds no complete galaxy yet")
        channels, bands = _band_channels(_file_bands(f.attrs.get("bands")), bands, n_channels, path)
        pixel_scale = _attribute(f, "pixel_scale", pixel_scale, path)
        file_zp = f.attrs.get("zeropoint")
        if file_zp is None and zeropoint is None:
            raise ValueError(f"zeropoint: {path} has no 'zeropoint' attribute; pass zeropoint= explicitly")
        index = _row_index(rows, n_total)
        catalog = _read_catalog(f, catalog_key, image_key, n_total, index, columns, path)
        images = np.asarray(dataset[index], dtype=np.float32)
        psf = json.loads(f.attrs["psf_fwhm"]) if "psf_fwhm" in f.attrs else None
        meta = read_hdf5_meta(f)
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
        return slice(0, n)
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
        if order is None:
            names = [k for k in group if not k.endswith(_MISSING)]
        else:
            names = [str(c) for c in np.ravel(order)]
    else:
        group = f
        names = [k for k in f if k != image_key and isinstance(f[k], h5py.Dataset)
                 and f[k].ndim == 1 and f[k].shape[0] == n]
    if columns is not None:
        unknown = [c for c in columns if c not in names]
        if unknown:
            raise ValueError(f"columns: {unknown} not in {path}; available catalog columns: {names}")
        names = list(columns)
    data = {name: _column_from_hdf5(group[name], group.get(name + _MISSING), index, n, path)
            for name in names}
    length = len(range(n)[index]) if isinstance(index, slice) else len(index)
    return pd.DataFrame(data, index=range(length))


def _column_from_hdf5(dataset: Any, missing: Any, index: Any, n: int, path: Path) -> pd.Series:
    if not isinstance(dataset, h5py.Dataset) or dataset.ndim != 1 or dataset.shape[0] < n:
        raise ValueError(f"columns: {dataset.name} in {path} is not a 1-D dataset of length {n}")
    if h5py.check_string_dtype(dataset.dtype) is None:
        return pd.Series(dataset[index])
    values = dataset.asstr()[index].astype(object)
    if isinstance(missing, h5py.Dataset):
        values[np.asarray(missing[index], bool)] = None
    elif "missing" in dataset.attrs:  # layout version 1
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
