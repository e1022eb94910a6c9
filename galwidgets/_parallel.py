"""One process pool for per-galaxy work: rendering, statmorph, isophotal shapes, Sérsic fits.

Work is cut into chunks that run in loky's reusable process pool (the executor behind joblib).
Unlike the standard library's ``spawn`` and ``forkserver`` pools, loky workers do not re-run the
user's ``__main__`` module, so the pool works from any entry point: a script without an
``if __name__ == "__main__":`` guard, code fed on standard input, ``python -c``, a notebook, a
papermill kernel or a dask worker. Workers are started fresh (never forked from a parent that runs
threads, such as torch's OpenMP pool or a Jupyter kernel's I/O threads, which can deadlock a
forked child), stay alive between calls for :data:`IDLE_TIMEOUT` seconds so heavy imports
(GalSim, statmorph, photutils) happen once per session, and each runs one thread: the pool already
uses every core. An interrupt (e.g. stopping a notebook cell) cancels the chunks not yet started
and stops the workers.
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np
from tqdm.auto import tqdm

__all__ = ["IDLE_TIMEOUT", "START_METHODS", "THREAD_VARIABLES", "check_jobs", "map_chunks", "usable_cpus"]

T = TypeVar("T")

#: Environment variables that set the size of BLAS/OpenMP thread pools; workers get 1 each.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")

#: Seconds an idle worker waits for more work before it exits.
IDLE_TIMEOUT = 300

#: How workers may be started (loky's contexts); ``"loky"`` is the default and works everywhere.
START_METHODS = ("loky", "loky_init_main", "spawn", "forkserver", "fork")


def usable_cpus() -> int:
    """Number of CPUs this process may run on (its affinity mask, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def check_jobs(n_jobs: int | None, n_items: int, min_items: int) -> int:
    """Validated number of processes for ``n_items`` pieces of work.

    ``None`` picks 1 below ``min_items`` (where starting workers costs more than it saves) and all
    usable CPUs from there; ``-1`` means all usable CPUs; otherwise a positive integer.
    """
    if n_jobs is None:
        return 1 if n_items < min_items else usable_cpus()
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int | np.integer):
        raise TypeError(f"n_jobs: expected an integer number of processes or None, got {n_jobs!r}")
    if n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs: expected a positive number of processes, -1 (all CPUs) or None "
                         f"(automatic), got {n_jobs}")
    return usable_cpus() if n_jobs == -1 else int(n_jobs)


def _one_thread() -> None:
    """Worker initializer: one thread in libraries already loaded (the environment covers the rest)."""
    try:  # optional: limits BLAS/OpenMP pools that are already loaded
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass


def _executor(n_jobs: int, start_method: str) -> Any:
    """loky's reusable executor with ``n_jobs`` one-thread workers (reused while the settings hold)."""
    from loky import get_reusable_executor

    return get_reusable_executor(max_workers=n_jobs, context=start_method, timeout=IDLE_TIMEOUT,
                                 initializer=_one_thread, env=dict.fromkeys(THREAD_VARIABLES, "1"))


def _pool_or_warn(n_jobs: int, start_method: str) -> Any:
    """The executor, or None (with a warning saying how to get parallelism) where none can start."""
    if multiprocessing.current_process().daemon:
        warnings.warn(
            f"n_jobs: {n_jobs} processes were asked for, but this is a daemonic process (e.g. a dask "
            "worker), which may not start children: running in this process. For parallelism, pass "
            "scheduler= (where offered) to spread the work over the dask cluster, or start dask workers "
            "with the config distributed.worker.daemon = False.", RuntimeWarning, stacklevel=3)
        return None
    try:
        return _executor(n_jobs, start_method)
    except (OSError, RuntimeError) as exc:  # pragma: no cover - no process creation here
        warnings.warn(f"n_jobs: could not start {n_jobs} worker processes ({exc}); running in this "
                      "process. Parallelism needs permission to start processes.", RuntimeWarning,
                      stacklevel=3)
        return None


def _quiet(func: Callable[[Any], T], chunk: Any) -> T:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(chunk)


def map_chunks(
    func: Callable[[Any], T],
    chunks: Iterable[Any],
    *,
    n_jobs: int,
    progress: bool = True,
    desc: str = "",
    unit: str = "gal",
    size: Callable[[Any], int] = len,
    start_method: str | None = None,
    quiet: bool = False,
) -> list[T]:
    """``[func(chunk) for chunk in chunks]``, in order, in this process or a pool of ``n_jobs``.

    Parameters
    ----------
    func : callable
        A picklable function (module-level, or a ``functools.partial`` of one).
    chunks : iterable
        Pieces of work; ``size(chunk)`` items each advance the progress bar.
    n_jobs : int
        Processes; 1 runs in this process without a pool.
    progress, desc, unit
        tqdm progress bar.
    start_method : str, optional
        How workers start, one of :data:`START_METHODS`; default ``"loky"``.
    quiet : bool
        Silence warnings inside ``func`` (per-galaxy measurement warnings that become flags).

    Notes
    -----
    The results are those of one process whatever ``n_jobs`` is. Where no worker can be started
    (a sandbox without process creation), the work runs here, with a warning.
    """
    start_method = start_method or "loky"
    if start_method not in START_METHODS:
        raise ValueError(f"start_method: expected one of {START_METHODS}, got {start_method!r}")
    chunks = list(chunks)
    results: list[Any] = [None] * len(chunks)
    run = (lambda chunk: _quiet(func, chunk)) if quiet else func
    with tqdm(total=sum(size(c) for c in chunks), desc=desc, unit=unit, disable=not progress) as bar:
        pool = None
        if n_jobs > 1 and len(chunks) > 1:
            pool = _pool_or_warn(min(n_jobs, len(chunks)), start_method)
        if pool is None:
            for i, chunk in enumerate(chunks):
                results[i] = run(chunk)
                bar.update(size(chunk))
            return results
        futures = [pool.submit(_quiet, func, c) if quiet else pool.submit(func, c) for c in chunks]
        try:
            for i, future in enumerate(futures):
                results[i] = future.result()
                bar.update(size(chunks[i]))
        except BaseException:
            for future in futures:
                future.cancel()
            pool.shutdown(wait=False, kill_workers=True)
            raise
    return results
