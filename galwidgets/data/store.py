"""Surveys too large for memory: :class:`SurveyStore`, a chunked, compressed HDF5 file read lazily.

Smith et al. (2022) trained on 306,006 DESI galaxies at 256×256 and Li et al. (2024) on 204,513
HSC galaxies: at 256×256×3 in float32 that is 240 GB, far beyond the memory of a GPU JupyterHub.
A store holds such a survey on disk, in the HDF5 layout of :mod:`galwidgets.data.hdf5` (the one
``Survey.save("x.h5")`` writes, so every such file opens as a store):

>>> store = gw.data.open_store("mock.h5")         # reads only the calibration
>>> len(store), store.bands, store.size
>>> store.catalog                                  # every catalog column, no image read
>>> batch = store[1000:1064]                       # a Survey of those 64 galaxies
>>> for part in store.chunks(4096): ...            # the whole survey, a Survey at a time

Why HDF5 (through h5py) and not Zarr
------------------------------------
Training reads random batches, so the image dataset is chunked **one galaxy per chunk**: a batch
reads and decompresses exactly its galaxies, whatever its composition (a 64-galaxy chunk would
decompress 64 galaxies for each one wanted). In HDF5 those chunks live in *one file* with a B-tree
index that each reader process caches, so many DataLoader workers each open the file read-only
and read with ``pread`` independently, without locks between them, and the store copies, moves
and stages to a node's scratch disk like any file. Zarr keeps one file (or object) per chunk:
200,000 galaxies would be 200,000 files, which parallel file systems and home-directory quotas of
JupyterHubs handle badly (Zarr v3 sharding groups them, at the cost of a second index level and a
dependency galwidgets does not otherwise need; h5py is already one). Zarr's strength, concurrent
writers and object stores, is not what a training loop needs. Measured here (``BENCHMARKS.md``): a
random 64-galaxy batch of 64×64×3 galaxies read at 0.33 ms per galaxy in one process.

Writing is incremental and survives interruption: :meth:`SurveyStore.append` commits whole
chunks (see :mod:`galwidgets.data.hdf5`, "Appending and interrupted writes"), so a writer killed
with ``kill -9`` leaves every complete chunk readable and nothing half-counted; writers built on it
(``simulate_survey(..., out=)`` through :func:`render_to_store`, ``load_fits_cutouts(..., out=)``)
resume where they stopped.

A store is sent to worker processes (DataLoader workers, the process pool, dask) by its path; each
process opens its own read-only handle on first use.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from .._io import to_jsonable
from .._parallel import check_jobs, imap_chunks
from .._validation import check_positive_int
from .hdf5 import (
    HDF5_FORMAT,
    EncodedImages,
    _file_bands,
    _mask_nonfinite,
    append_hdf5_rows,
    catalog_schema,
    committed_rows,
    create_hdf5_layout,
    dataset_compression,
    discard_uncommitted,
    encode_images,
    read_hdf5_meta,
    stored_columns,
)
from .render import render_catalog
from .surveys import Survey

__all__ = ["STORE_CHUNK", "SurveyStore", "is_store", "open_store", "render_to_store"]

PathLike = str | os.PathLike

#: Galaxies per piece when a store is read or written piece by piece (~50 MB of 64×64×3 images).
STORE_CHUNK = 4096

_MODES = ("r", "a")


def is_store(data: Any) -> bool:
    """Whether ``data`` is a :class:`SurveyStore` (metrics and trainers stream those)."""
    return isinstance(data, SurveyStore)


class SurveyStore:
    """A survey on disk: flux images ``(N, C, H, W)``, catalog and calibration, read lazily.

    Open one with :func:`open_store`, create one with :meth:`create`, ``Survey.save("x.h5")`` or
    a writer (``simulate_survey(..., out=)``, :func:`render_to_store`, ``load_fits_cutouts(..., out=)``).

    Attributes
    ----------
    path : pathlib.Path
        The HDF5 file.
    bands : tuple of str
        Band of each channel, bluest first.
    pixel_scale, zeropoint : float
        Arcsec per pixel; AB zeropoint of the flux unit.
    psf_fwhm : dict or None
        PSF FWHM per band (arcsec).
    meta : dict
        Provenance of the whole store.

    Notes
    -----
    ``len(store)`` counts the complete galaxies; indexing (an integer, a slice, integer indices
    in any order or a boolean mask) reads only those and returns a :class:`Survey`.
    """

    def __init__(self, path: PathLike, mode: str = "r") -> None:
        if mode not in _MODES:
            raise ValueError(f"mode: expected 'r' (read) or 'a' (read and append), got {mode!r}")
        self.path = Path(path)
        self._mode = mode
        self._file: h5py.File | None = None
        self._pid = -1
        self._catalog: pd.DataFrame | None = None
        f = self._handle()
        self._read_header(f)

    # -- opening -------------------------------------------------------------------------------
    def _handle(self) -> h5py.File:
        """This process's open file (reopened after a fork: HDF5 handles do not cross processes)."""
        if self._file is not None and self._pid == os.getpid() and self._file.id.valid:
            return self._file
        self._file = _open_file(self.path, self._mode)
        self._pid = os.getpid()
        if self._mode == "a":
            discard_uncommitted(self._file)
        return self._file

    def _read_header(self, f: h5py.File) -> None:
        images = f.get("images")
        if not isinstance(images, h5py.Dataset) or images.ndim != 4:
            found = [k for k in f if isinstance(f[k], h5py.Dataset)]
            raise ValueError(f"path: {self.path} is not a galwidgets survey store (no (N, C, H, W) 'images' "
                             f"dataset; datasets: {found})")
        missing = [a for a in ("bands", "pixel_scale", "zeropoint") if a not in f.attrs]
        if missing:
            raise ValueError(f"path: {self.path} lacks the attributes {missing} of a survey store; read it "
                             "with gw.data.load_hdf5(path, bands=..., pixel_scale=..., zeropoint=...)")
        self.image_shape = tuple(int(v) for v in images.shape[1:])
        self.bands = _file_bands(f.attrs["bands"])
        if len(self.bands) != self.image_shape[0]:
            raise ValueError(f"path: {self.path} names {len(self.bands)} bands {self.bands} for "
                             f"{self.image_shape[0]} image channels")
        self.pixel_scale = float(f.attrs["pixel_scale"])
        self.zeropoint = float(f.attrs["zeropoint"])
        psf = f.attrs.get("psf_fwhm")
        self.psf_fwhm = None if psf is None else {b: float(v) for b, v in json.loads(psf).items()}
        self.meta = read_hdf5_meta(f)

    def close(self) -> None:
        """Close the file (it reopens on next use)."""
        if self._file is not None and self._pid == os.getpid() and self._file.id.valid:
            self._file.close()
        self._file = None

    def __enter__(self) -> SurveyStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        if self._mode != "r":
            raise TypeError(f"store: {self.path} is open for writing and cannot be sent to another "
                            "process; open it there with gw.data.open_store(path)")
        return {"path": str(self.path)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])

    # -- container behaviour -------------------------------------------------------------------
    def __len__(self) -> int:
        return committed_rows(self._handle())

    @property
    def size(self) -> int:
        """Cutout side in pixels."""
        return self.image_shape[-1]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(N, C, H, W)`` of the complete galaxies."""
        return (len(self), *self.image_shape)

    @property
    def writable(self) -> bool:
        return self._mode == "a"

    @property
    def compression(self) -> str | bool | None:
        """Filter of the image chunks: ``"lzf"``, ``"gzip"``, None, or False for another one."""
        return dataset_compression(self._handle()["images"])

    def __repr__(self) -> str:
        _, h, w = self.image_shape
        return (f"SurveyStore({str(self.path)!r}: {len(self)} galaxies, bands={''.join(self.bands)}, "
                f'{h}x{w} px at {self.pixel_scale:g}"/px, zeropoint={self.zeropoint:g})')

    @property
    def catalog(self) -> pd.DataFrame:
        """The whole catalog (no image is read); cached until the next append."""
        if self._catalog is None:
            self._catalog = self._read_catalog(slice(0, len(self)))
        return self._catalog

    @property
    def dropped(self) -> pd.DataFrame:
        """Inputs a writer could not use, with the reason (``index``, ``source``, ``reason``)."""
        group = self._handle().get("dropped")
        if not isinstance(group, h5py.Group):
            return pd.DataFrame({"index": pd.Series(dtype=np.int64), "source": pd.Series(dtype=str),
                                 "reason": pd.Series(dtype=str)})
        return pd.DataFrame({"index": group["index"][:], "source": group["source"].asstr()[:],
                             "reason": group["reason"].asstr()[:]})

    def _read_catalog(self, rows: slice | np.ndarray) -> pd.DataFrame:
        f = self._handle()
        group = f.get("catalog")
        columns = stored_columns(f)
        data = {}
        for name, kind in columns.items():
            dataset = group[name]
            if kind.startswith("str:"):
                values = dataset.asstr()[rows].astype(object)
                missing = group.get(name + "__missing")
                if isinstance(missing, h5py.Dataset):
                    values[np.asarray(missing[rows], bool)] = None
                data[name] = pd.Series(values, dtype=kind[len("str:"):])
            else:
                data[name] = pd.Series(dataset[rows])
        length = len(range(len(self))[rows]) if isinstance(rows, slice) else len(rows)
        return pd.DataFrame(data, index=range(length))

    def _rows(self, index: Any) -> slice | np.ndarray:
        """``index`` as a slice with step 1, or an integer array of rows in ``[0, N)``."""
        n = len(self)
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            if not -n <= index < n:
                raise IndexError(f"index: {index} is out of range for a store of {n} galaxies")
            index = int(index) % n
            return slice(index, index + 1)
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            return slice(start, max(start, stop)) if step == 1 else np.arange(start, stop, step)
        rows = np.asarray(index)
        if rows.dtype == bool:
            if rows.shape != (n,):
                raise IndexError(f"index: a boolean mask needs one entry per galaxy ({n}), got {rows.shape}")
            return np.flatnonzero(rows)
        if rows.ndim != 1 or (rows.size and not np.issubdtype(rows.dtype, np.integer)):
            raise IndexError("index: expected an integer, a slice, integer indices or a boolean mask, "
                             f"got {index!r}")
        if rows.size and (rows.min() < -n or rows.max() >= n):
            raise IndexError(f"index: indices must lie in [-{n}, {n}), got {rows.min()}..{rows.max()}")
        return rows.astype(np.int64) % max(n, 1)

    def read_images(self, index: Any) -> np.ndarray:
        """Flux images ``(k, C, H, W)`` of the galaxies ``index`` selects, in that order (float32).

        Scattered rows are read one chunk (galaxy) each, runs of consecutive rows as one slice;
        repeated rows are read once.
        """
        rows = self._rows(index)
        dataset = self._handle()["images"]
        if isinstance(rows, slice):
            return np.asarray(dataset[rows], dtype=np.float32)
        unique, inverse = np.unique(rows, return_inverse=True)
        out = np.empty((len(unique), *self.image_shape), np.float32)
        breaks = np.flatnonzero(np.diff(unique) != 1) + 1
        start = 0
        for run in np.split(np.arange(len(unique)), breaks):
            if len(run) == 0:
                continue
            lo, hi = unique[run[0]], unique[run[-1]] + 1
            out[start:start + len(run)] = dataset[lo:hi] if len(run) > 1 else dataset[lo][None]
            start += len(run)
        return out if len(unique) == len(rows) and np.array_equal(unique, rows) else out[inverse]

    def __getitem__(self, index: Any) -> Survey:
        """The galaxies ``index`` selects (integer, slice, indices or mask) as an in-memory Survey."""
        rows = self._rows(index)
        if isinstance(rows, slice):
            images, catalog = self.read_images(rows), self._read_catalog(rows)
        else:
            images = self.read_images(rows)
            catalog = self.catalog.iloc[rows].reset_index(drop=True) if len(rows) else \
                self.catalog.iloc[:0]
        if len(images) == 0:
            raise IndexError(f"index: {index!r} selects no galaxy of {len(self)}")
        return self._survey(images, catalog)

    def _survey(self, images: np.ndarray, catalog: pd.DataFrame) -> Survey:
        meta = dict(self.meta)
        _mask_nonfinite(images, catalog, meta, self.path)
        return Survey(images=images, catalog=catalog, bands=self.bands, pixel_scale=self.pixel_scale,
                      zeropoint=self.zeropoint, psf_fwhm=self.psf_fwhm, meta=meta)

    def chunks(self, chunk_size: int = STORE_CHUNK, start: int = 0,
               stop: int | None = None) -> Iterator[Survey]:
        """The galaxies ``start:stop`` in order, as Surveys of at most ``chunk_size`` galaxies.

        The streaming metrics (``gw.metrics.photometry(store)`` and others) read a store this way, so
        their memory is that of one chunk whatever the size of the store.
        """
        chunk_size = check_positive_int(chunk_size, "chunk_size")
        stop = len(self) if stop is None else min(stop, len(self))
        for lo in range(start, stop, chunk_size):
            yield self[lo:min(lo + chunk_size, stop)]

    def load(self) -> Survey:
        """Every galaxy in memory, as a Survey (for stores that fit)."""
        return self[:]

    # -- writing -------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: PathLike,
        template: Survey,
        *,
        meta: Mapping[str, Any] | None = None,
        catalog: pd.DataFrame | None = None,
        compression: str | None = "lzf",
        overwrite: bool = False,
    ) -> SurveyStore:
        """An empty store, open for appending, for galaxies like ``template``.

        Parameters
        ----------
        path : str or path-like
            The new HDF5 file (``.h5``).
        template : Survey
            Gives the bands, cutout shape, pixel scale, zeropoint, PSF widths, the catalog columns
            and their types; none of its galaxies is written.
        meta : dict, optional
            Provenance of the store; default ``template.meta``.
        catalog : pandas.DataFrame, optional
            Catalog whose columns and types the store takes, instead of ``template.catalog``.
        compression : {"lzf", "gzip"} or None
            Filter of the image chunks (byte-shuffled first). LZF (the default) costs under half
            of gzip's time for a store 7 % larger than gzip's 13 % saving on noise-limited images,
            which keeps writing at the pace of rendering; gzip (level 1) is in every HDF5 build, so
            any HDF5 tool reads such a store (LZF needs h5py or the HDF5 LZF plugin).
        overwrite : bool
            Replace an existing file.
        """
        if not isinstance(template, Survey):
            raise TypeError(f"template: expected a galwidgets Survey, got {type(template).__name__}")
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"path: {path} exists; open it with gw.data.open_store(path, mode='a') to "
                                  "append, or pass overwrite=True")
        schema = catalog_schema(template.catalog if catalog is None else catalog,
                                "template.catalog" if catalog is None else "catalog")
        tmp = path.with_name(f".{path.name}.creating")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with h5py.File(tmp, "w") as f:
                create_hdf5_layout(
                    f, image_shape=tuple(template.images.shape[1:]), bands=template.bands,
                    pixel_scale=template.pixel_scale, zeropoint=template.zeropoint,
                    psf_fwhm=template.psf_fwhm, meta=template.meta if meta is None else meta,
                    schema=schema, compression=compression)
            os.replace(tmp, path)
        except OSError as exc:
            raise _disk_error(exc, path, 0) from exc
        finally:
            tmp.unlink(missing_ok=True)
        return cls(path, mode="a")

    def append(self, survey: Survey) -> SurveyStore:
        """Add the galaxies of ``survey`` at the end, committed together; returns the store.

        The survey must have the store's bands, cutout size, pixel scale, zeropoint and catalog
        columns. An interruption leaves the store as it was before the call; a full disk raises
        ``OSError`` after discarding the partial write, with the store intact.

        Raises
        ------
        ValueError
            If the survey does not match the store (the message names what differs), or the store
            is open read-only.
        """
        if self._mode != "a":
            raise ValueError(f"store: {self.path} is open read-only; open it with "
                             "gw.data.open_store(path, mode='a') to append")
        if not isinstance(survey, Survey):
            raise TypeError(f"survey: expected a galwidgets Survey, got {type(survey).__name__}")
        self._check_compatible(survey)
        return self._append(survey.images, survey.catalog, survey.images.nbytes)

    def append_encoded(self, images: EncodedImages, catalog: pd.DataFrame) -> SurveyStore:
        """Add galaxies whose image chunks were encoded elsewhere
        (:func:`~galwidgets.data.hdf5.encode_images`, e.g. by the processes that rendered them),
        committed together like :meth:`append`."""
        if self._mode != "a":
            raise ValueError(f"store: {self.path} is open read-only; open it with "
                             "gw.data.open_store(path, mode='a') to append")
        return self._append(images, catalog.reset_index(drop=True), images.nbytes)

    def _append(self, images: np.ndarray | EncodedImages, catalog: pd.DataFrame, nbytes: int) -> SurveyStore:
        f = self._handle()
        n = committed_rows(f)
        _check_free_space(self.path, nbytes + int(catalog.memory_usage(deep=True).sum()), n)
        try:
            append_hdf5_rows(f, images, catalog, argument="survey.catalog")
        except OSError as exc:
            self._recover()
            raise _disk_error(exc, self.path, n) from exc
        self._catalog = None
        return self

    def _check_compatible(self, survey: Survey) -> None:
        checks = [("bands", tuple(survey.bands), self.bands),
                  ("cutout shape (C, H, W)", tuple(survey.images.shape[1:]), self.image_shape),
                  ("pixel scale", survey.pixel_scale, self.pixel_scale),
                  ("zeropoint", survey.zeropoint, self.zeropoint)]
        for what, got, expected in checks:
            if got != expected:
                raise ValueError(f"survey: has {what} {got}, the store {self.path.name} {expected}")

    def _recover(self) -> None:
        """After a failed write: drop this process's handle and, where the disk lets it, the
        uncommitted rows (otherwise the next writer discards them; readers never see them)."""
        for step in (self.close, self._handle):
            try:
                step()
            except Exception:  # the full disk may fail these again; n_rows still holds
                self._file = None
        self._catalog = None

    @property
    def writer_state(self) -> dict[str, Any]:
        """What the writer filling this store recorded to resume (e.g. ``{"entries_done": 1000}``)."""
        value = self._handle().attrs.get("writer_state")
        return {} if value is None else json.loads(value)

    def set_writer_state(self, **state: Any) -> None:
        """Update :attr:`writer_state` (flushed at once)."""
        if self._mode != "a":
            raise ValueError(f"store: {self.path} is open read-only")
        f = self._handle()
        f.attrs["writer_state"] = json.dumps(to_jsonable({**self.writer_state, **state}))
        f.flush()

    def truncate_dropped(self, start: int) -> None:
        """Forget the dropped-input records of inputs ``start`` and later (they will be read again)."""
        group = self._handle().get("dropped")
        if not isinstance(group, h5py.Group):
            return
        keep = int(np.searchsorted(group["index"][:], start))
        if keep < group["index"].shape[0]:
            for name in ("index", "source", "reason"):
                group[name].resize(keep, axis=0)
            self._file.flush()

    def add_dropped(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Record inputs a writer could not use: ``{"index": int, "source": str, "reason": str}`` each."""
        if not records:
            return
        f = self._handle()
        group = f.get("dropped")
        if group is None:
            group = f.create_group("dropped")
            group.create_dataset("index", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(1024,))
            for name in ("source", "reason"):
                group.create_dataset(name, shape=(0,), maxshape=(None,), dtype=h5py.string_dtype(),
                                     chunks=(1024,))
        n, k = group["index"].shape[0], len(records)
        for name in ("index", "source", "reason"):
            group[name].resize(n + k, axis=0)
        group["index"][n:] = [int(r["index"]) for r in records]
        group["source"][n:] = [str(r.get("source", "")) for r in records]
        group["reason"][n:] = [str(r["reason"]) for r in records]
        f.flush()


