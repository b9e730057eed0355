"""Batch readers for Parquet, CSV and NPY/NPZ: only the needed columns, in large batches.

Every reader yields :class:`Batch` objects (a table, the file, the first row
number) so that errors can name file, row and column. Files are only read;
NPY/NPZ are loaded with ``allow_pickle=False`` (nothing is ever unpickled).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from xent.io._errors import InputError
from xent.io._paths import file_format
from xent.io._spec import ReadSpec

__all__ = ["DEFAULT_BATCH_ROWS", "Batch", "check_columns", "count_rows", "iter_batches", "open_parquet"]

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


def check_columns(source: str, wanted: tuple[str, ...], have: list[Any], what: str = "file") -> None:
    """Every column read is in ``have``, once; else InputError naming the column."""
    for col in dict.fromkeys(wanted):
        if col not in have:
            shown = ", ".join(map(str, have[:20])) + (", ..." if len(have) > 20 else "")
            raise InputError(f"column not found (the {what} has: {shown or 'no columns'})", source=source,
                             column=col)
        if have.count(col) > 1:
            raise InputError(f"{have.count(col)} columns have this name; give each column read a name of its "
                             "own", source=source, column=col)


# Parquet data is read through a buffer of this size, never a whole column chunk at once, so
# that memory follows the batch size and not the row-group size (one 100M-row group included).
PARQUET_BUFFER = 1 << 20


def open_parquet(path: str, *, buffer_size: int = PARQUET_BUFFER, metadata: Any = None) -> Any:
    """Open a Parquet file for streaming reads (flat memory, checksums); InputError if unreadable.

    ``buffer_size`` 0 reads each column chunk whole (faster, memory grows with the row group).
    """
    import pyarrow as pa  # optional dependency (the cli extra)
    import pyarrow.parquet as pq  # optional dependency (the cli extra)

    try:
        # pre_buffer=False: with it, iter_batches keeps every row group it has read (RSS grows with the file)
        # page checksums, where the writer stored them, catch silently corrupted data pages
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=buffer_size, metadata=metadata,
                              page_checksum_verification=True)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"not a readable Parquet file (truncated or corrupt?): {exc}", source=path) from None


def count_rows(path: str) -> int | None:
    """Rows in a file when its metadata says so (Parquet, NPY, NPZ); None for CSV."""
    fmt = file_format(path)
    if fmt == "parquet":
        return open_parquet(path).metadata.num_rows
    if fmt == "npy":
        return int(_load_npy(path).shape[0])
    return None


def iter_batches(path: str, spec: ReadSpec, *, batch_rows: int = DEFAULT_BATCH_ROWS,
                 use_threads: bool = True) -> Iterator[Batch]:
    """Yield :class:`Batch` es of ``spec.columns`` from ``path``; raises InputError on unreadable data."""
    fmt = file_format(path)
    if fmt == "csv":  # parsed by column role (label, predictions, weight)
        yield from _csv(path, spec, batch_rows, use_threads)
        return
    reader = {"parquet": _parquet, "npy": _npy, "npz": _npz}[fmt]
    yield from reader(path, spec.columns, batch_rows, use_threads)


def _parquet(path: str, cols: tuple[str, ...], batch_rows: int, use_threads: bool) -> Iterator[Batch]:
    import pyarrow as pa  # optional dependency (the cli extra)

    pf = open_parquet(path)
    check_columns(path, cols, pf.schema_arrow.names)
    want = list(dict.fromkeys(cols))
    sizes = [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)]
    if sizes and max(sizes) <= batch_rows:  # every row group read whole: unbuffered, 15% less decoding time
        pf = open_parquet(path, buffer_size=0, metadata=pf.metadata)
    row = 0
    try:
        for g, n in enumerate(sizes):
            if n <= batch_rows:  # one read: the cheapest decode
                parts: Any = [pf.read_row_group(g, columns=want, use_threads=use_threads)]
            else:  # batches of batch_rows rows through PARQUET_BUFFER, whatever the row-group size
                parts = pf.iter_batches(batch_size=batch_rows, row_groups=[g], columns=want, use_threads=use_threads)
            for part in parts:
                yield Batch(part, path, row)
                row += part.num_rows
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(f"cannot read Parquet data after row {row} (truncated or corrupt?): {exc}",
                         source=path) from None


def _csv_header(path: str) -> list[str] | None:
    """The column names of a CSV file (decompressed as pyarrow does), None when it is empty."""
    import pyarrow as pa  # optional dependency (the cli extra)

    try:
        with pa.input_stream(path, compression="detect") as raw:
            # surrogateescape: bytes that are not UTF-8 survive decoding and are reported below
            header = next(csv.reader(io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="")),
                          None)
    except (pa.ArrowException, OSError, csv.Error, ValueError) as exc:
        raise InputError(f"not a readable CSV file: {exc}", source=path) from None
    for name in header or ():
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(f"the header is not UTF-8 text ({name.encode('utf-8', 'surrogateescape')!r}); "
                             "save the file as UTF-8", source=path) from None
    return header


def _utf8(rb: Any, source: str, first_row: int) -> Any:
    """The batch's byte columns as UTF-8 text; InputError at the first value that is not UTF-8."""
    import pyarrow as pa  # optional dependency (the cli extra)
    import pyarrow.compute as pc  # optional dependency (the cli extra)

    columns = []
    for name, col in zip(rb.schema.names, rb.columns):
        if not pa.types.is_binary(col.type):
            columns.append(col)
            continue
        try:
            columns.append(pc.cast(col, pa.string()))  # validates the UTF-8
        except pa.ArrowInvalid:
            for i, v in enumerate(col.to_pylist()):
                try:
                    if v is not None:
                        v.decode("utf-8")
                except UnicodeDecodeError:
                    raise InputError(f"the value {v!r} is not UTF-8 text; save the file as UTF-8",
                                     source=source, row=first_row + i, column=name) from None
            raise
    return pa.RecordBatch.from_arrays(columns, names=rb.schema.names)


