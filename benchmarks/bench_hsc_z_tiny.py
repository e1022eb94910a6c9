"""Does `hsc-z-tiny` make galaxies that evolve with redshift like the `hsc-deep` mock? (issue 18)

For each of z = 0.25, 0.75, 1.25, 2.0, 2.75 it draws ``n`` galaxies from the model conditioned on z
and simulates ``n`` mock galaxies at that z, measures both with the project's photometry (aperture
magnitudes, half-light radius from the i-band curve of growth) and prints

* Spearman's rank correlation of z with r_half over all galaxies, model against mock (bar: within
  0.15 of each other);
* the median i-band magnitude and g − i colour at each z, model against mock (bar: within 0.3 mag);

and writes a grid of samples by redshift (rows: z; left half mock, right half model)::

    python benchmarks/bench_hsc_z_tiny.py                       # the shipped model
    python benchmarks/bench_hsc_z_tiny.py --checkpoint run.safetensors --n 64 --steps 50
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

import galwidgets as gw

REDSHIFTS = (0.25, 0.75, 1.25, 2.0, 2.75)
APERTURE = 8.0  # px: 1.3" at 0.168"/px, about twice the seeing FWHM


def measure(survey: gw.data.Survey) -> pd.DataFrame:
    table = gw.metrics.photometry(survey, aperture_radius=APERTURE, r_half_band="i")
    table["g-i"] = table["mag_g"] - table["mag_i"]
    return table


def draw(ckpt: gw.Checkpoint, n: int, z: float, args: argparse.Namespace, k: int) -> gw.data.Survey:
    kwargs = {"sampler": args.sampler, "steps": args.steps, "guidance": args.guidance}
    return ckpt.sample(n, cond=np.full(n, z), seed=args.seed + k, progress=False, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="hsc-z-tiny", help="shipped name or .safetensors path")
    parser.add_argument("--n", type=int, default=64, help="galaxies per redshift and set")
    parser.add_argument("--sampler", default="ddim")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--guidance", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", default="docs/hsc-z-tiny-samples.jpg", help="sample grid ('' for none)")
    parser.add_argument("--json", default="", help="also write the numbers here")
    args = parser.parse_args()
    torch.set_num_threads(2)
    path = Path(args.checkpoint)
    ckpt = gw.load_checkpoint(path, device="cpu") if path.suffix == ".safetensors" else \
        gw.pretrained.load(args.checkpoint, device="cpu")
    t0 = time.perf_counter()
    mocks, models, rows = [], [], []
    for k, z in enumerate(REDSHIFTS):
        mock = gw.data.simulate_survey(args.n, instrument="hsc-deep", redshift=np.full(args.n, z),
                                       seed=7000 + k, progress=False)
        model = draw(ckpt, args.n, z, args, k)
        mocks.append(mock)
        models.append(model)
        m, g = measure(mock), measure(model)
        rows.append({"z": z, "mag_i mock": np.nanmedian(m["mag_i"]), "mag_i model": np.nanmedian(g["mag_i"]),
                     "g-i mock": np.nanmedian(m["g-i"]), "g-i model": np.nanmedian(g["g-i"]),
                     "r_half mock": np.nanmedian(m["r_half"]), "r_half model": np.nanmedian(g["r_half"]),
                     "_m": m, "_g": g})
    table = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows])
    table["d mag_i"] = table["mag_i model"] - table["mag_i mock"]
    table["d g-i"] = table["g-i model"] - table["g-i mock"]
    z_all = np.repeat(REDSHIFTS, args.n)
    rho = {}
    for name, key in (("mock", "_m"), ("model", "_g")):
        r_half = np.concatenate([r[key]["r_half"].to_numpy() for r in rows])
        ok = np.isfinite(r_half)
        rho[name] = float(spearmanr(z_all[ok], r_half[ok]).statistic)
    print(f"{args.checkpoint}: {args.n} galaxies per z, {args.sampler} {args.steps} steps, "
          f"guidance {args.guidance}, {time.perf_counter() - t0:.0f} s")
    print(table.round(3).to_string(index=False))
    print(f"Spearman(z, r_half): mock {rho['mock']:+.3f}, model {rho['model']:+.3f}, "
          f"difference {abs(rho['mock'] - rho['model']):.3f} (bar 0.15)")
    worst_mag, worst_col = table["d mag_i"].abs().max(), table["d g-i"].abs().max()
    print(f"largest |d median i| {worst_mag:.3f} mag, largest |d median g-i| {worst_col:.3f} mag (bar 0.3)")
    ok = abs(rho["mock"] - rho["model"]) <= 0.15 and worst_mag <= 0.3 and worst_col <= 0.3
    print("acceptance:", "met" if ok else "NOT met")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": table.to_dict("records"), "spearman": rho}, indent=1))
    if args.grid:
        per_row = 6
        images = np.concatenate([np.concatenate([mk.images[:per_row], md.images[:per_row]])
                                 for mk, md in zip(mocks, models)])
        titles = [f"z = {z} mock" if j == 0 else "model" if j == per_row else ""
                  for z in REDSHIFTS for j in range(2 * per_row)]
        fig = gw.viz.image_grid(images, ckpt.bands, ncols=2 * per_row, titles=titles,
                                suptitle="hsc-deep mock (left 6) and the model (right 6) at each redshift")
        fig.savefig(args.grid, dpi=80, bbox_inches="tight", pil_kwargs={"quality": 85})
        print("wrote", args.grid)


if __name__ == "__main__":
    main()