def _open_file(path: Path, mode: str) -> h5py.File:
    """The HDF5 file, with errors that say what is wrong with it."""
    if not path.is_file():
        raise FileNotFoundError(f"path: no survey store at {path}")
    try:
        f = h5py.File(path, "r" if mode == "r" else "r+")
    except OSError as exc:
        text = str(exc)
        if "already open" in text:
            raise OSError(f"path: {path} is already open read-only in this process; close() the other "
                          "SurveyStore (or h5py.File) of it before opening it for appending") from exc
        if "unable to lock" in text.lower():
            raise OSError(f"path: {path} is open for writing in another process (HDF5 file lock: {text}); "
                          "open it when the writer is done") from exc
        raise ValueError(f"path: {path} is not a readable HDF5 survey store ({text}); it may be truncated "
                         "or another kind of file") from exc
    fmt = f.attrs.get("format")
    if fmt is not None and (fmt.decode() if isinstance(fmt, bytes) else str(fmt)) != HDF5_FORMAT:
        f.close()
        raise ValueError(f"path: {path} has format {fmt!r}, not a galwidgets survey store")
    return f


def _check_free_space(path: Path, nbytes: int, kept: int) -> None:
    """Refuse a write that cannot fit before HDF5 starts it, so the store stays as it is.

    HDF5 does not undo a write that fails half-way: with a full disk, the flush that fails may still
    update the file's end-of-file record, after which the file no longer opens. So the free space of
    the file system (``statvfs``) and the process's file-size limit (``RLIMIT_FSIZE``) are checked
    against the next chunk (uncompressed size, 5 % and 1 MB to spare) first. A disk quota below the
    free space is not seen here: keep such stores where the quota leaves room.
    """
    needed = int(nbytes * 1.05) + 1_000_000
    message = (f"the store keeps its first {kept} complete galaxies; free space and run the same command "
               "again to resume")
    stat = os.statvfs(path.parent)
    free = stat.f_bavail * stat.f_frsize
    if free < needed:
        raise _os_error(errno.ENOSPC, f"out: the disk is full: the disk holding {path} has "
                        f"{free / 1e6:.1f} MB free, less than the {needed / 1e6:.1f} MB the next chunk may "
                        f"need; {message}")
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    except (ImportError, OSError):  # pragma: no cover - Windows
        return
    if limit != resource.RLIM_INFINITY and path.stat().st_size + needed > limit:
        raise _os_error(errno.EFBIG, f"out: the disk is full for this process: {path} would pass the "
                        f"file-size limit of {limit / 1e6:.1f} MB (ulimit -f) with the next chunk; {message}")


