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

The same chunks can instead run as tasks of a dask.distributed cluster (``scheduler=`` an address,
``Client`` or cluster), and :func:`imap_chunks` streams: it takes a generator of chunks (stamps read
from an on-disk survey store) and keeps only a few in flight, so memory stays bounded.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any, TypeVar

import numpy as np
from tqdm.auto import tqdm

__all__ = [
    "IDLE_TIMEOUT", "START_METHODS", "THREAD_VARIABLES", "check_jobs", "check_scheduler", "dask_client",
    "imap_chunks", "map_chunks", "usable_cpus",
]

T = TypeVar("T")
_DONE = object()  # end of a chunk iterator

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


def check_scheduler(scheduler: Any) -> Any:
    """``None``/``"local"`` -> None (the local process pool); a dask.distributed address, ``Client`` or
    cluster object is returned as it is. Anything else raises, naming ``scheduler``."""
    if scheduler is None or (isinstance(scheduler, str) and scheduler == "local"):
        return None
    if isinstance(scheduler, str):
        if "://" in scheduler or re.fullmatch(r"[\w.\-]+:\d+", scheduler):
            return scheduler
        raise ValueError("scheduler: expected 'local', a dask.distributed scheduler address such as "
                         f"'tcp://127.0.0.1:8786', or a distributed.Client; got {scheduler!r}")
    is_client = hasattr(scheduler, "submit") and hasattr(scheduler, "cancel")
    if is_client or hasattr(scheduler, "scheduler_address"):
        return scheduler
    raise TypeError("scheduler: expected 'local', a dask.distributed address, Client or cluster, got "
                    f"{type(scheduler).__name__}")


def dask_client(scheduler: Any) -> tuple[Any, bool]:
    """A ``distributed.Client`` for ``scheduler`` and whether it was opened here (and so must be closed)."""
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - dask is a test dependency
        raise ImportError("scheduler: a dask.distributed scheduler needs dask[distributed]: "
                          "pip install 'dask[distributed]'") from exc
    if isinstance(scheduler, Client):
        return scheduler, False
    try:
        return Client(scheduler, timeout="10s"), True  # an address or a cluster object
    except OSError as exc:
        raise ConnectionError(f"scheduler: could not connect to {scheduler!r}: {exc}") from exc


def imap_chunks(
    func: Callable[[Any], T],
    chunks: Iterable[Any],
    *,
    n_jobs: int,
    scheduler: Any = None,
    progress: bool = True,
    desc: str = "",
    unit: str = "gal",
    size: Callable[[Any], int] = len,
    total: int | None = None,
    start_method: str | None = None,
    quiet: bool = False,
    max_pending: int | None = None,
) -> Iterator[T]:
    """``func(chunk)`` for each chunk, yielded in order as they finish, with few chunks in flight.

    The streaming form of :func:`map_chunks`: ``chunks`` may be a generator (e.g. stamps read from
    an on-disk survey store), and at most ``max_pending`` chunks (default twice the workers) are
    submitted ahead of the one being yielded, so memory stays bounded whatever the number of chunks.

    Parameters
    ----------
    func, n_jobs, progress, desc, unit, size, start_method, quiet
        As :func:`map_chunks`.
    scheduler : None, "local", address, distributed.Client or cluster
        None or ``"local"``: this process (``n_jobs=1``) or the loky pool. Otherwise the chunks run
        as tasks of a dask.distributed cluster (a scheduler address such as
        ``"tcp://10.0.0.5:8786"``, a ``Client``, or a cluster object such as ``LocalCluster``);
        ``n_jobs`` is then ignored. ``func`` must be importable on the workers (galwidgets
        installed there).
    total : int, optional
        Items in all chunks, for the progress bar (computed from a list of chunks when omitted).
    max_pending : int, optional
        Chunks submitted but not yet yielded.
    """
    start_method = start_method or "loky"
    if start_method not in START_METHODS:
        raise ValueError(f"start_method: expected one of {START_METHODS}, got {start_method!r}")
    scheduler = check_scheduler(scheduler)
    if total is None and isinstance(chunks, Sequence):
        total = sum(size(c) for c in chunks)
    n_chunks = len(chunks) if isinstance(chunks, Sequence) else None
    bar = tqdm(total=total, desc=desc, unit=unit, disable=not progress)
    try:
        if scheduler is not None:
            yield from _imap_dask(func, chunks, scheduler, bar, size, quiet, max_pending)
            return
        pool = None
        if n_jobs > 1 and (n_chunks is None or n_chunks > 1):
            pool = _pool_or_warn(n_jobs if n_chunks is None else min(n_jobs, n_chunks), start_method)
        if pool is None:
            run = partial(_quiet, func) if quiet else func
            for chunk in chunks:
                result = run(chunk)
                bar.update(size(chunk))
                yield result
            return
        yield from _imap_pool(pool, func, chunks, bar, size, quiet, max_pending or 2 * n_jobs)
    finally:
        bar.close()


