"""Mock-survey throughput: galaxies per second per core, against a bare GalSim loop (the peer).

The peer renders the same bulge + disk galaxies with GalSim directly (3 bands, 64x64, Moffat PSF,
no arms, clumps, catalog or noise); galwidgets draws the population (cosmology, selection), adds
arms and clumps to late types, renders, adds noise and builds the Survey.

    python benchmarks/bench_simulate.py [--n 1000]
"""

from __future__ import annotations

import argparse
import time

import galsim

import galwidgets as gw
from galwidgets.data.render import GSPARAMS


def bare_galsim(catalog, bands=("g", "r", "z")) -> None:
    for row in catalog.itertuples(index=False):
        angle = row.position_angle * galsim.degrees
        galaxy = galsim.Add([
            galsim.Sersic(n=row.sersic_n, half_light_radius=row.r_bulge_arcsec, flux=row.bulge_fraction,
                         gsparams=GSPARAMS)
            .shear(q=row.bulge_axis_ratio, beta=angle),
            galsim.Exponential(half_light_radius=row.r_disk_arcsec, flux=1 - row.bulge_fraction,
                               gsparams=GSPARAMS)
            .shear(q=row.axis_ratio, beta=angle),
        ])
        for band in bands:
            psf = galsim.Moffat(beta=3.5, fwhm=getattr(row, f"psf_fwhm_{band}"), gsparams=GSPARAMS)
            galsim.Convolve(galaxy, psf).drawImage(nx=64, ny=64, scale=0.262)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    gw.data.simulate_survey(100, seed=99, n_jobs=1, progress=False)  # warm GalSim's Sérsic tables

    t0, c0 = time.perf_counter(), time.process_time()
    survey = gw.data.simulate_survey(args.n, seed=1, n_jobs=1, progress=False)
    wall1, cpu1 = time.perf_counter() - t0, time.process_time() - c0

    t0 = time.perf_counter()
    gw.data.simulate_survey(args.n, seed=1, n_jobs=2, progress=False)
    wall2 = time.perf_counter() - t0

    c0 = time.process_time()
    bare_galsim(survey.catalog)
    cpu_peer = time.process_time() - c0

    late = (survey.catalog.has_arms | (survey.catalog.n_clumps > 0)).mean()
    print(f"{args.n} galaxies, 3 bands, 64x64 ({late:.0%} late types with arms/clumps)")
    print(f"galwidgets, 1 process : {args.n / cpu1:6.0f} galaxies / CPU-second ({wall1:.1f} s wall)")
    print(f"galwidgets, 2 processes: {args.n / wall2:6.0f} galaxies / wall-second ({wall2:.1f} s wall)")
    print(f"bare GalSim bulge+disk : {args.n / cpu_peer:6.0f} galaxies / CPU-second")
    print(f"galwidgets / bare GalSim time ratio: {cpu1 / cpu_peer:.2f}")


if __name__ == "__main__":
    main()
