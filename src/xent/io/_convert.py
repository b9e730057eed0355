"""From a table (pyarrow, pandas or a dict of NumPy arrays) to validated arrays folded into a state.

:func:`state_from_table` is what every engine maps over its batches or
partitions. The fast path hands the columns to the fused kernel, which also
validates; only when it reports a bad row does the slow path find every bad
row's reason, then raise (``on_invalid="error"``, naming file, row and
column) or drop and count them (``"skip"``).
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from xent.io._errors import InputError
from xent.io._readers import check_columns
from xent.io._spec import ReadSpec
from xent.metrics import BinaryState, MulticlassState, SegmentLimitError, new_state
from xent.metrics._invalid import LABEL, LOGIT, MISSING_LABEL, NAN, PARSE, RANGE, REASONS, SUM, WEIGHT, find_invalid

__all__ = ["state_from_table"]


# pyarrow type name -> NumPy dtype, for zero-copy views of fixed-width numeric columns
_NUMPY_TYPES = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64, "uint8": np.uint8,
                "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64, "halffloat": np.float16,
                "float": np.float32, "double": np.float64}


def _numpy_view(x: Any) -> np.ndarray | None:
    """A read-only NumPy view of a pyarrow array of fixed-width numbers without nulls; None otherwise.

    No copy, and no pandas: pyarrow's own ``to_numpy`` (and ``pa.array``, ``pa.scalar``,
    so ``pc.fill_null``) import pandas: a fifth of a second of start-up for every ``xent score``.
    """
    dtype = _NUMPY_TYPES.get(str(x.type))
    if dtype is None or x.null_count:
        return None
    buf = x.buffers()[1]
    if buf is None or len(x) == 0:
        return np.empty(0, dtype=dtype)
    return np.frombuffer(buf, dtype=dtype, count=len(x), offset=x.offset * np.dtype(dtype).itemsize)


def _nulls(x: Any) -> np.ndarray:
    """The rows of a pyarrow array that are null, from its validity bitmap."""
    if x.null_count == 0:
        return np.zeros(len(x), dtype=bool)
    if x.null_count == len(x) or x.buffers()[0] is None:
        return np.ones(len(x), dtype=bool)
    bits = np.frombuffer(x.buffers()[0], dtype=np.uint8)
    return np.unpackbits(bits, bitorder="little")[x.offset:x.offset + len(x)] == 0


def _values(x: Any, fill: float) -> np.ndarray:
    """A NumPy array of a fixed-width numeric pyarrow array, with ``fill`` for nulls (a copy only then)."""
    view = _numpy_view(x)
    if view is not None:
        return view
    dtype = _NUMPY_TYPES[str(x.type)]
    out = np.full(len(x), fill, dtype=dtype)
    if x.null_count < len(x):
        keep = ~_nulls(x)
        out[keep] = np.frombuffer(x.buffers()[1], dtype=dtype, count=len(x),
                                  offset=x.offset * np.dtype(dtype).itemsize)[keep]
    return out


def _arrow_column(table: Any, name: str) -> Any:
    col = table.column(name)
    if hasattr(col, "combine_chunks"):  # a Table's ChunkedArray: one chunk is used as it is
        col = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
    return col


def _columns(table: Any, spec: ReadSpec, source: str) -> tuple[dict[str, Any], int]:
    """Raw columns (pyarrow Arrays or NumPy arrays) and the row count."""
    if isinstance(table, dict):
        have = list(table)
    elif hasattr(table, "iloc"):  # pandas DataFrame (a Dask partition)
        import pyarrow as pa  # optional dependency (the cli extra)

        have = [str(c) for c in table.columns]
        check_columns(source, spec.columns, have, "data")
        table = pa.Table.from_pandas(table[list(dict.fromkeys(spec.columns))], preserve_index=False)
    else:
        have = table.schema.names
    check_columns(source, spec.columns, have, "data")
    if isinstance(table, dict):
        cols = {c: table[c] for c in dict.fromkeys(spec.columns)}
    else:
        cols = {c: _arrow_column(table, c) for c in dict.fromkeys(spec.columns)}
    n = len(next(iter(cols.values())))
    return cols, n


def _is_arrow(x: Any) -> bool:
    return type(x).__module__.startswith("pyarrow")


def _floats(x: Any, source: str, column: str, first_row: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A float32/float64 NumPy array, and the rows that did not parse as numbers (or None)."""
    if not _is_arrow(x):
        a = np.asarray(x)
        if a.dtype in (np.float32, np.float64):
            return a, None
        if np.issubdtype(a.dtype, np.floating):
            return a.astype(np.float32), None
        if np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_:
            return a.astype(np.float64), None
        import pyarrow as pa  # optional dependency (the cli extra)

        x = pa.array(a.tolist())  # strings or objects: parse like text
    import pyarrow as pa  # optional dependency (the cli extra)

    t = x.type
    # missing predictions (nulls) are NaN
    if pa.types.is_float32(t) or pa.types.is_float64(t):
        return _values(x, np.nan), None
    if pa.types.is_null(t):
        return np.full(len(x), np.nan), None
    import pyarrow.compute as pc  # only off the fast path (start-up time)

    if pa.types.is_floating(t):
        return _values(pc.cast(x, pa.float32()), np.nan), None
    if pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t):
        return _values(pc.cast(x, pa.float64()), np.nan), None
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        if pa.types.is_dictionary(t):
            x = pc.cast(x, pa.string())
        try:
            return _values(pc.cast(pc.utf8_trim_whitespace(x), pa.float64()), np.nan), None
        except pa.ArrowInvalid:
            pass
        out = np.full(len(x), np.nan)
        bad = np.zeros(len(x), dtype=bool)
        for i, s in enumerate(x.to_pylist()):
            if s is None:
                continue
            try:
                out[i] = float(s)
            except ValueError:
                bad[i] = True
        return out, bad
    raise InputError(f"expected a numeric column, got type {t}", source=source, column=column)


