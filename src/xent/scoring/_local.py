"""The local engine: read batches on one thread, fold them into a metric state on another.

pyarrow decodes the next batch (with its own thread pool) while the fused
native kernel, which releases the GIL and runs on its own threads, folds the
current one: decode and compute overlap, and memory stays at a few batches
whatever the file size.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

from xent.io import (
    DEFAULT_BATCH_ROWS,
    Batch,
    count_rows,
    expand_paths,
    iter_batches,
    state_from_table,
)
from xent.scoring._progress import Progress
from xent.scoring._report import ScoreReport
from xent.scoring._spec import ScoreInputError, ScoreSpec

__all__ = ["score"]

_DONE = object()


def _prefetch(batches: Iterator[Batch], depth: int) -> Iterator[Batch]:
    """Iterate ``batches`` on a background thread, ``depth`` batches ahead."""
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for b in batches:
                if stop.is_set():
                    return
                q.put(b)
            q.put(_DONE)
        except BaseException as exc:  # re-raised on the consumer side
            q.put(exc)

    t = threading.Thread(target=work, name="xent-reader", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass


def _all_batches(paths: list[str], spec: ScoreSpec, use_threads: bool, batch_rows: int) -> Iterator[Batch]:
    for p in paths:
        yield from iter_batches(p, spec, batch_rows=batch_rows, use_threads=use_threads)


def score(paths: Any, spec: ScoreSpec, *, threads: int | None = None, progress: bool = False,
          batch_rows: int = DEFAULT_BATCH_ROWS) -> ScoreReport:
    """Score prediction files on this machine.

    Parameters
    ----------
    paths : str, path or sequence of them
        Files, directories or glob patterns (Parquet, CSV, NPY, NPZ).
    spec : ScoreSpec
        Columns and options.
    threads : int, optional
        Threads for decoding (pyarrow's pool) and for the metric kernel; 1
        reads and computes on one thread. Default: :func:`xent.get_num_threads`
        for the kernel (all cores, or ``XENT_NUM_THREADS``), all cores for decoding.
    progress : bool
        Draw a progress bar on stderr (rows, rows/s, ETA when the total is known).

    Returns
    -------
    ScoreReport

    Raises
    ------
    ScoreInputError
        Unreadable or invalid input (names file, row and column), or no rows at all.
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"`threads` must be an integer >= 1, got {threads!r}")
    files = expand_paths(paths)
    if threads is None:
        return _score(files, spec, threads, progress, batch_rows)
    import pyarrow as pa  # optional dependency (the cli extra)

    saved = pa.cpu_count()
    pa.set_cpu_count(threads)  # pyarrow's decode pool is process-wide: restored afterwards
    try:
        return _score(files, spec, threads, progress, batch_rows)
    finally:
        pa.set_cpu_count(saved)


def _score(files: list[str], spec: ScoreSpec, threads: int | None, progress: bool, batch_rows: int) -> ScoreReport:
    start = time.perf_counter()
    bar = None
    if progress:
        counts = [count_rows(f) for f in files]
        known = [c for c in counts if c is not None]
        bar = Progress(total=sum(known) if len(known) == len(counts) else None)
    use_threads = threads != 1
    batches = _all_batches(files, spec, use_threads, batch_rows)
    if use_threads:
        batches = _prefetch(batches, depth=2)
    state = None
    try:
        for b in batches:
            state = state_from_table(b.table, spec, source=b.source, first_row=b.first_row, state=state,
                                     threads=threads)
            if bar is not None:
                bar.advance(b.num_rows)
    finally:
        if bar is not None:
            bar.close()
    if state is None or state.rows == 0:
        raise_nothing_to_score(state, files)
    return ScoreReport.from_state(state, spec, sources=files, engine="local", seconds=time.perf_counter() - start)


def raise_nothing_to_score(state: Any, sources: list[str]) -> None:
    """The one error for input with no scorable rows (every engine raises it)."""
    skipped = sum(state.skipped.values()) if state is not None else 0
    what = f"all {skipped} rows were skipped as invalid" if skipped else "the input holds no rows"
    raise ScoreInputError(f"nothing to score: {what}",
                          source=", ".join(sources[:3]) + (", ..." if len(sources) > 3 else ""))
