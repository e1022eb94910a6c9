"""Corruptions for inpainting and deconvolution experiments: satellite trails, PSF blur and noise.

Satellite trails follow the inpainting experiments of Smith et al. (2022), who occlude galaxy
cutouts with straight trails of "random direction, brightness, width and periodicity" and ask the
diffusion model to fill in the occluded pixels. :func:`observe` is the forward model of the
deconvolution experiments: ``y = k ⊛ x + n`` with a PSF kernel ``k``, Poisson (shot) noise and
Gaussian sky noise ``n``. Every random draw comes from a :class:`numpy.random.Generator` seeded
explicitly, so a seed fixes the result.

Pixel coordinates are ``(x, y) = (column, row)``, zero-based, with the cutout centre at
``((W - 1) / 2, (H - 1) / 2)``; angles are in degrees counter-clockwise from the +x axis (as seen
with ``imshow(..., origin="lower")``), as in the truth catalog of
:func:`galwidgets.data.simulate_survey`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy.signal import fftconvolve

from .._validation import as_images, check_finite, check_positive, check_positive_int
from .render import make_psf

__all__ = ["add_satellite_trails", "observe", "psf_kernel", "satellite_trail"]

#: Gaussian FWHM in units of σ: 2 √(2 ln 2).
_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
#: Default PSF kernel half-size in units of the FWHM.
_KERNEL_RADIUS_FWHM = 4.0
#: Largest allowed |sum(kernel) - 1| of a user-supplied PSF kernel.
_KERNEL_SUM_TOL = 1e-3

Range = float | tuple[float, float]
PSF_KINDS = ("moffat", "kolmogorov")


# -- satellite trails ----------------------------------------------------------------------------
def _check_shape(shape: Any) -> tuple[int, int]:
    if not isinstance(shape, Sequence) or len(shape) != 2:
        raise ValueError(f"shape: expected (H, W), a sequence of 2 positive integers, got {shape!r}")
    return check_positive_int(shape[0], "shape[0]"), check_positive_int(shape[1], "shape[1]")


def _draw(value: Range, u: float, name: str) -> float:
    """A positive number, or a uniform draw from a ``(low, high)`` range using the variate ``u``."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 2:
            raise ValueError(f"{name}: expected a number or a (low, high) range, got {value!r}")
        low, high = (check_positive(v, name) for v in value)
        if high < low:
            raise ValueError(f"{name}: expected a (low, high) range with low <= high, got {value!r}")
        return low + u * (high - low)
    return check_positive(value, name)


def _check_fraction(value: Any, name: str, *, closed_upper: bool = True) -> float:
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    if not ok or not (0 < value <= 1 if closed_upper else 0 < value < 1):
        interval = "(0, 1]" if closed_upper else "(0, 1)"
        raise ValueError(f"{name}: expected a number in {interval}, got {value!r}")
    return float(value)


