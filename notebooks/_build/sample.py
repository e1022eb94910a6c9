"""Writes notebooks/sample.ipynb: draw galaxies from a checkpoint and save them as a Survey file."""

from _nb import code, md, parameters, write

cells = [
md("""# Draw a mock survey from a trained model

Draws `n` galaxies from a diffusion model (a shipped one such as `desi-tiny`, or a
`.safetensors` file written by the `train` notebook) and saves them as a `Survey` FITS file, flux
calibrated in the model's bands, pixel scale and zeropoint, ready for the `evaluate` notebook or
any photometry pipeline.

Any sampler of `gw.samplers.SAMPLERS` draws them (tutorial 03 explains how they differ):

* **the default** (`sampler = None`) is the model's `ckpt.default_sampler`: for most models
  `gw.samplers.DEFAULT_SAMPLER`, the one that came closest to 50-step DDIM's galaxies in the fewest
  network evaluations (`BENCHMARKS.md`, "Samplers"); a model whose recipe measured another sampler
  to suit it better records that one (`hsc-z-tiny`: DDIM, 25 steps);
* **DDIM** (Song, Meng & Ermon 2021) takes `steps` deterministic steps over the `T` timesteps; 50
  steps give galaxies close to those of the full chain at a twentieth of the cost;
* **DPM-Solver++** (`dpm_solver`, `dpm_solver_sde`, `dpm_solver_3m_sde`; Lu et al. 2022), **Euler**, **Heun** and
  **ancestral Euler** (Karras et al. 2022) integrate the probability-flow ODE (or its SDE) in
  fewer steps;
* **DDPM** (Ho et al. 2020, Algorithm 2) is the ancestral sampler the model was trained for: all
  `T` steps, each adding fresh noise. It is the reference, and slow.

A conditional model (e.g. `desi-z-tiny`, conditioned on redshift) draws its galaxies at conditions
spaced evenly over `cond_range`, with classifier-free guidance of strength `guidance` (Ho &
Salimans 2022; 1 means none; by default the scale the model's recipe recorded, 1.1 for
`hsc-z-tiny`, else 1). The conditions are stored in the catalogue column `cond_0`.

It writes into `output_dir`: `metrics.json`, the survey file (`survey_file`), `photometry.parquet`
(aperture photometry of every galaxy), `grid.png` and `colour_magnitude.png`."""),
parameters("""output_dir = "sample-output"  # str: folder for metrics.json, the survey, tables and figures
checkpoint = "desi-tiny"  # str: shipped model name or .safetensors path
n = 64  # int: galaxies to draw
sampler = None  # str: a name of gw.samplers.SAMPLERS ("ddim", "dpm_solver", "heun", "ddpm", ...); None: the model's default
steps = None  # int: sampler steps (ignored by DDPM); None: the sampler's default
eta = None  # float: noise scale of samplers that have one (DDIM: 0 deterministic, 1 DDPM-like); None: default
seed = 0  # int: seed of the draws; the same seed gives the same galaxies
cond_range = [0.03, 0.15]  # list: [low, high] condition (e.g. redshift) of a conditional model
guidance = None  # float: classifier-free guidance scale for a conditional model (1: none); None: the model's default
batch_size = 64  # int: galaxies per network call
survey_file = "samples.fits"  # str: name of the Survey FITS file written into output_dir
n_show = 32  # int: galaxies in the image grid
progress = True  # bool: show progress bars"""),
code("""import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

import galwidgets as gw

out = Path(output_dir)
out.mkdir(parents=True, exist_ok=True)
ckpt = gw.pretrained.as_checkpoint(checkpoint)  # a .safetensors file or a shipped model's name
columns = ckpt.config.get("cond", {}).get("columns") or []
cond_dim = ckpt.model.config.get("cond_dim", 0)
print(f"{checkpoint}: {ckpt.size}x{ckpt.size} px in {', '.join(ckpt.bands)}, "
      f"{ckpt.pixel_scale}\\"/px, zeropoint {ckpt.zeropoint}, trained {ckpt.config.get('step')} steps, "
      f"{'conditioned on ' + ', '.join(columns) if cond_dim else 'unconditional'}")"""),
md("## Sampling"),
code("""cond = None
if cond_dim:
    if len(cond_range) != 2:
        raise ValueError(f"cond_range: expected [low, high], got {cond_range!r}")
    cond = np.linspace(cond_range[0], cond_range[1], n)
sampler, steps = ckpt.resolve_sampler(sampler or None, steps)  # None: the model's default sampler
extra = {} if eta is None else {"eta": eta}
t0 = time.perf_counter()
generated = ckpt.sample(n, sampler=sampler, steps=steps, seed=seed, cond=cond, guidance=guidance,
                        batch_size=batch_size, progress=progress, **extra)
seconds = time.perf_counter() - t0
path = generated.save(out / survey_file)
steps_taken = generated.meta["steps"] or ckpt.schedule.T  # the sampler's default resolved; DDPM: all T
network_calls = gw.samplers.network_evaluations(sampler, steps_taken, ckpt.schedule.T)
print(f"{n} galaxies in {seconds:.1f} s ({n / seconds:.2f} galaxies/s, {network_calls} network calls each); "
      f"wrote {path}")"""),
md("""## The galaxies

RGB composites (Lupton et al. 2004 stretch, the same band scales for every stamp, so brightness
and colour compare across the grid). For a conditional model the title is the condition: at
higher redshift a galaxy of the same kind is smaller, fainter and redder."""),
code("""k = min(n_show, n)
titles = None if cond is None else [f"{(columns or ['cond'])[0]}={v:.3f}" for v in cond[:k]]
fig = gw.viz.image_grid(generated.images[:k], generated.bands, ncols=8, titles=titles,
                        zeropoint=generated.zeropoint,
                        suptitle=f"{k} of {n} galaxies from {Path(checkpoint).name} ({sampler.upper()})")
fig.savefig(out / "grid.png", dpi=100)
display(Image(filename=str(out / "grid.png")))"""),
md("""## Photometry

Aperture magnitudes per band (AB, from the survey's zeropoint), colours and half-light radius of
every galaxy, measured as in the `evaluate` notebook. The colour-magnitude diagram shows at a
glance whether the model draws a sensible population: a red sequence and a blue cloud over a range
of brightness, and no pile-up of empty or saturated stamps (flagged measurements)."""),
code("""phot = gw.metrics.photometry(generated)
phot.to_parquet(out / "photometry.parquet")
bands = list(generated.bands)
blue, red = bands[0], bands[min(1, len(bands) - 1)]
mag, colour = phot[f"mag_{red}"], phot[f"mag_{blue}"] - phot[f"mag_{red}"]
fig, ax = plt.subplots(figsize=(4.2, 3.4))
points = ax.scatter(mag, colour, s=10, c=None if cond is None else cond, cmap="viridis")
if cond is not None:
    fig.colorbar(points, ax=ax, label=(columns or ["cond"])[0])
ax.set(xlabel=f"{red} (AB mag)", ylabel=f"{blue} - {red}", title=f"{n} generated galaxies")
fig.tight_layout()
fig.savefig(out / "colour_magnitude.png", dpi=100)
plt.show()"""),
md("## Results"),
code("""metrics = {
    "n": len(generated),
    "checkpoint": checkpoint,
    "sampler": sampler,
    "steps": int(steps_taken),
    "network_evaluations": int(network_calls),
    "seed": seed,
    "seconds": seconds,
    "galaxies_per_second": len(generated) / seconds,
    "survey_file": str(path),
    "size": generated.size,
    "bands": bands,
    "cond": None if cond is None else {"column": (columns or ["cond"])[0], "low": float(cond.min()),
                                       "high": float(cond.max()), "guidance": generated.meta["guidance"]},
    "flagged": int((phot.flag > 0).sum()),
    f"median_mag_{red}": float(np.nanmedian(mag)),
    f"median_{blue}-{red}": float(np.nanmedian(colour)),
    "figures": ["grid.png", "colour_magnitude.png"],
    "tables": ["photometry.parquet"],
}
gw.notebooks.write_metrics(out, metrics)
print(f"wrote {out / 'metrics.json'}")"""),
]

if __name__ == "__main__":
    write("sample", cells)
