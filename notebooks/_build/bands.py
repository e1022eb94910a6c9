# ruff: noqa: E501  (cell sources are notebook code)
"""Writes notebooks/bands.ipynb: band-to-band translation (u -> K) of mock galaxies, applied to the HDF."""

from _nb import code, md, parameters, write

cells = [
md("""# Band translation: predicting a galaxy's K-band image from its u-band image

A galaxy's appearance changes with wavelength: the ultraviolet traces young stars in discs, spiral
arms and star-forming clumps, the near-infrared the older stellar mass in bulges and smooth discs.
The band-translation thesis asked how much of the infrared picture a network can infer from the
ultraviolet/optical one. It trained an image-to-image network on **paired** cutouts of the same
galaxies (GALEX FUV/NUV, SDSS *ugriz* and 2MASS *K*, resampled to one pixel grid) and found the
ResNet generator of Johnson et al. (2016), as used in pix2pix (Isola et al. 2017) and CycleGAN (Zhu
et al. 2017), worked best with **one** down-sampling block and **nine** residual blocks.
`gw.models.BandTranslator` is that network; `gw.models.train_translator` fits it with an L1 loss
(pix2pix's choice, robust to bright cores).

Here the paired data are mock galaxies: `gw.data.simulate_survey(n, instrument="uv-ir")` renders
each galaxy's bulge, disc, arms and clumps, with their different spectral energy distributions, in
the eight bands FUV NUV u g r i z K, each with its band's PSF and sky noise on one 0.4″ grid, so
the same galaxy is seen in every band, as in the thesis's matched data.

How good is the translation? Following the thesis:

* the **SSIM gain** per galaxy (its eq. 3.5, `gw.metrics.ssim_gain`):
  SSIM(output, target) − SSIM(input, target), with SSIM the structural similarity of Wang et al.
  (2004). Positive: the output is closer to the true target-band image than the input image was;
  0: no better than handing over the input; negative: worse. With several input bands, each
  target band is compared with the input band nearest to it in wavelength;
* the **Gini and M20** (Lotz, Primack & Madau 2004; `gw.metrics.gini_m20`) of inputs, outputs
  and targets: does the translated galaxy have the concentration (Gini) and the distribution of
  its brightest light (M20) of a target-band galaxy rather than of an input-band one?

Finally the trained model is applied to real galaxies: stamps of the Hubble eXtreme Deep Field
(`gw.data.hubble_deep_field`), as the thesis applied its model to SDSS galaxies. That part is a
demonstration, not a measurement (see there why).

It writes into `output_dir`: `metrics.json`, `ssim_gain.parquet`, `gini_m20.parquet`,
`hdf_translated.fits`, `ssim_gain.png`, `gini_m20.png`, `examples.png`, `hdf.png` and, when it trains
the model, `translator.safetensors`, `train_log.parquet` and `training.png`."""),
parameters("""output_dir = "bands-output"  # str: folder for metrics.json, tables, figures and the trained model
in_bands = ["u"]  # list: input band(s) among FUV NUV u g r i z K
out_bands = ["K"]  # list: target band(s) among FUV NUV u g r i z K
checkpoint = ""  # str: translator .safetensors to reuse (its bands win); "" trains one here
n_train = 500  # int: mock galaxies to train on
n_test = 150  # int: held-out mock galaxies to score
size = 64  # int: cutout side in pixels (even)
steps = 1200  # int: training steps
batch_size = 16  # int: galaxies per training step
base_channels = 8  # int: channels of the first convolution (64 in the thesis; 8 keeps a CPU run short)
n_blocks = 9  # int: residual blocks (9 in the thesis)
lr = 2e-4  # float: Adam learning rate (pix2pix and CycleGAN use 2e-4)
loss = "l1"  # str: paired training loss, "l1" or "mse"
seed = 0  # int: seed of the network weights, the training batches and the added noise
data_seed = 1  # int: training galaxies use data_seed, held-out galaxies data_seed + 1
n_show = 6  # int: galaxies in the example figure
n_hdf = 8  # int: Hubble Deep Field galaxies to translate (0: skip)
hdf_channels = []  # list: HDF channels (B, G, R) standing in for in_bands; []: nearest in wavelength
n_jobs = 2  # int: processes for simulating the mock galaxies
progress = True  # bool: show progress bars"""),
code("""import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from astropy.visualization import AsinhStretch, ImageNormalize
from IPython.display import Image, display

import galwidgets as gw
from galwidgets.data.instruments import BAND_WAVELENGTHS

out = Path(output_dir)
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(seed)
mock = dict(size=size, instrument="uv-ir", n_jobs=n_jobs, progress=progress)
t0 = time.perf_counter()
test = gw.data.simulate_survey(n_test, seed=data_seed + 1, **mock)
print(f"{n_test} held-out mock galaxies, bands {' '.join(test.bands)}, {size}x{size} px at "
      f"{test.pixel_scale}\\"/px: {time.perf_counter() - t0:.0f} s")"""),
md("""## The translator

Unless a trained `checkpoint` is given, a `BandTranslator` is trained here on `n_train` paired
mock galaxies. One normalizer (an arcsinh stretch with one scale per band, fitted on all bands)
maps every band's flux to the network's range, so input and target keep their own band's scale,
and it is stored with the weights: `gw.models.translate` maps flux in to flux out."""),
code("""train_seconds = None
if checkpoint:
    ckpt = gw.load_checkpoint(checkpoint)
    if not isinstance(ckpt.model, gw.models.BandTranslator):
        raise TypeError(f"checkpoint: expected a BandTranslator checkpoint, got {type(ckpt.model).__name__}")
    in_bands, out_bands = list(ckpt.model.in_bands), list(ckpt.model.out_bands)
    print(f"loaded {checkpoint}: {' '.join(in_bands)} -> {' '.join(out_bands)}")
else:
    t0 = time.perf_counter()
    train = gw.data.simulate_survey(n_train, seed=data_seed, **mock)
    print(f"{n_train} training galaxies: {time.perf_counter() - t0:.0f} s")
    torch.manual_seed(seed)
    model = gw.models.BandTranslator(in_bands, out_bands, base_channels=base_channels, n_blocks=n_blocks)
    t0 = time.perf_counter()
    ckpt = gw.models.train_translator(model, train, steps, batch_size, lr=lr, loss=loss, seed=seed,
                                      progress=progress)
    train_seconds = time.perf_counter() - t0
    ckpt.save(out / "translator.safetensors")
    ckpt.history.to_parquet(out / "train_log.parquet")
    fig, ax = plt.subplots(figsize=(4.6, 2.8))
    ax.plot(ckpt.history.step, ckpt.history.loss, lw=0.6, alpha=0.5)
    ax.plot(ckpt.history.step, ckpt.history.loss.rolling(25, min_periods=1).mean(), lw=1.5)
    ax.set(xlabel="step", ylabel=f"{loss} loss (model space)", yscale="log",
           title=f"{' '.join(in_bands)} -> {' '.join(out_bands)}: {steps} steps in {train_seconds:.0f} s")
    ax.title.set_fontsize(9)
    fig.tight_layout()
    fig.savefig(out / "training.png", dpi=100)
    plt.show()
n_parameters = sum(p.numel() for p in ckpt.model.generator.parameters())
print(f"BandTranslator: {n_parameters / 1e6:.2f} M parameters in the generator")"""),
md("""## SSIM gain on held-out galaxies

Each held-out galaxy's input band(s) are translated and compared with its true target-band image.
The *baseline* of each target band is the input band nearest to it in wavelength: the image an
astronomer would have used without the model.

SSIM compares local means, contrasts and correlations scaled by the target's dynamic range; it
rewards getting the shape right and forgives much of an overall brightness error. As a photometric
check, the ratio of output to target flux within the central `size / 8` pixels is also given (first
target band): 1 for an unbiased prediction. A short training run typically gets the shape before
the brightness of the bright core."""),
code("""def nearest(wavelengths, wavelength):  # the name in wavelengths (name: nm) nearest in log wavelength
    return min(wavelengths, key=lambda name: abs(np.log(wavelengths[name] / wavelength)))


def channels(survey, bands):
    return survey.images[:, [survey.bands.index(b) for b in bands]]


def central_flux(images, radius):  # flux within `radius` px of the stamp centre
    h, w = images.shape[-2:]
    y, x = np.mgrid[:h, :w]
    inside = (x - (w - 1) / 2) ** 2 + (y - (h - 1) / 2) ** 2 <= radius ** 2
    return images[..., inside].sum(axis=-1)


t0 = time.perf_counter()
output = gw.models.translate(ckpt, test, batch_size=64, progress=progress)
baseline_bands = [nearest({b: BAND_WAVELENGTHS[b] for b in in_bands}, BAND_WAVELENGTHS[t]) for t in out_bands]
baseline, target = channels(test, baseline_bands), channels(test, out_bands)
gain = gw.metrics.ssim_gain(output.images, baseline, target, bands=out_bands, per_band=len(out_bands) > 1)
radius = size / 8
with np.errstate(divide="ignore", invalid="ignore"):
    flux_ratio = central_flux(output.images[:, 0], radius) / central_flux(target[:, 0], radius)
per_galaxy = pd.concat([test.catalog[["id", "redshift", "bulge_fraction", "mag_r"]].reset_index(drop=True),
                        gain, pd.DataFrame({"flux_ratio": flux_ratio})], axis=1)
per_galaxy.to_parquet(out / "ssim_gain.parquet")
q25, q50, q75 = np.nanpercentile(gain.ssim_gain, [25, 50, 75])
flux_quartiles = np.nanpercentile(flux_ratio, [25, 50, 75])
print(f"translated and scored {len(test)} galaxies in {time.perf_counter() - t0:.1f} s")
print(f"SSIM gain: median {q50:+.3f} (quartiles {q25:+.3f} .. {q75:+.3f}); "
      f"positive for {np.mean(gain.ssim_gain > 0):.0%} of galaxies")
print(f"output / target flux within {radius:g} px in {out_bands[0]}: median {flux_quartiles[1]:.2f} "
      f"(quartiles {flux_quartiles[0]:.2f} .. {flux_quartiles[2]:.2f})")
gain.describe().loc[["mean", "25%", "50%", "75%"]]"""),
code("""fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.0))
axes[0].hist(gain.ssim_gain.dropna(), bins=30, color="C0")
for q, ls in ((q25, ":"), (q50, "-"), (q75, ":")):
    axes[0].axvline(q, color="k", ls=ls, lw=0.8)
axes[0].axvline(0, color="C3", lw=0.8)
axes[0].set(xlabel="SSIM gain", ylabel="galaxies", title="median and quartiles (black); no gain (red)")
lo = np.nanmin([gain.ssim_input.min(), gain.ssim_output.min()])
points = axes[1].scatter(gain.ssim_input, gain.ssim_output, s=6, c=per_galaxy.redshift, cmap="viridis")
fig.colorbar(points, ax=axes[1], label="redshift")
axes[1].plot([lo, 1], [lo, 1], "k--", lw=0.8)
axes[1].set(xlabel=f"SSIM(input {' '.join(baseline_bands)}, target)", ylabel="SSIM(output, target)",
            title="above the line: the translation helps")
for ax in axes:
    ax.title.set_fontsize(8)
fig.tight_layout()
fig.savefig(out / "ssim_gain.png", dpi=100)
plt.show()"""),
md("""## Examples

One row per galaxy, in the first target band: the input image (the nearest input band), the
translated output, the true target and the residual output − target (red: too bright, blue: too
faint). Input, output and target use an arcsinh stretch; output and target share one scale. The
network predicts the *expected* target image given the input, so its output is smooth: it cannot
know the target's sky noise, which is independent of the input."""),
code("""k = min(n_show, len(test))
fig, axes = plt.subplots(k, 4, figsize=(6.4, 1.65 * k), squeeze=False)
titles = [f"input {baseline_bands[0]}", f"output {out_bands[0]}", f"target {out_bands[0]}", "output - target"]
for i in range(k):
    image_in, image_out, image_true = baseline[i, 0], output.images[i, 0], target[i, 0]
    norm_in = ImageNormalize(image_in, vmin=0, vmax=np.percentile(image_in, 99.5), stretch=AsinhStretch(0.1))
    norm_out = ImageNormalize(vmin=0, vmax=np.percentile(image_true, 99.5), stretch=AsinhStretch(0.1))
    residual = image_out - image_true
    limit = 3 * np.percentile(np.abs(residual), 90)
    panels = [(image_in, dict(norm=norm_in, cmap="gray")), (image_out, dict(norm=norm_out, cmap="gray")),
              (image_true, dict(norm=norm_out, cmap="gray")),
              (residual, dict(vmin=-limit, vmax=limit, cmap="RdBu_r"))]
    for j, (image, style) in enumerate(panels):
        axes[i, j].imshow(image, origin="lower", interpolation="nearest", **style)
        axes[i, j].set_axis_off()
        if i == 0:
            axes[i, j].set_title(titles[j], fontsize=8)
    axes[i, 0].text(1, 1, f"z={per_galaxy.redshift[i]:.3f}  gain {gain.ssim_gain[i]:+.2f}", color="w",
                    fontsize=6)
fig.tight_layout()
fig.savefig(out / "examples.png", dpi=100)
plt.close(fig)
display(Image(filename=str(out / "examples.png")))"""),
md("""## Morphology of inputs, outputs and targets: Gini and M20

Gini (how unequally the light is shared among a galaxy's pixels) and M20 (how far from the centre
its brightest 20 % of light lies) are measured on the galaxy's segmentation above the sky noise.
The translator's outputs are noise-free (an L1 regression predicts the median image, and the
target's sky noise cannot be predicted from the input), so their sky noise is about zero and the
segmentation would reach far into the faint outskirts, which changes Gini and M20 for reasons that
have nothing to do with the galaxy. As in `benchmarks/bench_translator.py` the outputs are
therefore also measured with white noise of the targets' sky level added (`output + noise`): that
is the fair comparison with the noisy targets. A good translation moves the distributions from
those of the input band towards those of the target band."""),
code("""sigma = gw.data.sky_noise(target).astype(np.float32)
noise = rng.standard_normal(output.images.shape, dtype=np.float32) * sigma[None, :, None, None]
sets = {"input": baseline, "output": output.images, "output + noise": output.images + noise,
        "target": target}
morphology = {name: gw.metrics.gini_m20(images, band=0, bands=out_bands, progress=False)
              for name, images in sets.items()}
long = pd.concat({name: table[["gini", "m20", "flag"]] for name, table in morphology.items()},
                 names=["set", "galaxy"]).reset_index()
long.to_parquet(out / "gini_m20.parquet")
truth = morphology["target"]
summary = pd.DataFrame({name: {"median Gini": table.gini.median(), "median M20": table.m20.median(),
                               "measured": int(table.gini.notna().sum()),
                               "KL Gini (target || set)": gw.metrics.binned_kl(truth.gini, table.gini),
                               "KL M20 (target || set)": gw.metrics.binned_kl(truth.m20, table.m20)}
                        for name, table in morphology.items()}).T
summary"""),
code("""fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.1))
styles = {"input": "C0", "output": "C1", "output + noise": "C2", "target": "k"}
for name, table in morphology.items():
    axes[0].scatter(table.m20, table.gini, s=5, alpha=0.6, color=styles[name], label=name)
    for ax, column in zip(axes[1:], ("gini", "m20")):
        ax.hist(table[column].dropna(), bins=20, histtype="step", color=styles[name], density=True)
axes[0].set(xlabel="M20", ylabel="Gini", title=f"Gini-M20 in {out_bands[0]} (input: {baseline_bands[0]})")
axes[0].invert_xaxis()
axes[1].set(xlabel="Gini", ylabel="density")
axes[2].set(xlabel="M20", ylabel="density")
axes[2].invert_xaxis()
axes[0].legend(fontsize=7)
for ax in axes:
    ax.title.set_fontsize(8)
fig.tight_layout()
fig.savefig(out / "gini_m20.png", dpi=100)
plt.show()"""),
md("""## Real galaxies: the Hubble eXtreme Deep Field

The thesis applied its translator to SDSS galaxies. The only real multi-band galaxy image that
ships with our dependencies is the Hubble eXtreme Deep Field (XDF) colour image bundled with
scikit-image, so it stands in here, **with strong caveats**:

* it is an 8-bit JPEG made for display: a non-linear stretch of calibrated data, so its pixel values
  are not fluxes and its three channels are not photometric bands;
* its blue, green and red channels combine several HST filters. We assume, roughly, that blue
  holds the bluest optical light (ACS F435W/F606W, ~0.5 µm), green the red optical (ACS
  F775W-F850LP, ~0.8 µm) and red the near-infrared (WFC3/IR F105W-F160W, ~1.4 µm); the JPEG
  records none of this;
* for each input band we take the channel nearest in wavelength (`hdf_channels` overrides the
  choice). For *u* (0.36 µm) that is blue, which is already redder than *u*; for the target *K*
  (2.2 µm) the nearest channel, red, is still bluer than *K* and is shown only for a qualitative
  look, not as the truth;
* the XDF galaxies are at much higher redshift, smaller, fainter and seen at a far finer resolution
  than the nearby mock galaxies the model learned from. The stamps are scaled by one factor per
  channel so that their median central flux matches that of the mock galaxies in the input band.

So these translations show how the model behaves on real galaxy light profiles outside its
training domain; they are not K-band predictions of the XDF galaxies. Stamps whose segment is cut
by the stamp edge are skipped; the brightest sources include a few stars (diffraction spikes).
As a rough check, the median central colour (input band − target band, in magnitudes, within the
central `size / 8` pixels) of the translated XDF galaxies is compared with that of the mock outputs
and targets."""),
code("""HDF_WAVELENGTHS = {"B": 500.0, "G": 800.0, "R": 1400.0}  # nm; rough channel centres (see above)


hdf_metrics = None
if n_hdf > 0:
    hdf_all = gw.data.hubble_deep_field(size=size)
    hdf = hdf_all[np.flatnonzero(~hdf_all.catalog["truncated"].to_numpy())[:n_hdf]]
    chosen = list(hdf_channels) or [nearest(HDF_WAVELENGTHS, BAND_WAVELENGTHS[b]) for b in in_bands]
    if len(chosen) != len(in_bands) or not set(chosen) <= set(hdf.bands):
        raise ValueError(f"hdf_channels: expected one of {hdf.bands} per input band {in_bands}, got {chosen}")
    scales = [float(np.median(central_flux(channels(test, [b])[:, 0], radius))
                    / np.median(central_flux(channels(hdf, [c])[:, 0], radius)))
              for b, c in zip(in_bands, chosen)]
    hdf_in = channels(hdf, chosen) * np.asarray(scales, dtype=np.float32)[None, :, None, None]
    hdf_out = gw.models.translate(ckpt, hdf_in, bands=in_bands)
    hdf_out.save(out / "hdf_translated.fits")
    compare = nearest(HDF_WAVELENGTHS, BAND_WAVELENGTHS[out_bands[0]])
    in_index = in_bands.index(baseline_bands[0])

    def colour(band_in, band_out):  # median central colour band_in - band_out (mag); NaN for negative flux
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = central_flux(band_out, radius) / central_flux(band_in, radius)
            return float(np.nanmedian(2.5 * np.log10(ratio)))

    hdf_metrics = {"n": len(hdf), "channels": dict(zip(in_bands, chosen)),
                   "flux_scales": dict(zip(in_bands, scales)), "comparison_channel": compare,
                   "output_finite": bool(np.isfinite(hdf_out.images).all()),
                   "colour_median": colour(hdf_in[:, in_index], hdf_out.images[:, 0]),
                   "mock_colour_median_target": colour(baseline[:, 0], target[:, 0]),
                   "mock_colour_median_output": colour(baseline[:, 0], output.images[:, 0])}
    print(f"{len(hdf)} XDF galaxies; input channels {hdf_metrics['channels']}, flux scale factors "
          f"{', '.join(f'{s:.3g}' for s in scales)}")
    print(f"central colour {baseline_bands[0]} - {out_bands[0]} (mag, median): XDF translated "
          f"{hdf_metrics['colour_median']:.2f}; mock outputs {hdf_metrics['mock_colour_median_output']:.2f}, "
          f"mock targets {hdf_metrics['mock_colour_median_target']:.2f}")"""),
code("""if hdf_metrics is not None:
    k = len(hdf)
    colour = gw.viz.rgb_composite(hdf.images, hdf.bands, stretch="asinh")
    fig, axes = plt.subplots(k, 4, figsize=(6.4, 1.65 * k), squeeze=False)
    titles = ["XDF colour (B G R)", f"input: XDF {chosen[in_index]} as {baseline_bands[0]}",
              f"translated {out_bands[0]}", f"XDF {compare} (for comparison)"]
    for i in range(k):
        images = [hdf_in[i, in_index], hdf_out.images[i, 0], hdf.images[i, hdf.bands.index(compare)]]
        axes[i, 0].imshow(colour[i], origin="lower", interpolation="nearest")
        for j, image in enumerate(images, start=1):
            norm = ImageNormalize(image, vmin=0, vmax=np.percentile(image, 99.5), stretch=AsinhStretch(0.1))
            axes[i, j].imshow(image, origin="lower", interpolation="nearest", cmap="gray", norm=norm)
        for j in range(4):
            axes[i, j].set_axis_off()
            if i == 0:
                axes[i, j].set_title(titles[j], fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "hdf.png", dpi=100)
    plt.close(fig)
    display(Image(filename=str(out / "hdf.png")))"""),
md("## Results"),
code("""def by_set(column, kind=float):  # one summary column as {set: value}, with JSON-friendly set names
    return {name.replace(" + ", "_plus_"): kind(v) for name, v in summary[column].items()}


metrics = {
    "in_bands": in_bands,
    "out_bands": out_bands,
    "baseline_bands": baseline_bands,
    "ssim_gain": {"median": q50, "q25": q25, "q75": q75, "mean": gain.attrs["mean_gain"],
                  "fraction_positive": float(np.mean(gain.ssim_gain > 0))},
    "flux_ratio": {"median": flux_quartiles[1], "q25": flux_quartiles[0], "q75": flux_quartiles[2],
                   "radius_pixels": radius},
    "ssim_input_median": float(gain.ssim_input.median()),
    "ssim_output_median": float(gain.ssim_output.median()),
    "gini_median": by_set("median Gini"),
    "m20_median": by_set("median M20"),
    "kl_gini_vs_target": by_set("KL Gini (target || set)"),
    "kl_m20_vs_target": by_set("KL M20 (target || set)"),
    "measured": by_set("measured", int),
    "hdf": hdf_metrics,
    "n_train": None if checkpoint else n_train,
    "n_test": n_test,
    "size": size,
    "steps": int(ckpt.config.get("step", steps)),
    "final_loss": None if checkpoint else float(ckpt.history.loss.tail(25).mean()),
    "train_seconds": train_seconds,
    "n_parameters": int(n_parameters),
    "checkpoint": checkpoint or str(out / "translator.safetensors"),
    "figures": ["ssim_gain.png", "examples.png", "gini_m20.png"] + (["hdf.png"] if hdf_metrics else [])
               + ([] if checkpoint else ["training.png"]),
    "tables": ["ssim_gain.parquet", "gini_m20.parquet"] + ([] if checkpoint else ["train_log.parquet"]),
}
gw.notebooks.write_metrics(out, metrics)
print(f"SSIM gain median {q50:+.3f} (quartiles {q25:+.3f} .. {q75:+.3f}); wrote {out / 'metrics.json'}")"""),
]

if __name__ == "__main__":
    write("bands", cells)
