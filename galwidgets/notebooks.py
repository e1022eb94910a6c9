"""Run the parameterised notebooks in ``notebooks/`` with papermill, alone or as a batch.

Every notebook has a first code cell tagged ``parameters`` (typed defaults, one comment each) and
writes ``metrics.json`` (plus parquet tables and PNG figures) into its ``output_dir`` parameter.
:func:`run_notebook` executes one in its own papermill process (whose Jupyter kernel inherits the
thread limits of the run) and records it in ``run.json``; :func:`run_batch` runs a grid of
parameter sets on a bounded local pool or a dask.distributed cluster, records failures, resumes an
interrupted batch and returns one table of all results.
"""

from __future__ import annotations

import ast
import codecs
import hashlib
import itertools
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pandas as pd
from tqdm.auto import tqdm

from ._io import atomic_path, to_jsonable, write_json
from ._parallel import THREAD_VARIABLES, check_scheduler, dask_client, usable_cpus
from ._validation import check_positive, check_positive_int
from ._version import __version__

__all__ = [
    "WARM_IMPORTS",
    "NotebookResult",
    "WarmKernel",
    "available_notebooks",
    "expand_grid",
    "notebook_path",
    "run_batch",
    "run_notebook",
    "warm_kernel",
    "write_metrics",
]

_PACKAGE = Path(__file__).parent
RUN_FILE = "run.json"  # one per run folder: parameters, status, metrics, timing
BATCH_FILE = "batch.json"  # one per batch folder: the notebook and the grid of the last call
_LIVE: set[subprocess.Popen] = set()  # papermill processes of this process, stopped on an interrupt
_LIVE_LOCK = threading.Lock()


def _notebook_dirs() -> list[Path]:
    """Source checkout (``notebooks/`` beside the package) first, then the installed copy."""
    return [d for d in (_PACKAGE.parent / "notebooks", _PACKAGE / "_notebooks") if d.is_dir()]


def available_notebooks() -> list[str]:
    """Names of the parameterised notebooks, e.g. ``["evaluate", "sample", "train"]``."""
    names = {p.stem for d in _notebook_dirs() for p in d.glob("*.ipynb")}
    return sorted(names)


def notebook_path(name: str | os.PathLike) -> Path:
    """Path of notebook ``name`` (a name such as ``"evaluate"`` or a path to an ``.ipynb`` file)."""
    if not isinstance(name, (str, os.PathLike)):
        raise TypeError(f"name: expected a notebook name or path, got {type(name).__name__}")
    candidate = Path(name)
    if candidate.suffix == ".ipynb":
        if candidate.is_file():
            return candidate.resolve()
        raise FileNotFoundError(f"name: notebook file {candidate} does not exist")
    for directory in _notebook_dirs():
        path = directory / f"{name}.ipynb"
        if path.is_file():
            return path
    raise ValueError(f"name: unknown notebook {str(name)!r}; available: {available_notebooks()}")


@dataclass
class NotebookResult:
    """Outcome of one notebook run (also stored as ``run.json`` in its ``output_dir``).

    ``status`` is ``"ok"`` or ``"failed"`` (then ``error`` says why and ``notebook`` holds the
    partially executed notebook with the traceback); ``seconds`` is the elapsed wall-clock time.
    """

    name: str
    output_dir: Path
    notebook: Path
    parameters: dict
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    status: str = ""

    def __post_init__(self) -> None:
        if not self.status:
            self.status = "ok" if self.error is None else "failed"

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def __repr__(self) -> str:
        state = "ok" if self.ok else f"{self.status}: {self.error.splitlines()[0] if self.error else ''}"
        where = str(self.output_dir)
        return f"NotebookResult({self.name!r}, {state}, {self.seconds:.1f} s, output_dir={where!r})"

    @classmethod
    def load(cls, output_dir: str | os.PathLike) -> NotebookResult:
        """Read the ``run.json`` that :func:`run_notebook` wrote into ``output_dir``."""
        record = json.loads((Path(output_dir) / RUN_FILE).read_text())
        return cls._from_record(record, Path(output_dir))

    @classmethod
    def _from_record(cls, record: Mapping[str, Any], output_dir: Path) -> NotebookResult:
        return cls(record["notebook"], output_dir, output_dir / record.get("executed", ""),
                   dict(record["parameters"]), record.get("metrics") or {}, record.get("seconds", 0.0),
                   record.get("error"), record["status"])


