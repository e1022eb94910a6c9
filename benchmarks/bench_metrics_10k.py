"""Wall time of each metric on a 10,000-galaxy evaluation (2 populations of 64x64 g r z stamps).

Generated galaxies are stood in for by a second mock survey. Per-stamp fits (isophotal shapes,
the Sérsic fit loss) run with 2 worker processes; statmorph's full table is extrapolated from
``bench_morphology.py`` rather than run here (about 0.19 CPU-s per stamp).

    python benchmarks/bench_metrics_10k.py [--n 10000] [--workers 2]
"""

from __future__ import annotations

import argparse
import time
import warnings

import galwidgets as gw


def timed(label: str, func, results: list) -> object:
    t0 = time.perf_counter()
    value = func()
    results.append((label, time.perf_counter() - t0))
    print(f"{label:<58} {results[-1][1]:8.1f} s", flush=True)
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="galaxies per population")
    parser.add_argument("--workers", type=int, default=2, help="processes for per-stamp fits")
    args = parser.parse_args()
    warnings.simplefilter("ignore", UserWarning)  # dropped-galaxy notes of the Fréchet features
    results: list = []
    print(f"command: python benchmarks/bench_metrics_10k.py --n {args.n} --workers {args.workers}")
    real = timed("simulate_survey (reference)", lambda: gw.data.simulate_survey(
        args.n, seed=0, progress=False), results)
    fake = timed("simulate_survey (stand-in for generated)", lambda: gw.data.simulate_survey(
        args.n, seed=1, progress=False), results)
    m = gw.metrics
    pr = timed("photometry (reference)", lambda: m.photometry(real), results)
    pf = timed("photometry (generated)", lambda: m.photometry(fake), results)
    timed("synthetic_galaxy_distance, tables in", lambda: m.synthetic_galaxy_distance(pf, pr), results)
    timed("synthetic_galaxy_distance, 100 bootstrap resamplings",
          lambda: m.synthetic_galaxy_distance(pf, pr, bootstrap=100), results)
    timed("synthetic_galaxy_distance, smith2022, images in",
          lambda: m.synthetic_galaxy_distance(fake, real, convention="smith2022"), results)
    timed("gini_m20 (one population)", lambda: m.gini_m20(real, progress=False), results)
    timed("frechet_morphology_distance, images in",
          lambda: m.frechet_morphology_distance(fake, real), results)
    timed("ssim (generated vs reference, paired)", lambda: m.ssim(fake, real), results)
    timed(f"isophotal_shapes ({args.workers} workers)",
          lambda: m.isophotal_shapes(real, n_jobs=args.workers, progress=False), results)
    timed(f"galaxy_fitting_loss, Sérsic fits ({args.workers} workers)",
          lambda: m.galaxy_fitting_loss(real, n_jobs=args.workers, progress=False), results)
    timed("nearest_neighbours (generated in reference, pixels)",
          lambda: m.nearest_neighbours(fake, real, progress=False), results)


if __name__ == "__main__":
    main()
