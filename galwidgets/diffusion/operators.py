"""Linear forward models of observations, for posterior sampling (:func:`galwidgets.samplers.dps`).

:class:`PSFOperator` maps a flux image on the diffusion model's pixel grid to what a telescope
would record::

    y = A x = k ⊛ (f · R x)            (+ noise n, σ_y per band)

``R`` resamples the model grid onto the observation's grid (flux conserving), ``f`` converts the
model's flux unit to the observation's (zeropoints, and optionally cosmological dimming) and
``k ⊛`` convolves each band with its PSF. Everything is linear, differentiable torch code, with an
exact :meth:`PSFOperator.adjoint`.

Redshift rescaling
------------------
A diffusion model is trained on galaxies at one pixel scale and a typical redshift ``z_model``: one
model pixel is ``s_model`` arcsec, i.e. ``s_model · d_A(z_model)`` in physical size (kpc). To use
it as a prior for a galaxy observed at redshift ``z`` (as the DPS deconvolution study does for
HSC galaxies with a prior learnt at lower redshift), the model pixel is given the same physical
size at ``z``, so on the sky it spans::

    s_eff = s_model · (kpc/arcsec)(z_model) / (kpc/arcsec)(z)

arcsec (angular scales from :mod:`astropy.cosmology`, Planck18 by default). The model's 64×64
grid then covers ``64 s_eff`` arcsec of the observation, which :meth:`PSFOperator.from_checkpoint`
turns into the observation crop size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .._validation import check_finite, check_positive

__all__ = [
    "PSFOperator", "angular_pixel_scale", "crop_center", "estimate_sigma_y", "neighbour_weights",
    "resampling_matrix",
]

#: Largest allowed |sum(kernel) - 1| of a PSF kernel, as in :func:`galwidgets.data.observe`.
PSF_SUM_TOL = 1e-3


def angular_pixel_scale(
    pixel_scale: float, model_redshift: float, redshift: float, cosmology: Any = None
) -> float:
    """Arcsec per model pixel once the model's galaxies are moved from ``model_redshift`` to ``redshift``.

    ``s_eff = s · (kpc/arcsec)(z_model) / (kpc/arcsec)(z)``: the model pixel keeps its physical
    size (proper kpc, angular-diameter distance of ``cosmology``, default
    :data:`astropy.cosmology.Planck18`).
    """
    from astropy.cosmology import Planck18

    cosmology = Planck18 if cosmology is None else cosmology
    pixel_scale = check_positive(pixel_scale, "pixel_scale")
    z_model = check_positive(model_redshift, "model_redshift")
    z = check_positive(redshift, "redshift")
    kpc_model = cosmology.kpc_proper_per_arcmin(z_model).value
    kpc_obs = cosmology.kpc_proper_per_arcmin(z).value
    return float(pixel_scale * kpc_model / kpc_obs)


def resampling_matrix(n_in: int, n_out: int, ratio: float) -> np.ndarray:
    """Flux-conserving 1-D resampling: ``M[j, i]`` = fraction of input pixel ``i`` in output pixel ``j``.

    Input pixels have width 1, output pixels width ``ratio`` (in input pixels); both grids are
    centred on each other. Each input pixel's flux is shared among the output pixels it overlaps
    in proportion to the overlap (area weighting, "drizzle" with pixfrac 1), so a source that lies
    inside both grids keeps its total flux exactly. Applied along rows and columns it is the exact
    area-weighted 2-D resampling.
    """
    lo_in = np.arange(n_in) - n_in / 2
    lo_out = (np.arange(n_out) - n_out / 2) * ratio
    left = np.maximum(lo_out[:, None], lo_in[None, :])
    right = np.minimum(lo_out[:, None] + ratio, lo_in[None, :] + 1)
    return np.clip(right - left, 0, None)


def crop_center(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The central ``shape = (h, w)`` pixels of ``image`` (..., H, W): rows/columns around ``(H - 1) / 2``."""
    image = np.asarray(image)
    h, w = int(shape[0]), int(shape[1])
    big_h, big_w = image.shape[-2:]
    if h > big_h or w > big_w or h < 1 or w < 1:
        raise ValueError(f"shape: expected a crop of at most {(big_h, big_w)} pixels, got {(h, w)}")
    top, left = (big_h - h + 1) // 2, (big_w - w + 1) // 2
    return image[..., top:top + h, left:left + w]


