"""What the sampling widgets share: work in a thread, a run button's states.

:func:`run_in_background` (work in a thread, results applied on the kernel's event loop) and
:func:`launch` (a run button with busy state, progress and errors). Checkpoints by name, file or
object: :func:`galwidgets.pretrained.as_checkpoint`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as W
import traitlets as T

__all__ = ["error_html", "launch", "on_loop", "run_in_background"]


def run_in_background(
    compute: Callable[[], Any], finish: Callable[[Any, BaseException | None], None], threaded: bool = True
) -> bool:
    """Run ``compute()`` in a worker thread, then ``finish(result, error)`` on the event loop.

    In a Jupyter kernel the widget callbacks run on the kernel's asyncio loop: the computation
    goes to a daemon thread so the interface stays responsive, and ``finish`` is scheduled back on
    that loop (``call_soon_threadsafe``), so every trait and widget update happens on the kernel's
    thread. Without a running loop (tests, scripts), or with ``threaded=False``, both run
    synchronously. Exceptions of
    ``compute`` are passed to ``finish`` as ``error`` (``result`` is then None).

    Returns
    -------
    bool
        True when the work went to a thread.
    """
    try:
        loop = asyncio.get_running_loop() if threaded else None
    except RuntimeError:
        loop = None

    def work() -> tuple[Any, BaseException | None]:
        try:
            return compute(), None
        except Exception as exc:  # reported by finish, e.g. in the view's status line
            return None, exc

    if loop is None:
        finish(*work())
        return False
    threading.Thread(target=lambda: loop.call_soon_threadsafe(finish, *work()), daemon=True).start()
    return True


def on_loop(function: Callable[..., None]) -> Callable[..., None]:
    """``function`` made safe to call from a worker thread: it runs on the event loop that was
    running when ``on_loop`` was called, or directly when none was (e.g. progress updates)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return function
    return lambda *args: loop.call_soon_threadsafe(function, *args)


def error_html(error: BaseException) -> str:
    """A status line for an error shown in a widget."""
    import html

    return f"<span style='color:#b00'>{type(error).__name__}: {html.escape(str(error))}</span>"


def launch(
    state: T.HasTraits,
    compute: Callable[[Callable[[dict], None]], Any],
    apply: Callable[[Any], None],
    progress: W.IntProgress,
    status: W.HTML,
    total: int,
    threaded: bool = True,
) -> None:
    """What a widget's run button does, with a busy state, a progress bar and a status line.

    Does nothing while ``state.busy``. Otherwise sets ``busy``, runs ``compute(callback)`` through
    :func:`run_in_background` (the sampler's per-step ``callback`` advances ``progress`` to
    ``total``), then ``apply(result)`` on the event loop; errors of either go to ``status``
    instead of being raised, and ``busy`` is cleared in every case.
    """
    if state.busy:
        return
    progress.value, progress.max = 0, max(int(total), 1)
    status.value = ""
    set_progress = on_loop(lambda i: setattr(progress, "value", i + 1))
    state.busy = True

    def finish(result: Any, error: BaseException | None) -> None:
        try:
            if error is None:
                apply(result)
        except Exception as exc:  # e.g. the settings changed while computing
            error = exc
        finally:
            state.busy = False
        if error is not None:
            status.value = error_html(error)

    run_in_background(lambda: compute(lambda info: set_progress(info["i"])), finish, threaded=threaded)
