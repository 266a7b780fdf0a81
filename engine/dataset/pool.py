"""Run a per-file function over many files in worker processes, reporting progress events."""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import resource_tracker
from typing import TypeVar

from engine.events import Event, PhaseFinished, PhaseProgress, PhaseStarted
from engine.support.cpus import default_workers

T = TypeVar("T")
R = TypeVar("R")

# Below this many files, starting worker processes costs more than it saves.
MIN_FILES_FOR_POOL = 48


def run_phase(
    phase: str,
    function: Callable[[T], R],
    items: Sequence[T],
    *,
    workers: int | None = None,
    emit: Callable[[Event], None] | None = None,
    description: str = "",
) -> list[R]:
    """``[function(item) for item in items]``, in a process pool when worth it, in order.

    ``function`` must be a module-level function (it is pickled to the workers). Progress is
    reported at most ~20 times a second so a UI queue is never flooded.
    """
    emit = emit or (lambda event: None)
    total = len(items)
    emit(PhaseStarted(phase=phase, total=total, description=description))
    started = time.monotonic()
    # More processes than CPUs or files only cost a start each (a second or more, and memory: `--workers 400` on 120
    # images took a minute).
    workers = min(workers or default_workers(), default_workers(), total)
    results: list[R] = []
    last = 0.0

    def report(done: int) -> None:
        nonlocal last
        now = time.monotonic()
        if done == total or now - last >= 0.05:
            last = now
            emit(PhaseProgress(phase=phase, done=done, total=total))

    if workers <= 1 or total < MIN_FILES_FOR_POOL:
        for item in items:
            results.append(function(item))
            report(len(results))
    else:
        # "spawn": forking a process that may hold torch threads or a UI event loop is unsafe.
        context = multiprocessing.get_context("spawn")
        start_resource_tracker()
        chunk = max(1, min(32, total // (workers * 8)))
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_leave_interrupts_to_the_parent)
        try:
            for result in pool.map(function, items, chunksize=chunk):
                results.append(result)
                report(len(results))
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # Ctrl-C: the files not reached yet are not waited for
            raise
        pool.shutdown()
    emit(PhaseFinished(phase=phase, seconds=time.monotonic() - started))
    return results


def start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker once for this process, with the real stderr.

    The pool starts the tracker on first use, passing ``sys.stderr.fileno()`` to its process. Inside a
    Textual app sys.stderr is a capture whose fileno() is -1, and the start fails with "bad value(s) in
    fds_to_keep"; any caller that replaced stderr the same way would fail alike. The app calls this from
    the main thread before it runs; here it is the fallback for other callers. sys.stderr is swapped only
    while the tracker starts, once: a swap on every pool, from a worker thread, sent other threads' output
    to the terminal meanwhile, and a quit in that window restored a dead capture.
    """
    with _tracker_lock:
        if _tracker_running():
            return
        try:
            usable = sys.stderr.fileno() >= 0
        except (AttributeError, OSError, ValueError):
            usable = True  # no fileno at all: the tracker itself skips passing one
        with contextlib.nullcontext() if usable else contextlib.redirect_stderr(sys.__stderr__):
            resource_tracker.ensure_running()


_tracker_lock = threading.Lock()


def _tracker_running() -> bool:
    # multiprocessing has no public way to ask; its tracker keeps the pipe to its process in _fd once started.
    return getattr(getattr(resource_tracker, "_resource_tracker", None), "_fd", None) is not None


def _leave_interrupts_to_the_parent() -> None:
    """In each worker: Ctrl-C reaches the whole process group, and the parent answers it (a worker's own
    KeyboardInterrupt printed a traceback per process)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
