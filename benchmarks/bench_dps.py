"""Diffusion Posterior Sampling deconvolution with the shipped ``desi-tiny`` prior (issue 6).

1. A held-out mock galaxy (``simulate_survey(1, seed=12345)``) blurred by a 2" Moffat PSF plus the
   training sky noise: reduced χ² of the re-convolved posterior mean, and its RMS residual
   against the true galaxy compared with the observation's.
2. The same galaxy made fainter by 0, 1.2, ..., 6 mag (same noise): the posterior-to-prior
   variance ratio in an 8-pixel aperture (the trend of the DPS deconvolution study's Table 2).
3. Cost of one DPS step (forward + backward to x_t + operator) against a plain DDPM step (forward).
4. The three HSC PDR3 galaxies of ``../shared/data/hsc_pdr3`` (skipped when absent): cropped to
   the model's field of view at their redshift, reduced χ² inside the central segment.

    python benchmarks/bench_dps.py [--steps 30] [--samples 4] [--skip-hsc]
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

import galwidgets as gw
from galwidgets.diffusion.operators import PSFOperator, crop_center, estimate_sigma_y, neighbour_weights
from galwidgets.diffusion.posterior import model_noise_sigma, noise_timestep
from galwidgets.diffusion.samplers import denoise

SIGMA = np.array([0.00702, 0.0115, 0.028])  # desi-tiny training sky noise per band (nanomaggies)
HSC = Path(__file__).resolve().parents[2] / "shared" / "data" / "hsc_pdr3"
MODEL_REDSHIFT = 0.094  # median redshift of desi-tiny's training galaxies (simulate_survey, seed 1000)


def chi2(y: np.ndarray, model: np.ndarray, sigma: np.ndarray, mask: np.ndarray | None = None) -> float:
    r2 = ((y - model) / sigma) ** 2
    return float(r2.mean() if mask is None else r2[..., mask].mean())


def run_dps(ckpt, y, op, sigma, args, seed=0):
    t0 = time.perf_counter()
    x = gw.samplers.dps(ckpt, None, y, op, sigma, n_samples=args.samples, steps=args.steps,
                        zeta=args.zeta, generator=torch.Generator().manual_seed(seed), progress=False,
                        return_flux=True)
    return x.numpy(), time.perf_counter() - t0


def mock(ckpt, args) -> None:
    truth = gw.data.simulate_survey(1, size=64, seed=12345, progress=False).images
    print("\n== 1. mock galaxy (seed 12345), Moffat FWHM 2.0\", sky sigma = training noise ==")
    _, kernels = gw.data.observe(truth, 2.0, 0.262, SIGMA, seed=1)
    op = PSFOperator.from_checkpoint(ckpt, kernels)
    y, _ = gw.data.observe(truth, None, 0.262, SIGMA, psf=kernels, seed=1)
    x, dt = run_dps(ckpt, y, op, SIGMA, args)
    mean = x.mean(0, keepdims=True)
    c_mean = chi2(y, op(torch.from_numpy(mean)).numpy(), SIGMA[:, None, None])
    c_each = [chi2(y, op(torch.from_numpy(s[None])).numpy(), SIGMA[:, None, None]) for s in x]
    rms_post = np.sqrt(((mean - truth) ** 2).mean())
    rms_obs = np.sqrt(((y - truth) ** 2).mean())
    print(f"wall {dt:.1f} s; reduced chi2 of posterior mean {c_mean:.3f} (samples "
          f"{', '.join(f'{c:.2f}' for c in c_each)})")
    print(f"RMS residual vs truth: posterior mean {rms_post:.4f}, observation {rms_obs:.4f}, ratio "
          f"{rms_post / rms_obs:.3f}")

    print("\n== 2. variance ratio vs magnitude (same galaxy, same noise; gw.diffusion.deconvolve recipe: "
          "early stop at the prior's noise level + data step with discrepancy stop) ==")
    noise = y - op(torch.from_numpy(truth)).numpy()
    print(" dmag  chi2_mean  ratio(matched)  per band (g r z)         ratio(flux)  wall s")
    ratios, plain, prior = [], [], None
    for dmag in np.arange(0, 6.01, 1.2):
        faint = (op(torch.from_numpy(truth * 10 ** (-0.4 * dmag))).numpy() + noise)[0]
        t0 = time.perf_counter()
        r = gw.diffusion.deconvolve(ckpt, faint, op, SIGMA, n_samples=args.samples, n_prior=args.prior,
                                    steps=args.steps, weights=None, prior=prior, progress=False)
        dt = time.perf_counter() - t0
        prior = r.prior
        per_band = gw.metrics.variance_ratio(r.samples, prior, radius=8, reference="matched", per_band=True)
        plain.append(gw.metrics.variance_ratio(r.samples, prior, radius=8))
        ratios.append(r.variance_ratio)
        print(f"{dmag:5.1f}  {r.chi2:9.3f}  {r.variance_ratio:14.3f}  "
              f"{np.round(per_band, 3).tolist()!s:25}  {plain[-1]:11.3f}  {dt:6.1f}")
    mono = all(b > a for a, b in itertools.pairwise(ratios))
    print(f"plain flux ratio (unconditional prior) {np.round(plain, 3).tolist()}: monotonic increase: "
          f"{all(b > a for a, b in itertools.pairwise(plain))}")
    print(f"ACCEPTANCE (A) variance ratio vs brightness-matched prior {np.round(ratios, 3).tolist()} "
          f"increases monotonically over 6 mag: {'PASS' if mono else 'FAIL'}")


def cost(ckpt, args) -> None:
    print(f"\n== 3. step cost (batch {args.samples}, 64x64, fp32, median of 10) ==")
    model, sched = ckpt.model, ckpt.schedule
    model.to(memory_format=torch.contiguous_format)
    x = torch.randn(args.samples, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    t = torch.full((args.samples,), 500)
    _, kernels = gw.data.observe(np.zeros((1, 3, 64, 64)), 2.0, 0.262, SIGMA)
    op = PSFOperator.from_checkpoint(ckpt, kernels)
    y = torch.zeros(1, 3, 64, 64)

    def plain():
        with torch.no_grad():
            denoise(model, sched, x, t, autocast=False)

    def guided():
        xg = x.clone().requires_grad_(True)
        _, x0 = denoise(model, sched, xg, t, autocast=False, clip_x0=False)
        r = (y - op(gw.diffusion.posterior.model_to_flux(ckpt.normalizer, x0))) / 0.01
        torch.autograd.grad(r.flatten(1).norm(dim=1).sum(), xg)

    times = {}
    for name, fn in (("ddpm", plain), ("dps", guided)):
        fn()
        reps = []
        for _ in range(10):
            t0 = time.perf_counter()
            fn()
            reps.append(time.perf_counter() - t0)
        times[name] = statistics.median(reps)
    print(f"DDPM step {times['ddpm'] * 1e3:.0f} ms, DPS step {times['dps'] * 1e3:.0f} ms, ratio "
          f"{times['dps'] / times['ddpm']:.2f} (target <= 2.5)")


def hsc(ckpt, args) -> None:
    print("\n== 4. HSC PDR3 (g, r, i -> model g, r, z; counts at zp 27 -> nanomaggies via the "
          "operator) ==")
    if not HSC.is_dir():
        print(f"skipped: {HSC} not found")
        return
    sigma_m = float(model_noise_sigma(ckpt.normalizer, SIGMA).max())
    t_stop = noise_timestep(ckpt.schedule, sigma_m)
    print(f"gw.diffusion.deconvolve: likelihood sigma_y = observed sky noise; neighbours masked; stop at "
          f"t={t_stop} (diffusion noise = the prior's own pixel noise {sigma_m:.3f} in model space), "
          f"x0_hat conditioned on y (data step, discrepancy stop at chi2 1); zeta {args.hsc_zeta or 'auto'}")
    print(" galaxy  z       crop  sigma_y (counts)        chi2_seg(obs σ)  per band            "
          "chi2_all(obs σ)  masked px  seg px  | old: DPS samples, σ_eff: chi2_seg(obs σ) chi2_seg(σ_eff)"
          "  wall s")
    verdicts = []
    for folder in sorted(HSC.iterdir()):
        cutout = gw.data.load_hsc_pdr3(folder)
        z, full = cutout.redshift, cutout.images
        op = gw.diffusion.operators.PSFOperator.from_cutout(cutout, ckpt, model_redshift=MODEL_REDSHIFT)
        y = crop_center(full, op.obs_shape).astype(np.float32)
        sigma_obs = estimate_sigma_y(full)  # sky noise from the whole cutout
        # the prior's own sky noise (its training images are noisy), through the operator
        noise = torch.randn(16, 3, 64, 64, generator=torch.Generator().manual_seed(5)) * torch.tensor(
            SIGMA).reshape(1, 3, 1, 1)
        sigma_prior = op(noise.double())[..., 8:-8, 8:-8].std(dim=(0, 2, 3)).numpy()
        sigma_eff = np.sqrt(sigma_obs**2 + sigma_prior**2)
        seg = gw.metrics.central_segmap(y[1]).central
        weights = neighbour_weights(y)
        t0 = time.perf_counter()
        r = gw.diffusion.deconvolve(ckpt, y, op, sigma_obs, n_samples=args.samples, n_prior=args.prior,
                                    steps=args.steps, zeta=args.hsc_zeta, weights=weights, progress=False)
        r2 = r.residual ** 2
        c_obs = float(np.nanmean(r2[:, seg]))
        c_all = r.chi2
        verdicts.append(0.5 <= c_obs <= 3)
        dt = time.perf_counter() - t0
        print(f"         variance ratio {r.variance_ratio:.2f}; zeta {r.settings['zeta']:.2e}")
        old = ""
        if not args.skip_old:
            xo, _ = run_dps(ckpt, y, op, sigma_eff, args)
            mo = op(torch.from_numpy(xo.mean(0, keepdims=True))).numpy()[0]
            old = (f"{chi2(y, mo, sigma_obs[:, None, None], seg):8.2f} "
                   f"{chi2(y, mo, sigma_eff[:, None, None], seg):8.2f}")
        print(f" {folder.name:6}  {z:.3f}  {op.obs_shape[0]:4d}  "
              f"{np.round(sigma_obs, 4).tolist()!s:22}  {c_obs:15.2f}  "
              f"{[round(float(r2[b][seg].mean()), 2) for b in range(3)]!s:18}  {c_all:15.2f}  "
              f"{int((weights == 0).sum()):9d}  {int(seg.sum()):6d}  | {old:18}  {dt:6.1f}")
        print(f"         sigma of prior noise through A: {np.round(sigma_prior, 3).tolist()} counts; "
              f"flux scale {op.flux_scale[0]:.2f} counts/nmgy; model pixel {op.effective_pixel_scale:.4f}\"")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30, help="DDIM-style DPS steps")
    parser.add_argument("--zeta", type=float, default=None, help="step size (default 0.2/steps)")
    parser.add_argument("--samples", type=int, default=4, help="posterior samples per observation")
    parser.add_argument("--prior", type=int, default=8, help="prior samples for the variance ratio")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hsc-zeta", type=float, default=None,
                        help="DPS step size against HSC (default: deconvolve's depth-scaled step)")
    parser.add_argument("--skip-hsc", action="store_true")
    parser.add_argument("--skip-old", action="store_true", help="skip the sigma_eff DPS-sample comparison")
    parser.add_argument("--only", choices=["mock", "cost", "hsc"], default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("command: python " + " ".join(sys.argv))
    print(f"settings: steps={args.steps} zeta={args.zeta or 0.2 / args.steps:.4g} samples={args.samples} "
          f"prior={args.prior} threads={args.threads} torch {torch.__version__}")
    ckpt = gw.pretrained.load("desi-tiny", device="cpu")
    t0 = time.perf_counter()
    if args.only in (None, "cost"):
        cost(ckpt, args)
    if args.only in (None, "mock"):
        mock(ckpt, args)
    if args.only in (None, "hsc") and not args.skip_hsc:
        hsc(ckpt, args)
    print(f"\ntotal wall time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
