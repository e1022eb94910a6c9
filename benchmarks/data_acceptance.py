"""The mock survey against its own truth and the HSC loader against the HSC catalogue.

Prints the numbers that issue 3's acceptance points ask for (the tests assert the thresholds on
smaller samples; this script measures on the sizes the issue names):

    python benchmarks/data_acceptance.py
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

import galwidgets as gw
from galwidgets.data.population import draw_population
from galwidgets.data.render import render_catalog

SHARED_HSC = Path(__file__).resolve().parents[2] / "shared" / "data" / "hsc_pdr3"


def magnitudes_vs_truth() -> None:
    s = gw.data.simulate_survey(200, size=128, seed=9, sky_sigma=1e-6, progress=False)
    table = gw.metrics.photometry(s, aperture_radius=60, background_method=None)
    offsets = {b: np.median(table[f"mag_{b}"] - s.catalog[f"mag_{b}"]) for b in s.bands}
    print("total magnitudes, 60 px (15.7\") aperture, 200 high-S/N galaxies, median measured - true:",
          ", ".join(f"{b} {v:+.3f}" for b, v in offsets.items()))


def half_light_radius_vs_truth() -> None:
    cat = draw_population(200, seed=2, max_r_half=3.0, arm_probability=0.0, merger_probability=0.0,
                          clumpy_probability=0.0)
    cat = cat.assign(axis_ratio=1.0, bulge_axis_ratio=1.0, n_clumps=0, clump_fraction=0.0,
                     x_offset=0.0, y_offset=0.0)
    images = render_catalog(cat, ("r",), 256, 0.1, 22.5, psf=False, progress=False)
    table = gw.metrics.photometry(images, bands=("r",), pixel_scale=0.1, background_method=None,
                                  center=(127.5, 127.5))
    ratio = table.r_half / cat.r_half_arcsec
    print(f"r_half of noiseless PSF-free renders / r_half_arcsec, 200 galaxies: median "
          f"{np.median(ratio):.4f}, within 5 %: {(abs(ratio - 1) < 0.05).mean():.1%}")


def redshift_makes_a_difference() -> None:
    z = np.random.default_rng(0).uniform(0.02, 1.0, 2000)
    cat = draw_population(2000, seed=1, redshift=z, mag_limit=None)
    rho = spearmanr(cat.redshift, cat.r_half_arcsec).statistic
    print(f"Spearman(z, r_half_arcsec), 2000 galaxies, z uniform in [0.02, 1]: {rho:.3f}")
    zs = np.linspace(0.05, 1.0, 12)
    cat = draw_population(len(zs), seed=4, redshift=zs, mag_limit=None, size_evolution=0.0,
                          arm_probability=0.0, merger_probability=0.0, clumpy_probability=0.0)
    cat = cat.assign(axis_ratio=1.0, bulge_axis_ratio=1.0, n_clumps=0, clump_fraction=0.0,
                     x_offset=0.0, y_offset=0.0)
    images = render_catalog(cat, ("r",), 512, 0.02, 22.5, psf=False, progress=False)
    table = gw.metrics.photometry(images, bands=("r",), pixel_scale=0.02, aperture_radius=255,
                                  background_method=None)
    surface_brightness = 0.5 * table.flux_r / (np.pi * table.r_half**2)
    intrinsic = 10 ** (-0.4 * cat.abs_mag_r) / cat.r_half_kpc**2
    alpha = np.polyfit(np.log(1 + zs), np.log(surface_brightness / intrinsic), 1)[0]
    print(f"mean surface brightness within r_half ∝ (1+z)^α, noiseless renders: α = {alpha:.3f}")


def morphology_makes_a_difference() -> None:
    import statmorph
    from photutils.segmentation import detect_sources

    s = gw.data.simulate_survey(300, size=64, seed=12, progress=False)
    sigma = s.meta["sky_sigma"]["r"]
    rows = []
    for img, (_, truth) in zip(s.images[:, s.band_index("r")].astype(float), s.catalog.iterrows()):
        segm = detect_sources(img, 3 * sigma, n_pixels=10)
        label = segm.data[32, 32] if segm is not None else 0
        if label == 0:
            continue
        m = statmorph.SourceMorphology(img, segm, label, weightmap=np.full_like(img, sigma))
        if m.flag <= 1:
            rows.append((truth.bulge_fraction, truth.has_arms or truth.n_clumps > 0, m.gini, m.asymmetry))
    bt, late, gini, asym = (np.array(c) for c in zip(*rows))
    print(f"statmorph on {len(rows)} of 300 galaxies (r band, noisy): median Gini B/T>0.5 "
          f"{np.median(gini[bt > 0.5]):.3f} vs B/T<0.2 {np.median(gini[bt < 0.2]):.3f}; median "
          f"asymmetry with arms/clumps {np.median(asym[late]):.3f} vs smooth {np.median(asym[~late]):.3f}")


def hsc_cutouts() -> None:
    if not SHARED_HSC.is_dir():
        print(f"HSC: {SHARED_HSC} absent, skipped")
        return
    import pandas as pd
    from photutils.aperture import CircularAperture, aperture_photometry

    names = ("test1", "test2", "test3")
    files = [{b.lower(): next((SHARED_HSC / n).glob(f"cutout-HSC-{b}-*.fits")) for b in "GRI"} for n in names]
    kron = []
    for n in names:
        with open(SHARED_HSC / n / f"{n}.csv") as f:
            columns = f.readline().lstrip("# ").strip().split(",")
        kron.append(pd.read_csv(SHARED_HSC / n / f"{n}.csv", comment="#", names=columns).i_kronflux_mag[0])
    survey = gw.data.load_fits_cutouts(files, size=128, progress=False)
    print(f"HSC PDR3: zeropoint {survey.zeropoint:.3f}, pixel scale {survey.pixel_scale:.4f}\"/px")
    centre = ((survey.size - 1) / 2, (survey.size - 1) / 2)
    aperture = CircularAperture(centre, r=3.4 / survey.pixel_scale)
    for name, image, kron_mag in zip(names, survey.images[:, survey.band_index("i")], kron):
        mag = survey.zeropoint - 2.5 * np.log10(aperture_photometry(image, aperture)["aperture_sum"][0])
        print(f"  {name}: i in a 3.4\" aperture {mag:.2f}, Kron {kron_mag:.2f}, "
              f"difference {mag - kron_mag:+.2f}")


def main() -> None:
    for step in (magnitudes_vs_truth, half_light_radius_vs_truth, redshift_makes_a_difference,
                 morphology_makes_a_difference, hsc_cutouts):
        t0 = time.perf_counter()
        step()
        print(f"  ({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
