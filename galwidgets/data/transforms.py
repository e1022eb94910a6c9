"""Normalizers: the only maps between flux images and the model space [-1, 1].

Each normalizer has ``forward(images)`` (flux → model space) and ``inverse(x)`` (model space →
flux), works on numpy arrays and torch tensors alike, and round-trips through a plain dict
(``to_config`` / :func:`normalizer_from_config`) so that checkpoints never pickle objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .noise import sky_noise

__all__ = ["AsinhStretch", "ClipMinMax", "Normalizer", "normalizer_from_config"]

ArrayLike = Any  # numpy.ndarray or torch.Tensor


def _per_channel(value: float | Sequence[float], like: ArrayLike) -> ArrayLike:
    """Broadcast a scalar or per-band sequence against (N, C, H, W) or (C, H, W) data."""
    arr = np.atleast_1d(np.asarray(value, dtype=np.float32))
    arr = arr.reshape(-1, 1, 1) if arr.size > 1 else arr.reshape(())
    if isinstance(like, torch.Tensor):
        return torch.as_tensor(arr, dtype=like.dtype, device=like.device)
    return arr


def _lib(x: ArrayLike):
    return torch if isinstance(x, torch.Tensor) else np


def _like(result: ArrayLike, like: ArrayLike) -> ArrayLike:
    """Return ``result`` with the floating dtype of ``like`` (numpy scalars would upcast)."""
    if isinstance(like, torch.Tensor):
        return result.to(like.dtype if like.is_floating_point() else torch.float32)
    dtype = like.dtype if np.issubdtype(like.dtype, np.floating) else np.float32
    return np.asarray(result, dtype=dtype)


class Normalizer:
    """Base class: subclasses implement ``forward`` and ``inverse`` and list their parameters."""

    params: tuple[str, ...] = ()

    def forward(self, images: ArrayLike) -> ArrayLike:
        raise NotImplementedError

    def inverse(self, x: ArrayLike) -> ArrayLike:
        raise NotImplementedError

    def to_config(self) -> dict:
        """Plain-data description, e.g. ``{"name": "ClipMinMax", "clip": 5.5}``."""
        config: dict[str, Any] = {"name": type(self).__name__}
        for key in self.params:
            value = getattr(self, key)
            config[key] = list(value) if isinstance(value, (tuple, list)) else value
        return config

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.params)
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Normalizer) and self.to_config() == other.to_config()

    __hash__ = None  # mutable-free but compared by value


def _check_scale(value: float | Sequence[float], name: str) -> float | tuple[float, ...]:
    values = np.atleast_1d(np.asarray(value, dtype=float))
    if values.ndim != 1 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"{name}: expected a positive number or one per band, got {value!r}")
    return float(values[0]) if np.ndim(value) == 0 else tuple(float(v) for v in values)


class ClipMinMax(Normalizer):
    """Clip flux to ``[0, clip]`` and map linearly to ``[-1, 1]`` (Smith et al. 2022, §2.2).

    Parameters
    ----------
    clip : float or sequence of float
        Upper flux limit ``A`` (per band if a sequence). Negative flux (sky noise) clips to -1.

    Notes
    -----
    ``inverse(forward(x)) == x`` for ``0 <= x <= clip``; values outside are clipped.
    """

    params = ("clip",)

    def __init__(self, clip: float | Sequence[float] = 5.5) -> None:
        self.clip = _check_scale(clip, "clip")

    def forward(self, images: ArrayLike) -> ArrayLike:
        a = _per_channel(self.clip, images)
        return _like(2 * _lib(images).clip(images, 0 * a, a) / a - 1, images)

    def inverse(self, x: ArrayLike) -> ArrayLike:
        a = _per_channel(self.clip, x)
        return _like((_lib(x).clip(x, -1, 1) + 1) / 2 * a, x)


class AsinhStretch(Normalizer):
    """Arcsinh stretch of Lupton, Gunn & Szalay (1999), scaled so that the sky sits at 0.

    ``x = asinh(f / softening) / asinh(upper / softening)`` is linear for fluxes below
    ``softening`` (near the sky noise) and logarithmic above, so faint outskirts and bright cores
    share the model's dynamic range. Flux is clipped to ``[lower * softening, upper]``: ``upper``
    maps to 1, zero flux (the sky) to 0 and the negative sky noise to small negative values, all
    within ``[-1, 1]``.

    Notes
    -----
    Keeping the sky at 0 matters for sampling. At low signal-to-noise the ε-prediction's estimate
    of x_0 is unreliable and samplers clip it to ``[-1, 1]``; clipping pulls towards 0, so 0 must
    be the most common value of the data. With the sky at -1 (as :class:`ClipMinMax` does), DDIM
    samples of a model trained for this project came out with a background 0.3 too bright.

    Parameters
    ----------
    softening : float or sequence of float
        Flux where the stretch turns from linear to logarithmic, per band if a sequence; about the
        sky noise level.
    upper : float or sequence of float
        Flux mapped to 1.
    lower : float
        Lower clip in units of ``softening`` (negative: keeps the sky-noise distribution).
    """

    params = ("softening", "upper", "lower")

    def __init__(
        self,
        softening: float | Sequence[float] = 0.02,
        upper: float | Sequence[float] = 20.0,
        lower: float = -3.0,
    ) -> None:
        self.softening = _check_scale(softening, "softening")
        self.upper = _check_scale(upper, "upper")
        if not np.isfinite(lower) or lower >= 0:
            raise ValueError(f"lower: expected a negative number (units of softening), got {lower!r}")
        self.lower = float(lower)

    @classmethod
    def fit(cls, images: np.ndarray, border: int = 4, headroom: float = 2.0) -> AsinhStretch:
        """Choose per-band parameters from flux images.

        ``softening`` is the sky noise per band (:func:`galwidgets.data.noise.sky_noise` on the
        ``border``-pixel frame); ``upper`` is ``headroom`` times the brightest pixel per band, so
        generated cores can exceed the training set a little.
        """
        images = np.asarray(images, dtype=np.float32)
        sigma = np.maximum(sky_noise(images, border), 1e-6)
        peak = np.maximum(images.max(axis=(0, 2, 3)), 10 * sigma) * headroom
        return cls(
            softening=[float(f"{v:.3g}") for v in sigma],
            upper=[float(f"{v:.3g}") for v in peak],
        )

    def _scales(self, like: ArrayLike):
        s = _per_channel(self.softening, like)
        return s, _lib(like).arcsinh(_per_channel(self.upper, like) / s)

    def forward(self, images: ArrayLike) -> ArrayLike:
        s, top = self._scales(images)
        lib = _lib(images)
        y = lib.arcsinh(lib.clip(images, self.lower * s, _per_channel(self.upper, images)) / s)
        return _like(y / top, images)

    def inverse(self, x: ArrayLike) -> ArrayLike:
        s, top = self._scales(x)
        lib = _lib(x)
        return _like(lib.sinh(lib.clip(x, -1, 1) * top) * s, x)


_NORMALIZERS = {cls.__name__: cls for cls in (ClipMinMax, AsinhStretch)}


def normalizer_from_config(config: dict) -> Normalizer:
    """Rebuild a normalizer from :meth:`Normalizer.to_config` output."""
    if not isinstance(config, dict) or config.get("name") not in _NORMALIZERS:
        raise ValueError(
            f"config: expected a normalizer config with name in {sorted(_NORMALIZERS)}, got {config!r}"
        )
    kwargs = {k: v for k, v in config.items() if k != "name"}
    return _NORMALIZERS[config["name"]](**kwargs)
