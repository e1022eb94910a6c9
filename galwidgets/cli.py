"""Command line: ``galwidgets demo | run NOTEBOOK -p key value | batch NOTEBOOK --grid FILE | list``."""

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
    demo.add_argument("--steps", type=int, default=50, help="DDIM steps")
    demo.add_argument("--seed", type=int, default=2026, help="random seed")
    demo.add_argument("--model", default="desi-tiny", help="shipped checkpoint")
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress output")

    run = sub.add_parser("run", help="execute one parameterised notebook")
    run.add_argument("notebook", help="notebook name (see `galwidgets list`) or .ipynb path")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                     help="set a notebook parameter (repeatable); VALUE is parsed as JSON when it can be")
    run.add_argument("-o", "--output-dir", help="output folder (default: galwidgets-runs/NAME-TIME)")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    batch = sub.add_parser("batch", help="execute a notebook over a grid of parameters",
                           formatter_class=defaults)
    batch.add_argument("notebook", help="notebook name or .ipynb path")
    batch.add_argument("--grid", required=True, help="JSON file: a dict of lists or a list of dicts")
    batch.add_argument("-o", "--output-root", default="galwidgets-batch", help="output folder")
    batch.add_argument("-j", "--max-workers", type=int, default=1, help="concurrent runs")
    batch.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    sub.add_parser("list", help="list the notebooks and shipped models")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as exc:
        print(f"galwidgets {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from .demo import run_demo, summary

        result = run_demo(args.output_dir, args.n_generated, args.n_reference, args.steps, args.seed,
                          args.model, progress=not args.quiet)
        print(summary(result))
        return 0
    if args.command == "run":
        from .notebooks import run_notebook

        params = {key: parse_value(value) for key, value in args.parameter}
        result = run_notebook(args.notebook, params, args.output_dir, progress=not args.quiet)
        print(json.dumps(result.metrics, indent=2, sort_keys=True))
        print(f"executed notebook: {result.notebook}")
        return 0
    if args.command == "batch":
        from .notebooks import run_batch

        grid_file = Path(args.grid)
        if not grid_file.is_file():
            raise FileNotFoundError(f"--grid: no such file {grid_file}")
        table = run_batch(args.notebook, json.loads(grid_file.read_text()), args.output_root,
                          max_workers=args.max_workers, progress=not args.quiet)
        print(table.to_string(max_cols=12))
        print(f"results: {Path(args.output_root) / 'results.parquet'}")
        return 0 if (table["status"] == "ok").all() else 1
    if args.command == "list":
        from . import pretrained
        from .notebooks import available_notebooks

        print("notebooks:", ", ".join(available_notebooks()))
        print("shipped models:")
        print(pretrained.available().to_string(index=False))
        return 0
    raise AssertionError(args.command)  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
