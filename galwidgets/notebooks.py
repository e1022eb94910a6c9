"""Run the parameterised notebooks in ``notebooks/`` with papermill, alone or as a batch.

Every notebook has a first code cell tagged ``parameters`` (typed defaults, one comment each) and
writes ``metrics.json`` (plus parquet tables and PNG figures) into its ``output_dir`` parameter.
:func:`run_notebook` executes one and reads its metrics back; :func:`run_batch` runs a grid of
parameter sets, records failures and returns one table of all results.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from ._io import atomic_path, to_jsonable, write_json

__all__ = [
    "NotebookResult",
    "available_notebooks",
    "notebook_path",
    "run_batch",
    "run_notebook",
    "write_metrics",
]

_PACKAGE = Path(__file__).parent


def _notebook_dirs() -> list[Path]:
    """Source checkout (``notebooks/`` beside the package) first, then the installed copy."""
    return [d for d in (_PACKAGE.parent / "notebooks", _PACKAGE / "_notebooks") if d.is_dir()]


def available_notebooks() -> list[str]:
    """Names of the parameterised notebooks, e.g. ``["evaluate"]``."""
    names = {p.stem for d in _notebook_dirs() for p in d.glob("*.ipynb")}
    return sorted(names)


def notebook_path(name: str | os.PathLike) -> Path:
    """Path of notebook ``name`` (a name such as ``"evaluate"`` or a path to an ``.ipynb`` file)."""
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"name: expected a notebook name or path, got {type(name).__name__}")
    candidate = Path(name)
    if candidate.suffix == ".ipynb":
        if candidate.is_file():
            return candidate
        raise FileNotFoundError(f"name: notebook file {candidate} does not exist")
    for directory in _notebook_dirs():
        path = directory / f"{name}.ipynb"
        if path.is_file():
            return path
    raise ValueError(f"name: unknown notebook {str(name)!r}; available: {available_notebooks()}")


@dataclass
class NotebookResult:
    """Outcome of one notebook run."""

    name: str
    output_dir: Path
    notebook: Path
    parameters: dict
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __repr__(self) -> str:
        state = "ok" if self.ok else f"failed: {self.error.splitlines()[0] if self.error else ''}"
        where = str(self.output_dir)
        return f"NotebookResult({self.name!r}, {state}, {self.seconds:.1f} s, output_dir={where!r})"


def write_metrics(output_dir: str | os.PathLike, metrics: Mapping[str, Any]) -> Path:
    """Write a notebook's ``metrics.json`` into ``output_dir`` atomically (NaN becomes null)."""
    return write_json(Path(output_dir) / "metrics.json", dict(metrics))


def _check_parameters(path: Path, parameters: Mapping[str, Any]) -> None:
    import papermill as pm

    known = pm.inspect_notebook(str(path))
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(
            f"parameters: notebook {path.stem!r} has no parameter(s) {unknown}; it takes {sorted(known)}"
        )


