# ruff: noqa: E501  (cell sources: notebook lines, formulas)
"""Tutorial 2: train a tiny DDPM in minutes on the mock survey; watch the loss and the samples improve."""

from _tut import code, exercise, md, parameters, write

CELLS = [
md(r"""# 2 · Train a tiny DDPM in minutes

The shipped model `desi-tiny` took 87 minutes of two CPU cores to train. Here we train a much
smaller one, on smaller (32×32) mock galaxies, in about two minutes, and stop along the way to look
at what it has learnt so far.

**Learning goals**
- write down the training objective of a diffusion model (Ho et al. 2020, eq. 14) and its
  v-prediction variant (Salimans & Ho 2022), and evaluate it by hand on one batch;
- train a small `gw.models.UNet` with `gw.train`: checkpoints, resuming, the loss log, the EMA;
- read a loss curve (smoothed), and the loss per noise level, which says more;
- watch samples improve with training, and judge the result by eye (the `Gallery` widget) and by
  the Synthetic Galaxy Distance against its split-half baseline, next to the shipped `desi-tiny`.

Runs in about three minutes on a CPU, two of them training."""),
parameters("""n_train = 1000  # int: mock 32x32 training galaxies
n_reference = 256  # int: held-out mock galaxies the samples are compared with
stages = [50, 150, 300, 600]  # list: total training steps after which we pause, sample and look
batch_size = 32  # int: galaxies per training step
lr = 1e-3  # float: AdamW learning rate, reached after 50 warm-up steps
base_channels = 16  # int: U-Net channels at full resolution (the width of the model)
prediction = "v"  # str: what the network predicts: "v" (Salimans & Ho 2022) or "eps" (Ho et al. 2020)
n_show = 8  # int: samples shown per stage
n_eval = 64  # int: samples per stage for the Synthetic Galaxy Distance
sample_steps = 25  # int: DDIM steps when sampling
n_compare = 64  # int: galaxies drawn from the shipped desi-tiny for the comparison
workdir = "tiny-ddpm"  # str: folder (in the working directory) for checkpoints and train_log.csv; emptied first
seed = 0  # int: seed of training and sampling
threads = 1  # int: CPU threads of torch (networks this small run fastest on one)"""),
code("""import shutil
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import Image, display

import galwidgets as gw

# one thread: for networks this small a second thread costs more than it gains, and on shared
# cores (Binder, JupyterHub) waiting for each other can make two threads several times slower
torch.set_num_threads(threads)
size = 32
train = gw.data.simulate_survey(n_train, size=size, seed=1000, progress=False)
mock = gw.data.simulate_survey(n_reference, size=size, seed=2026, progress=False)  # held out
print("training set:", train)
print("reference set:", mock)
Image(gw.viz.png_bytes(gw.viz.image_grid(train.images[:8], train.bands, ncols=8,
                                         suptitle="training galaxies (32x32 px, 0.262\\"/px)")))"""),
md(r"""## The objective

The forward process blurs a galaxy $x_0$ (in model space, after the normalizer's asinh stretch)
into Gaussian noise: at step $t$ of $T = 1000$,

$$x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon, \qquad \epsilon \sim \mathcal N(0, I),$$

with $\bar\alpha_t$ falling from 1 to 0 along the cosine schedule (Nichol & Dhariwal 2021). Ho et
al. (2020, eq. 14) train a network $\epsilon_\theta$ to recover the noise, with the "simple" loss

$$L_{\rm simple} = \mathbb E_{t \sim \mathcal U\{1..T\},\,x_0,\,\epsilon}\,\big\lVert \epsilon - \epsilon_\theta(x_t, t)\big\rVert^2 .$$

That is their Algorithm 1: take a training galaxy, a random $t$ and random noise, noise the galaxy,
ask the network for the noise, take a gradient step on the squared error. Repeat.

The shipped models predict the **velocity** instead (Salimans & Ho 2022),
$v = \sqrt{\bar\alpha_t}\,\epsilon - \sqrt{1-\bar\alpha_t}\,x_0$, with loss
$\lVert v - v_\theta(x_t, t)\rVert^2$ and clean-image estimate
$\hat x_0 = \sqrt{\bar\alpha_t}\,x_t - \sqrt{1-\bar\alpha_t}\,\hat v$. Near $t = T$ an
ε-model's estimate $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}$
divides its error by a tiny $\sqrt{\bar\alpha_t}$; a v-model's does not, which is what made the
shipped model's galaxies as bright as the data (`galwidgets/pretrained/README.md`).

Here is one evaluation of the loss, by hand, for an untrained U-Net:"""),
code("""torch.manual_seed(seed)  # the initial weights: the same seed, the same run
model = gw.models.UNet(in_channels=len(train.bands), base_channels=base_channels, channel_mults=[1, 2, 2],
                       attention_levels=[], prediction=prediction)
schedule = gw.diffusion.NoiseSchedule.cosine(1000)
normalizer = gw.data.AsinhStretch.fit(train.images)  # flux -> model space, fitted on the training set

generator = torch.Generator().manual_seed(seed)
x0 = torch.from_numpy(normalizer.forward(train.images[:batch_size]))
t = torch.randint(schedule.T, (len(x0),), generator=generator)
noise = torch.randn(x0.shape, generator=generator)
x_t = schedule.q_sample(x0, t, noise)
target = schedule.v_target(x0, t, noise) if prediction == "v" else noise
with torch.no_grad():
    loss = F.mse_loss(model(x_t, t), target)
n_parameters = sum(p.numel() for p in model.parameters())
print(f"{n_parameters:,} parameters; loss of the untrained network on one batch: {loss:.3f} "
      f"(mean squared target: {target.pow(2).mean():.3f})")"""),
md("""The untrained U-Net outputs zero (its last layers start at zero, so every residual block starts
as the identity), so its loss is just the mean square of the target: about 1 for ε, about half that
for v here, because v mixes the unit-variance noise with the galaxy image, which is mostly dark sky
near 0 in model space. That is the number any training run starts from.

## Training with `gw.train`

`gw.train(model, schedule, data, steps, ...)` runs Algorithm 1 with what makes it work in practice:
AdamW with a linear learning-rate warm-up, gradient clipping, random flips and 90° rotations
(galaxies have no preferred orientation), and an **exponential moving average** (EMA) of the weights,
which is the model that draws samples (it averages out the noise of the last steps). It returns a
`Checkpoint` of the EMA model with the loss `history`.

With a `checkpoint_dir` it writes `step_*.safetensors` checkpoints (model, EMA, optimizer and
random-generator states) and `train_log.csv` every `checkpoint_every` steps and at the end; with
`resume=True` (the default) a new call continues from the newest checkpoint there. So we can train
in **stages**: train to 50 steps, look, call again with `steps=150` and it goes on from step 50.
(`sample_every=N` would also write a PNG grid of samples every N steps, handy for long runs.)

After each stage we draw samples from the EMA model with DDIM (always from the same seed, so the
same starting noise), score them with the SGD, and measure the loss per noise level on a fixed batch
of held-out galaxies with fixed noise: a noise-free view of how training is going."""),
code("""work = Path(workdir)
shutil.rmtree(work, ignore_errors=True)  # start afresh: resume=True would continue an old run here
held_x0 = torch.from_numpy(normalizer.forward(mock.images[:32]))  # 32 held-out galaxies
t_grid = torch.linspace(0, schedule.T - 1, 12).round().long()
held_noise = torch.randn((len(t_grid), *held_x0.shape), generator=torch.Generator().manual_seed(1))


@torch.no_grad()
def loss_per_timestep(net):
    \"\"\"The loss at each t of t_grid on the held-out batch (fixed noise).\"\"\"
    losses = []
    for t_value, eps in zip(t_grid, held_noise):
        tt = t_value.repeat(len(held_x0))
        xt = schedule.q_sample(held_x0, tt, eps)
        goal = schedule.v_target(held_x0, tt, eps) if prediction == "v" else eps
        losses.append(F.mse_loss(net(xt, tt), goal).item())
    return losses


phot_ref = gw.metrics.photometry(mock)
baseline = gw.metrics.split_half_baseline(phot_ref, seed=seed)["total"]
per_t = {0: loss_per_timestep(model.eval())}
snapshots, scores, train_seconds = {}, [], 0.0
for stage in stages:
    t0 = time.perf_counter()
    ckpt = gw.train(model, schedule, train, steps=stage, batch_size=batch_size, lr=lr, warmup_steps=50,
                    ema_decay=0.99, normalizer=normalizer, checkpoint_dir=work, checkpoint_every=100,
                    seed=seed, progress=False)
    train_seconds += time.perf_counter() - t0
    samples = ckpt.sample(n_eval, sampler="ddim", steps=sample_steps, seed=seed, progress=False)
    snapshots[stage] = samples.images[:n_show]
    per_t[stage] = loss_per_timestep(ckpt.model)
    sgd = gw.metrics.synthetic_galaxy_distance(samples, phot_ref)["total"]
    recent = ckpt.history.loss.iloc[-min(50, len(ckpt.history)):].mean()
    scores.append({"step": stage, "training seconds": round(train_seconds, 1), "loss (last 50 steps)": recent,
                   "SGD": sgd, "SGD / baseline": sgd / baseline})
    print(f"step {stage:5d}: {train_seconds:6.1f} s of training, loss {recent:.4f}, SGD {sgd:.3f} "
          f"(split-half baseline {baseline:.3f})")
print("files in", work, ":", sorted(p.name for p in work.iterdir()))"""),
md("""## The loss curve

Left: the loss of every training step (faint) and its running mean. It falls fast while the
network learns the overall light profile, then slowly; it never reaches zero, because the noise
cannot be predicted exactly (many clean galaxies are compatible with one noisy image), and each
step's value jumps because every batch has different timesteps. Right: the loss at fixed noise
levels on the fixed held-out batch, after each stage (the untrained network is "after 0 steps").
For v-prediction: at $t = 0$ the added noise is far weaker than the sky noise already in the image, so
$v \\approx \\epsilon$ cannot be predicted and the loss stays at 1; that costs nothing, since
an image at $t \\approx 0$ is already clean. Training pays off at intermediate and large $t$,
where the network learns what a galaxy looks like under the noise. At $t = T$,
$v = -x_0$ must be guessed from pure noise: the best answer is an average galaxy, and the loss
turns up again."""),
code("""history = ckpt.history  # the same table as train_log.csv in the checkpoint folder
window = max(1, min(25, len(history) // 5))
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
axes[0].plot(history.step, history.loss, lw=0.5, alpha=0.35, label="per step")
axes[0].plot(history.step, history.loss.rolling(window, min_periods=1).mean(), label=f"running mean of {window}")
for stage in stages:
    axes[0].axvline(stage, color="gray", lw=0.5, ls=":")
axes[0].set(xlabel="training step", ylabel="loss", yscale="log", title="training loss")
axes[0].legend(fontsize=8)
colours = plt.cm.viridis(np.linspace(0, 0.9, len(per_t)))
for colour, (stage, losses) in zip(colours, per_t.items()):
    axes[1].plot(t_grid, losses, "o-", ms=3, color=colour, label=f"after {stage} steps")
axes[1].set(xlabel="timestep t (noise level)", ylabel="loss on held-out batch", yscale="log",
            title="loss per noise level")
axes[1].legend(fontsize=7)
fig.tight_layout()
plt.show()"""),
md("""## The samples, stage by stage

Every row starts from the same noise (same seed), so you see the *same* galaxies take shape: pure
noise at first, then a noisy blob in the centre, then a smooth galaxy of about the right brightness,
size and colour, with some colour noise left in its pixels. The last row shows training galaxies
for comparison: discs, bulges and arms need a bigger model and many more steps (next section)."""),
code("""rows = [snapshots[stage] for stage in stages] + [train.images[:n_show]]
labels = [f"step {stage}" for stage in stages] + ["training set"]
titles = [label if j == 0 else "" for label in labels for j in range(n_show)]
fig = gw.viz.image_grid(np.concatenate(rows), train.bands, ncols=n_show, titles=titles)
Image(gw.viz.png_bytes(fig))"""),
code("""table = pd.DataFrame(scores).set_index("step")
fig, ax = plt.subplots(figsize=(4.6, 3.2))
ax.plot(table.index, table.SGD, "o-", label="tiny model")
ax.axhline(baseline, color="k", ls=":", label="split-half baseline")
ax.set(xlabel="training step", ylabel="SGD to held-out mock", xscale="log", yscale="log")
ax.legend(fontsize=8)
plt.show()
table.round(3)"""),
md("""## Real or generated?

The final tiny model's galaxies next to held-out mock ones. Switch the Gallery to "real or fake?"
and see whether you can still tell them apart."""),
code("""gw.widgets.Gallery(mock, samples, n_show=min(16, n_eval, n_reference))"""),
md("""## Against the shipped `desi-tiny`

`desi-tiny` is the same kind of model, four times bigger and trained ten times longer on 64×64
stamps. Its SGD is measured against its own held-out 64×64 mock set, so compare the *ratios* to the
split-half baselines, not the SGDs themselves (stamp size changes both numbers).

Do not be surprised if the tiny model's ratio is as good as `desi-tiny`'s. The SGD only sees
aperture magnitudes, colours and half-light radii, and on a 32×32 stamp a galaxy is a blob a few
pixels across whose photometry a small network learns in a few hundred steps (`desi-tiny`'s
galaxies drawn with only 25 DDIM steps are also a little too faint in g and too small; its model
card reports a ratio of 0.88 with the default sampler). What the 87 minutes buy is what the SGD does not measure:
look at the images, and see tutorial 4 for the morphology measurements that do."""),
code("""from galwidgets.pretrained.recipes import training_phases

shipped = gw.pretrained.load("desi-tiny")
recipe = shipped.config["pretrained"]["recipe"]
shipped_steps = training_phases(recipe)[-1]["steps"]  # the end of the run's last phase
mock64 = gw.data.simulate_survey(n_reference, size=shipped.size, seed=2026, progress=False)
phot64 = gw.metrics.photometry(mock64)
shipped_samples = shipped.sample(n_compare, sampler="ddim", steps=sample_steps, seed=seed, progress=False)
shipped_sgd = gw.metrics.synthetic_galaxy_distance(shipped_samples, phot64)["total"]
shipped_baseline = gw.metrics.split_half_baseline(phot64, seed=seed)["total"]
comparison = pd.DataFrame({
    "this tiny model": [f"{size}x{size}", f"{n_parameters:,}", stages[-1], stages[-1] * batch_size,
                        f"{train_seconds / 60:.1f} min", f"{table.SGD.iloc[-1] / baseline:.2f}"],
    "desi-tiny": [f"{shipped.size}x{shipped.size}", f"{sum(p.numel() for p in shipped.model.parameters()):,}",
                  shipped_steps, shipped_steps * recipe["train"]["batch_size"],
                  "87 min", f"{shipped_sgd / shipped_baseline:.2f}"],
}, index=["stamp", "parameters", "training steps", "galaxies seen", "training time (CPU)",
          "SGD / split-half baseline"])
n = min(8, n_compare)
display(Image(gw.viz.png_bytes(gw.viz.image_grid(np.concatenate([mock64.images[:n], shipped_samples.images[:n]]),
                                                 shipped.bands, ncols=n,
                                                 suptitle="top: 64x64 mock, bottom: desi-tiny"))))
comparison"""),
exercise("""**Learning rate.** Train again with `lr=2e-4` (closer to `desi-tiny`'s 4e-4 with its 200
warm-up steps, for 6000 steps). What happens to the loss and the SGD after 600 steps? Why is the
best learning rate for a two-minute run higher than for a long one?""", """Measured in a separate run of this set-up (600 steps, 128 samples with 25 DDIM steps against 256
held-out mock galaxies, split-half baseline 0.356): with `lr=1e-3` the loss of the last 50 steps is
0.062 and the SGD 0.47 (0.54 at 300 steps); with `lr=2e-4` the loss is 0.083 and the SGD 2.2 (5.7 at
300 steps), with galaxies about one magnitude too bright in r (median aperture magnitude of 16
samples 17.4 against 18.4) and centres twice as bright as the data's: the model is still on its way. A small
learning rate takes small steps, and 600 steps are not enough to get there. A long run can afford
them, and needs them: late in training the updates must be small enough to settle on fine detail
instead of bouncing around (large rates make the loss and the EMA noisy, or diverge), which is also
why big runs warm up and often decay the rate."""),
exercise("""**Prediction target.** Train with `prediction="eps"` (Ho et al.'s original ε-prediction)
and compare the samples and the SGD after 600 steps. Which SGD terms differ most? Look at the
brightness of the galaxy centres.""", """Measured in the same separate run (600 steps, 128 samples against 256 mock galaxies, baseline
0.356): ε-prediction reaches a *lower* loss (0.054 against 0.062), yet its SGD is 5.4 against 0.47.
The losses measure different targets, so they cannot be compared; the samples can. Every term is off
by much more than the baseline, the colours most (g−r 0.67, r−z 1.25 against 0.02 and 0.05): the
sky around the galaxies is left full of noise (in 16 samples the standard deviation of the corner
pixels was 1.2 nanomaggies against 0.05 in the mock images) and 11 of those 16 were flagged by the
photometry (a non-positive aperture flux in some band, or no half-light radius). That is the failure described in the objective section: near $t = T$ the ε-model's
small errors are divided by $\\sqrt{\\bar\\alpha_t}$, and with so little training they are not
small. v-prediction does not have the problem, which is why the shipped models use it."""),
exercise("""**Width.** Double the width, `base_channels=32`. How many parameters does the model have
now, and how much longer does a step take? Is it better after the same number of *steps*? After the
same training *time*?""", """`base_channels=32` has 1,063,651 parameters (against 267,891) and a step took 2.8 times as
long (0.59 s against 0.21 s of one CPU core). Measured in the same separate run: after 150 steps the
wide model's SGD is 0.57 against 1.7 for the narrow one, so it learns more per step; after 600
steps both reach about the same (0.48 and 0.47, baseline 0.356, loss 0.057 against 0.062). In equal
*time* the narrow model wins here: the wide one's 150 steps cost as much as the narrow one's 420,
by which point the narrow model is already at about 0.5. A bigger model pays off only when
training is long enough for it to learn what the small one cannot (arms, bulges, 64×64 detail)."""),
md("""## Going further on a GPU

On a GPU, train the real thing: rebuild the shipped model with its recipe,
`gw.run_notebook("train", parameters={"recipe": "desi-tiny"}, output_dir="desi-tiny-gpu")` (or
`python -m galwidgets.pretrained.recipes desi-tiny --workdir desi-tiny-gpu`), a matter of minutes
instead of 75 CPU minutes. Then scale it up, e.g. the `train` notebook with `n_train=50000`,
`size=64`, `base_channels=64`, `channel_mults=[1, 2, 4, 4]`, `attention_levels=[2]`,
`batch_size=128`, `lr=2e-4`, `steps=50000` and `prediction="v"` (`gw.train` uses bf16 autocast where
it is faster, and runs data parallel across GPUs under `torchrun`). Keep `checkpoint_dir` on
persistent storage: an interrupted run resumes where it stopped."""),
]

if __name__ == "__main__":
    write("02_train_a_tiny_ddpm", CELLS, {"n_train": 32, "n_reference": 16, "stages": [1, 2], "n_show": 4,
                                          "n_eval": 8, "sample_steps": 2, "n_compare": 2})
