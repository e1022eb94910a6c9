"""Tutorial 9: translate galaxy images between bands (UV, optical, IR) and judge the translation."""

from _tut import code, exercise, md, parameters, write

CELLS = [
md(r"""# 9 · Mapping between bands: from the ultraviolet to the infrared

A galaxy looks different at every wavelength. Its ultraviolet light comes from young, hot stars:
star-forming clumps and spiral arms. Its near-infrared light traces the old stars that hold most of
the stellar mass: a smooth disc and a bright bulge. The optical bands sit in between. How much of
a galaxy's infrared picture can be predicted from its ultraviolet one? A band-translation thesis
trained an image-to-image network on *paired* cutouts of the same galaxies (GALEX FUV/NUV, SDSS
*ugriz*, 2MASS *K*) and scored it with the structural similarity and with Gini–M20 morphology. This
tutorial does the same on mock galaxies.

**Learning goals**
- see the same galaxies in eight bands and say why they differ;
- train a small image-to-image translator (`gw.models.BandTranslator`, the ResNet generator of
  Johnson et al. 2016 as used by pix2pix, Isola et al. 2017) with an L1 loss;
- score each galaxy by its **SSIM gain** (Wang et al. 2004 SSIM; the thesis's eq. 3.5) and read
  its distribution;
- compare the **Gini–M20** morphology (Lotz, Primack & Madau 2004) of inputs, predictions and
  targets, also in the `MorphologyExplorer` widget;
- apply the model to real galaxies of the Hubble eXtreme Deep Field and know why that is only a
  demonstration.

Runs in about a minute and a half on 2 idle CPU cores (most of it training the translator), two
to three minutes when they are busy."""),
parameters("""in_bands = ["u"]  # list: input band(s) among FUV NUV u g r i z K
out_bands = ["K"]  # list: target band(s)
n_train = 300  # int: paired mock galaxies to train on
n_test = 96  # int: held-out mock galaxies to score
size = 48  # int: cutout side in pixels (0.4 arcsec pixels)
steps = 800  # int: training steps (about a minute on 2 CPU cores)
batch_size = 16  # int: galaxies per training step
lr = 1e-3  # float: Adam learning rate (pix2pix: 2e-4, for much longer runs)
base_channels = 8  # int: channels of the first convolution (64 in pix2pix; 8 keeps a CPU run short)
n_blocks = 9  # int: residual blocks (9 in the thesis)
n_show = 5  # int: galaxies in the example figures
n_hdf = 6  # int: Hubble Deep Field galaxies to translate (0: skip)
seed = 0  # int: seed of the weights, batches and added noise
data_seed = 1  # int: training galaxies use data_seed, held-out ones data_seed + 1
threads = 1  # int: CPU threads for torch (1 is fastest on a shared machine; 0: torch's default)
progress = False  # bool: show progress bars"""),
code("""import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from astropy.visualization import AsinhStretch, ImageNormalize

import galwidgets as gw

if threads > 0:
    torch.set_num_threads(threads)  # a second thread gains little here, and loses a lot on a busy machine
torch.manual_seed(seed)
rng = np.random.default_rng(seed)
mock = dict(size=size, instrument="uv-ir", progress=False)
test = gw.data.simulate_survey(n_test, seed=data_seed + 1, **mock)
wavelength = gw.data.BAND_WAVELENGTHS
print(test)
print("bands and central wavelengths (nm):", {b: wavelength[b] for b in test.bands})"""),
md(r"""## One galaxy, eight bands

`simulate_survey(n, instrument="uv-ir")` renders each mock galaxy's bulge, disc, spiral arms and
star-forming clumps, each with its own spectral energy distribution, in FUV, NUV, *u*, *g*, *r*,
*i*, *z* and *K*, with each band's seeing and sky noise on one 0.4″ pixel grid. Every band is shown
with its own arcsinh stretch (the brightness scales differ by orders of magnitude)."""),
code("""def show(image, ax, title=None, vmax=None):  # one band, arcsinh stretch from 0 to vmax
    vmax = np.percentile(image, 99.5) if vmax is None else vmax
    norm = ImageNormalize(vmin=0, vmax=vmax, stretch=AsinhStretch(0.1))
    ax.imshow(image, origin="lower", cmap="gray", norm=norm)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=8)


k = min(3, n_test)
fig, axes = plt.subplots(k, len(test.bands), figsize=(1.3 * len(test.bands), 1.4 * k), squeeze=False)
for i in range(k):
    for j, band in enumerate(test.bands):
        show(test.images[i, j], axes[i, j], band if i == 0 else None)
    axes[i, 0].text(1, 1, f"B/T={test.catalog.bulge_fraction[i]:.2f}", color="w", fontsize=7)
fig.tight_layout()
plt.show()"""),
md(r"""The clumps and arms that dominate FUV have almost vanished in *K*, where the smooth disc and
the bulge (B/T: the bulge's share of the light) take over. Predicting *K* from *u* means inferring
the old stellar population from the young one: the network must learn, for example, that a galaxy
with a faint compact *u* core probably has a bright red bulge.

## The translator

`gw.models.BandTranslator` is the ResNet generator of Johnson et al. (2016): a 7×7 convolution,
`n_downsampling` stride-2 convolutions, `n_blocks` residual blocks $h \mapsto h + F(h)$, and
mirror-image up-sampling. The thesis found one down-sampling and nine residual blocks best. It is
trained on pairs $(x, y)$ (input band, target band of the same galaxy) with the L1 loss of pix2pix:

$$\mathcal L(\theta) = \mathbb E_{(x,y)}\,\big\|G_\theta(x) - y\big\|_1 .$$

L1 is minimised by the *median* of $y$ given $x$, which is robust to the bright cores of galaxies.
The images are mapped to the network's range by one arcsinh stretch per band (fitted on all
bands), and `gw.models.translate` maps flux in to flux out. We train with Adam at a learning rate
of $10^{-3}$, five times pix2pix's, which suits a small network and a run of a minute or two."""),
code("""train = gw.data.simulate_survey(n_train, seed=data_seed, **mock)
model = gw.models.BandTranslator(in_bands, out_bands, base_channels=base_channels, n_blocks=n_blocks)
t0 = time.perf_counter()
ckpt = gw.models.train_translator(model, train, steps, batch_size, lr=lr, loss="l1", seed=seed,
                                  progress=progress)
seconds = time.perf_counter() - t0
n_parameters = sum(p.numel() for p in model.parameters())
print(f"{' '.join(in_bands)} -> {' '.join(out_bands)}: {n_parameters / 1e3:.0f} k parameters, "
      f"{steps} steps in {seconds:.0f} s")
fig, ax = plt.subplots(figsize=(5, 2.6))
ax.plot(ckpt.history.step, ckpt.history.loss, lw=0.5, alpha=0.4)
ax.plot(ckpt.history.step, ckpt.history.loss.rolling(25, min_periods=1).mean(), lw=1.5)
ax.set(xlabel="step", ylabel="L1 loss (model space)", yscale="log", title="training")
fig.tight_layout()
plt.show()"""),
md(r"""## Scoring a translation: the SSIM gain

The structural similarity of an image $a$ with a reference $b$ (Wang et al. 2004) compares local
means $\mu$, standard deviations $\sigma$ and the covariance $\sigma_{ab}$ in a Gaussian window of
$\sigma = 1.5$ px, averaged over the image:

$$\mathrm{SSIM}(a, b) = \frac{(2\mu_a\mu_b + C_1)(2\sigma_{ab} + C_2)}{(\mu_a^2 + \mu_b^2 + C_1)(\sigma_a^2 + \sigma_b^2 + C_2)},
\qquad C_1 = (0.01L)^2,\; C_2 = (0.03L)^2,$$

with $L$ the dynamic range of the target. 1 means identical. The **baseline** is what an astronomer
would use without a model: the input image itself (with several input bands, the one nearest in
wavelength). The thesis's eq. 3.5 scores each galaxy by how much the model improves on it:

$$\Delta\mathrm{SSIM} = \mathrm{SSIM}(\hat y, y) - \mathrm{SSIM}(x, y).$$

Positive: the prediction $\hat y$ is closer to the true target $y$ than the input $x$ was. The
first factor of SSIM compares mean brightness, so the input loses points merely for being another
band with another flux scale: the gain rewards getting the brightness right as well as the
structure."""),
code("""def channels(survey, bands):
    return survey.images[:, [survey.bands.index(b) for b in bands]]


def nearest(band, candidates):  # the candidate band nearest in log wavelength
    return min(candidates, key=lambda b: abs(np.log(wavelength[b] / wavelength[band])))


prediction = gw.models.translate(ckpt, test).images
baseline_bands = [nearest(b, in_bands) for b in out_bands]
baseline, target = channels(test, baseline_bands), channels(test, out_bands)
gain = gw.metrics.ssim_gain(prediction, baseline, target, bands=out_bands)
q25, q50, q75 = np.nanpercentile(gain.ssim_gain, [25, 50, 75])
print(f"SSIM gain: median {q50:+.3f} (quartiles {q25:+.3f} .. {q75:+.3f}), "
      f"positive for {np.mean(gain.ssim_gain > 0):.0%} of {len(gain)} galaxies")

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
axes[0].hist(gain.ssim_gain.dropna(), bins=20, color="C0")
axes[0].axvline(0, color="C3", lw=1)
axes[0].axvline(q50, color="k", lw=1, ls="--")
axes[0].set(xlabel="SSIM gain", ylabel="galaxies", title="gain per galaxy (red: no gain; dashed: median)")
points = axes[1].scatter(gain.ssim_input, gain.ssim_output, s=10, c=test.catalog.bulge_fraction,
                         cmap="coolwarm")
fig.colorbar(points, ax=axes[1], label="bulge fraction B/T")
lo = float(np.nanmin([gain.ssim_input.min(), gain.ssim_output.min()]))
axes[1].plot([lo, 1], [lo, 1], "k--", lw=0.8)
axes[1].set(xlabel=f"SSIM(input {baseline_bands[0]}, target)", ylabel="SSIM(prediction, target)",
            title="above the line: the model helps")
for ax in axes:
    ax.title.set_fontsize(9)
fig.tight_layout()
plt.show()"""),
md(r"""Now look at a few galaxies: input, prediction, target, and the residual prediction − target
(red: too bright, blue: too faint). Prediction and target share one brightness scale."""),
code("""k = min(n_show, n_test)
fig, axes = plt.subplots(k, 4, figsize=(6.4, 1.6 * k), squeeze=False)
for i in range(k):
    vmax = np.percentile(target[i, 0], 99.5)
    show(baseline[i, 0], axes[i, 0], f"input {baseline_bands[0]}" if i == 0 else None)
    show(prediction[i, 0], axes[i, 1], f"prediction {out_bands[0]}" if i == 0 else None, vmax)
    show(target[i, 0], axes[i, 2], f"target {out_bands[0]}" if i == 0 else None, vmax)
    residual = prediction[i, 0] - target[i, 0]
    limit = 3 * np.percentile(np.abs(residual), 90)
    axes[i, 3].imshow(residual, origin="lower", cmap="RdBu_r", vmin=-limit, vmax=limit)
    axes[i, 3].set_axis_off()
    axes[i, 0].text(1, 1, f"gain {gain.ssim_gain[i]:+.2f}", color="w", fontsize=7)
axes[0, 3].set_title("prediction - target", fontsize=8)
fig.tight_layout()
plt.show()"""),
md(r"""Look at the residuals: is the core too bright or too faint, the light too concentrated or too
spread out? Faint regular stripes are the *checkerboard artefacts* of transposed convolutions
(Odena et al. 2016), which fade with training. The predictions are also **smooth**: the sky noise
of the target band is independent of the input, so the best guess of it is zero. That is right
for the expected image, but it matters for any measurement made above a noise threshold, as the
next one is.

## Morphology: Gini and M20

Two non-parametric measures of where a galaxy's light is (Lotz, Primack & Madau 2004), on the
pixels $X_i$ of its segmentation map, sorted by flux:

$$G = \frac{1}{\bar X\, n(n-1)} \sum_{i=1}^{n} (2i - n - 1)\,|X_i|,
\qquad M_{20} = \log_{10}\frac{\sum_{i \in \text{brightest 20\%}} f_i r_i^2}{\sum_i f_i r_i^2},$$

where $r_i$ is the distance from the centre that minimises the total second moment. $G$ is 0 if all
pixels are equally bright and 1 if one pixel holds all the light; $M_{20}$ is more negative for a
single concentrated core and less negative when the brightest light is spread into clumps and arms.
Bulge-dominated galaxies sit at high $G$ and low $M_{20}$; Lotz et al. (2008) draw the line
$G = 0.14\,M_{20} + 0.80$ between bulges and discs.

A good translation should move the galaxies from where *u* puts them towards where *K* does.
Does it? SSIM, which rewards the overall shape, can be high while the concentration of the light
is still wrong; Gini and M20 look exactly at that. The predictions are measured twice: as they
are, and with white noise of the target's sky level added (`prediction + noise`), the fair
comparison with the noisy targets."""),
code("""sky = gw.data.sky_noise(target).astype(np.float32)
noisy = prediction + rng.standard_normal(prediction.shape).astype(np.float32) * sky[None, :, None, None]
sets = {"input": baseline, "prediction": prediction, "prediction + noise": noisy, "target": target}
morphology = {name: gw.metrics.gini_m20(images, 0, bands=out_bands, progress=False)
              for name, images in sets.items()}
reference = morphology["target"]
summary = pd.DataFrame({name: {"median Gini": t.gini.median(), "median M20": t.m20.median(),
                               "measured": int(t.gini.notna().sum()),
                               "KL Gini (target || set)": gw.metrics.binned_kl(reference.gini, t.gini),
                               "KL M20 (target || set)": gw.metrics.binned_kl(reference.m20, t.m20)}
                        for name, t in morphology.items()}).T

fig, ax = plt.subplots(figsize=(5, 4))
colours = {"input": "C0", "prediction": "C1", "prediction + noise": "C2", "target": "k"}
for name, t in morphology.items():
    ax.scatter(t.m20, t.gini, s=8, alpha=0.6, color=colours[name], label=name)
gw.viz.gini_m20_lines(ax, m20_range=(-3.0, -0.5))  # Lotz et al. 2008 merger and bulge/disc lines
ax.set(xlabel="M20", ylabel="Gini", title=f"Gini-M20 in {out_bands[0]} (input: {baseline_bands[0]})")
ax.legend(fontsize=7)
fig.tight_layout()
plt.show()
summary.round(3)"""),
md(r"""The `MorphologyExplorer` shows the same plane interactively, with a montage of the galaxies you
select with the box or lasso tool: here the targets ("real") against the noise-added predictions
("generated"), measured in the target band. Select the outliers and look at them."""),
code("""measured = {"real": morphology["target"], "generated": morphology["prediction + noise"]}
gw.widgets.MorphologyExplorer(target, noisy, band=0, bands=out_bands, table=measured)"""),
md(r"""## Real galaxies: the Hubble eXtreme Deep Field

The thesis applied its model to SDSS galaxies. The real multi-band galaxy image that ships with our
dependencies is the Hubble eXtreme Deep Field colour JPEG of scikit-image (`gw.data.hubble_deep_field`),
so it stands in, with strong caveats:

* it is an 8-bit display image: a non-linear stretch, so pixel values are not fluxes;
* its blue, green and red channels each combine several HST filters (roughly 0.5, 0.8 and 1.4 µm);
  we feed the channel nearest in wavelength to our input band (blue for *u*), rescaled so its
  median central flux matches the mock galaxies';
* the XDF galaxies are far more distant, smaller, fainter and seen at much finer resolution than
  the mock galaxies the model learnt from: a **domain shift**.

So this shows how the model behaves on real light profiles outside its training domain; it is not
a *K*-band prediction of the XDF galaxies. For comparison we show the reddest XDF channel (~1.4 µm),
which is still bluer than *K*."""),
code("""if n_hdf > 0:
    hdf = gw.data.hubble_deep_field(size=size)
    hdf = hdf[np.flatnonzero(~hdf.catalog["truncated"].to_numpy())[:n_hdf]]
    hdf_wavelength = {"B": 500.0, "G": 800.0, "R": 1400.0}  # nm, rough channel centres
    chosen = [min(hdf_wavelength, key=lambda c: abs(np.log(hdf_wavelength[c] / wavelength[b])))
              for b in in_bands]
    c = size // 2
    centre = (slice(None), slice(None), slice(c - 3, c + 3), slice(c - 3, c + 3))
    hdf_in = channels(hdf, chosen)
    mock_core = np.median(channels(test, in_bands)[centre].sum((-2, -1)), axis=0)
    scale = mock_core / np.median(hdf_in[centre].sum((-2, -1)), axis=0)
    hdf_in = (hdf_in * scale[None, :, None, None]).astype(np.float32)
    hdf_out = gw.models.translate(ckpt, hdf_in, bands=in_bands).images
    colour = gw.viz.rgb_composite(hdf.images, hdf.bands, stretch="asinh")
    fig, axes = plt.subplots(len(hdf), 4, figsize=(6.4, 1.6 * len(hdf)), squeeze=False)
    titles = ["XDF colour", f"XDF {chosen[0]} as {in_bands[0]}", f"predicted {out_bands[0]}",
              "XDF R (~1.4 µm)"]
    for i in range(len(hdf)):
        axes[i, 0].imshow(colour[i], origin="lower")
        axes[i, 0].set_axis_off()
        panels = [hdf_in[i, 0], hdf_out[i, 0], hdf.images[i, hdf.bands.index("R")]]
        for j, image in enumerate(panels, start=1):
            show(image, axes[i, j])
    for ax, title in zip(axes[0], titles):
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    plt.show()"""),
exercise(
    r"""Interpolate instead of extrapolate: predict *r* from **FUV and K** together
(a second translator with `in_bands = ["FUV", "K"]` and `out_bands = ["r"]`, a couple of minutes
to train). The baseline is now the input band nearest to *r* in wavelength, *K*. Compare the
median SSIM of the prediction with the target, and the median gain, with those of *u* → *K*.""",
    r"""```python
model2 = gw.models.BandTranslator(["FUV", "K"], ["r"], base_channels=base_channels, n_blocks=n_blocks)
ckpt2 = gw.models.train_translator(model2, train, steps, batch_size, lr=lr, seed=seed, progress=False)
out2 = gw.models.translate(ckpt2, test).images
base2 = channels(test, [nearest("r", ["FUV", "K"])])
print(gw.metrics.ssim_gain(out2, base2, channels(test, ["r"])).median())
```
Measured with the default sizes: SSIM(prediction, *r*) had a median of 0.90 (0.88 for *u* → *K*),
and the median gain was +0.66 (quartiles +0.59 to +0.83), positive for every galaxy. The gain is
large mostly because the baseline is poor: the *K* image, with its different brightness and
much higher sky noise, has SSIM 0.19 with *r*. The prediction is good because the model sees both
ends of the spectrum, the young stars *and* the old ones, and *r* lies in between: interpolation is
easier than extrapolation."""),
exercise(
    r"""Reverse the direction: predict *u* from *K* (`in_bands = ["K"]`, `out_bands = ["u"]`). Which
parts of the galaxies does the model fail to reproduce?""",
    r"""```python
model3 = gw.models.BandTranslator(["K"], ["u"], base_channels=base_channels, n_blocks=n_blocks)
ckpt3 = gw.models.train_translator(model3, train, steps, batch_size, lr=lr, seed=seed, progress=False)
out3 = gw.models.translate(ckpt3, test).images
print(gw.metrics.ssim_gain(out3, channels(test, ["K"]), channels(test, ["u"])).median())
```
Plot a few predictions next to their targets, as above: the star-forming clumps are missing. Their
positions are random and leave almost no trace in *K*, so the L1-optimal prediction places no clump
anywhere and returns a smooth disc, with a core that is too bright where *K* has a bulge. Measured:
median SSIM(prediction, *u*) 0.66 and median gain +0.54, both lower than for *K* from *u*.
Information that is not in the input cannot be created; at best its *average* effect is."""),
exercise(
    r"""In the Gini–M20 table, compare `prediction` with `prediction + noise`: the medians hardly
move, but the number of galaxies measured does. Why?""",
    r"""Gini and M20 are measured on a segmentation map: the pixels above 1.5 times the sky noise. A
noise-free prediction has almost no sky noise, so its segment reaches far into the faint
outskirts and often touches the stamp border, and such galaxies get NaN (flag `edge`). With the
target's noise added, the segment is cut at the target's surface brightness. Measured with the
default sizes: 63 of 96 predictions could be measured without noise, 86 with it (targets: 90).
Always compare morphologies at the same noise level."""),
exercise(
    r"""The SSIM gain is positive for almost every galaxy, yet in the Gini–M20 plane the predictions
are no closer to the targets than the *u* inputs (compare the medians and the KL columns). What is
wrong with the predicted *K* images? Does training longer (e.g. `steps = 1200`) help?""",
    r"""```python
model_long = gw.models.BandTranslator(in_bands, out_bands, base_channels=base_channels, n_blocks=n_blocks)
ckpt_long = gw.models.train_translator(model_long, train, 1200, batch_size, lr=lr, seed=seed, progress=False)
long = gw.models.translate(ckpt_long, test).images
print(gw.metrics.gini_m20(long, 0, bands=out_bands, progress=False)[["gini", "m20"]].median())
```
The predicted light is not concentrated enough: the core is too faint and the light spread into
a halo (blue centre, red ring in the residuals). Measured with the defaults (800 steps): median
Gini 0.49 and M20 −1.65 for the predictions, against 0.53 and −1.83 for the targets and 0.48 and
−1.75 for the inputs. SSIM forgives this because it rewards the overall shape. Training on to 1200
steps brought the predictions to Gini 0.53 and M20 −1.77 (SSIM gain +0.24): the bright core is
what a translator learns last, and only a morphology measure shows whether it has."""),
md(r"""## Going further on a GPU

On a GPU, train at the thesis's size: `base_channels=64`, `n_blocks=9`, one down-sampling,
thousands of galaxies and tens of thousands of steps,

```python
train = gw.data.simulate_survey(20_000, size=64, instrument="uv-ir", seed=1, n_jobs=-1)
model = gw.models.BandTranslator(["u"], ["K"], base_channels=64, n_blocks=9)
ckpt = gw.models.train_translator(model, train, steps=40_000, batch_size=64, checkpoint_dir="runs/u2K")
```

or unpaired, as CycleGAN (Zhu et al. 2017): `BandTranslator(..., cycle=True)` with
`train_translator(..., cycle=True)`. The parameterised notebook does the full study with more
galaxies and saves every table: `galwidgets run bands -p n_train 5000 -p steps 20000
-p base_channels 64`."""),
]

if __name__ == "__main__":
    write("09_band_mapping", CELLS,
          {"n_train": 16, "n_test": 8, "size": 32, "steps": 3, "batch_size": 4, "n_blocks": 2, "n_show": 2,
           "n_hdf": 2})