def run_notebook(
    name: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    output_dir: str | os.PathLike | None = None,
    *,
    progress: bool = True,
    timeout: float | None = None,
    raise_on_error: bool = True,
) -> NotebookResult:
    """Execute a parameterised notebook with papermill and read its ``metrics.json``.

    Parameters
    ----------
    name : str or path
        Notebook name in ``notebooks/`` (see :func:`available_notebooks`) or an ``.ipynb`` path.
    parameters : dict, optional
        Values for the notebook's ``parameters`` cell; unknown names raise ``ValueError``.
    output_dir : path, optional
        Where the executed notebook and everything it writes go; passed to the notebook as its
        ``output_dir`` parameter. Default ``galwidgets-runs/<name>-<timestamp>``.
    progress : bool
        Show papermill's cell progress bar.
    timeout : float, optional
        Seconds allowed per cell.
    raise_on_error : bool
        Raise when a cell fails (the executed notebook, with the traceback, is still written);
        with False the error is recorded in the result instead.
    """
    import papermill as pm

    path = notebook_path(name)
    parameters = dict(parameters or {})
    if "output_dir" in parameters:
        raise ValueError("parameters: pass output_dir as its own argument, not inside parameters")
    _check_parameters(path, parameters)
    if output_dir is None:
        output_dir = Path("galwidgets-runs") / f"{path.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    executed = output_dir / path.name
    stale = output_dir / "metrics.json"
    if stale.exists():
        stale.unlink()
    t0 = time.perf_counter()
    error = None
    try:
        pm.execute_notebook(
            str(path), str(executed), parameters={**parameters, "output_dir": str(output_dir)},
            kernel_name="python3", progress_bar=progress, cwd=str(output_dir),
            execution_timeout=timeout,
            # the kernel talks to us over loopback TCP; its "without encryption" warning is noise
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except Exception as exc:  # a failing cell, a dead kernel or a cell timeout
        if isinstance(exc, pm.PapermillExecutionError):
            error = f"{exc.ename}: {exc.evalue} (cell {exc.exec_count}; see {executed})"
        else:
            error = f"{type(exc).__name__}: {exc}"
        if raise_on_error:
            raise RuntimeError(f"notebook {path.stem!r} failed: {error}") from exc
    metrics = json.loads(stale.read_text()) if stale.is_file() else {}
    if error is None and not metrics:
        error = f"notebook {path.stem!r} finished but wrote no metrics.json in {output_dir}"
        if raise_on_error:
            raise RuntimeError(error)
    return NotebookResult(path.stem, output_dir, executed, parameters, metrics,
                          time.perf_counter() - t0, error)


def _expand_grid(grid: Mapping[str, Iterable] | Iterable[Mapping[str, Any]] | pd.DataFrame) -> list[dict]:
    if isinstance(grid, pd.DataFrame):
        return grid.to_dict("records")
    if isinstance(grid, Mapping):
        keys = list(grid)
        values = [v if isinstance(v, (list, tuple)) else [v] for v in grid.values()]
        return [dict(zip(keys, combo)) for combo in itertools.product(*values)]
    runs = [dict(run) for run in grid]
    if not all(isinstance(run, dict) for run in runs):
        raise TypeError("grid: expected a dict of lists, a list of dicts or a DataFrame")
    return runs


def _slug(index: int, parameters: Mapping[str, Any]) -> str:
    text = "-".join(f"{k}={v}" for k, v in parameters.items())
    return f"{index:03d}-" + re.sub(r"[^A-Za-z0-9_.=-]+", "_", text)[:80]


def run_batch(
    name: str | os.PathLike,
    grid: Mapping[str, Iterable] | Iterable[Mapping[str, Any]] | pd.DataFrame,
    output_root: str | os.PathLike = "galwidgets-batch",
    max_workers: int = 1,
    scheduler: str | None = None,
    *,
    progress: bool = True,
    timeout: float | None = None,
) -> pd.DataFrame:
    """Run a notebook once per parameter set and collect all metrics in one table.

    Parameters
    ----------
    name : str or path
        The notebook (as in :func:`run_notebook`).
    grid : dict of lists, list of dicts or DataFrame
        A dict is expanded to the Cartesian product of its values; otherwise one run per row.
    output_root : path
        Each run writes into ``output_root/<index>-<parameters>/``; the combined table is written to
        ``output_root/results.parquet`` and ``results.csv``.
    max_workers : int
        Runs executed concurrently (each in its own Jupyter kernel process).
    scheduler : {None, "threads"}
        How runs are dispatched; both mean a local thread pool driving kernel processes.
    progress : bool
        Show a progress bar over runs.
    timeout : float, optional
        Seconds allowed per cell.

    Returns
    -------
    pandas.DataFrame
        One row per run: its parameters, ``status`` (``"ok"``/``"failed"``), ``error``,
        ``seconds``, ``output_dir`` and the flattened metrics (``sgd.total``, ...). A failed run is
        recorded and the others still finish.
    """
    if scheduler not in (None, "threads"):
        raise ValueError(f"scheduler: expected None or 'threads', got {scheduler!r}")
    if not isinstance(max_workers, int) or max_workers < 1:
        raise ValueError(f"max_workers: expected a positive integer, got {max_workers!r}")
    path = notebook_path(name)
    runs = _expand_grid(grid)
    if not runs:
        raise ValueError("grid: expected at least one parameter set")
    for run in runs:
        _check_parameters(path, run)
    root = Path(output_root)
    root.mkdir(parents=True, exist_ok=True)

    def one(index: int, parameters: dict) -> dict:
        result = run_notebook(path, parameters, root / _slug(index, parameters), progress=False,
                              timeout=timeout, raise_on_error=False)
        row = {"run": index, **parameters, "status": "ok" if result.ok else "failed",
               "error": result.error, "seconds": round(result.seconds, 2),
               "output_dir": str(result.output_dir)}
        flat = pd.json_normalize(to_jsonable(result.metrics)).to_dict("records")
        return {**row, **(flat[0] if flat else {})}

    rows = []
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        futures = [pool.submit(one, i, run) for i, run in enumerate(runs)]
        for future in tqdm(as_completed(futures), total=len(futures), desc=f"batch {path.stem}",
                           disable=not progress):
            rows.append(future.result())
    table = pd.DataFrame(rows).sort_values("run").reset_index(drop=True)
    with atomic_path(root / "results.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(root / "results.parquet") as tmp:
        table.astype({c: str for c in table.columns if table[c].dtype == object}).to_parquet(tmp)
    return table
