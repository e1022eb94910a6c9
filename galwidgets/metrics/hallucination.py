"""Where did the data constrain a posterior sample? The posterior-to-prior variance ratio.

In deconvolution with Diffusion Posterior Sampling, the spread of many posterior samples of one
observed galaxy shows how uncertain each reconstructed pixel is. Dividing it by the spread of
unconditional (prior) samples of the same diffusion model gives a scale-free measure of how much
the observation constrained each pixel: a ratio near 0 means the data pinned the pixel down, a
ratio near 1 means the posterior is as free as the prior there, i.e. that pixel is
"prior-driven" (hallucinated detail rather than recovered detail). Averaged in a circular aperture
on the galaxy, the ratio is the single-number variance-ratio check of the DPS deconvolution study::

    R(r) = mean over pixels p with |p - c| < r of  Var_post[x_p] / Var_prior[x_p]

Sample stacks are ``(S, C, H, W)`` (S samples of one galaxy), or ``(N, S, C, H, W)`` for N
galaxies at once. The prior stack is shared by all galaxies (``(S', C, H, W)``) or given per
galaxy (``(N, S', C, H, W)``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import as_real_array, check_finite, check_positive
from .photometry import aperture_weights

__all__ = ["posterior_summary", "prior_driven_mask", "variance_ratio", "variance_ratio_map"]


def _as_samples(samples: Any, name: str) -> np.ndarray:
    """``samples`` as a float64 array of 4 (S, C, H, W) or 5 (N, S, C, H, W) dimensions."""
    arr = as_real_array(samples, name)
    if arr.ndim not in (4, 5):
        raise ValueError(
            f"{name}: expected samples shaped (S, C, H, W) or (N, S, C, H, W), got {arr.ndim}-D shape "
            f"{arr.shape}"
        )
    if arr.shape[-4] < 2:
        raise ValueError(f"{name}: expected at least 2 samples to estimate a variance, got {arr.shape[-4]}")
    if arr.size == 0:
        raise ValueError(f"{name}: expected non-empty samples, got shape {arr.shape}")
    return arr.astype(np.float64, copy=False)


def _variances(posterior: Any, prior: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """Per-pixel sample variances (ddof=1) of both stacks, broadcastable; True when batched."""
    post = _as_samples(posterior, "posterior")
    pri = _as_samples(prior, "prior")
    if post.shape[-3:] != pri.shape[-3:]:
        raise ValueError(
            f"prior: expected samples of shape (C, H, W) = {post.shape[-3:]} like posterior, got "
            f"{pri.shape[-3:]}"
        )
    batched = post.ndim == 5
    if pri.ndim == 5 and (not batched or pri.shape[0] != post.shape[0]):
        raise ValueError(
            f"prior: a per-galaxy prior (N, S, C, H, W) needs posterior (N, S, C, H, W) with the same N; "
            f"got prior {pri.shape} and posterior {post.shape}"
        )
    axis = -4
    return np.var(post, axis=axis, ddof=1), np.var(pri, axis=axis, ddof=1), batched


def variance_ratio_map(posterior: Any, prior: Any) -> np.ndarray:
    """Pixel-wise ratio of posterior to prior sample variance.

    Parameters
    ----------
    posterior : array or torch.Tensor, (S, C, H, W) or (N, S, C, H, W)
        Posterior samples (e.g. from ``gw.samplers.dps``) of one galaxy, or of N galaxies; at least
        two per galaxy.
    prior : array or torch.Tensor, (S', C, H, W) or (N, S', C, H, W)
        Unconditional samples of the same model in the same flux units; at least two. S' need not
        equal S.

    Returns
    -------
    numpy.ndarray
        ``Var_post / Var_prior`` (unbiased sample variances), ``(C, H, W)`` or ``(N, C, H, W)``.
        NaN where the prior variance is 0 (or not finite) or the posterior variance is not finite,
        never a division warning.
    """
    var_post, var_prior, _ = _variances(posterior, prior)
    return _ratio(var_post, var_prior)


def _ratio(var_post: np.ndarray, var_prior: np.ndarray) -> np.ndarray:
    var_post, var_prior = np.broadcast_arrays(var_post, var_prior)
    ok = np.isfinite(var_post) & np.isfinite(var_prior) & (var_prior > 0)
    out = np.full(var_post.shape, np.nan)
    np.divide(var_post, var_prior, out=out, where=ok)
    return out


def variance_ratio(
    posterior: Any,
    prior: Any,
    radius: float = 8.0,
    center: tuple[float, float] | None = None,
    *,
    per_band: bool = False,
    reference: str = "flux",
) -> float | np.ndarray:
    """Mean posterior-to-prior variance ratio in a centred circular aperture.

    The mean of :func:`variance_ratio_map` over the pixels of a circle of ``radius`` pixels (each
    pixel weighted by the fraction of it inside the circle, photutils' exact overlap), first in each
    band; the overall value is the mean over bands. About 0: the observation determined the galaxy;
    about 1: the samples are as varied as unconditional ones, the reconstruction is prior-driven.

    Parameters
    ----------
    posterior : array or torch.Tensor, (S, C, H, W) or (N, S, C, H, W)
        Posterior samples of one galaxy or of N galaxies (at least two samples each).
    prior : array or torch.Tensor, (S', C, H, W) or (N, S', C, H, W)
        Prior (unconditional) samples, shared or per galaxy (at least two).
    radius : float
        Aperture radius in pixels (default 8, about 2 arcsec at 0.262"/px, the bright part of a
        typical mock galaxy); must fit inside the image.
    center : (x, y), optional
        Aperture centre in zero-based pixels; default the image centre ``((W-1)/2, (H-1)/2)``.
    per_band : bool
        Return one value per band instead of the mean over bands.
    reference : {"flux", "matched"}
        What the posterior variance is compared with. ``"flux"``: the unconditional prior
        samples as they are. ``"matched"``: prior samples of the posterior's brightness: each
        prior sample ``k`` is rescaled by ``F / F_k``, the aperture flux (summed over bands) of
        the posterior mean over its own, so the reference is ``F² Var_prior[x / F_k]``, the
        spread of the prior's galaxy *shapes* at the observed galaxy's flux (see Notes).

    Notes
    -----
    In flux units the plain ratio mixes two things: how well the data constrain the galaxy's
    brightness and how well they constrain its shape. A fainter observation of the same galaxy
    still rules out all bright galaxies, so the posterior variance in flux falls with the
    galaxy's flux while the unconditional prior variance (dominated by the prior's bright
    galaxies) is fixed: the plain ratio *decreases* as galaxies get fainter, although their
    reconstructions are ever more prior-driven. In the DPS deconvolution study (Spagnoletti et al.
    2024, "Bayesian deconvolution of astronomical images with diffusion models: quantifying
    prior-driven features in reconstructions", Table 2) the ratio instead rises with magnitude:
    once images are normalised in brightness, the prior is a distribution of galaxy shapes and a
    fainter galaxy only means a noisier observation. ``"matched"`` gives
    that comparison in flux units: the prior is asked what galaxies *of this brightness* look
    like, so a ratio near 1 means the data did not pin down the shape beyond what the prior
    already says at that flux. The prior samples are normalised one by one (by their own flux)
    while the posterior keeps its spread in flux, so an uncertain total flux also counts as
    uncertainty. Values above 1 occur for galaxies near the noise: a noisy or noise-trained
    model's pixel noise does not shrink with the galaxy's flux, while the matched prior's does.
    Prior samples with aperture flux <= 0 are left out (at least two must remain); where the
    posterior mean's aperture flux is <= 0 the ratio is NaN.

    Returns
    -------
    float or numpy.ndarray
        For ``(S, C, H, W)`` samples a float (or ``(C,)`` with ``per_band``); for ``(N, S, C, H,
        W)`` samples ``(N,)`` (or ``(N, C)``). Pixels where the ratio is undefined (prior variance
        0) are left out of the mean; a band with no defined pixel in the aperture is NaN, and so is
        the band mean then.
    """
    if reference not in ("flux", "matched"):
        raise ValueError(f"reference: expected 'flux' or 'matched', got {reference!r}")
    if reference == "matched":
        ratio, batched = _matched_ratio(posterior, prior, radius, center)
    else:
        var_post, var_prior, batched = _variances(posterior, prior)
        ratio = _ratio(var_post, var_prior)
    if not batched:
        ratio = ratio[None]
    h, w = ratio.shape[-2:]
    radius = check_positive(radius, "radius")
    if center is None:
        center = ((w - 1) / 2, (h - 1) / 2)
    else:
        if len(center) != 2:
            raise ValueError(f"center: expected (x, y) in pixels, got {center!r}")
        center = (check_finite(center[0], "center"), check_finite(center[1], "center"))
    cx, cy = center
    if cx - radius < -0.5 or cy - radius < -0.5 or cx + radius > w - 0.5 or cy + radius > h - 0.5:
        raise ValueError(
            f"radius: a {radius} px aperture at (x, y) = ({cx}, {cy}) does not fit {h}x{w} images"
        )
    weights = aperture_weights((h, w), radius, center)
    defined = np.isfinite(ratio)
    wsum = np.einsum("nchw,hw->nc", defined.astype(np.float64), weights)
    total = np.einsum("nchw,hw->nc", np.where(defined, ratio, 0.0), weights)
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.where(wsum > 0, total / np.where(wsum > 0, wsum, 1.0), np.nan)
    values = per if per_band else per.mean(axis=1)
    if batched:
        return values
    return values[0] if per_band else float(values[0])


def _aperture(shape: tuple[int, int], radius: float, center: Any) -> np.ndarray:
    h, w = shape
    radius = check_positive(radius, "radius")
    if center is None:
        center = ((w - 1) / 2, (h - 1) / 2)
    cx, cy = (check_finite(center[0], "center"), check_finite(center[1], "center"))
    if cx - radius < -0.5 or cy - radius < -0.5 or cx + radius > w - 0.5 or cy + radius > h - 0.5:
        raise ValueError(
            f"radius: a {radius} px aperture at (x, y) = ({cx}, {cy}) does not fit {h}x{w} images"
        )
    return aperture_weights((h, w), radius, (cx, cy))


def _matched_ratio(posterior: Any, prior: Any, radius: float, center: Any) -> tuple[np.ndarray, bool]:
    """Ratio map against brightness-matched prior samples (``reference="matched"``)."""
    post = _as_samples(posterior, "posterior")
    pri = _as_samples(prior, "prior")
    _variances(post, pri)  # shape checks
    batched = post.ndim == 5
    if not batched:
        post = post[None]
    if pri.ndim == 4:
        pri = np.broadcast_to(pri[None], (len(post), *pri.shape))
    weights = _aperture(post.shape[-2:], radius, center)
    out = np.full((len(post), *post.shape[-3:]), np.nan)
    for n in range(len(post)):
        flux_post = float(np.einsum("chw,hw->", post[n].mean(axis=0), weights))
        flux_prior = np.einsum("schw,hw->s", pri[n], weights)
        keep = flux_prior > 0
        if keep.sum() < 2:
            raise ValueError(f"prior: expected at least 2 samples with positive aperture flux to match "
                             f"brightness, got {int(keep.sum())}")
        if not flux_post > 0:
            continue
        shapes = pri[n][keep] / flux_prior[keep, None, None, None]
        out[n] = _ratio(np.var(post[n], axis=0, ddof=1), flux_post**2 * np.var(shapes, axis=0, ddof=1))
    return (out if batched else out[0]), batched


def prior_driven_mask(posterior: Any, prior: Any, threshold: float = 0.5) -> np.ndarray:
    """Pixels the observation did not constrain: variance ratio at or above ``threshold``.

    Parameters
    ----------
    posterior, prior : array or torch.Tensor
        Sample stacks as in :func:`variance_ratio_map`.
    threshold : float
        Ratio from which a pixel counts as prior-driven; 0.5 means the data removed less than half
        of the prior variance. Values near 1 are stricter (only pixels as free as the prior).

    Returns
    -------
    numpy.ndarray of bool
        ``(C, H, W)`` or ``(N, C, H, W)``; False where the ratio is undefined (NaN).
    """
    threshold = check_positive(threshold, "threshold")
    ratio = variance_ratio_map(posterior, prior)
    with np.errstate(invalid="ignore"):
        return np.isfinite(ratio) & (ratio >= threshold)


def posterior_summary(
    samples: Any,
    prior_samples: Any,
    radius: float = 8.0,
    center: tuple[float, float] | None = None,
    *,
    reference: str = "flux",
) -> dict[str, Any]:
    """Posterior mean, standard deviation and variance ratio of DPS samples of one or N galaxies.

    Parameters
    ----------
    samples : array or torch.Tensor, (S, C, H, W) or (N, S, C, H, W)
        Posterior samples in flux units (e.g. ``gw.samplers.dps(..., return_flux=True)``), at
        least two per galaxy.
    prior_samples : array or torch.Tensor, (S', C, H, W) or (N, S', C, H, W)
        Unconditional samples of the same model in the same flux units (at least two).
    radius : float
        Aperture radius in pixels of the averaged ratio (see :func:`variance_ratio`).
    center : (x, y), optional
        Aperture centre; default the image centre.
    reference : {"flux", "matched"}
        Prior reference of ``variance_ratio_map`` / ``variance_ratio`` (see
        :func:`variance_ratio`). ``"matched"`` (prior samples at the posterior's brightness) is
        the one that grows as galaxies get fainter, as in the DPS deconvolution study; ``"flux"``
        compares with the unconditional prior as is.

    Returns
    -------
    dict
        ``mean`` and ``std`` (unbiased, ddof=1) of the posterior, ``(C, H, W)`` or
        ``(N, C, H, W)``; ``variance_ratio_map`` (:func:`variance_ratio_map`, same shape);
        ``variance_ratio`` (:func:`variance_ratio`: the band-averaged aperture mean, a float or
        ``(N,)``) and ``variance_ratio_per_band`` (``(C,)`` or ``(N, C)``); ``n_samples``.
    """
    post = _as_samples(samples, "samples")
    prior = _as_samples(prior_samples, "prior_samples")
    if reference == "matched":
        ratio_map = _matched_ratio(post, prior, radius, center)[0]
    else:
        ratio_map = variance_ratio_map(post, prior)
    per_band = variance_ratio(post, prior, radius, center, per_band=True, reference=reference)
    return {
        "mean": post.mean(axis=-4),
        "std": post.std(axis=-4, ddof=1),
        "variance_ratio_map": ratio_map,
        "variance_ratio": variance_ratio(post, prior, radius, center, reference=reference),
        "reference": reference,
        "variance_ratio_per_band": per_band,
        "n_samples": int(post.shape[-4]),
    }
