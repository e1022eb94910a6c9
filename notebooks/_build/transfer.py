"""Writes notebooks/transfer.ipynb: SDEdit domain transfer of cartoon galaxies into the mock survey."""

from _nb import code, md, parameters, write

cells = [
md("""# Domain transfer: from cartoons to survey galaxies

SDEdit (Meng et al. 2022) turns a rough image into one from the model's domain: noise the input part
of the way along the forward process, to timestep `t_start`, then run the reverse process from
there. The noise hides the input's small-scale detail, which the model replaces with what it learnt,
while the large-scale layout (position, size, shape, colour) survives. Smith et al. (2022, MNRAS
511, 1808, §5.2 and Fig. 7) "DESI-fied" hand-drawn galaxies this way from `t = 600` of `T = 1000`.

Here flat-coloured cartoons with sharp edges (`gw.data.cartoons`: ellipses, spirals, rings and
mergers) are transferred by `gw.diffusion.domain_transfer`, and compared with held-out mock galaxies
(the `reference`) before and after. The cartoons get the sky noise of the reference survey, as an
observed drawing would (it is far below the diffusion noise at `t_start`, so it hardly changes the
transfer, but segmentation, hence Gini and M20, needs a sky to measure against):

* the **Fréchet morphology distance** (`gw.metrics.frechet_morphology_distance`): the Fréchet
  distance between Gaussians fitted to standardised photometric and morphological features
  (magnitudes, colours, half-light radius, Gini and M20 of Lotz, Primack & Madau 2004), the
  FID of Heusel et al. (2017) with astronomy features in place of Inception ones;
* the **Synthetic Galaxy Distance** (Smith et al. 2022) of the photometry;
* the **nearest-neighbour ratio**: each output's pixel distance to its closest reference galaxy,
  over the typical reference-to-reference distance; about 1 means a new galaxy of the domain, about
  0 a copy of a reference galaxy.

Another set of mock galaxies of the same size gives the baseline a perfect transfer would reach.
`t_start_sweep` shows the trade-off SDEdit is about: a small `t_start` keeps the cartoon, a large
one forgets it.

It writes into `output_dir`: `metrics.json`, `transferred.fits` (the transferred galaxies as a
Survey), `transferred_catalog.parquet`, `features.parquet`, `transfer.png`, `gini_m20.png` and, with a
sweep, `sweep.png`."""),
parameters("""output_dir = "transfer-output"  # str: folder for metrics.json, tables, the survey and figures
checkpoint = "desi-tiny"  # str: shipped model name or .safetensors path
n_cartoons = 32  # int: cartoon galaxies to transfer
kinds = ["ellipse", "spiral", "ring", "merger"]  # list: cartoon kinds, cycled through
t_start = 600  # int: SDEdit start step (1..T); Smith et al. 2022 use 600 of 1000
steps = 50  # int: DDIM steps from t_start (ignored by DDPM)
sampler = "ddim"  # str: "ddim" or "ddpm" reverse process
n_reference = 256  # int: held-out mock galaxies: the reference set and nearest-neighbour pool
seed = 0  # int: seed of the cartoons and the transfer noise
reference_seed = 12345  # int: seed of the reference mock galaxies (desi-tiny was trained on seed 1000)
cartoon_noise = True  # bool: give the cartoons the reference's sky noise (no Gini/M20 on noise-free stamps)
t_start_sweep = [200, 400, 800]  # list: further t_start values for the trade-off curve ([]: none)
morphology_band = "r"  # str: band of Gini and M20
n_show = 8  # int: galaxies in the transfer figure
batch_size = 64  # int: galaxies per network call
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
like = dict(size=ckpt.size, bands=bands, pixel_scale=ckpt.pixel_scale, progress=False)
reference = gw.data.simulate_survey(n_reference, seed=reference_seed, **like)
sky = dict(zip(bands, gw.data.sky_noise(reference.images).tolist())) if cartoon_noise else None
drawings = gw.data.cartoons(n_cartoons, size=ckpt.size, kinds=kinds, bands=bands, seed=seed,
                            pixel_scale=ckpt.pixel_scale, zeropoint=ckpt.zeropoint, sky_sigma=sky)
mock = gw.data.simulate_survey(n_cartoons, seed=reference_seed + 1, **like)  # the baseline set"""),
md("## Transfer"),
code("""def transfer(start, **kwargs):
    return gw.diffusion.domain_transfer(ckpt, drawings, t_start=start, steps=steps, sampler=sampler,
                                        seed=seed, batch_size=batch_size, progress=progress, **kwargs)


t0 = time.perf_counter()
transferred = transfer(t_start, reference=reference)  # adds each output's nearest reference galaxy
seconds = time.perf_counter() - t0
transferred.save(out / "transferred.fits")
transferred.catalog.to_parquet(out / "transferred_catalog.parquet")
print(f"{n_cartoons} cartoons, t_start={t_start}, {transferred.meta['steps']} steps: {seconds:.1f} s")"""),
md("""## Inputs, outputs and nearest neighbours

The layout of Smith et al. (2022) Fig. 7: one column per galaxy; rows: the cartoon, its transfer,
and the reference galaxy closest to the transfer in pixel space. The transfer should keep the
cartoon's position, size, orientation and colour but gain the soft light profile, noise and
substructure of survey galaxies, and it should not simply be its nearest neighbour."""),
code("""k = min(n_show, n_cartoons)
neighbours = reference[transferred.catalog["nn_index"].to_numpy()[:k]]
fig = gw.diffusion.transfer_figure(drawings[:k], transferred[:k], neighbours,
                                   titles=list(drawings.catalog["kind"][:k]),
                                   zeropoint=ckpt.zeropoint)
fig.savefig(out / "transfer.png", dpi=100)
display(Image(filename=str(out / "transfer.png")))"""),
md("""## How close to survey galaxies?

Each row compares one set with the reference: smaller is closer. The Fréchet morphology distance
adds about 1 for every feature shifted by one standard deviation of the reference; the SGD is in
magnitudes (plus arcsec for the size term)."""),
code("""sets = {"cartoons": drawings, "transferred": transferred, "mock baseline": mock,
        "reference": reference}
features = {name: gw.metrics.morphology_features(s, morphology_band=morphology_band, dropna=False)
            for name, s in sets.items()}
pd.concat(features, names=["set", "galaxy"]).reset_index().to_parquet(out / "features.parquet")


def nn_ratio(images):
    nn = gw.metrics.nearest_neighbours(images, reference, progress=False)
    return float(np.nanmedian(nn["ratio"])) if "ratio" in nn else float("nan")


rows, sgd = {}, {}
for name in ("cartoons", "transferred", "mock baseline"):
    sgd[name] = gw.metrics.synthetic_galaxy_distance(features[name], features["reference"])
    rows[name] = {"Fréchet morphology distance": gw.metrics.frechet_morphology_distance(
                      features[name], features["reference"]),
                  "SGD total": sgd[name]["total"], "SGD r_half term": sgd[name].get("r_half", np.nan),
                  "nearest-neighbour ratio (median)": nn_ratio(sets[name])}
summary = pd.DataFrame(rows).T
summary"""),
md("""## The Gini–M20 plane

Gini measures how unequally the light is shared among a galaxy's pixels, M20 how far from the
centre its brightest 20 % lie (Lotz et al. 2004). Flat cartoons with sharp edges sit far from
survey galaxies in this plane; the arrows show where the transfer moved each of them."""),
code("""fc, ft, fr = features["cartoons"], features["transferred"], features["reference"]
fig, ax = plt.subplots(figsize=(4.6, 4))
ax.scatter(fr.m20, fr.gini, s=8, c="0.7", label="reference (mock)")
ax.scatter(fc.m20, fc.gini, s=14, marker="s", label="cartoons")
ax.scatter(ft.m20, ft.gini, s=14, label="transferred")
ends = np.column_stack([fc.m20, fc.gini, ft.m20, ft.gini])
for i in np.flatnonzero(np.isfinite(ends).all(axis=1)):  # a failed measurement is NaN: no arrow
    ax.annotate("", (ft.m20.iloc[i], ft.gini.iloc[i]), (fc.m20.iloc[i], fc.gini.iloc[i]),
                arrowprops=dict(arrowstyle="->", lw=0.5, color="0.4"))
ax.set(xlabel="M20", ylabel="Gini", title=f"Gini-M20 in {morphology_band}")
ax.invert_xaxis()
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(out / "gini_m20.png", dpi=100)
plt.show()"""),
md("""## How far to noise: the `t_start` trade-off

A transfer from a small `t_start` stays close to the cartoon (large distance to the survey); one
from near `T` forgets the input and is an unconditional sample (distance near the baseline, but
nothing of the drawing left). The input's *faithfulness* is measured here as the pixel RMS
difference between output and cartoon, in units of the cartoons' RMS flux."""),
code("""sweep = []
for start in sorted({*t_start_sweep, t_start}):
    result = transferred if start == t_start else transfer(start)
    table = gw.metrics.morphology_features(result, morphology_band=morphology_band, dropna=False)
    change = np.sqrt(np.mean((result.images - drawings.images) ** 2) / np.mean(drawings.images ** 2))
    distance = gw.metrics.frechet_morphology_distance(table, features["reference"])
    sweep.append({"t_start": start, "frechet_morphology_distance": distance,
                  "relative_change": float(change)})
sweep = pd.DataFrame(sweep)
if len(sweep) > 1:
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    ax.plot(sweep.t_start, sweep.frechet_morphology_distance, "o-", label="transferred")
    ax.axhline(rows["cartoons"]["Fréchet morphology distance"], ls="--", c="C1", label="cartoons")
    ax.axhline(rows["mock baseline"]["Fréchet morphology distance"], ls=":", c="0.4", label="mock")
    ax.set(xlabel="t_start", ylabel="Fréchet morphology distance", yscale="log")
    twin = ax.twinx()
    twin.plot(sweep.t_start, sweep.relative_change, "s-", c="C2", label="change from cartoon")
    twin.set_ylabel("RMS change / RMS cartoon", color="C2")
    ax.legend(fontsize=7, loc="upper center")
    fig.tight_layout()
    fig.savefig(out / "sweep.png", dpi=100)
    plt.show()
sweep"""),
md("## Results"),
code("""fmd = {name: float(row["Fréchet morphology distance"]) for name, row in rows.items()}
metrics = {
    "frechet_morphology_distance": {key.replace(" ", "_"): value for key, value in fmd.items()},
    "fmd_improvement": fmd["cartoons"] / fmd["transferred"],
    "sgd": {name.replace(" ", "_"): value for name, value in sgd.items()},
    "nn_ratio_median": {name.replace(" ", "_"): row["nearest-neighbour ratio (median)"]
                        for name, row in rows.items()},
    "sweep": sweep.to_dict("records"),
    "t_start": t_start,
    "steps": int(transferred.meta["steps"]),
    "sampler": sampler,
    "n_cartoons": n_cartoons,
    "n_reference": n_reference,
    "seconds": seconds,
    "checkpoint": checkpoint,
    "survey_file": str(out / "transferred.fits"),
    "figures": ["transfer.png", "gini_m20.png"] + (["sweep.png"] if len(sweep) > 1 else []),
    "tables": ["transferred_catalog.parquet", "features.parquet"],
}
gw.notebooks.write_metrics(out, metrics)
print(f"Fréchet morphology distance {fmd['cartoons']:.1f} -> {fmd['transferred']:.1f} "
      f"(baseline {fmd['mock baseline']:.2f}); wrote {out / 'metrics.json'}")"""),
]

if __name__ == "__main__":
    write("transfer", cells)