def _pred_matrix(x: Any, source: str, column: str, first_row: int) -> tuple[np.ndarray, np.ndarray | None] | None:
    """(n, K) predictions from a list column or a 2-d array; None when ``x`` is a plain column."""
    if not _is_arrow(x):
        a = np.asarray(x)
        if a.ndim == 2:
            return (a if a.dtype in (np.float32, np.float64) else a.astype(np.float64)), None
        if a.dtype == object and len(a) and isinstance(a[0], (list, tuple, np.ndarray)):
            import pyarrow as pa  # optional dependency (the cli extra)

            x = pa.array([None if v is None else list(v) for v in a])
        else:
            return None
    import pyarrow as pa  # optional dependency (the cli extra)

    t = x.type
    if not (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)):
        return None
    import pyarrow.compute as pc  # only for list columns (start-up time)

    lengths = _values(pc.list_value_length(x), -1)
    widths = np.unique(lengths[lengths >= 0])
    if len(widths) > 1 or (lengths < 0).any():
        row = int(np.flatnonzero(lengths != (widths[0] if len(widths) else -2))[0]) if len(widths) else 0
        got = "a missing list" if lengths[row] < 0 else f"a list of {lengths[row]} values"
        raise InputError(f"every row must hold a list of {widths[0] if len(widths) else 'K'} probabilities, "
                         f"got {got}", source=source, row=first_row + row, column=column)
    k = int(widths[0]) if len(widths) else 0
    flat, bad = _floats(pc.list_flatten(x), source, column, first_row)
    return flat.reshape(len(x), k), (None if bad is None else np.asarray(bad.reshape(len(x), k).any(axis=1)))


def _strings(values: list[str]) -> Any:
    """A pyarrow string array, built from its buffers (``pa.array`` imports pandas: start-up time)."""
    import pyarrow as pa  # optional dependency (the cli extra)

    data = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(data) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in data], out=offsets[1:])
    return pa.LargeStringArray.from_buffers(len(data), pa.py_buffer(offsets), pa.py_buffer(b"".join(data)))


def _numeric_codes(v: np.ndarray, classes: tuple[Any, ...] | None) -> np.ndarray:
    """Class codes of numeric labels (-1 when not a class): int8/int64 labels of 0..K-1 pass through."""
    if v.dtype == np.bool_:
        v = v.view(np.int8)
    if classes is None or tuple(classes) == tuple(range(len(classes))):
        if v.dtype == np.int8 or v.dtype == np.int64:
            return v
        if np.issubdtype(v.dtype, np.integer):
            return v.astype(np.int64)
        with np.errstate(invalid="ignore"):
            iv = np.where(np.isfinite(v), v, -1).astype(np.int64)
        return np.where(iv == v, iv, -1)
    table = np.asarray([float(c) for c in classes])
    order = np.argsort(table)
    pos = np.clip(np.searchsorted(table[order], v), 0, len(table) - 1)
    found = table[order][pos] == v
    return np.where(found, order[pos], -1).astype(np.int64)


