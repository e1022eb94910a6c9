"""Redshift-loss acceptance at the published range (Li et al. 2024): the estimator, then a conditional DDPM.

1. Trains :class:`galwidgets.models.RedshiftEstimator` on ``simulate_survey(n_train,
   instrument="hsc-deep")`` (HSC g r i z y, 0.05 < z < 3, i < 24.5) and scores it with the redshift
   loss of Nishizawa et al. (2020) on held-out mock galaxies, against always guessing the median
   training redshift. Acceptance: loss at most 0.6 times the constant guess's.
2. When the conditional DDPM (``--checkpoint``, default the shipped ``hsc-z-tiny``) is installed,
   draws ``--n-samples`` galaxies conditioned on the redshifts of held-out mock galaxies and scores
   them with the same estimator against the redshifts they were generated at. Acceptance: loss at
   most 1.5 times the estimator's loss on those same mock galaxies.

    python benchmarks/bench_redshift_loss.py [--steps 2000] [--checkpoint hsc-z-tiny] [--guidance G]
        [--save-estimator F] [--n-samples 256] [--draws 1]

The estimator it saves (``--save-estimator``) can be passed to ``notebooks/conditional.ipynb`` as
``estimator_checkpoint``.
"""

from __future__ import annotations

import argparse
import itertools
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

import galwidgets as gw

#: Redshift bins of Li et al. (2024).
EDGES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


def _load(name: str) -> tuple[gw.Checkpoint | None, str]:
    """The conditional DDPM ``name`` (shipped name or .safetensors path), or None and why not."""
    if name.endswith(".safetensors"):
        return (gw.load_checkpoint(name), name) if Path(name).is_file() else (None, f"no file {name}")
    try:
        return gw.pretrained.load(name), f"shipped {name!r}"
    except (FileNotFoundError, ValueError) as error:
        return None, f"{type(error).__name__}: {error}"


