"""Model A's and model B's rows, side by side: one file set (``--vs``) or two read in lockstep (``--against``).

Every engine of ``xent compare`` turns a stream of :class:`Pair` s into a
:class:`PairState` (the two models' metric states, folded over the same rows)
with :func:`fold_pair`. With ``--against``, :func:`zip_batches` cuts the two
file sets' batches at common row boundaries, checks the label column equal row
by row, and raises a located :class:`~xent.scoring.ScoreInputError` at the first
difference or at the first row one side has and the other has not.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from xent.io import Batch, ReadSpec, iter_batches, state_from_table
from xent.io._convert import _label_codes  # the one label -> class-code rule, so "1" (CSV) equals 1 (Parquet)
from xent.scoring._spec import ScoreInputError, ScoreSpec

__all__ = ["Pair", "PairState", "cut_rows", "file_batches", "fold_pair", "fold_pairs", "pair_batches", "read_spec",
           "read_specs", "zip_batches"]


def read_spec(spec: ScoreSpec, *more: str, own: bool = True) -> ReadSpec:
    """What to read for ``spec`` plus the columns ``more`` (B's predictions), each once; only the label and
    the predictions when ``own`` is False (B's files under ``--against``: weight and segments come from A's).

    Only read with it (a plain :class:`xent.io.ReadSpec`, unchecked): it may name more prediction columns
    than there are classes, which no ScoreSpec may.
    """
    pred = tuple(dict.fromkeys((*spec.pred, *more)))
    if not own:
        return ReadSpec(label=spec.label, pred=pred, classes=spec.classes)
    return ReadSpec(label=spec.label, pred=pred, weight=spec.weight, classes=spec.classes, by=spec.by)


@dataclass(frozen=True)
class Pair:
    """The same rows of model A's input (``a``) and of model B's (``b``; ``a`` itself with ``--vs``)."""

    a: Batch
    b: Batch


class PairState:
    """Two metric states folded over the same rows: ``a`` and ``b``. Merges and copies as a state does."""

    def __init__(self, a: Any, b: Any) -> None:
        self.a = a
        self.b = b

    @property
    def rows(self) -> int:
        return int(self.a.rows)

    @property
    def skipped(self) -> dict[str, int]:
        return dict(self.a.skipped)

    def copy(self) -> PairState:
        return PairState(self.a.copy(), self.b.copy())

    def merge(self, other: PairState) -> PairState:
        self.a.merge(other.a)
        self.b.merge(other.b)
        return self


def _rows(table: Any) -> int:
    if isinstance(table, dict):
        return len(next(iter(table.values()))) if table else 0
    return int(table.num_rows)


def _slice(table: Any, start: int, n: int) -> Any:
    if start == 0 and n == _rows(table):
        return table
    if isinstance(table, dict):
        return {k: v[start:start + n] for k, v in table.items()}
    return table.slice(start, n)


def _column(table: Any, name: str) -> Any:
    if isinstance(table, dict):
        return table[name]
    col = table.column(name)
    return col.combine_chunks() if hasattr(col, "combine_chunks") else col


def _with_column(table: Any, name: str, values: Any) -> Any:
    """``table`` with column ``name`` set to ``values`` (A's weight beside B's predictions)."""
    if isinstance(table, dict):
        return {**table, name: np.asarray(values) if not hasattr(values, "type") else values}
    import pyarrow as pa  # optional dependency (the cli extra): only files need it

    if not hasattr(values, "type"):
        values = pa.array(values)
    t = table if isinstance(table, pa.Table) else pa.Table.from_batches([table])
    if name in t.schema.names:
        t = t.drop_columns([name])
    return t.append_column(name, values)


def _show(v: Any) -> str:
    v = v.as_py() if hasattr(v, "as_py") else v
    v = v.item() if hasattr(v, "item") else v
    return repr(v)


def check_labels(a: Batch, b: Batch, spec: ScoreSpec, against: str) -> None:
    """Raise at the first row whose label differs between ``a`` and ``b`` (same rows of two file sets)."""
    ya, yb = _column(a.table, spec.label), _column(b.table, spec.label)
    k = max(len(spec.classes or ()), len(spec.pred), 2)
    ca, ma = _label_codes(ya, spec.classes, k, a.source, spec.label)
    cb, mb = _label_codes(yb, spec.classes, k, b.source, spec.label)
    ma = np.zeros(len(ca), dtype=bool) if ma is None else ma
    mb = np.zeros(len(cb), dtype=bool) if mb is None else mb
    differ = (ma != mb) | (~ma & (ca != cb))
    unknown = ~ma & (ca < 0) & (cb < 0)  # neither is a class: compare the values themselves
    if unknown.any():
        idx = np.flatnonzero(unknown)
        va, vb = np.asarray(_values(ya))[idx], np.asarray(_values(yb))[idx]
        differ[idx] |= np.array([str(x) != str(z) for x, z in zip(va, vb)], dtype=bool)
    if differ.any():
        i = int(np.argmax(differ))
        got_a = "a missing label" if ma[i] else f"label {_show(ya[i])}"
        got_b = "a missing label" if mb[i] else _show(yb[i])
        raise ScoreInputError(
            f"{got_a} here but {got_b} in {b.source} row {b.first_row + i} ({against}); the two file sets "
            "must hold the same rows in the same order", source=a.source, row=a.first_row + i, column=spec.label)


def _values(x: Any) -> Any:
    return x.to_pylist() if hasattr(x, "to_pylist") else x


def zip_batches(a: Iterable[Batch], b: Iterable[Batch], spec: ScoreSpec, *, against: str = "--against",
                start: int = 0) -> Iterator[Pair]:
    """Cut the batches of two file sets at common row boundaries; check the labels equal row by row.

    ``start`` is the number of rows before the first one of ``a`` and ``b`` (for messages). Raises
    ScoreInputError at the first row one side has and the other has not, or whose labels differ.
    """
    it_a, it_b = iter(a), iter(b)
    cur_a: Batch | None = None
    cur_b: Batch | None = None
    off_a = off_b = 0
    seen = start
    while True:
        while cur_a is None or off_a == cur_a.num_rows:
            cur_a, off_a = next(it_a, None), 0
            if cur_a is None:
                break
        while cur_b is None or off_b == cur_b.num_rows:
            cur_b, off_b = next(it_b, None), 0
            if cur_b is None:
                break
        if cur_a is None and cur_b is None:
            return
        if cur_a is None or cur_b is None:
            if cur_a is None:
                assert cur_b is not None
                extra, off, what = cur_b, off_b, f"the input ends after {seen:,} rows; this row of {against} has"
            else:
                extra, off, what = cur_a, off_a, f"{against} ends after {seen:,} rows; this row has"
            raise ScoreInputError(f"{what} no partner (the two file sets must hold the same rows in the same "
                                  "order)", source=extra.source, row=extra.first_row + off)
        n = min(cur_a.num_rows - off_a, cur_b.num_rows - off_b)
        pa_ = Batch(_slice(cur_a.table, off_a, n), cur_a.source, cur_a.first_row + off_a)
        pb = Batch(_slice(cur_b.table, off_b, n), cur_b.source, cur_b.first_row + off_b)
        check_labels(pa_, pb, spec, against)
        yield Pair(pa_, pb)
        off_a += n
        off_b += n
        seen += n


def same_rows(batches: Iterable[Batch]) -> Iterator[Pair]:
    """``--vs``: both models' columns in the same batches."""
    for b in batches:
        yield Pair(b, b)


def pair_batches(a: Iterable[Batch], b: Iterable[Batch] | None, spec: ScoreSpec, *, start: int = 0
                 ) -> Iterator[Pair]:
    """Model A's and model B's rows side by side: ``b`` None (``--vs``: both in ``a``'s batches), or
    :func:`zip_batches` of the two file sets (``start``: the rows before the first of each)."""
    return same_rows(a) if b is None else zip_batches(a, b, spec, start=start)


def fold_pairs(pairs: Iterable[Pair], spec_a: ScoreSpec, spec_b: ScoreSpec, state: PairState | None = None, *,
               threads: int | None = None) -> PairState | None:
    """Fold every pair into ``state`` (a new one at the first pair); None when there is none."""
    for pair in pairs:
        state = fold_pair(pair, spec_a, spec_b, state, threads=threads)
    return state


def read_specs(spec_a: ScoreSpec, spec_b: ScoreSpec, *, against: bool) -> tuple[Any, Any]:
    """What to read of model A's files and, with ``against``, of model B's (else None: one file set)."""
    if not against:
        return read_spec(spec_a, *spec_b.pred), None
    return read_spec(spec_a), read_spec(spec_b, own=False)


def cut_rows(batches: Iterable[Batch], lo: int, hi: int) -> Iterator[Batch]:
    """The rows ``[lo, hi)`` (numbers inside their file) of a file's ``batches``, as batches."""
    for b in batches:
        start, stop = max(lo, b.first_row), min(hi, b.first_row + b.num_rows)
        if start < stop:
            yield Batch(_slice(b.table, start - b.first_row, stop - start), b.source, start)
        if b.first_row + b.num_rows >= hi:
            return


def fold_pair(pair: Pair, spec_a: ScoreSpec, spec_b: ScoreSpec, state: PairState | None, *,
              threads: int | None = None) -> PairState:
    """Fold one pair of batches into ``state`` (a new one when None): A's rows by ``spec_a``, B's by
    ``spec_b``; with ``--against``, B's rows take A's weight column."""
    a, b = pair.a, pair.b
    sa = state_from_table(a.table, spec_a, source=a.source, first_row=a.first_row,
                          state=None if state is None else state.a, threads=threads)
    tb = b.table
    if b is not a:  # A's weight and segment columns beside B's predictions
        for col in (*((spec_b.weight,) if spec_b.weight else ()), *spec_b.by):
            tb = _with_column(tb, col, _column(a.table, col))
    try:
        # B's rows under A's identity (file name, row number): the same bootstrap buckets as A's rows
        sb = state_from_table(tb, spec_b, source=a.source, first_row=a.first_row,
                              state=None if state is None else state.b, threads=threads)
    except ScoreInputError as exc:
        if b is a or exc.source != a.source:
            raise
        row = None if exc.row is None else b.first_row + exc.row - a.first_row
        raise ScoreInputError(exc.message, source=b.source, row=row, column=exc.column) from None
    if state is None:
        return PairState(sa, sb)
    return state


def file_batches(files: list[str], spec: Any, *, batch_rows: int, use_threads: bool) -> Iterator[Batch]:
    """Every batch of ``files`` in order (``spec`` as :func:`read_spec` makes it)."""
    for f in files:
        yield from iter_batches(f, spec, batch_rows=batch_rows, use_threads=use_threads)
