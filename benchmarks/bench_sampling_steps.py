"""Sampling time and Synthetic Galaxy Distance of the shipped model against the DDIM step count.

Draws 64 galaxies at each step count (same seed) and compares them with 128 mock galaxies; the
split-half baseline of those 128 is the best any model can do.

    python benchmarks/bench_sampling_steps.py [--steps 5 10 25 50 100]
"""

from __future__ import annotations

import argparse
import time

import galwidgets as gw


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, nargs="+", default=[5, 10, 25, 50, 100])
    parser.add_argument("--n", type=int, default=64, help="generated galaxies per step count")
    args = parser.parse_args()
    mock = gw.data.simulate_survey(2 * args.n, seed=1, progress=False)
    ckpt = gw.pretrained.load("desi-tiny")
    baseline = gw.metrics.split_half_baseline(mock)["total"]
    print(f"split-half baseline SGD of {len(mock)} mock galaxies: {baseline:.3f}")
    print("steps  seconds  SGD total")
    for steps in args.steps:
        t0 = time.perf_counter()
        generated = ckpt.sample(args.n, steps=steps, seed=0, progress=False)
        seconds = time.perf_counter() - t0
        sgd = gw.metrics.synthetic_galaxy_distance(generated, mock)["total"]
        print(f"{steps:5d}  {seconds:7.1f}  {sgd:9.3f}")


if __name__ == "__main__":
    main()
