"""Time gw.metrics.gini_m20 (batched) against statmorph (the peer) in one process, and compare values.

The peer is ``gw.metrics.morphology(..., n_jobs=1)``: statmorph's ``SourceMorphology`` on every
stamp with a photutils segmentation (detection + deblending), without the Sérsic fit, which Gini
and M20 do not need. galwidgets' ``gini_m20`` follows statmorph's Gini/M20 recipe on the whole batch
at once (see the module docstring of ``galwidgets.metrics.nonparametric`` for its approximations).
Agreement is measured over the galaxies both measure; edge-touching galaxies are included
(``keep_edge=True``) because statmorph measures them too.

    python benchmarks/bench_morphology.py [--n 500] [--n-large 10000] [--speedup-n 40] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time

import statmorph

import galwidgets as gw


def agreement(fast, peer) -> dict[str, float]:
    """Median and 90th percentile of |difference| over galaxies with both values."""
    both = fast.gini.notna() & peer.gini.notna() & fast.m20.notna() & peer.m20.notna()
    dg = (fast.gini - peer.gini)[both].abs()
    dm = (fast.m20 - peer.m20)[both].abs()
    return {"n": int(both.sum()), "dg50": dg.median(), "dg90": dg.quantile(0.9),
            "dm50": dm.median(), "dm90": dm.quantile(0.9)}


def timed(func, *args, **kwargs):
    t0 = time.perf_counter()
    out = func(*args, **kwargs)
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500, help="galaxies for statmorph vs fast (64x64, g r z)")
    parser.add_argument("--n-large", type=int, default=10_000,
                        help="galaxies for the fast path alone (0: skip)")
    parser.add_argument("--speedup-n", type=int, default=200,
                        help="galaxies for statmorph with 1 vs 2 workers (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="--n 60 --n-large 2000 --speedup-n 0")
    args = parser.parse_args()
    if args.quick:
        args.n, args.n_large, args.speedup_n = 60, 2000, 0

    survey = gw.data.simulate_survey(args.n, size=64, seed=args.seed, progress=False)
    gw.metrics.gini_m20(survey.images[:8], progress=False)  # imports and first-call set-up
    peer, t_peer = timed(gw.metrics.morphology, survey, band="r", n_jobs=1, progress=False,
                         include_sersic=False)
    fast, t_fast = timed(gw.metrics.gini_m20, survey, band="r", keep_edge=True, progress=False)
    deb, t_deb = timed(gw.metrics.gini_m20, survey, band="r", keep_edge=True, deblend=True, progress=False)

    print("command: python " + " ".join(sys.argv))
    print(f"galaxies: {args.n} mock 64x64 (seed {args.seed}), r band; "
          f"statmorph {statmorph.__version__}")
    print(f"{'method':<44}{'time (s)':>9}{'ms/gal':>8}{'speed-up':>9}"
          f"{'n':>6}{'|dG| 50%':>9}{'90%':>7}{'|dM20| 50%':>11}{'90%':>7}")
    rows = [("statmorph via gw.metrics.morphology (1 worker)", t_peer, None),
            ("gw.metrics.gini_m20 (batched detection)", t_fast, agreement(fast, peer)),
            ("gw.metrics.gini_m20 (deblend=True)", t_deb, agreement(deb, peer))]
    for name, t, agree in rows:
        line = f"{name:<44}{t:>9.2f}{1e3 * t / args.n:>8.2f}{t_peer / t:>8.1f}x"
        if agree:
            line += (f"{agree['n']:>6}{agree['dg50']:>9.4f}{agree['dg90']:>7.4f}"
                     f"{agree['dm50']:>11.4f}{agree['dm90']:>7.4f}")
        print(line)

    if args.n_large:
        big, t_sim = timed(gw.data.simulate_survey, args.n_large, size=64, bands=("r",),
                           seed=args.seed + 1, progress=False)
        table, t_big = timed(gw.metrics.gini_m20, big, band="r", progress=False)
        ok = int(table.gini.notna().sum())
        print(f"fast path on {args.n_large} galaxies: {t_big:.1f} s "
              f"({1e3 * t_big / args.n_large:.2f} ms/galaxy, {ok} measured; "
              f"simulating them took {t_sim:.0f} s)")

    if args.speedup_n:
        sub = survey.images[: args.speedup_n]
        kwargs = dict(band="r", bands=survey.bands, progress=False, include_sersic=False)
        _, t1 = timed(gw.metrics.morphology, sub, n_jobs=1, **kwargs)
        _, t2 = timed(gw.metrics.morphology, sub, n_jobs=2, **kwargs)
        print(f"statmorph on {args.speedup_n} galaxies: 1 worker {t1:.1f} s, 2 workers {t2:.1f} s "
              f"(speed-up {t1 / t2:.2f}x, including worker start-up)")


if __name__ == "__main__":
    main()