def estimate_sigma_y(y: Any, sigma: float = 3.0) -> np.ndarray:
    """Per-band sky noise of observations: the sigma-clipped standard deviation of each band.

    Parameters
    ----------
    y : array or torch.Tensor, (C, H, W) or (N, C, H, W)
        Background-subtracted observations; the galaxy is rejected by the clipping
        (:func:`galwidgets.metrics.sky_statistics`, astropy's ``sigma_clipped_stats``).
    sigma : float
        Clipping threshold in standard deviations.

    Returns
    -------
    numpy.ndarray
        ``(C,)`` or ``(N, C)`` standard deviations in the units of ``y``.
    """
    from ..metrics.segmentation import sky_statistics

    arr = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y, dtype=np.float64)
    if arr.ndim not in (3, 4):
        raise ValueError(f"y: expected (C, H, W) or (N, C, H, W) observations, got shape {arr.shape}")
    flat = arr.reshape(-1, *arr.shape[-2:])
    out = np.array([sky_statistics(band, sigma=sigma)[1] for band in flat])
    return out.reshape(arr.shape[:-2])


def neighbour_weights(
    y: Any, band: int | None = None, grow: int = 2, **segmap_kwargs: Any
) -> np.ndarray:
    """Misfit weights that leave out the pixels of sources other than the central galaxy.

    The diffusion prior models one galaxy per stamp; a neighbour in the observation is a feature it
    cannot produce, and fitting it anyway drags the reconstruction (and inflates χ²). The
    observation is segmented (:func:`galwidgets.metrics.central_segmap`, on ``band`` or on the sum
    of the bands), every segment except the central one is grown by ``grow`` pixels (its
    undetected wings) and given weight 0; all other pixels, sky included, keep weight 1.

    Parameters
    ----------
    y : array or torch.Tensor, (C, H, W) or (H, W)
        One observation.
    band : int, optional
        Band to detect on; default the sum over bands.
    grow : int
        Dilation in pixels of the neighbours' segments (not into the central segment).
    **segmap_kwargs
        Passed to :func:`~galwidgets.metrics.central_segmap` (``n_sigma``, ``deblend``, ...).

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float weights in {0, 1}; pass as ``dps(..., weights=...)``.
    """
    from scipy.ndimage import binary_dilation

    from ..metrics.segmentation import central_segmap

    arr = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"y: expected one observation (C, H, W) or (H, W), got shape {arr.shape}")
    if band is not None and not (isinstance(band, (int, np.integer)) and 0 <= band < arr.shape[0]):
        raise ValueError(f"band: expected a band index in 0..{arr.shape[0] - 1}, got {band!r}")
    if isinstance(grow, bool) or not isinstance(grow, (int, np.integer)) or grow < 0:
        raise ValueError(f"grow: expected an integer >= 0, got {grow!r}")
    image = arr.sum(0) if band is None else arr[band]
    seg = central_segmap(image, **segmap_kwargs)
    others = (seg.segmap > 0) & (seg.segmap != seg.label)
    if grow and others.any():
        others = binary_dilation(others, iterations=int(grow)) & (seg.segmap != seg.label) | others
    return np.where(others, 0.0, 1.0)


def _is_single_kernel(psf: Any) -> bool:
    """True for one 2-D kernel (shared by all bands)."""
    if hasattr(psf, "array") and not isinstance(psf, np.ndarray):
        return True
    return not isinstance(psf, (list, tuple)) and np.ndim(psf) == 2