def write_metrics(output_dir: str | os.PathLike, metrics: Mapping[str, Any]) -> Path:
    """Write a notebook's ``metrics.json`` into ``output_dir`` atomically (NaN becomes null)."""
    return write_json(Path(output_dir) / "metrics.json", dict(metrics))


def _notebook_parameters(path: Path) -> set[str]:
    """Names assigned in the notebook's cell tagged ``parameters``: the ones papermill can set.

    Read with :mod:`ast` rather than ``papermill.inspect_notebook`` (the same names for these
    notebooks, see the tests), which would cost this process papermill's one-second import.
    """
    try:
        cells = json.loads(path.read_text()).get("cells", [])
    except (OSError, ValueError) as exc:
        raise ValueError(f"name: cannot read notebook {path}: {exc}") from exc
    for cell in cells:
        if cell.get("cell_type") == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            source = cell.get("source", "")
            try:
                body = ast.parse("".join(source) if isinstance(source, list) else source).body
            except SyntaxError as exc:
                raise ValueError(f"name: the parameters cell of {path} is not valid Python: {exc}") from exc
            targets = [t for node in body if isinstance(node, (ast.Assign, ast.AnnAssign))
                       for t in (node.targets if isinstance(node, ast.Assign) else [node.target])]
            return {t.id for t in targets if isinstance(t, ast.Name)}
    return set()


def _check_parameters(path: Path, parameters: Mapping[str, Any], argument: str = "parameters",
                      known: set[str] | None = None) -> None:
    if "output_dir" in parameters:
        raise ValueError(f"{argument}: output_dir is set per run (pass output_dir/output_root), "
                         "not as a notebook parameter")
    known = _notebook_parameters(path) if known is None else known
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise ValueError(f"{argument}: notebook {path.stem!r} has no parameter(s) {unknown}; "
                         f"it takes {sorted(known)}")


def _check_threads(threads: int | None) -> int | None:
    return None if threads is None else check_positive_int(threads, "threads")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# --- one run: papermill in a subprocess ------------------------------------------------------------

# The papermill process. Its first line of stdin is a warm start ({"cwd": ..., "preload": [...]}:
# start the kernel in cwd and import those modules there before the job comes) or {}; the rest is
# the job (JSON). It executes the job and writes the outcome to a file. Plain source (not an import
# of this module) so that it starts without pandas.
_CHILD = """
import json, signal, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # papermill can shut its kernel down
QUIET = ["--IPKernelApp.log_level=ERROR"]  # the kernel talks to us over loopback TCP: no warning


km = None  # a kernel this process started: it shuts it down on every way out


async def start_kernel(cwd, preload):
    global km
    from jupyter_client.manager import AsyncKernelManager
    km = AsyncKernelManager(kernel_name="python3")
    await km.start_kernel(cwd=cwd, extra_arguments=QUIET)
    import papermill  # noqa: F401  (while the kernel boots in its own process)
    kc = km.client()
    kc.start_channels()
    try:
        await kc.wait_for_ready(timeout=60)
        code = ("for _gw_module in %r:\\n    try:\\n        __import__(_gw_module)\\n"
                "    except Exception:\\n        pass\\ndel _gw_module" % list(preload))
        await kc.execute_interactive(code, silent=True, store_history=False, timeout=300)
    finally:
        kc.stop_channels()


def shutdown(now=False):
    global km
    if km is not None and km.has_kernel:
        try:
            run_sync(km.shutdown_kernel)(now=now)
        except BaseException:
            run_sync(km.shutdown_kernel)(now=True)
    km = None


warm = json.loads(sys.stdin.readline() or "{}")
try:
    if warm:
        from jupyter_core.utils import run_sync
        # Ctrl-C in the terminal reaches this process too: while waiting, the parent decides (it
        # closes stdin or sends SIGTERM); once the job runs, Ctrl-C interrupts it as in a cold run
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            run_sync(start_kernel)(warm["cwd"], warm.get("preload", []))
        except Exception as exc:  # papermill starts its own kernel instead
            print(f"warm kernel failed ({type(exc).__name__}: {exc}); the run starts its own",
                  file=sys.stderr)
            shutdown(now=True)
    text = sys.stdin.read()
    if not text:  # closed without a job
        sys.exit(0)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    job = json.loads(text)
    import papermill as pm
    error = None
    try:
        pm.execute_notebook(
            job["input"], job["output"], parameters=job["parameters"], kernel_name="python3",
            progress_bar=job["progress"], cwd=job["cwd"], execution_timeout=job["timeout"],
            extra_arguments=QUIET, **({} if km is None else {"km": km}),
        )
    except pm.PapermillExecutionError as exc:
        error = f"{exc.ename}: {exc.evalue} (cell {exc.exec_count}; see {job['output']})"
    except Exception as exc:  # a dead kernel, a cell timeout, an unreadable notebook
        error = f"{type(exc).__name__}: {exc}"
    except KeyboardInterrupt:
        error = "interrupted (KeyboardInterrupt)"
    with open(job["outcome"], "w") as f:
        json.dump({"error": error}, f)
finally:
    shutdown()
"""


