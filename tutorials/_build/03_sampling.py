"""Tutorial 3: the reverse process, DDPM against DDIM, the probability-flow ODE and its fast solvers."""

from _tut import code, exercise, md, parameters, write

CELLS = [
md("""# 3 · Sampling: DDPM, DDIM and the ODE solvers

A trained diffusion model predicts, from a noisy image $x_t$, what the clean image was. A *sampler*
turns that prediction into a walk from pure noise $x_T$ back to a galaxy $x_0$. This tutorial
compares the two classic samplers with the shipped model `desi-tiny`, then looks at sampling as
solving an ordinary differential equation, which is why DPM-Solver++, the default sampler of
galwidgets, needs a fraction of DDIM's network evaluations.

## Learning goals
- write one step of the DDPM ancestral sampler (Ho et al. 2020) and of DDIM (Song et al. 2021),
  and say what DDIM's $\\eta$ does;
- know why DDPM takes all $T$ steps and DDIM can take few, and that DDPM on fewer steps is DDIM
  with $\\eta = 1$;
- measure how quality and time depend on the number of steps, and judge a small-sample metric
  against its noise (split-half baseline, bootstrap errors);
- write the probability-flow ODE in noise levels $\\sigma$, see DDIM as its first-order solver and
  explain why second- and third-order solvers (Heun, DPM-Solver++) need fewer network evaluations;
- read the measured quality-against-evaluations curve of every sampler, and pick one;
- watch the estimate $\\hat x_0$ sharpen along the reverse process, with the sampler `callback` and
  the `DiffusionStepper` widget, for any sampler.

Runs in about 3–4 minutes on 2 CPU cores (almost all of it sampling 32 galaxies six times)."""),
parameters("""n_galaxies = 32  # int: galaxies drawn for every sampler and step count
n_reference = 64  # int: mock galaxies to compare with (its two halves give the baseline)
ddim_steps = [5, 10, 25, 50]  # list: DDIM step counts to try
ddpm_steps = [5, 25]  # list: step counts of ancestral (DDPM) sampling on a respaced schedule
n_ode = 2  # int: galaxies whose ODE trajectories the solvers integrate
ode_nfe = [5, 10, 20, 40]  # list: network evaluations per solver in the convergence experiment
ode_reference_steps = 150  # int: steps of the 3rd-order solver that gives the "exact" ODE solution
widget_steps = 12  # int: steps of the widget's first reverse run (with the default sampler)
seed = 0  # int: seed of the samples (the same seed gives the same starting noise x_T)"""),
md("""## The reverse process: DDPM

Tutorial 1 built the forward process $q(x_t \\mid x_0) = \\mathcal N(\\sqrt{\\bar\\alpha_t}\\,x_0,
(1-\\bar\\alpha_t) I)$. Ho et al. (2020) learn the reverse steps as Gaussians,
$p_\\theta(x_{t-1} \\mid x_t) = \\mathcal N(\\mu_\\theta(x_t, t), \\sigma_t^2 I)$, with the mean written
through the network's noise prediction $\\epsilon_\\theta$:

$$x_{t-1} = \\frac{1}{\\sqrt{\\alpha_t}}\\Big(x_t - \\frac{\\beta_t}{\\sqrt{1-\\bar\\alpha_t}}\\,
\\epsilon_\\theta(x_t, t)\\Big) + \\sigma_t z, \\qquad z \\sim \\mathcal N(0, I)
\\qquad \\text{(Ho et al. 2020, eq. 11 and Algorithm 2)}.$$

The same mean is the mean of the forward posterior $q(x_{t-1} \\mid x_t, \\hat x_0)$ (eqs. 6–7) at the
network's estimate of the clean image

$$\\hat x_0 = \\frac{x_t - \\sqrt{1-\\bar\\alpha_t}\\,\\epsilon_\\theta}{\\sqrt{\\bar\\alpha_t}},$$

which is how `gw.diffusion.ddpm` computes it (clipping $\\hat x_0$ to the model range $[-1, 1]$), with
$\\sigma_t^2 = \\tilde\\beta_t = \\beta_t (1-\\bar\\alpha_{t-1})/(1-\\bar\\alpha_t)$. Each step is derived
for one small $\\beta_t$, so DDPM walks through **all $T$ timesteps**: 1000 network calls per galaxy for
`desi-tiny`.

(`desi-tiny` predicts the velocity
$v = \\sqrt{\\bar\\alpha_t}\\,\\epsilon - \\sqrt{1-\\bar\\alpha_t}\\,x_0$ rather than $\\epsilon$
(Salimans & Ho 2022); $\\hat x_0 = \\sqrt{\\bar\\alpha_t}\\,x_t - \\sqrt{1-\\bar\\alpha_t}\\,v$ and
$\\epsilon$ follow from it, and `gw.diffusion.samplers.denoise` returns $(\\epsilon, \\hat x_0)$ for either
kind of model.)"""),
code("""import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Image, display

import galwidgets as gw
from galwidgets.diffusion.samplers import ddim_timesteps, denoise

ckpt = gw.pretrained.load("desi-tiny")
reference = gw.data.simulate_survey(n_reference, size=ckpt.size, seed=1, progress=False)
print(f"desi-tiny: {ckpt.size}x{ckpt.size} px in {', '.join(ckpt.bands)}, {ckpt.schedule.kind} schedule "
      f"with T = {ckpt.schedule.T}, predicts {ckpt.model.config['prediction']}")"""),
md("""## DDIM: the same model, fewer steps

Song, Meng & Ermon (2021) noticed that the training loss only involves $q(x_t \\mid x_0)$, never the
chain of single steps, so other reverse processes fit the same model. Their step from $t$ to an
earlier timestep $t'$ is

$$x_{t'} = \\sqrt{\\bar\\alpha_{t'}}\\,\\hat x_0
+ \\sqrt{1-\\bar\\alpha_{t'}-\\sigma_t^2}\\;\\epsilon_\\theta(x_t, t)
+ \\sigma_t z \\qquad \\text{(Song et al. 2021, eq. 12)},$$

$$\\sigma_t = \\eta\\,\\sqrt{\\frac{1-\\bar\\alpha_{t'}}{1-\\bar\\alpha_t}}
\\sqrt{1-\\frac{\\bar\\alpha_t}{\\bar\\alpha_{t'}}}
\\qquad \\text{(eq. 16)}.$$

In words: predict the clean image, then re-noise it to the level of $t'$, reusing the predicted noise
direction. It only needs $\\bar\\alpha$ at the timesteps it visits, so $t'$ can be far below $t$: a
*subsequence* of $S \\ll T$ evenly spaced timesteps is enough.

* $\\eta = 0$: no fresh noise, the sampler is **deterministic**; $x_T$ fixes the galaxy.
* $\\eta = 1$: fresh noise of exactly the DDPM size; on all $T$ steps this *is* DDPM, and on $S$
  steps it is DDPM run on the respaced schedule of those $S$ timesteps (Nichol & Dhariwal 2021, §4).
  `gw.diffusion.ddpm` always walks all $T$ steps, so below "**DDPM with $S$ steps**" means DDIM with
  $\\eta = 1$ on $S$ steps (an exercise checks the equivalence).

Eq. 12 is short enough to write out. Check the hand-written version against the library (in full
float32: `autocast=False`; by default the samplers use bfloat16 where the CPU is fast at it):"""),
code("""def my_ddim(model, schedule, x, steps, eta=0.0, generator=None):
    \"\"\"DDIM (Song et al. 2021, eq. 12) written out; x is the starting noise x_T.\"\"\"
    a_bar = schedule.alphas_cumprod
    timesteps = ddim_timesteps(schedule.T, steps).tolist()        # T-1 ... 0, evenly spaced
    for i, t in enumerate(timesteps):
        eps, x0 = denoise(model, schedule, x, torch.full((len(x),), t), autocast=False)  # ε_θ and x̂_0
        a_t = a_bar[t]
        a_prev = a_bar[timesteps[i + 1]] if i + 1 < len(timesteps) else torch.tensor(1.0, dtype=a_bar.dtype)
        sigma = eta * ((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)).sqrt()             # eq. 16
        x = a_prev.sqrt() * x0 + (1 - a_prev - sigma**2).sqrt() * eps                    # eq. 12
        if sigma > 0:
            x = x + sigma * torch.randn(x.shape, generator=generator)
    return x


check_steps = min(ddim_steps)
x_T = torch.randn((1, len(ckpt.bands), ckpt.size, ckpt.size), generator=torch.Generator().manual_seed(seed))
mine = my_ddim(ckpt.model, ckpt.schedule, x_T, steps=check_steps)
library = gw.diffusion.ddim(ckpt.model, ckpt.schedule, x_T.shape, steps=check_steps, x_T=x_T,
                           autocast=False, progress=False)
print(f"largest difference, hand-written vs library: {(mine - library).abs().max():.1e} "
      f"(model-space pixels are of order 0.1 to 1)")"""),
md("""## Watching x̂_0 along the reverse process

Every sampler calls `callback` once per step with a dict `{"i", "t", "x", "x0_pred"}`: the noisy
$x_t$ fed to the network and its estimate $\\hat x_0$. We keep both for one galaxy, for DDIM and for
DDPM with the same number of steps and the same starting noise, and show them in flux space."""),
code("""watch_steps = max(ddim_steps)


def watch(eta, steps):
    frames = []

    def keep(info):
        frames.append((info["t"], info["x"][0].cpu().numpy().copy(), info["x0_pred"][0].cpu().numpy().copy()))

    ckpt.sample(1, sampler="ddim", steps=steps, eta=eta, seed=seed, progress=False, callback=keep)
    return frames


def to_flux(x):
    return ckpt.normalizer.inverse(np.clip(np.stack(x), -1, 1))


shown = sorted(set(np.linspace(0, watch_steps - 1, 7).round().astype(int)))
for name, eta in (("DDIM", 0.0), ("DDPM", 1.0)):
    recorded = watch(eta, watch_steps)
    frames = [recorded[i] for i in shown]
    panels = np.concatenate([to_flux([x for _, x, _ in frames]), to_flux([x0 for _, _, x0 in frames])])
    titles = [f"x_t, t={t}" for t, _, _ in frames] + [f"x̂_0 at t={t}" for t, _, _ in frames]
    with np.errstate(invalid="ignore", divide="ignore"):
        fig = gw.viz.image_grid(panels, ckpt.bands, ncols=len(frames), titles=titles,
                                suptitle=f"{name}, {watch_steps} steps (η = {eta:g})")
    display(Image(gw.viz.png_bytes(fig)))"""),
md("""Three things to see:

* Early on, $\\hat x_0$ is a blurry, average galaxy: from almost pure noise the best guess is the mean
  of all galaxies that could be hidden there. Size, orientation and colour are decided first, fine
  detail last.
* With DDIM ($\\eta = 0$), $x_t$ is always "$\\hat x_0$ plus predicted noise" and the last step returns
  $\\hat x_0$ itself.
* With DDPM, fresh noise enters at every step, so $x_t$ stays noisier and $\\hat x_0$ keeps changing
  later in the walk. Both start from the same $x_T$, yet end at different galaxies.

## Step count against quality and time

Now draw `n_galaxies` galaxies with each sampler and several step counts, time each run, and
compare them with the mock survey.

* The **Synthetic Galaxy Distance** (SGD, Smith et al. 2022; tutorial 0) sums Wasserstein-1
  distances between the distributions of g, r, z magnitudes, colours and half-light radius. With 32
  galaxies every term is a distance between two small samples and is noisy: we give its bootstrap
  standard error, and the **split-half baseline**, the SGD between two halves of the mock survey
  (32 against 32 galaxies by default), which is what a perfect model would score at this sample size.
* A sharper, targeted check: the **sky noise**, the scatter of the pixels in the four 8×8 corners
  of the r band, compared with the mock galaxies' own. A sampler that stops short of the last few
  timesteps cannot put back the pixel-to-pixel noise of the sky."""),
code("""def sky_noise(images, band="r", k=8):
    \"\"\"Median over galaxies of the scatter of the pixels in the four k x k corners (nanomaggies).\"\"\"
    x = images[:, list(reference.bands).index(band)]
    corners = np.concatenate([x[:, :k, :k], x[:, :k, -k:], x[:, -k:, :k], x[:, -k:, -k:]], axis=-1)
    return float(np.median(corners.reshape(len(x), -1).std(axis=1)))


runs = [("DDIM", steps, 0.0) for steps in ddim_steps] + [("DDPM", steps, 1.0) for steps in ddpm_steps]
rows, samples = [], {}
for name, steps, eta in runs:
    start = time.perf_counter()
    galaxies = ckpt.sample(n_galaxies, sampler="ddim", steps=steps, eta=eta, seed=seed, progress=False)
    seconds = time.perf_counter() - start
    samples[name, steps] = galaxies
    sgd = gw.metrics.synthetic_galaxy_distance(galaxies, reference, bootstrap=100)
    rows.append({"sampler": name, "steps": steps, "seconds": seconds, "SGD": sgd["total"],
                 "SGD error": sgd["total_err"], "sky noise": sky_noise(galaxies.images)})
    print(f"{name} {steps:3d} steps: {seconds:5.1f} s, SGD {sgd['total']:.2f} ± {sgd['total_err']:.2f}")
results = pd.DataFrame(rows)
baseline = gw.metrics.split_half_baseline(reference)["total"]
mock_sky = sky_noise(reference.images)
print(f"split-half baseline SGD {baseline:.2f}; mock sky noise {mock_sky:.4f} nanomaggies")
results.round(4)"""),
code("""fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
for (name, group), marker in zip(results.groupby("sampler", sort=False), ("o", "s")):
    axes[0].errorbar(group.steps, group.SGD, group["SGD error"], marker=marker, capsize=3, label=name)
    axes[1].plot(group.steps, group.seconds, marker=marker, label=name)
    axes[2].plot(group.steps, group["sky noise"], marker=marker, label=name)
axes[0].axhline(baseline, color="grey", ls=":", label="split-half baseline")
axes[0].set(ylabel="SGD (lower is better)", title=f"{n_galaxies} generated vs {n_reference} mock galaxies")
axes[1].set(ylabel=f"seconds for {n_galaxies} galaxies", title="time")
axes[2].axhline(mock_sky, color="grey", ls=":", label="mock galaxies")
axes[2].set(ylabel="sky noise in r (nanomaggies)", title="pixel noise of the sky")
ticks = sorted(set(ddim_steps) | set(ddpm_steps))
for ax in axes:
    if ax is not axes[1]:                      # time against steps is a straight line on linear axes
        ax.set_xscale("log")
        ax.minorticks_off()
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlabel("steps")
    ax.legend()
    ax.grid(alpha=0.3)
axes[1].set_ylim(bottom=0)
fig.tight_layout()
plt.show()

per_step = results.seconds.sum() / results.steps.sum()
print(f"{per_step:.2f} s per step for {n_galaxies} galaxies (one network call on the batch per step, "
      f"whatever the sampler): the full {ckpt.schedule.T}-step DDPM would take about "
      f"{per_step * ckpt.schedule.T / 60:.0f} min here")"""),
md("""How to read this:

* **Time** grows linearly with the number of steps, and DDIM and DDPM cost the same per step: a step
  is one network evaluation on the batch. That is why DDIM's few steps matter: the plain DDPM would
  need the full $T = 1000$.
* **SGD** falls from 5 to about 25 steps, then flattens. But look at the error bars and at the
  baseline: with 32 galaxies the statistical noise is comparable to the differences between most
  settings, and even a perfect model would not score 0. Do not rank samplers on a 32-galaxy SGD; it
  tells you about large failures only (a bad normalizer, a collapsed model, far too few steps).
* **Sky noise** is a much sharper test here. A few-step sampler ends with $\\hat x_0$ predicted from a
  heavily noised $x_t$: with 5 steps the last jump goes from $t = 250$ straight to $t = 0$, and at
  $t = 250$ the diffusion noise ($\\sqrt{1-\\bar\\alpha_t} = 0.39$ in model space) is about four times
  the scaled sky noise ($\\sqrt{\\bar\\alpha_t} \\times 0.1$; tutorial 1). The network cannot know that
  exact noise pattern, so its best estimate averages it away: too smooth skies. With more steps the
  last prediction is made from an almost clean image and the sky noise comes back towards the mock
  value."""),
md("""## The ODE view: sampling as solving a differential equation

DDIM with $\\eta = 0$ is deterministic: it maps each starting noise to one galaxy. Song et al. (2021b,
"Score-based generative modeling through SDEs") showed why: the diffusion has a **probability-flow
ODE** whose solutions carry the noise distribution into the data distribution, and deterministic
samplers are numerical solvers of it. Karras et al. (2022) write it most simply in noise levels:
divide $x_t$ by $\\sqrt{\\bar\\alpha_t}$,

$$x = \\frac{x_t}{\\sqrt{\\bar\\alpha_t}} = x_0 + \\sigma\\,\\epsilon, \\qquad
\\sigma = \\sqrt{\\frac{1-\\bar\\alpha_t}{\\bar\\alpha_t}},$$

and call the network's clean-image estimate the *denoiser* $D(x; \\sigma) = \\hat x_0$. Then

$$\\frac{dx}{d\\sigma} = \\frac{x - D(x; \\sigma)}{\\sigma}
\\qquad \\text{(Karras et al. 2022, eq. 3 with } \\sigma(t) = t\\text{)}:$$

start from $x = \\sigma_{\\max} n$ with $n \\sim \\mathcal N(0, I)$ (galwidgets uses $\\sigma_{\\max} = 80$),
integrate down to $\\sigma = 0$, and $x$ is the galaxy. Every evaluation of $D$ is one network call, so
the cost of a sampler is its number of **network function evaluations (NFE)**. Over noise levels
$\\sigma_0 > \\sigma_1 > \\dots > 0$:

* **Euler** (first order): $x_{i+1} = x_i + (\\sigma_{i+1} - \\sigma_i)\\,(x_i - D_i)/\\sigma_i
  = \\frac{\\sigma_{i+1}}{\\sigma_i} x_i + \\big(1 - \\frac{\\sigma_{i+1}}{\\sigma_i}\\big) D_i$. Multiply by
  $\\sqrt{\\bar\\alpha_{t_{i+1}}}$ and this is **exactly DDIM's eq. 12** with $\\eta = 0$: DDIM is Euler's
  method on the probability-flow ODE, on its own grid of noise levels. It is also DPM-Solver++ of
  order 1, the first-order *exponential integrator* of Lu et al. (2022).
* **Heun** (second order, Karras et al. 2022, Algorithm 1): an Euler step to a trial point, a second
  slope there, and the average of the two slopes: 2 NFE per step.
* **DPM-Solver++(2M)** (Lu et al. 2022b, Algorithm 2): work in $\\lambda = -\\log\\sigma$, where the linear
  part of the ODE is solved exactly, and correct the Euler step with the previous step's $D$:
  $x_{i+1} = \\frac{\\sigma_{i+1}}{\\sigma_i} x_i
  + (1 - e^{-h_i})\\big(D_i + \\frac{D_i - D_{i-1}}{2 r_i}\\big)$,
  $h_i = \\log(\\sigma_i / \\sigma_{i+1})$, $r_i = h_{i-1}/h_i$: second order for **one** NFE per step.
  3M adds the difference before that (third order).

Why higher order buys steps: a solver of order $k$ has a global error $\\propto h^k$ for steps of size
$h$. Doubling the steps divides a first-order solver's error by 2, a second-order one's by 4 and a
third-order one's by 8; for the same error, the higher-order solver needs far fewer steps, as long as
the trajectory is smooth on the scale of a step. Let us measure it: integrate `n_ode` starting noises
with every solver and compare with a nearly exact solution from many small third-order steps
(without clipping $\\hat x_0$, so that we see the ODE itself)."""),
code("""shape = (n_ode, len(ckpt.bands), ckpt.size, ckpt.size)
x_start = torch.randn(shape, generator=torch.Generator().manual_seed(seed + 1))
common = {"x_T": x_start, "clip_x0": False, "autocast": False, "progress": False}
exact = gw.samplers.dpm_solver(ckpt.model, ckpt.schedule, shape, steps=ode_reference_steps, order=3, **common)
solvers = {  # label: (sampler, its settings, steps that cost a given NFE)
    "Euler = DDIM step (1st order)": (gw.samplers.euler, {}, lambda nfe: nfe),
    "Heun (2nd order, 2 NFE/step)": (gw.samplers.heun, {}, lambda nfe: (nfe + 1) // 2),
    "DPM-Solver++ 2M": (gw.samplers.dpm_solver, {"order": 2}, lambda nfe: nfe),
    "DPM-Solver++ 3M": (gw.samplers.dpm_solver, {"order": 3}, lambda nfe: nfe),
}
rows = []
for label, (sampler, settings, steps_for) in solvers.items():
    for nfe in ode_nfe:
        steps = steps_for(nfe)
        x = sampler(ckpt.model, ckpt.schedule, shape, steps=steps, **settings, **common)
        rows.append({"solver": label, "NFE": 2 * steps - 1 if sampler is gw.samplers.heun else steps,
                     "RMS error": float((x - exact).pow(2).mean().sqrt())})
ode = pd.DataFrame(rows)

fig, ax = plt.subplots(figsize=(6, 4))
for label, group in ode.groupby("solver", sort=False):
    ax.loglog(group.NFE, group["RMS error"], marker="o", label=label)
ax.set(xlabel="network evaluations (NFE)", ylabel="RMS error against the exact ODE solution",
       title="The probability-flow ODE, solved with few steps")
ax.legend(fontsize=8)
ax.grid(alpha=0.3, which="both")
plt.show()
ode.pivot(index="solver", columns="NFE", values="RMS error").round(4)"""),
md("""On a log-log plot an error $\\propto \\mathrm{NFE}^{-k}$ is a straight line of slope $-k$. Measured with
the default parameters (RMS error in model space, where pixels are of order 0.1 to 1):

| NFE | 5 | 10 | 20 | 40 |
|---|---|---|---|---|
| Euler (= DDIM's step) | 0.051 | 0.028 | 0.013 | 0.0074 |
| Heun (at 5, 9, 19, 39 NFE) | 1.4 | 0.13 | 0.019 | 0.0047 |
| DPM-Solver++ 2M | 0.022 | 0.0057 | 0.0022 | 0.00068 |
| DPM-Solver++ 3M | 0.024 | 0.013 | 0.0022 | 0.00064 |

Euler halves its error when the NFE double (first order); DPM-Solver++(2M) divides it by about 3–4
(second order) and is 5–10 times closer to the exact solution at the same cost. The third order
only pays off once the steps are small (20 NFE and up): with few steps, the first, largest steps,
where $D$ turns from "the mean galaxy" into "this galaxy", dominate the error of every solver. Heun
is second order too, but pays two evaluations per step: with 5 NFE it takes 3 steps, from
$\\sigma = 80$ to $0.72$ to $0.0064$ (a factor of 110 each), far beyond where its trial slope means
anything; from 20 NFE on it converges as fast as the others.

An ODE error is not yet a quality measure: what matters is whether the *population* of galaxies
matches the survey. `benchmarks/bench_samplers.py` drew 256 galaxies from `desi-tiny` with every
sampler at 5 to 50 NFE and measured the SGD against 512 held-out mock galaxies (the numbers are in
`BENCHMARKS.md`, "Samplers: quality against network evaluations"; recomputing them takes about an
hour on 2 CPU cores). The grey band is 50-step DDIM's SGD and 5 % above it."""),
code("""recorded = {
    "n": 256,  # generated galaxies (one seed), against 512 held-out ones
    "nfe": [5, 10, 15, 20, 30, 50],  # axis ticks
    "sgd": {  # SGD by sampler and network evaluations (BENCHMARKS.md)
        "ddim": {5: 0.909, 10: 0.65, 15: 0.589, 20: 0.539, 30: 0.499, 50: 0.46},
        "dpm_solver": {5: 0.784, 8: 0.614, 10: 0.607, 11: 0.535, 12: 0.527, 15: 0.507, 20: 0.447},
        "dpm_solver_3m": {5: 0.888, 8: 0.621, 10: 0.514, 15: 0.478},
        "dpm_solver_2m_sde": {10: 0.665, 12: 0.55, 15: 0.425},
        "dpm_solver_3m_sde": {5: 0.96, 8: 1.034, 10: 0.46, 12: 0.416, 15: 0.515, 20: 0.522},
        "euler": {10: 0.789, 15: 0.683},
        "heun": {9: 2.262, 11: 1.126, 13: 0.577, 15: 0.465},
        "euler_ancestral": {10: 0.968, 15: 0.857},
    },
}
fig, ax = plt.subplots(figsize=(7, 4))
for name, curve in recorded["sgd"].items():
    nfe = sorted(curve)
    ax.plot(nfe, [curve[k] for k in nfe], marker="o", ms=3, label=name)
target = recorded["sgd"]["ddim"][50]
ax.axhspan(target, 1.05 * target, color="0.85", label="50-step DDIM … +5 %")
ax.set_xscale("log")
ax.set_xticks(recorded["nfe"], [str(k) for k in recorded["nfe"]])
ax.minorticks_off()
ax.set_ylim(0.3, 1.0)                         # Heun at 9 and 11 NFE (2.3, 1.1) is off the top
ax.set(xlabel="network evaluations (NFE)", ylabel="SGD to held-out mocks (lower is better)",
       title=f"desi-tiny, {recorded['n']} generated vs 512 held-out galaxies (recorded)")
ax.legend(fontsize=7, ncol=2)
ax.grid(alpha=0.3)
plt.show()
print(f"default sampler of galwidgets: {gw.samplers.DEFAULT_SAMPLER}, {gw.samplers.DEFAULT_STEPS} steps")"""),
md("""That measurement, and a larger one, chose the default: `ckpt.sample(n)` with no sampler named
uses `gw.samplers.DEFAULT_SAMPLER` with `gw.samplers.DEFAULT_STEPS` steps: the SDE form of
DPM-Solver++(3M) (`gw.samplers.dpm_solver_3m_sde`: the third-order multistep update with
$h$ doubled in the data terms and fresh noise $\\sigma_{i+1}\\sqrt{1-e^{-2h}}\\,n$ at every step) with 12
steps. On one seed of 256 galaxies (the curve above) its line zig-zags: at this size a single run's
SGD scatters by ±0.05 from the draw alone. On the larger test (512 against 512 galaxies,
`BENCHMARKS.md`) it was below 50-step DDIM's SGD at 12 NFE on each of 5 seeds (0.379 against 0.445 on
average), 27 % above at 10 NFE; the deterministic 2M needed 20 NFE to come within 8 %. Three lessons
beyond the ODE errors above:

* the best ODE solver is not automatically the best sampler: the SDE adds noise that corrects part
  of the error the earlier steps made (Karras et al. 2022, §4), which pays off from about 12 steps;
* first-order samplers (Euler, and DDIM, which is Euler's step) stay far off at 15 NFE;
* small evaluations mislead: with 256 against 256 galaxies, the third-order ODE solver at 10 NFE
  looked as good as 50-step DDIM, and on 512 against 512 it was 35 % worse. Rank samplers on the
  largest samples you can afford, over several seeds, and look at more than one number.

Check the default live at this tutorial's size: the same `n_galaxies` and `seed` as the DDIM sweep
above."""),
code("""start = time.perf_counter()
fast = ckpt.sample(n_galaxies, seed=seed, progress=False)      # the default sampler and steps
seconds = time.perf_counter() - start
sgd = gw.metrics.synthetic_galaxy_distance(fast, reference, bootstrap=100)
slowest = results[results.sampler == "DDIM"].sort_values("steps").iloc[-1]
print(f"{gw.samplers.DEFAULT_SAMPLER}, {gw.samplers.DEFAULT_STEPS} steps: {seconds:.1f} s, "
      f"SGD {sgd['total']:.2f} ± {sgd['total_err']:.2f}, sky noise {sky_noise(fast.images):.4f}")
print(f"DDIM, {slowest.steps} steps: {slowest.seconds:.1f} s, "
      f"SGD {slowest.SGD:.2f} ± {slowest['SGD error']:.2f}, "
      f"sky noise {slowest['sky noise']:.4f}")"""),
md("""## The DiffusionStepper's reverse-process player

The widget runs the reverse process on one galaxy and records every step. Its controls: `sampler`
(any of `gw.samplers.SAMPLERS`; the third-order SDE DPM-Solver++ by default), `steps`, `η` (for the samplers that take
it: DDIM, the DPM-Solver++ SDE, ancestral Euler) and `seed`; press **run reverse process**, then play
through the recorded steps to see $x_t$ beside $\\hat x_0$, with a red marker on the $\\bar\\alpha_t$ and
SNR curves at the step shown. Switch the sampler and run again to see how differently DDIM, Euler
and DPM-Solver++ spend their steps along the noise levels. The forward part at the top is tutorial 1.
We run the first pass here so the player has frames. DDPM always takes all 1000 steps: for one galaxy
that took 55 s on a busy 2-core CPU."""),
code("""stepper = gw.widgets.DiffusionStepper(ckpt, galaxies=reference, steps=widget_steps)
frames = stepper.state.run_reverse()          # what the "run reverse process" button does
print(f"recorded {len(frames)} steps of {stepper.state.sampler}, σ = {frames[0]['sigma']:.3g} ... "
      f"{frames[-1]['sigma']:.3g}, t = {frames[0]['t']:.1f} ... {frames[-1]['t']:.1f}")
stepper"""),
md("""From code, the same switches are `stepper.state.sampler = "ddim"`, `stepper.state.steps = 5`,
`stepper.state.eta = 1.0`, then `stepper.state.run_reverse()`; `stepper.state.frame = k` shows step
`k`."""),
exercise("""Draw 32 galaxies with DDIM at 25 steps and $\\eta = 0$, $0.5$ and $1$. How do the SGD and the
sky noise change?""",
"""```python
for eta in (0.0, 0.5, 1.0):
    g = ckpt.sample(n_galaxies, sampler="ddim", steps=25, eta=eta, seed=seed, progress=False)
    sgd = gw.metrics.synthetic_galaxy_distance(g, reference, bootstrap=100)
    print(eta, round(sgd["total"], 3), round(sgd["total_err"], 3), round(sky_noise(g.images), 4))
```
Measured with the default sizes: SGD 0.87, 0.86 and 0.88 (each ± 0.12): no difference the metric
can see. Sky noise 0.0087, 0.0087 and 0.0074 nanomaggies against 0.0117 for the mock galaxies: at
25 steps the fully stochastic sampler is the smoothest of the three. Song et al. (2021, Table 1)
found the same direction with FID on natural images: with few steps, $\\eta = 0$ beats $\\eta = 1$."""),
exercise("""Check that DDPM on a respaced schedule is DDIM with $\\eta = 1$. Keep the $S$ timesteps
$\\tau_1 < \\dots < \\tau_S$ DDIM visits, build the schedule with
$\\beta'_i = 1 - \\bar\\alpha_{\\tau_i}/\\bar\\alpha_{\\tau_{i-1}}$ (Nichol & Dhariwal 2021, §4), run
`gw.diffusion.ddpm` on it (the network must be called with the original $\\tau_i$, not $i$), and compare
with `gw.diffusion.ddim(..., eta=1.0)` from the same generator seed.""",
"""```python
from galwidgets.diffusion import NoiseSchedule

S = 10
kept = ddim_timesteps(ckpt.schedule.T, S).flip(0)                     # increasing timesteps
a = ckpt.schedule.alphas_cumprod[kept]
respaced = NoiseSchedule(1 - a / torch.cat([torch.ones(1, dtype=a.dtype), a[:-1]]))


class OnKeptSteps(torch.nn.Module):
    \"\"\"The network, called at the original timestep kept[i] for step i of the respaced chain.\"\"\"
    def __init__(self, model):
        super().__init__()
        self.model, self.config = model, model.config

    def forward(self, x, t, cond=None, **kwargs):
        return self.model(x, kept.to(t.device)[t], cond, **kwargs)


shape = (2, 3, ckpt.size, ckpt.size)
ddpm = gw.diffusion.ddpm(OnKeptSteps(ckpt.model), respaced, shape, autocast=False, progress=False,
                         generator=torch.Generator().manual_seed(5))
ddim = gw.diffusion.ddim(ckpt.model, ckpt.schedule, shape, steps=S, eta=1.0, autocast=False,
                         progress=False, generator=torch.Generator().manual_seed(5))
print((ddpm - ddim).abs().max(), ddim.abs().mean())
```
Both samplers draw their noise in the same order, so the results agree pixel by pixel: measured
largest difference $3.5\\times10^{-4}$ (float32 rounding) for pixels of mean size 0.085. The
posterior variance $\\tilde\\beta'_i$ of the respaced schedule equals $\\sigma^2$ of eq. 16 at
$\\eta = 1$."""),
exercise("""DDIM with $\\eta = 0$ is deterministic: the starting noise $x_T$ fixes the galaxy. All runs of
the sweep used the same `seed`, so the same $x_T$. Are the 10-step and the 50-step DDIM galaxies the
*same* galaxies? And DDPM's at 5 and 25 steps? Compare the r magnitudes of paired galaxies with those
of unpaired ones.""",
"""```python
def paired(a, b):
    ma, mb = gw.metrics.photometry(samples[a]).mag_r.values, gw.metrics.photometry(samples[b]).mag_r.values
    return np.nanmedian(abs(ma - mb)), np.nanmedian(abs(ma - np.roll(mb, 1)))

print(paired(("DDIM", 10), ("DDIM", 50)), paired(("DDPM", 5), ("DDPM", 25)))
```
Measured with the default sizes: DDIM 10 against 50 steps, the median |Δ r| of paired galaxies
is 0.034 mag against 0.28 mag for unpaired ones (pixel correlation 0.99): the same galaxies, drawn
more or less finely. This is the "consistency" of DDIM (Song et al. 2021, §5.3), which makes $x_T$ a
latent code you can interpolate in. DDPM 5 against 25 steps: paired 0.30 mag, unpaired 0.24 mag,
no closer than random pairs: fresh noise at every step makes different galaxies from the same start."""),
exercise("""The SGD's bootstrap error is about 0.12 with 32 galaxies and falls as $1/\\sqrt n$. About how
many galaxies would you need to tell DDIM at 25 steps from DDIM at 50 steps, if the true difference
were 0.03?""",
"""To see a difference of 0.03 at two standard errors, the error of the *difference* must be 0.015.
For two independent runs the errors add in quadrature, $\\sqrt 2\\,\\sigma \\le 0.015$, so each
$\\sigma \\approx 0.011$: 11 times smaller than 0.12, hence $11^2 \\approx 128$ times more galaxies, about
4000 per run (and a reference set at least as large). Affordable on a GPU (below), not in a CPU
tutorial. Our runs are *not* independent, though: they share the reference set and the starting noise
(previous exercise), so much of the noise cancels in the difference; a bootstrap that resamples the
pairs together would measure how much."""),
md("""## Going further on a GPU

A fair sampler comparison needs thousands of galaxies, and the full 1000-step DDPM as the reference.
On a GPU, with large batches:

```python
reference = gw.data.simulate_survey(20_000, seed=1)
runs = [("dpm_solver", 10), ("dpm_solver", 15), ("ddim", 50), ("ddim", 250), ("ddpm", 1000)]
for sampler, steps in runs:
    g = ckpt.sample(10_000, sampler=sampler, steps=steps, batch_size=512, seed=0)
    print(sampler, steps, gw.metrics.synthetic_galaxy_distance(g, reference, bootstrap=100)["total"])
```

Scaling the 32-galaxy errors by $1/\\sqrt n$, 10 000 galaxies should bring the SGD errors to below 0.01,
small enough to rank samplers (check it with the `total_err` the bootstrap returns). The `evaluate`
notebook (`galwidgets run evaluate -p n_generated 10000 -p steps 250`) adds morphology and
nearest-neighbour checks."""),
]

if __name__ == "__main__":
    write("03_sampling", CELLS, {"n_galaxies": 4, "n_reference": 8, "ddim_steps": [2, 4], "ddpm_steps": [2],
                                 "n_ode": 1, "ode_nfe": [2, 4], "ode_reference_steps": 6, "widget_steps": 3})