def _kernels(psf: Any, name: str = "psf") -> np.ndarray:
    """``psf`` as a finite (C, kh, kw) float64 array with odd sides."""
    if hasattr(psf, "array") and not isinstance(psf, np.ndarray):  # astropy Kernel2D
        psf = psf.array
    if isinstance(psf, (list, tuple)):
        psf = [p.array if hasattr(p, "array") and not isinstance(p, np.ndarray) else p for p in psf]
        psf = [p.detach().cpu().numpy() if isinstance(p, torch.Tensor) else p for p in psf]
        if len({np.shape(p) for p in psf}) > 1:
            raise ValueError(f"{name}: expected one kernel shape for all bands, got "
                             f"{[np.shape(p) for p in psf]}")
    if isinstance(psf, torch.Tensor):
        psf = psf.detach().cpu().numpy()
    try:
        k = np.array(psf, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a kernel array (kh, kw) or (C, kh, kw), got "
                        f"{type(psf).__name__}") from None
    if k.ndim == 2:
        k = k[None]
    if k.ndim != 3 or k.shape[0] < 1:
        raise ValueError(f"{name}: expected a kernel array (kh, kw) or (C, kh, kw), got shape {k.shape}")
    if k.shape[1] % 2 == 0 or k.shape[2] % 2 == 0:
        raise ValueError(f"{name}: expected odd kernel sides (centred on a pixel), got {k.shape[1:]}")
    if not np.all(np.isfinite(k)):
        raise ValueError(f"{name}: expected a finite kernel, found NaN or infinite values")
    return k