def _relay(stream: IO[bytes], log: IO[bytes], echo: threading.Event) -> None:
    """Copy the papermill process's stderr into ``run.log`` (and to our stderr while ``echo`` is set)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for chunk in iter(lambda: stream.read1(4096), b""):
        log.write(chunk)
        log.flush()
        if echo.is_set():
            sys.stderr.write(decoder.decode(chunk))
            sys.stderr.flush()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stop_all() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for proc in live:
        _stop(proc)


def _tail(path: Path, lines: int = 6) -> str:
    text = path.read_text(errors="replace") if path.is_file() else ""
    return "\n".join(text.replace("\r", "\n").strip().splitlines()[-lines:])


@dataclass(eq=False)
class _Child:
    """A running papermill process, the thread copying its output into ``run.log``, and the log."""

    process: subprocess.Popen
    relay: threading.Thread
    log: IO[bytes]
    echo: threading.Event


def _spawn(env: dict[str, str], log_path: Path, progress: bool, warm: dict | None = None) -> _Child:
    """Start the papermill process; with ``warm`` it starts its kernel before the job comes."""
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    echo = threading.Event()
    if progress:
        echo.set()
    relay = threading.Thread(target=_relay, args=(proc.stdout, log, echo), daemon=True)
    relay.start()
    with _LIVE_LOCK:
        _LIVE.add(proc)
    proc.stdin.write((json.dumps(warm or {}) + "\n").encode())
    proc.stdin.flush()
    return _Child(proc, relay, log, echo)


def _finish(child: _Child, job: dict | None, log_path: Path, progress: bool = False) -> str | None:
    """Send ``job`` to the papermill process (None: no job, just stop it) and wait for it."""
    outcome = log_path.with_name(".run-outcome.json")
    outcome.unlink(missing_ok=True)
    proc = child.process
    if progress:
        child.echo.set()
    try:
        try:
            if job is not None:
                proc.stdin.write(json.dumps({**job, "outcome": str(outcome)}).encode())
            proc.stdin.close()
        except BrokenPipeError:  # the process is gone; its exit code says how
            pass
        proc.wait()
    except BaseException:  # KeyboardInterrupt: take the papermill process (and kernel) down too
        _stop(proc)
        raise
    finally:
        with _LIVE_LOCK:
            _LIVE.discard(proc)
        child.relay.join(5)  # a process the notebook left running may hold the pipe: do not wait on it
        child.log.close()
    if job is None:
        return None
    if outcome.is_file():
        error = json.loads(outcome.read_text())["error"]
        outcome.unlink()
        return error
    why = "interrupted" if proc.returncode in (143, -15, -9, -2) else "crashed"
    return (f"papermill process {why} (exit code {proc.returncode}); last lines of {log_path}:\n"
            f"{_tail(log_path)}")


def _execute(job: dict, env: dict[str, str], log_path: Path, progress: bool) -> str | None:
    """Run papermill for ``job`` in a child process; returns the error message or None.

    The child's output (papermill's progress bar and log, the kernel's stray output) goes to
    ``log_path``, and to our stderr when ``progress``.
    """
    return _finish(_spawn(env, log_path, progress), job, log_path, progress)


#: Modules a warm kernel imports by default: what the evaluation notebooks spend their first
#: seconds importing.
WARM_IMPORTS = ("numpy", "pandas", "matplotlib.pyplot", "torch", "astropy.io.fits", "pyarrow.parquet",
                "galwidgets.data.surveys", "galwidgets.metrics", "galwidgets.viz")


class WarmKernel:
    """A notebook process whose Jupyter kernel starts (and imports) while this process works.

    Made by :func:`warm_kernel`; pass it to :func:`run_notebook` as ``kernel=`` to run one notebook
    in it, in its ``output_dir``. Start-up and imports (seconds on a small machine) then overlap
    with whatever this process does in the meantime, e.g. sampling the galaxies the notebook
    evaluates. One run per kernel; :meth:`close` (or a ``with`` block) shuts an unused one down.
    """

    def __init__(self, output_dir: Path, threads: int | None, child: _Child, log_path: Path) -> None:
        self.output_dir = output_dir
        self.threads = threads
        self._child: _Child | None = child
        self._log_path = log_path

    @property
    def used(self) -> bool:
        """True once a run took the kernel or it was closed."""
        return self._child is None

    @property
    def pid(self) -> int | None:
        """Process id of the notebook process (the kernel is its child); None once used."""
        return None if self._child is None else self._child.process.pid

    def _take(self) -> _Child:
        if self._child is None:
            raise ValueError("kernel: this WarmKernel was already used or closed; start another with "
                             "gw.notebooks.warm_kernel")
        child, self._child = self._child, None
        return child

    def close(self) -> None:
        """Shut the kernel down if no run took it (safe to call twice)."""
        if self._child is not None:
            _finish(self._take(), None, self._log_path)

    def __enter__(self) -> WarmKernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"WarmKernel(output_dir={str(self.output_dir)!r}, {'used' if self.used else 'ready'})"


def warm_kernel(output_dir: str | os.PathLike, *, threads: int | None = None,
                imports: tuple[str, ...] | list[str] = WARM_IMPORTS) -> WarmKernel:
    """Start a notebook process and its kernel in ``output_dir`` now, for a :func:`run_notebook` later.

    Returns at once; the kernel starts and imports ``imports`` in the background. A notebook run in
    it (``run_notebook(name, parameters, output_dir, kernel=k)``) behaves as in a fresh kernel: its
    cells see an empty namespace, only the modules are already in ``sys.modules``.

    Parameters
    ----------
    output_dir : path
        Folder of the run that will use the kernel (its working directory; created if missing).
    threads : int, optional
        CPU threads of the run, as in :func:`run_notebook`; fixed when the kernel starts.
    imports : sequence of str
        Modules the kernel imports ahead of the run; a module that fails to import is skipped.

    Returns
    -------
    WarmKernel
        Pass it to :func:`run_notebook` as ``kernel=``; :meth:`WarmKernel.close` when unused.
    """
    threads = _check_threads(threads)
    if isinstance(imports, str) or not all(isinstance(m, str) for m in imports):
        raise TypeError(f"imports: expected a list of module names, got {imports!r}")
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    log_path = output_dir / "run.log"
    child = _spawn(_run_env(threads), log_path, progress=False,
                   warm={"cwd": str(output_dir), "preload": list(imports)})
    return WarmKernel(output_dir, threads, child, log_path)


def _run_env(threads: int | None) -> dict[str, str]:
    """Environment of the papermill process; the kernel inherits it (torch reads OMP_NUM_THREADS)."""
    env = dict(os.environ)
    if threads is not None:
        env.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    return env


def _record(result: NotebookResult, started: str, threads: int | None) -> dict:
    return {"notebook": result.name, "status": result.status, "error": result.error,
            "parameters": result.parameters, "metrics": result.metrics,
            "seconds": round(result.seconds, 3), "started": started, "finished": _now(),
            "threads": threads, "executed": result.notebook.name, "host": socket.gethostname(),
            "galwidgets": __version__}


def _match_kernel(kernel: WarmKernel, output_dir: str | os.PathLike | None,
                  threads: int | None) -> tuple[Path, int | None]:
    """The run's output_dir and threads, checked against those ``kernel`` was started with."""
    if not isinstance(kernel, WarmKernel):
        raise TypeError(f"kernel: expected a WarmKernel from warm_kernel(), got {type(kernel).__name__}")
    if kernel.used:
        raise ValueError("kernel: this WarmKernel was already used or closed")
    if output_dir is not None and Path(output_dir).resolve() != kernel.output_dir:
        raise ValueError(f"kernel: started in {kernel.output_dir}, not in output_dir {output_dir}")
    if threads is not None and threads != kernel.threads:
        raise ValueError(f"kernel: started with threads={kernel.threads}, not threads={threads}")
    return kernel.output_dir, kernel.threads


