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
features, no network weights needed).

With `model = "vae"` or `"dcgan"` the generated set comes from a VAE or a DCGAN trained here on
mock galaxies (the baselines of the thesis's chapter 2), so the three generators can be compared
on the same metrics: `galwidgets batch evaluate` over `model: [ddpm, vae, dcgan]`.

Run it from Python with `gw.run_notebook("evaluate", parameters={...}, output_dir=...)` or from the
shell with `galwidgets run evaluate -p n_generated 64`. It writes into `output_dir`:
`metrics.json`, `photometry_generated.parquet`, `photometry_reference.parquet`,
`morphology_generated.parquet`, `morphology_reference.parquet`, `grid.png`, `distributions.png`
and `gini_m20.png`."""),
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
n_show = 16  # int: galaxies per set in the image grid"""),
code("""from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Image, display

import galwidgets as gw

out = Path(output_dir)
out.mkdir(parents=True, exist_ok=True)"""),
md("## The two galaxy sets"),
code("""if generated:
    gen = gw.data.Survey.load(generated)
else:
    is_file = Path(checkpoint).suffix == ".safetensors"
    if model not in ("ddpm", "vae", "dcgan"):
        raise ValueError(f"model: expected 'ddpm', 'vae' or 'dcgan', got {model!r}")
    if is_file or model == "ddpm":
        ckpt = gw.load_checkpoint(checkpoint) if is_file else gw.pretrained.load(checkpoint)
    else:  # the thesis's chapter-2 baselines, trained on the same mock data as the shipped DDPM
        train = gw.data.simulate_survey(n_train, size=train_size, seed=seed + 20_000, progress=False)
        if model == "vae":
            ckpt = gw.models.train_vae(gw.models.VAE(in_channels=len(train.bands), image_size=train_size),
                                       train, steps=train_steps, checkpoint_dir=out / "training", seed=seed)
        else:
            ckpt = gw.models.train_dcgan(gw.models.DCGAN(in_channels=len(train.bands), image_size=train_size),
                                         train, steps=train_steps, checkpoint_dir=out / "training", seed=seed)
    gen = ckpt.sample(n_generated, steps=steps, seed=seed)
if reference:
    ref = gw.data.Survey.load(reference)
else:
    ref = gw.data.simulate_survey(n_reference, size=gen.size, bands=gen.bands,
                                  pixel_scale=gen.pixel_scale, seed=seed + 10_000)
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
fmd = gw.metrics.frechet_morphology_distance(gen, ref, morphology_band=morphology_band)
fmd_baseline = gw.metrics.frechet_morphology_distance(*ref.split(0.5, seed=seed), morphology_band=morphology_band)
pd.DataFrame({"reference": morph_ref[["gini", "m20"]].median(), "generated": morph_gen[["gini", "m20"]].median(),
              "KL(reference || generated)": morph_kl}).rename_axis("median")"""),
code("""fig, ax = plt.subplots(figsize=(4.2, 3.6))
ax.scatter(morph_ref.m20, morph_ref.gini, s=10, alpha=0.6, label="reference")
ax.scatter(morph_gen.m20, morph_gen.gini, s=10, alpha=0.6, label="generated")
m20 = np.array([-3.0, 0.0])
ax.plot(m20, -0.14 * m20 + 0.33, "k--", lw=0.8)  # mergers above
early = np.array([-3.0, -1.68])
ax.plot(early, 0.14 * early + 0.80, "k:", lw=0.8)  # early types above, discs below
ax.set(xlim=(0, -3), xlabel="M20", ylabel="Gini",
       title=f"Fréchet morphology distance {fmd:.2f} (split-half {fmd_baseline:.2f})")
ax.title.set_fontsize(8)
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(out / "gini_m20.png", dpi=100)
plt.show()"""),
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
    "source_generated": generated or checkpoint,
    "model": "file" if generated else (model if Path(checkpoint).suffix != ".safetensors" else checkpoint),
    "source_reference": reference or "simulate_survey",
    "figures": ["grid.png", "distributions.png", "gini_m20.png"],
    "tables": ["photometry_generated.parquet", "photometry_reference.parquet",
               "morphology_generated.parquet", "morphology_reference.parquet"],
}
gw.notebooks.write_metrics(out, metrics)
print(f"SGD model {sgd['total']:.3f} vs split-half baseline {baseline['total']:.3f} "
      f"(ratio {metrics['sgd_ratio']:.2f}); wrote {out / 'metrics.json'}")"""),
]

if __name__ == "__main__":
    write("evaluate", cells)
