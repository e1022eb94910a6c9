"""Writes notebooks/deconvolve.ipynb: deconvolution with a diffusion prior, a mock and an HSC galaxy."""

from _nb import code, md, parameters, write

cells = [
md("""# Deconvolution with a diffusion prior

A telescope image is the galaxy convolved with the point-spread function (PSF) plus noise,
`y = k ⊛ x + n`. Inverting this is ill posed: many galaxies `x` fit `y` equally well, and a plain
inverse amplifies the noise. A diffusion model trained on galaxies is a prior that picks plausible
ones. **Diffusion Posterior Sampling** (DPS, Chung et al. 2023) steers every reverse step of the
sampler down the gradient of the misfit `‖(y − A x̂₀) / σ‖`, where `A` is the forward model (resample
to the observation's pixels, rescale the flux units, convolve with the PSF) and `x̂₀` the model's
current estimate of the clean galaxy, so the samples are drawn from (approximately) the posterior
`p(x | y)`.

`gw.diffusion.deconvolve` wraps this for flux images: the guidance step is scaled to the depth of
the observation, the reverse process stops at the prior's own pixel-noise level and the estimate is
then conditioned on the data by a Gaussian data step with a discrepancy stop (reduced χ² = 1), and
other sources in the cutout are masked out of the likelihood. Its summary gives the posterior mean
and spread and the **variance ratio** of Spagnoletti et al. (2024): posterior over prior variance
in a central aperture, about 0 where the data pin the galaxy down and about 1 where the result is
the prior's invention. With `reference="matched"` the prior samples are first rescaled to the
observed galaxy's brightness, so the ratio says whether the data pinned down the galaxy's *shape*
beyond what the prior already knows at that flux. Read the mean together with this map.

Two cases:

* **(a) a mock galaxy** held out from the shipped model's training set, observed through a known
  Moffat PSF with sky noise (`gw.data.observe`): here the truth is known, so the posterior mean is
  compared with it, against the observation's own difference from the truth;
* **(b) a real HSC PDR3 galaxy** (Aihara et al. 2022) from `hsc_dir` when it is there: g, r, i
  cutouts with their PSF models and spectroscopic redshift, skipped when the folder is absent. The
  model's pixel keeps its physical size at the galaxy's redshift, so the prior (trained at
  `z ≈ 0.09`) is resampled onto the HSC grid, and the flux converted from nanomaggies (zeropoint
  22.5) to HSC counts (zeropoint 27). χ² is quoted over the galaxy's footprint (its central
  segment), where the prior has to explain the data.

It writes into `output_dir`: `metrics.json`, `mock.png` (`result.figure`), `mock_truth.png`,
`mock_posterior.parquet` and, for HSC, `hsc.png` and `hsc_posterior.parquet` (per-band χ² and flux)."""),
parameters("""output_dir = "deconvolve-output"  # str: folder for metrics.json, parquet tables and PNG figures
checkpoint = "desi-tiny"  # str: shipped model name or .safetensors path (the prior)
galaxy_seed = 12345  # int: simulation seed of the mock galaxy (desi-tiny was trained on seed 1000)
psf_fwhm = 2.0  # float: FWHM in arcsec of the Moffat PSF of the mock observation
sky_sigma = [0.00702, 0.0115, 0.028]  # list: sky noise per band of the mock (flux); default desi-tiny's
noise_seed = 1  # int: seed of the mock observation's noise
n_samples = 4  # int: posterior samples
n_prior = 8  # int: prior samples drawn the same way, the reference of the variance ratio
steps = 30  # int: DPS steps
radius = 8.0  # float: aperture radius in model pixels of the variance ratio
reference = "matched"  # str: variance-ratio prior, "matched" (brightness-matched) or "flux" (all samples)
seed = 0  # int: seed of posterior and prior sampling
hsc_dir = "../shared/data/hsc_pdr3/test1"  # str: HSC PDR3 cutout folder (from the repository); empty: skip
model_redshift = 0.094  # float: typical redshift of the prior's training galaxies (desi-tiny: 0.094)
progress = True  # bool: show progress bars"""),
code("""import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Image, display

import galwidgets as gw
from galwidgets.diffusion.operators import PSFOperator, crop_center, estimate_sigma_y

out = Path(output_dir)
out.mkdir(parents=True, exist_ok=True)
ckpt = gw.pretrained.as_checkpoint(checkpoint)  # a .safetensors file or a shipped model's name
bands = list(ckpt.bands)
sigma = np.broadcast_to(np.asarray(sky_sigma, dtype=np.float64), (len(bands),))


def footprint_chi2(result, image):
    \"\"\"Reduced χ² over the central galaxy's segment (middle band), and the segment.\"\"\"
    segment = gw.metrics.central_segmap(image[len(image) // 2]).central
    return float(np.nanmean(result.residual[:, segment] ** 2)) if segment.any() else float("nan"), segment


def band_table(result):
    return pd.DataFrame({"band": bands, "chi2": result.chi2_per_band,
                         "posterior_flux": result.mean.sum(axis=(1, 2)),
                         "posterior_flux_std": result.samples.sum(axis=(2, 3)).std(axis=0, ddof=1)
                         if len(result.samples) > 1 else np.nan})"""),
md("""## (a) A mock galaxy through a known PSF

The mock galaxy is what the prior was trained on (same simulator, other seed), observed through a
Moffat PSF of `psf_fwhm` with the sky noise of the training images: the easy case, where the prior
is right about the population and only the PSF and noise hide the galaxy."""),
code("""truth = gw.data.simulate_survey(1, size=ckpt.size, bands=bands, pixel_scale=ckpt.pixel_scale,
                                seed=galaxy_seed, progress=False).images
y, kernels = gw.data.observe(truth, psf_fwhm, ckpt.pixel_scale, sigma, seed=noise_seed)
operator = PSFOperator.from_checkpoint(ckpt, kernels)
t0 = time.perf_counter()
mock = gw.diffusion.deconvolve(ckpt, y[0], operator, sigma, n_samples=n_samples, n_prior=n_prior, steps=steps,
                               weights=None, radius=radius, reference=reference, seed=seed,
                               progress=progress)
mock_seconds = time.perf_counter() - t0
mock_footprint_chi2, mock_segment = footprint_chi2(mock, y[0])
rms_posterior = float(np.sqrt(np.mean((mock.mean - truth[0]) ** 2)))
rms_observation = float(np.sqrt(np.mean((y[0] - truth[0]) ** 2)))
band_table(mock).to_parquet(out / "mock_posterior.parquet")
print(f"reduced chi2 {mock.chi2:.2f} (footprint {mock_footprint_chi2:.2f}), variance ratio "
      f"{mock.variance_ratio:.2f}; RMS difference from the truth: posterior mean {rms_posterior:.4f}, "
      f"observation {rms_observation:.4f} ({mock_seconds:.0f} s)")
fig = mock.figure(y, bands)
fig.savefig(out / "mock.png", dpi=90)
plt.show()"""),
md("""Against the truth: the posterior mean should be sharper than the observation and closer to
the true galaxy than the observation is (RMS ratio below 1), with differences of noise-like
amplitude and no structure the galaxy does not have."""),
code("""b = len(bands) // 2
panels = [("truth", truth[0, b]), ("observation", y[0, b]), ("posterior mean", mock.mean[b]),
          ("observation - truth", y[0, b] - truth[0, b]), ("mean - truth", mock.mean[b] - truth[0, b])]
vmax = np.percentile(truth[0, b], 99.5)
limit = 3 * sigma[b]
fig, axes = plt.subplots(1, len(panels), figsize=(2.4 * len(panels), 2.6))
for ax, (title, image) in zip(axes, panels):
    diff = "-" in title
    shown = ax.imshow(image, origin="lower", cmap="RdBu_r" if diff else "gray",
                      vmin=-limit if diff else -sigma[b], vmax=limit if diff else vmax)
    if diff:
        fig.colorbar(shown, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle(f"{bands[b]} band; RMS vs truth: observation {rms_observation:.4f}, posterior mean "
             f"{rms_posterior:.4f}", fontsize=9)
fig.tight_layout()
fig.savefig(out / "mock_truth.png", dpi=100)
plt.show()"""),
md("""## (b) A real HSC galaxy

The cutout's sky noise is estimated from the whole cutout by sigma clipping, the observation is
cropped to the field of view of the model's stamp at the galaxy's redshift, and neighbouring
sources are masked out of the likelihood (a prior of single galaxies cannot explain them)."""),
code("""def find_folder(path):
    \"\"\"`path` as given (absolute or from the working directory), else from the repository root.\"\"\"
    if not path:
        return None
    candidates = [Path(path), Path(gw.__file__).resolve().parents[1] / path]
    return next((p for p in candidates if p.is_dir()), None)


folder = find_folder(hsc_dir)
hsc = None
if folder is None:
    print(f"no HSC folder at {hsc_dir!r}: skipped" if hsc_dir else "hsc_dir is empty: skipped")
else:
    cutout = gw.data.load_hsc_pdr3(folder)  # g, r, i images (counts at zeropoint 27), PSFs, redshift
    redshift, full = cutout.redshift, cutout.images
    hsc_operator = gw.diffusion.operators.PSFOperator.from_cutout(cutout, ckpt, model_redshift=model_redshift)
    y_hsc = crop_center(full, hsc_operator.obs_shape).astype(np.float32)
    t0 = time.perf_counter()
    hsc = gw.diffusion.deconvolve(ckpt, y_hsc, hsc_operator, estimate_sigma_y(full), n_samples=n_samples,
                                  n_prior=n_prior, steps=steps, radius=radius, reference=reference,
                                  seed=seed, progress=progress)
    hsc_seconds = time.perf_counter() - t0
    hsc_footprint_chi2, hsc_segment = footprint_chi2(hsc, y_hsc)
    band_table(hsc).assign(band=["g", "r", "i"]).to_parquet(out / "hsc_posterior.parquet")
    print(f"{folder.name}: z = {redshift:.3f}, {full.shape[1]}x{full.shape[2]} px cropped to "
          f"{y_hsc.shape[1]}x{y_hsc.shape[2]}; reduced chi2 {hsc.chi2:.2f} "
          f"(footprint {hsc_footprint_chi2:.2f}), "
          f"variance ratio {hsc.variance_ratio:.2f} ({hsc_seconds:.0f} s)")
    fig = hsc.figure(y_hsc, ["HSC g", "HSC r", "HSC i"])
    fig.savefig(out / "hsc.png", dpi=90)
    plt.show()"""),
md("## Results"),
code("""metrics = {
    "mock": {
        "chi2": mock.chi2,
        "chi2_per_band": mock.chi2_per_band.tolist(),
        "chi2_footprint": mock_footprint_chi2,
        "footprint_pixels": int(mock_segment.sum()),
        "variance_ratio": mock.variance_ratio,
        "rms_residual_posterior": rms_posterior,
        "rms_residual_observation": rms_observation,
        "rms_ratio": rms_posterior / rms_observation,
        "psf_fwhm": psf_fwhm,
        "seconds": mock_seconds,
        "settings": mock.settings,
    },
    "hsc": None if hsc is None else {
        "name": folder.name,
        "redshift": redshift,
        "chi2": hsc.chi2,
        "chi2_per_band": hsc.chi2_per_band.tolist(),
        "chi2_footprint": hsc_footprint_chi2,
        "footprint_pixels": int(hsc_segment.sum()),
        "variance_ratio": hsc.variance_ratio,
        "obs_shape": list(y_hsc.shape[1:]),
        "seconds": hsc_seconds,
        "settings": hsc.settings,
    },
    "checkpoint": checkpoint,
    "n_samples": n_samples,
    "steps": steps,
    "figures": ["mock.png", "mock_truth.png"] + ([] if hsc is None else ["hsc.png"]),
    "tables": ["mock_posterior.parquet"] + ([] if hsc is None else ["hsc_posterior.parquet"]),
}
gw.notebooks.write_metrics(out, metrics)
print(f"wrote {out / 'metrics.json'}")"""),
]

if __name__ == "__main__":
    write("deconvolve", cells)