def _per_bin(z_est: np.ndarray, z: np.ndarray) -> str:
    """Redshift loss in each of Li et al.'s redshift bins, as text."""
    which = np.clip(np.searchsorted(EDGES, z, side="right") - 1, 0, len(EDGES) - 2)
    parts = []
    for j, (lo, hi) in enumerate(itertools.pairwise(EDGES)):
        pick = which == j
        value = f"{gw.metrics.redshift_loss(z_est[pick], z[pick]):.3f}" if pick.any() else "-"
        parts.append(f"{lo:g}-{hi:g}: {value} ({pick.sum()})")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=3000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--train-seed", type=int, default=1)
    parser.add_argument("--test-seed", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--base-channels", type=int, default=16)
    parser.add_argument("--checkpoint", default="hsc-z-tiny",
                        help="conditional DDPM: shipped name or .safetensors path ('' to skip part 2)")
    parser.add_argument("--n-samples", type=int, default=256)
    parser.add_argument("--draws", type=int, default=1,
                        help="independent draws of the samples (seeds 0, 1, ...): the ratio's scatter")
    parser.add_argument("--sampler", default="ddim")
    parser.add_argument("--sample-steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, default=None,
                        help="classifier-free guidance scale; default the model's own")
    parser.add_argument("--save-estimator", default="", help="write the trained estimator here")
    parser.add_argument("--estimator", default="", help="a saved estimator to use instead of training one")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-jobs", type=int, default=1, help="processes for simulating the mock galaxies")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))

    t0 = time.perf_counter()
    like = {"size": 64, "instrument": "hsc-deep", "progress": False, "n_jobs": args.n_jobs}
    train = gw.data.simulate_survey(args.n_train, seed=args.train_seed, **like)
    test = gw.data.simulate_survey(args.n_test, seed=args.test_seed, **like)
    print(f"simulated {len(train)} + {len(test)} hsc-deep galaxies in {time.perf_counter() - t0:.0f} s")

    if args.estimator:
        estimator = gw.load_checkpoint(args.estimator)
        print(f"estimator loaded from {args.estimator} ({estimator.config['data'].get('n_train')} training "
              f"galaxies, step {estimator.config.get('step')})")
    else:
        torch.manual_seed(0)
        model = gw.models.RedshiftEstimator(in_channels=len(train.bands), base_channels=args.base_channels)
        t0 = time.perf_counter()
        estimator = gw.models.train_redshift_estimator(model, train, args.steps, args.batch_size, lr=args.lr,
                                                       device="cpu", seed=0, progress=False)
        seconds = time.perf_counter() - t0
        print(f"trained {args.steps} steps x {args.batch_size} ({args.threads} threads) in {seconds:.0f} s "
              f"({1000 * seconds / args.steps:.0f} ms/step); final training MSE in log(1+z) "
              f"{estimator.history['loss'].tail(100).mean():.3e}")
    if args.save_estimator and not args.estimator:
        estimator.save(args.save_estimator)
        print(f"saved the estimator to {args.save_estimator}")

    z_true = test.catalog["redshift"].to_numpy()
    z_est = gw.models.predict_redshift(estimator, test)
    loss = gw.metrics.redshift_loss(z_est, z_true)
    guess = gw.metrics.redshift_loss(np.full_like(z_true, np.median(train.catalog["redshift"])), z_true)
    dz = (z_est - z_true) / (1 + z_true)
    nmad = 1.4826 * np.median(np.abs(dz - np.median(dz)))
    outliers = np.mean(np.abs(dz) > 0.15)
    print(f"held-out redshifts {z_true.min():.2f}-{z_true.max():.2f} (median {np.median(z_true):.2f})")
    print(f"redshift loss (gamma 0.15) on {len(test)} held-out mock galaxies: {loss:.4f}; constant median "
          f"guess {guess:.4f}; ratio {loss / guess:.3f}; sigma_NMAD {nmad:.3f}, bias {np.median(dz):+.3f}, "
          f"outliers (|dz| > 0.15) {100 * outliers:.1f} %")
    print(f"  per redshift bin: {_per_bin(z_est, z_true)}")
    print(f"acceptance 1 (loss <= 0.6 x constant guess): {'PASS' if loss <= 0.6 * guess else 'FAIL'}")

    if not args.checkpoint:
        return
    ddpm, source = _load(args.checkpoint)
    if ddpm is None:
        print(f"acceptance 2 not measured: the conditional DDPM {args.checkpoint!r} is not installed "
              f"({source})")
        return
    if list(ddpm.bands) != list(test.bands) or ddpm.size != 64:
        raise SystemExit(f"checkpoint: expected a 64x64 {''.join(test.bands)} model, got "
                         f"{ddpm.size}x{ddpm.size} {''.join(ddpm.bands)}")
    n = min(args.n_samples, len(test))
    z_cond = z_true[:n]  # the held-out galaxies' own redshifts: a paired comparison
    loss_mock = gw.metrics.redshift_loss(z_est[:n], z_cond)
    ratios = []
    for seed in range(args.draws):
        t0 = time.perf_counter()
        samples = ddpm.sample(n, sampler=args.sampler, steps=args.sample_steps, seed=seed, cond=z_cond,
                              guidance=args.guidance, progress=False)
        seconds = time.perf_counter() - t0
        z_gen = gw.models.predict_redshift(estimator, samples)
        loss_gen = gw.metrics.redshift_loss(z_gen, z_cond)
        ratios.append(loss_gen / loss_mock)
        print(f"{source}: {n} galaxies at the held-out redshifts, {args.sampler} {args.sample_steps} steps, "
              f"guidance {samples.meta['guidance']:g}, seed {seed}, {seconds:.0f} s")
        print(f"redshift loss on its samples {loss_gen:.4f}; on the {n} mock galaxies at the same redshifts "
              f"{loss_mock:.4f}; ratio {ratios[-1]:.3f}")
        print(f"  per redshift bin (samples): {_per_bin(z_gen, z_cond)}")
    ratio = float(np.mean(ratios))
    if args.draws > 1:
        print(f"ratio over {args.draws} draws: mean {ratio:.3f}, std {np.std(ratios, ddof=1):.3f}, "
              f"min {min(ratios):.3f}, max {max(ratios):.3f}")
    print(f"acceptance 2 (samples <= 1.5 x mock images{', mean over the draws' if args.draws > 1 else ''}): "
          f"{'PASS' if ratio <= 1.5 else 'FAIL'}")


if __name__ == "__main__":
    main()
