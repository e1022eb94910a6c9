"""Tutorial 1: the forward process q(x_t | x_0) and the linear and cosine noise schedules."""

from _tut import code, exercise, md, parameters, write

CELLS = [
md("""# 1 · The forward process and noise schedules

A diffusion model learns to undo a fixed, simple process that slowly drowns an image in Gaussian
noise. Before looking at the model, we look at that *forward process* on mock galaxies.

## Learning goals
- write down the forward process $q(x_t \\mid x_0)$ and draw $x_t$ for any $t$ in one step;
- read a noise schedule through $\\bar\\alpha_t$ (the fraction of the signal variance left) and the
  signal-to-noise ratio $\\mathrm{SNR}(t) = \\bar\\alpha_t / (1-\\bar\\alpha_t)$;
- compare the linear schedule of Ho et al. (2020) with the cosine schedule of Nichol & Dhariwal
  (2021), and say what $T$ means;
- measure when a galaxy disappears into the noise, and explore it with the `DiffusionStepper`
  widget.

Runs in well under a minute on 2 CPU cores: the neural network itself only runs if you start the
widget's optional reverse-process player."""),
parameters("""n_galaxies = 8  # int: mock galaxies to diffuse
T = 1000  # int: number of diffusion steps of the two schedules compared
n_draws = 500  # int: noise draws for the empirical signal-to-noise check
seed = 1  # int: seed of the mock galaxies"""),
md("""## The forward process

Ho et al. (2020) add a little Gaussian noise at each of $T$ steps, with variances
$\\beta_1, \\dots, \\beta_T$ (the *noise schedule*):

$$q(x_t \\mid x_{t-1}) = \\mathcal N\\big(\\sqrt{1-\\beta_t}\\, x_{t-1},\\ \\beta_t I\\big)
\\qquad \\text{(Ho et al. 2020, eq. 2)}.$$

Because Gaussians compose, we never have to run the chain: with $\\alpha_t = 1-\\beta_t$ and
$\\bar\\alpha_t = \\prod_{s \\le t} \\alpha_s$,

$$q(x_t \\mid x_0) = \\mathcal N\\big(\\sqrt{\\bar\\alpha_t}\\, x_0,\\ (1-\\bar\\alpha_t) I\\big),
\\qquad x_t = \\sqrt{\\bar\\alpha_t}\\, x_0 + \\sqrt{1-\\bar\\alpha_t}\\, \\epsilon,
\\quad \\epsilon \\sim \\mathcal N(0, I)
\\qquad \\text{(eq. 4)}.$$

So $\\bar\\alpha_t$ is the fraction of the signal *variance* still there at step $t$, and
$1-\\bar\\alpha_t$ the variance of the added noise. Their ratio is the signal-to-noise ratio
$\\mathrm{SNR}(t) = \\bar\\alpha_t/(1-\\bar\\alpha_t)$ (Kingma et al. 2021): everything about a schedule
is in how $\\log \\mathrm{SNR}$ falls from large positive (clean image) to large negative (pure
noise).

The two classic schedules:

* **linear** (Ho et al. 2020, §4): $\\beta_t$ rises linearly from $10^{-4}$ to $0.02$ over
  $T = 1000$ steps. (`NoiseSchedule.linear(T)` rescales both ends by $1000/T$, so a shorter chain
  adds about the same total noise.)
* **cosine** (Nichol & Dhariwal 2021, eq. 17): $\\bar\\alpha_t = f(t)/f(0)$ with
  $f(t) = \\cos^2\\!\\big(\\tfrac{t/T + s}{1+s}\\cdot\\tfrac{\\pi}{2}\\big)$, $s = 0.008$, and $\\beta_t$
  clipped at 0.999. It is defined through $t/T$, so it has the same shape for any $T$.

**What $T$ means.** $T$ is the number of discrete noise levels the model is trained on, and the
number of network calls of the plain DDPM sampler. It sets how finely the path from data to noise is
cut, not how much noise there is in the end: both schedules end in (almost) pure noise for any $T$.
In this library timesteps run $t = 0 \\dots T-1$. The shipped model `desi-tiny` uses the cosine
schedule with $T = 1000$."""),
code("""import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Image, display

import galwidgets as gw
from galwidgets.diffusion import NoiseSchedule

schedules = {"linear": NoiseSchedule.linear(T), "cosine": NoiseSchedule.cosine(T)}
pd.DataFrame({name: {"T": s.T, "beta first": float(s.betas[0]), "beta last": float(s.betas[-1]),
                     "alpha_bar last": float(s.alphas_cumprod[-1])}
              for name, s in schedules.items()}).T"""),
md("""## ᾱ_t and log SNR of both schedules

Look at where each curve spends its steps. The dotted line marks $\\bar\\alpha_t = 0.5$ (half of the
signal variance gone, $\\log\\mathrm{SNR} = 0$)."""),
code("""fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
for name, s in schedules.items():
    t = np.arange(s.T)
    axes[0].plot(t, s.betas.numpy(), label=name)
    axes[1].plot(t, s.alphas_cumprod.numpy(), label=name)
    axes[2].plot(t, np.log(s.snr.numpy()), label=name)
axes[0].set(yscale="log", xlabel="t", ylabel=r"$\\beta_t$", title="noise added per step")
axes[1].axhline(0.5, color="grey", ls=":")
axes[1].set(xlabel="t", ylabel=r"$\\bar\\alpha_t$", title="signal variance left")
axes[2].axhline(0.0, color="grey", ls=":")
axes[2].set(xlabel="t", ylabel=r"$\\log\\,\\mathrm{SNR}(t)$",
            title=r"$\\log\\,\\bar\\alpha_t/(1-\\bar\\alpha_t)$")
for ax in axes:
    ax.legend()
    ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()"""),
md("""The linear schedule destroys the signal early: its $\\log\\mathrm{SNR}$ plunges in the first
third and then crawls along at very low SNR, where $x_t$ is noise for any practical purpose. The
cosine schedule lets $\\log\\mathrm{SNR}$ fall almost at a constant rate through the middle, so
information is destroyed more evenly and fewer of the $T$ steps are wasted on images that are
either practically clean or practically pure noise (Nichol & Dhariwal 2021, §3.2). Let us count:"""),
code("""def regimes(s):
    snr = s.snr.numpy()
    return {"t where alpha_bar < 0.5": int(np.argmax(s.alphas_cumprod.numpy() < 0.5)),
            "nearly clean (SNR > 100)": (snr > 100).mean(),
            "in between": ((snr >= 0.01) & (snr <= 100)).mean(),
            "nearly pure noise (SNR < 0.01)": (snr < 0.01).mean()}

pd.DataFrame({name: regimes(s) for name, s in schedules.items()}).round(3)  # fractions of the T steps"""),
md("""## Noising galaxies in model space

The model does not see fluxes. The shipped model's normalizer (an arcsinh stretch, Lupton et al.
1999) maps flux in nanomaggies to *model space*, where the sky sits at 0 and the brightest pixels near
1, and only there is the forward process applied. To look at $x_t$ we map it back to flux with the
inverse stretch (clipping $x_t$ to the model range $[-1, 1]$ first, as the widget does, so pure noise
shows as saturated speckle).

We use one fixed draw of $\\epsilon$ per galaxy, so the two schedules below drown the *same* noise
pattern over the same galaxy; only $\\bar\\alpha_t$ differs."""),
code("""ckpt = gw.pretrained.load("desi-tiny")
mock = gw.data.simulate_survey(n_galaxies, size=ckpt.size, seed=seed, progress=False)
x0 = torch.from_numpy(ckpt.normalizer.forward(mock.images))        # model space, (N, C, H, W)
eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
print(f"model space: min {x0.min():.2f}, max {x0.max():.2f}; T of desi-tiny: {ckpt.schedule.T} "
      f"({ckpt.schedule.kind})")

steps_shown = [min(T - 1, round(f * T)) for f in (0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8)]
rows = min(3, n_galaxies)


def to_flux(x):
    return ckpt.normalizer.inverse(np.clip(x.numpy(), -1, 1))


for name, s in schedules.items():
    panels, titles = [], []
    for g in range(rows):
        for t in steps_shown:
            x_t = s.q_sample(x0[g:g + 1], torch.tensor([t]), eps[g:g + 1])   # eq. 4
            panels.append(to_flux(x_t))
            a = float(s.alphas_cumprod[t])
            titles.append(f"t={t}, ᾱ={a:.2f}" if g == 0 else "")
    with np.errstate(invalid="ignore", divide="ignore"):
        fig = gw.viz.image_grid(np.concatenate(panels), mock.bands, ncols=len(steps_shown), titles=titles,
                                suptitle=f"{name} schedule: x_t in flux space")
    display(Image(gw.viz.png_bytes(fig)))"""),
md("""## When does a galaxy disappear? A measurement

Take the galaxy's central brightness in model space, $c$ (the mean of the central 2×2 pixels of the
r band). In $x_t$ that signal is scaled to $\\sqrt{\\bar\\alpha_t}\\,c$ while the added noise has standard
deviation $\\sqrt{1-\\bar\\alpha_t}$, so the central signal-to-noise ratio of the forward process is

$$\\mathrm{S/N}_t = \\frac{\\sqrt{\\bar\\alpha_t}\\, c}{\\sqrt{1-\\bar\\alpha_t}}
= c\\,\\sqrt{\\mathrm{SNR}(t)}.$$

(This counts only the diffusion noise; the survey's own sky noise, about 0.1 in model space, matters
only at small $t$.) Below $\\mathrm{S/N}_t = 1$ you could no longer tell from the central pixel alone
that a galaxy is there."""),
code("""r = mock.bands.index("r")
c = mock.size // 2
centre = x0[:, r, c - 1:c + 1, c - 1:c + 1].mean(dim=(1, 2)).numpy()

fig, ax = plt.subplots(figsize=(5.5, 3.6))
table = pd.DataFrame({"mag_r": mock.catalog["mag_r"].round(2), "centre (model space)": centre.round(3)})
for (name, s), colour in zip(schedules.items(), ("C0", "C1")):
    sn = centre[:, None] * np.sqrt(s.snr.numpy())[None]          # (galaxy, t)
    table[f"t(S/N<1) {name}"] = np.argmax(sn < 1, axis=1)
    for g in range(n_galaxies):
        ax.plot(np.arange(s.T), sn[g], color=colour, alpha=0.6, label=name if g == 0 else None)
ax.axhline(1, color="grey", ls=":")
ax.set(yscale="log", ylim=(1e-2, 1e3), xlabel="t", ylabel="central S/N of x_t", title="each line: one galaxy")
ax.legend()
ax.grid(alpha=0.3)
fig.tight_layout()
plt.show()
table"""),
code("""summary = table.filter(like="t(S/N<1)").median()
for name in schedules:
    t1 = summary[f"t(S/N<1) {name}"]
    print(f"{name}: the median galaxy's centre drops below S/N = 1 at t = {t1:.0f} (t/T = {t1 / T:.2f})")"""),
md("""The analytic S/N rests on eq. 4. Check it empirically: diffuse the first galaxy to the $t$ where
its central S/N should be 1 with the cosine schedule, many times with fresh noise, and measure the mean
and scatter of its central pixels."""),
code("""s = schedules["cosine"]
t1 = int(table["t(S/N<1) cosine"].iloc[0])
draws = torch.randn((n_draws, *x0.shape[1:]), generator=torch.Generator().manual_seed(1))
x_t = s.q_sample(x0[:1].expand(n_draws, -1, -1, -1), torch.full((n_draws,), t1), draws)
values = x_t[:, r, c - 1:c + 1, c - 1:c + 1].mean(dim=(1, 2))
noise = values - np.sqrt(float(s.alphas_cumprod[t1])) * centre[0]
print(f"t = {t1}: expected signal {np.sqrt(float(s.alphas_cumprod[t1])) * centre[0]:.3f}, "
      f"measured mean {values.mean():.3f}")
print(f"noise of one pixel: expected {np.sqrt(1 - float(s.alphas_cumprod[t1])):.3f}, "
      f"measured {x_t[:, r, c, c].std():.3f} (the 2x2 mean has half that: {noise.std():.3f})")"""),
md("""The 2×2 mean averages four independent noise values, so its noise is half that of one pixel;
the S/N above is for one pixel of brightness $c$.

## Explore it: the DiffusionStepper

Drag the `t` slider (or press play) to diffuse one galaxy with one fixed $\\epsilon$; the two plots
show $\\bar\\alpha_t$ and the SNR with a marker at $t$. The first widget uses the shipped model, so
its schedule is the model's own (cosine, $T = 1000$) and its lower part can also *run the model
backwards* (tutorial 3 is about that). The second is given only a linear `NoiseSchedule`: the forward
part works, the reverse part explains that it needs a model. We give it the model's normalizer so
both show the same model space. Switch `display` to `band` to see one band in model space, where the
noise is added."""),
code("""cosine_stepper = gw.widgets.DiffusionStepper(ckpt, galaxies=mock, t=250)
cosine_stepper"""),
code("""linear_stepper = gw.widgets.DiffusionStepper(schedules["linear"], galaxies=mock, t=T // 4)
linear_stepper.state.normalizer = ckpt.normalizer   # the same model space as the shipped model
linear_stepper"""),
md("""The widgets are driven by a state object you can also set from code, e.g.
`linear_stepper.state.t = 400` or `linear_stepper.state.galaxy = 2`; `state.x_t()` returns the
image shown and `state.schedule_table()` the curves."""),
exercise("""At which $t$ is half of the signal variance gone ($\\bar\\alpha_t < 0.5$ for the first time)
for each schedule with $T = 1000$? What is $\\log\\mathrm{SNR}$ there, and why?""",
"""```python
for name, s in schedules.items():
    t_half = int(np.argmax(s.alphas_cumprod.numpy() < 0.5))
    print(name, t_half, np.log(float(s.snr[t_half])))
```
Linear: $t = 259$ ($t/T \\approx 0.26$); cosine: $t = 496$ ($t/T \\approx 0.50$), as the cosine
was designed to be symmetric about the middle. At $\\bar\\alpha = 0.5$ signal and noise variance
are equal, so $\\mathrm{SNR} = 1$ and $\\log\\mathrm{SNR} = 0$ (just below 0 at the first step
past it)."""),
exercise("""Change $T$: rerun the notebook with `T = 100` (papermill:
`-p T 100`, or edit the parameters cell). Do the curves change shape when plotted against $t/T$?
Where is half the signal gone now, and when does the median galaxy vanish?""",
"""The shapes against $t/T$ barely change: the cosine schedule is defined through $t/T$, and the
library rescales the linear $\\beta$ range by $1000/T$. With $T = 100$ half of the signal variance is
gone at $t = 26$ (linear, $t/T = 0.26$) and $t = 49$ (cosine, $t/T = 0.49$), the same fractions as
with $T = 1000$ (259 and 496). The median centre of the 8 default galaxies drops below S/N = 1 at
$t = 18$ (linear) and $t = 34$ (cosine) with $T = 100$, against $t = 178$ and $352$ with $T = 1000$:
the same $t/T$ to within a step. What $T$
changes is how finely the model has to learn the path, and how many steps the DDPM sampler takes
(tutorial 3)."""),
exercise("""In the table of S/N crossings, is the galaxy that vanishes last always the one with the
brightest total magnitude `mag_r`? Why not?""",
"""Not always. With the default 8 galaxies (seed 1) the brightest one ($r = 16.4$) does survive
longest (cosine $t = 387$), but galaxy 5 ($r = 17.96$, the faintest) outlives galaxy 0
($r = 17.83$) by 26 steps (343 against 317). The crossing depends on the *central* surface
brightness $c$, not on the total flux: a compact galaxy or one with a bright bulge (high Sérsic
index) puts more of its light into the central pixels than an extended disk of the same magnitude.
Because $\\mathrm{S/N}_t = c\\sqrt{\\mathrm{SNR}(t)}$, the crossing is where $\\mathrm{SNR}(t) = 1/c^2$:
galaxies all vanish in the same, short range of $t$ because $c$ varies little in the stretched
model space (0.55–0.71 here)."""),
md("""## Going further on a GPU

Which schedule is better is an empirical question about the *trained model*. On a GPU, train the
same small U-Net twice on the mock survey, once per schedule, and compare their samples with the
Synthetic Galaxy Distance (tutorial 0):

```python
survey = gw.data.simulate_survey(20_000, seed=1000)
for kind in ("linear", "cosine"):
    schedule = NoiseSchedule.linear(1000) if kind == "linear" else NoiseSchedule.cosine(1000)
    model = gw.models.UNet(in_channels=3, base_channels=64, channel_mults=(1, 2, 2, 4), prediction="v")
    ckpt = gw.train(model, schedule, survey, steps=50_000, batch_size=128, checkpoint_dir=f"runs/{kind}")
```

Nichol & Dhariwal (2021) found the cosine schedule clearly better at 64×64 and below, where the
linear one turns the image into noise too early."""),
]

if __name__ == "__main__":
    write("01_forward_process", CELLS, {"n_galaxies": 2, "n_draws": 20})
