"""Batch readers for Parquet, CSV and NPY/NPZ: only the needed columns, in large batches.

Every reader yields :class:`Batch` objects (a table, the file, the first row
number) so that errors can name file, row and column. Files are only read;
NPY/NPZ are loaded with ``allow_pickle=False`` (nothing is ever unpickled).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from xent.io._paths import file_format
from xent.scoring._spec import ScoreInputError, ScoreSpec

__all__ = ["DEFAULT_BATCH_ROWS", "Batch", "count_rows", "iter_batches"]

DEFAULT_BATCH_ROWS = 1 << 20  # ~5 MB per batch for a binary file: large enough to amortise, small for RSS


@dataclass(frozen=True)
class Batch:
    """A chunk of one file: ``table`` (pyarrow Table/RecordBatch or dict of NumPy arrays)."""

    table: Any
    source: str
    first_row: int

    @property
    def num_rows(self) -> int:
        t = self.table
        if isinstance(t, dict):
            return len(next(iter(t.values()))) if t else 0
        return t.num_rows


def _missing(source: str, wanted: tuple[str, ...], have: list[str]) -> None:
    for col in wanted:
        if col not in have:
            shown = ", ".join(have[:20]) + (", ..." if len(have) > 20 else "")
            raise ScoreInputError(f"column not found (the file has: {shown or 'no columns'})", source=source,
                                  column=col)


def open_parquet(path: str) -> Any:
    """Open a Parquet file for streaming reads (flat memory, checksums); ScoreInputError if unreadable."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        # pre_buffer=False: with it, iter_batches keeps every row group it has read (RSS grows with the file)
        # page checksums, where the writer stored them, catch silently corrupted data pages
        return pq.ParquetFile(path, pre_buffer=False, page_checksum_verification=True)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise ScoreInputError(f"not a readable Parquet file (truncated or corrupt?): {exc}", source=path) from None


def count_rows(path: str) -> int | None:
    """Rows in a file when its metadata says so (Parquet, NPY, NPZ); None for CSV."""
    fmt = file_format(path)
    if fmt == "parquet":
        return open_parquet(path).metadata.num_rows
    if fmt == "npy":
        return int(_load_npy(path).shape[0])
    return None


def iter_batches(path: str, spec: ScoreSpec, *, batch_rows: int = DEFAULT_BATCH_ROWS,
                 use_threads: bool = True) -> Iterator[Batch]:
    """Yield :class:`Batch` es of ``spec.columns`` from ``path``; raises ScoreInputError on unreadable data."""
    fmt = file_format(path)
    reader = {"parquet": _parquet, "csv": _csv, "npy": _npy, "npz": _npz}[fmt]
    yield from reader(path, spec.columns, batch_rows, use_threads)


def _parquet(path: str, cols: tuple[str, ...], batch_rows: int, use_threads: bool) -> Iterator[Batch]:
    import pyarrow as pa

    pf = open_parquet(path)
    _missing(path, cols, pf.schema_arrow.names)
    row = 0
    want = list(dict.fromkeys(cols))
    for g in range(pf.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        try:
            if n <= 4 * batch_rows:  # whole row group: the fastest decode, memory bounded by the group size
                parts = [pf.read_row_group(g, columns=want, use_threads=use_threads)]
            else:  # a huge row group: stream it in batches
                parts = pf.iter_batches(batch_size=batch_rows, row_groups=[g], columns=want, use_threads=use_threads)
            for part in parts:
                yield Batch(part, path, row)
                row += part.num_rows
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise ScoreInputError(f"cannot read Parquet data after row {row} (truncated or corrupt?): {exc}",
                                  source=path) from None


def _csv(path: str, cols: tuple[str, ...], batch_rows: int, use_threads: bool) -> Iterator[Batch]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    try:
        head = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 16))
        names = head.schema.names
    except (pa.ArrowException, OSError) as exc:
        if "Empty CSV file" in str(exc):
            return
        raise ScoreInputError(f"not a readable CSV file: {exc}", source=path) from None
    _missing(path, cols, names)
    want = list(dict.fromkeys(cols))
    # Read as text and convert ourselves: an unparseable value then names its row and column.
    conv = pcsv.ConvertOptions(include_columns=want, column_types={c: pa.string() for c in want},
                               strings_can_be_null=True)
    reader = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 24, use_threads=use_threads),
                           convert_options=conv)
    row = 0
    while True:
        try:
            rb = reader.read_next_batch()
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:
            raise ScoreInputError(f"cannot read CSV data after row {row}: {exc}", source=path) from None
        yield Batch(rb, path, row)
        row += rb.num_rows


def _load_npy(path: str) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ScoreInputError(f"not a readable NPY file (object arrays are refused): {exc}", source=path) from None


def _npy(path: str, cols: tuple[str, ...], batch_rows: int, use_threads: bool) -> Iterator[Batch]:
    arr = _load_npy(path)
    names = list(arr.dtype.names or ())
    if not names:
        raise ScoreInputError("an NPY file must hold a structured array with named fields (one per column)",
                              source=path)
    _missing(path, cols, names)
    for start in range(0, arr.shape[0], batch_rows):
        chunk = arr[start:start + batch_rows]
        yield Batch({c: np.ascontiguousarray(chunk[c]) for c in dict.fromkeys(cols)}, path, start)


def _npz(path: str, cols: tuple[str, ...], batch_rows: int, use_threads: bool) -> Iterator[Batch]:
    try:
        with np.load(path, allow_pickle=False) as z:
            _missing(path, cols, list(z.files))
            data = {c: z[c] for c in dict.fromkeys(cols)}
    except ScoreInputError:
        raise
    except (ValueError, OSError, KeyError) as exc:
        raise ScoreInputError(f"not a readable NPZ file (object arrays are refused): {exc}", source=path) from None
    lengths = {c: len(v) for c, v in data.items()}
    if len(set(lengths.values())) > 1:
        raise ScoreInputError(f"arrays have different lengths: {lengths}", source=path)
    n = next(iter(lengths.values()))
    for start in range(0, n, batch_rows):
        yield Batch({c: v[start:start + batch_rows] for c, v in data.items()}, path, start)
