"""Writes notebooks/inpaint.ipynb: fill satellite trails with a diffusion prior and score the recovery."""

from _nb import code, md, parameters, write

cells = [
md("""# Inpainting satellite trails

Satellite trails cross a growing fraction of survey exposures. Smith et al. (2022, MNRAS 511, 1808,
§5.1 and Fig. 6) masked trails on DESI galaxies and let their diffusion model fill the occluded
pixels: at every reverse step the known pixels are replaced by the observation diffused to that
noise level, so the model only invents the masked ones, consistently with what it sees around them
(the replacement method, eq. 8 of RePaint, Lugmayr et al. 2022). RePaint's *resampling* (each step
taken `resample` times, jumping back up in between) lets the filled pixels harmonise with their
surroundings; on the shipped model it removes the faint bias of plain replacement.

Here held-out mock galaxies (simulated with a seed the shipped model was not trained on) get random
trails from `gw.data.add_satellite_trails`; `gw.diffusion.inpaint_flux` draws `n_samples`
completions per galaxy, whose mean is the estimate and whose spread says how well the prior pins
the occluded flux down. The score is the paper's: **of the occluded pixels brighter than 3σ of the
sky, the fraction recovered to within 10 % of their true flux**. It is measured against the
observed (noisy) galaxy, as in the paper, and against the same galaxy simulated without noise: a
faint pixel can only land within 10 % of a noisy truth by reproducing the noise, which no fill can.
Biharmonic interpolation (scikit-image) is the classical baseline.

It writes into `output_dir`: `metrics.json`, `per_galaxy.parquet`, `inpainting.png` (the validation
figure) and `recovery.png` (inpainted against true flux of every scored pixel)."""),
parameters("""output_dir = "inpaint-output"  # str: folder for metrics.json, parquet tables and PNG figures
checkpoint = "desi-tiny"  # str: shipped model name or .safetensors path
n_galaxies = 16  # int: held-out mock galaxies to corrupt and inpaint
seed = 12345  # int: seed of the mock galaxies and their trails (desi-tiny was trained on seed 1000)
n_trails = 1  # int: trails per galaxy
trail_width = [2.0, 5.0]  # list: [low, high] FWHM of the trails in pixels, drawn uniformly
trail_brightness = [0.5, 5.0]  # list: [low, high] peak flux per pixel of the trails, drawn uniformly
n_samples = 4  # int: inpainted samples per galaxy (their mean is the estimate, their spread the error)
sampler = "ddim"  # str: "ddim" or "ddpm" reverse steps between the replacements
steps = 25  # int: reverse steps
resample = 4  # int: RePaint resampling, times each step is taken (1: plain replacement)
jump_length = 1  # int: RePaint jump length (steps jumped back at once)
threshold_sigma = 3.0  # float: pixels scored are occluded and brighter than this many sky sigmas
tolerance = 0.1  # float: a pixel counts as recovered within this fraction of its true flux
baseline = True  # bool: also score biharmonic interpolation (scikit-image)
n_show = 4  # int: galaxies in the validation figure
show_band = "r"  # str: band of the spread and error maps
batch_size = 64  # int: samples per network call
progress = True  # bool: show progress bars"""),
code("""import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Image, display

import galwidgets as gw

out = Path(output_dir)
out.mkdir(parents=True, exist_ok=True)
ckpt = gw.pretrained.as_checkpoint(checkpoint)  # a .safetensors file or a shipped model's name
bands = list(ckpt.bands)
b = bands.index(show_band)"""),
md("""## Held-out galaxies with satellite trails

The truth is the simulated galaxy with its sky noise (what the telescope would have seen without
the trail); the noise-free truth is the same galaxy rendered with negligible noise. The mask marks
the pixels where a trail exceeds 1 % of its peak: they are the ones inpainted, in all bands."""),
code("""like = dict(size=ckpt.size, bands=bands, pixel_scale=ckpt.pixel_scale, seed=seed, progress=False)
observed = gw.data.simulate_survey(n_galaxies, **like)
truth = observed.images
clean = gw.data.simulate_survey(n_galaxies, sky_sigma=1e-6, **like).images
trailed, mask = gw.data.add_satellite_trails(truth, n_trails=n_trails, seed=seed, width=tuple(trail_width),
                                             brightness=tuple(trail_brightness))
occluded = np.broadcast_to(mask, truth.shape)
sigma = gw.data.sky_noise(truth).astype(np.float32)[None, :, None, None]
scored = occluded & (truth > threshold_sigma * sigma)
scored_clean = occluded & (clean > threshold_sigma * sigma)
print(f"{n_galaxies} galaxies, {mask.mean():.1%} of pixels occluded; {scored.sum()} occluded pixel-bands "
      f"brighter than {threshold_sigma} sigma ({scored_clean.sum()} in the noise-free truth); sky sigma "
      + ", ".join(f"{band} {s:.4f}" for band, s in zip(bands, sigma.ravel())))"""),
md("## Inpainting"),
code("""t0 = time.perf_counter()
result = gw.diffusion.inpaint_flux(ckpt, trailed, mask, n_samples=n_samples, sampler=sampler, steps=steps,
                                   resample=resample, jump_length=jump_length, seed=seed,
                                   batch_size=batch_size, progress=progress)
seconds = time.perf_counter() - t0
fills = {"diffusion mean": result.mean}
if baseline:
    fills["biharmonic"] = gw.diffusion.inpainting.classical_fill(trailed, mask, "biharmonic")
print(f"{n_galaxies} x {n_samples} samples, {steps} steps x resample {resample}: {seconds:.1f} s")"""),
md("""## Recovery of the occluded flux

`recovered` is the paper's figure of merit; the signed relative error of the scored pixels shows
a bias (a fill systematically too faint or too bright), and `|mean − truth| / spread` whether the
spread of the samples is a fair error bar (0.67 for a calibrated Gaussian error, larger when the
samples are overconfident)."""),
code("""def recovered(pred, reference, mask):
    \"\"\"gw.metrics.inpainting_recovery with this notebook's threshold and tolerance.\"\"\"
    return gw.metrics.inpainting_recovery(pred, reference, mask, sigma.ravel(), n_sigma=threshold_sigma,
                                          tolerance=tolerance)


scores = {name: {"observed": recovered(fill, truth, mask),
                 "noise_free": recovered(fill, clean, mask)} for name, fill in fills.items()}
single = float(np.mean([recovered(result.samples[:, s], truth, mask) for s in range(n_samples)]))
with np.errstate(divide="ignore", invalid="ignore"):  # used on the scored (bright) pixels only
    relative = (result.mean - truth) / truth
    calibration = np.abs(result.mean - truth) / np.where(result.std > 0, result.std, np.nan)
rows = []
for i in range(n_galaxies):
    row = {"galaxy": i, "occluded_fraction": float(mask[i].mean()), "n_scored": int(scored[i].sum())}
    for name, fill in fills.items():
        one = slice(i, i + 1)
        row[f"recovered_{name.replace(' ', '_')}"] = recovered(fill[one], truth[one], mask[one])
    row["median_relative_error"] = float(np.median(relative[i][scored[i]])) if scored[i].any() else np.nan
    rows.append(row)
per_galaxy = pd.concat([observed.catalog.reset_index(drop=True), pd.DataFrame(rows)], axis=1)
per_galaxy.to_parquet(out / "per_galaxy.parquet")
pd.DataFrame(scores).T.rename(columns={"observed": "recovered (observed truth)",
                                       "noise_free": "recovered (noise-free truth)"})"""),
md("""## Validation figure

Per galaxy: the truth, the input with its trail (mask outlined), the inpainted mean and one sample
(RGB, the same scales throughout), the per-pixel spread of the samples in one band, and the error
of the mean in units of the sky noise. A good fill leaves no trace of the trail in the mean, shows
spread only under the mask, and an error map of noise-like amplitude (about ±1-2σ). The thin rim
along the mask edge is not an error of the fill: the trail's faint wings (below 1 % of its peak)
lie outside the mask and stay in the known pixels, as they would in real data."""),
code("""scales = gw.viz.band_scales(bands, truth, ckpt.zeropoint)
k = min(n_show, n_galaxies)
rgb = {name: gw.viz.rgb_composite(images[:k], bands, scales=scales)
       for name, images in (("truth", truth), ("with trail", trailed), ("inpainted mean", result.mean),
                            ("one sample", result.samples[:k, 0]))}
error = (result.mean[:k, b] - truth[:k, b]) / sigma[0, b, 0, 0]
fig, axes = plt.subplots(k, 6, figsize=(12, 2.1 * k), squeeze=False)
for i in range(k):
    for j, (title, image) in enumerate(rgb.items()):
        axes[i, j].imshow(image[i], origin="lower")
        if title == "with trail":
            axes[i, j].contour(mask[i, 0], levels=[0.5], colors="w", linewidths=0.5)
        axes[0, j].set_title(title, fontsize=9)
    spread = axes[i, 4].imshow(result.std[i, b], origin="lower", cmap="magma")
    fig.colorbar(spread, ax=axes[i, 4], fraction=0.046)
    err = axes[i, 5].imshow(error[i], origin="lower", cmap="RdBu_r", vmin=-5, vmax=5)
    fig.colorbar(err, ax=axes[i, 5], fraction=0.046)
    axes[i, 0].set_ylabel(f"galaxy {i}")
axes[0, 4].set_title(f"spread ({show_band}, flux)", fontsize=9)
axes[0, 5].set_title(f"(mean - truth) / sky sigma ({show_band})", fontsize=9)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
fig.savefig(out / "inpainting.png", dpi=90)
plt.show()"""),
code("""fig, ax = plt.subplots(figsize=(4.6, 4))
lo, hi = np.percentile(truth[scored], [0.5, 99.5]) if scored.any() else (1e-3, 1.0)
line = np.geomspace(max(lo, 1e-6), hi, 50)
for name, fill in fills.items():
    ax.scatter(truth[scored], fill[scored], s=3, alpha=0.5,
               label=f"{name}: {scores[name]['observed']:.2f} recovered")
for factor in (1 - tolerance, 1 + tolerance):
    ax.plot(line, factor * line, "k--", lw=0.8, label=f"within {tolerance:.0%}" if factor > 1 else None)
ax.set(xscale="log", yscale="log", xlabel="true flux per pixel", ylabel="inpainted flux per pixel",
       title=f"occluded pixels > {threshold_sigma:g} sigma of the sky")
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(out / "recovery.png", dpi=100)
plt.show()"""),
md("## Results"),
code("""metrics = {
    "recovery_fraction": scores["diffusion mean"]["observed"],
    "recovery_fraction_noise_free": scores["diffusion mean"]["noise_free"],
    "recovery_fraction_single_sample": single,
    "baselines": {name: value for name, value in scores.items() if name != "diffusion mean"},
    "median_relative_error": float(np.median(relative[scored])) if scored.any() else float("nan"),
    "spread_calibration": float(np.nanmedian(calibration[scored])) if scored.any() else float("nan"),
    "occluded_fraction": float(mask.mean()),
    "n_scored_pixels": int(scored.sum()),
    "n_scored_pixels_noise_free": int(scored_clean.sum()),
    "n_galaxies": n_galaxies,
    "n_samples": n_samples,
    "sampler": sampler,
    "steps": steps,
    "resample": resample,
    "threshold_sigma": threshold_sigma,
    "tolerance": tolerance,
    "seconds": seconds,
    "seconds_per_sample": seconds / (n_galaxies * n_samples),
    "checkpoint": checkpoint,
    "figures": ["inpainting.png", "recovery.png"],
    "tables": ["per_galaxy.parquet"],
}
gw.notebooks.write_metrics(out, metrics)
print(f"recovered {metrics['recovery_fraction']:.3f} of the bright occluded pixels to {tolerance:.0%} "
      f"({metrics['recovery_fraction_noise_free']:.3f} against the noise-free truth)")"""),
]

if __name__ == "__main__":
    write("inpaint", cells)
