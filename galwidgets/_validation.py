"""Input checks shared by the public functions.

Every public function validates its inputs here so that errors name the argument, say what was
expected and what came (see the "Errors" convention in the design notes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "as_bands", "as_images", "as_real_array", "band_index", "check_finite", "check_positive",
    "check_positive_int",
]


def as_real_array(data: Any, name: str) -> np.ndarray:
    """``data`` (a Survey, a torch tensor or array-like) as a real numeric numpy array, any shape.

    Raises ``TypeError`` naming ``name`` for non-numeric or complex input.
    """
    if hasattr(data, "read_images") and hasattr(data, "bands"):  # an on-disk SurveyStore
        raise TypeError(f"{name}: an on-disk SurveyStore is not read whole here; pass a part of it "
                        "(store[a:b] is a Survey) or use a function that streams stores")
    if hasattr(data, "images") and hasattr(data, "bands"):  # a Survey
        data = data.images
    if hasattr(data, "detach"):  # torch tensor
        data = data.detach().cpu()
        data = (data.float() if str(data.dtype) == "torch.bfloat16" else data).numpy()  # numpy has no bf16
    try:
        arr = np.asarray(data)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name}: expected an array, got {type(data).__name__}") from exc
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name}: expected a real numeric array, got dtype {arr.dtype}")
    return arr


def as_images(
    images: Any, name: str = "images", *, allow_nan: bool = False, channels: int | None = None
) -> np.ndarray:
    """Return ``images`` as a float32 array shaped ``(N, C, H, W)``.

    Parameters
    ----------
    images : array_like or torch.Tensor
        Flux images.
    name : str
        Argument name used in error messages.
    allow_nan : bool
        Accept non-finite pixels (masked data) instead of raising.
    channels : int, optional
        Required number of channels (bands).

    Raises
    ------
    TypeError
        If ``images`` is not array-like or not numeric.
    ValueError
        If it is not 4-D, is empty, has the wrong number of channels or holds NaN/inf.
    """
    arr = as_real_array(images, name)
    if arr.ndim != 4:
        raise ValueError(
            f"{name}: expected a 4-D array shaped (N, C, H, W), got {arr.ndim}-D shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError(f"{name}: expected at least one image, got shape {arr.shape}")
    if channels is not None and arr.shape[1] != channels:
        raise ValueError(f"{name}: expected {channels} channels (bands), got {arr.shape[1]}")
    arr = arr.astype(np.float32, copy=False)
    if not allow_nan and not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise ValueError(f"{name}: expected finite pixel values, found {bad} NaN or infinite pixels")
    return arr


def as_bands(bands: Any, n_channels: int | None = None, name: str = "bands") -> tuple[str, ...]:
    """Return ``bands`` as a tuple of band names, checking it matches the channel count."""
    if isinstance(bands, str):
        bands = (bands,)
    if not isinstance(bands, Sequence) or not all(isinstance(b, str) for b in bands):
        raise TypeError(f"{name}: expected a sequence of band names such as ('g', 'r', 'z'), got {bands!r}")
    bands = tuple(bands)
    if len(bands) == 0 or len(set(bands)) != len(bands):
        raise ValueError(f"{name}: expected distinct, non-empty band names, got {bands!r}")
    if n_channels is not None and len(bands) != n_channels:
        raise ValueError(f"{name}: got {len(bands)} band names {bands!r} for {n_channels} image channels")
    return bands


def check_finite(value: Any, name: str, what: str = "a finite number") -> float:
    """Return ``value`` as a float, raising if it is not a finite real number (``what`` names it)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected {what}, got {type(value).__name__} {value!r}")
    if not np.isfinite(value):
        raise ValueError(f"{name}: expected {what}, got {value!r}")
    return float(value)


def check_positive(value: Any, name: str) -> float:
    """Return ``value`` as a float, raising if it is not a finite positive number."""
    value = check_finite(value, name, "a finite positive number")
    if value <= 0:
        raise ValueError(f"{name}: expected a finite positive number, got {value!r}")
    return value


def check_positive_int(value: Any, name: str) -> int:
    """Return ``value`` as an int, raising if it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected a positive integer, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def band_index(
    band: str | int | None, bands: Sequence[str] | None, n_channels: int, images: Any = None
) -> tuple[int, tuple[str, ...] | None]:
    """Channel index of the band to measure, and the band names.

    ``band`` is a name, a channel index (negative counts from the end) or None for ``"r"`` if
    present, else the middle band. ``bands`` defaults to a Survey ``images``' bands, else
    ``("g", "r", "z")`` for 3 channels; otherwise names are unknown (None) and only indices work.
    """
    if bands is None and hasattr(images, "bands") and hasattr(images, "images"):
        bands = images.bands
    if bands is None and n_channels == 3:
        bands = ("g", "r", "z")
    bands = None if bands is None else as_bands(bands, n_channels)
    if band is None:
        return (bands.index("r") if bands and "r" in bands else n_channels // 2), bands
    if isinstance(band, int | np.integer) and not isinstance(band, bool):
        if not -n_channels <= band < n_channels:
            raise ValueError(f"band: index {band} is out of range for {n_channels} channels")
        return int(band) % n_channels, bands
    if not isinstance(band, str):
        raise TypeError(f"band: expected a band name or channel index, got {type(band).__name__} {band!r}")
    if bands is None:
        raise ValueError(f"band: {band!r} given but the band names of these {n_channels}-channel images "
                         "are unknown; pass bands=... or a channel index")
    if band not in bands:
        raise ValueError(f"band: expected one of {bands} or a channel index, got {band!r}")
    return bands.index(band), bands
