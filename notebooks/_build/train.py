"""Writes notebooks/train.ipynb: train a diffusion model on a survey, or rebuild a shipped one."""

from _nb import code, md, parameters, write

cells = [
md("""# Train a diffusion model on galaxy images

A denoising diffusion probabilistic model (DDPM, Ho et al. 2020) learns to undo a fixed process that
adds Gaussian noise to an image over `T` steps; run backwards from pure noise it draws new images
from the distribution of its training set. Smith et al. (2022, MNRAS 511, 1808) showed that such a
model trained on DESI Legacy Surveys cutouts produces galaxies whose photometry and morphology match
the real ones. This notebook trains one on a `Survey` of flux images (by default mock DESI-like
g, r, z galaxies from `gw.data.simulate_survey`):

* a U-Net (Ronneberger et al. 2015, in the form of Ho et al. 2020) predicts the *velocity*
  `v = √ᾱ ε − √(1−ᾱ) x₀` (Salimans & Ho 2022), which keeps the network's estimate of the clean
  galaxy accurate at the low signal-to-noise of faint outskirts, or the noise ε itself;
* the noise follows the cosine schedule of Nichol & Dhariwal (2021) or the linear one of Ho et al.;
* an exponential moving average (EMA) of the weights is what draws the samples;
* with `cond` (e.g. `"redshift"`) the model is conditioned on a catalogue column, and trained with
  the condition dropped 10 % of the time so that classifier-free guidance (Ho & Salimans 2022)
  works at sampling time.

Training is resumable: checkpoints, `train_log.csv` and sample grids go to `workdir`, and running the
notebook again with the same `workdir` continues where it stopped.

**Rebuilding a shipped model.** With `recipe` set to a name in
`galwidgets.pretrained.recipes.RECIPES` (`"desi-tiny"`, `"desi-z-tiny"`), the survey, model,
schedule and training settings come from that recipe and `recipes.build` does the work, so this
notebook is how the shipped checkpoints are made; `recipe_overrides` changes parts of the recipe
(for a quick test run, e.g. `{"train": {"steps": 20}, "survey": {"n": 64}}`; changing the training
steps leaves out the recipe's `anneal` phase unless `anneal` is overridden too).

Run it with `gw.run_notebook("train", parameters={...}, output_dir=...)` or
`galwidgets run train -p steps 500`. It writes into `output_dir`: `metrics.json`, `model.safetensors`
(EMA weights, schedule, normaliser and config: load it with `gw.load_checkpoint`, or pass it as
`checkpoint` to the `sample`, `evaluate`, `inpaint`, `transfer` and `deconvolve` notebooks),
`train_log.parquet`, `loss.png` and `samples.png`."""),
parameters("""output_dir = "train-output"  # str: folder for metrics.json, the model, tables and figures
recipe = ""  # str: shipped model's recipe to rebuild (e.g. "desi-tiny"); empty: use the settings below
recipe_overrides = {}  # dict: changes per recipe section, e.g. {"train": {"steps": 20}, "survey": {"n": 64}}
survey = ""  # str: Survey FITS file to train on; empty: simulate `n_train` mock galaxies
n_train = 2000  # int: mock galaxies to simulate when `survey` is empty
size = 64  # int: stamp side in pixels of the mock galaxies
seed = 0  # int: seed of training (batches, noise, augmentation); the mock survey uses seed + 1000
steps = 2000  # int: optimisation steps in total (a resumed run continues up to this number)
batch_size = 32  # int: galaxies per step
lr = 2e-4  # float: AdamW learning rate, reached after a linear warm-up
base_channels = 16  # int: U-Net feature channels at full resolution
channel_mults = [1, 2, 4, 4]  # list: U-Net channel multiplier per level (level i works at size / 2**i)
num_res_blocks = 1  # int: residual blocks per U-Net level
attention_levels = [2]  # list: U-Net levels with self-attention (level 0 is full resolution)
prediction = "v"  # str: network output, "v" (velocity, Salimans & Ho 2022) or "eps" (noise, Ho et al. 2020)
schedule = "cosine"  # str: noise schedule, "cosine" (Nichol & Dhariwal 2021) or "linear" (Ho et al. 2020)
T = 1000  # int: diffusion timesteps of the schedule
cond = ""  # str: catalogue column to condition on (e.g. "redshift"); empty: unconditional
cond_drop = 0.1  # float: probability of dropping the condition in training (classifier-free guidance)
workdir = ""  # str: folder of checkpoints/ and train_log.csv, resumable; empty: <output_dir>/training
checkpoint_every = 250  # int: steps between checkpoints
resume = True  # bool: continue from the newest checkpoint in `workdir` (recipe runs always resume)
n_show = 16  # int: galaxies drawn from the trained model for the sample grid
sample_steps = 50  # int: DDIM steps of those samples
progress = True  # bool: show progress bars"""),
code("""import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Image, display

import galwidgets as gw
from galwidgets.pretrained import recipes
from galwidgets.training import latest_checkpoint

out = Path(output_dir)
out.mkdir(parents=True, exist_ok=True)
work = Path(workdir) if workdir else out / "training"
model_file = out / "model.safetensors\""""),
md("""## Training

With a `recipe`, `recipes.build` simulates the recipe's survey (cached in `workdir`), trains and
exports the EMA weights (as float16, like the shipped files). Otherwise the U-Net below is trained
on `survey` with `gw.train`; for a conditional model the condition is centred and scaled by its
median and spread in the training catalogue, so that a narrow range such as redshift 0.02-0.15
reaches the network at unit scale."""),
code("""t0 = time.perf_counter()
if recipe:
    if recipe not in recipes.RECIPES:
        raise ValueError(f"recipe: unknown recipe {recipe!r}; known: {sorted(recipes.RECIPES)}")
    spec = recipes.with_overrides(recipe, recipe_overrides) if recipe_overrides else recipes.RECIPES[recipe]
    name = f"{recipe}+overrides" if recipe_overrides else recipe  # the name the checkpoint records
    print(name, spec)
    recipes.build(name, workdir=work, output=model_file, progress=progress, recipe=spec)
else:
    data = (gw.data.Survey.load(survey) if survey
            else gw.data.simulate_survey(n_train, size=size, seed=seed + 1000, progress=progress))
    print("training set:", data)
    cond_kwargs = {}
    if cond:
        values = data.catalog[cond].to_numpy(dtype=float)
        cond_kwargs = {"cond_dim": 1, "cond_center": float(np.median(values)),
                       "cond_scale": float(values.std()) or 1.0}
    torch.manual_seed(seed)  # the initial weights, so that a seed gives one model
    model = gw.models.UNet(in_channels=len(data.bands), base_channels=base_channels,
                           channel_mults=channel_mults, num_res_blocks=num_res_blocks,
                           attention_levels=attention_levels, prediction=prediction, **cond_kwargs)
    noise_schedule = gw.diffusion.NoiseSchedule.from_config({"kind": schedule, "params": {"T": T}})
    trained = gw.train(model, noise_schedule, data, steps=steps, batch_size=batch_size, lr=lr,
                       cond=cond or None, cond_drop=cond_drop, checkpoint_dir=work / "checkpoints",
                       checkpoint_every=checkpoint_every, resume=resume, seed=seed, progress=progress)
    trained.save(model_file)
wall_seconds = time.perf_counter() - t0
ckpt = gw.load_checkpoint(model_file)
n_parameters = sum(p.numel() for p in ckpt.model.parameters())
print(f"{ckpt.config['step']} steps, {n_parameters:,} parameters, {wall_seconds:.0f} s")"""),
md("""## Loss curve

The training loss is the mean squared error of the network's prediction (of `v` or ε) at a random
timestep, so it is noisy from step to step; the running mean shows the trend. It drops fast while
the model learns the overall light profile and then slowly, as it learns detail; it does not go to
zero (the noise cannot be predicted exactly at every timestep), so a flat curve is not by itself a
sign that training is over: look at the samples, or run the `evaluate` notebook."""),
code("""history = pd.read_csv(work / "checkpoints" / "train_log.csv")
history.to_parquet(out / "train_log.parquet")
window = max(1, len(history) // 50)
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
axes[0].plot(history.step, history.loss, lw=0.5, alpha=0.4, label="per step")
running = history.loss.rolling(window, min_periods=1).mean()
axes[0].plot(history.step, running, label=f"running mean of {window}")
axes[0].set(xlabel="step", ylabel="loss", yscale="log", title="training loss")
axes[0].legend(fontsize=7)
axes[1].plot(history.step, history.grad_norm, lw=0.5)
axes[1].set(xlabel="step", ylabel="before clipping", yscale="log", title="gradient norm")
fig.tight_layout()
fig.savefig(out / "loss.png", dpi=100)
plt.show()"""),
md("""## Samples from the trained model

Top rows: galaxies of the training set; below: galaxies drawn by the EMA model with DDIM (Song et
al. 2021). A conditional model draws them at conditions spread over the training range (titles).
Early in training the samples are smooth blobs; colours, sizes and spiral structure come later."""),
code("""train_data = (gw.data.Survey.load(work / "train_survey.fits") if recipe
              else data)
columns = ckpt.config.get("cond", {}).get("columns") or []
n = min(n_show, len(train_data))
if columns:
    values = np.quantile(train_data.catalog[columns[0]], np.linspace(0.05, 0.95, n))
    generated = ckpt.sample(n, steps=sample_steps, seed=seed, cond=values, progress=progress)
    titles = [f"{columns[0]}={v:.3f}" for v in values]
else:
    generated = ckpt.sample(n, steps=sample_steps, seed=seed, progress=progress)
    titles = None
shown = train_data.images[:n]
fig = gw.viz.image_grid(np.concatenate([shown, generated.images]), ckpt.bands, ncols=8,
                        titles=None if titles is None else [""] * n + titles, zeropoint=ckpt.zeropoint,
                        suptitle=f"first {n} galaxies: training set; then {n} samples")
fig.savefig(out / "samples.png", dpi=100)
display(Image(filename=str(out / "samples.png")))"""),
md("## Results"),
code("""tail = max(1, len(history) // 10)
metrics = {
    "recipe": recipe or None,
    "recipe_overrides": recipe_overrides,
    "steps": int(ckpt.config["step"]),
    "batch_size": int(ckpt.config["training"]["batch_size"]),
    "final_loss": float(history.loss.iloc[-1]),
    "final_loss_mean": float(history.loss.iloc[-tail:].mean()),
    "initial_loss_mean": float(history.loss.iloc[:tail].mean()),
    "wall_seconds": wall_seconds,
    "n_parameters": int(n_parameters),
    "n_train": int(ckpt.config["data"]["n_train"]),
    "size": ckpt.size,
    "bands": list(ckpt.bands),
    "cond": columns,
    "model": ckpt.config["model"],
    "schedule": ckpt.config["schedule"],
    "checkpoint": str(model_file),
    "training_checkpoint": str(latest_checkpoint(work / "checkpoints")),
    "figures": ["loss.png", "samples.png"],
    "tables": ["train_log.parquet"],
}
gw.notebooks.write_metrics(out, metrics)
print(f"loss {metrics['initial_loss_mean']:.4f} -> {metrics['final_loss_mean']:.4f} after {metrics['steps']} "
      f"steps; wrote {out / 'metrics.json'}")"""),
]

if __name__ == "__main__":
    write("train", cells)