def run_notebook(
    name: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    output_dir: str | os.PathLike | None = None,
    *,
    threads: int | None = None,
    progress: bool = True,
    timeout: float | None = None,
    raise_on_error: bool = True,
    kernel: WarmKernel | None = None,
) -> NotebookResult:
    """Execute a parameterised notebook with papermill in its own process and read its metrics.

    The run is recorded in ``output_dir/run.json`` (parameters, ``status``, metrics, elapsed time,
    written atomically at the start with status ``"running"`` and again when it ends); the
    papermill process's log goes to ``output_dir/run.log``.

    Parameters
    ----------
    name : str or path
        Notebook name in ``notebooks/`` (see :func:`available_notebooks`) or an ``.ipynb`` path.
    parameters : dict, optional
        Values for the notebook's ``parameters`` cell; unknown names raise ``ValueError``.
    output_dir : path, optional
        Where the executed notebook and everything it writes go; passed to the notebook as its
        ``output_dir`` parameter. Default ``galwidgets-runs/<name>-<timestamp>``.
    threads : int, optional
        CPU threads of the run: sets ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` (and the other BLAS
        variables) for the papermill process and so its kernel, where torch reads it at import.
        Default: inherit this process's environment.
    progress : bool
        Show papermill's cell progress bar.
    timeout : float, optional
        Seconds allowed per cell.
    raise_on_error : bool
        Raise ``RuntimeError`` when the run fails (the executed notebook, with the traceback, is
        still written); with False the error is recorded in the result instead.
    kernel : WarmKernel, optional
        A kernel started earlier by :func:`warm_kernel` for this ``output_dir`` (and ``threads``),
        so that its start-up overlapped with other work; the run uses it up.

    Returns
    -------
    NotebookResult
        ``metrics`` (the notebook's ``metrics.json``), ``status``, ``error``, ``seconds`` and paths.
    """
    if kernel is not None:
        output_dir, threads = _match_kernel(kernel, output_dir, threads)
    path = notebook_path(name)
    if parameters is not None and not isinstance(parameters, Mapping):
        raise TypeError("parameters: expected a dict of notebook parameters, got "
                        f"{type(parameters).__name__}")
    parameters = to_jsonable(dict(parameters or {}))
    _check_parameters(path, parameters)
    threads = _check_threads(threads)
    timeout = None if timeout is None else check_positive(timeout, "timeout")
    if output_dir is None:
        output_dir = Path("galwidgets-runs") / f"{path.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    executed = output_dir / path.name
    metrics_file = output_dir / "metrics.json"
    metrics_file.unlink(missing_ok=True)
    started = _now()
    pending = NotebookResult(path.stem, output_dir, executed, parameters, status="running")
    write_json(output_dir / RUN_FILE, _record(pending, started, threads))

    t0 = time.perf_counter()
    job = {"input": str(path), "output": str(executed), "cwd": str(output_dir), "timeout": timeout,
           "progress": progress, "parameters": {**parameters, "output_dir": str(output_dir)}}
    if kernel is None:
        error = _execute(job, _run_env(threads), output_dir / "run.log", progress)
    else:
        error = _finish(kernel._take(), job, output_dir / "run.log", progress)
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    if error is None and not metrics:
        error = f"notebook {path.stem!r} finished but wrote no metrics.json in {output_dir}"
    result = NotebookResult(path.stem, output_dir, executed, parameters, metrics,
                            time.perf_counter() - t0, error)
    write_json(output_dir / RUN_FILE, _record(result, started, threads))
    if error is not None and raise_on_error:
        raise RuntimeError(f"notebook {path.stem!r} failed: {error}")
    return result


