"""Samplers of the shipped model: quality against network evaluations, and wall time against diffusers.

``quality``: for every sampler and every number of network evaluations (NFE), ``--n`` galaxies
from ``desi-tiny`` per seed are compared with ``--n`` held-out mock galaxies
(``simulate_survey(seed=2026, merger_probability=0, clumpy_probability=0)``: ``desi-tiny`` was
trained, on seed 1000, before the mock gained mergers and clumpy irregulars, so the held-out
galaxies are drawn from the population it learnt) by the Synthetic Galaxy
Distance (``gw.metrics.synthetic_galaxy_distance``) and the Fréchet morphology distance
(``gw.metrics.frechet_morphology_distance``). All samplers start from the same noise per seed
(common random numbers), so their differences are the samplers', not the draws'. Heun takes
``(NFE + 1) // 2`` steps (``2 steps - 1`` evaluations), the others NFE steps. Each run's feature
table is cached in ``--out`` (rerunning resumes); ``report`` prints the table and draws the plot.

``timing``: seconds per network evaluation of each sampler against the diffusers scheduler that
corresponds to it, driving the same network (desi-tiny's U-Net) in a pipeline's loop, timed
alternately in one process; identical settings (fp32, and bf16 autocast + channels_last), and
galwidgets' default path against diffusers' default fp32 loop. Medians of ``--repeats``.

    python benchmarks/bench_samplers.py quality [--n 512 --seeds 0 1 2 --nfe 5 8 10 15 20 30 50 100]
    python benchmarks/bench_samplers.py report [--plot docs/samplers-sgd-nfe.png]
    pip install diffusers   # the peer of `timing`; a test extra, not a dependency
    python benchmarks/bench_samplers.py timing [--batch 64 --nfe 10 --repeats 5 --settings ...]

A sampler spec is a name of ``VARIANTS`` or ``sampler:key=value,...`` (e.g.
``dpm_solver:order=2,sigma_max=80``), named by itself in the table.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import galwidgets as gw
from galwidgets._device import bf16_is_fast
from galwidgets._io import atomic_path, write_json

HELD_OUT_SEED = 2026
NOISE_SEED_OFFSET = 10_000  # generator of the SDE samplers' noise, apart from the starting noise
VARIANTS = {  # the samplers with their defaults (log-SNR spacing from σ = 80), and two references
    "ddim": ("ddim", {}),
    "dpm_solver": ("dpm_solver", {"order": 2}),
    "dpm_solver_3m": ("dpm_solver", {"order": 3}),
    "dpm_solver_2m_sde": ("dpm_solver", {"order": 2, "eta": 1.0}),
    "euler": ("euler", {}),
    "heun": ("heun", {}),
    "euler_ancestral": ("euler_ancestral", {}),
    # diffusers' use_karras_sigmas=True setting: Karras ρ = 7 over the schedule's whole range
    "dpm_solver_karras_full": ("dpm_solver", {"order": 2, "spacing": "karras", "sigma_max": None}),
    "euler_karras": ("euler", {"spacing": "karras"}),
}


def parse_variant(spec: str) -> tuple[str, dict]:
    if spec in VARIANTS:
        return VARIANTS[spec]
    name, _, rest = spec.partition(":")
    if name not in gw.samplers.SAMPLERS:
        raise SystemExit(f"unknown sampler {name!r}; known: {sorted(gw.samplers.SAMPLERS)}")
    kwargs = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            kwargs[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            kwargs[key] = value
    return name, kwargs


def steps_for(sampler: str, nfe: int) -> int:
    return (nfe + 1) // 2 if sampler == "heun" else nfe


def evaluations(sampler: str, steps: int) -> int:
    return 2 * steps - 1 if sampler == "heun" else steps


def held_out(out: Path, n: int, ckpt) -> pd.DataFrame:
    path = out / f"held_out_seed{HELD_OUT_SEED}_n{n}.parquet"
    if not path.exists():  # the population desi-tiny was trained on: no mergers, no clumpy irregulars
        survey = gw.data.simulate_survey(n, size=ckpt.size, bands=ckpt.bands, pixel_scale=ckpt.pixel_scale,
                                         seed=HELD_OUT_SEED, merger_probability=0.0,
                                         clumpy_probability=0.0, progress=False)
        table = gw.metrics.morphology_features(survey, dropna=False)
        with atomic_path(path) as tmp:
            table.to_parquet(tmp)
    return pd.read_parquet(path)


def generate(ckpt, sampler: str, kwargs: dict, steps: int, n: int, seed: int, batch: int) -> gw.data.Survey:
    fn = gw.samplers.SAMPLERS[sampler]
    start = torch.Generator().manual_seed(seed)
    noise = torch.Generator().manual_seed(seed + NOISE_SEED_OFFSET)
    extra = {} if sampler == "ddpm" else {"steps": steps}
    images = []
    for first in range(0, n, batch):
        shape = (min(batch, n - first), len(ckpt.bands), ckpt.size, ckpt.size)
        x_T = torch.randn(shape, generator=start)
        x = fn(ckpt.model, ckpt.schedule, shape, x_T=x_T, generator=noise, progress=False, **extra, **kwargs)
        images.append(ckpt.normalizer.inverse(x.float().cpu()).numpy())
    return gw.data.Survey(images=np.concatenate(images), catalog=pd.DataFrame({"index": np.arange(n)}),
                          bands=ckpt.bands, pixel_scale=ckpt.pixel_scale, zeropoint=ckpt.zeropoint)


def quality(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    ckpt = gw.pretrained.load("desi-tiny", device="cpu")
    reference = held_out(out, args.n, ckpt)
    print(f"threads {torch.get_num_threads()}; held-out: {len(reference)} mock galaxies, "
          f"seed {HELD_OUT_SEED}")
    for spec in args.samplers:
        sampler, kwargs = parse_variant(spec)
        for nfe in args.nfe:
            steps = steps_for(sampler, nfe)
            for seed in args.seeds:
                path = out / spec / f"nfe{nfe}_seed{seed}_n{args.n}.parquet"
                if path.exists():
                    continue
                t0 = time.perf_counter()
                survey = generate(ckpt, sampler, kwargs, steps, args.n, seed, args.batch)
                seconds = time.perf_counter() - t0
                table = gw.metrics.morphology_features(survey, dropna=False)
                table.attrs = {}
                with atomic_path(path) as tmp:
                    table.to_parquet(tmp)
                write_json(path.with_suffix(".json"), {"seconds": seconds, "steps": steps,
                                                       "nfe": evaluations(sampler, steps)})
                sgd = gw.metrics.synthetic_galaxy_distance(table, reference)["total"]
                print(f"{spec:28s} NFE {evaluations(sampler, steps):3d} seed {seed}: SGD {sgd:.4f} "
                      f"({seconds:.0f} s)", flush=True)


def collect(out: Path, n: int, reference_n: int | None = None) -> pd.DataFrame:
    """Every cached run of ``n`` galaxies, measured against the held-out set of ``reference_n``
    (default ``n``; a larger held-out set makes the comparison less noisy)."""
    reference = pd.read_parquet(out / f"held_out_seed{HELD_OUT_SEED}_n{reference_n or n}.parquet")
    rows = []
    for path in sorted(out.glob(f"*/nfe*_seed*_n{n}.parquet")):
        nfe_tag, seed_tag = path.stem.split("_")[:2]
        table = pd.read_parquet(path)
        meta = json.loads(path.with_suffix(".json").read_text())
        rows.append({"sampler": path.parent.name, "nfe": int(nfe_tag[3:]), "nfe_taken": meta["nfe"],
                     "seed": int(seed_tag[4:]),
                     "sgd": gw.metrics.synthetic_galaxy_distance(table, reference)["total"],
                     "fmd": gw.metrics.frechet_morphology_distance(table, reference),
                     "seconds": meta["seconds"]})
    return pd.DataFrame(rows)


def report(args: argparse.Namespace) -> None:
    out = Path(args.out)
    runs = collect(out, args.n, args.reference_n)
    reference = pd.read_parquet(out / f"held_out_seed{HELD_OUT_SEED}_n{args.reference_n or args.n}.parquet")
    base = gw.metrics.split_half_baseline(reference)["total"]
    stats = runs.groupby(["sampler", "nfe"]).agg(
        sgd=("sgd", "mean"), sgd_sd=("sgd", "std"), fmd=("fmd", "mean"), fmd_sd=("fmd", "std"),
        seeds=("seed", "count")).reset_index()
    ref = stats[(stats.sampler == "ddim") & (stats.nfe == 50)]
    target = float(ref.sgd.iloc[0]) if len(ref) else float("nan")
    print(f"held-out split-half SGD ({len(reference)} galaxies, halves of {len(reference) // 2}): {base:.3f}")
    print(f"50-step DDIM: SGD {target:.4f}; within 5 %: <= {1.05 * target:.4f}\n")
    nfes = sorted(stats.nfe.unique())
    print("SGD (mean ± sd over seeds where more than one), by NFE; ✓: within 5 % of 50-step DDIM\n")
    print("| sampler | " + " | ".join(str(k) for k in nfes) + " |")
    print("|---" * (len(nfes) + 1) + "|")
    for name, group in stats.groupby("sampler", sort=False):
        cells = {row.nfe: f"{row.sgd:.3f}" + (f" ± {row.sgd_sd:.3f}" if row.seeds > 1 else "")
                 + (" ✓" if row.sgd <= 1.05 * target else "") for row in group.itertuples()}
        print(f"| {name} | " + " | ".join(cells.get(k, "") for k in nfes) + " |")
    print("\nFréchet morphology distance (mean ± sd over seeds where more than one), by NFE\n")
    print("| sampler | " + " | ".join(str(k) for k in nfes) + " |")
    print("|---" * (len(nfes) + 1) + "|")
    for name, group in stats.groupby("sampler", sort=False):
        cells = {row.nfe: f"{row.fmd:.2f}" + (f" ± {row.fmd_sd:.2f}" if row.seeds > 1 else "")
                 for row in group.itertuples()}
        print(f"| {name} | " + " | ".join(cells.get(k, "") for k in nfes) + " |")
    if args.plot:
        plot(stats, target, base, Path(args.plot))


def plot(stats: pd.DataFrame, target: float, base: float, path: Path) -> None:
    """SGD and Fréchet morphology distance against NFE, one line per sampler, as a small PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9.6, 4.4), dpi=90)
    nfes = [k for k in (5, 8, 10, 15, 20, 30, 50, 100) if k in set(stats.nfe)]
    for name, group in stats.groupby("sampler", sort=False):
        for ax, column in zip(axes, ("sgd", "fmd")):
            ax.errorbar(group.nfe, group[column], yerr=group[f"{column}_sd"], marker="o", ms=3, capsize=2,
                        label=name)
    axes[0].axhspan(target, 1.05 * target, color="0.85", label="50-step DDIM … +5 %")
    axes[0].axhline(base, color="0.4", ls=":", lw=1, label="split-half baseline")
    for ax, label in zip(axes, ("SGD to held-out mocks", "Fréchet morphology distance")):
        ax.set_xscale("log")
        ax.minorticks_off()
        ax.set_xticks(nfes, labels=[str(k) for k in nfes])
        ax.set_xlabel("network evaluations (NFE)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylim(0, min(stats.sgd.max() * 1.05, 2.2 * target))
    axes[1].set_ylim(0, min(stats.fmd.max() * 1.05, 2.5 * stats.fmd.min()))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=6, fontsize=7, frameon=False)
    fig.suptitle("desi-tiny: sample quality against network evaluations", fontsize=9)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    print(f"\nplot: {path} ({path.stat().st_size / 1e3:.0f} kB)")


