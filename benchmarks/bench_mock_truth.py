"""Issue 18 acceptance: the deep, evolving ``hsc-deep`` mock and the morphological diversity.

Prints, for the default presets:

- the size-redshift Spearman coefficient of the truth (``r_half_arcsec``) over ``hsc-deep``, for
  the flux-limited draw and for the five redshifts the conditional models are evaluated at;
- what flattens that Spearman: the same draw with the size relations' intrinsic scatter or their
  mass dependence removed (``--sizes-only`` prints only these and the lines above);
- the median g-i of early types per redshift bin against the E and S0 template tracks (the 4000 Å
  break moving through g r i z), written as a figure to ``docs/mock-colour-redshift.png``;
- the share of measured galaxies above the Lotz et al. (2008) merger line and on the bulge side of
  the bulge/disk line (``gw.metrics.gini_m20``, r band for ``desi``, i band for ``hsc-deep``), and
  which truth morphologies land there;
- detection: the share of ``hsc-deep`` galaxies whose central segment has S/N above 10 in i;
- rendering time per galaxy (one process) for ``hsc-deep`` and ``desi``.

    python benchmarks/bench_mock_truth.py [--n 2000] [--jobs 2] [--sizes-only]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

import galwidgets as gw
from galwidgets.data import evolution, sed
from galwidgets.data.evolving import draw_evolving_population
from galwidgets.metrics import batched_central_segmaps

FIGURE = Path(__file__).resolve().parents[1] / "docs" / "mock-colour-redshift.png"
Z_EDGES = np.array([0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 1.1, 1.3, 1.6, 2.0])


def size_redshift(n: int) -> None:
    cat = draw_evolving_population(n, seed=1, max_r_half=64 * 0.168 / 4, max_separation=0.45 * 64 * 0.168)
    rho = spearmanr(cat.redshift, cat.r_half_arcsec).statistic
    print(f"hsc-deep truth, {n} galaxies: median z {cat.redshift.median():.2f}, "
          f"z > 2: {(cat.redshift > 2).mean():.1%}, early types {cat.early_type.mean():.1%}")
    print(f"  Spearman(z, r_half_arcsec) = {rho:.3f} (flux-limited draw, 0.05 < z < 3, i < 24.5)")
    z = np.repeat([0.25, 0.75, 1.25, 2.0, 2.75], 400)
    five = draw_evolving_population(len(z), seed=2, redshift=z, max_r_half=64 * 0.168 / 4)
    rho5 = spearmanr(five.redshift, five.r_half_arcsec).statistic
    medians = five.groupby("redshift").r_half_arcsec.median()
    print(f"  Spearman(z, r_half_arcsec) = {rho5:.3f} (400 galaxies at each of z = 0.25 ... 2.75); "
          f"median r_half {', '.join(f'{v:.2f}″' for v in medians)}")
    faint = cat.groupby(pd.cut(cat.redshift, [0, 0.5, 1, 1.5, 2, 3]), observed=True)
    print("  median r_half (″) and M_B per z bin: "
          + "; ".join(f"{iv.left:g}-{iv.right:g}: {g.r_half_arcsec.median():.2f}, {g.abs_mag_B.median():.1f}"
                      for iv, g in faint))


@contextlib.contextmanager
def size_relations(**changes: dict[str, float]) -> Iterator[None]:
    """Draw with the van der Wel et al. (2014) relations of ``evolution.SIZE_RELATIONS`` altered:
    ``early={"scatter": 0}`` etc. (a diagnostic; the mock itself keeps the published values)."""
    published = dict(evolution.SIZE_RELATIONS)
    try:
        for kind, fields in changes.items():
            evolution.SIZE_RELATIONS[kind] = dataclasses.replace(published[kind], **fields)
        yield
    finally:
        evolution.SIZE_RELATIONS.update(published)


def size_redshift_decomposition(n: int) -> None:
    """What flattens the flux-limited size-redshift Spearman: the relations' scatter or their
    mass slope (an i < 24.5 sample holds more massive, so larger, galaxies at high z)."""
    variants = {
        "published relations": {},
        "no intrinsic scatter": {"scatter": 0.0},
        "no mass dependence": {"slope": 0.0, "slope_low": 0.0},
        "neither": {"scatter": 0.0, "slope": 0.0, "slope_low": 0.0},
    }
    print(f"hsc-deep truth, {n} galaxies per variant (seed 1), Spearman(z, r_half_arcsec):")
    for label, fields in variants.items():
        with size_relations(early=fields, late=fields):
            cat = draw_evolving_population(n, seed=1, max_r_half=64 * 0.168 / 4)
        early = cat.early_type.to_numpy()
        rho = [spearmanr(cat.redshift[pick], cat.r_half_arcsec[pick]).statistic
               for pick in (slice(None), early, ~early)]
        print(f"  {label:22s} all {rho[0]:+.3f}   early {rho[1]:+.3f}   late {rho[2]:+.3f}")


def colour_track(survey: gw.data.Survey) -> None:
    cat = survey.catalog
    early = cat[cat.early_type]
    gi = early.mag_g - early.mag_i
    centres, medians, counts = [], [], []
    for lo, hi in itertools.pairwise(Z_EDGES):
        rows = early.redshift.between(lo, hi)
        if rows.sum() >= 5:
            centres.append((lo + hi) / 2)
            medians.append(float(np.median(gi[rows])))
            counts.append(int(rows.sum()))
    grid = np.linspace(0.05, 2.0, 200)
    tracks = {name: sed.kcorrection(t, "g", grid) - sed.kcorrection(t, "i", grid)
              for name, t in (("E", 0.0), ("E/Sbc 70/30 (S0 disk)", 0.3), ("Sbc", 1.0))}
    print("median g-i of early types (truth) per z bin against the E template:")
    for zc, m, k in zip(centres, medians, counts):
        e = float(sed.kcorrection(0.0, "g", zc) - sed.kcorrection(0.0, "i", zc))
        print(f"  z {zc:4.2f}: g-i {m:5.2f} (E template {e:5.2f}, n={k})")
    rising = np.all(np.diff(np.array(medians)[np.array(centres) < 0.9]) > 0)
    print(f"  rises monotonically up to z = 0.9: {rising}")

    fig, ax = plt.subplots(figsize=(6, 4))
    late = cat[~cat.early_type]
    ax.scatter(late.redshift, late.mag_g - late.mag_i, s=3, c="tab:blue", alpha=0.25, label="late types")
    ax.scatter(early.redshift, gi, s=5, c="tab:red", alpha=0.4, label="early types")
    for (name, track), style in zip(tracks.items(), ("k-", "k--", "k:")):
        ax.plot(grid, track, style, lw=1.2, label=f"{name} template")
    ax.plot(centres, medians, "o", mfc="gold", mec="k", ms=7, label="early types: median")
    for band in ("g", "r", "i"):  # redshift at which the 4000 Å break leaves each band
        x = sed.HSC_BAND_EDGES[band][1] / 400.0 - 1
        ax.axvline(x, color="grey", lw=0.6)
        ax.text(x + 0.01, -0.4, f"break leaves {band}", fontsize=6, color="grey", rotation=90, va="bottom")
    ax.set_xlabel("redshift")
    ax.set_ylabel("g - i (true, AB)")
    ax.set_xlim(0, 2.0)
    ax.set_ylim(-0.5, 4.2)
    ax.set_title("hsc-deep mock: colour-redshift tracks (4000 Å break)")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    FIGURE.parent.mkdir(exist_ok=True)
    fig.savefig(FIGURE, dpi=90)
    print(f"  figure: {FIGURE.relative_to(FIGURE.parents[1])}")


def gini_m20_regions(survey: gw.data.Survey, band: str) -> None:
    table = gw.metrics.gini_m20(survey, band=band, progress=False)
    cat = survey.catalog.join(table)
    ok = cat.gini.notna() & cat.m20.notna()
    (ms, mi), (bs, bi) = gw.metrics.LOTZ_2008["merger"], gw.metrics.LOTZ_2008["bulge"]
    cat["merger_region"] = cat.gini > ms * cat.m20 + mi
    cat["bulge_side"] = ~cat.merger_region & (cat.gini > bs * cat.m20 + bi)
    m = cat[ok]
    name = survey.meta["instrument"]
    print(f"{name}: {ok.mean():.1%} of {len(cat)} measured ({band} band); merger region "
          f"{m.merger_region.mean():.1%}; bulge side of the bulge/disk line {m.bulge_side.mean():.1%}; "
          f"Gini {m.gini.quantile(0.05):.2f}-{m.gini.quantile(0.95):.2f}, "
          f"M20 {m.m20.quantile(0.05):.2f} to {m.m20.quantile(0.95):.2f} (5-95 %)")
    by = m.groupby("morphology").agg(n=("gini", "size"), merger_region=("merger_region", "mean"))
    print("  in the merger region by truth morphology: "
          + ", ".join(f"{k} {r.merger_region:.0%} of {int(r.n)}" for k, r in by.iterrows()))
    top = m[m.merger_region].morphology.value_counts(normalize=True)
    print("  who is there: " + ", ".join(f"{k} {v:.0%}" for k, v in top.items()))


def detection(survey: gw.data.Survey) -> None:
    band = survey.band_index("i")
    x = survey.images[:, band].astype(np.float64)
    labels, central, sky = batched_central_segmaps(x, 1.5, 5)
    sigma = survey.meta["sky_sigma"]["i"]
    snr = np.zeros(len(x))
    for k in np.flatnonzero(central > 0):
        segment = labels[k] == central[k]
        snr[k] = (x[k] - sky[k])[segment].sum() / (sigma * np.sqrt(segment.sum()))
    print(f"hsc-deep detection in i: {(central > 0).mean():.1%} with a central segment, "
          f"{(snr > 10).mean():.1%} with S/N > 10 in it, median S/N {np.median(snr):.0f}")


def render_speed() -> None:
    for name in ("desi", "hsc-deep"):
        gw.data.simulate_survey(20, instrument=name, seed=99, n_jobs=1, progress=False)  # warm tables
        t0 = time.perf_counter()
        s = gw.data.simulate_survey(300, instrument=name, seed=5, n_jobs=1, progress=False)
        total = time.perf_counter() - t0
        t0 = time.perf_counter()
        gw.data.render_catalog(s.catalog, s.bands, 64, s.pixel_scale, s.zeropoint,
                               psf_profile=s.meta["psf_profile"], n_jobs=1, progress=False)
        render = time.perf_counter() - t0
        print(f"{name}: {1000 * render / 300:.1f} ms per galaxy to render {len(s.bands)} bands "
              f"({1000 * total / 300:.1f} ms with the catalogue and magnitudes), one process")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000, help="galaxies per preset for Gini-M20")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--sizes-only", action="store_true",
                        help="only the size-redshift Spearman and what flattens it (about 15 s)")
    args = parser.parse_args()
    size_redshift(5000)
    size_redshift_decomposition(10000)
    if args.sizes_only:
        return
    deep = gw.data.simulate_survey(args.n, instrument="hsc-deep", seed=18, n_jobs=args.jobs, progress=False)
    colour_track(deep)
    detection(deep)
    gini_m20_regions(deep, "i")
    desi = gw.data.simulate_survey(args.n, instrument="desi", seed=18, n_jobs=args.jobs, progress=False)
    gini_m20_regions(desi, "r")
    render_speed()


if __name__ == "__main__":
    main()