# --- grids ---------------------------------------------------------------------------------------

def _read_grid_file(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"grid: no such file {path}")
    if path.suffix.lower() not in (".yaml", ".yml", ".json"):
        raise ValueError(f"grid: expected a .yaml, .yml or .json file, got {path.name!r}")
    text = path.read_text()
    if path.suffix.lower() == ".json":
        return json.loads(text)
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"grid: {path} is not valid YAML: {exc}") from exc


def _canonical(parameters: Mapping[str, Any]) -> str:
    return json.dumps(to_jsonable(dict(parameters)), sort_keys=True)


def _values(value: Any) -> list:
    """The values one parameter takes in a dict grid: a list, tuple, range or 1-D array, else itself."""
    if isinstance(value, (list, tuple, range)):
        return list(value)
    if getattr(value, "ndim", None) == 1 and hasattr(value, "tolist"):  # numpy array, pandas Series
        return value.tolist()
    return [value]


def expand_grid(grid: Any) -> list[dict]:
    """The list of parameter sets (one per run) described by ``grid``.

    Parameters
    ----------
    grid : dict, list of dicts, DataFrame or path
        A dict maps parameter names to a list of values (also a tuple, range or 1-D array; any
        other value is used by every run) and is expanded to the Cartesian product, in order; to
        pass a list as *one* value, wrap it: ``{"bands": [["g", "r"]]}``. A list of dicts or a
        DataFrame gives one run per item or row. A path (str or Path) to a ``.yaml``/``.yml`` or
        ``.json`` file holding either form.

    Raises
    ------
    TypeError, ValueError
        For any other type, non-string names, an empty list of values, no runs or a repeated run.
    """
    if isinstance(grid, (str, os.PathLike)):
        grid = _read_grid_file(Path(grid))
    if isinstance(grid, pd.DataFrame):
        runs = grid.to_dict("records")
    elif isinstance(grid, Mapping):
        values = [_values(value) for value in grid.values()]
        for key, options in zip(grid, values):
            if not options:
                raise ValueError(f"grid: parameter {key!r} has an empty list of values")
        runs = [dict(zip(grid, combo)) for combo in itertools.product(*values)]
    elif isinstance(grid, (list, tuple)) and all(isinstance(run, Mapping) for run in grid):
        runs = [dict(run) for run in grid]
    else:
        raise TypeError("grid: expected a dict of lists, a list of dicts, a DataFrame or a .yaml/.json "
                        f"file, got {type(grid).__name__}")
    if not runs:
        raise ValueError("grid: expected at least one run, got none")
    seen: dict[str, int] = {}
    for i, run in enumerate(runs):
        bad = [k for k in run if not isinstance(k, str)]
        if bad:
            raise TypeError(f"grid: parameter names must be strings, got {bad!r}")
        key = _canonical(run)
        if key in seen:
            raise ValueError(f"grid: run {i} repeats run {seen[key]} ({run})")
        seen[key] = i
    return [to_jsonable(run) for run in runs]