# -- timing against diffusers --------------------------------------------------------------------
def peer_scheduler(sampler: str, schedule: gw.diffusion.NoiseSchedule, nfe: int):
    import diffusers

    config = {"num_train_timesteps": schedule.T, "trained_betas": schedule.betas.numpy(),
              "prediction_type": "v_prediction"}
    if sampler == "ddim":
        peer = diffusers.DDIMScheduler(**config, clip_sample=True, set_alpha_to_one=True)
    elif sampler == "dpm_solver":
        # galwidgets' dpm_solver without guidance is 3M (order=None); the peer at the same order
        peer = diffusers.DPMSolverMultistepScheduler(**config, use_exponential_sigmas=True, solver_order=3)
    elif sampler == "euler":
        peer = diffusers.EulerDiscreteScheduler(**config, use_exponential_sigmas=True)
    elif sampler == "heun":
        peer = diffusers.HeunDiscreteScheduler(**config, use_exponential_sigmas=True)
    else:
        peer = diffusers.EulerAncestralDiscreteScheduler(**config)
    peer.set_timesteps(steps_for(sampler, nfe))
    return peer


def their_run(model, schedule, sampler: str, shape, nfe: int, bf16: bool, channels_last: bool):
    def run() -> None:
        peer = peer_scheduler(sampler, schedule, nfe)
        if hasattr(peer, "set_begin_index"):  # count steps, not look them up (repeated timesteps)
            peer.set_begin_index(0)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        generator = torch.Generator().manual_seed(0)
        sample = torch.randn(shape, generator=generator) * peer.init_noise_sigma
        sample = sample.contiguous(memory_format=fmt)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
        stochastic = "generator" in inspect.signature(peer.step).parameters
        extra = {"generator": generator} if stochastic else {}
        with ctx, torch.no_grad():
            for t in peer.timesteps:
                out = model(peer.scale_model_input(sample, t), t)
                sample = peer.step(out, t, sample, **extra).prev_sample
    return run


