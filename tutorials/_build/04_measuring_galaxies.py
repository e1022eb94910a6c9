# ruff: noqa: E501  (cell sources: notebook lines, formulas)
"""Tutorial 4: measuring generated galaxies (photometry, SGD, Cohen's d, Gini-M20, why not FID)."""

from _tut import code, exercise, md, parameters, write

CELLS = [
md(r"""# 4 · Measuring generated galaxies

A diffusion model's galaxies can *look* right and still be wrong: a little too bright, too red, too
compact. Astronomers judge them the way they judge real galaxies, by **measuring** them and comparing
the distributions of the measurements with those of a reference set.

**Learning goals**
- measure aperture magnitudes, colours and half-light radii (`gw.metrics.photometry`, photutils
  apertures under the hood) and check them on an image whose answer we know;
- compute the **Synthetic Galaxy Distance** (Smith et al. 2022, MNRAS 511, 1808) and read it
  against its **split-half baseline**, and see why a distance without a baseline means little;
- use **Cohen's d** to tell *which* quantity is off and in which direction (the layout of Smith et
  al.'s Figure 4);
- measure **Gini and M20** (Lotz, Primack & Madau 2004; Lotz et al. 2008), verify them on images
  with a known answer, and explore both sets in the `MorphologyExplorer` widget;
- understand why the **Fréchet Inception Distance** says little about galaxies, and use a cheap,
  interpretable alternative, the Fréchet morphology distance.

Runs in about a minute on a CPU with the shipped model `desi-tiny`."""),
parameters("""n_reference = 256  # int: held-out mock galaxies (the reference set)
n_generated = 128  # int: galaxies drawn from desi-tiny
steps = 25  # int: DDIM steps of the sampler
aperture_radius = 6.0  # float: radius of the photometry aperture in pixels
seed = 0  # int: seed of sampling and of the split-half baselines
progress = False  # bool: show progress bars
threads = 1  # int: CPU threads of torch (networks this small run fastest on one)"""),
code("""import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import Image, display

import galwidgets as gw

# one thread: for networks this small a second thread costs more than it gains, and on shared
# cores (Binder, JupyterHub) waiting for each other can make two threads several times slower
torch.set_num_threads(threads)
ckpt = gw.pretrained.load("desi-tiny")
# held out: desi-tiny learnt from simulate_survey(6000, seed=1000), so use another seed
mock = gw.data.simulate_survey(n_reference, size=ckpt.size, bands=ckpt.bands, pixel_scale=ckpt.pixel_scale,
                               seed=2026, progress=False)
generated = ckpt.sample(n_generated, sampler="ddim", steps=steps, seed=seed, progress=progress)
print("reference:", mock)
print("generated:", generated)
n = min(8, len(mock), len(generated))
Image(gw.viz.png_bytes(gw.viz.image_grid(np.concatenate([mock.images[:n], generated.images[:n]]),
                                         mock.bands, ncols=n, suptitle="top: mock, bottom: generated")))"""),
md(r"""## 1 · Aperture photometry

For each band we sum the sky-subtracted flux inside a circle of radius $r$ (6 pixels, 1.6″, as Smith
et al.) around the cutout centre,

$$F = \sum_{ij} w_{ij}\,(I_{ij} - b), \qquad m = 22.5 - 2.5\log_{10} F ,$$

where $w_{ij}$ is the fraction of pixel $ij$ inside the circle (photutils' exact overlap), $b$ the
median of the four corner squares of the cutout, and 22.5 the AB zeropoint of nanomaggies. Colours
are differences of magnitudes ($g-r = m_g - m_r$). The **half-light radius** $r_{1/2}$ is the radius
where the curve of growth $F(<R)$ reaches half of the flux inside the largest circle that fits the
cutout.

Before trusting a measurement on galaxies, try it on an image whose answer we know. A round Gaussian
of total flux $F_0$ and width $\sigma$ puts $F_0\,[1 - e^{-r^2/2\sigma^2}]$ inside radius $r$, and its
half-light radius is $\sigma\sqrt{2\ln 2} \approx 1.177\,\sigma$."""),
code("""size = ckpt.size
yy, xx = np.mgrid[:size, :size]
rows = []
for sigma in (1.5, 3.0, 6.0):
    blob = np.exp(-((xx - (size - 1) / 2) ** 2 + (yy - (size - 1) / 2) ** 2) / (2 * sigma**2))
    blob *= 10.0 / blob.sum()  # total flux 10 nanomaggies, i.e. magnitude 20.0
    image = np.repeat(blob[None, None], 3, axis=1).astype(np.float32)  # the same blob in g, r, z
    table = gw.metrics.photometry(image, aperture_radius=aperture_radius, pixel_scale=1.0)
    inside = 1 - np.exp(-aperture_radius**2 / (2 * sigma**2))
    rows.append({"sigma (px)": sigma, "mag_r measured": table.mag_r[0],
                 "mag_r expected": 22.5 - 2.5 * np.log10(10.0 * inside),
                 "r_half measured (px)": table.r_half[0], "r_half expected (px)": sigma * np.sqrt(2 * np.log(2))})
pd.DataFrame(rows).round(3)"""),
md("""The measurement agrees with the analytic answer to a few thousandths of a magnitude. Note how the
wide blob ($\\sigma = 6$ px) loses flux outside the 6-pixel aperture: an *aperture* magnitude is not a
total magnitude, which is fine as long as both sets are measured the same way.

Now both sets. The curve of growth of one galaxy shows where $r_{1/2}$ comes from."""),
code("""phot_ref = gw.metrics.photometry(mock, aperture_radius=aperture_radius)
phot_gen = gw.metrics.photometry(generated, aperture_radius=aperture_radius)
print(f"flagged (a magnitude or r_half could not be measured): {(phot_ref.flag > 0).sum()} of "
      f"{len(phot_ref)} mock, {(phot_gen.flag > 0).sum()} of {len(phot_gen)} generated galaxies")

r = list(mock.bands).index("r")
galaxy = mock.images[0, r] - gw.metrics.background(mock.images[:1])[0, r]
radii = np.arange(0.5, size / 2, 0.5)
growth = [(gw.metrics.aperture_weights(galaxy.shape, R) * galaxy).sum() for R in radii]
r_half_px = phot_ref.r_half[0] / mock.pixel_scale
fig, axes = plt.subplots(1, 2, figsize=(8, 3.3))
axes[0].imshow(np.arcsinh(galaxy / 0.01), origin="lower", cmap="gray")
for R, style in ((aperture_radius, "-"), (r_half_px, "--")):
    axes[0].add_patch(plt.Circle(((size - 1) / 2, (size - 1) / 2), R, fill=False, color="C1", ls=style))
axes[0].set_title("r band: aperture (solid), r_half (dashed)", fontsize=9)
axes[1].plot(radii, growth)
axes[1].axhline(growth[-1] / 2, color="gray", lw=0.8)
axes[1].axvline(r_half_px, color="C1", ls="--")
axes[1].axvline(aperture_radius, color="C1")
axes[1].set(xlabel="radius R (px)", ylabel="F(<R) (nanomaggies)", title="curve of growth")
fig.tight_layout()
plt.show()
phot_gen[["mag_g", "mag_r", "mag_z", "g-r", "r-z", "r_half"]].describe().loc[["mean", "std", "min", "max"]].round(3)"""),
md(r"""## 2 · The Synthetic Galaxy Distance and its baseline

Smith et al. (2022) summarise a set of galaxies by six measured quantities $q$: the magnitudes
$m_g, m_r, m_z$, the colours $g-r$, $r-z$ and the half-light radius. For each they compare the
distribution of the generated galaxies with the reference one by the **Wasserstein-1 distance**,
which for one-dimensional distributions is the area between the two cumulative distributions,

$$W_1(P, Q) = \int |F_P(x) - F_Q(x)|\,dx, \qquad \mathrm{SGD} = \sum_q W_1\big(P_q^{\rm gen}, P_q^{\rm ref}\big).$$

$W_1$ has the unit of the quantity (magnitudes, arcsec): an SGD term of 0.1 in $m_r$ is roughly "the
generated galaxies are 0.1 mag off". Here is the area for $m_r$:"""),
code("""sgd = gw.metrics.synthetic_galaxy_distance(phot_gen, phot_ref)
fig, ax = plt.subplots(figsize=(4.6, 3.2))
grid = np.linspace(*np.nanpercentile(np.r_[phot_ref.mag_r, phot_gen.mag_r], [0.5, 99.5]), 400)
cdf = {name: np.searchsorted(np.sort(t.mag_r.dropna()), grid, side="right") / t.mag_r.notna().sum()
       for name, t in (("mock", phot_ref), ("generated", phot_gen))}
for name, values in cdf.items():
    ax.step(grid, values, where="post", label=name)
ax.fill_between(grid, cdf["mock"], cdf["generated"], step="post", color="gray", alpha=0.4,
                label=f"area = W1 = {sgd['r']:.3f} mag")
ax.set(xlabel="r-band aperture magnitude", ylabel="cumulative fraction")
ax.legend(fontsize=8)
plt.show()"""),
md(r"""Is the total small or large? Even two samples from **the same** distribution have $W_1 > 0$,
because a finite sample's cumulative distribution is ragged. The **split-half baseline** is the SGD
between two random halves of the reference set: what a perfect model would score with samples of
this size. Compare the model against it, not against zero."""),
code("""baseline = gw.metrics.split_half_baseline(phot_ref, seed=seed)
pd.DataFrame({"model vs mock": sgd, "split-half baseline": baseline}).round(3)"""),
code("""print(f"SGD {sgd['total']:.3f}, baseline {baseline['total']:.3f}, ratio {sgd['total'] / baseline['total']:.2f}")"""),
md(r"""The baseline is not a constant: it shrinks with the number of galaxies, like $1/\sqrt{N}$
(the noise of an empirical distribution). A model scored on 10,000 galaxies and one scored on 100
cannot be compared by their SGDs, but each can be compared with *its own* baseline. Below, the
split-half baseline of subsets of the mock set, averaged over a few random splits:"""),
code("""sizes = [k for k in (16, 32, 64, 128, 256, 512, 1024) if k <= len(phot_ref)]
curve = pd.DataFrame([
    {"N": k, "baseline": np.mean([gw.metrics.split_half_baseline(phot_ref.iloc[:k], seed=s)["total"]
                                  for s in range(5)])}
    for k in sizes])
fig, ax = plt.subplots(figsize=(4.6, 3.2))
ax.plot(curve.N, curve.baseline, "o-", label="split-half baseline")
ax.plot(curve.N, curve.baseline.iloc[-1] * np.sqrt(curve.N.iloc[-1] / curve.N), "k:", label=r"$\\propto 1/\\sqrt{N}$")
ax.set(xscale="log", yscale="log", xlabel="galaxies N (split into two halves)", ylabel="SGD total")
ax.legend(fontsize=8)
plt.show()
curve.round(3)"""),
md(r"""## 3 · Which quantity is off? Cohen's d

The SGD says *how far*, not *which way*. For each quantity, Cohen's d is the difference of the means
in units of the pooled standard deviation,

$$d = \frac{\bar q_{\rm gen} - \bar q_{\rm ref}}{s}, \qquad s^2 = \frac{(n_1 - 1)s_1^2 + (n_2 - 1)s_2^2}{n_1 + n_2 - 2},$$

with $|d| \approx 0.2$ conventionally "small", 0.5 "medium", 0.8 "large" (Cohen 1988). Smith et al.
(2022, Figure 4) show one histogram per quantity with its effect size; here is the same layout. A
$W_1$ can be large while $d \approx 0$ when the *widths* of the distributions differ rather than
their centres, so look at both."""),
code("""columns = gw.metrics.sgd_columns(phot_ref)
effect = {term: gw.metrics.cohens_d(phot_gen[col], phot_ref[col]) for term, col in columns.items()}
fig, axes = plt.subplots(2, 3, figsize=(9, 5))
for ax, (term, col) in zip(axes.flat, columns.items()):
    values = np.r_[phot_ref[col], phot_gen[col]]
    bins = np.linspace(*np.nanpercentile(values, [1, 99]), 20)
    ax.hist(phot_ref[col], bins, density=True, alpha=0.5, label="mock")
    ax.hist(phot_gen[col], bins, density=True, histtype="step", lw=1.5, label="generated")
    ax.set_title(f"{term}: d = {effect[term]:+.2f}, W1 = {sgd[term]:.3f}", fontsize=9)
    ax.set_xlabel("arcsec" if term == "r_half" else "mag", fontsize=8)
axes.flat[0].legend(fontsize=8)
fig.tight_layout()
plt.show()
pd.Series(effect, name="Cohen's d").round(2).to_frame().T"""),
md(r"""## 4 · Morphology: Gini and M20

Magnitudes and sizes do not see *structure*: a smooth disc and a clumpy one can have the same
$r_{1/2}$. Lotz, Primack & Madau (2004) introduced two non-parametric numbers, measured on the pixels
$X_i$ of the galaxy's segmentation sorted by $|X_i|$:

$$G = \frac{1}{\overline{|X|}\,n(n-1)} \sum_{i=1}^{n} (2i - n - 1)\,|X_i| ,$$

how unequally the light is shared among the pixels (0: all equal, 1: all the light in one pixel), and

$$M_{\rm tot} = \sum_i f_i\,\big[(x_i - x_c)^2 + (y_i - y_c)^2\big], \qquad
M_{20} = \log_{10}\frac{\sum_{i\,\in\,\text{brightest 20\%}} M_i}{M_{\rm tot}} ,$$

the second moment of the brightest pixels holding 20 % of the flux, relative to the total: near
$-2$ to $-3$ for a bright compact centre, near $-1$ when the brightest light is spread out in
clumps, arms or two nuclei. Lotz et al. (2008, eqs. 4-5) separate mergers ($G > -0.14\,M_{20} + 0.33$)
and bulges from discs ($G = 0.14\,M_{20} + 0.80$).

**Sanity checks with known answers.** Equal pixels give $G = 0$, one bright pixel among zeros
$G = 1$; values drawn uniformly from $[0, 1]$ give $1/3$ and exponential ones $1/2$. For M20, a
round Gaussian has an analytic value independent of its width: the brightest 20 % of the light lies
within $u = r^2/2\sigma^2 = \ln 1.25$, and the moment inside $u$ is $2F\sigma^2[1 - (1+u)e^{-u}]$ out
of $2F\sigma^2$, so $M_{20} = \log_{10}[1 - 0.8\,(1 + \ln 1.25)] = -1.668$."""),
code("""rng = np.random.default_rng(0)
delta = np.zeros(1000)
delta[0] = 1.0
checks = pd.DataFrame({
    "image": ["uniform", "one bright pixel", "uniform random values", "exponential values"],
    "Gini measured": [gw.metrics.gini(np.ones(1000)), gw.metrics.gini(delta),
                      gw.metrics.gini(rng.uniform(size=100_000)), gw.metrics.gini(rng.exponential(size=100_000))],
    "Gini expected": [0, 1, 1 / 3, 1 / 2]})
display(checks.round(4))
m20_rows = []
for sigma in (2.0, 4.0, 8.0):  # centre off the pixel grid, so that no pixels tie at the 20 % threshold
    blob = np.exp(-((xx - size / 2 - 0.3) ** 2 + (yy - size / 2 + 0.2) ** 2) / (2 * sigma**2))
    m20_rows.append({"sigma (px)": sigma, "M20 measured": gw.metrics.m20(blob),
                     "M20 expected": np.log10(1 - 0.8 * (1 + np.log(1.25)))})
pd.DataFrame(m20_rows).round(3)"""),
md("""The pixelated Gaussian approaches the analytic value as it covers more pixels; a galaxy a few
pixels across carries a pixelisation error of a few hundredths in M20.

Now both sets, with the fast batched measurement (`gw.metrics.gini_m20`, statmorph's algorithm:
segmentation of the central galaxy, Petrosian radius, Gini segmentation, then $G$ and $M_{20}$)."""),
code("""morph_ref = gw.metrics.gini_m20(mock, band="r", progress=False)
morph_gen = gw.metrics.gini_m20(generated, band="r", progress=False)


def merger_fraction(t):
    return float((t.gini > -0.14 * t.m20 + 0.33).mean())


pd.DataFrame({
    "mock": [morph_ref.gini.median(), morph_ref.m20.median(), merger_fraction(morph_ref), morph_ref.gini.isna().mean()],
    "generated": [morph_gen.gini.median(), morph_gen.m20.median(), merger_fraction(morph_gen),
                  morph_gen.gini.isna().mean()],
    "Cohen's d": [gw.metrics.cohens_d(morph_gen.gini, morph_ref.gini), gw.metrics.cohens_d(morph_gen.m20, morph_ref.m20),
                  np.nan, np.nan],
}, index=["median Gini", "median M20", "fraction above merger line", "not measured"]).round(3)"""),
md("""### The MorphologyExplorer

Blue: mock, orange: generated, in the Gini–M20 plane with the Lotz et al. (2008) lines and marginal
histograms. Drag a box (or lasso) around a region to see the galaxies there: are the generated
galaxies in the merger region really disturbed, or just noisy? The dropdown switches to the
concentration–asymmetry plane (Conselice 2003) or size–magnitude."""),
code("""gw.widgets.MorphologyExplorer(mock, generated)"""),
md(r"""## 5 · Why not the Fréchet Inception Distance?

The FID of image generation (Heusel et al. 2017) fits Gaussians to 2048-d features of an
Inception-v3 network trained on ImageNet photographs and compares them,

$$\mathrm{FID} = \lVert\mu_a - \mu_b\rVert^2 + \mathrm{Tr}\big(\Sigma_a + \Sigma_b - 2(\Sigma_a\Sigma_b)^{1/2}\big).$$

For galaxies it says little:

- the features were learnt to tell dogs from cars in 299×299 RGB photographs; a 64×64 galaxy blown up
  4.7× is a smooth blob whose features respond to texture and edges, not to the magnitudes, colours
  and sizes astronomers care about;
- g, r, z are not red, green, blue, and flux must be stretched to [0, 1] first: the score depends on
  that arbitrary stretch (the library scores each band separately, replicated to three channels, as
  galaxy-diffusion papers do);
- it is biased upwards for small sets (roughly $\propto 1/N$) and needs thousands of galaxies;
- it has no unit and no direction: "FID 12" does not say *what* is wrong;
- it needs 104 MB of ImageNet weights that are not shipped; galwidgets never downloads at run time."""),
code("""try:
    gw.metrics.load_inception()
    print("Inception weights found: gw.metrics.fid(generated, mock) would work here (slowly on a CPU)")
except FileNotFoundError as missing:
    print("no Inception weights:", str(missing).split(". ")[0])"""),
md(r"""A cheap, interpretable alternative in the same spirit is the **Fréchet morphology distance**
(`gw.metrics.frechet_morphology_distance`): the same Fréchet formula on eight measured features per
galaxy (three magnitudes, two colours, $r_{1/2}$, Gini, M20), each standardised by the reference set
so that a shift of one standard deviation in one feature adds 1. Like the SGD it needs a
baseline: two halves of the mock set."""),
code("""import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # galaxies with a failed measurement are dropped; counted below
    features_ref = gw.metrics.morphology_features(mock)
    features_gen = gw.metrics.morphology_features(generated)
print(f"features: {list(features_ref.columns)}")
print(f"dropped (some feature not measurable): {features_ref.attrs['n_dropped']} mock, "
      f"{features_gen.attrs['n_dropped']} generated")
order = np.random.default_rng(seed).permutation(len(features_ref))
half = len(features_ref) // 2
fmd = gw.metrics.frechet_morphology_distance(features_gen, features_ref)
fmd_baseline = gw.metrics.frechet_morphology_distance(features_ref.iloc[order[:half]],
                                                      features_ref.iloc[order[half:]])
print(f"Fréchet morphology distance {fmd:.3f}, split-half baseline {fmd_baseline:.3f}")"""),
exercise("""**A too-bright model.** Smith et al. (2022) found their generated galaxies 16-23 % too bright.
Multiply the generated fluxes by 1.2 (`generated.with_images(1.2 * generated.images)`) and recompute
the SGD terms and Cohen's d. Which terms move, and by about how much? Which do not move at all, and
why?""", """```python
bright = generated.with_images(1.2 * generated.images)
phot_bright = gw.metrics.photometry(bright, aperture_radius=aperture_radius)
sgd_bright = gw.metrics.synthetic_galaxy_distance(phot_bright, phot_ref)
d_bright = {t: gw.metrics.cohens_d(phot_bright[c], phot_ref[c]) for t, c in columns.items()}
pd.DataFrame({"SGD": sgd, "SGD x1.2": sgd_bright, "d": effect, "d x1.2": d_bright}).round(3)
```
Every magnitude shifts by $-2.5\\log_{10}1.2 = -0.198$ mag, so the three magnitude terms change by up
to 0.2 each (less if the model was too faint to begin with) and Cohen's d of the magnitudes moves by
0.198 mag divided by their spread. Colours are differences of magnitudes and $r_{1/2}$ is a ratio
of fluxes, so those terms do not change at all: the SGD catches a brightness error in exactly the
terms that should see it.
Measured with the default parameters (128 galaxies drawn with 25 DDIM steps against 256 mock
ones): the $g$ term went from 0.171 to 0.151 (the model's $g$ magnitudes were too faint, d = +0.32,
so brightening helped), $r$ from 0.113 to 0.185 and $z$ from 0.121 to 0.238 (d from +0.19 to -0.23
and from +0.06 to -0.34); $g-r$, $r-z$ and $r_{1/2}$ stayed at 0.081, 0.065 and 0.124 exactly. The
total went from 0.673 to 0.842."""),
exercise("""**The aperture.** Recompute photometry, SGD and split-half baseline with `aperture_radius=3`
and `aperture_radius=12`. Does the ratio SGD / baseline stay the same? What does that tell you
about comparing SGD values across papers?""", """```python
for radius in (3.0, 6.0, 12.0):
    pr = gw.metrics.photometry(mock, aperture_radius=radius)
    pg = gw.metrics.photometry(generated, aperture_radius=radius)
    s = gw.metrics.synthetic_galaxy_distance(pg, pr)["total"]
    b = gw.metrics.split_half_baseline(pr, seed=seed)["total"]
    print(radius, round(s, 3), round(b, 3), round(s / b, 2))
```
Measured with the default parameters: radius 3 px gives SGD 0.631 against a baseline of 0.280
(ratio 2.26), 6 px 0.673 against 0.267 (2.52), 12 px 0.734 against 0.286 (2.56). The numbers move
with the aperture; the ratio moves less, and the verdict (the model is measurably worse than a
second sample of the data, at 25 sampling steps) does not change.
The SGD is defined by its measurement choices (aperture, background, band of $r_{1/2}$, stamp
size): numbers from different pipelines are not comparable. Quote the baseline measured the same
way, and the settings (`photometry(..., convention="smith2022")` reproduces the published aperture
measurement)."""),
exercise("""**Gini needs a segmentation.** An image of $n$ pixels has a flat disc of $k$ equal pixels on a
zero sky. Show that its Gini over *all* pixels is $(n-k)/(n-1)$, and check it with `gw.metrics.gini`.
Why does `gini_m20` first find the galaxy's pixels (the Gini segmentation) instead of using the
whole cutout?""", """Sorted by value, the $n-k$ zeros come first and the $k$ equal values $X$ take the ranks
$i = n-k+1, \\dots, n$, so $\\sum_i (2i-n-1)X_i = X\\,[2(kn - k(k-1)/2) - k(n+1)] = X\\,k(n-k)$ and
$G = Xk(n-k)/((n-1)kX) = (n-k)/(n-1)$.
```python
img = np.zeros((64, 64)); img[(xx - 32) ** 2 + (yy - 32) ** 2 < 10 ** 2] = 1.0
k, n_pix = (img > 0).sum(), img.size
gw.metrics.gini(img), (n_pix - k) / (n_pix - 1)   # both 0.926 (k = 305 pixels)
```
A perfectly uniform galaxy gets $G \\approx 0.93$ just because the cutout holds a lot of empty sky:
over the whole cutout Gini measures the stamp size, not the galaxy. Measured on the galaxy's own
pixels it is 0, as it should be."""),
md("""## Going further on a GPU

On a GPU, evaluate at the sample sizes of the papers: draw `ckpt.sample(10_000, steps=250,
batch_size=512)` (minutes), simulate 10,000 held-out mock galaxies, and compare
`synthetic_galaxy_distance(..., bootstrap=100)` (a standard error per term) with its split-half
baseline, now about ten times smaller than here. Measure morphology with statmorph itself
(`gw.metrics.morphology`, concentration, asymmetry, smoothness and Sérsic fits) instead of the fast
Gini–M20, and, if you copy torchvision's Inception weights onto the machine, report
`gw.metrics.fid(generated, mock, kid=True)` beside the SGD, never instead of it. The `evaluate`
notebook does all of this in one run: `galwidgets run evaluate -p n_generated 10000 -p n_reference 10000`."""),
]

if __name__ == "__main__":
    write("04_measuring_galaxies", CELLS, {"n_reference": 32, "n_generated": 16, "steps": 5})