def satellite_trail(
    shape: tuple[int, int],
    angle: float | None = None,
    width: Range = 3.0,
    brightness: Range = 1.0,
    offset: float | None = None,
    dash_period: Range | None = None,
    dash_duty: float = 0.5,
    seed: int | np.random.Generator | None = None,
    *,
    mask_fraction: float = 0.01,
) -> tuple[np.ndarray, np.ndarray]:
    """A straight satellite trail across an ``(H, W)`` cutout and the mask of the pixels it occludes.

    The trail is the line through the point at perpendicular distance ``offset`` from the cutout
    centre, along direction ``angle``; its cross-section is a Gaussian of FWHM ``width`` and peak
    ``brightness``, sampled at pixel centres. With ``dash_period`` set, it is lit only on a
    fraction ``dash_duty`` of each period along the trail (a tumbling satellite's glints), with a
    random phase. These are the "random direction, brightness, width and periodicity" of the
    trails occluding galaxies in the inpainting experiments of Smith et al. (2022).

    Parameters
    ----------
    shape : (int, int)
        Cutout shape ``(H, W)`` in pixels.
    angle : float, optional
        Direction in degrees counter-clockwise from the +x axis; uniform in [0°, 180°) if None.
    width : float or (float, float)
        FWHM of the Gaussian cross-section in pixels, or a ``(low, high)`` range drawn uniformly.
        Profiles narrower than about 1 pixel are undersampled.
    brightness : float or (float, float)
        Peak surface brightness in flux units per pixel, or a ``(low, high)`` range.
    offset : float, optional
        Signed perpendicular distance in pixels from the cutout centre, along the unit normal
        ``(-sin θ, cos θ)``: for ``angle=0`` the trail runs along row ``(H - 1) / 2 + offset``,
        for ``angle=90`` along column ``(W - 1) / 2 - offset``. If None, uniform within the central
        region ``|offset| <= min(H, W) / 4``, so the trail crosses the galaxy.
    dash_period : float or (float, float), optional
        Period of the dashes along the trail in pixels (or a range); None for a continuous trail.
    dash_duty : float
        Lit fraction of each dash period, in (0, 1].
    seed : int, numpy.random.Generator or None
        Source of the random draws; the same integer gives the same trail, None fresh entropy.
    mask_fraction : float
        The mask marks pixels where the trail exceeds this fraction of its peak brightness.

    Returns
    -------
    trail : numpy.ndarray
        ``(H, W)`` float32 trail image in flux units (to be added to a cutout).
    mask : numpy.ndarray
        ``(H, W)`` bool, True where ``trail > mask_fraction * brightness``: the occluded pixels to
        inpaint. For the default 1 % this is a band ``2 √(2 ln 100) σ ≈ 2.58 × width`` wide.

    Notes
    -----
    Six uniform variates are drawn per call in a fixed order (angle, offset, dash phase, width,
    brightness, dash period) whether or not each is used, so fixing one parameter leaves the
    others' draws unchanged.
    """
    h, w = _check_shape(shape)
    u = np.random.default_rng(seed).uniform(size=6)
    theta = np.deg2rad(180.0 * u[0] if angle is None else check_finite(angle, "angle"))
    offset = (2 * u[1] - 1) * min(h, w) / 4 if offset is None else check_finite(offset, "offset")
    sigma = _draw(width, u[3], "width") / _FWHM_PER_SIGMA
    peak = _draw(brightness, u[4], "brightness")
    duty = _check_fraction(dash_duty, "dash_duty")
    mask_fraction = _check_fraction(mask_fraction, "mask_fraction", closed_upper=False)

    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    x -= (w - 1) / 2
    y -= (h - 1) / 2
    across = -x * np.sin(theta) + y * np.cos(theta) - offset
    along = x * np.cos(theta) + y * np.sin(theta)
    trail = peak * np.exp(-0.5 * (across / sigma) ** 2)
    if dash_period is not None:
        period = _draw(dash_period, u[5], "dash_period")
        trail *= np.mod(along - u[2] * period, period) < duty * period
    return trail.astype(np.float32), trail > mask_fraction * peak


def _band_scales(bands: Any, n_channels: int, band_names: tuple[str, ...] | None) -> np.ndarray:
    """Per-channel trail brightness factors from None, a sequence or a band-name mapping."""
    if bands is None:
        return np.ones(n_channels)
    if isinstance(bands, Mapping):
        if band_names is None:
            raise TypeError(
                "bands: a mapping of band name to factor needs a Survey; pass one factor per channel"
            )
        missing = sorted(set(band_names) - set(bands))
        if missing:
            raise ValueError(f"bands: missing a brightness factor for band(s) {missing}")
        bands = [bands[b] for b in band_names]
    scales = np.asarray(bands, dtype=float)
    if scales.shape != (n_channels,) or not np.all(np.isfinite(scales)) or np.any(scales < 0):
        raise ValueError(
            f"bands: expected {n_channels} non-negative brightness factors (one per channel), got {bands!r}"
        )
    return scales