def _slug(index: int, parameters: Mapping[str, Any]) -> str:
    text = "-".join(f"{k}={v}" for k, v in parameters.items())
    digest = hashlib.sha1(_canonical(parameters).encode()).hexdigest()[:8]
    return f"{index:03d}-" + re.sub(r"[^A-Za-z0-9_.=-]+", "_", text)[:60] + f"-{digest}"


# --- batches -------------------------------------------------------------------------------------

def _run_task(notebook: str, parameters: dict, output_dir: str, threads: int | None,
              timeout: float | None) -> dict:
    """One run of a batch, as a top-level function so dask can ship it; never raises."""
    t0 = time.perf_counter()
    try:
        result = run_notebook(notebook, parameters, output_dir, threads=threads, progress=False,
                              timeout=timeout, raise_on_error=False)
        return {**_record(result, "", threads), "output_dir": str(result.output_dir)}
    except Exception as exc:  # e.g. an unwritable output folder: record it, keep the batch going
        return {"notebook": Path(notebook).stem, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                "parameters": parameters, "metrics": {}, "seconds": round(time.perf_counter() - t0, 3),
                "output_dir": output_dir}


def _previous_runs(root: Path, notebook: str) -> dict[str, tuple[Path, dict]]:
    """Canonical parameters -> (folder, record) of the runs already in a batch folder."""
    found = {}
    for record_file in sorted(root.glob(f"*/{RUN_FILE}")):
        try:
            record = json.loads(record_file.read_text())
            if record["notebook"] == notebook:
                found[_canonical(record["parameters"])] = (record_file.parent, record)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable: the run is simply done again
    return found


def _stored_batch(root: Path) -> dict:
    path = root / BATCH_FILE
    if not path.is_file():
        raise FileNotFoundError(f"output_root: {root} holds no batch ({BATCH_FILE} missing); "
                                "run the batch with a grid first")
    return json.loads(path.read_text())


def _completed(submit: Callable[[tuple], Any], jobs: list[tuple], limit: int, dask: bool) -> Iterator[Any]:
    """Submit ``jobs`` keeping at most ``limit`` running; yield each future as it finishes."""
    queue = list(reversed(jobs))
    running = {submit(queue.pop()) for _ in range(min(limit, len(queue)))}
    if dask:
        from distributed import as_completed

        stream = as_completed(running)
        for future in stream:
            if queue:
                stream.add(submit(queue.pop()))
            yield future
        return
    while running:
        done, running = wait(running, return_when=FIRST_COMPLETED)
        for future in done:
            if queue:
                running.add(submit(queue.pop()))
            yield future


def _row(index: int, record: Mapping[str, Any], output_dir: Path | str, reused: bool) -> dict:
    params = dict(record["parameters"])
    row = {"run": index, **params, "status": record["status"], "error": record.get("error"),
           "seconds": record.get("seconds"), "output_dir": str(output_dir), "reused": reused}
    flat = pd.json_normalize(to_jsonable(record.get("metrics") or {})).to_dict("records")
    for key, value in (flat[0] if flat else {}).items():
        row[f"metrics.{key}" if key in row else key] = value
    return row


