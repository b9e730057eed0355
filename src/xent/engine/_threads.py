"""The engine's thread count and its pool of worker threads.

NumPy ufuncs and reductions release the GIL on large loops, so plain Python
threads that each run ufuncs (with ``out=``) on their own block of rows keep
every core busy. Blocks are handed out dynamically from a shared counter, so a
core slowed down by another process simply takes fewer blocks.

The thread count comes from :mod:`xent._lib.threads` (shared with the native kernels).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from xent._lib.threads import get_num_threads, set_num_threads

__all__ = ["get_num_threads", "parallel_for", "set_num_threads"]


class _Pool:
    """The process's worker pool, grown (replaced) when more threads are asked for."""

    executor: ThreadPoolExecutor | None = None
    size: int = 0


_lock = threading.Lock()


def _pool(workers: int) -> ThreadPoolExecutor:
    with _lock:
        executor = _Pool.executor
        if executor is None or _Pool.size < workers:
            old = executor
            executor = _Pool.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="xent")
            _Pool.size = workers
            if old is not None:
                old.shutdown(wait=False)
        return executor


def parallel_for(n_tasks: int, make_worker: Callable[[], Callable[[int], None]]) -> None:
    """Run tasks ``0 .. n_tasks - 1`` on the engine's threads.

    Each thread calls ``make_worker()`` once (to allocate its own scratch
    buffers) and then the returned function on the task ids it takes from a
    shared counter. The calling thread works too. The first exception raised
    by any task is re-raised here after every thread has stopped.
    """
    threads = min(get_num_threads(), n_tasks)
    counter = itertools.count()  # next() on itertools.count is atomic under the GIL
    failed: list[BaseException] = []

    def drive() -> None:
        # Overflowing exps are expected (such rows are redone with a shift): keep them silent.
        with np.errstate(all="ignore"):
            _drive()

    def _drive() -> None:
        work = make_worker()
        while not failed:
            task = next(counter)
            if task >= n_tasks:
                return
            try:
                work(task)
            except BaseException as exc:  # re-raised in the caller below
                failed.append(exc)
                return

    if threads <= 1:
        drive()
    else:
        futures = [_pool(threads - 1).submit(drive) for _ in range(threads - 1)]
        drive()
        for f in futures:
            f.result()
    if failed:
        raise failed[0]
