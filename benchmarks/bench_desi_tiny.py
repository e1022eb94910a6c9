"""Shipped ``desi-tiny`` or ``desi-z-tiny`` against another checkpoint (e.g. the previous one), today's mock.

Draws ``--n`` galaxies per seed from each checkpoint with the default sampler (a redshift-conditioned
model at the held-out galaxies' redshifts, guidance 1) and compares them
with ``--n`` held-out galaxies of ``simulate_survey(seed=2026)`` (the default population: mergers,
clumpy irregulars and edge-on disks included) by the Synthetic Galaxy Distance, the Fréchet
morphology distance and the share of galaxies above the Lotz et al. (2008) merger line of the r-band
Gini-M20 plane (and on the bulge side of the bulge/disk line). A second held-out set (seed 2027)
gives the floor: what two independent mock samples of the same size score. For a conditional model
the Spearman correlation of redshift and measured half-light radius (r band, the project's
``photometry`` curve of growth) is printed beside that of the held-out set.

    python benchmarks/bench_desi_tiny.py --other old_desi_tiny.safetensors [--n 512 --seeds 0 1 2]
    python benchmarks/bench_desi_tiny.py --model desi-z-tiny --other old_desi_z_tiny.safetensors

where ``old_desi_tiny.safetensors`` is e.g. ``git show <rev>:galwidgets/pretrained/desi_tiny.safetensors``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

import galwidgets as gw
from galwidgets.widgets.morphology import lotz_2008_class

HELD_OUT_SEEDS = (2026, 2027)


def measure(survey: gw.data.Survey) -> dict[str, pd.DataFrame]:
    """Photometry and r-band Gini-M20 of every galaxy, measured once per set."""
    phot = gw.metrics.photometry(survey)
    morph = gw.metrics.gini_m20(survey, band="r", progress=False)
    return {"photometry": phot, "gini_m20": morph,
            "features": gw.metrics.morphology_feature_table(phot, morph)}


def regions(gini_m20: pd.DataFrame) -> dict[str, float]:
    """Shares of measured galaxies in the merger region and on the bulge side."""
    region = lotz_2008_class(gini_m20.gini, gini_m20.m20)
    measured = region[region != ""]
    return {"merger_region": float(np.mean(measured == "merger")),
            "bulge_side": float(np.mean(measured == "E/S0/Sa")), "measured": float(np.mean(region != ""))}


def size_redshift(photometry: pd.DataFrame, redshift: np.ndarray) -> float:
    """Spearman ρ of redshift and the measured half-light radius (galaxies whose radius was measured)."""
    r_half = photometry.r_half.to_numpy()
    ok = np.isfinite(r_half)
    return float(spearmanr(redshift[ok], r_half[ok]).statistic)


def scores(survey: dict[str, pd.DataFrame], reference: dict[str, pd.DataFrame],
           redshift: np.ndarray | None) -> dict[str, float]:
    """SGD, Fréchet morphology distance and Lotz shares of a measured set against the reference."""
    sgd = gw.metrics.synthetic_galaxy_distance(survey["photometry"], reference["photometry"])
    row = {"sgd": sgd["total"],
           "fmd": gw.metrics.frechet_morphology_distance(survey["features"], reference["features"]),
           **regions(survey["gini_m20"])}
    if redshift is not None:
        row["rho_z_rhalf"] = size_redshift(survey["photometry"], redshift)
    return row


def mean_sd(row: pd.Series, key: str) -> str:
    sd = row[f"{key}_sd"]
    return f"{row[key]:.3f}" + ("" if np.isnan(sd) else f" ± {sd:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="desi-tiny", choices=["desi-tiny", "desi-z-tiny"])
    parser.add_argument("--other", help="a second checkpoint file to score beside the shipped one")
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    shipped = gw.pretrained.load(args.model, device="cpu")
    models = {f"shipped {args.model}": shipped}
    if args.other:
        models[f"other ({args.other})"] = gw.checkpoints.load_checkpoint(args.other, device="cpu")
    held_out, second = (gw.data.simulate_survey(args.n, size=shipped.size, bands=shipped.bands,
                                                pixel_scale=shipped.pixel_scale, seed=s, progress=False)
                        for s in HELD_OUT_SEEDS)
    conditional = shipped.model.cond_dim > 0
    z_held, z_second = ((s.catalog.redshift.to_numpy() if conditional else None) for s in (held_out, second))
    reference = measure(held_out)
    floor = f"mock, seed {HELD_OUT_SEEDS[1]} (the floor)"
    rows = [{"set": floor, "seed": -1, **scores(measure(second), reference, z_second)}]
    if conditional:
        rho_held = size_redshift(reference["photometry"], z_held)
        print(f"held-out size-redshift Spearman {rho_held:+.3f}, second sample {rows[0]['rho_z_rhalf']:+.3f}")
    print(f"held-out: {args.n} galaxies; a second mock sample: merger region {rows[0]['merger_region']:.1%}, "
          f"bulge side {rows[0]['bulge_side']:.1%}; floor SGD {rows[0]['sgd']:.3f}, FMD {rows[0]['fmd']:.3f}")
    for name, ckpt in models.items():
        for seed in args.seeds:
            t0 = time.perf_counter()
            generated = ckpt.sample(args.n, seed=seed, cond=z_held, progress=False)
            row = {"set": name, "seed": seed, **scores(measure(generated), reference, z_held),
                   "seconds": time.perf_counter() - t0}
            rows.append(row)
            rho = f", Spearman {row['rho_z_rhalf']:+.3f}" if conditional else ""
            print(f"{name} seed {seed}: SGD {row['sgd']:.3f}, FMD {row['fmd']:.3f}, merger region "
                  f"{row['merger_region']:.1%}, bulge side {row['bulge_side']:.1%}{rho} "
                  f"({row['seconds']:.0f} s)", flush=True)
    columns = ["sgd", "fmd", "merger_region", "bulge_side"] + (["rho_z_rhalf"] if conditional else [])
    table = pd.DataFrame(rows).groupby("set", sort=False)[columns]
    summary = table.mean().join(table.std().add_suffix("_sd"))
    extra = (" Spearman(z, r_half) |", "---|") if conditional else ("", "")
    print(f"\n| set | SGD | Fréchet morphology | merger region | bulge side |{extra[0]}")
    print(f"|---|---|---|---|---|{extra[1]}")
    for name, r in summary.iterrows():
        print(f"| {name} | {mean_sd(r, 'sgd')} | {mean_sd(r, 'fmd')} | {r.merger_region:.1%} | "
              f"{r.bulge_side:.1%} |" + (f" {r.rho_z_rhalf:+.3f} |" if conditional else ""))


if __name__ == "__main__":
    main()
