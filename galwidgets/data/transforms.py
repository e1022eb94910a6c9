"""Normalizers: the only maps between flux images and the model space [-1, 1].

Each normalizer has ``forward(images)`` (flux → model space) and ``inverse(x)`` (model space →
flux), works on numpy arrays and torch tensors alike, and round-trips through a plain dict
(``to_config`` / :func:`normalizer_from_config`) so that checkpoints never pickle objects.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import as_images
from .noise import sky_noise

__all__ = ["AsinhStretch", "ClipMinMax", "Normalizer", "normalizer_from_config"]

ArrayLike = Any  # numpy.ndarray or torch.Tensor


def _is_tensor(x: Any) -> bool:
    """A torch tensor, checked without importing torch (numpy users never pay for it)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _per_channel(value: float | Sequence[float], like: ArrayLike) -> ArrayLike:
    """Broadcast a scalar or per-band sequence against (N, C, H, W) or (C, H, W) data."""
    arr = np.atleast_1d(np.asarray(value, dtype=np.float32))
    arr = arr.reshape(-1, 1, 1) if arr.size > 1 else arr.reshape(())
    if _is_tensor(like):
        return sys.modules["torch"].as_tensor(arr, dtype=like.dtype, device=like.device)
    return arr


def _lib(x: ArrayLike):
    return sys.modules["torch"] if _is_tensor(x) else np


def _like(result: ArrayLike, like: ArrayLike) -> ArrayLike:
    """Return ``result`` with the floating dtype of ``like`` (numpy scalars would upcast)."""
    if _is_tensor(like):
        return result.to(like.dtype if like.is_floating_point() else sys.modules["torch"].float32)
    dtype = like.dtype if np.issubdtype(like.dtype, np.floating) else np.float32
    return np.asarray(result, dtype=dtype)


class Normalizer:
    """Base class: subclasses implement ``forward`` and ``inverse`` and list their parameters."""

    params: tuple[str, ...] = ()

    def forward(self, images: ArrayLike) -> ArrayLike:
        raise NotImplementedError

    def inverse(self, x: ArrayLike, clip: bool = True) -> ArrayLike:
        """Model space back to flux; ``clip=False`` skips clipping ``x`` to ``[-1, 1]`` first (so
        gradients reach every pixel, e.g. for posterior sampling)."""
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


def _two_means_boundary(values: np.ndarray, name: str) -> float:
    """Midpoint of the two centroids of the optimal 1-D two-means split of ``values``.

    The optimal split of sorted values ``v`` into ``v[:k]`` and ``v[k:]`` minimises the
    within-cluster sum of squares ``Σv² - k μ₁² - (n - k) μ₂²``, evaluated for every ``k`` from
    cumulative sums (Lloyd's k-means objective, exactly optimised in one dimension).
    """
    v = np.sort(np.asarray(values, dtype=np.float64)[np.isfinite(values)])
    if v.size < 2:
        raise ValueError(f"{name}: expected at least 2 galaxies with finite pixels to cluster, got {v.size}")
    k = np.arange(1, v.size)
    low_sum = np.cumsum(v)[:-1]
    low_mean, high_mean = low_sum / k, (v.sum() - low_sum) / (v.size - k)
    best = int(np.argmax(k * low_mean**2 + (v.size - k) * high_mean**2))  # = argmin of the SSE
    clip = (low_mean[best] + high_mean[best]) / 2
    if not clip > 0:
        raise ValueError(
            f"{name}: expected positive bright-pixel fluxes to set a clip level, got a boundary of {clip:g}"
        )
    return float(clip)


class ClipMinMax(Normalizer):
    """Clip flux to ``[0, clip]`` and map linearly to ``[-1, 1]`` (Smith et al. 2022).

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

    @classmethod
    def fit(cls, images: ArrayLike, percentile: float = 99.9, per_band: bool = False) -> ClipMinMax:
        """Choose the clip level ``A`` that separates the bulk of galaxies from bright outliers.

        The procedure Smith et al. (2022) describe: take each galaxy's
        ``percentile``-th percentile pixel flux, split these values into two clusters by k-means,
        and set ``A`` to the boundary between the clusters, the midpoint of the two centroids.
        Galaxies in the faint cluster are then barely clipped, while the few bright ones (often
        with a foreground star or a saturated core) are clipped hard instead of compressing
        everyone else's dynamic range.

        Parameters
        ----------
        images : array (N, C, H, W), torch.Tensor or Survey
            Flux images of the training set; NaN pixels are ignored.
        percentile : float
            Percentile of each galaxy's pixel fluxes, in (0, 100].
        per_band : bool
            One ``A`` for all bands (percentile over a galaxy's pixels in every band), or one per
            band (percentile and clustering band by band), giving a tuple.

        Returns
        -------
        ClipMinMax
            With ``clip`` rounded to 4 significant digits, so configs stay readable.

        Notes
        -----
        The k-means is the exact 1-D two-means: in one dimension the optimal two clusters are a
        split of the sorted values, so every split is scored by its within-cluster sum of squares
        and the best is kept. This is the global optimum of the k-means objective, deterministic
        without a seed (``scipy.cluster.vq.kmeans2`` finds a local one from random starts).
        Assumed: the percentile values form two groups in linear flux, a bulk and a tail of
        outliers; if they are unimodal the split falls in the upper tail and ``A`` is high.
        """
        images = as_images(images, "images", allow_nan=True)
        if isinstance(percentile, bool) or not 0 < percentile <= 100:
            raise ValueError(f"percentile: expected a number in (0, 100], got {percentile!r}")
        if per_band:
            flat = images.reshape(*images.shape[:2], -1)  # (N, C, pixels)
            peaks = np.nanpercentile(flat, percentile, axis=-1).T  # (C, N)
        else:
            peaks = np.nanpercentile(images.reshape(len(images), -1), percentile, axis=-1)[None]
        clips = [_two_means_boundary(values, "images") for values in peaks]
        clips = [float(f"{a:.4g}") for a in clips]
        return cls(clip=tuple(clips) if per_band else clips[0])

    def forward(self, images: ArrayLike) -> ArrayLike:
        a = _per_channel(self.clip, images)
        return _like(2 * _lib(images).clip(images, 0 * a, a) / a - 1, images)

    def inverse(self, x: ArrayLike, clip: bool = True) -> ArrayLike:
        a = _per_channel(self.clip, x)
        x = _lib(x).clip(x, -1, 1) if clip else x
        return _like((x + 1) / 2 * a, x)


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

    def inverse(self, x: ArrayLike, clip: bool = True) -> ArrayLike:
        s, top = self._scales(x)
        lib = _lib(x)
        return _like(lib.sinh((lib.clip(x, -1, 1) if clip else x) * top) * s, x)


_NORMALIZERS = {cls.__name__: cls for cls in (ClipMinMax, AsinhStretch)}


def normalizer_from_config(config: dict) -> Normalizer:
    """Rebuild a normalizer from :meth:`Normalizer.to_config` output."""
    if not isinstance(config, dict) or config.get("name") not in _NORMALIZERS:
        raise ValueError(
            f"config: expected a normalizer config with name in {sorted(_NORMALIZERS)}, got {config!r}"
        )
    kwargs = {k: v for k, v in config.items() if k != "name"}
    return _NORMALIZERS[config["name"]](**kwargs)
