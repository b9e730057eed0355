"""Streaming scoring of prediction files: the local engine and the contract other engines follow.

Interface contract (stable; the Dask engine in ``xent.dask`` builds on it)
-------------------------------------------------------------------------
``ScoreSpec`` (frozen dataclass, ``xent.scoring``; a validated ``xent.io.ReadSpec``)
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
    ``on_invalid="skip"``). ``xent.metrics.new_state(num_classes=None, *,
    classes, n_bins, from_logits, eps, tolerance)`` makes an empty state.

Readers (``xent.io``)
    ``expand_paths(paths) -> list[str]`` (files, directories, globs; sorted;
    raises ``xent.io.InputError`` when nothing matches);
    ``iter_batches(path, spec, *, batch_rows=...) -> Iterator[Batch]`` with
    ``Batch(table: pyarrow.Table, source: str, first_row: int)``;
    ``state_from_table(table, spec, *, source, first_row=0, state=None) -> State``
    validates a pyarrow Table or pandas DataFrame (a Dask partition) and folds
    it into ``state`` (a new one when None); errors are ``xent.io.InputError``
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
    same rows; ``CompareReport.from_state(pair_state, spec_a, spec_b, ...)``. The
    engines share its steps: ``compare_specs`` and ``compare_files`` (checks),
    ``read_specs`` (what each file set is read for), ``pair_batches`` (A's and B's
    rows side by side, labels checked), ``cut_rows`` (a file's rows [lo, hi)),
    ``fold_pairs`` (-> ``PairState``, two metric states over the same rows).

Errors
    ``ScoreInputError`` is ``xent.io.InputError`` (a ``ValueError``) with
    ``source``, ``row``, ``column`` and the bare ``message``; picklable. Its
    message names options as ``ScoreSpec`` fields (```tolerance```); the CLI
    words them as its flags, prints one line and exits 2. Engines raise
    ``raise_nothing_to_score(state, sources)`` when no row is left, and draw
    ``Progress`` bars.
"""

from __future__ import annotations

from xent.scoring._compare import CompareReport, compare, compare_files, compare_specs
from xent.scoring._local import raise_nothing_to_score, score
from xent.scoring._pairs import PairState, cut_rows, file_batches, fold_pairs, pair_batches, read_specs
from xent.scoring._progress import Progress
from xent.scoring._report import ScoreReport
from xent.scoring._spec import OnInvalid, ScoreInputError, ScoreSpec

__all__ = ["CompareReport", "OnInvalid", "PairState", "Progress", "ScoreInputError", "ScoreReport", "ScoreSpec",
           "compare", "compare_files", "compare_specs", "cut_rows", "file_batches", "fold_pairs",
           "pair_batches", "raise_nothing_to_score", "read_specs", "score"]
