"""Row blocks on CPU, scheduled dynamically over a few threads that each run torch ops serially.

Why: a cache-sized block of rows costs a dozen small tensor ops. Run one after
another on the calling thread, every op is an OpenMP parallel region that must
wait for all of torch's intra-op threads; when another process holds a core, each
of those thousands of waits costs a scheduler time slice, and the loss becomes
many times slower (measured: 18.8 s against 2.5 s for ``F.cross_entropy`` at
4096 x 32000 next to one busy process). Here each worker thread runs whole blocks
with intra-op parallelism off (OpenMP's thread count is a per-thread setting) and
takes the next block from a shared counter, so a thread that loses its core only
takes fewer blocks, and no op ever waits for another thread.

Torch ops release the GIL while they compute, so plain Python threads keep every
core busy. The pool has as many threads as ``torch.get_num_threads()`` asks for
(grown on demand), is rebuilt after ``fork`` (threads do not survive it), and the
calling thread only waits.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
from collections.abc import Callable

import torch

__all__ = ["for_blocks", "thread_buffer", "threaded"]

_local = threading.local()
_lock = threading.Lock()
class _Shared:
    """The process's pool (None until first used, and in a forked child)."""

    pool: _Pool | None = None


def _reset_after_fork() -> None:
    _Shared.pool = None


os.register_at_fork(after_in_child=_reset_after_fork)


class _Pool:
    def __init__(self, size: int) -> None:
        self.size = size
        self.tasks: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        threads = torch.get_num_threads()
        ready = threading.Barrier(size + 1)
        for _ in range(size):
            threading.Thread(target=self._work, args=(ready,), name="xent-torch", daemon=True).start()
        ready.wait()
        # torch.set_num_threads(1) in a worker also set the default that threads started
        # later inherit; give it back (this thread's own setting does not change).
        torch.set_num_threads(threads)

    def _work(self, ready: threading.Barrier) -> None:
        torch.set_num_threads(1)  # this thread's ops run serially: no OpenMP region waits for a core
        _local.worker = True
        ready.wait()
        while True:
            self.tasks.get()()


def _pool(size: int) -> _Pool:
    with _lock:
        pool = _Shared.pool
        if pool is None or pool.size < size:
            pool = _Shared.pool = _Pool(size)  # an outgrown pool's threads stay parked on its empty queue
        return pool


def threaded(device: torch.device, n_blocks: int) -> bool:
    """Whether :func:`for_blocks` would spread ``n_blocks`` over threads (CPU, eager, several threads)."""
    if torch.compiler.is_compiling():  # first: nothing below may be traced
        return False
    return (device.type == "cpu" and n_blocks > 1 and torch.get_num_threads() > 1
            and not getattr(_local, "worker", False))


def thread_buffer(make: Callable[[], torch.Tensor], threads: bool) -> Callable[[], torch.Tensor]:
    """A function giving the calling thread its own scratch tensor ``make()``, made on first use.

    ``threads=False`` (blocks run on one thread, as under ``torch.compile``): one tensor, no
    thread-local state.
    """
    if not threads:
        one: list[torch.Tensor] = []

        def first() -> torch.Tensor:
            if not one:
                one.append(make())
            return one[0]

        return first
    local = threading.local()

    def get() -> torch.Tensor:
        buf = getattr(local, "buf", None)
        if buf is None:
            buf = local.buf = make()
        return buf

    return get


def for_blocks(n_blocks: int, fn: Callable[[int], None], device: torch.device, *, serial: bool = False) -> None:
    """Call ``fn(k)`` for ``k`` in ``range(n_blocks)``, on the pool when :func:`threaded` says so.

    ``serial=True`` runs them in order on the calling thread (blocks that call collectives).

    Each block must write only its own rows. Blocks run under ``torch.no_grad()``.
    The first exception raised by a block is re-raised here once every thread has stopped.
    """
    if serial or not threaded(device, n_blocks):
        for k in range(n_blocks):
            fn(k)
        return
    workers = min(torch.get_num_threads(), n_blocks)
    pool = _pool(workers)
    counter = itertools.count()  # next() is atomic under the GIL
    failed: list[BaseException] = []
    done = threading.Semaphore(0)

    def drive() -> None:
        try:
            with torch.no_grad():  # grad mode is per thread: the blocks only fill buffers
                while not failed:
                    k = next(counter)
                    if k >= n_blocks:
                        break
                    fn(k)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller below
            failed.append(exc)
        finally:
            done.release()

    for _ in range(workers):
        pool.tasks.put(drive)
    waited = 0
    try:
        while waited < workers:
            done.acquire()
            waited += 1
    except BaseException as exc:  # e.g. KeyboardInterrupt: stop the workers, then re-raise
        failed.append(exc)
        while waited < workers:
            done.acquire()
            waited += 1
        raise
    if failed:
        raise failed[0]
