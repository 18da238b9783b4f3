"""The batch engine's executors (internal): the default one (a warm process pool or a
thread pool, by the cores and the inputs), the names reports give executors, and how many
inputs go into one task."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

from m1vision._checks import available_cores, default_workers

#: The default executor runs processes (rather than threads) from this many workers on, for
#: batches of at least PROCESS_MIN_ITEMS_PER_WORKER inputs per worker. See
#: :func:`default_executor`.
PROCESS_MIN_WORKERS = 2
PROCESS_MIN_ITEMS_PER_WORKER = 4


def _fork_context():
    if sys.platform.startswith("linux"):
        # Fork: workers start in milliseconds with what this process imported (a spawned
        # worker imports NumPy and OpenCV first, ~0.3 s). macOS and Windows spawn.
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


_POOL: dict = {}  # the warm process pool: {"key": ..., "pool": ProcessPoolExecutor}
_POOL_LOCK = threading.Lock()


def _pool_alive(pool) -> bool:
    return not (getattr(pool, "_broken", False) or getattr(pool, "_shutdown_thread", False))


def shutdown_workers() -> None:
    """Stop the warm worker processes the default executor keeps between runs (if any).

    They stop by themselves when Python exits; call this to free them earlier.

    Examples
    --------
    >>> from m1vision.batch import shutdown_workers
    >>> shutdown_workers()  # none running: nothing to do
    """
    with _POOL_LOCK:
        pool = _POOL.pop("pool", None)
        _POOL.pop("key", None)
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def _warm_pool(workers: int, state: tuple) -> tuple[ProcessPoolExecutor, str]:
    ctx = _fork_context()
    key = (os.getpid(), workers, ctx.get_start_method(), state, _kinds_state())
    with _POOL_LOCK:
        pool = _POOL.get("pool")
        if pool is not None and _POOL.get("key") == key and _pool_alive(pool):
            return pool, "warm"
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=worker_signals)
        pool._m1vision_shared = True
        _POOL.update(key=key, pool=pool)
        start_workers(pool)
        return pool, "started"


def worker_signals() -> None:
    """In each worker: Ctrl-C as Python's default (a fork copied the starter's handler)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def start_workers(pool: ProcessPoolExecutor) -> None:
    """Start the pool's workers now, holding a Ctrl-C and OpenCV's threads until they are.

    A fork pool forks every worker at its first task. A SIGINT arriving meanwhile would raise
    KeyboardInterrupt inside an at-fork handler (logging's), where Python prints "Exception
    ignored" and carries on: the user's Ctrl-C would be lost and the run go to its end. So the
    signal is noted during the start and raised after it. OpenCV is held to one thread
    meanwhile: a fork copies the locks of OpenCV's pool threads but not the threads, and a
    worker forked while they live hangs when it next sets its thread count.
    """
    cv2 = sys.modules.get("cv2")
    cv_threads = cv2.getNumThreads() if cv2 is not None else None
    if cv2 is not None:
        cv2.setNumThreads(1)  # its pool threads end before the fork
    try:
        if (
            threading.current_thread() is not threading.main_thread()  # it gets no signals
            or signal.getsignal(signal.SIGINT) is None  # a handler Python cannot put back
        ):
            pool.submit(int).result()
            return
        caught: list[int] = []
        previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
        try:
            pool.submit(int).result()
        finally:
            signal.signal(signal.SIGINT, previous)
        if caught:
            raise KeyboardInterrupt
    finally:
        if cv2 is not None:
            cv2.setNumThreads(cv_threads)


def _kinds_state() -> tuple:
    from m1vision.batch._inputs import input_kinds

    return tuple((kind.name, id(kind)) for kind in input_kinds())


def default_executor(
    n_todo: int, *, processes: bool = True, state: tuple = ()
) -> tuple[Executor, str]:
    """The default executor: one worker per available core (at most one per input).

    Processes when ``processes`` and there are at least :data:`PROCESS_MIN_WORKERS` workers
    and :data:`PROCESS_MIN_ITEMS_PER_WORKER` inputs each: each image then runs with a GIL of
    its own (per image a thread holds the GIL for about a millisecond of Python, which caps
    threads at 8-10x on 16 cores). The process pool is kept warm for the next run (starting
    16 workers costs a tenth of a second or more, a spawned one on macOS ~0.3 s each); it is
    replaced when ``state`` (e.g. the registered steps) or the input kinds change, and
    :func:`shutdown_workers` stops it. Else a thread pool (OpenCV releases the GIL; no
    start-up cost), shut down after the run.

    Examples
    --------
    >>> from m1vision.batch import default_executor
    >>> executor, name = default_executor(1)  # one input: one thread
    >>> name
    'ThreadPoolExecutor(max_workers=1)'
    >>> executor.shutdown()
    """
    workers = default_workers(n_todo, cores=available_cores())
    if (
        processes
        and workers >= PROCESS_MIN_WORKERS
        and n_todo >= (PROCESS_MIN_ITEMS_PER_WORKER * workers)
    ):
        pool, how = _warm_pool(workers, state)
        method = _fork_context().get_start_method()
        return pool, f"ProcessPoolExecutor(max_workers={workers}, {method}, {how})"
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="m1vision-batch")
    return pool, f"ThreadPoolExecutor(max_workers={workers})"


def executor_name(executor: Executor) -> str:
    """A description of an executor for reports: its type and workers (or scheduler).

    Examples
    --------
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> from m1vision.batch import executor_name
    >>> with ThreadPoolExecutor(2) as pool:
    ...     executor_name(pool)
    'ThreadPoolExecutor(max_workers=2)'
    """
    workers = getattr(executor, "_max_workers", None)
    name = type(executor).__name__
    detail = f"max_workers={workers}" if workers else ""
    client = getattr(executor, "_client", None)
    if client is not None:
        with contextlib.suppress(Exception):
            detail = f"scheduler={client.scheduler.address}"
    return f"{name}({detail})"


def _chunksize(n_todo: int, executor: Executor) -> int:
    """About 16 tasks per worker (a short tail: the last tasks end together), 1-16 inputs."""
    workers = getattr(executor, "_max_workers", None) or available_cores()
    return max(1, min(16, n_todo // (16 * workers)))