def _write_table(table: pd.DataFrame, root: Path) -> None:
    """``results.csv`` and ``results.parquet``, atomically; list/dict cells become JSON text."""
    out = table.copy()
    for column in [c for c in out.columns if pd.api.types.is_object_dtype(out[c])]:
        values = out[column].dropna()
        if not all(isinstance(v, str) for v in values):
            out[column] = out[column].map(lambda v: v if v is None or isinstance(v, str)
                                          else json.dumps(to_jsonable(v)))
    with atomic_path(root / "results.csv") as tmp:
        out.to_csv(tmp, index=False)
    with atomic_path(root / "results.parquet") as tmp:
        out.to_parquet(tmp, index=False)


def _pool_size(max_workers: int | None, threads: int | None, dask: bool) -> tuple[int | None, int | None]:
    """(concurrent runs, threads per run): split the usable CPUs when either is left as None."""
    max_workers = None if max_workers is None else check_positive_int(max_workers, "max_workers")
    threads = _check_threads(threads)
    if dask:  # the cluster's worker slots bound the concurrency unless max_workers says otherwise
        return max_workers or 10**9, threads or 1
    cpus = usable_cpus()
    if threads is None:
        threads = 1 if max_workers is None else max(1, cpus // max_workers)
    return max_workers or max(1, cpus // threads), threads


def run_batch(
    name: str | os.PathLike,
    grid: Any = None,
    output_root: str | os.PathLike = "galwidgets-batch",
    max_workers: int | None = None,
    scheduler: Any = None,
    *,
    threads: int | None = None,
    only_failed: bool = False,
    resume: bool = True,
    dry_run: bool = False,
    progress: bool = True,
    timeout: float | None = None,
) -> pd.DataFrame:
    """Run a notebook once per parameter set and collect all metrics in one table.

    Each run is :func:`run_notebook` in its own papermill process and folder
    ``output_root/<index>-<parameters>-<hash>/`` with a ``run.json``. A failing run is recorded with
    its error and its partially executed notebook while the others finish. Running the same call
    again resumes: runs whose ``run.json`` says ``"ok"`` for identical parameters are reused, the
    rest (failed, interrupted, new) are executed.

    Parameters
    ----------
    name : str or path
        The notebook (as in :func:`run_notebook`).
    grid : dict of lists, list of dicts, DataFrame or path to a .yaml/.json file
        The runs, see :func:`expand_grid`. May be omitted with ``only_failed=True``: the grid
        stored in ``output_root/batch.json`` by the earlier call is used.
    output_root : path
        Folder of the batch: run folders, ``batch.json`` (notebook and grid), and the combined
        table as ``results.parquet`` and ``results.csv`` (written atomically).
    max_workers : int, optional
        Runs executed at once. Default: local pool of ``usable CPUs // threads``; with dask, as
        many as the cluster takes.
    scheduler : None, "local", address or distributed.Client
        ``None``/``"local"``: a bounded pool in this process, each run a papermill process.
        A dask.distributed address (``"tcp://host:8786"``), ``Client`` or cluster: each run is a
        dask task (``client.submit(..., pure=False)``) calling :func:`run_notebook` on a worker;
        workers need galwidgets installed and must see ``output_root`` (a shared file system).
    threads : int, optional
        CPU threads per run (``OMP_NUM_THREADS`` etc. of its kernel). Default: the usable CPUs
        divided by ``max_workers`` (1 when ``max_workers`` is also None, and with dask).
    only_failed : bool
        Execute only the runs of the existing batch in ``output_root`` whose ``run.json`` says they
        failed (or were interrupted); finished runs are reused and runs that never started are
        listed with status ``"not run"``.
    resume : bool
        Reuse runs that finished ``"ok"`` with identical parameters; False executes every run.
    dry_run : bool
        Execute and write nothing; return the plan (status ``"pending"`` for runs to execute).
    progress : bool
        Show a progress bar over runs (done / total, elapsed and ETA).
    timeout : float, optional
        Seconds allowed per cell.

    Returns
    -------
    pandas.DataFrame
        One row per run, in grid order: ``run`` (index), its parameters, ``status`` (``"ok"``,
        ``"failed"``, ``"not run"``), ``error``, ``seconds`` (elapsed), ``output_dir``, ``reused``
        and the flattened metrics (``sgd.total``, ...; a metric named like a parameter or one of
        these columns becomes ``metrics.<name>``).

    Notes
    -----
    An interrupt (Ctrl-C, stopping a notebook cell) stops the local runs in progress, writes the
    table of the runs finished so far and re-raises; the next call resumes. Dask tasks already
    running on workers are cancelled but finish their current notebook.
    """
    path = notebook_path(name)
    scheduler = check_scheduler(scheduler)
    limit, threads = _pool_size(max_workers, threads, scheduler is not None)
    timeout = None if timeout is None else check_positive(timeout, "timeout")
    if only_failed and not resume:
        raise ValueError("only_failed: reruns the failed runs and reuses the others, so it needs resume=True")
    root = Path(output_root).resolve()
    if root.joinpath(BATCH_FILE).is_file():
        stored = _stored_batch(root)
        if stored.get("notebook") != path.stem:
            raise ValueError(f"output_root: {root} holds a batch of notebook {stored.get('notebook')!r}, "
                             f"not {path.stem!r}; choose another output_root")
    if grid is None:
        if not only_failed:
            raise ValueError("grid: expected a dict of lists, a list of dicts, a DataFrame or a .yaml/.json "
                             "file (omit it only with only_failed=True)")
        grid = _stored_batch(root)["runs"]
    runs = expand_grid(grid)
    known = _notebook_parameters(path)
    for run in runs:
        _check_parameters(path, run, "grid", known)

    previous = _previous_runs(root, path.stem) if resume and root.is_dir() else {}
    rows: dict[int, dict] = {}
    jobs = []
    for i, params in enumerate(runs):
        folder, record = previous.get(_canonical(params), (root / _slug(i, params), None))
        status = record and record.get("status")
        if status == "ok":
            rows[i] = _row(i, record, folder, reused=True)
        elif only_failed and status is None:
            rows[i] = _row(i, {"parameters": params, "status": "not run",
                               "error": "never started; run the batch without only_failed"}, folder, False)
        elif dry_run:
            rows[i] = _row(i, {"parameters": params, "status": "pending"}, folder, False)
        else:
            jobs.append((i, params, folder))
    if dry_run:
        return pd.DataFrame([rows[i] for i in sorted(rows)])

    root.mkdir(parents=True, exist_ok=True)
    write_json(root / BATCH_FILE, {"notebook": path.stem, "notebook_path": str(path), "runs": runs,
                                   "updated": _now()})
    desc = f"batch {path.stem}: {len(jobs)} of {len(runs)} runs"
    _execute_jobs(path, jobs, rows, root, scheduler, limit, threads, timeout, progress and desc)
    table = pd.DataFrame([rows[i] for i in sorted(rows)])
    _write_table(table, root)
    return table


def _execute_jobs(path: Path, jobs: list[tuple], rows: dict[int, dict], root: Path, scheduler: Any,
                  limit: int, threads: int, timeout: float | None, progress: str | bool) -> None:
    """Run ``jobs`` (index, parameters, folder) on the local pool or dask; fill ``rows``.

    ``progress`` is the description of the progress bar, or False for none.
    """
    if not jobs:
        return
    client, owned, pool = None, False, None
    submitted: dict[Any, tuple] = {}  # future -> job
    if scheduler is not None:
        client, owned = dask_client(scheduler)

        def submit(job: tuple) -> Any:
            key = f"galwidgets-{path.stem}-{job[2].name}-{time.time_ns()}"
            future = client.submit(_run_task, str(path), job[1], str(job[2]), threads, timeout,
                                   pure=False, key=key)
            submitted[future] = job
            return future
    else:
        pool = ThreadPoolExecutor(min(limit, len(jobs)), thread_name_prefix="galwidgets-batch")

        def submit(job: tuple) -> Any:
            future = pool.submit(_run_task, str(path), job[1], str(job[2]), threads, timeout)
            submitted[future] = job
            return future

    failed = 0
    bar = tqdm(total=len(jobs), desc=progress or "", unit="run", disable=not progress)
    try:
        for future in _completed(submit, jobs, limit, client is not None):
            index, _, folder = submitted[future]
            record = future.result()
            rows[index] = _row(index, record, record.get("output_dir", folder), reused=False)
            failed += record["status"] != "ok"
            bar.set_postfix(failed=failed, refresh=False)
            bar.update(1)
    except BaseException:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
            _stop_all()  # the running papermill processes; their runs are recorded as interrupted
            pool.shutdown(wait=True)
        if client is not None:
            client.cancel([f for f in submitted if not f.done()])
        if rows:
            _write_table(pd.DataFrame([rows[i] for i in sorted(rows)]), root)
        raise
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(wait=True)
        if client is not None:
            if owned:
                client.close()