def _os_error(code: int, message: str) -> OSError:
    """An OSError whose text is ``message`` alone (``OSError(code, message)`` prefixes ``[Errno n]``)."""
    error = OSError(message)
    error.errno = code
    return error


def _disk_error(exc: OSError, path: Path, kept: int) -> OSError:
    """An OSError that says the store keeps its complete galaxies (and whether the disk was full)."""
    text = str(exc)
    full = getattr(exc, "errno", None) in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) or any(
        s in text.lower() for s in ("no space", "file too large", "quota", "errno = 28", "errno = 27"))
    what = "the disk is full (or a file-size limit or quota was reached)" if full else "writing failed"
    return _os_error(errno.ENOSPC if full else getattr(exc, "errno", None) or errno.EIO,
                     f"out: {what} while writing {path} ({text}); the store keeps its first {kept} complete "
                     "galaxies and nothing of the failed chunk; free space and run the same command again "
                     "to resume")


def open_store(path: PathLike, mode: str = "r") -> SurveyStore:
    """Open a survey store (or any file written by ``Survey.save("x.h5")``) without reading its images.

    Parameters
    ----------
    path : str or path-like
        The HDF5 file.
    mode : {"r", "a"}
        Read only (default; safe to share between processes), or also append
        (:meth:`SurveyStore.append`); opening for appending discards the rows an interrupted
        writer left uncommitted.

    Returns
    -------
    SurveyStore
        ``len(store)``, ``store[a:b]`` (a Survey), ``store.catalog``, ``store.bands``, ...

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a readable HDF5 survey store (corrupt, truncated, another format).
    OSError
        If another process is writing it.
    """
    return SurveyStore(path, mode)