class PSFOperator:
    """Linear forward model ``y = k ⊛ (f · R x)`` in flux space: resample, rescale flux, blur.

    Parameters
    ----------
    psf : array (kh, kw) or (C, kh, kw), torch.Tensor, astropy ``Kernel2D`` or list of them
        PSF image per band (one shared by all bands if 2-D) on the observation's pixel grid, odd
        sides, centred on the central pixel, each summing to 1 within ``psf_tolerance`` (negative
        wings are allowed, as in HSC PSF models).
    model_shape : (H, W)
        Pixel shape of the model's images ``x``.
    obs_shape : (H', W'), optional
        Pixel shape of the observation; by default the size covering the model's field of view
        (``round(H · s_eff / s_obs)``), or ``model_shape`` when no pixel scales are given.
    model_pixel_scale, obs_pixel_scale : float, optional
        Arcsec per pixel of the model and of the observation. Give both, or neither (same grid).
    model_redshift, redshift : float, optional
        Typical redshift of the model's training galaxies and redshift of the observed galaxy: the
        model pixel keeps its physical size (see :func:`angular_pixel_scale`). Give both or neither.
    flux_scale : float or sequence of float, optional
        Observation flux units per model flux unit, per band; default from the zeropoints.
    model_zeropoint, obs_zeropoint : float, optional
        AB zeropoints of the two flux units: ``f = 10^{0.4 (zp_obs − zp_model)}`` (e.g. 63.1 HSC
        counts, zeropoint 27, per nanomaggy, zeropoint 22.5).
    dimming : bool
        Also apply the inverse-square-law dimming of the moved galaxy, ``f *= (D_L(z_model) /
        D_L(z))²`` (the same luminosity seen further away). Off by default: a prior trained on
        bright nearby galaxies is then asked for galaxies many times brighter than it knows, so
        the deconvolution study instead lets the observation set the brightness and uses the
        prior for morphology only; surface brightness then follows from flux conservation.
    cosmology : astropy.cosmology.Cosmology, optional
        Default Planck18.
    psf_tolerance : float
        Largest allowed ``|Σk − 1|``.
    n_bands : int, optional
        Number of bands: repeats a single 2-D kernel, or checks the number of kernels. A single
        kernel without ``n_bands`` applies to any number of bands.
    device : optional
        Where the operator's tensors live (default CPU; :meth:`to` moves them).

    Notes
    -----
    *Resampling* is area weighting (:func:`resampling_matrix`), applied as two small dense
    matrices, ``R x = M_y x M_xᵀ``: each model pixel's flux is split among the observation pixels
    it overlaps, so the total flux of a source inside the field is conserved exactly whatever the
    scale ratio, and surface brightness (flux per arcsec²) is preserved on average. Bilinear
    interpolation (``torch.nn.functional.interpolate``) would instead preserve surface brightness
    per pixel and change the total flux by ``(s_eff / s_obs)²``, and aliases when downsampling.

    *Convolution* is a linear (zero-padded) FFT convolution cropped to the same size, identical to
    ``scipy.signal.fftconvolve(image, k, mode="same")`` as used by
    :func:`galwidgets.data.observe`; flux within a kernel radius of the edge partly leaves the
    stamp, as in the simulation. The adjoint is the same-size correlation (convolution with the
    flipped kernel) followed by ``Rᵀ``.
    """

    def __init__(
        self,
        psf: Any,
        model_shape: Sequence[int],
        obs_shape: Sequence[int] | None = None,
        *,
        model_pixel_scale: float | None = None,
        obs_pixel_scale: float | None = None,
        model_redshift: float | None = None,
        redshift: float | None = None,
        flux_scale: float | Sequence[float] | None = None,
        model_zeropoint: float | None = None,
        obs_zeropoint: float | None = None,
        dimming: bool = False,
        cosmology: Any = None,
        psf_tolerance: float = PSF_SUM_TOL,
        n_bands: int | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        shared = _is_single_kernel(psf)
        k = _kernels(psf)
        if n_bands is not None:
            if isinstance(n_bands, bool) or not isinstance(n_bands, (int, np.integer)) or n_bands < 1:
                raise ValueError(f"n_bands: expected a positive integer, got {n_bands!r}")
            if shared:
                k = np.repeat(k, n_bands, axis=0)
            elif k.shape[0] != n_bands:
                raise ValueError(f"psf: expected {n_bands} kernels (one per band), got {k.shape[0]}")
        #: Number of bands, or None for a single kernel shared by any number of bands.
        self.n_bands = None if shared and n_bands is None else k.shape[0]
        sums = k.sum(axis=(1, 2))
        psf_tolerance = check_positive(psf_tolerance, "psf_tolerance")
        if np.any(np.abs(sums - 1) > psf_tolerance):
            raise ValueError(
                f"psf: expected a normalised kernel summing to 1 (within {psf_tolerance:g}) per band, "
                f"got sums {np.round(sums, 6).tolist()}; divide it by its sum"
            )
        self.model_shape = _shape(model_shape, "model_shape")

        if (model_pixel_scale is None) != (obs_pixel_scale is None):
            raise ValueError("model_pixel_scale, obs_pixel_scale: give both pixel scales or neither; got "
                             f"{model_pixel_scale!r} and {obs_pixel_scale!r}")
        if (model_redshift is None) != (redshift is None):
            raise ValueError(f"model_redshift, redshift: give both redshifts or neither; got "
                             f"{model_redshift!r} and {redshift!r}")
        if redshift is not None and model_pixel_scale is None:
            raise ValueError("redshift: rescaling to a redshift needs model_pixel_scale and obs_pixel_scale")
        self.redshift, self.model_redshift = redshift, model_redshift
        if model_pixel_scale is None:
            self.model_pixel_scale = self.obs_pixel_scale = self.effective_pixel_scale = None
            ratio = 1.0
        else:
            self.model_pixel_scale = check_positive(model_pixel_scale, "model_pixel_scale")
            self.obs_pixel_scale = check_positive(obs_pixel_scale, "obs_pixel_scale")
            self.effective_pixel_scale = (
                self.model_pixel_scale if redshift is None else angular_pixel_scale(
                    self.model_pixel_scale, model_redshift, redshift, cosmology))
            ratio = self.obs_pixel_scale / self.effective_pixel_scale
        #: Size of an observation pixel in model pixels.
        self.ratio = float(ratio)
        if obs_shape is None:
            obs_shape = tuple(max(1, round(n / self.ratio)) for n in self.model_shape)
        self.obs_shape = _shape(obs_shape, "obs_shape")
        kh, kw = k.shape[1:]
        if kh > self.obs_shape[0] or kw > self.obs_shape[1]:
            raise ValueError(
                f"psf: kernel of {kh}x{kw} pixels is larger than the {self.obs_shape[0]}x"
                f"{self.obs_shape[1]} observation; crop the PSF (it must sum to 1) or use a larger cutout"
            )

        if flux_scale is None:
            if (model_zeropoint is None) != (obs_zeropoint is None):
                raise ValueError("model_zeropoint, obs_zeropoint: give both zeropoints or neither; got "
                                 f"{model_zeropoint!r} and {obs_zeropoint!r}")
            factor = 1.0 if model_zeropoint is None else 10 ** (
                0.4 * (check_finite(obs_zeropoint, "obs_zeropoint")
                       - check_finite(model_zeropoint, "model_zeropoint")))
            flux = np.full(self.n_bands or 1, factor)
        else:
            flux = np.atleast_1d(np.asarray(flux_scale, dtype=np.float64))
            if flux.ndim != 1 or flux.size not in (1, self.n_bands or flux.size) or not np.all(
                    np.isfinite(flux) & (flux > 0)):
                raise ValueError(f"flux_scale: expected a positive number or {self.n_bands} (one per "
                                 f"band), got {flux_scale!r}")
            if self.n_bands is None and flux.size > 1:  # a shared kernel, per-band fluxes
                self.n_bands = flux.size
                k = np.repeat(k, flux.size, axis=0)
            flux = np.broadcast_to(flux, (self.n_bands or 1,)).copy()
        if dimming:
            if redshift is None:
                raise ValueError("dimming: needs model_redshift and redshift")
            from astropy.cosmology import Planck18

            cosmo = Planck18 if cosmology is None else cosmology
            ratio_dl = cosmo.luminosity_distance(model_redshift) / cosmo.luminosity_distance(redshift)
            flux = flux * float(ratio_dl) ** 2
        self.flux_scale = flux

        identity = self.ratio == 1.0 and self.obs_shape == self.model_shape
        self._identity = identity
        self._my = torch.from_numpy(resampling_matrix(self.model_shape[0], self.obs_shape[0], self.ratio))
        self._mx = torch.from_numpy(resampling_matrix(self.model_shape[1], self.obs_shape[1], self.ratio))
        self.kernel = torch.from_numpy(k)
        self._flux = torch.from_numpy(flux).reshape(1, -1, 1, 1)
        self._build_fft()
        if device is not None:
            self.to(device)

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: Any,
        psf: Any,
        obs_pixel_scale: float | None = None,
        obs_zeropoint: float | None = None,
        *,
        redshift: float | None = None,
        model_redshift: float | None = None,
        obs_shape: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> PSFOperator:
        """An operator from a checkpoint's grid (size, pixel scale, zeropoint) to an observation's.

        ``model_redshift`` defaults to ``checkpoint.config["data"]["redshift"]`` when the
        checkpoint records one; it is needed only with ``redshift``.
        """
        data = checkpoint.config.get("data", {})
        if redshift is not None and model_redshift is None:
            model_redshift = data.get("redshift")
            if model_redshift is None:
                raise ValueError("model_redshift: the checkpoint records no training redshift; give the "
                                 "typical redshift of its training galaxies")
        size = checkpoint.size
        return cls(
            psf, (size, size), obs_shape,
            model_pixel_scale=None if obs_pixel_scale is None else checkpoint.pixel_scale,
            obs_pixel_scale=obs_pixel_scale, model_redshift=model_redshift, redshift=redshift,
            model_zeropoint=None if obs_zeropoint is None else checkpoint.zeropoint,
            obs_zeropoint=obs_zeropoint, n_bands=kwargs.pop("n_bands", len(checkpoint.bands)),
            **kwargs,
        )

    @classmethod
    def from_cutout(
        cls,
        cutout: Any,
        checkpoint: Any,
        model_redshift: float,
        model_shape: tuple[int, int] | None = None,
        **kwargs: Any,
    ) -> PSFOperator:
        """The forward model from ``checkpoint``'s flux grid to a real cutout (PSF, resampling, redshift).

        Parameters
        ----------
        cutout : galwidgets.data.HSCCutout
            The observation: per-band PSFs (``psfs``), ``pixel_scale``, ``zeropoint`` and
            ``redshift`` (from :func:`galwidgets.data.load_hsc_pdr3`).
        checkpoint : Checkpoint
            The prior: its stamp size, pixel scale and zeropoint set the model grid.
        model_redshift : float
            The redshift at which the model's pixel scale holds (e.g. the median redshift of its
            training galaxies, 0.094 for ``desi-tiny``): the model's pixels keep their physical
            size at the cutout's redshift.
        model_shape : (int, int), optional
            Model grid; default the checkpoint's stamp.
        """
        shape = model_shape or (checkpoint.size, checkpoint.size)
        return cls(cutout.psfs, shape, model_pixel_scale=checkpoint.pixel_scale,
                   obs_pixel_scale=cutout.pixel_scale, model_redshift=model_redshift,
                   redshift=cutout.redshift, model_zeropoint=checkpoint.zeropoint,
                   obs_zeropoint=cutout.zeropoint, **kwargs)

    # -- internals -----------------------------------------------------------------------------
    def _build_fft(self) -> None:
        kh, kw = self.kernel.shape[1:]
        h, w = self.obs_shape
        self._pad = (h + kh - 1, w + kw - 1)
        self._kfft = torch.fft.rfft2(self.kernel, s=self._pad)
        self._kfft_adj = torch.fft.rfft2(self.kernel.flip(-2, -1), s=self._pad)

    def _convolve(self, x: torch.Tensor, kfft: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel.shape[1:]
        h, w = x.shape[-2:]
        xf = torch.fft.rfft2(x.double(), s=self._pad)
        full = torch.fft.irfft2(xf * kfft.to(x.device), s=self._pad)
        return full[..., kh // 2:kh // 2 + h, kw // 2:kw // 2 + w]

    def _check(self, x: torch.Tensor, shape: tuple[int, int], name: str) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        if x.ndim == 3:
            x = x[None]
        bands_ok = self.n_bands is None or (x.ndim == 4 and x.shape[1] == self.n_bands)
        if x.ndim != 4 or not bands_ok or tuple(x.shape[-2:]) != shape:
            bands = self.n_bands or "C"
            raise ValueError(f"{name}: expected images shaped (N, {bands}, {shape[0]}, {shape[1]}) "
                             f"(one band per PSF), got {tuple(x.shape)}")
        return x

    # -- public --------------------------------------------------------------------------------
    def to(self, device: str | torch.device) -> PSFOperator:
        """Move the operator's tensors to ``device`` (in place); returns ``self``."""
        for name in ("_my", "_mx", "kernel", "_flux", "_kfft", "_kfft_adj"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def resample(self, x: torch.Tensor) -> torch.Tensor:
        """``R x``: model grid to observation grid, flux conserving (float64)."""
        x = self._check(x, self.model_shape, "x").double()
        if self._identity:
            return x
        return torch.einsum("jh,nchw,iw->ncji", self._my.to(x.device), x, self._mx.to(x.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``A x`` for flux images ``x`` (N, C, H, W) on the model grid; differentiable.

        Returns the noiseless observation (N, C, H', W') in observation flux units, in the dtype
        of ``x``.
        """
        dtype = x.dtype if isinstance(x, torch.Tensor) and x.is_floating_point() else torch.float32
        y = self.resample(x) * self._flux.to(x.device if isinstance(x, torch.Tensor) else "cpu")
        return self._convolve(y, self._kfft).to(dtype)

    __call__ = forward

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        """``Aᵀ y``: observation grid to model grid (correlation with the PSF, flux factor, ``Rᵀ``)."""
        y = self._check(y, self.obs_shape, "y")
        dtype = y.dtype if y.is_floating_point() else torch.float32
        z = self._convolve(y.double(), self._kfft_adj) * self._flux.to(y.device)
        if not self._identity:
            z = torch.einsum("jh,ncji,iw->nchw", self._my.to(y.device), z, self._mx.to(y.device))
        return z.to(dtype)

    def estimate_sigma(self, y: Any) -> np.ndarray:
        """Per-band noise of observations ``y`` (see :func:`estimate_sigma_y`)."""
        return estimate_sigma_y(y)

    def __repr__(self) -> str:
        return (f"PSFOperator(bands={self.n_bands}, model_shape={self.model_shape}, obs_shape="
                f"{self.obs_shape}, obs/model pixel={self.ratio:.4g}, flux_scale="
                f"{np.round(self.flux_scale, 4).tolist()}, psf={tuple(self.kernel.shape[1:])})")


def _shape(value: Any, name: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected (H, W), two positive integers, got {value!r}") from None
    if h < 1 or w < 1 or (h, w) != tuple(value):
        raise ValueError(f"{name}: expected (H, W), two positive integers, got {value!r}")
    return h, w
