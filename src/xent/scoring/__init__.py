"""Streaming scoring of prediction files: the local engine and the contract other engines follow.

Interface contract (stable; the Dask engine in ``xent.dask`` builds on it)
-------------------------------------------------------------------------
``ScoreSpec`` (frozen dataclass, ``xent.scoring``)
    What to read and how: ``label``, ``pred`` (tuple of column names: one
    probability/logit column, one list column, or one column per class),
    ``from_logits``, ``weight``, ``classes``, ``tolerance`` (multi-class
    sum-to-1), ``on_invalid`` ("error" | "skip"), ``n_bins``, ``eps``.

Metric states (``xent.metrics``): ``BinaryState``, ``MulticlassState``
    ``update(y_true, y_pred, *, weights=None) -> self`` (NumPy / torch / JAX
    arrays; labels are class codes 0..K-1), ``merge(other) -> self`` (in place,
    returns self; exact and order-independent: every sum is a float64 value
    plus a float64 compensation term, merged with an error-free TwoSum),
    ``copy()``, ``compute() -> BinaryResult | MulticlassResult``. States are
    small (O(n_bins + n_classes) floats), picklable, and carry
    ``skipped: dict[str, int]`` (rows dropped by reason under
    ``on_invalid="skip"``). ``xent.metrics.new_state(spec, num_classes=None)``
    makes an empty state for a spec.

Readers (``xent.io``)
    ``expand_paths(paths) -> list[str]`` (files, directories, globs; sorted;
    raises ScoreInputError when nothing matches);
    ``iter_batches(path, spec, *, batch_rows=...) -> Iterator[Batch]`` with
    ``Batch(table: pyarrow.Table, source: str, first_row: int)``;
    ``state_from_table(table, spec, *, source, first_row=0, state=None) -> State``
    validates a pyarrow Table or pandas DataFrame (a Dask partition) and folds
    it into ``state`` (a new one when None); errors are ``ScoreInputError``
    naming source, row (``first_row`` + offset) and column;
    ``count_rows(path) -> int | None`` (Parquet metadata; None when unknown).

Engines
    ``xent.scoring.score(paths, spec, *, threads=None, progress=False) -> ScoreReport``
    (local). ``xent.dask.score(paths, spec, *, scheduler=None, workers=None,
    progress=False) -> ScoreReport`` (Dask; must give the same numbers to
    1e-12 relative). ``ScoreReport.from_state(state, spec, *, sources, engine,
    seconds)`` builds the report; ``.to_dict()`` is JSON-able, ``.render()``
    is the terminal table, ``.plot(path)`` writes the reliability diagram.
    ``xent.scoring.compare(paths, spec, vs=None, *, against=None, level=0.95, ...)
    -> CompareReport`` and ``xent.dask.compare`` (same arguments, Dask's): model A
    (``spec``) against model B (columns ``vs``, or the files ``against``) on the
    same rows; ``CompareReport.from_state(pair_state, spec_a, spec_b, ...)``.

Errors
    ``ScoreInputError(ValueError)`` with ``source``, ``row``, ``column``;
    picklable; the CLI prints it as one line and exits 2.
"""

from __future__ import annotations

from typing import Any

from xent.scoring._report import ScoreReport
from xent.scoring._spec import OnInvalid, ScoreInputError, ScoreSpec

__all__ = ["OnInvalid", "ScoreInputError", "ScoreReport", "ScoreSpec", "compare", "score"]


def score(paths: Any, spec: ScoreSpec, *, threads: int | None = None, progress: bool = False,
          batch_rows: int | None = None) -> ScoreReport:
    """Score prediction files on this machine; see :func:`xent.scoring._local.score`."""
    from xent.scoring._local import score as _score

    kw = {} if batch_rows is None else {"batch_rows": batch_rows}
    return _score(paths, spec, threads=threads, progress=progress, **kw)


def compare(paths: Any, spec: ScoreSpec, vs: Any = None, *, against: Any = None, level: float = 0.95,
            threads: int | None = None, progress: bool = False, batch_rows: int | None = None) -> Any:
    """Model A against model B on the same rows (a ``CompareReport``); see :func:`xent.scoring._compare.compare`."""
    from xent.scoring._compare import compare as _compare

    return _compare(paths, spec, vs, against=against, level=level, threads=threads, progress=progress,
                    batch_rows=batch_rows)
