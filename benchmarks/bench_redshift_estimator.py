"""Acceptance of the CNN redshift estimator: redshift loss on held-out mock galaxies.

Trains :class:`galwidgets.models.RedshiftEstimator` on ``simulate_survey(n_train, seed=train_seed)``
and scores it with the redshift loss of Nishizawa et al. (2020) on galaxies simulated with another
seed. Prints the command, the wall times, the loss and, for scale, the loss of the best constant
guess (the median training redshift), which an estimator must beat to have learned anything.

    python benchmarks/bench_redshift_estimator.py [--steps 2000] [--redshift 0.02 0.6]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time

import numpy as np
import torch

import galwidgets as gw


def _simulate(n: int, size: int, seed: int, redshift: tuple[float, float] | None) -> gw.data.Survey:
    kwargs = {} if redshift is None else {"redshift": tuple(redshift)}
    return gw.data.simulate_survey(n, size=size, seed=seed, progress=False, n_jobs=1, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=3000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--train-seed", type=int, default=1)
    parser.add_argument("--test-seed", type=int, default=2)
    parser.add_argument("--redshift", type=float, nargs=2, default=None,
                        help="redshift range of both sets (default: the instrument's, 0.02-0.12)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--base-channels", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))

    t0 = time.perf_counter()
    train = _simulate(args.n_train, args.size, args.train_seed, args.redshift)
    test = _simulate(args.n_test, args.size, args.test_seed, args.redshift)
    print(f"simulated {len(train)} + {len(test)} galaxies ({args.size}x{args.size}) in "
          f"{time.perf_counter() - t0:.0f} s")

    torch.manual_seed(0)
    model = gw.models.RedshiftEstimator(base_channels=args.base_channels)
    t0 = time.perf_counter()
    ckpt = gw.models.train_redshift_estimator(model, train, args.steps, args.batch_size, lr=args.lr,
                                              device="cpu", progress=False)
    train_time = time.perf_counter() - t0
    print(f"trained {args.steps} steps x {args.batch_size} ({args.threads} threads) in {train_time:.0f} s "
          f"({1000 * train_time / args.steps:.0f} ms/step); final training MSE in log(1+z) "
          f"{ckpt.history['loss'].tail(100).mean():.2e}")

    z_true = test.catalog["redshift"].to_numpy()
    z_pred = gw.models.predict_redshift(ckpt, test)
    dz = (z_pred - z_true) / (1 + z_true)
    loss = gw.metrics.redshift_loss(z_pred, z_true)
    baseline = gw.metrics.redshift_loss(np.full_like(z_true, np.median(train.catalog["redshift"])), z_true)
    nmad = 1.4826 * np.median(np.abs(dz - np.median(dz)))
    print(f"held-out redshifts {z_true.min():.3f}-{z_true.max():.3f} (median {np.median(z_true):.3f})")
    print(f"redshift loss (gamma 0.15) on {len(test)} held-out galaxies: {loss:.4f} "
          f"(constant median guess: {baseline:.4f}); sigma_NMAD {nmad:.4f}, bias {np.median(dz):+.4f}")
    print(f"acceptance (loss < 0.1): {'PASS' if loss < 0.1 else 'FAIL'}")


if __name__ == "__main__":
    main()
