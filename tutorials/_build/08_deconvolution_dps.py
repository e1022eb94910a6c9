"""Tutorial 8: deconvolution with Diffusion Posterior Sampling, and where the prior invents detail."""

from _tut import code, exercise, md, parameters, write

CELLS = [
md(r"""# 8 · Deconvolution with a diffusion prior (Diffusion Posterior Sampling)

Every telescope image is the sky blurred by the point-spread function (PSF) plus noise. Undoing
the blur is an *inverse problem*, and an ill-posed one: many galaxies fit the same blurred, noisy
image equally well. A diffusion model trained on galaxies says which of them are plausible.
**Diffusion Posterior Sampling** (DPS, Chung et al. 2023) combines the two and draws samples of
the posterior $p(x \mid y)$; their spread tells us how sure we can be, and comparing it with the
prior's spread shows which features the data support and which the prior made up.

**Learning goals**
- write the forward model $y = A x + n$ of an observation and see why inverting it directly fails;
- understand DPS: the likelihood gradient taken through the denoised estimate $\hat x_0(x_t)$ and
  the operator $A$, and its step size $\zeta$;
- deconvolve a mock galaxy with known truth (`gw.diffusion.deconvolve`): posterior mean vs truth,
  residuals in units of the noise, $\chi^2$;
- read the hallucination map: the posterior standard deviation and the **variance ratio**
  (posterior variance over a brightness-matched prior's variance) that flags prior-driven features,
  in the `DeconvolutionViewer` widget;
- deconvolve a real HSC galaxy (when the data folder is there).

Runs in about two minutes on 2 free CPU cores with the shipped model `desi-tiny`."""),
parameters("""galaxy_seed = 12345  # int: seed of the mock galaxy (desi-tiny was trained on seed 1000)
psf_fwhm = 2.0  # float: FWHM in arcsec of the Moffat PSF blurring the mock (its kernel must fit: at most 2.0)
sky_sigma = [0.00702, 0.0115, 0.028]  # list: sky noise per band (g, r, z) added to the blurred mock
n_samples = 8  # int: posterior samples
n_prior = 16  # int: prior samples, the reference of the variance ratio
steps = 30  # int: DPS steps
trace_steps = 30  # int: DPS steps of the step-size experiment
trace_samples = 2  # int: samples per step size in that experiment
trace_zeta = [0.0, 1.0, 2.5]  # list: step sizes of that experiment, in units of the default 0.2 / steps
seed = 0  # int: seed of all sampling
hsc_dir = "../../shared/data/hsc_pdr3/test1"  # str: HSC PDR3 cutout folder (relative to tutorials/); "" skips
model_redshift = 0.094  # float: typical redshift of the prior's training galaxies (desi-tiny: 0.094)
progress = False  # bool: show progress bars"""),
code("""from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

import galwidgets as gw
from galwidgets.diffusion.operators import PSFOperator, crop_center, estimate_sigma_y

ckpt = gw.pretrained.load("desi-tiny")
bands = list(ckpt.bands)
r = bands.index("r")
sigma = np.asarray(sky_sigma, dtype=np.float64)
truth = gw.data.simulate_survey(1, size=ckpt.size, bands=bands, pixel_scale=ckpt.pixel_scale,
                                seed=galaxy_seed, progress=False).images
y, kernels = gw.data.observe(truth, psf_fwhm, ckpt.pixel_scale, sigma, seed=1)
A = PSFOperator.from_checkpoint(ckpt, kernels)  # y = k ⊛ x on the model's own grid
print(A)

fig, axes = plt.subplots(1, 3, figsize=(8, 2.8))
vmax = np.percentile(truth[0, r], 99.5)
axes[0].imshow(truth[0, r], origin="lower", cmap="gray", vmin=-sigma[r], vmax=vmax)
axes[1].imshow(kernels[r], origin="lower", cmap="gray")
axes[2].imshow(y[0, r], origin="lower", cmap="gray", vmin=-sigma[r], vmax=vmax)
for ax, title in zip(axes, ["truth x (r)", f"PSF k, FWHM {psf_fwhm}\\"", "observation y = k ⊛ x + n"]):
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
plt.show()"""),
md(r"""## The forward model, and why plain inversion fails

`gw.diffusion.operators.PSFOperator` is the linear map from a galaxy on the model's pixel grid to
what the telescope records,

$$y = A x + n, \qquad A x = k \circledast (f \cdot R\,x), \qquad n \sim \mathcal N(0, \sigma_y^2),$$

with $R$ a flux-conserving resampling to the observation's pixels, $f$ the conversion of flux units
and $k$ the PSF of each band. For the mock both grids are the same and $f = 1$: $A$ is just the
blur. In Fourier space a convolution is a product, $\tilde y = \tilde k\,\tilde x + \tilde n$, so
why not divide? Because $\tilde k$ is tiny at high spatial frequencies, and dividing blows the
noise there up. A Wiener-style filter $\tilde x = \tilde k^* \tilde y / (|\tilde k|^2 + \lambda)$
trades noise for blur through $\lambda$, but no $\lambda$ gives back the truth:"""),
code("""def wiener(image, kernel, lam):
    pad = np.zeros_like(image)
    kh, kw = kernel.shape
    pad[:kh, :kw] = kernel
    pad = np.roll(pad, (-(kh // 2), -(kw // 2)), axis=(0, 1))  # kernel centre at pixel (0, 0)
    K = np.fft.fft2(pad)
    return np.real(np.fft.ifft2(np.conj(K) * np.fft.fft2(image) / (np.abs(K) ** 2 + lam)))


lams = [1e-4, 1e-2, 1e-1]
fig, axes = plt.subplots(1, len(lams) + 1, figsize=(2.4 * (len(lams) + 1), 2.7))
axes[0].imshow(truth[0, r], origin="lower", cmap="gray", vmin=-sigma[r], vmax=vmax)
axes[0].set_title("truth", fontsize=9)
for ax, lam in zip(axes[1:], lams):
    estimate = wiener(y[0, r], kernels[r], lam)
    rms = np.sqrt(np.mean((estimate - truth[0, r]) ** 2))
    ax.imshow(estimate, origin="lower", cmap="gray", vmin=-sigma[r], vmax=vmax)
    ax.set_title(f"λ = {lam:g}: RMS {rms:.3f}", fontsize=9)
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
plt.show()
rms_observation = np.sqrt(np.mean((y[0, r] - truth[0, r]) ** 2))
print(f"RMS of the observation itself against the truth: {rms_observation:.3f}")"""),
md(r"""## Diffusion Posterior Sampling

By Bayes, the score of the posterior is the prior's score plus the likelihood's:

$$\nabla_{x_t}\log p(x_t\mid y) = \nabla_{x_t}\log p(x_t) + \nabla_{x_t}\log p(y\mid x_t).$$

The diffusion model gives the first term. The second is intractable, because $y$ depends on the
clean $x_0$, not on the noisy $x_t$. DPS (Chung et al. 2023) replaces $x_0$ by the model's own
estimate of it, Tweedie's formula

$$\hat x_0(x_t) = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta(x_t, t)}{\sqrt{\bar\alpha_t}},
\qquad p(y\mid x_t) \approx p\big(y \mid \hat x_0(x_t)\big),$$

so every reverse step becomes an ordinary step followed by a gradient step on the misfit, with the
gradient taken **through the network** (back-propagation from $A\hat x_0$ to $x_t$):

$$x_{t-1} = x'_{t-1} - \zeta\,\nabla_{x_t}\left\lVert \frac{y - A\,\hat x_0(x_t)}{\sigma_y}\right\rVert .$$

The step size $\zeta$ matters. $\zeta = 0$ is the prior alone (a random galaxy); too large a
$\zeta$ overshoots and the samples diverge. `gw.diffusion.dps` calls `callback` at every step with
the reduced $\chi^2$ of $\hat x_0$, so we can watch the fit happen for a few $\zeta$ (the mean over
`trace_samples` samples; a perfect fit has $\chi^2_\nu = 1$):"""),
code("""from galwidgets.diffusion.posterior import model_noise_sigma, noise_timestep

# where the diffusion noise equals the prior's own pixel noise (its training sky noise in model space)
prior_noise = model_noise_sigma(ckpt.normalizer, ckpt.normalizer.softening)  # per band, model space
t_stop = noise_timestep(ckpt.schedule, float(prior_noise.max()))
default_zeta = 0.2 / trace_steps
fig, ax = plt.subplots(figsize=(5.6, 3.5))
for factor in trace_zeta:
    trace = []
    gw.diffusion.dps(ckpt, None, y[0], A, sigma, n_samples=trace_samples, steps=trace_steps,
                     zeta=factor * default_zeta, generator=torch.Generator().manual_seed(seed),
                     progress=False, callback=lambda step: trace.append((step["t"], float(step["misfit"].mean()))))
    t, chi2 = np.array(trace).T
    ax.plot(t, chi2, "o-", ms=3, label=f"ζ = {factor:g} × 0.2/steps: χ²ν {chi2.min():.2g} at best, "
                                       f"{chi2[-1]:.2g} at t = 0")
ax.axhline(1, c="k", lw=0.8, ls=":")
ax.axvline(t_stop, c="0.5", lw=0.8, ls="--", label=f"prior's own noise level (t = {t_stop})")
ax.set(xlabel="timestep t (the reverse process runs right to left)", ylabel="reduced χ² of x̂₀",
       yscale="log", title="DPS fit as the reverse process runs")
ax.invert_xaxis()
ax.legend(fontsize=7)
fig.tight_layout()
plt.show()"""),
md(r"""Three things show up. Without guidance ($\zeta = 0$) the misfit stays where a random galaxy
puts it. With guidance it falls as the reverse process runs, but not to 1: a few gradient steps
cannot fit every pixel. Too large a step makes it jump around and grow. And in the last steps,
left of the dashed line, the misfit often rises again: `desi-tiny` learnt galaxies *with* their
sky noise, and below that noise level it paints its own noise into $\hat x_0$."""),
md(r"""## The full recipe: `gw.diffusion.deconvolve`

`deconvolve` wraps DPS for flux images and adds three things the bare algorithm needs on
astronomical data:

* the step size is scaled to the depth of the observation (an observation deeper than the prior's
  own training noise gets a smaller $\zeta$, else the samples diverge);
* the reverse process **stops early**, where the diffusion noise equals the prior's own pixel
  noise (the dashed line above, before the model paints its noise in), and returns $\hat x_0$
  there, refined by a Gaussian data step (ΠGDM, Song et al. 2023)
  that stops once the fit reaches $\chi^2_\nu = 1$ (Morozov's discrepancy principle);
* other sources in the cutout can be masked out of the likelihood (`weights="neighbours"`), since a
  prior of single galaxies cannot explain them. The mock has no neighbours, so we pass `weights=None`.

It also draws `n_prior` samples *without* the data, the same way, as the reference of the
hallucination map below."""),
code("""mock = gw.diffusion.deconvolve(ckpt, y[0], A, sigma, n_samples=n_samples, n_prior=n_prior, steps=steps,
                               weights=None, seed=seed, progress=progress)
wiener_best = np.stack([wiener(y[0, b], kernels[b], 1e-2) for b in range(len(bands))])
table = pd.DataFrame({
    "band": bands,
    "RMS observation − truth": np.sqrt(np.mean((y[0] - truth[0]) ** 2, axis=(1, 2))),
    "RMS Wiener (λ = 0.01) − truth": np.sqrt(np.mean((wiener_best - truth[0]) ** 2, axis=(1, 2))),
    "RMS posterior mean − truth": np.sqrt(np.mean((mock.mean - truth[0]) ** 2, axis=(1, 2))),
    "χ²ν of A·mean vs y": mock.chi2_per_band,
}).set_index("band")
print(f"reduced χ² {mock.chi2:.2f}, variance ratio in the central aperture {mock.variance_ratio:.2f}, "
      f"step size ζ = {mock.settings['zeta']:.4f}, stopped at t = {mock.settings['t_stop']}")
table.round(4)"""),
code("""panels = [("truth", truth[0, r]), ("observation", y[0, r]), ("posterior mean", mock.mean[r]),
          ("(mean − truth) / σ", (mock.mean[r] - truth[0, r]) / sigma[r]),
          ("(y − A·mean) / σ", mock.residual[r])]
fig, axes = plt.subplots(1, len(panels), figsize=(2.5 * len(panels), 2.8))
for ax, (title, image) in zip(axes, panels):
    residual = "σ" in title
    shown = ax.imshow(image, origin="lower", cmap="RdBu_r" if residual else "gray",
                      vmin=-4 if residual else -sigma[r], vmax=4 if residual else vmax)
    if residual:
        fig.colorbar(shown, ax=ax, fraction=0.046)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("r band", fontsize=9)
fig.tight_layout()
plt.show()"""),
md(r"""How to read this:

* the **posterior mean** is sharper than the observation and closer to the truth (smaller RMS in
  the table) than the observation or the best Wiener filter;
* $(y - A\bar x)/\sigma$ is the residual in the *data* space: noise-like, $\chi^2_\nu \approx 1$,
  no galaxy-shaped structure left; the fit explains the observation to its noise and no further;
* $(\bar x - x)/\sigma$ compares with the truth, which only a mock can do. Any structure left is
  at the centre: the peak of the galaxy is smaller than the PSF, the data say little about how
  sharp it is, and what the mean shows there comes largely from the prior. Without a truth to
  compare with, how would we know? That is what the hallucination map is for.

## Where is the detail real? The variance-ratio map

The posterior standard deviation says how *uncertain* each pixel is, but not whether the data
did any work there: a faint pixel can have a small spread simply because the prior never puts much
light there. The variance ratio (Spagnoletti et al. 2024) divides by what the prior alone would
allow. To compare like with like, the prior samples $x^{(k)}$ are first rescaled to the posterior's
aperture flux $F$ (`reference="matched"`), so we ask what galaxies *of this brightness* look like:

$$\mathcal R_p = \frac{\mathrm{Var}_{\text{post}}[x_p]}{F^2\,\mathrm{Var}_{k}\!\left[x^{(k)}_p / F_k\right]}
\quad\begin{cases}\approx 0 & \text{the data pinned pixel } p \text{ down}\\ \approx 1 & \text{as free as the prior: prior-driven}\end{cases}$$

The single number `variance_ratio` is its mean in a central aperture of `radius` pixels. Read the
posterior mean *together with* this map: a feature in the mean that sits where $\mathcal R$ is
near 1 is the prior's invention, not a measurement. (In the empty sky around the galaxy both
variances are just pixel noise and the ratio scatters around and above 1: there is no galaxy
there to trust or distrust.)"""),
code("""ratio = mock.variance_ratio_map[r]
fig, axes = plt.subplots(1, 3, figsize=(8.4, 2.9))
axes[0].imshow(mock.mean[r], origin="lower", cmap="gray", vmin=-sigma[r], vmax=vmax)
axes[0].contour(ratio, levels=[0.5], colors="orange", linewidths=0.8)
axes[0].set_title("posterior mean, R = 0.5 contour", fontsize=9)
std = axes[1].imshow(mock.std[r] / sigma[r], origin="lower", cmap="viridis")
axes[1].set_title("posterior std / sky σ", fontsize=9)
fig.colorbar(std, ax=axes[1], fraction=0.046)
rm = axes[2].imshow(ratio, origin="lower", cmap="magma", vmin=0, vmax=1)
axes[2].add_patch(plt.Circle(((ckpt.size - 1) / 2, (ckpt.size - 1) / 2), mock.settings["radius"],
                             fill=False, color="c"))
axes[2].set_title(f"variance ratio R (aperture mean {mock.variance_ratio:.2f})", fontsize=9)
fig.colorbar(rm, ax=axes[2], fraction=0.046)
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
fig.tight_layout()
plt.show()"""),
md(r"""The `DeconvolutionViewer` shows the same panels for every band with one shared stretch: the
observation, posterior mean, one posterior sample at a time (slide through them and watch what
changes from sample to sample), the spread, the variance-ratio map with its aperture, and the
residual. Change the aperture radius and the summary line updates the variance ratio."""),
code("""viewer = gw.widgets.DeconvolutionViewer(mock, y=y[0], bands=bands)
print(viewer.state.summary())
viewer"""),
md(r"""## (b) A real galaxy from HSC

The Hyper Suprime-Cam Subaru Strategic Program (PDR3, Aihara et al. 2022) images are deeper and
sharper than the DESI-like images the prior learnt. The cutout folder holds g, r, i images (counts at
zeropoint 27, 0.168″ pixels), the PSF model of each band at the galaxy's position and its
spectroscopic redshift. `PSFOperator.from_cutout(cutout, ckpt, model_redshift=...)` (in
`gw.diffusion.operators`) builds the forward model: the model's pixel keeps its *physical* size at the galaxy's redshift (the prior learnt galaxies at
$z \approx 0.09$), so $A$ now also resamples the 64×64 model grid onto the HSC pixels and converts
nanomaggies to HSC counts. The noise is estimated from the cutout by sigma clipping, and neighbouring
sources are left out of the likelihood. The folder is part of a source checkout, not of the Binder
image; without it this part is skipped."""),
code("""def find_folder(path):
    # as given (absolute or from the working directory), else from the tutorials/ folder of the checkout
    if not path:
        return None
    candidates = [Path(path), Path(gw.__file__).resolve().parents[1] / "tutorials" / path]
    return next((p for p in candidates if p.is_dir()), None)


folder = find_folder(hsc_dir)
hsc = None
if folder is None:
    print(f"No HSC cutout folder at {hsc_dir!r} (as on Binder): part (b) is skipped. In a source "
          "checkout set hsc_dir to a folder of ../shared/data/hsc_pdr3.")
else:
    cutout = gw.data.load_hsc_pdr3(folder)
    A_hsc = gw.diffusion.operators.PSFOperator.from_cutout(cutout, ckpt, model_redshift=model_redshift)
    y_hsc = crop_center(cutout.images, A_hsc.obs_shape).astype(np.float32)
    sigma_hsc = estimate_sigma_y(cutout.images)
    hsc = gw.diffusion.deconvolve(ckpt, y_hsc, A_hsc, sigma_hsc, n_samples=n_samples, n_prior=n_prior,
                                  steps=steps, seed=seed, progress=progress)
    print(f"{folder.name}: z = {cutout.redshift:.3f}; one model pixel spans "
          f"{A_hsc.effective_pixel_scale:.3f} arcsec at this redshift, so the {ckpt.size}-pixel model "
          f"stamp covers {y_hsc.shape[1]}x{y_hsc.shape[2]} HSC pixels of the {cutout.images.shape[1]}x{cutout.images.shape[2]} cutout")
    print(f"reduced χ² {hsc.chi2:.2f} (per band {np.round(hsc.chi2_per_band, 2).tolist()}), "
          f"variance ratio {hsc.variance_ratio:.2f}")"""),
code("""if hsc is not None:
    fig = hsc.figure(y_hsc, [f"HSC {b}" for b in cutout.bands])
    plt.show()
    hsc_viewer = gw.widgets.DeconvolutionViewer(hsc, y=y_hsc, bands=list(cutout.bands), operator=A_hsc)
    print(hsc_viewer.state.summary())
    display(hsc_viewer)"""),
md(r"""Compare the two variance ratios. For the mock the prior is right about the population (same
simulator) and the observation is as noisy as its training data: over most of the galaxy the
ratio is small, the data did the work, and only the unresolved peak leans on the prior. The HSC
galaxy is a different matter: larger and more structured than any of the prior's mock galaxies, much
deeper data, and the prior's reddest band is DESI z standing in for HSC i. Expect a higher ratio
and look at the map per band before you believe a knot or an arm in the posterior mean: where the
ratio is near 1, that detail is the prior's idea of a galaxy. That is the honest answer, not a
failure: the map says which parts to trust."""),
exercise(
    r"""Blur the mock galaxy more, with a 3″ PSF. Its kernel (93 pixels for a Moffat profile) does
not fit the 64-pixel stamp, so crop it to 63 pixels with `gw.data.psf_kernel(3.0,
ckpt.pixel_scale, size=63)` (renormalised to sum 1) and pass it to `observe` as `psf=`. How do the
RMS of the posterior mean against the truth and the variance ratio change, and why?""",
    r"""```python
k3 = gw.data.psf_kernel(3.0, ckpt.pixel_scale, size=63)
y3, k3 = gw.data.observe(truth, None, ckpt.pixel_scale, sigma, psf=k3, seed=1)
wide = gw.diffusion.deconvolve(ckpt, y3[0], PSFOperator.from_checkpoint(ckpt, k3), sigma,
                               n_samples=n_samples, n_prior=n_prior, steps=steps, weights=None,
                               seed=seed, progress=False)
print(np.sqrt(np.mean((wide.mean - truth[0]) ** 2)), np.sqrt(np.mean((mock.mean - truth[0]) ** 2)),
      wide.variance_ratio, mock.variance_ratio)
```
A wider PSF removes more of the small-scale information: the posterior mean ends up a little
further from the truth and, above all, the samples disagree more, so the variance ratio goes up:
more of the reconstruction is the prior's. Measured with the default parameters: RMS against the
truth 0.021 (0.020 with the 2″ PSF), variance ratio 0.36 (0.24)."""),
exercise(
    r"""Turn off the early stop and the data step: `deconvolve(..., early_stop=False)` returns plain
DPS samples run to $t = 0$. Compare the reduced $\chi^2$ and the look of the posterior mean with the
default.""",
    r"""```python
plain = gw.diffusion.deconvolve(ckpt, y[0], A, sigma, n_samples=n_samples, n_prior=n_prior, steps=steps,
                                weights=None, early_stop=False, seed=seed, progress=False)
print(plain.chi2, mock.chi2)
```
Plain DPS samples carry the prior's own pixel noise (the model learnt noisy images) and DPS's few
gradient steps leave a larger misfit, so $\chi^2_\nu$ is further from 1; stopping where the
diffusion noise equals that pixel noise and fitting the data there gives a cleaner mean that
explains the data to the noise level. Measured with the default parameters: $\chi^2_\nu$ = 2.64
without the early stop, 0.99 with it."""),
exercise(
    r"""The variance ratio is estimated from a handful of samples. Run the mock deconvolution again
with another `seed`: how much does the aperture value `variance_ratio` move? And the map? What
does that tell you about reading the map pixel by pixel?""",
    r"""```python
again = gw.diffusion.deconvolve(ckpt, y[0], A, sigma, n_samples=n_samples, n_prior=n_prior, steps=steps,
                                weights=None, seed=seed + 1, progress=False)
print(mock.variance_ratio, again.variance_ratio)
```
The aperture value hardly moves (measured with the default parameters: 0.24 and 0.21), because it
averages about 200 pixels in each of three bands. A single pixel of the map is another matter: the
relative error of a variance from $S$ samples is about $\sqrt{2/(S-1)}$, 53 % for $S = 8$, and
the ratio of two such variances is noisier still (the speckle of the map in the sky). Trust the
aperture value and smooth structures in the map; for claims about single pixels or small
features draw many more samples (on a GPU, 64 and more)."""),
md(r"""## Going further on a GPU

On a GPU, draw enough samples for stable variances and use more steps:

```python
result = gw.diffusion.deconvolve(ckpt, y, A, sigma, n_samples=64, n_prior=256, steps=200)
```

and run the parameterised notebook on every HSC cutout folder: `galwidgets run deconvolve -p
n_samples 64 -p n_prior 256 -p steps 200 -p hsc_dir ../shared/data/hsc_pdr3/test2`. A prior
trained on HSC-depth galaxies at their own redshifts (`galwidgets run train` on real cutouts)
would lower the variance ratio of real galaxies: a better prior leaves less to invent."""),
]

if __name__ == "__main__":
    write("08_deconvolution_dps", CELLS,
          {"n_samples": 2, "n_prior": 4, "steps": 5, "trace_steps": 4, "trace_samples": 1,
           "hsc_dir": "{shared}/data/hsc_pdr3/test1"})