def our_run(model, schedule, sampler: str, shape, nfe: int, autocast, channels_last: bool):
    fn = gw.samplers.SAMPLERS[sampler]

    def run() -> None:
        fn(model, schedule, shape, steps=steps_for(sampler, nfe), autocast=autocast,
           channels_last=channels_last, generator=torch.Generator().manual_seed(0), progress=False)
    return run


def timing(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    ckpt = gw.pretrained.load("desi-tiny", device="cpu")
    model, schedule = ckpt.model, ckpt.schedule
    shape = (args.batch, len(ckpt.bands), ckpt.size, ckpt.size)
    settings = {  # name: (ours (autocast, channels_last), theirs (bf16, channels_last))
        "fp32, contiguous (identical)": ((False, False), (False, False)),
        "bf16 autocast + channels_last (identical)": ((True, True), (True, True)),
        "galwidgets default vs diffusers default (fp32)": (("auto", True), (False, False)),
    }
    settings = {name: value for k, (name, value) in enumerate(settings.items()) if k in args.settings}
    print(f"threads {torch.get_num_threads()}, batch {args.batch}, NFE {args.nfe}, "
          f"bf16_is_fast: {bf16_is_fast(torch.device('cpu'))}, medians of {args.repeats}")
    print("| sampler | diffusers scheduler | setting | galwidgets s/NFE | diffusers s/NFE | ratio |")
    print("|---|---|---|---|---|---|")
    per_nfe = {}
    for sampler in args.samplers:
        nfe = evaluations(sampler, steps_for(sampler, args.nfe))
        peer_name = type(peer_scheduler(sampler, schedule, args.nfe)).__name__
        for name, ((autocast, cl_ours), (bf16, cl_theirs)) in settings.items():
            times = {"ours": [], "theirs": []}
            for repeat in range(args.repeats + 1):  # the first round warms up
                for side in ("ours", "theirs"):
                    channels_last = cl_ours if side == "ours" else cl_theirs
                    model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
                    if side == "ours":
                        run = our_run(model, schedule, sampler, shape, args.nfe, autocast, cl_ours)
                    else:
                        run = their_run(model, schedule, sampler, shape, args.nfe, bf16, cl_theirs)
                    t0 = time.perf_counter()
                    run()
                    if repeat:
                        times[side].append((time.perf_counter() - t0) / nfe)
            ours, theirs = statistics.median(times["ours"]), statistics.median(times["theirs"])
            per_nfe[sampler, name] = (ours, theirs)
            print(f"| {sampler} | {peer_name} | {name} | {ours:.3f} | {theirs:.3f} | {theirs / ours:.2f}× |",
                  flush=True)
    default = "galwidgets default vs diffusers default (fp32)"
    sampler, steps = gw.samplers.DEFAULT_SAMPLER, gw.samplers.DEFAULT_STEPS
    if (sampler, default) in per_nfe and ("ddim", default) in per_nfe:
        ours = per_nfe[sampler, default][0] * evaluations(sampler, steps)
        theirs = per_nfe["ddim", default][1] * 50
        print(f"\ndefault path for {args.batch} galaxies: galwidgets' {sampler}, {steps} steps, default "
              f"precision: {ours:.2f} s; diffusers' default DDIMScheduler, 50 steps, fp32: {theirs:.2f} s; "
              f"ratio {theirs / ours:.2f}× (from the per-NFE medians above)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality", help="sample and measure (resumable)")
    q.add_argument("--n", type=int, default=512, help="generated and held-out galaxies")
    q.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    q.add_argument("--nfe", type=int, nargs="+", default=[5, 8, 10, 15, 20, 30, 50, 100])
    q.add_argument("--samplers", nargs="+", default=list(VARIANTS))
    q.add_argument("--batch", type=int, default=128)
    q.add_argument("--threads", type=int, default=2)
    q.add_argument("--out", default="bench-samplers-out")
    r = sub.add_parser("report", help="table and plot from the cached runs")
    r.add_argument("--n", type=int, default=512)
    r.add_argument("--reference-n", type=int, default=None,
                   help="held-out set to measure against (default --n; it must have been drawn by `quality`)")
    r.add_argument("--out", default="bench-samplers-out")
    r.add_argument("--plot", default=None, help="write the SGD-NFE plot here (PNG)")
    t = sub.add_parser("timing", help="seconds per network evaluation against diffusers")
    t.add_argument("--batch", type=int, default=64)
    t.add_argument("--nfe", type=int, default=10)
    t.add_argument("--repeats", type=int, default=5)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--settings", type=int, nargs="+", default=[0, 1, 2],
                   help="which settings: 0 fp32 identical, 1 bf16 + channels_last identical, 2 defaults")
    t.add_argument("--samplers", nargs="+",
                   default=["ddim", "dpm_solver", "euler", "heun", "euler_ancestral"])
    args = parser.parse_args()
    {"quality": quality, "report": report, "timing": timing}[args.command](args)


if __name__ == "__main__":
    main()