def add_satellite_trails(
    images: Any,
    n_trails: int = 1,
    seed: int | np.random.Generator | None = 0,
    bands: Sequence[float] | Mapping[str, float] | None = None,
    **trail_kwargs: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Add random satellite trails to flux images (inpainting tests of Smith et al. 2022).

    Each image gets ``n_trails`` independent trails from :func:`satellite_trail`, the same
    geometry in every band with the brightness scaled per band by ``bands``.

    Parameters
    ----------
    images : array (N, C, H, W), torch.Tensor or Survey
        Flux images. A Survey is read through its ``images``; the result is arrays, not a Survey
        (wrap it with ``survey.with_images(corrupted)`` if needed).
    n_trails : int
        Trails per image.
    seed : int, numpy.random.Generator or None
        Seed of all draws; the same seed gives the same trails.
    bands : sequence of float or dict, optional
        Brightness factor per channel (e.g. ``(0.6, 1.0, 1.5)`` for a red trail in g, r, z, or 0
        to leave a band clean), or a mapping band name → factor when ``images`` is a Survey.
        None: the same brightness in every band.
    **trail_kwargs
        Passed to :func:`satellite_trail` (``angle``, ``width``, ``brightness``, ``offset``,
        ``dash_period``, ``dash_duty``, ``mask_fraction``); ranges are redrawn for every trail.

    Returns
    -------
    corrupted : numpy.ndarray
        ``(N, C, H, W)`` float32 images plus trails.
    mask : numpy.ndarray
        ``(N, 1, H, W)`` bool, True on occluded pixels (the union of the trails' masks, whatever
        the band factors); the singleton channel axis broadcasts against the images.
    """
    band_names = tuple(images.bands) if hasattr(images, "bands") and hasattr(images, "images") else None
    images = as_images(images, "images", allow_nan=True)
    n, c, h, w = images.shape
    n_trails = check_positive_int(n_trails, "n_trails")
    scales = _band_scales(bands, c, band_names).astype(np.float32)
    if "seed" in trail_kwargs or "shape" in trail_kwargs:
        raise TypeError("trail_kwargs: 'seed' and 'shape' are set by add_satellite_trails, not per trail")
    rng = np.random.default_rng(seed)
    corrupted = images.copy()
    mask = np.zeros((n, 1, h, w), dtype=bool)
    for i in range(n):
        for _ in range(n_trails):
            trail, occluded = satellite_trail((h, w), seed=rng, **trail_kwargs)
            corrupted[i] += scales[:, None, None] * trail
            mask[i, 0] |= occluded
    return corrupted, mask


# -- PSF and noise -------------------------------------------------------------------------------
def psf_kernel(
    fwhm: float, pixel_scale: float, kind: str = "moffat", size: int | None = None, beta: float = 3.5
) -> np.ndarray:
    """A normalised, odd-sized PSF kernel image drawn with GalSim.

    Parameters
    ----------
    fwhm : float
        PSF full width at half maximum in arcsec.
    pixel_scale : float
        Arcsec per pixel.
    kind : {"moffat", "kolmogorov"}
        :class:`galsim.Moffat` with index ``beta`` (3.5, as in :func:`simulate_survey`), or
        :class:`galsim.Kolmogorov` (atmospheric turbulence, Racine 1996).
    size : int, optional
        Odd side length in pixels; default ``2 ⌈4 FWHM / pixel_scale⌉ + 1``, which holds all but
        about 0.07 % (Moffat β = 3.5) or 0.8 % (Kolmogorov) of the flux before renormalising.
    beta : float
        Moffat index.

    Returns
    -------
    numpy.ndarray
        ``(size, size)`` float64 kernel summing to 1, centred on the central pixel.

    Notes
    -----
    The profile is sampled at pixel centres (``method="no_pixel"``), without convolving by the
    pixel response: the kernel acts on images that are already pixel-integrated, so including the
    pixel again would blur twice. This is accurate when the FWHM spans more than ~2 pixels.
    """
    fwhm = check_positive(fwhm, "fwhm")
    pixel_scale = check_positive(pixel_scale, "pixel_scale")
    if kind not in PSF_KINDS:
        raise ValueError(f"kind: expected one of {PSF_KINDS}, got {kind!r}")
    profile = make_psf(kind, fwhm, check_positive(beta, "beta"))
    if size is None:
        size = 2 * int(np.ceil(_KERNEL_RADIUS_FWHM * fwhm / pixel_scale)) + 1
    size = check_positive_int(size, "size")
    if size % 2 == 0:
        raise ValueError(f"size: expected an odd kernel side length, got {size}")
    kernel = profile.drawImage(nx=size, ny=size, scale=pixel_scale, method="no_pixel").array
    kernel = kernel.astype(np.float64)
    return kernel / kernel.sum()


def _per_band_values(value: Any, n_channels: int, name: str, *, allow_zero: bool = False) -> np.ndarray:
    try:
        values = np.atleast_1d(np.asarray(value, dtype=float))
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a number or one per band, got {value!r}") from None
    if values.ndim != 1 or values.size not in (1, n_channels):
        raise ValueError(f"{name}: expected one number or {n_channels} (one per band), got {value!r}")
    low_ok = values >= 0 if allow_zero else values > 0
    if not np.all(np.isfinite(values) & low_ok):
        what = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name}: expected finite {what} number(s), got {value!r}")
    return np.broadcast_to(values, (n_channels,)).copy()


def _user_kernel(psf: Any, n_channels: int) -> np.ndarray:
    """Validate a user PSF kernel: (k, k) or (C, k, k), finite, odd sides, each summing to 1."""
    try:
        kernel = np.asarray(psf, dtype=np.float64)
    except (TypeError, ValueError):
        kind = type(psf).__name__
        raise TypeError(f"psf: expected one of {PSF_KINDS} or a kernel array, got {kind}") from None
    if kernel.ndim == 2:
        kernel = np.broadcast_to(kernel, (n_channels, *kernel.shape))
    if kernel.ndim != 3 or kernel.shape[0] != n_channels:
        raise ValueError(
            f"psf: expected a kernel array shaped (kh, kw) or ({n_channels}, kh, kw), "
            f"got shape {kernel.shape}"
        )
    if kernel.shape[1] % 2 == 0 or kernel.shape[2] % 2 == 0:
        raise ValueError(f"psf: expected odd kernel sides (centred on a pixel), got {kernel.shape[1:]}")
    if not np.all(np.isfinite(kernel)):
        raise ValueError("psf: expected a finite kernel, found NaN or infinite values")
    sums = kernel.sum(axis=(1, 2))
    if np.any(np.abs(sums - 1) > _KERNEL_SUM_TOL):
        raise ValueError(
            f"psf: expected a normalised kernel summing to 1 (within {_KERNEL_SUM_TOL:g}) per band, got "
            f"sums {np.round(sums, 6).tolist()}; divide it by its sum"
        )
    return kernel.copy()


def _model_kernels(kind: str, fwhm: np.ndarray, pixel_scale: float) -> np.ndarray:
    """One GalSim kernel per band, all drawn at the size the widest PSF needs."""
    size = 2 * int(np.ceil(_KERNEL_RADIUS_FWHM * fwhm.max() / pixel_scale)) + 1
    return np.stack([psf_kernel(f, pixel_scale, kind, size=size) for f in fwhm])


def observe(
    images: Any,
    psf_fwhm: float | Sequence[float] | None,
    pixel_scale: float,
    sky_sigma: float | Sequence[float],
    psf: str | np.ndarray = "moffat",
    poisson_gain: float | None = None,
    seed: int | np.random.Generator | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Observe flux images: convolve with a PSF, then add Poisson and Gaussian sky noise.

    The forward model of deconvolution experiments, ``y = k ⊛ x + n``: each band is convolved
    with its kernel ``k`` (flux conserving, ``Σk = 1``); with ``poisson_gain`` set, shot noise of
    variance ``max(k ⊛ x, 0) / gain`` is added; finally white Gaussian sky noise of standard
    deviation ``sky_sigma``.

    Parameters
    ----------
    images : array (N, C, H, W), torch.Tensor or Survey
        Noise-free (or high signal-to-noise) flux images: any noise they hold is blurred too.
    psf_fwhm : float or sequence of float
        PSF FWHM in arcsec, one value or one per band; ignored (may be None) when ``psf`` is an
        array.
    pixel_scale : float
        Arcsec per pixel of ``images``.
    sky_sigma : float or sequence of float
        Standard deviation of the Gaussian sky noise per pixel, in flux units; one value or one per
        band; 0 for none.
    psf : {"moffat", "kolmogorov"} or array
        PSF model for :func:`psf_kernel` (Moffat β = 3.5, or Kolmogorov), or a kernel array
        ``(kh, kw)`` shared by all bands or ``(C, kh, kw)``, with odd sides, each summing to 1.
    poisson_gain : float, optional
        Gain in electrons per flux unit; None for no shot noise. Negative model pixels get none.
    seed : int, numpy.random.Generator or None
        Seed of the noise; the same seed gives the same noise.

    Returns
    -------
    observed : numpy.ndarray
        ``(N, C, H, W)`` float32 observed images.
    psf_image : numpy.ndarray
        ``(C, kh, kw)`` float64 kernels used, each summing to 1 and centred on the central pixel,
        so a deconvolution operator can apply exactly the same blur (``fftconvolve(x, k,
        mode="same")``, or ``torch.nn.functional.conv2d`` with the kernel flipped).

    Notes
    -----
    The convolution is a direct discrete one, :func:`scipy.signal.fftconvolve` with
    ``mode="same"`` in float64, rather than GalSim's ``InterpolatedImage``: it is exact for the
    returned kernel (so the deconvolution operator matches the simulation), vectorised over the
    whole batch, and adds no interpolation kernel. Outside the cutout the scene is taken to be
    zero, so flux within about a kernel radius of the edge partly leaves the stamp; a source well
    inside keeps its total flux to float precision.
    """
    images = as_images(images, "images")
    c = images.shape[1]
    if isinstance(psf, str):
        if psf not in PSF_KINDS:
            raise ValueError(f"psf: expected one of {PSF_KINDS} or a kernel array, got {psf!r}")
        fwhm = _per_band_values(psf_fwhm, c, "psf_fwhm")
        kernels = _model_kernels(psf, fwhm, check_positive(pixel_scale, "pixel_scale"))
    else:
        kernels = _user_kernel(psf, c)
    sigma = _per_band_values(sky_sigma, c, "sky_sigma", allow_zero=True)
    if poisson_gain is not None:
        poisson_gain = check_positive(poisson_gain, "poisson_gain")

    blurred = fftconvolve(images.astype(np.float64), kernels[None], mode="same", axes=(-2, -1))
    rng = np.random.default_rng(seed)
    if poisson_gain is not None:
        expected = np.clip(blurred, 0, None)
        blurred += rng.poisson(expected * poisson_gain) / poisson_gain - expected
    blurred += rng.normal(size=blurred.shape) * sigma[None, :, None, None]
    return blurred.astype(np.float32), kernels