def _imap_pool(pool: Any, func: Callable[[Any], T], chunks: Iterable[Any], bar: Any,
               size: Callable[[Any], int], quiet: bool, max_pending: int) -> Iterator[T]:
    """Ordered results of the loky pool with at most ``max_pending`` chunks in flight."""
    pending: deque = deque()
    source = iter(chunks)

    def submit_more() -> None:
        while len(pending) < max_pending:
            chunk = next(source, _DONE)
            if chunk is _DONE:
                return
            future = pool.submit(_quiet, func, chunk) if quiet else pool.submit(func, chunk)
            pending.append((future, size(chunk)))

    try:
        submit_more()
        while pending:
            future, n = pending.popleft()
            result = future.result()
            bar.update(n)
            submit_more()
            yield result
    except GeneratorExit:  # the caller stopped early: drop the work not yet started
        for future, _ in pending:
            future.cancel()
        raise
    except BaseException:
        for future, _ in pending:
            future.cancel()
        pool.shutdown(wait=False, kill_workers=True)
        raise


def _imap_dask(func: Callable[[Any], T], chunks: Iterable[Any], scheduler: Any, bar: Any,
               size: Callable[[Any], int], quiet: bool, max_pending: int | None) -> Iterator[T]:
    """Ordered results of tasks on a dask.distributed cluster, a bounded number in flight."""
    client, owned = dask_client(scheduler)
    pending: deque = deque()
    try:
        limit = max_pending or 2 * max(1, sum(client.nthreads().values()))
        task = partial(_quiet, func) if quiet else func
        source = iter(chunks)
        while True:
            while len(pending) < limit:
                chunk = next(source, _DONE)
                if chunk is _DONE:
                    break
                pending.append((client.submit(task, chunk, pure=False), size(chunk)))
            if not pending:
                return
            future, n = pending.popleft()
            result = future.result()
            bar.update(n)
            yield result
    finally:
        if pending:
            client.cancel([future for future, _ in pending])
        if owned:
            client.close()


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
    scheduler: Any = None,
) -> list[T]:
    """``[func(chunk) for chunk in chunks]``, in order, in this process, a pool of ``n_jobs`` or on dask.

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
    scheduler : None, "local", address, distributed.Client or cluster
        Run the chunks on a dask.distributed cluster instead (see :func:`imap_chunks`).

    Notes
    -----
    The results are those of one process whatever ``n_jobs`` or ``scheduler`` is. Where no worker
    can be started (a sandbox without process creation), the work runs here, with a warning.
    """
    chunks = list(chunks)
    return list(imap_chunks(func, chunks, n_jobs=n_jobs, scheduler=scheduler, progress=progress,
                            desc=desc, unit=unit, size=size, start_method=start_method, quiet=quiet,
                            max_pending=max(1, len(chunks))))
