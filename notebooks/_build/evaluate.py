# ruff: noqa: E501  (cell sources are copied verbatim from the notebook)
"""Writes notebooks/evaluate.ipynb: generated against reference galaxies (SGD, Gini-M20, Fréchet)."""

from _nb import code, md, parameters, write

cells = [
md("""# Evaluate generated galaxies against a reference

Compares a set of generated galaxies with reference galaxies through the **Synthetic Galaxy Distance**
(SGD, Smith et al. 2022): the Wasserstein-1 distance between the distributions of aperture magnitude
per band, of each colour and of the half-light radius, summed. The **split-half baseline** is the SGD
between two random halves of the reference set, the value a perfect model would reach; **Cohen's d**
says how far each mean is off in units of the spread. The morphology section compares the
**Gini–M20** plane (Lotz, Primack & Madau 2004) of both sets with the fast batched measurement,
the binned KL divergence of each, and the **Fréchet morphology distance** (photometry + Gini/M20
features, no network weights needed). Then: FID when Inception weights are on disk, the nearest
training galaxy of each generated one (memorisation), the **flux-scale check** of Smith et al.
(generated against reference brightness, fitted by a line; they found multipliers of 1.16-1.23),
and a 2-D projection (PCA, or UMAP when installed) of both sets' features to spot mode collapse.

A redshift-conditioned checkpoint (e.g. `desi-z-tiny`) is sampled at the redshifts of the
reference galaxies, and the Spearman correlation of conditioning redshift with measured
half-light radius is compared with the reference's.

With `model = "vae"` or `"dcgan"` the generated set comes from a VAE or a DCGAN trained here on
mock galaxies (the baselines of the thesis's chapter 2), so the three generators can be compared
on the same metrics: `galwidgets batch evaluate` over `model: [ddpm, vae, dcgan]`.

Run it from Python with `gw.run_notebook("evaluate", parameters={...}, output_dir=...)` or from the
shell with `galwidgets run evaluate -p n_generated 64`. It writes into `output_dir`:
`metrics.json`, `photometry_generated.parquet`, `photometry_reference.parquet`,
`morphology_generated.parquet`, `morphology_reference.parquet`, `flux_scale.parquet`,
`nearest_neighbours.parquet`, `grid.png`, `distributions.png`, `gini_m20.png`, `flux_scale.png`,
`neighbours.png`, `projection.png` and, for a conditional model, `size_redshift.png`."""),
parameters("""output_dir = "evaluate-output"  # str: folder for metrics.json, parquet tables and PNG figures
checkpoint = "desi-tiny"  # str: shipped model name or .safetensors path, used when `generated` is empty
model = "ddpm"  # str: generator when `generated` is empty and `checkpoint` is no file: ddpm, vae or dcgan
n_train = 2000  # int: mock training galaxies for a VAE or DCGAN trained here
train_steps = 1000  # int: training steps of a VAE or DCGAN trained here
train_size = 64  # int: cutout side in pixels of the VAE/DCGAN training galaxies
generated = ""  # str: Survey FITS file of generated galaxies; empty: sample `n_generated` from `checkpoint`
reference = ""  # str: Survey FITS file of reference galaxies; empty: simulate `n_reference` mock galaxies
n_generated = 64  # int: galaxies to sample when `generated` is empty
n_reference = 128  # int: mock galaxies to simulate when `reference` is empty
steps = 50  # int: DDIM steps when sampling
seed = 0  # int: seed of sampling, simulation and the split-half baseline
aperture_radius = 6.0  # float: photometry aperture radius in pixels
bootstrap = 100  # int: bootstrap resamplings for the SGD standard errors (0: none)
morphology_band = "r"  # str: band of the Gini/M20 morphology
n_show = 16  # int: galaxies per set in the image grid
guidance = 1.0  # float: classifier-free guidance scale of a redshift-conditioned checkpoint (1: none)
training = "recipe"  # str: Survey FITS file the model learnt from (nearest-neighbour check); "recipe": re-simulate a shipped model's; empty: skip
n_training = 2000  # int: training galaxies searched for each generated galaxy's nearest neighbour (at most)
fid_weights = ""  # str: Inception-v3 weight file for FID; empty: $GALWIDGETS_INCEPTION_WEIGHTS or the torch hub cache; skipped when absent"""),
code("""from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Image, display

import galwidgets as gw

out = Path(output_dir)
out.mkdir(parents=True, exist_ok=True)"""),
md("## The two galaxy sets"),
code("""ckpt = None
if generated:
    gen = gw.data.Survey.load(generated)
else:
    is_file = Path(checkpoint).suffix == ".safetensors"
    if model not in ("ddpm", "vae", "dcgan"):
        raise ValueError(f"model: expected 'ddpm', 'vae' or 'dcgan', got {model!r}")
    if is_file or model == "ddpm":
        ckpt = gw.load_checkpoint(checkpoint) if is_file else gw.pretrained.load(checkpoint)
    else:  # the thesis's chapter-2 baselines, trained on the same mock data as the shipped DDPM
        train = gw.data.simulate_survey(n_train, size=train_size, seed=seed + 20_000, progress=False)
        torch.manual_seed(seed)  # the initial weights, so that a seed gives one result
        if model == "vae":
            ckpt = gw.models.train_vae(gw.models.VAE(in_channels=len(train.bands), image_size=train_size),
                                       train, steps=train_steps, checkpoint_dir=out / "training", seed=seed)
        else:
            ckpt = gw.models.train_dcgan(gw.models.DCGAN(in_channels=len(train.bands), image_size=train_size),
                                         train, steps=train_steps, checkpoint_dir=out / "training", seed=seed)
    gen = None
like = gen if gen is not None else ckpt
if reference:
    ref = gw.data.Survey.load(reference)
else:
    ref = gw.data.simulate_survey(n_reference, size=like.size, bands=like.bands,
                                  pixel_scale=like.pixel_scale, seed=seed + 10_000)
conditional = ckpt is not None and getattr(ckpt.model, "cond_dim", 0) > 0
cond = None
if conditional:  # the reference's redshifts, resampled with replacement when more galaxies are asked for
    z_ref = ref.catalog["redshift"].to_numpy(dtype=float)
    pick = (np.arange(n_generated) if n_generated <= len(z_ref)
            else np.random.default_rng(seed).integers(0, len(z_ref), n_generated))
    cond = z_ref[pick]
if gen is None:
    gen = ckpt.sample(n_generated, steps=steps, seed=seed, cond=cond, guidance=guidance)
print("reference:", ref)
print("generated:", gen)"""),
code("""n = min(n_show, len(ref), len(gen))
fig = gw.viz.image_grid(np.concatenate([ref.images[:n], gen.images[:n]]), ref.bands, ncols=8,
                        zeropoint=ref.zeropoint,
                        suptitle=f"top {int(np.ceil(n / 8))} rows: reference; below: generated")
fig.savefig(out / "grid.png", dpi=100)
display(Image(filename=str(out / "grid.png")))"""),
md("## Photometry and the Synthetic Galaxy Distance"),
code("""phot_ref = gw.metrics.photometry(ref, aperture_radius=aperture_radius)
phot_gen = gw.metrics.photometry(gen, aperture_radius=aperture_radius)
phot_ref.to_parquet(out / "photometry_reference.parquet")
phot_gen.to_parquet(out / "photometry_generated.parquet")
print(f"flagged: {(phot_ref.flag > 0).sum()} of {len(phot_ref)} reference, "
      f"{(phot_gen.flag > 0).sum()} of {len(phot_gen)} generated galaxies")"""),
code("""sgd = gw.metrics.synthetic_galaxy_distance(phot_gen, phot_ref, bootstrap=bootstrap, seed=seed)
sgd_err = {term[:-4]: sgd.pop(term) for term in list(sgd) if term.endswith("_err")}
baseline = gw.metrics.split_half_baseline(phot_ref, seed=seed)
columns = gw.metrics.sgd_columns(phot_ref)
effect = {term: gw.metrics.cohens_d(phot_gen[col], phot_ref[col]) for term, col in columns.items()}
summary = pd.DataFrame({"SGD model": sgd, "± (bootstrap)": sgd_err, "SGD split-half baseline": baseline,
                        "Cohen's d": effect})
summary"""),
code("""fig, axes = plt.subplots(1, len(columns), figsize=(2.6 * len(columns), 2.4))
for ax, (term, col) in zip(axes, columns.items()):
    values = np.concatenate([phot_ref[col], phot_gen[col]])
    bins = np.linspace(*np.nanpercentile(values, [1, 99]), 20)
    ax.hist(phot_ref[col], bins, histtype="step", density=True, label="reference")
    ax.hist(phot_gen[col], bins, histtype="step", density=True, label="generated")
    ax.set_title(f"{term}: W1={sgd[term]:.3f}, d={effect[term]:+.2f}", fontsize=8)
axes[0].legend(fontsize=7)
fig.tight_layout()
fig.savefig(out / "distributions.png", dpi=100)
plt.show()"""),
md("""## Morphology: the Gini–M20 plane

Gini measures how unequally the light is shared among a galaxy's pixels, M20 how far from the
centre its brightest 20 % lie. Early types sit top left, discs lower right, mergers above the
dashed line (Lotz et al. 2008, their eqs. 4-5)."""),
code("""morph_ref = gw.metrics.gini_m20(ref, band=morphology_band, progress=False)
morph_gen = gw.metrics.gini_m20(gen, band=morphology_band, progress=False)
morph_ref.to_parquet(out / "morphology_reference.parquet")
morph_gen.to_parquet(out / "morphology_generated.parquet")
morph_kl = {c: gw.metrics.binned_kl(morph_ref[c], morph_gen[c]) for c in ("gini", "m20")}
# photometry + Gini/M20 per galaxy (the measurements above, not measured again), standardised by the
# reference; the baseline compares the two halves of the reference that ref.split(0.5, seed) makes
features_ref = gw.metrics.morphology_feature_table(phot_ref, morph_ref)
features_gen = gw.metrics.morphology_feature_table(phot_gen, morph_gen)
fmd = gw.metrics.frechet_morphology_distance(features_gen, features_ref)
halves = [features_ref.loc[features_ref.index.intersection(part)] for part in ref.split_indices(0.5, seed=seed)]
fmd_baseline = gw.metrics.frechet_morphology_distance(*halves)
pd.DataFrame({"reference": morph_ref[["gini", "m20"]].median(), "generated": morph_gen[["gini", "m20"]].median(),
              "KL(reference || generated)": morph_kl}).rename_axis("median")"""),
code("""fig, ax = plt.subplots(figsize=(4.2, 3.6))
ax.scatter(morph_ref.m20, morph_ref.gini, s=10, alpha=0.6, label="reference")
ax.scatter(morph_gen.m20, morph_gen.gini, s=10, alpha=0.6, label="generated")
gw.viz.gini_m20_lines(ax)  # Lotz et al. 2008: mergers above the dashed line; bulges above the dotted one
ax.set(xlabel="M20", ylabel="Gini",
       title=f"Fréchet morphology distance {fmd:.2f} (split-half {fmd_baseline:.2f})")
ax.title.set_fontsize(8)
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(out / "gini_m20.png", dpi=100)
plt.show()"""),
md("""## Fréchet Inception Distance

FID compares Inception-v3 features learnt on ImageNet photographs; on three-band galaxy stamps it
mostly measures an arbitrary colour mapping and small-scale texture, so treat it as a secondary
number next to the SGD. The weights are never downloaded: FID is computed only when the weight file
is on disk (`fid_weights`, `$GALWIDGETS_INCEPTION_WEIGHTS`, or torchvision's hub cache)."""),
code("""try:
    fid_value = gw.metrics.fid(gen, ref, weights=fid_weights or None, progress=False)
    print(f"FID {fid_value:.2f}")
except FileNotFoundError as missing:
    fid_value = None
    print("FID skipped:", str(missing).split(". ")[0])"""),
md("""## Memorisation: nearest training galaxies

Each generated galaxy's nearest training galaxy in pixel space (L2 on unit-norm stamps, so shape
counts rather than brightness). `ratio` divides that distance by the typical distance between a
training galaxy and its nearest other training galaxy: a ratio well below 1 marks a near-copy."""),
code("""train_set = None
recipe = (ckpt.config.get("pretrained", {}).get("recipe") if ckpt is not None else None)
if training == "recipe" and recipe:
    train_set = gw.data.simulate_survey(**recipe["survey"], progress=False)
elif training and training != "recipe":
    train_set = gw.data.Survey.load(training)
if train_set is None:
    neighbours = None
    print("nearest neighbours skipped:", "no training set (`training` empty, or no recipe in the checkpoint)")
else:
    train_set = train_set.subset(np.arange(min(n_training, len(train_set))))
    neighbours = gw.metrics.nearest_neighbours(gen, train_set, normalise="l2", progress=False)
    neighbours.to_parquet(out / "nearest_neighbours.parquet")
    closest = np.argsort(neighbours.distance_1.to_numpy())[:min(8, len(gen))]
    pairs = np.concatenate([gen.images[closest], train_set.images[neighbours.index_1.to_numpy()[closest]]])
    fig = gw.viz.image_grid(pairs, gen.bands, ncols=len(closest), zeropoint=gen.zeropoint,
                            suptitle="the closest generated galaxies (top) and their nearest training galaxy")
    fig.savefig(out / "neighbours.png", dpi=100)
    display(Image(filename=str(out / "neighbours.png")))
    print(neighbours[["distance_1", "ratio"]].describe().loc[["min", "50%", "max"]].round(3))"""),
md("""## Flux scale

Smith et al. (2022) sorted the per-galaxy median fluxes of generated and real galaxies, plotted one
against the other and fitted a line: a multiplier of 1 means the brightness distribution is right
(theirs were 1.16-1.23, generated galaxies slightly too bright). Here the median is taken inside the
central photometry aperture, since a sky-subtracted stamp's median is about zero."""),
code("""scale = gw.metrics.flux_scale(gen, ref, radius=aperture_radius)
scale.to_parquet(out / "flux_scale.parquet")
fig, axes = plt.subplots(1, len(scale), figsize=(2.8 * len(scale), 2.6))
gen_median = gw.metrics.central_median_flux(gen, aperture_radius)
ref_median = gw.metrics.central_median_flux(ref, aperture_radius)
for i, (ax, band) in enumerate(zip(np.atleast_1d(axes), scale.index)):
    q = (np.arange(min(len(gen), len(ref))) + 0.5) / min(len(gen), len(ref))
    x, y = np.nanquantile(ref_median[:, i], q), np.nanquantile(gen_median[:, i], q)
    ax.plot(x, y, ".", ms=3)
    ax.plot(x, scale.loc[band, "multiplier"] * x, "k-", lw=0.8)
    ax.plot(x, x, "k:", lw=0.8)
    ax.set(xlabel=f"reference {band} (sorted)", ylabel=f"generated {band} (sorted)",
           title=f"{band}: multiplier {scale.loc[band, 'multiplier']:.2f}")
    ax.title.set_fontsize(8)
fig.tight_layout()
fig.savefig(out / "flux_scale.png", dpi=100)
plt.show()
scale.round(3)"""),
md("""## Mode collapse: a 2-D projection of both sets

The photometric and morphological features of every galaxy (magnitudes, colours, half-light radius,
Gini, M20), standardised by the reference set, projected onto the reference's first two principal
components (or by UMAP when `umap-learn` is installed). Generated galaxies that crowd one corner of
the reference cloud, or leave parts of it empty, point to mode collapse."""),
code("""mean, std = features_ref.mean(), features_ref.std().replace(0, 1)
a, b = ((features_ref - mean) / std).to_numpy(), ((features_gen - mean) / std).to_numpy()
try:
    import umap

    reducer = umap.UMAP(random_state=seed).fit(a)
    proj_ref, proj_gen, method = reducer.transform(a), reducer.transform(b), "UMAP"
except ImportError:
    _, _, axes_pca = np.linalg.svd(a - a.mean(0), full_matrices=False)
    proj_ref, proj_gen, method = a @ axes_pca[:2].T, b @ axes_pca[:2].T, "PCA"
fig, ax = plt.subplots(figsize=(4.2, 3.6))
ax.scatter(*proj_ref.T, s=8, alpha=0.5, label="reference")
ax.scatter(*proj_gen.T, s=8, alpha=0.5, label="generated")
ax.set(xlabel=f"{method} 1", ylabel=f"{method} 2", title=f"features of both sets ({method})")
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(out / "projection.png", dpi=100)
plt.show()"""),
md("""## Size and redshift (conditional models)

For a redshift-conditioned model, the Spearman rank correlation between the conditioning redshift
and the measured half-light radius should match the reference's (the published quality bar of the
shipped conditional model: within 0.15)."""),
code("""from scipy.stats import spearmanr

size_redshift = None
if conditional:
    def rho(z, r_half):
        ok = np.isfinite(z) & np.isfinite(r_half)
        return float(spearmanr(z[ok], r_half[ok]).statistic)

    size_redshift = {"generated": rho(cond, phot_gen.r_half.to_numpy()),
                     "reference": rho(z_ref, phot_ref.r_half.to_numpy())}
    size_redshift["difference"] = size_redshift["generated"] - size_redshift["reference"]
    fig, ax = plt.subplots(figsize=(4.2, 3.4))
    ax.scatter(z_ref, phot_ref.r_half, s=6, alpha=0.4, label=f"reference (ρ = {size_redshift['reference']:+.2f})")
    ax.scatter(cond, phot_gen.r_half, s=6, alpha=0.4, label=f"generated (ρ = {size_redshift['generated']:+.2f})")
    ax.set(xlabel="redshift", ylabel="half-light radius (arcsec)", yscale="log")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "size_redshift.png", dpi=100)
    plt.show()
    print(size_redshift)
else:
    print("unconditional model: no size-redshift check")"""),
md("## Results"),
code("""metrics = {
    "sgd": sgd,
    "sgd_baseline": baseline,
    "sgd_ratio": sgd["total"] / baseline["total"],
    "sgd_err": sgd_err,
    "cohens_d": effect,
    "n_generated": len(gen),
    "n_reference": len(ref),
    "flagged_generated": int((phot_gen.flag > 0).sum()),
    "flagged_reference": int((phot_ref.flag > 0).sum()),
    "morphology": {
        "band": morphology_band,
        "frechet_morphology_distance": fmd,
        "frechet_morphology_distance_baseline": fmd_baseline,
        "kl_gini": morph_kl["gini"],
        "kl_m20": morph_kl["m20"],
        "median_gini_generated": float(morph_gen.gini.median()),
        "median_gini_reference": float(morph_ref.gini.median()),
        "median_m20_generated": float(morph_gen.m20.median()),
        "median_m20_reference": float(morph_ref.m20.median()),
    },
    "fid": fid_value,
    "flux_scale": {band: {"multiplier": row.multiplier, "offset": row.offset}
                   for band, row in scale.iterrows()},
    "nearest_neighbours": (None if neighbours is None else
                           {"median_distance": float(neighbours.distance_1.median()),
                            "min_distance": float(neighbours.distance_1.min()),
                            "median_ratio": float(neighbours.ratio.median()),
                            "n_training": len(train_set)}),
    "projection": method,
    "size_redshift_spearman": size_redshift,
    "guidance": guidance if conditional else None,
    "source_generated": generated or checkpoint,
    "model": "file" if generated else (model if Path(checkpoint).suffix != ".safetensors" else checkpoint),
    "source_reference": reference or "simulate_survey",
    "figures": ["grid.png", "distributions.png", "gini_m20.png", "flux_scale.png", "projection.png"]
               + (["neighbours.png"] if neighbours is not None else [])
               + (["size_redshift.png"] if conditional else []),
    "tables": ["photometry_generated.parquet", "photometry_reference.parquet",
               "morphology_generated.parquet", "morphology_reference.parquet", "flux_scale.parquet"]
              + (["nearest_neighbours.parquet"] if neighbours is not None else []),
}
gw.notebooks.write_metrics(out, metrics)
print(f"SGD model {sgd['total']:.3f} vs split-half baseline {baseline['total']:.3f} "
      f"(ratio {metrics['sgd_ratio']:.2f}); wrote {out / 'metrics.json'}")"""),
]

if __name__ == "__main__":
    write("evaluate", cells)