def _label_codes(x: Any, classes: tuple[Any, ...] | None, k: int, source: str, column: str
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """Class codes (-1 when not a class) and the rows whose label is missing (or None)."""
    numeric_classes = classes is None or all(isinstance(c, (int, float, np.integer, np.floating))
                                             and not isinstance(c, bool) for c in classes)
    if not _is_arrow(x):
        a = np.asarray(x)
        if a.dtype.kind in "biuf" and numeric_classes:
            return _numeric_codes(a, classes), None
        import pyarrow as pa  # optional dependency (the cli extra)

        x = _strings(a.tolist()) if a.dtype.kind == "U" else pa.array(a if a.dtype.kind in "biuf" else a.tolist())
    import pyarrow as pa  # optional dependency (the cli extra)

    t = x.type
    if numeric_classes and (pa.types.is_integer(t) or pa.types.is_floating(t)):
        v = _numpy_view(x)  # the fast path: no nulls, read in place
        if v is not None:
            return _numeric_codes(v, classes), None
    import pyarrow.compute as pc  # only off the fast path (start-up time)

    missing = _nulls(x) if x.null_count else None
    if pa.types.is_dictionary(t):
        x = pc.cast(x, pa.string())
        t = x.type
    if (pa.types.is_string(t) or pa.types.is_large_string(t)) and numeric_classes:
        try:  # numeric labels stored as text (CSV)
            x = pc.cast(pc.utf8_trim_whitespace(x), pa.float64())
            t = x.type
        except pa.ArrowInvalid:
            pass
    if pa.types.is_boolean(t):
        x = pc.cast(x, pa.int8())
        t = x.type
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        if not numeric_classes:
            x = pc.cast(x, pa.string())
        else:
            return _numeric_codes(_values(x, -1), classes), missing
    names = _strings([str(c) for c in (classes if classes is not None else range(k))])
    return _values(pc.index_in(pc.cast(x, pa.string()), value_set=names), -1).astype(np.int64), missing


def _fmt_classes(classes: tuple[Any, ...]) -> str:
    shown = ", ".join(repr(c) if isinstance(c, str) else str(c) for c in classes[:12])
    return "[" + shown + (", ..." if len(classes) > 12 else "") + "]"


def _message(code: int, i: int, *, y_raw: Any, P: np.ndarray, col: int, w: Any, spec: ReadSpec,
             classes: tuple[Any, ...]) -> tuple[str, str]:
    """(message, column) for invalid row ``i``."""
    pred_cols = spec.pred
    pcol = pred_cols[col] if len(pred_cols) > 1 else pred_cols[0]
    if code == LABEL:
        v = y_raw[i].as_py() if hasattr(y_raw, "type") else np.asarray(y_raw)[i]
        v = v.item() if hasattr(v, "item") else v
        return f"label {v!r} is not in the class list {_fmt_classes(classes)}", spec.label
    if code == MISSING_LABEL:
        return "missing label", spec.label
    row = P[i]
    val = row if np.ndim(row) == 0 else row[col]
    if code == PARSE:
        return "cannot parse the value as a number", pcol
    if code == NAN:
        return "missing or NaN prediction", pcol
    if code == RANGE:
        return f"probability {float(val)!r} is outside [0, 1]", pcol
    if code == LOGIT:
        return f"logit {float(val)!r} is not finite", pcol
    if code == SUM:
        return (f"probabilities sum to {float(np.sum(row)):.10g}, not 1 (tolerance {spec.tolerance:g}; "
                "use `tolerance`, or `from_logits` for unnormalised scores)", ", ".join(pred_cols))
    if code == WEIGHT:
        return f"weight {float(np.asarray(w)[i])!r} must be finite and >= 0", spec.weight or ""
    return REASONS[code], pcol


def _segment_keys(x: Any, source: str, column: str) -> tuple[list[Any], np.ndarray]:
    """The distinct values of a ``by`` column (None for NULL) and each row's index into them."""
    if not _is_arrow(x):
        a = np.asarray(x)
        if a.dtype.kind in "biuU":
            values, inverse = np.unique(a, return_inverse=True)
            return values.tolist(), inverse.astype(np.int64)
        import pyarrow as pa  # optional dependency (the cli extra)

        x = pa.array(a.tolist())
    import pyarrow as pa  # optional dependency (the cli extra)

    t = x.type
    if pa.types.is_dictionary(t):
        x = x.dictionary_decode()
        t = x.type
    if not (pa.types.is_integer(t) or pa.types.is_string(t) or pa.types.is_large_string(t)
            or pa.types.is_boolean(t) or pa.types.is_null(t)):
        why = (" (a float has too many distinct values to be a segment: round or bin it into an integer or "
               "string column first)" if pa.types.is_floating(t) or pa.types.is_decimal(t) else "")
        raise InputError(f"--by needs a string or integer column, got type {t}{why}", source=source,
                              column=column)
    enc = x.dictionary_encode()
    values = enc.dictionary.to_pylist()
    inverse = _values(enc.indices, -1).astype(np.int64)
    if x.null_count:
        inverse = np.where(inverse < 0, len(values), inverse)
        values.append(None)
    return values, inverse


def _fold_groups(state: Any, cols: dict[str, Any], spec: ReadSpec, y: np.ndarray, P: Any, w: Any, source: str,
                 first_row: int, keep: np.ndarray | None) -> None:
    """Fold the folded rows (``keep``: the rows kept of the table) into the state's segments and buckets."""
    if not state.groups:
        return
    by = {}
    for col in spec.by:
        values, inverse = _segment_keys(cols[col], source, col)
        by[col] = (values, inverse if keep is None else inverse[keep])
    n = len(y) if keep is None else int(np.count_nonzero(keep))
    rows = first_row + (np.arange(n) if keep is None else np.flatnonzero(keep))
    try:
        state.fold_groups(y if keep is None else y[keep], P if keep is None else P[keep],
                          None if w is None else (w if keep is None else w[keep]), by=by, source=source, rows=rows)
    except SegmentLimitError as exc:
        full = next(iter(c for c, g in state.groups.items() if len(g.keys) >= g.max_segments), None)
        row = None
        if full in by:
            values, inverse = by[full]
            at = [i for i, v in enumerate(values) if v == exc.value and (v is None) == (exc.value is None)]
            hit = np.flatnonzero(inverse == at[0]) if at else np.zeros(0, dtype=np.int64)
            row = int(rows[hit[0]]) if len(hit) else None
        raise InputError(f"{exc} (value {exc.value!r})", source=source, row=row, column=full) from None


def state_from_table(table: Any, spec: ReadSpec, *, source: str = "<table>", first_row: int = 0,
                     state: BinaryState | MulticlassState | None = None,
                     threads: int | None = None) -> BinaryState | MulticlassState:
    """Validate one table (batch or partition) and fold it into ``state`` (a new state when None).

    Parameters
    ----------
    table : pyarrow.Table, pyarrow.RecordBatch, pandas.DataFrame or dict of NumPy arrays
        Holds ``spec.columns``; extra columns are ignored.
    spec : ReadSpec
        The columns and options (a :class:`xent.scoring.ScoreSpec` is one).
    source : str
        Named in error messages (usually the file path).
    first_row : int
        Row number of the table's first row inside ``source``, for error messages.
    state : metric state, optional
        Folded into and returned; a new one (:func:`xent.metrics.new_state`) when None.
    threads : int, optional
        Threads of the metric kernel (default :func:`xent.get_num_threads`).

    Raises
    ------
    InputError
        Missing column, unparseable number, NaN, probability outside [0, 1], a row
        not summing to 1, a label outside the class list, a bad weight (the first
        bad row, when ``spec.on_invalid == "error"``).
    """
    cols, _ = _columns(table, spec, source)
    parse_bad = None
    P: np.ndarray | list[np.ndarray]
    multi = spec.multiclass
    if len(spec.pred) == 1:
        mat = _pred_matrix(cols[spec.pred[0]], source, spec.pred[0], first_row) if multi is not False else None
        if mat is not None:
            P, parse_bad = mat
            multi = True
        elif multi:
            raise InputError("a multi-class input needs one column per class or a list column; this column "
                             "holds one value per row", source=source, column=spec.pred[0])
        else:
            P, parse_bad = _floats(cols[spec.pred[0]], source, spec.pred[0], first_row)
    else:
        parts = [_floats(cols[c], source, c, first_row) for c in spec.pred]
        P = [p for p, _ in parts]  # one column per class, read in place by the kernel
        bads = [b for _, b in parts if b is not None]
        parse_bad = np.logical_or.reduce(bads) if bads else None
        multi = True
    k = (len(P) if isinstance(P, list) else P.shape[1]) if multi else 2
    if multi and spec.classes is not None and len(spec.classes) != k:
        raise InputError(f"the predictions have {k} values per row but `classes` lists {len(spec.classes)}",
                         source=source, column=spec.pred[0])
    if state is None:
        state = new_state(k if multi else None, classes=spec.classes, n_bins=spec.n_bins,
                          from_logits=spec.from_logits, eps=spec.eps, tolerance=spec.tolerance)
        if spec.by or spec.ci is not None:
            state.with_groups(spec.by, buckets=spec.ci_buckets if spec.ci is not None else 1,
                              max_segments=spec.max_segments)
    elif isinstance(state, MulticlassState) != bool(multi) or (isinstance(state, MulticlassState)
                                                                and state.num_classes != k):
        raise InputError(f"this data is {'multi-class with ' + str(k) + ' classes' if multi else 'binary'}, "
                         "unlike the data before it", source=source, column=spec.pred[0])
    classes = spec.classes if spec.classes is not None else tuple(range(k))
    y_raw = cols[spec.label]
    y, missing = _label_codes(y_raw, spec.classes, k, source, spec.label)
    w = None
    if spec.weight is not None:
        w, wbad = _floats(cols[spec.weight], source, spec.weight, first_row)
        w = np.ascontiguousarray(w, dtype=np.float64)
        if wbad is not None:
            w = np.where(wbad, np.nan, w)
    if not multi:
        P = np.ascontiguousarray(P)
        if y.dtype != np.int8:
            y = y.astype(np.int64, copy=False)
    if missing is None and parse_bad is None:
        # a multi-class state reads the K columns in place; a binary one the contiguous column made above
        first_bad = (state.fold(y, P, w, threads=threads) if isinstance(state, MulticlassState)
                     else state.fold(y, cast(np.ndarray, P), w, threads=threads))
        if first_bad < 0:
            _fold_groups(state, cols, spec, y, P, w, source, first_row, None)
            return state
    # Slow path: one reason per bad row, then raise on the first or drop them all.
    if isinstance(P, list):
        P = np.stack(P, axis=1, dtype=np.result_type(*P))
    reason, col = find_invalid(y, P, w, num_classes=k, logits=spec.from_logits, tolerance=spec.tolerance)
    if parse_bad is not None:
        reason = np.where(parse_bad & (np.asarray(y) >= 0), PARSE, reason).astype(np.int8)
    if missing is not None:
        reason = np.where(missing, MISSING_LABEL, reason).astype(np.int8)
    bad = np.flatnonzero(reason)
    if len(bad) == 0:  # pragma: no cover - the kernel and find_invalid agree on validity
        raise InputError("invalid row not located", source=source)
    if spec.on_invalid == "error":
        i = int(bad[0])
        msg, column = _message(int(reason[i]), i, y_raw=y_raw, P=P, col=int(col[i]), w=w, spec=spec, classes=classes)
        raise InputError(msg, source=source, row=first_row + i, column=column)
    keep = reason == 0
    for code, count in zip(*np.unique(reason[~keep], return_counts=True)):
        state.add_skipped(REASONS[int(code)], int(count))
    first = state.fold(np.ascontiguousarray(y[keep]), np.ascontiguousarray(P[keep]),
                       None if w is None else np.ascontiguousarray(w[keep]), threads=threads)
    if first >= 0:  # pragma: no cover
        raise InputError("invalid row left after skipping", source=source, row=first_row)
    _fold_groups(state, cols, spec, y, P, w, source, first_row, keep)
    return state
