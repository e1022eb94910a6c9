"""Deconvolution of an observed galaxy with a diffusion prior: posterior samples, mean, trust map.

:func:`deconvolve` is the flux-space workflow around :func:`~galwidgets.diffusion.posterior.dps`:
it picks the guidance step size for the depth of the observation, stops the reverse process at the
prior's own noise level and conditions the estimate on the data there (Gaussian data step with a
discrepancy stop), masks other sources, draws prior samples the same way, and summarises the
posterior with :func:`galwidgets.metrics.posterior_summary` (mean, spread, variance-ratio map of
Spagnoletti et al. 2024). Every choice is an argument; the defaults are the recipe measured in
``benchmarks/bench_dps.py`` (mock galaxies and the HSC PDR3 cutouts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .._validation import check_positive_int
from ..checkpoints import Checkpoint
from ..data.transforms import AsinhStretch
from ..metrics.hallucination import posterior_summary
from .operators import estimate_sigma_y, neighbour_weights
from .posterior import dps, model_noise_sigma, noise_timestep

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["DeconvolutionResult", "deconvolve", "guidance_step_size"]


@dataclass(eq=False)
class DeconvolutionResult:
    """Posterior of one deconvolved observation (flux units of the model grid).

    Attributes
    ----------
    samples : numpy.ndarray, (S, C, H, W)
        Posterior samples (``E[x_0 | x_t, y]`` at ``t_stop`` with the data step, see
        :func:`deconvolve`).
    prior : numpy.ndarray, (S', C, H, W)
        Prior samples drawn the same way without the data, the reference of the variance ratio.
    mean, std : numpy.ndarray, (C, H, W)
        Posterior mean and per-pixel standard deviation.
    variance_ratio_map : numpy.ndarray, (C, H, W)
        Posterior-to-prior variance per pixel (``reference`` definition).
    variance_ratio : float
        Its mean in the central aperture of ``radius`` pixels: ~0 data-driven, >~1 prior-driven.
    reconvolved : numpy.ndarray, (C, H', W')
        The operator applied to the posterior mean, on the observation's grid.
    residual : numpy.ndarray, (C, H', W')
        ``(y − A mean) / σ_y``; pixels left out of the fit (``weights == 0``) are NaN.
    chi2 : float
        Reduced χ² of the re-convolved mean over the fitted pixels; ``chi2_per_band`` per band.
    settings : dict
        What was run: ``zeta``, ``t_stop``, ``steps``, ``n_samples``, ``sigma_y``, ``reference``,
        ``radius``.
    """

    samples: np.ndarray
    prior: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    variance_ratio_map: np.ndarray
    variance_ratio: float
    reconvolved: np.ndarray
    residual: np.ndarray
    chi2: float
    chi2_per_band: np.ndarray
    settings: dict = field(default_factory=dict)

    def figure(self, y: Any, bands: Any = None) -> Figure:
        """Observation, posterior mean, spread, variance ratio and residual, one row per band."""
        import matplotlib.pyplot as plt
        from astropy.visualization import AsinhStretch, ImageNormalize, PercentileInterval

        y = np.asarray(y, dtype=np.float64)
        y = y[0] if y.ndim == 4 else y
        c = len(self.mean)
        bands = list(bands) if bands is not None else [f"band {i}" for i in range(c)]
        panels = [("observation", y), ("posterior mean", self.mean), ("posterior std", self.std),
                  ("variance ratio", self.variance_ratio_map), ("residual / σ", self.residual)]
        fig, axes = plt.subplots(c, len(panels), figsize=(2.3 * len(panels), 2.3 * c), squeeze=False)
        for b in range(c):
            for j, (title, image) in enumerate(panels):
                ax = axes[b, j]
                data = image[b]
                if title == "variance ratio":
                    im = ax.imshow(data, origin="lower", cmap="magma", vmin=0, vmax=1)
                elif title == "residual / σ":
                    im = ax.imshow(data, origin="lower", cmap="RdBu_r", vmin=-4, vmax=4)
                else:
                    finite = data[np.isfinite(data)]
                    norm = ImageNormalize(finite, interval=PercentileInterval(99.5),
                                          stretch=AsinhStretch(0.05))
                    im = ax.imshow(data, origin="lower", cmap="gray", norm=norm)
                if j >= 3:
                    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
                ax.set_xticks([])
                ax.set_yticks([])
                if b == 0:
                    ax.set_title(title, fontsize=9)
            axes[b, 0].set_ylabel(bands[b])
        fig.suptitle(f"χ²_ν = {self.chi2:.2f}, variance ratio = {self.variance_ratio:.2f} "
                     f"({self.settings.get('n_samples')} samples)", fontsize=10)
        fig.tight_layout()
        return fig


def guidance_step_size(operator: Any, sigma_y: np.ndarray, prior_noise: np.ndarray, steps: int,
                       shape: tuple[int, int, int]) -> float:
    """DPS step size ``ζ = (0.2 / steps) · min(1, median_b σ_y,b / σ_A,b)²`` for an observation's depth.

    ``σ_A`` is the prior's own pixel noise (``prior_noise`` per band, flux) propagated through
    the operator. The guidance gradient of the (unsquared) σ-weighted misfit grows as ``1 / σ_y``:
    against an observation much deeper than the prior's noise (``desi-tiny`` on HSC: σ_y/σ_A ≈
    0.05-0.15) the default ``0.2 / steps`` makes samples diverge. For data as noisy as the
    training images the step stays DPS's default. Below that, the step falls with the square of the
    depth ratio, an empirical choice: with the linear scaling used first, the ``desi-tiny``
    retrained on the mock with irregulars and mergers diverged on all three HSC PDR3 test cutouts
    at 15 steps (χ² 5600-8400; the earlier checkpoint did not), while steps 4-8x smaller all gave
    the same χ² (``BENCHMARKS.md``, "Deconvolution"): the Gaussian data step at the end does the
    fitting, the guidance only has to keep the samples near the data.
    """
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn((8, *shape), generator=gen, dtype=torch.float64)
    noise = noise * torch.as_tensor(np.asarray(prior_noise, dtype=np.float64)).reshape(1, -1, 1, 1)
    with torch.no_grad():
        through = operator(noise).double()
    h, w = through.shape[-2:]
    inner = through[..., h // 8: h - h // 8, w // 8: w - w // 8]  # away from edge effects
    sigma_a = inner.std(dim=(0, 2, 3)).cpu().numpy()
    ratio = float(np.median(np.broadcast_to(np.asarray(sigma_y, dtype=np.float64), sigma_a.shape) / sigma_a))
    return 0.2 / steps * min(1.0, ratio) ** 2


def _prior_noise(checkpoint: Checkpoint, prior_noise: Any) -> np.ndarray:

    if prior_noise is None:
        if not isinstance(checkpoint.normalizer, AsinhStretch):
            raise ValueError("prior_noise: needed (the training sky noise per band, flux) when the "
                             f"checkpoint's normalizer is {type(checkpoint.normalizer).__name__}, "
                             "not an AsinhStretch fitted to the training noise")
        prior_noise = checkpoint.normalizer.softening
    noise = np.broadcast_to(np.asarray(prior_noise, dtype=np.float64), (len(checkpoint.bands),))
    if not np.all(np.isfinite(noise) & (noise > 0)):
        raise ValueError(f"prior_noise: expected positive noise levels per band, got {prior_noise!r}")
    return noise.copy()


def deconvolve(
    checkpoint: Checkpoint,
    y: Any,
    operator: Any,
    sigma_y: Any = None,
    *,
    n_samples: int = 8,
    n_prior: int = 16,
    steps: int = 30,
    zeta: float | None = None,
    weights: Any = "neighbours",
    prior_noise: Any = None,
    early_stop: bool = True,
    data_chi2: float | None = 1.0,
    prior: Any = None,
    radius: float = 8.0,
    reference: str = "matched",
    seed: int = 0,
    progress: bool = True,
) -> DeconvolutionResult:
    """Deconvolve one observed galaxy with a diffusion prior (Diffusion Posterior Sampling).

    Parameters
    ----------
    checkpoint : Checkpoint
        The prior (e.g. ``gw.pretrained.load("desi-tiny")``).
    y : array, (C, H', W')
        The observation, in the operator's output units (e.g. HSC counts at zeropoint 27).
    operator : callable
        Linear forward model from model-grid flux to the observation, e.g.
        :class:`~galwidgets.diffusion.operators.PSFOperator`.
    sigma_y : float or array, optional
        Noise of ``y`` (per band, or a map); estimated by sigma clipping when None.
    n_samples, n_prior : int
        Posterior samples, and prior samples for the variance ratio (ignored with ``prior``).
    steps : int
        DDIM-style DPS steps (stochastic, ``eta=1``).
    zeta : float, optional
        Guidance step size; default :func:`guidance_step_size` for this observation's depth.
    weights : "neighbours", None or array
        Per-pixel likelihood weights; ``"neighbours"`` leaves out the pixels of other sources
        (:func:`~galwidgets.diffusion.operators.neighbour_weights`), which a one-galaxy prior
        cannot explain.
    prior_noise : float or sequence, optional
        The prior's own pixel noise in flux per band (its training sky noise); default the
        softening of the checkpoint's :class:`~galwidgets.data.AsinhStretch`, which is fitted to it.
    early_stop : bool
        Stop at the timestep where the diffusion noise equals the prior's pixel noise and return
        ``E[x_0 | x_t]`` conditioned on ``y`` by the Gaussian data step (see
        :func:`~galwidgets.diffusion.posterior.dps`, ``t_stop`` and ``data_step``): a noise-trained
        prior then does not paint its training noise into the result. False: plain DPS samples.
    data_chi2 : float or None
        Discrepancy stop of the data step (reduced χ² per sample; default 1).
    prior : array, (S', C, H, W), optional
        Prior samples in flux to compare with; drawn with the same sampler and no data when None.
    radius : float
        Aperture radius (model pixels) of the variance ratio.
    reference : {"matched", "flux"}
        Variance-ratio definition (:func:`galwidgets.metrics.variance_ratio`).
    seed : int
        Seeds posterior and prior sampling.
    progress : bool
        Show progress bars.

    Returns
    -------
    DeconvolutionResult
    """

    if not (hasattr(checkpoint, "model") and hasattr(checkpoint, "normalizer")):
        raise TypeError(f"checkpoint: expected a galwidgets Checkpoint, got {type(checkpoint).__name__}")
    n_samples = check_positive_int(n_samples, "n_samples")
    steps = check_positive_int(steps, "steps")
    y = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y, dtype=np.float32)
    if y.ndim != 3:
        raise ValueError(f"y: expected one observation (C, H, W), got shape {y.shape}")
    sigma = estimate_sigma_y(y) if sigma_y is None else sigma_y
    if isinstance(weights, str):
        if weights != "neighbours":
            raise ValueError(f"weights: expected 'neighbours', None or an array, got {weights!r}")
        weights = neighbour_weights(y)
    noise = _prior_noise(checkpoint, prior_noise)
    shape = (len(checkpoint.bands), *(getattr(operator, "model_shape", None) or (checkpoint.size,) * 2))
    sig = np.asarray(sigma.detach().cpu() if isinstance(sigma, torch.Tensor) else sigma, dtype=np.float64)
    sig = np.broadcast_to(sig.reshape(-1, 1, 1) if sig.size == len(y) else sig, y.shape)  # per pixel
    if zeta is None:
        zeta = guidance_step_size(operator, sig.mean(axis=(1, 2)), noise, steps, shape)
    t_stop = noise_timestep(checkpoint.schedule, float(model_noise_sigma(checkpoint.normalizer, noise).max()))
    stop = {"t_stop": t_stop, "output": "x0_hat"} if early_stop else {}
    common = {"steps": steps, "return_flux": True, "progress": progress, **stop}
    samples = dps(checkpoint, None, y, operator, sigma, n_samples=n_samples, zeta=zeta, weights=weights,
                  data_step=early_stop, data_chi2=data_chi2,
                  generator=torch.Generator().manual_seed(seed), **common).cpu().numpy()
    if prior is None:  # the same sampler without the data: zero guidance, no data step
        prior = dps(checkpoint, None, np.zeros_like(y), operator, 1.0, n_samples=check_positive_int(
            n_prior, "n_prior"), zeta=0.0, generator=torch.Generator().manual_seed(seed + 1),
            **common).cpu().numpy()
    summary = posterior_summary(samples, prior, radius=radius, reference=reference)
    with torch.no_grad():
        reconvolved = operator(torch.from_numpy(summary["mean"][None].astype(np.float32))).double().numpy()[0]
    residual = (y - reconvolved) / sig
    fitted = np.ones(y.shape, bool) if weights is None else np.broadcast_to(np.asarray(weights) > 0, y.shape)
    residual = np.where(fitted, residual, np.nan)
    per_band = np.array([np.nanmean(residual[b] ** 2) for b in range(len(y))])
    return DeconvolutionResult(
        samples=samples, prior=np.asarray(prior), mean=summary["mean"], std=summary["std"],
        variance_ratio_map=summary["variance_ratio_map"], variance_ratio=float(summary["variance_ratio"]),
        reconvolved=reconvolved, residual=residual, chi2=float(np.nanmean(residual**2)),
        chi2_per_band=per_band,
        settings={"zeta": float(zeta), "t_stop": t_stop if early_stop else None, "steps": steps,
                  "n_samples": n_samples, "sigma_y": np.asarray(sigma).tolist(), "reference": reference,
                  "radius": radius, "seed": seed},
    )