# -- rendering a truth catalog straight into a store -----------------------------------------------
def _fingerprint(catalog: pd.DataFrame, settings: Mapping[str, Any]) -> str:
    """A hash of the catalog and render settings: a store resumes only the job that made it."""
    digest = hashlib.sha256(json.dumps(to_jsonable(dict(settings)), sort_keys=True).encode())
    digest.update(json.dumps(list(map(str, catalog.columns))).encode())
    digest.update(pd.util.hash_pandas_object(catalog, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def render_to_store(
    catalog: pd.DataFrame,
    out: PathLike,
    *,
    bands: Sequence[str],
    size: int,
    pixel_scale: float,
    zeropoint: float,
    psf_fwhm: Mapping[str, float] | None = None,
    meta: Mapping[str, Any] | None = None,
    chunk_size: int | None = None,
    commit_size: int = 1024,
    n_jobs: int | None = None,
    overwrite: bool = False,
    compression: str | None = "lzf",
    progress: bool = True,
    **render_kwargs: Any,
) -> SurveyStore:
    """Render a truth catalog chunk by chunk straight into a store, resuming an interrupted run.

    Each galaxy's image depends only on its own catalog row (its ``render_seed``), so rendering in
    chunks, in any number of processes, or in two runs either side of an interruption, gives the
    same store as one uninterrupted run (and the same images as
    :func:`~galwidgets.data.render.render_catalog` in memory). Memory holds the catalog and a few
    chunks in flight, never the whole survey.

    Parameters
    ----------
    catalog : pandas.DataFrame
        Truth catalog as :func:`~galwidgets.data.render.render_catalog` takes it; it becomes the
        store's catalog.
    out : str or path-like
        The store (``.h5``). If it exists and was written by the same call (same catalog and
        settings, recorded as a fingerprint in its meta), rendering resumes after its last complete
        chunk; if it holds something else, ``ValueError`` (unless ``overwrite``).
    bands, size, pixel_scale, zeropoint
        As :func:`~galwidgets.data.render.render_catalog`.
    psf_fwhm : dict, optional
        PSF FWHM per band recorded as the store's calibration (as ``Survey.psf_fwhm``).
    meta : dict, optional
        Provenance recorded in the store.
    chunk_size : int, optional
        Galaxies rendered and committed together; default as ``render_catalog`` splits its work
        (a quarter of each process's share, between 8 and 256).
    commit_size : int
        Galaxies (at least; whole pieces) committed together: an interruption loses at most this
        many, and fewer commits keep the writing process's share of the CPU small.
    n_jobs : int, optional
        Rendering processes; default 1 below 500 galaxies, else all usable CPUs.
    overwrite : bool
        Start again even if ``out`` holds another survey.
    compression : {"lzf", "gzip"} or None
        See :meth:`SurveyStore.create`; the rendering processes also compress, so the writing
        process only copies bytes.
    progress : bool
        Show a progress bar.
    **render_kwargs
        ``psf_profile``, ``psf``, ``contaminants``, ``sky_sigma``, ``poisson_gain`` of
        :func:`~galwidgets.data.render.render_catalog`.

    Returns
    -------
    SurveyStore
        The complete store, open read-only.
    """
    if not isinstance(catalog, pd.DataFrame) or len(catalog) == 0:
        raise TypeError(f"catalog: expected a non-empty pandas DataFrame, got {type(catalog).__name__}")
    if chunk_size is not None:
        chunk_size = check_positive_int(chunk_size, "chunk_size")
    commit_size = check_positive_int(commit_size, "commit_size")
    out = Path(out)
    catalog = catalog.reset_index(drop=True)
    settings = {"bands": list(bands), "size": int(size), "pixel_scale": float(pixel_scale),
                "zeropoint": float(zeropoint),
                **{k: np.asarray(v).tolist() if isinstance(v, np.ndarray) else v
                   for k, v in render_kwargs.items()}}
    fingerprint = _fingerprint(catalog, settings)
    store = _resumable_store(out, fingerprint, overwrite, len(catalog))
    if store is not None and not store.writable:
        return store
    if store is None:
        template = Survey(images=np.zeros((1, len(bands), size, size), np.float32), catalog=None,
                          bands=tuple(bands), pixel_scale=pixel_scale, zeropoint=zeropoint, psf_fwhm=psf_fwhm)
        store_meta = {**dict(meta or {}), "render_fingerprint": fingerprint, "n_planned": len(catalog)}
        store = SurveyStore.create(out, template, meta=store_meta, catalog=catalog, compression=compression,
                                   overwrite=True)
    done = len(store)
    if done > len(catalog):
        raise ValueError(f"out: {out} holds {done} galaxies, more than the {len(catalog)} of the catalog")
    jobs = check_jobs(n_jobs, len(catalog) - done, min_items=500)
    chunk_size = chunk_size or max(8, min(256, math.ceil((len(catalog) - done) / (4 * jobs))))
    starts = range(done, len(catalog), chunk_size)
    render = partial(_render_encoded, compression=store.compression,
                     render=partial(render_catalog, bands=tuple(bands), size=int(size),
                                    pixel_scale=float(pixel_scale), zeropoint=float(zeropoint), n_jobs=1,
                                    progress=False, **render_kwargs))
    pieces = (catalog.iloc[lo:lo + chunk_size] for lo in starts)
    results = imap_chunks(render, pieces, n_jobs=jobs, progress=progress, total=len(catalog) - done,
                          desc="rendering into store", max_pending=4 * jobs)
    pending: list = []  # rendered pieces not yet committed
    for lo, images in zip(starts, results):
        pending.append((lo, images))
        if sum(len(p) for _, p in pending) >= commit_size or lo + len(images) >= len(catalog):
            _commit(store, catalog, pending)
            pending = []
    store.close()
    return open_store(out)


def _commit(store: SurveyStore, catalog: pd.DataFrame, pieces: list) -> None:
    """Append consecutive rendered pieces ``(first row, images)`` to the store as one commit."""
    lo, hi = pieces[0][0], pieces[-1][0] + len(pieces[-1][1])
    rows = catalog.iloc[lo:hi]
    if isinstance(pieces[0][1], EncodedImages):
        chunks = [chunk for _, piece in pieces for chunk in piece.chunks]
        store.append_encoded(EncodedImages(chunks, pieces[0][1].shape, pieces[0][1].compression), rows)
    else:
        store.append(Survey(images=np.concatenate([piece for _, piece in pieces]),
                            catalog=rows.reset_index(drop=True), bands=store.bands,
                            pixel_scale=store.pixel_scale, zeropoint=store.zeropoint,
                            psf_fwhm=store.psf_fwhm))


def _render_encoded(catalog: pd.DataFrame, render: Any,
                    compression: str | bool | None) -> np.ndarray | EncodedImages:
    """Render catalog rows and, in the same (worker) process, encode them as the store's chunks."""
    images = render(catalog)
    if compression is False:  # a filter of another writer: the main process writes through h5py
        return images
    if not np.isfinite(images).all():
        raise ValueError("catalog: rendering gave non-finite pixels")
    return encode_images(images, compression)


def _resumable_store(out: Path, fingerprint: str, overwrite: bool, n_planned: int) -> SurveyStore | None:
    """The existing store at ``out`` if it is the same job (read-only when complete, else open for
    appending); None to start anew."""
    if not out.exists() or overwrite:
        return None
    store = open_store(out)
    if store.meta.get("render_fingerprint") != fingerprint:
        store.close()
        raise ValueError(f"out: {out} exists and holds another survey (other catalog or render settings); "
                         "pass overwrite=True to replace it, or another path")
    if len(store) >= n_planned:
        return store
    store.close()
    return open_store(out, mode="a")
