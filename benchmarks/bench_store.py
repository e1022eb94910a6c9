"""Survey scale (issue 19): writing, training from and measuring a 200,000-galaxy on-disk store.

Each part runs in its own process so that its peak memory is its own; memory is sampled every
0.2 s over the process and all its descendants (DataLoader workers, the rendering pool): RSS summed
(counts pages shared between forked workers once per process, an upper bound) and PSS summed
(shares them out, what the machine actually spends).

    D=/work/scratch/store
    python benchmarks/bench_store.py write   --dir $D --n 200000 [--deadline s]  # store A (resumes)
    python benchmarks/bench_store.py memory  --dir $D --compare 20000  # the in-memory simulator
    python benchmarks/bench_store.py rate    --dir $D --compare 6000   # rendering only, alternated
    python benchmarks/bench_store.py derive  --dir $D                  # store B (A turned, 10 % brighter)
    python benchmarks/bench_store.py small   --dir $D --n 5000         # the 5,000-galaxy store
    python benchmarks/bench_store.py train   --dir $D --data big|small|memory [--steps 300]
    python benchmarks/bench_store.py metrics --dir $D                  # SGD and Gini/M20 of A vs B
    python benchmarks/bench_store.py read    --dir $D                  # random 64-galaxy batches

``write`` times ``simulate_survey(n, out=...)`` (drawing the catalog and rendering into the store),
``memory`` times ``simulate_survey(--compare)`` in memory, each in a process of its own. ``rate``
alternates ``render_catalog`` in memory with ``render_to_store`` on the same catalog ``--repeats``
times (slow drifts of a shared machine's load cancel). Results are appended to ``$D/results.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psutil

import galwidgets as gw
from galwidgets.data.render import render_catalog


# -- memory -------------------------------------------------------------------------------------------
class PeakMemory:
    """Peak RSS and PSS (bytes) of this process and its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval, self.rss, self.pss, self.main = interval, 0, 0, 0
        self._stop = threading.Event()

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            rss = pss = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    info = proc.memory_full_info()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                rss += info.rss
                pss += getattr(info, "pss", info.rss)
            self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)
            self.main = max(self.main, me.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def report(self) -> dict[str, float]:
        return {"peak_rss_tree_gb": self.rss / 1e9, "peak_pss_tree_gb": self.pss / 1e9,
                "peak_rss_main_gb": self.main / 1e9}


@contextmanager
def timed():
    out = {}
    t0 = time.perf_counter()
    yield out
    out["seconds"] = time.perf_counter() - t0


# -- the truth catalog simulate_survey would render ---------------------------------------------------
class _Stop(Exception):
    pass


def survey_plan(n: int, seed: int, **kwargs) -> tuple[object, dict]:
    """The catalog and render settings of ``simulate_survey(n, seed=seed, **kwargs)``, without rendering."""
    import galwidgets.data.simulate as simulate

    captured = {}
    original = simulate.render_catalog

    def capture(catalog, bands, size, pixel_scale, zeropoint, **render_kwargs):
        captured.update(catalog=catalog, bands=tuple(bands), size=size, pixel_scale=pixel_scale,
                        zeropoint=zeropoint, **render_kwargs)
        raise _Stop

    simulate.render_catalog = capture
    try:
        simulate.simulate_survey(n, seed=seed, progress=False, **kwargs)
    except _Stop:
        pass
    finally:
        simulate.render_catalog = original
    catalog = captured.pop("catalog")
    for key in ("n_jobs", "progress"):
        captured.pop(key, None)
    return catalog, captured


# -- parts --------------------------------------------------------------------------------------------
class _Deadline(Exception):
    pass


def _raise_deadline(*_) -> None:
    raise _Deadline


def write(args) -> dict:
    """Store A with ``simulate_survey(n, out=...)`` (drawing the catalog included, as in memory), in
    a process of its own. An existing store A of the same survey is resumed (the rate counts the
    galaxies written in this run); ``--deadline`` seconds interrupt the run as Ctrl-C would (the store
    keeps its complete chunks and the same command resumes it)."""
    import signal

    out = Path(args.dir) / "big.h5"
    n_start = len(gw.data.open_store(out)) if out.exists() else 0
    result = {"n": args.n, "n_start": n_start}
    if args.deadline:
        signal.signal(signal.SIGALRM, _raise_deadline)
        signal.alarm(int(args.deadline))
    with PeakMemory() as peak, timed() as t_store:
        try:
            gw.data.simulate_survey(args.n, seed=args.seed, n_jobs=2, progress=not args.quiet, out=out)
            result["complete"] = True
        except _Deadline:
            result["complete"] = False
    signal.alarm(0)
    n_end = len(gw.data.open_store(out))
    result["n_end"] = n_end
    result["store_seconds"] = t_store["seconds"]
    result["store_rate"] = (n_end - n_start) / t_store["seconds"]
    result["store_gb"] = out.stat().st_size / 1e9
    result.update(peak.report())
    return result


def memory(args) -> dict:
    """The in-memory simulator's rate on ``--compare`` galaxies (after a warm-up), in its own process."""
    gw.data.simulate_survey(200, seed=99, progress=False, n_jobs=2)  # warm the pool and GalSim tables
    with PeakMemory() as peak, timed() as t:
        gw.data.simulate_survey(args.compare, seed=args.seed + 1, n_jobs=2, progress=False)
    return {"n": args.compare, "seconds": t["seconds"], "memory_rate": args.compare / t["seconds"],
            **peak.report()}


def rate(args) -> dict:
    """Write rate against the in-memory renderer on the same galaxies, alternated ``--repeats`` times
    (the machine is shared: alternating cancels slow drifts of its load); stores compressed with LZF
    (the default) and uncompressed."""
    catalog, settings = survey_plan(args.compare, seed=args.seed + 3)
    render_catalog(catalog.iloc[:200], n_jobs=2, progress=False, **settings)  # warm the pool
    rates: dict[str, list[float]] = {"memory": [], "lzf": [], "none": []}
    for _ in range(args.repeats):
        with timed() as t:
            render_catalog(catalog, n_jobs=2, progress=False, **settings)
        rates["memory"].append(len(catalog) / t["seconds"])
        for name, compression in (("lzf", "lzf"), ("none", None)):
            with timed() as t:
                gw.data.render_to_store(catalog, Path(args.dir) / "rate.h5", n_jobs=2, progress=False,
                                        overwrite=True, compression=compression, **settings)
            rates[name].append(len(catalog) / t["seconds"])
    (Path(args.dir) / "rate.h5").unlink()
    memory = np.array(rates["memory"])
    return {"n": len(catalog), "rates": rates,
            **{f"ratios_{k}": (np.array(rates[k]) / memory).tolist() for k in ("lzf", "none")},
            **{f"median_ratio_{k}": float(np.median(np.array(rates[k]) / memory)) for k in ("lzf", "none")}}


def derive(args) -> dict:
    """Store B: store A's galaxies 10 % brighter and turned by 90°, written chunk by chunk."""
    a = gw.data.open_store(Path(args.dir) / "big.h5")
    with PeakMemory() as peak, timed() as t:
        b = gw.data.SurveyStore.create(Path(args.dir) / "big_b.h5", a[:1], overwrite=True)
        for part in a.chunks():
            b.append(part.with_images(np.rot90(part.images, axes=(2, 3)).copy() * 1.1, part.catalog))
    return {"n": len(b), "seconds": t["seconds"], **peak.report()}


def small(args) -> dict:
    """The 5,000-galaxy store (another seed), written like store A."""
    out = Path(args.dir) / "small.h5"
    if out.exists():
        out.unlink()
    with timed() as t:
        store = gw.data.simulate_survey(args.n, seed=args.seed + 7, n_jobs=2, progress=False, out=out)
    return {"n": len(store), "seconds": t["seconds"]}


def train(args) -> dict:
    import torch

    from galwidgets.pretrained.recipes import RECIPES

    if args.data == "memory":
        data = gw.data.open_store(Path(args.dir) / "small.h5").load()
    else:
        data = gw.data.open_store(Path(args.dir) / f"{args.data}.h5")
    torch.manual_seed(0)
    model = gw.models.UNet(in_channels=3, **RECIPES["desi-tiny"]["model"])
    sched = gw.diffusion.NoiseSchedule.cosine(1000)
    with PeakMemory() as peak, timed() as t:
        ckpt = gw.train(model, sched, data, steps=args.steps, batch_size=64, num_workers=args.workers,
                        progress=not args.quiet)
    seconds = ckpt.history["seconds"].to_numpy()
    skip = min(20, len(seconds) // 5)  # steps/s after the start-up (worker start, first batches)
    return {"data": args.data, "n": len(data), "steps": args.steps, "workers": args.workers,
            "seconds": t["seconds"],
            "steps_per_s": (len(seconds) - skip) / (seconds[-1] - seconds[skip - 1]),
            "final_loss": float(ckpt.history["loss"].tail(20).mean()), **peak.report()}


def metrics(args) -> dict:
    """SGD of stores A and B and Gini/M20 of A over every galaxy (peak memory), then the streamed
    functions against the in-memory ones on 2,000-galaxy stores (the first 2,000 of A and B, read in
    4 chunks of 512)."""
    import galwidgets.metrics.chunked as chunked

    a = gw.data.open_store(Path(args.dir) / "big.h5")
    b = gw.data.open_store(Path(args.dir) / "big_b.h5")
    result = {"n": len(a), "n_b": len(b), "chunk": chunked.STORE_CHUNK}
    with PeakMemory() as peak, timed() as t:
        sgd = gw.metrics.synthetic_galaxy_distance(a, b)
    result.update(sgd_total=sgd["total"], sgd_seconds=t["seconds"],
                  **{f"sgd_{k}": v for k, v in peak.report().items()})
    with PeakMemory() as peak, timed() as t:
        gm = gw.metrics.gini_m20(a, progress=False)
    result.update(gini_m20_seconds=t["seconds"], gini_m20_median=float(gm["gini"].median()),
                  **{f"gini_{k}": v for k, v in peak.report().items()})
    # float precision: streamed (4 chunks) against in memory, on the first 2,000 of each store
    memory_a, memory_b = a[:2000], b[:2000]
    small_a = gw.data.open_store(memory_a.save(Path(args.dir) / "sub_a.h5", overwrite=True))
    small_b = gw.data.open_store(memory_b.save(Path(args.dir) / "sub_b.h5", overwrite=True))
    chunked.STORE_CHUNK = 512
    streamed_sgd = gw.metrics.synthetic_galaxy_distance(small_a, small_b)
    streamed_gm = gw.metrics.gini_m20(small_a, progress=False)
    in_memory_sgd = gw.metrics.synthetic_galaxy_distance(memory_a, memory_b)
    in_memory_gm = gw.metrics.gini_m20(memory_a, progress=False)
    result["sgd_2000_streamed"] = streamed_sgd["total"]
    result["sgd_2000_in_memory"] = in_memory_sgd["total"]
    result["sgd_2000_max_abs_diff"] = max(abs(streamed_sgd[k] - in_memory_sgd[k]) for k in in_memory_sgd)
    both = [np.asarray(t.select_dtypes("number").to_numpy(float)) for t in (streamed_gm, in_memory_gm)]
    result["gini_m20_2000_max_abs_diff"] = float(np.nanmax(np.abs(both[0] - both[1])))
    result["gini_m20_2000_same_nans"] = bool((np.isnan(both[0]) == np.isnan(both[1])).all())
    full = gm.iloc[:2000].select_dtypes("number").to_numpy(float)  # the 200k run's first rows
    result["gini_m20_full_run_first_2000_max_abs_diff"] = float(np.nanmax(np.abs(full - both[1])))
    for path in ("sub_a.h5", "sub_b.h5"):
        (Path(args.dir) / path).unlink()
    return result


def read(args) -> dict:
    """Random 64-galaxy batches read from store A in this one process (what a DataLoader worker does)."""
    store = gw.data.open_store(Path(args.dir) / "big.h5")
    rng = np.random.default_rng(0)
    batches = [rng.choice(len(store), 64, replace=False) for _ in range(args.batches)]
    store.read_images(batches[0])
    with timed() as t:
        for rows in batches:
            store.read_images(rows)
    seconds = t["seconds"]
    return {"n": len(store), "batches": args.batches, "ms_per_galaxy": 1e3 * seconds / (64 * args.batches),
            "ms_per_batch": 1e3 * seconds / args.batches}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["write", "memory", "rate", "derive", "small", "train", "metrics",
                                         "read"])
    parser.add_argument("--dir", default="/tmp/gwbench")
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--compare", type=int, default=4000, help="galaxies of the in-memory timing")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--data", choices=["big", "small", "memory"], default="big")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--deadline", type=float, default=0, help="write: stop after this many seconds")
    parser.add_argument("--batches", type=int, default=200, help="random batches of the read timing")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args()
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    parts = {"write": write, "memory": memory, "rate": rate, "derive": derive, "small": small, "train": train,
             "metrics": metrics, "read": read}
    result = parts[args.part](args)
    result["load_average"] = os.getloadavg()
    print(json.dumps({args.part: result}, indent=1, default=float))
    with open(Path(args.dir) / "results.jsonl", "a") as f:
        f.write(json.dumps({args.part: result}, default=float) + "\n")


if __name__ == "__main__":
    main()
