"""Time gw.metrics.photometry against photutils' aperture_photometry (the peer) in one process.

The peer is what an astronomer would write by hand: ``aperture_photometry`` on every image and
band. galwidgets builds each photutils aperture mask once and applies it to the whole batch; it
also measures the curve of growth for r_half, which the peer does not. Both give the same fluxes.

    python benchmarks/bench_photometry.py [--n 2000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from photutils.aperture import CircularAperture, aperture_photometry

import galwidgets as gw


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000, help="galaxies (64x64, g r z)")
    args = parser.parse_args()
    survey = gw.data.simulate_survey(args.n, seed=0, progress=False)
    images = survey.images.astype(np.float64)

    t0 = time.perf_counter()
    ours = gw.metrics.photometry(survey, background_method=None)
    t_ours = time.perf_counter() - t0

    aperture = CircularAperture((31.5, 31.5), r=6.0)
    t0 = time.perf_counter()
    peer = np.array([[aperture_photometry(img, aperture, method="exact")["aperture_sum"][0]
                      for img in galaxy] for galaxy in images])
    t_peer = time.perf_counter() - t0

    diff = np.abs(ours[["flux_g", "flux_r", "flux_z"]].to_numpy() - peer).max()
    print(f"galaxies: {args.n} (64x64, 3 bands)")
    print(f"galwidgets photometry (apertures + curve of growth): {t_ours:.2f} s")
    print(f"photutils aperture_photometry per image and band:   {t_peer:.2f} s")
    print(f"speed-up: {t_peer / t_ours:.1f}x; max |flux difference|: {diff:.2e} nanomaggies")


if __name__ == "__main__":
    main()