def _ragged(path: str, names: list[str], bad: Any) -> InputError:
    """The error for a row with too many or too few fields (pyarrow's InvalidRow ``bad``)."""
    number = bad.number
    if number is None:  # a multi-threaded read does not know it: find it again on one thread
        import pyarrow as pa  # optional dependency (the cli extra)

        seen: list[Any] = []
        try:
            for _ in _read_csv(path, {names[0]: pa.binary()}, False, seen.append):
                pass
        except (pa.ArrowException, OSError):
            pass
        number = seen[0].number if seen else None
    have, want = bad.actual_columns, bad.expected_columns
    column = names[have] if have < want else None  # the first column without a value
    return InputError(f"expected {want} fields ({', '.join(names)}), got {have}: {bad.text!r}", source=path,
                      row=None if number is None else number - 2, column=column)  # number: 1-based, header 1


CSV_BLOCK = 1 << 24  # bytes of CSV text parsed at a time (one batch)


def _read_csv(path: str, types: dict[str, Any], use_threads: bool, invalid: Any) -> Iterator[Any]:
    """pyarrow's streaming CSV reader over the columns of ``types``; rows of the wrong width go to ``invalid``."""
    import pyarrow.csv as pcsv  # optional dependency (the cli extra)

    def handler(row: Any) -> str:
        invalid(row)
        return "error"

    conv = pcsv.ConvertOptions(include_columns=list(types), column_types=types, strings_can_be_null=True)
    reader = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=CSV_BLOCK, use_threads=use_threads),
                           parse_options=pcsv.ParseOptions(invalid_row_handler=handler), convert_options=conv)
    while True:
        try:
            yield reader.read_next_batch()
        except StopIteration:
            return


def _csv_types(spec: ReadSpec, text: bool) -> dict[str, Any]:
    """Column types for pyarrow's CSV parser: numbers parsed by pyarrow (the fast path), or every
    column as bytes (``text``: the UTF-8 check and io._convert then name the row and column of a
    value that is not a number)."""
    import pyarrow as pa  # optional dependency (the cli extra)

    if text:
        return {c: pa.binary() for c in spec.columns}
    numeric = spec.classes is None or all(isinstance(c, int) and not isinstance(c, bool) for c in spec.classes)
    types = {spec.label: pa.int64() if numeric else pa.binary()}
    types.update({c: pa.float64() for c in spec.pred + ((spec.weight,) if spec.weight else ())})
    for c in getattr(spec, "by", ()):  # segment values: text (a CSV file has no types)
        types.setdefault(c, pa.string())
    return types


def _csv(path: str, spec: ReadSpec, batch_rows: int, use_threads: bool) -> Iterator[Batch]:
    import pyarrow as pa  # optional dependency (the cli extra)

    names = _csv_header(path)
    if not names:
        return
    check_columns(path, spec.columns, names)
    bad: list[Any] = []
    row = 0
    for text in (False, True):
        # The fast path parses numbers in pyarrow. A value it cannot parse (a class name, "1.0" as an
        # integer label, spaces, bytes that are not UTF-8) restarts the read as text past the rows
        # already folded, so that io._convert reads or locates it.
        skip = row
        try:
            for rb in _read_csv(path, _csv_types(spec, text), use_threads, bad.append):
                if skip >= rb.num_rows:
                    skip -= rb.num_rows
                    continue
                rb, skip = rb.slice(skip), 0
                yield Batch(_utf8(rb, path, row), path, row)
                row += rb.num_rows
            return
        except (pa.ArrowException, OSError) as exc:
            if bad:
                raise _ragged(path, names, bad[0]) from None
            if text or not (isinstance(exc, pa.ArrowInvalid) and "conversion error" in str(exc)):
                raise InputError(f"cannot read CSV data after row {row}: {exc}", source=path) from None


def _load_npy(path: str) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputError(f"not a readable NPY file (object arrays are refused): {exc}", source=path) from None


def _npy(path: str, cols: tuple[str, ...], batch_rows: int, use_threads: bool) -> Iterator[Batch]:
    arr = _load_npy(path)
    names = list(arr.dtype.names or ())
    if not names:
        raise InputError("an NPY file must hold a structured array with named fields (one per column)",
                         source=path)
    check_columns(path, cols, names)
    for start in range(0, arr.shape[0], batch_rows):
        chunk = arr[start:start + batch_rows]
        yield Batch({c: np.ascontiguousarray(chunk[c]) for c in dict.fromkeys(cols)}, path, start)


def _npz(path: str, cols: tuple[str, ...], batch_rows: int, use_threads: bool) -> Iterator[Batch]:
    try:
        with np.load(path, allow_pickle=False) as z:
            check_columns(path, cols, list(z.files))
            data = {c: z[c] for c in dict.fromkeys(cols)}
    except InputError:
        raise
    except (ValueError, OSError, KeyError) as exc:
        raise InputError(f"not a readable NPZ file (object arrays are refused): {exc}", source=path) from None
    lengths = {c: len(v) for c, v in data.items()}
    if len(set(lengths.values())) > 1:
        raise InputError(f"arrays have different lengths: {lengths}", source=path)
    n = next(iter(lengths.values()))
    for start in range(0, n, batch_rows):
        yield Batch({c: v[start:start + batch_rows] for c, v in data.items()}, path, start)
