"""Shipped ``desi-tiny`` against another checkpoint (e.g. the previous one), on today's default mock.

Draws ``--n`` galaxies per seed from each checkpoint with the default sampler and compares them
with ``--n`` held-out galaxies of ``simulate_survey(seed=2026)`` (the default population: mergers,
clumpy irregulars and edge-on disks included) by the Synthetic Galaxy Distance, the Fréchet
morphology distance and the share of galaxies above the Lotz et al. (2008) merger line of the r-band
Gini-M20 plane (and on the bulge side of the bulge/disk line). A second held-out set (seed 2027)
gives the floor: what two independent mock samples of the same size score.

    python benchmarks/bench_desi_tiny.py --other old_desi_tiny.safetensors [--n 512 --seeds 0 1 2]

where ``old_desi_tiny.safetensors`` is e.g. ``git show <rev>:galwidgets/pretrained/desi_tiny.safetensors``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

import galwidgets as gw
from galwidgets.widgets.morphology import lotz_2008_class

HELD_OUT_SEEDS = (2026, 2027)


def regions(survey: gw.data.Survey) -> dict[str, float]:
    """Shares of measured galaxies in the merger region and on the bulge side (r band)."""
    table = gw.metrics.gini_m20(survey, band="r", progress=False)
    region = lotz_2008_class(table.gini, table.m20)
    measured = region[region != ""]
    return {"merger_region": float(np.mean(measured == "merger")),
            "bulge_side": float(np.mean(measured == "E/S0/Sa")), "measured": float(np.mean(region != ""))}


def scores(survey: gw.data.Survey, reference: gw.data.Survey) -> dict[str, float]:
    return {"sgd": gw.metrics.synthetic_galaxy_distance(survey, reference)["total"],
            "fmd": gw.metrics.frechet_morphology_distance(survey, reference), **regions(survey)}


def mean_sd(row: pd.Series, key: str) -> str:
    sd = row[f"{key}_sd"]
    return f"{row[key]:.3f}" + ("" if np.isnan(sd) else f" ± {sd:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--other", help="a second checkpoint file to score beside the shipped one")
    parser.add_argument("--n", type=int, default=512)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    shipped = gw.pretrained.load("desi-tiny", device="cpu")
    models = {"shipped desi-tiny": shipped}
    if args.other:
        models[f"other ({args.other})"] = gw.checkpoints.load_checkpoint(args.other, device="cpu")
    held_out, second = (gw.data.simulate_survey(args.n, size=shipped.size, bands=shipped.bands,
                                                pixel_scale=shipped.pixel_scale, seed=s, progress=False)
                        for s in HELD_OUT_SEEDS)
    rows = [{"set": f"mock, seed {HELD_OUT_SEEDS[1]} (the floor)", "seed": -1, **scores(second, held_out)}]
    print(f"held-out: {args.n} galaxies; a second mock sample: merger region {rows[0]['merger_region']:.1%}, "
          f"bulge side {rows[0]['bulge_side']:.1%}; floor SGD {rows[0]['sgd']:.3f}, FMD {rows[0]['fmd']:.3f}")
    for name, ckpt in models.items():
        for seed in args.seeds:
            t0 = time.perf_counter()
            generated = ckpt.sample(args.n, seed=seed, progress=False)
            row = {"set": name, "seed": seed, **scores(generated, held_out),
                   "seconds": time.perf_counter() - t0}
            rows.append(row)
            print(f"{name} seed {seed}: SGD {row['sgd']:.3f}, FMD {row['fmd']:.3f}, merger region "
                  f"{row['merger_region']:.1%}, bulge side {row['bulge_side']:.1%} ({row['seconds']:.0f} s)",
                  flush=True)
    table = pd.DataFrame(rows).groupby("set", sort=False)[["sgd", "fmd", "merger_region", "bulge_side"]]
    summary = table.mean().join(table.std().add_suffix("_sd"))
    print("\n| set | SGD | Fréchet morphology | merger region | bulge side |\n|---|---|---|---|---|")
    for name, r in summary.iterrows():
        print(f"| {name} | {mean_sd(r, 'sgd')} | {mean_sd(r, 'fmd')} | {r.merger_region:.1%} | "
              f"{r.bulge_side:.1%} |")


if __name__ == "__main__":
    main()
