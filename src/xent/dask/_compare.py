"""``xent compare --engine dask``: both models folded over the same rows, one partition per task.

A partition is a run of model A's Parquet row groups (or a whole file, see
:mod:`xent.dask._plan`). With ``--against``, the client knows every file's row
count from its footer (Parquet, NPY), so each partition also names the rows of
model B's files that pair with its own (:class:`Piece` s); the worker reads
both and pairs them with the local engine's :func:`xent.scoring.pair_batches`.
When a row count is unknown before reading (CSV, NPZ), the whole input is one
partition. Every error is the local engine's, naming the same file, row and column.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from xent.dask._cluster import open_client
from xent.dask._plan import DEFAULT_PARTITION_ROWS, Part, plan_parts
from xent.dask._run import _follow, _reduce
from xent.dask._tasks import _row_group_tables, partition
from xent.io import DEFAULT_BATCH_ROWS, Batch, count_rows, iter_batches
from xent.scoring import (
    CompareReport,
    ScoreInputError,
    compare_files,
    compare_specs,
    cut_rows,
    file_batches,
    fold_pairs,
    pair_batches,
    raise_nothing_to_score,
    read_specs,
)

__all__ = ["PairPart", "Piece", "compare", "pair_part_state", "plan_pairs"]


@dataclass(frozen=True)
class Piece:
    """Rows ``[first_row, first_row + rows)`` of one of model B's files."""

    path: str
    first_row: int
    rows: int


@dataclass(frozen=True)
class PairPart:
    """Model A's partition ``part``; ``start``: the number of input rows before it; ``pieces``: model B's
    rows that pair with it (None: B's whole file set, with ``part`` None too: the whole input)."""

    part: Part | None
    start: int = 0
    pieces: tuple[Piece, ...] | None = None

    @property
    def rows(self) -> int | None:
        return None if self.part is None else self.part.rows


def _counts(files: list[str]) -> list[int | None]:

    out: list[int | None] = []
    for f in files:
        try:
            out.append(count_rows(f))
        except ScoreInputError:  # unreadable: the worker's reader raises the located error
            out.append(None)
    return out


def plan_pairs(files: list[str], files_b: list[str] | None, *, partition_rows: int) -> list[PairPart]:
    """The partitions of a comparison (see the module docstring)."""

    parts = plan_parts(files, partition_rows=partition_rows)
    if files_b is None:
        return [PairPart(p) for p in parts]
    counts_a, counts_b = _counts(files), _counts(files_b)
    if None in counts_a or None in counts_b:
        return [PairPart(None)]
    offsets = {}
    total = 0
    for f, n in zip(files, counts_a):
        offsets[f] = total
        total += int(n or 0)
    ends_b = []
    acc = 0
    for n in counts_b:
        acc += int(n or 0)
        ends_b.append(acc)
    if acc != total:  # one pass over everything raises the located error of the first row without a partner
        return [PairPart(None)]
    out = []
    for p in parts:
        start = offsets[p.path] + p.first_row
        rows = p.rows if p.rows is not None else int(counts_a[files.index(p.path)] or 0)
        pieces = []
        lo = 0
        for f, hi in zip(files_b, ends_b):
            a, b = max(lo, start), min(hi, start + rows)
            if a < b:
                pieces.append(Piece(f, a - lo, b - a))
            lo = hi
        out.append(PairPart(p, start, tuple(pieces)))
    return out


def _part_batches(part: Part, read: Any, batch_rows: int) -> Iterator[Any]:

    if part.row_groups is None:
        yield from iter_batches(part.path, read, batch_rows=batch_rows)
        return

    try:
        for table, first in _row_group_tables(part, read, batch_rows):
            yield Batch(table, part.path, first)
    except LookupError:  # a missing column: the local reader names it
        for _ in iter_batches(part.path, read, batch_rows=batch_rows):
            break
        raise


def pair_part_state(task: PairPart, files: list[str], files_b: list[str] | None, spec_a: Any, spec_b: Any) -> Any:
    """The :class:`~xent.scoring._pairs.PairState` of one partition, None when it has no rows."""

    rows = DEFAULT_BATCH_ROWS
    read_a, read_b = read_specs(spec_a, spec_b, against=files_b is not None)
    if task.part is None:  # the whole input (and B's whole file set) in one partition
        a: Any = file_batches(files, read_a, batch_rows=rows, use_threads=False)
        b: Any = None if files_b is None else file_batches(files_b, read_b, batch_rows=rows, use_threads=False)
    else:
        a = _part_batches(task.part, read_a, rows)
        b = None if files_b is None else (
            x for p in task.pieces or ()
            for x in cut_rows(iter_batches(p.path, read_b, batch_rows=rows), p.first_row, p.first_row + p.rows))
    return fold_pairs(pair_batches(a, b, spec_a, start=task.start), spec_a, spec_b)


def compare(paths: Any, spec: Any, vs: Any = None, *, against: Any = None, level: float = 0.95, client: Any = None,
            scheduler: str | None = None, workers: int | None = None, progress: bool = False,
            partition_rows: int | None = None, split_every: int = 8) -> Any:
    """Model A against model B on a Dask cluster, with the local engine's numbers.

    Arguments as for :func:`xent.scoring.compare` (``paths``, ``spec``, ``vs``, ``against``,
    ``level``) and :func:`xent.dask.score` (``client``, ``scheduler``, ``workers``, ``progress``,
    ``partition_rows``, ``split_every``). Returns the ``CompareReport`` the local engine would,
    equal to 1e-12 whatever the partitioning.

    Examples
    --------
    >>> import xent.dask
    >>> from xent.scoring import ScoreSpec
    >>> r = xent.dask.compare("preds/*.parquet", ScoreSpec(label="y", pred="p_a"), vs="p_b",
    ...                       workers=2)  # doctest: +SKIP
    """

    import dask.bag as db  # optional dependency (the dask extra)
    from dask.delayed import delayed  # optional dependency (the dask extra): xent.dask checks it is there on import

    spec_a, spec_b = compare_specs(spec, vs, against=against, level=level)
    rows = DEFAULT_PARTITION_ROWS if partition_rows is None else partition_rows
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise ValueError(f"`partition_rows` must be an integer >= 1, got {rows!r}")
    if isinstance(split_every, bool) or not isinstance(split_every, int) or split_every < 2:
        raise ValueError(f"`split_every` must be an integer >= 2, got {split_every!r}")
    start = time.perf_counter()
    files, files_b = compare_files(paths, against, spec_a, spec_b)  # before any cluster starts: fails fast
    tasks = plan_pairs(files, files_b, partition_rows=rows)
    with open_client(client=client, scheduler=scheduler, workers=workers) as c:
        bag = db.from_delayed([delayed(partition, pure=False)(pair_part_state, t, files, files_b, spec_a, spec_b)
                               for t in tasks])
        persisted = _follow(c, bag, [t.rows for t in tasks], progress=progress)
        state = _reduce(c, persisted, split_every=split_every)
    if state is None or state.rows == 0:
        raise_nothing_to_score(None if state is None else state.a, files)
    return CompareReport.from_state(state, spec_a, spec_b, sources=files, against=files_b, level=level,
                                    engine="dask", seconds=time.perf_counter() - start)
