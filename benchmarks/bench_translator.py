"""Band translation u → K with :class:`~galwidgets.models.BandTranslator` (thesis's best configuration).

Trains the ResNet translator (7×7 stem, one down-sampling block, nine residual blocks) to predict
the 2MASS-like K image of a mock galaxy from its u image, on paired images of
``simulate_survey(n_train, instrument="uv-ir", seed=1)``, for a wall-clock budget: training runs in
chunks of ``--chunk`` steps, each resuming from the previous chunk's checkpoint, until the budget
is spent (so the result is that of one uninterrupted run of the final step count, whatever the
load on the machine). Held-out
galaxies (``seed=2``) are translated and scored per galaxy by the SSIM gain
``SSIM(output, K) - SSIM(u, K)`` (:func:`galwidgets.metrics.ssim_gain`, the thesis's eq. 3.5) and
by the Gini and M20 of outputs, targets and inputs (:func:`galwidgets.metrics.gini_m20`). The
translator's outputs are noise-free (an L1 regression predicts the median, not the noise), which
changes how the sky is detected around them; Gini/M20 are also measured on the outputs plus white
noise of the targets' sky level (``output+noise``), the fair comparison with the noisy targets.

    python benchmarks/bench_translator.py [--minutes 10 --n-train 2000 --n-test 300 --threads 2]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time

import numpy as np
import pandas as pd
import torch

import galwidgets as gw
from galwidgets.data.noise import sky_noise
from galwidgets.models import BandTranslator, train_translator, translate


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0, help="training wall-clock budget")
    p.add_argument("--n-train", type=int, default=2000)
    p.add_argument("--n-test", type=int, default=300)
    p.add_argument("--size", type=int, default=64, help="cutout side in pixels")
    p.add_argument("--in-band", nargs="+", default=["u"])
    p.add_argument("--out-band", nargs="+", default=["K"])
    p.add_argument("--base-channels", type=int, default=16, help="ngf (64 in the thesis; CPU budget)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--loss", default="l1", choices=["l1", "mse"])
    p.add_argument("--chunk", type=int, default=25, help="steps per resumed run until the budget is spent")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def quartiles(values: pd.Series) -> str:
    q = np.nanpercentile(values, [25, 50, 75])
    return f"median {q[1]:+.4f}  (quartiles {q[0]:+.4f} .. {q[2]:+.4f})"


def morphology_table(images: dict[str, np.ndarray]) -> pd.DataFrame:
    rows = {}
    for name, arr in images.items():
        gm = gw.metrics.gini_m20(arr, band=0, bands=("x",), progress=False)
        rows[name] = {"gini_median": gm["gini"].median(), "m20_median": gm["m20"].median(),
                      "measured": int(gm["gini"].notna().sum())}
    return pd.DataFrame(rows).T


def main() -> None:
    args = parse()
    torch.set_num_threads(args.threads)
    print("command:", shlex.join([sys.executable, *sys.argv]))
    t_start = time.perf_counter()
    kw = {"size": args.size, "instrument": "uv-ir", "progress": False, "n_jobs": args.threads}
    train = gw.data.simulate_survey(args.n_train, seed=1, **kw)
    test = gw.data.simulate_survey(args.n_test, seed=2, **kw)
    print(f"simulated {args.n_train} training + {args.n_test} held-out galaxies ({args.size}x{args.size}, "
          f"bands {' '.join(train.bands)}) in {time.perf_counter() - t_start:.0f} s")

    torch.manual_seed(args.seed)
    model = BandTranslator(args.in_band, args.out_band, base_channels=args.base_channels)
    n_params = sum(p.numel() for p in model.parameters())
    fit_kw = {"lr": args.lr, "loss": args.loss, "seed": args.seed, "device": "cpu", "progress": False,
              "checkpoint_every": 10 ** 9}
    normalizer = gw.data.AsinhStretch.fit(train.images)  # all 8 bands, one scale per band
    with tempfile.TemporaryDirectory() as ckpt_dir:
        t0 = time.perf_counter()
        steps = 0
        while time.perf_counter() - t0 < args.minutes * 60:
            steps += args.chunk
            ckpt = train_translator(model, train, steps, args.batch_size, checkpoint_dir=ckpt_dir,
                                    normalizer=normalizer, **fit_kw)
        train_time = time.perf_counter() - t0
    hist = ckpt.history
    print(f"model: BandTranslator {args.in_band} -> {args.out_band}, base_channels={args.base_channels}, "
          f"n_downsampling=1, n_blocks=9, {n_params / 1e6:.2f} M parameters")
    first, last = hist["loss"].iloc[:20].mean(), hist["loss"].iloc[-20:].mean()
    print(f"training: {steps} steps x {args.batch_size} galaxies in {train_time:.0f} s "
          f"({train_time / steps:.2f} s/step); {args.loss} loss: first 20 steps {first:.4f}, "
          f"last 20 {last:.4f}")

    t0 = time.perf_counter()
    out = translate(ckpt, test, batch_size=64)
    inp = test.images[:, [test.bands.index(b) for b in args.in_band]]
    target = test.images[:, [test.bands.index(b) for b in args.out_band]]
    if inp.shape[1] != target.shape[1]:
        raise SystemExit("ssim_gain needs as many input as target bands; use e.g. --in-band u --out-band K")
    gain = gw.metrics.ssim_gain(out.images, inp, target, bands=args.out_band)
    print(f"held-out: {args.n_test} galaxies translated and scored in {time.perf_counter() - t0:.0f} s")
    print(f"SSIM(input, target):  {quartiles(gain['ssim_input'])}")
    print(f"SSIM(output, target): {quartiles(gain['ssim_output'])}")
    print(f"SSIM gain:            {quartiles(gain['ssim_gain'])}; "
          f"positive for {(gain['ssim_gain'] > 0).mean():.1%} of galaxies")
    print("Gini / M20 (medians over galaxies; NaN where not measurable):")
    sigma = sky_noise(target)  # the outputs are noise-free; detection needs sky noise
    noisy = out.images + np.random.default_rng(0).normal(size=out.images.shape).astype(np.float32) \
        * sigma[None, :, None, None].astype(np.float32)
    print(morphology_table({"input": inp, "output": out.images, "output+noise": noisy,
                            "target": target}).to_string(
        float_format=lambda v: f"{v:.3f}"))
    print(f"wall time: {time.perf_counter() - t_start:.0f} s total")


if __name__ == "__main__":
    main()
