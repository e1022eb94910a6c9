"""One process pool for per-galaxy work: rendering, statmorph, isophotal shapes, Sérsic fits.

Work is cut into chunks that run in a :class:`~concurrent.futures.ProcessPoolExecutor` whose
workers start with ``forkserver`` (``spawn`` where that does not exist), never ``fork``: a forked
child inherits the parent's threads and locks (torch's OpenMP pool, a Jupyter kernel's I/O
threads), which can deadlock it, and Python 3.14 no longer forks by default either. The fork
server preloads the modules that do the work, so heavy imports (GalSim, statmorph, photutils)
happen once per session and later pools start in a fraction of a second. Each worker runs one
thread: the pool already uses every core. As with any non-fork pool, a script (not a notebook)
that asks for several processes needs the ``if __name__ == "__main__":`` guard.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

import numpy as np
from tqdm.auto import tqdm

__all__ = ["check_jobs", "map_chunks", "usable_cpus"]

T = TypeVar("T")

_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                     "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


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


def _init_worker() -> None:
    """One thread per worker process."""
    for name in _THREAD_VARIABLES:
        os.environ[name] = "1"
    try:  # optional: limits BLAS/OpenMP pools that are already loaded
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _context(start_method: str | None, preload: Sequence[str]) -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    if start_method is None:
        start_method = "forkserver" if "forkserver" in methods else "spawn"
    if start_method not in methods:
        raise ValueError(f"start_method: expected one of {methods}, got {start_method!r}")
    context = multiprocessing.get_context(start_method)
    if start_method == "forkserver":
        # effective when this is the first forkserver pool of the session
        context.set_forkserver_preload(["__main__", *preload])
    return context


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
    preload: Sequence[str] = (),
    quiet: bool = False,
) -> list[T]:
    """``[func(chunk) for chunk in chunks]``, in order, in this process or a pool of ``n_jobs``.

    Parameters
    ----------
    func : callable
        A module-level function (workers import it by name).
    chunks : iterable
        Pieces of work; ``size(chunk)`` items each advance the progress bar.
    n_jobs : int
        Processes; 1 runs in this process without a pool.
    progress, desc, unit
        tqdm progress bar.
    start_method : str, optional
        Multiprocessing start method; default ``forkserver`` (else ``spawn``).
    preload : sequence of str
        Modules the fork server imports once for all workers (the ones defining ``func``).
    quiet : bool
        Silence warnings inside ``func`` (per-galaxy measurement warnings that become flags).

    Notes
    -----
    An interrupt (e.g. stopping a notebook cell) cancels the chunks not yet started.
    """
    chunks = list(chunks)
    results: list[Any] = [None] * len(chunks)
    run = (lambda chunk: _quiet(func, chunk)) if quiet else func
    with tqdm(total=sum(size(c) for c in chunks), desc=desc, unit=unit, disable=not progress) as bar:
        if n_jobs <= 1 or len(chunks) <= 1:
            for i, chunk in enumerate(chunks):
                results[i] = run(chunk)
                bar.update(size(chunk))
            return results
        context = _context(start_method, preload)
        with ProcessPoolExecutor(min(n_jobs, len(chunks)), mp_context=context,
                                 initializer=_init_worker) as pool:
            submit = (lambda c: pool.submit(_quiet, func, c)) if quiet else (lambda c: pool.submit(func, c))
            futures = {submit(chunk): i for i, chunk in enumerate(chunks)}
            try:
                for future in as_completed(futures):
                    i = futures[future]
                    results[i] = future.result()
                    bar.update(size(chunks[i]))
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    return results
