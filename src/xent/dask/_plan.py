"""Cutting input files into Dask partitions that know where their rows start.

A partition is one :class:`Part`: a file, optionally a run of its Parquet row
groups, and the 0-based row number of its first row inside that file (from the
Parquet footer), so an error raised on a worker names the same file and row as
the local engine. Files that are not Parquet (CSV, NPY/NPZ), and Parquet
files whose footer cannot be read, are one partition each, read on the worker
by the local engine's reader, which also raises the local engine's error for a
corrupt file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from xent.io import PARQUET_SUFFIXES  # the one list of file formats

__all__ = ["PARQUET_SUFFIXES", "Part", "plan_parts"]

# Rows per partition: large enough that Dask's per-task cost (~1 ms) is noise,
# small enough that 2+ workers get several partitions each on a 100M-row file.
DEFAULT_PARTITION_ROWS = 1 << 22


@dataclass(frozen=True)
class Part:
    """One partition: ``path``; ``row_groups`` (None: the whole file through
    ``xent.io.iter_batches``); ``first_row`` (0-based, within the file);
    ``rows`` (None when unknown before reading)."""

    path: str
    row_groups: tuple[int, ...] | None = None
    first_row: int = 0
    rows: int | None = None


def _row_group_sizes(path: str) -> list[int] | None:
    import pyarrow.parquet as pq  # optional dependency (the cli extra)

    try:
        meta = pq.ParquetFile(path).metadata
    except Exception:  # corrupt or truncated: the worker's reader raises the located error
        return None
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def plan_parts(files: list[str], *, partition_rows: int = DEFAULT_PARTITION_ROWS) -> list[Part]:
    """Partitions covering ``files`` in order: runs of consecutive Parquet row
    groups of about ``partition_rows`` rows, and whole files otherwise."""
    parts: list[Part] = []
    for path in files:
        sizes = _row_group_sizes(path) if os.fspath(path).lower().endswith(PARQUET_SUFFIXES) else None
        if not sizes:  # not Parquet, unreadable footer, or no row groups: one whole-file partition
            parts.append(Part(path, rows=0 if sizes == [] else None))
            continue
        start, first_row, rows = 0, 0, 0
        for i, n in enumerate(sizes):
            rows += n
            if rows >= partition_rows or i == len(sizes) - 1:
                parts.append(Part(path, tuple(range(start, i + 1)), first_row, rows))
                start, first_row, rows = i + 1, first_row + rows, 0
    return parts
