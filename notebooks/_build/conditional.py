# ruff: noqa: E501  (cell sources are notebook code)
"""Writes notebooks/conditional.ipynb: a redshift-conditioned DDPM against a conditional VAE (Li et al. 2024, Table 1 and Figure 4)."""

from _nb import code, md, parameters, write

cells = [
md("""# Do generated galaxies evolve with redshift? A conditional DDPM against a conditional VAE

A galaxy looks smaller, fainter and redder the farther away it is, and the population itself
changes with cosmic time. A generative model conditioned on redshift should reproduce all of that,
which gives a test grounded in physics rather than in how realistic the images look. Li, Do, Jones,
Boscoe, Alfaro & Nguyen (2024, *Using galaxy evolution as source of physics-based ground truth for
generative models*, arXiv:2407.07229) trained a redshift-conditioned DDPM and a conditional VAE
(CVAE; Sohn, Lee & Yan 2015) on Hyper Suprime-Cam g r i z y galaxies (64×64 px, 0 < z < 3) and
compared them in five redshift bins (edges 0, 0.5, 1, 1.5, 2, 3) with three physical metrics; their
Table 1 summarises the comparison and their Figure 4 shows the distributions behind it at z < 0.5
and 1 < z < 1.5. This notebook repeats that evaluation at the paper's layout on mock galaxies
with known redshifts, by default the `hsc-deep` mock (HSC g r i z y at 0.168″/px, PDR3 Wide depth
and seeing, 0.05 < z < 3, i < 24.5) and the `hsc-z-tiny` DDPM trained on it:

* **galaxy KL loss**: in each redshift bin, the Kullback-Leibler divergence KL(real ‖ generated)
  between the distributions of the galaxies' *isophotal area* and *ellipticity* (Source
  Extractor-style measures, Bertin & Arnouts 1996; `gw.metrics.isophotal_shapes`) and *Sérsic
  index* (`gw.metrics.galaxy_fitting_loss`), each histogrammed in 10 bins between its minimum and
  maximum, as the paper defines it (`gw.metrics.galaxy_kl_loss`; which minimum and maximum, see
  below). 0 is perfect;
* **galaxy fitting loss**: how well a single Sérsic profile fits each galaxy, Σ|data − model| /
  Σ|data| over its segment (median over galaxies). Real galaxies are nearly, but not exactly,
  Sérsic profiles: a model should match the real galaxies' value, neither worse nor suspiciously
  better;
* **redshift loss**: a CNN redshift estimator (`gw.models.RedshiftEstimator`) trained on real (here:
  mock) galaxies estimates the redshift of each galaxy, which is scored against the redshift it
  was generated at with the loss of Nishizawa et al. (2020; also Tanaka et al. 2018),
  L = 1 − 1 / (1 + (Δz/γ)²), Δz = (z_est − z_cond) / (1 + z_cond), γ = 0.15: 0 is perfect, 1/2 at
  |Δz| = γ;
* beyond the paper: the **Fréchet morphology distance** (`gw.metrics.frechet_morphology_distance`)
  in place of its FID (the Fréchet distance between Gaussians fitted to standardised photometric
  and Gini/M20 features instead of Inception features, whose weights are not shipped), and the
  **size–redshift relation** (Spearman's ρ of half-light radius against redshift).

Shapes, Sérsic fits and sizes are measured in `measure_band`, by default the band the mock is
flux-limited in (i for `hsc-deep`, r for `desi`).

**Who is who.** The *truth* is a held-out mock set (`n_reference` galaxies): every set's
distributions are compared with it. Both models are conditioned on redshifts drawn from the truth.
The *real* set is a second, independent mock set simulated *at those same conditioning redshifts*
and measured exactly like the generated ones: it is the "real images" row of Table 1, and its KL
loss is what a perfect conditional generator would score, the floor set by the finite number of
galaxies per bin.

It writes into `output_dir`: `metrics.json`; `table1.parquet`, `table1.md` and `table1.png` (the
paper's Table 1 layout, per redshift bin and overall); `figure4.png` (the paper's Figure 4
layout); `kl_per_bin.parquet`, `galaxies.parquet` (every measured galaxy); `samples.png`,
`kl_per_bin.png`, `size_redshift.png`, `redshift.png`; and the checkpoints of the models it trains
(`ddpm.safetensors`, `cvae.safetensors`, `estimator.safetensors`), reusable through the
`*checkpoint` parameters.

To run it on the DESI-like mock and its shipped model: `checkpoint="desi-z-tiny"`,
`instrument="desi"`, `redshift_edges=[]` (its 0.02 < z < 0.12 falls in the first of the paper's
bins; `[]` uses `n_bins` equal-count bins instead)."""),
parameters("""output_dir = "conditional-output"  # str: folder for metrics.json, tables, figures and trained models
checkpoint = "hsc-z-tiny"  # str: redshift-conditioned DDPM: shipped name, .safetensors path or "" (train one here)
instrument = "hsc-deep"  # str: mock preset of every galaxy set ("hsc-deep", "desi", ...): the DDPM's bands and pixel scale
ddpm_steps = 300  # int: training steps of a DDPM trained here (when checkpoint is "" or not installed)
ddpm_base_channels = 8  # int: U-Net width of a DDPM trained here (hsc-z-tiny: 16)
ddpm_T = 1000  # int: diffusion steps (cosine schedule) of a DDPM trained here
vae_checkpoint = ""  # str: ConditionalVAE .safetensors path; "" trains one here
vae_steps = 1000  # int: training steps of the CVAE
vae_base_channels = 16  # int: channels of the CVAE's first encoder stage
vae_latent_dim = 32  # int: size of the CVAE's latent vector
estimator_checkpoint = ""  # str: RedshiftEstimator .safetensors path; "" trains one here
estimator_steps = 1500  # int: training steps of the redshift estimator
n_train = 2000  # int: mock galaxies the CVAE, the estimator and a DDPM trained here learn from
batch_size = 32  # int: galaxies per training step
size = 64  # int: image side of models trained here (a loaded DDPM sets it)
n_reference = 600  # int: held-out mock galaxies, the truth
n_generated = 300  # int: galaxies per model (and in the real set), at redshifts drawn from the truth
redshift_edges = [0, 0.5, 1, 1.5, 2, 3]  # list: redshift-bin edges (Li et al. 2024); [] for n_bins equal-count bins
n_bins = 4  # int: equal-count redshift bins of the truth, used when redshift_edges is []
kl_bins = 10  # int: histogram bins of each property in the galaxy KL loss (the paper: 10)
kl_range = "pooled"  # str: histogram range: "pooled" (per redshift bin, truth and model together), "global" or "real"
min_per_bin = 10  # int: a redshift bin with fewer real or generated galaxies gets NaN
figure4_ranges = [[0, 0.5], [1, 1.5]]  # list: redshift ranges of the rows of Figure 4 (the paper's)
sampler = "ddim"  # str: "ddim" or "ddpm" reverse process of the DDPM
sample_steps = 25  # int: DDIM steps (DDPM uses every step)
guidance = None  # float: classifier-free guidance scale (1: plain conditional); None: the model's default (hsc-z-tiny 1.1)
cvae_noise = True  # bool: add the truth's sky noise to CVAE images (a draw from its Gaussian decoder)
measure_band = ""  # str: band of the shapes, Sérsic fits and half-light radii; "" for the preset's selection band
gamma = 0.15  # float: scale of the redshift loss (Nishizawa et al. 2020)
seed = 0  # int: seed of the weights, training batches, conditioning redshifts and sampling
train_seed = 1000  # int: seed of the training mock galaxies (hsc-z-tiny and desi-z-tiny learnt from seed 1000)
reference_seed = 12345  # int: seed of the held-out truth (the real set uses reference_seed + 1)
n_show = 8  # int: galaxies per row in the sample figure
n_jobs = 2  # int: processes for simulating and measuring galaxies
progress = True  # bool: show progress bars"""),
code("""import itertools
import math
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Image, Markdown, display
from scipy.stats import spearmanr

import galwidgets as gw
from galwidgets.pretrained.recipes import RECIPES

out = Path(output_dir)
out.mkdir(parents=True, exist_ok=True)
seconds = {}
preset = gw.data.get_instrument(instrument)
bands, pixel_scale = list(preset.bands), preset.pixel_scale
measure_band = measure_band or preset.mag_band
if measure_band not in bands:
    raise ValueError(f"measure_band: expected one of the {preset.name} bands {bands}, got {measure_band!r}")
if kl_range not in ("pooled", "global", "real"):
    raise ValueError(f"kl_range: expected 'pooled', 'global' or 'real', got {kl_range!r}")
if any(len(r) != 2 or not r[0] < r[1] for r in figure4_ranges):
    raise ValueError(f"figure4_ranges: expected [low, high] redshift pairs with low < high, got {figure4_ranges!r}")


def load_ddpm(name):
    # (checkpoint, None) when found; (None, why not) for "" or a shipped name that is not installed
    if not name:
        return None, "no checkpoint given"
    if Path(name).suffix == ".safetensors":
        return gw.load_checkpoint(name), None
    try:
        return gw.pretrained.load(name), None
    except (FileNotFoundError, ValueError) as error:
        return None, f"{type(error).__name__}: {error}"


ddpm, missing = load_ddpm(checkpoint)
if ddpm is not None:
    if ddpm.schedule is None or ddpm.model.config.get("cond_dim") != 1:
        raise ValueError(f"checkpoint: expected a diffusion model conditioned on one value (redshift), "
                         f"got {ddpm.model.config}")
    if (list(ddpm.bands) != bands or not math.isclose(ddpm.pixel_scale, pixel_scale, rel_tol=1e-3)
            or not math.isclose(ddpm.zeropoint, preset.zeropoint, abs_tol=1e-6)):
        raise ValueError(f"instrument: the DDPM {checkpoint!r} works on {''.join(ddpm.bands)} images at "
                         f"{ddpm.pixel_scale}\\"/px (zeropoint {ddpm.zeropoint}), but {preset.name!r} simulates "
                         f"{''.join(bands)} at {pixel_scale}\\"/px (zeropoint {preset.zeropoint}): pass the "
                         "instrument the model was trained on")
    if ddpm.size != size:
        print(f"the DDPM works on {ddpm.size}x{ddpm.size} px images: size {size} -> {ddpm.size}")
    size = ddpm.size
like = dict(size=size, instrument=instrument, n_jobs=n_jobs, progress=progress)

t0 = time.perf_counter()
truth = gw.data.simulate_survey(n_reference, seed=reference_seed, **like)
need_training = ddpm is None or not vae_checkpoint or not estimator_checkpoint
train = gw.data.simulate_survey(n_train, seed=train_seed, **like) if need_training else None
seconds["simulate"] = time.perf_counter() - t0
z_truth = truth.catalog["redshift"].to_numpy()

if len(redshift_edges):
    edges = np.asarray(redshift_edges, dtype=float)
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"redshift_edges: expected increasing bin edges, got {redshift_edges!r}")
else:
    edges = np.unique(np.quantile(z_truth, np.linspace(0, 1, n_bins + 1)))
bin_labels = [f"{lo:.3g}-{hi:.3g}" for lo, hi in itertools.pairwise(edges)]


def redshift_bin(z):
    # index of each redshift's bin: [lo, hi), the last bin closed; -1 outside the edges
    z = np.asarray(z, dtype=float)
    index = np.searchsorted(edges, z, side="right") - 1
    index[z == edges[-1]] = len(edges) - 2
    return np.where((z >= edges[0]) & (z <= edges[-1]), index, -1)


counts = np.bincount(redshift_bin(z_truth)[redshift_bin(z_truth) >= 0], minlength=len(bin_labels))
print(f"truth: {truth}; training set: {train}; {seconds['simulate']:.0f} s")
print("truth galaxies per redshift bin: " + ", ".join(f"{b}: {c}" for b, c in zip(bin_labels, counts)))"""),
md("""## The three networks

**The conditional DDPM.** By default the shipped `hsc-z-tiny` model (a U-Net of Ho et al. 2020
trained on 10,000 `hsc-deep` mock galaxies, the redshift embedded and added to the time embedding,
classifier-free guidance by dropping it 10 % of the time; Ho & Salimans 2022). If that file is not
installed, a smaller DDPM of the same design (`ddpm_base_channels` wide) is trained here for
`ddpm_steps` steps instead, which is far too short for good galaxies: its scores then say little
about what diffusion models can do, and the notebook says so in its output.

**The CVAE.** `gw.models.ConditionalVAE`: a convolutional encoder and decoder with the redshift
appended to the encoder features and to the latent vector (Sohn et al. 2015), trained on the
evidence lower bound. The redshift is standardised (minus its mean, over its spread) before it
enters the network, as the U-Net does internally. The decoder gives the *mean* image of a Gaussian
likelihood; with `cvae_noise` a draw from that likelihood is taken, i.e. white noise of the truth's
sky level is added, because shapes are measured against the sky noise and noise-free images would
not be comparable.

**The judge.** `gw.models.RedshiftEstimator`, a small CNN regressing log(1 + z), trained on the
mock galaxies; its own loss on real galaxies says how well it can tell redshifts at all. On
`hsc-deep` mocks most of that information is in the colours and fluxes: sizes shrink only mildly
with redshift at i < 24.5."""),
code("""t0 = time.perf_counter()
ddpm_source = checkpoint
if ddpm is None:
    print(f"NOTE: the conditional DDPM {checkpoint!r} is not available ({missing}).\\n"
          f"Training a tiny conditional DDPM here for {ddpm_steps} steps instead: expect far poorer "
          "galaxies (and scores) than from a fully trained model.")
    recipe = RECIPES["hsc-z-tiny" if instrument == "hsc-deep" else "desi-z-tiny"]
    z_train = train.catalog["redshift"]
    unet = {**recipe["model"], "base_channels": ddpm_base_channels, "groups": math.gcd(8, ddpm_base_channels),
            "cond_center": float(z_train.mean()), "cond_scale": float(z_train.std())}
    ours = ("steps", "batch_size", "checkpoint_every", "seed")
    settings = {k: v for k, v in recipe["train"].items() if k not in ours}
    torch.manual_seed(seed)
    model = gw.models.UNet(in_channels=len(bands), **unet)
    ddpm = gw.train(model, gw.diffusion.NoiseSchedule.cosine(ddpm_T), train, steps=ddpm_steps,
                    batch_size=batch_size, seed=seed, progress=progress, **settings)
    ddpm.save(out / "ddpm.safetensors")
    ddpm_source = (f"trained in this notebook ({ddpm_steps} steps; "
                   f"{checkpoint or 'no checkpoint'} not available)")
seconds["ddpm"] = time.perf_counter() - t0

t0 = time.perf_counter()
if vae_checkpoint:
    cvae = gw.load_checkpoint(vae_checkpoint)
else:
    z_train = train.catalog["redshift"]
    scaling = {"center": float(z_train.mean()), "scale": float(z_train.std())}
    z_std = (z_train - scaling["center"]) / scaling["scale"]
    standardised = gw.data.Survey(images=train.images, catalog=train.catalog.assign(z_std=z_std),
                                  bands=train.bands, pixel_scale=train.pixel_scale, zeropoint=train.zeropoint)
    torch.manual_seed(seed)
    model = gw.models.ConditionalVAE(in_channels=len(bands), image_size=size, base_channels=vae_base_channels,
                                     latent_dim=vae_latent_dim)
    cvae = gw.models.train_vae(model, standardised, vae_steps, batch_size, cond="z_std", seed=seed,
                               progress=progress, config={"redshift_scaling": scaling})
    cvae.save(out / "cvae.safetensors")
if not isinstance(cvae.model, gw.models.ConditionalVAE):
    raise TypeError(f"vae_checkpoint: expected a ConditionalVAE, got a {type(cvae.model).__name__}")
seconds["cvae"] = time.perf_counter() - t0

t0 = time.perf_counter()
if estimator_checkpoint:
    estimator = gw.load_checkpoint(estimator_checkpoint)
    if not isinstance(estimator.model, gw.models.RedshiftEstimator) or list(estimator.bands) != bands:
        raise ValueError(f"estimator_checkpoint: expected a RedshiftEstimator on {''.join(bands)} images, got a "
                         f"{type(estimator.model).__name__} on {''.join(estimator.bands)}")
else:
    torch.manual_seed(seed)
    estimator = gw.models.train_redshift_estimator(gw.models.RedshiftEstimator(in_channels=len(bands)), train,
                                                   estimator_steps, batch_size, seed=seed, progress=progress)
    estimator.save(out / "estimator.safetensors")
seconds["estimator"] = time.perf_counter() - t0
print(f"DDPM: {ddpm_source}; training times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))"""),
md("""## Generating galaxies at the truth's redshifts

Each model draws `n_generated` galaxies, conditioned on redshifts drawn from the truth; the real
set is simulated at the same redshifts. The figure shows, sorted by redshift, truth galaxies (top
row), DDPM galaxies (middle) and CVAE galaxies (bottom) at similar redshifts."""),
code("""rng = np.random.default_rng(seed)
z_cond = rng.choice(z_truth, size=n_generated, replace=n_generated > n_reference)

t0 = time.perf_counter()
ddpm_images = ddpm.sample(n_generated, sampler=sampler, steps=sample_steps, seed=seed, cond=z_cond,
                          guidance=guidance, progress=progress)
seconds["sample_ddpm"] = time.perf_counter() - t0
scaling = cvae.config.get("redshift_scaling", {"center": 0.0, "scale": 1.0})
t0 = time.perf_counter()
cvae_images = cvae.sample(n_generated, seed=seed, cond=(z_cond - scaling["center"]) / scaling["scale"],
                          progress=False)
sky = gw.data.sky_noise(truth.images).astype(np.float32)
if cvae_noise:
    noise = torch.randn(cvae_images.images.shape, generator=torch.Generator().manual_seed(seed)).numpy()
    cvae_images = gw.data.Survey(images=cvae_images.images + noise * sky[None, :, None, None],
                                 catalog=cvae_images.catalog, bands=cvae_images.bands,
                                 pixel_scale=cvae_images.pixel_scale, zeropoint=cvae_images.zeropoint)
seconds["sample_cvae"] = time.perf_counter() - t0
real = gw.data.simulate_survey(n_generated, seed=reference_seed + 1, redshift=z_cond, **like)
sets = {"truth": truth, "real": real, "DDPM": ddpm_images, "CVAE": cvae_images}
redshifts = {"truth": z_truth, "real": z_cond, "DDPM": z_cond, "CVAE": z_cond}
models = ["real", "DDPM", "CVAE"]  # the rows of Table 1
print(f"sampled {n_generated} DDPM galaxies in {seconds['sample_ddpm']:.0f} s ({sampler}, "
      f"{sample_steps} steps) and {n_generated} CVAE galaxies in {seconds['sample_cvae']:.1f} s")

k = min(n_show, n_generated, n_reference)
rows = []
for name in ("truth", "DDPM", "CVAE"):
    pick = np.linspace(0, len(redshifts[name]) - 1, k).round().astype(int)
    order = np.argsort(redshifts[name])[pick]
    rows.append((sets[name].images[order], [f"{name} z={z:.2f}" for z in redshifts[name][order]]))
deep = {"stretch_value": 1.0} if preset.name == "hsc-deep" else {}  # i ~ 23-24.5: a softer Lupton stretch
fig = gw.viz.image_grid(np.concatenate([r[0] for r in rows]), bands, ncols=k,
                        titles=[title for r in rows for title in r[1]], zeropoint=truth.zeropoint, **deep)
fig.savefig(out / "samples.png", dpi=100)
display(Image(filename=str(out / "samples.png")))"""),
md("""## Measuring every galaxy

In `measure_band`, each galaxy's isophotal area and ellipticity (isophote 1.5 sky sigmas), its
Sérsic fit (index, effective radius, fitting loss) and its half-light radius (curve of growth).
The isophote is the same flux level for every set (1.5 times the truth's sky noise), so a set with
less noise does not get larger areas for that reason alone. The estimator gives each galaxy's
redshift."""),
code("""b = bands.index(measure_band)
common = dict(band=measure_band, sky_sigma=float(sky[b]), n_jobs=n_jobs, progress=False)


def measure(survey, z):
    shapes = gw.metrics.isophotal_shapes(survey, **common)
    fit = gw.metrics.galaxy_fitting_loss(survey, **common)
    phot = gw.metrics.photometry(survey, r_half_band=measure_band)
    return pd.DataFrame({"z": z, "z_est": gw.models.predict_redshift(estimator, survey),
                         "isophotal_area": shapes.isophotal_area, "ellipticity": shapes.ellipticity,
                         "sersic_n": fit.sersic_n, "fit_loss": fit.fit_loss, "r_eff_arcsec": fit.r_eff_arcsec,
                         "r_half": phot.r_half, f"mag_{measure_band}": phot[f"mag_{measure_band}"],
                         "flag_shapes": shapes.flag, "flag_fit": fit.flag})


t0 = time.perf_counter()
tables = {name: measure(survey, redshifts[name]) for name, survey in sets.items()}
galaxies = pd.concat(tables, names=["set", "galaxy"]).reset_index()
galaxies["redshift_bin"] = [bin_labels[i] if i >= 0 else "" for i in redshift_bin(galaxies.z)]
galaxies.to_parquet(out / "galaxies.parquet")
seconds["measure"] = time.perf_counter() - t0
print(f"measured {len(galaxies)} galaxies in {seconds['measure']:.0f} s")
galaxies.groupby("set")[["isophotal_area", "ellipticity", "sersic_n", "fit_loss", "r_half"]].median()"""),
md("""## Galaxy KL loss per redshift bin

For each redshift bin (by default the paper's edges 0, 0.5, 1, 1.5, 2, 3), KL(truth ‖ set) of each
property's distribution in `kl_bins` = 10 histogram bins between the property's minimum and
maximum. The paper does not say over which galaxies that minimum and maximum are taken. With
`kl_range = "pooled"` (the default) they are those of the truth and the compared set together
*within the redshift bin*: no compared galaxy falls outside the histogram, and each redshift bin is
resolved on its own scale (isophotal areas at z > 1 span a small part of those at z < 0.5, so one
range for all redshifts would put them in one or two histogram bins). `kl_range = "global"` uses one
range per property over all redshift bins instead. Both let a model's outliers widen the range
(a Sérsic fit stopped at its bound n = 8, say), which coarsens the histogram of both sets and can
make a model with outliers score *better*; `kl_range = "real"` takes the range from the truth alone
in each redshift bin and counts the model's values beyond it in the end bins. The table under the
figure gives the mean KL total under all three choices, so you can see whether a ranking hangs on
it. A model that has learnt how galaxies change with redshift scores low in every bin; the dashed
line (the real set) is the perfect-model floor, not zero because each bin holds a finite number of
galaxies."""),
code("""properties = ("isophotal_area", "ellipticity", "sersic_n")
kl = {name: gw.metrics.galaxy_kl_loss(tables["truth"], tables[name], properties, redshift="z",
                                      redshift_bins=edges, bins=kl_bins, min_galaxies=min_per_bin,
                                      value_range=kl_range)
      for name in models}
kl_long = pd.concat(kl, names=["set", "bin"]).reset_index()
kl_long.to_parquet(out / "kl_per_bin.parquet")

fig, axes = plt.subplots(1, len(properties) + 1, figsize=(3.1 * (len(properties) + 1), 2.9))
for ax, prop in zip(axes, (*properties, "total")):
    for i, name in enumerate(models):
        table = kl[name]
        centre = (table.z_min + table.z_max) / 2
        style = dict(ls="--", color="0.4") if name == "real" else dict(marker="o", color=f"C{i - 1}")
        ax.plot(centre, table[prop], label="real (floor)" if name == "real" else name, **style)
    ax.set(xlabel="redshift (bin centre)", ylabel="KL(truth || set) [nats]", title=prop)
axes[0].legend(fontsize=7)
fig.tight_layout()
fig.savefig(out / "kl_per_bin.png", dpi=100)
plt.show()
kl_by_range = pd.DataFrame({
    choice: {name: gw.metrics.galaxy_kl_loss(tables["truth"], tables[name], properties, redshift="z",
                                             redshift_bins=edges, bins=kl_bins, min_galaxies=min_per_bin,
                                             value_range=choice).attrs["mean"]["total"] for name in models}
    for choice in ("pooled", "global", "real")}).rename_axis("mean KL total")
display(kl_long.pivot(index="set", columns="bin", values="total").set_axis(bin_labels, axis=1))
kl_by_range"""),
md("""## Figure 4: the distributions at low and intermediate redshift

The paper's Figure 4 layout: histograms of isophotal area, ellipticity and Sérsic index of real
(the truth), DDPM and CVAE galaxies in two redshift ranges (`figure4_ranges`; the paper's z < 0.5
and 1 < z < 1.5), as fractions of each set's galaxies in `kl_bins` bins between the minimum and
maximum of the three sets together. The legend gives each model's KL(truth ‖ model) on the
galaxies of the panel (range pooled over the two)."""),
code("""names = {"isophotal_area": f"isophotal area ({measure_band}, px)", "ellipticity": "ellipticity",
         "sersic_n": "Sérsic index n"}
styles = {"truth": dict(color="k", lw=1.6), "DDPM": dict(color="C0"), "CVAE": dict(color="C1")}
fig, axes = plt.subplots(len(figure4_ranges), len(properties), squeeze=False,
                         figsize=(3.4 * len(properties), 2.8 * len(figure4_ranges)))
figure4_kl = {}
for row, (lo, hi) in enumerate(figure4_ranges):
    label = f"z < {hi:g}" if lo <= 0 else f"{lo:g} < z < {hi:g}"
    for col, prop in enumerate(properties):
        ax = axes[row, col]
        values = {}
        for name in styles:
            t = tables[name]
            v = t[prop][(t.z >= lo) & (t.z < hi)].to_numpy(float)
            values[name] = v[np.isfinite(v)]
        pooled = np.concatenate(list(values.values()))
        ax.set(xlabel=names[prop], ylabel="fraction of galaxies", title=label)
        if len(pooled) == 0 or len(values["truth"]) == 0:
            ax.text(0.5, 0.5, "no galaxies", ha="center", transform=ax.transAxes)
            continue
        hist_edges = np.linspace(pooled.min(), pooled.max() if pooled.max() > pooled.min() else pooled.min() + 1,
                                 kl_bins + 1)
        for name, v in values.items():
            if name != "truth":
                figure4_kl[f"{label}|{prop}|{name}"] = gw.metrics.binned_kl(values["truth"], v, kl_bins)
            tag = "" if name == "truth" else f", KL {figure4_kl[f'{label}|{prop}|{name}']:.2f}"
            weights = np.full(len(v), 1 / max(len(v), 1))
            ax.hist(v, bins=hist_edges, weights=weights, histtype="step", label=f"{name} ({len(v)}{tag})",
                    **styles[name])
        ax.legend(fontsize=6)
fig.suptitle(f"Li et al. (2024) Figure 4 layout: {preset.name} mock, measured in {measure_band}", fontsize=9)
fig.tight_layout()
fig.savefig(out / "figure4.png", dpi=100)
plt.show()"""),
md("""## The size–redshift relation

Two effects compete in a flux-limited survey: at fixed physical size a galaxy's angular size falls
with distance (to z ≈ 1.6, then grows slightly again), while the galaxies that pass the flux limit
at higher redshift are more luminous and so physically larger; and galaxies were smaller in the
past (van der Wel et al. 2014). In the `hsc-deep` mock at i < 24.5 the angular truth sizes shrink
only mildly with redshift (Spearman ρ ≈ −0.35), and the measured, PSF-blurred i-band half-light
radii even less (ρ ≈ −0.15); in the `desi` mock (r < 18, z < 0.12) the measured one falls mildly as
well. A model conditioned on redshift should reproduce the truth's trend; one that ignores its
condition shows none. With a few hundred galaxies ρ is uncertain by about ±0.06: compare the
models with the real set too, not only with the truth."""),
code("""spearman = {}
colors = {"truth": "k", "real": "0.5", "DDPM": "C0", "CVAE": "C1"}
fig, ax = plt.subplots(figsize=(5.2, 3.8))
centres = (edges[:-1] + edges[1:]) / 2
for name, table in tables.items():
    ok = np.isfinite(table.r_half) & np.isfinite(table.z)
    spearman[name] = float(spearmanr(table.z[ok], table.r_half[ok]).statistic) if ok.sum() > 2 else np.nan
    ax.scatter(table.z, table.r_half, s=5, alpha=0.3, color=colors[name])
    which = redshift_bin(table.z)
    medians = [np.nanmedian(table.r_half[which == j]) if np.any(which == j) else np.nan
               for j in range(len(bin_labels))]
    ax.plot(centres, medians, "o-", color=colors[name], label=f"{name}: ρ = {spearman[name]:+.2f}")
ax.set(xlabel="redshift (truth and real: true; models: conditioning)",
       ylabel=f"half-light radius in {measure_band} (arcsec)",
       title="size-redshift relation (points: galaxies; lines: medians per redshift bin)")
ax.title.set_fontsize(8)
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(out / "size_redshift.png", dpi=100)
plt.show()"""),
md("""## Redshift loss

The estimator's redshift of each galaxy against the redshift it was generated at (for the truth
and the real set: its true redshift). The truth's loss is what the estimator achieves on real
galaxies it has not seen, and the real set's is the same on the conditioning redshifts: a
generated set can hardly do better. For scale, the loss of guessing the truth's median redshift for
every galaxy is given too; the estimator is useful if it scores well below that (our acceptance:
at most 0.6 times), and a model's galaxies carry the redshift they were asked for if their loss is
close to the real set's (our acceptance for `hsc-z-tiny`: at most 1.5 times)."""),
code("""redshift_loss = {name: gw.metrics.redshift_loss(table.z_est, table.z, gamma=gamma)
                 for name, table in tables.items()}
redshift_rho = {name: float(spearmanr(table.z, table.z_est).statistic) for name, table in tables.items()}
constant_guess = gw.metrics.redshift_loss(np.full_like(z_truth, np.median(z_truth)), z_truth, gamma=gamma)
acceptance = {"estimator_over_constant_guess": redshift_loss["truth"] / constant_guess,
              "ddpm_over_real": redshift_loss["DDPM"] / redshift_loss["real"],
              "cvae_over_real": redshift_loss["CVAE"] / redshift_loss["real"]}
fig, ax = plt.subplots(figsize=(4.6, 4.2))
for name, table in tables.items():
    ax.scatter(table.z, table.z_est, s=6, alpha=0.45, color=colors[name],
               label=f"{name}: loss {redshift_loss[name]:.3f}, ρ {redshift_rho[name]:+.2f}")
lims = [min(z_truth.min(), z_cond.min()), max(z_truth.max(), z_cond.max())]
ax.plot(lims, lims, "k--", lw=0.8)
ax.set(xlabel="true / conditioning redshift", ylabel="estimated redshift",
       title=f"redshift loss (γ = {gamma}); constant guess {constant_guess:.3f}")
ax.title.set_fontsize(8)
ax.legend(fontsize=6)
fig.tight_layout()
fig.savefig(out / "redshift.png", dpi=100)
plt.show()
print(f"estimator on the truth: loss {redshift_loss['truth']:.4f} = "
      f"{acceptance['estimator_over_constant_guess']:.2f} x the constant guess's {constant_guess:.4f} (bar <= 0.6)")
print(f"DDPM: loss {redshift_loss['DDPM']:.4f} = {acceptance['ddpm_over_real']:.2f} x the real set's "
      f"{redshift_loss['real']:.4f} (bar for hsc-z-tiny <= 1.5); CVAE: {acceptance['cvae_over_real']:.2f} x")"""),
md("""## Table 1

The paper's Table 1 layout: one row per model (the real set measured the same way, the DDPM, the
CVAE), one column per metric, in each redshift bin and over all of them ("all": the galaxy KL loss
is the mean over the redshift bins, the fitting loss the median over all galaxies, the redshift
loss the mean over all galaxies). KL values are in nats; `n` counts the set's galaxies in the bin.
In `table1.png` the better of DDPM and CVAE is in bold: the lower KL or redshift loss, the fitting
loss closer to the real set's. The Fréchet morphology distance and the size–redshift correlation,
which the paper does not have, follow below it."""),
code("""columns = {"isophotal_area": "KL isophotal area", "ellipticity": "KL ellipticity", "sersic_n": "KL Sérsic n",
           "total": "KL total"}
bins_of = {name: redshift_bin(table.z) for name, table in tables.items()}


def summary(name, pick, kl_values):
    t = tables[name][pick]
    return {"n": int(pick.sum()), **{label: float(kl_values[key]) for key, label in columns.items()},
            "fitting loss": float(t.fit_loss.median()) if len(t) else np.nan,
            "redshift loss": gw.metrics.redshift_loss(t.z_est, t.z, gamma=gamma) if len(t) else np.nan}


rows = {}
for j, label in enumerate(bin_labels):
    for name in models:
        rows[(label, name)] = summary(name, bins_of[name] == j, kl[name].iloc[j])
for name in models:
    rows[("all", name)] = summary(name, bins_of[name] >= 0, kl[name].attrs["mean"])
table1 = pd.DataFrame.from_dict(rows, orient="index")
table1.index = table1.index.set_names(["redshift", "model"])
table1.to_parquet(out / "table1.parquet")


def better(zbin, column):
    # the better of DDPM and CVAE in one redshift bin and column (None when either is NaN)
    values = {m: table1.loc[(zbin, m), column] for m in ("DDPM", "CVAE")}
    if not all(np.isfinite(v) for v in values.values()):
        return None
    if column == "fitting loss":
        values = {m: abs(v - table1.loc[(zbin, "real"), column]) for m, v in values.items()}
    return min(values, key=values.get)


metric_columns = [c for c in table1.columns if c != "n"]
winners = {zbin: {c: better(zbin, c) for c in metric_columns} for zbin in [*bin_labels, "all"]}


def fmt(value, column):
    return str(int(value)) if column == "n" else ("–" if not np.isfinite(value) else f"{value:.3f}")


header = ["redshift", "model", *table1.columns]
lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
for (zbin, name), row in table1.iterrows():
    cells = [fmt(row[c], c) for c in table1.columns]
    cells = [f"**{v}**" if c in winners[zbin] and winners[zbin][c] == name else v
             for c, v in zip(table1.columns, cells)]
    lines.append("| " + " | ".join([zbin, name, *cells]) + " |")
table1_md = "\\n".join(lines)
(out / "table1.md").write_text(table1_md + "\\n")

fig, ax = plt.subplots(figsize=(12, 0.28 * (len(table1) + 2)))
ax.axis("off")
body = [[zbin, name, *(fmt(row[c], c) for c in table1.columns)] for (zbin, name), row in table1.iterrows()]
tab = ax.table(cellText=body, colLabels=header, loc="center", cellLoc="center")
tab.auto_set_font_size(False)
tab.set_fontsize(7)
for r, ((zbin, name), _) in enumerate(table1.iterrows(), start=1):
    for c, column in enumerate(table1.columns, start=2):
        if column in winners[zbin] and winners[zbin][column] == name:
            tab[r, c].set_text_props(fontweight="bold")
    if (r - 1) // len(models) % 2 == 0:  # shade every other redshift bin
        for c in range(len(header)):
            tab[r, c].set_facecolor("0.93")
ax.set_title(f"Table 1 (Li et al. 2024 layout): {preset.name} mock, DDPM {ddpm_source}, "
             f"KL range {kl_range}", fontsize=8)
fig.tight_layout()
fig.savefig(out / "table1.png", dpi=120)
plt.close(fig)
display(Markdown(table1_md))
display(Image(filename=str(out / "table1.png")))

t0 = time.perf_counter()
fmd = {name: gw.metrics.frechet_morphology_distance(sets[name], truth, morphology_band=measure_band)
       for name in models}
seconds["frechet"] = time.perf_counter() - t0
beyond = pd.DataFrame({"Fréchet morphology distance": fmd, "Spearman r_half-z": spearman}).loc[["truth", *models]]
beyond"""),
md("## Results"),
code("""def clean(d):
    return {k.replace(" ", "_").replace("-", "_").replace("é", "e"): v for k, v in d.items()}


metrics = {
    "table1": {zbin: {name: {**clean(table1.loc[(zbin, name)].to_dict()), "n": int(table1.loc[(zbin, name), "n"])}
                      for name in models} for zbin in [*bin_labels, "all"]},
    "better": winners,
    "kl_per_bin": {name: kl[name].to_dict("records") for name in models},
    "figure4_kl": figure4_kl,
    "kl_total_by_range": kl_by_range.to_dict(),
    "truth": {"fitting_loss": float(tables["truth"].fit_loss.median()), "redshift_loss": redshift_loss["truth"]},
    "redshift_loss": redshift_loss,
    "redshift_loss_constant_guess": constant_guess,
    "redshift_spearman": redshift_rho,
    "acceptance": acceptance,
    "size_redshift_spearman": spearman,
    "frechet_morphology_distance": fmd,
    "median": {name: clean(table[[*properties, "fit_loss", "r_half"]].median().to_dict())
               for name, table in tables.items()},
    "ddpm_source": ddpm_source,
    "ddpm_trained_here": ddpm_source != checkpoint,
    "vae_source": vae_checkpoint or "trained in this notebook",
    "estimator_source": estimator_checkpoint or "trained in this notebook",
    "instrument": preset.name,
    "measure_band": measure_band,
    "redshift_edges": edges.tolist(),
    "redshift_bins": bin_labels,
    "kl_bins": kl_bins,
    "kl_range": kl_range,
    "n_reference": n_reference,
    "n_generated": n_generated,
    "n_train": n_train if need_training else 0,
    "size": size,
    "sampler": sampler,
    "sample_steps": sample_steps,
    "guidance": ddpm_images.meta["guidance"],
    "seconds": seconds,
    "figures": ["samples.png", "kl_per_bin.png", "figure4.png", "size_redshift.png", "redshift.png", "table1.png"],
    "tables": ["table1.parquet", "table1.md", "kl_per_bin.parquet", "galaxies.parquet"],
}
gw.notebooks.write_metrics(out, metrics)
print(table1.round(3).to_string())
print(f"wrote {out / 'metrics.json'}; {sum(seconds.values()):.0f} s in the timed steps")"""),
]

if __name__ == "__main__":
    write("conditional", cells)
