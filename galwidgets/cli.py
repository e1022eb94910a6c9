"""Command line: ``galwidgets demo | run NOTEBOOK -p key value | batch NOTEBOOK --grid FILE | list``.

Exit codes: 0 success, 1 a batch finished with failed runs, 2 bad input or a failed ``run``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "parse_value"]


def parse_value(text: str) -> Any:
    """Interpret a command-line parameter value: JSON (numbers, true/false, null, lists), else text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="galwidgets", description="Diffusion models of galaxy images.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    defaults = argparse.ArgumentDefaultsHelpFormatter
    demo = sub.add_parser("demo", help="simulate held-out galaxies, sample the shipped model, evaluate",
                          formatter_class=defaults)
    demo.add_argument("-o", "--output-dir", default="galwidgets-demo", help="output folder")
    demo.add_argument("--n-generated", type=int, default=64, help="galaxies to sample")
    demo.add_argument("--n-reference", type=int, default=128, help="held-out mock galaxies")
    demo.add_argument("--sampler", default=None,
                      help="sampler, a name of gw.samplers.SAMPLERS (default: the fastest to 50-step DDIM's "
                           "quality, gw.samplers.DEFAULT_SAMPLER)")
    demo.add_argument("--steps", type=int, default=None, help="sampler steps (default: the sampler's)")
    demo.add_argument("--seed", type=int, default=2026, help="random seed")
    demo.add_argument("--model", default="desi-tiny", help="shipped checkpoint")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress output")

    run = sub.add_parser("run", help="execute one parameterised notebook", formatter_class=defaults)
    run.add_argument("notebook", help="notebook name (see `galwidgets list`) or .ipynb path")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                     help="set a notebook parameter (repeatable); VALUE is parsed as JSON when it can be")
    run.add_argument("-o", "--output-dir", help="output folder (default: galwidgets-runs/NAME-TIME)")
    run.add_argument("--threads", type=int, help="CPU threads of the run (OMP_NUM_THREADS; None: inherit)")
    run.add_argument("--timeout", type=float, help="seconds allowed per cell")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    batch = sub.add_parser("batch", help="execute a notebook over a grid of parameters; rerun to resume",
                           formatter_class=defaults)
    batch.add_argument("notebook", help="notebook name or .ipynb path")
    batch.add_argument("--grid", help="YAML or JSON file: a dict of lists (every combination is a run) "
                       "or a list of dicts (one run each); optional with --only-failed")
    batch.add_argument("-o", "--output-root", default="galwidgets-batch", help="output folder")
    batch.add_argument("-j", "--max-workers", type=int,
                       help="concurrent runs (None: usable CPUs / threads; with dask: as the cluster takes)")
    batch.add_argument("--threads", type=int, help="CPU threads per run (None: CPUs / max-workers, or 1)")
    batch.add_argument("--scheduler", default="local",
                       help="'local' (a pool on this machine) or a dask.distributed scheduler address")
    batch.add_argument("--only-failed", action="store_true",
                       help="rerun only the failed runs of the batch in OUTPUT_ROOT")
    batch.add_argument("--no-resume", action="store_true", help="rerun runs that already finished ok")
    batch.add_argument("--dry-run", action="store_true", help="list the runs, execute nothing")
    batch.add_argument("--timeout", type=float, help="seconds allowed per cell")
    batch.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    sub.add_parser("list", help="list the notebooks and shipped models")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except (ValueError, TypeError, OSError, RuntimeError, ImportError) as exc:
        print(f"galwidgets {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from .demo import run_demo, summary

        result = run_demo(args.output_dir, args.n_generated, args.n_reference, args.steps, args.seed,
                          args.model, progress=not args.quiet, sampler=args.sampler)
        print(summary(result))
        return 0
    if args.command == "run":
        from .notebooks import run_notebook

        params = {key: parse_value(value) for key, value in args.parameter}
        result = run_notebook(args.notebook, params, args.output_dir, threads=args.threads,
                              timeout=args.timeout, progress=not args.quiet)
        print(json.dumps(result.metrics, indent=2, sort_keys=True))
        print(f"executed notebook: {result.notebook}")
        return 0
    if args.command == "batch":
        return _batch(args)
    if args.command == "list":
        from . import pretrained
        from .notebooks import available_notebooks

        print("notebooks:", ", ".join(available_notebooks()))
        print("shipped models:")
        print(pretrained.available().to_string(index=False))
        return 0
    raise AssertionError(args.command)  # pragma: no cover


def _batch(args: argparse.Namespace) -> int:
    from .notebooks import run_batch

    if args.grid is None and not args.only_failed:
        raise ValueError("--grid: expected a YAML or JSON grid file (optional only with --only-failed)")
    table = run_batch(args.notebook, args.grid, args.output_root, max_workers=args.max_workers,
                      scheduler=args.scheduler, threads=args.threads, only_failed=args.only_failed,
                      resume=not args.no_resume, dry_run=args.dry_run, timeout=args.timeout,
                      progress=not args.quiet)
    shown = [c for c in table.columns if c not in ("error", "output_dir")]
    print(table[shown].to_string(max_cols=12, index=False))
    for row in table.itertuples():
        if row.status not in ("ok", "pending"):
            print(f"run {row.run} {row.status}: {row.error}")
    if args.dry_run:
        print(f"dry run: {(table.status == 'pending').sum()} of {len(table)} runs would execute")
        return 0
    counts = table.status.value_counts().to_dict()
    print(", ".join(f"{n} {status}" for status, n in counts.items()) + f" of {len(table)} runs; "
          f"results: {Path(args.output_root) / 'results.parquet'} (and .csv)")
    return 0 if (table["status"] == "ok").all() else 1


if __name__ == "__main__":
    sys.exit(main())
