"""Model A against model B on the same rows: each metric for both, the difference B - A and a verdict.

``compare`` (local engine) and ``xent.dask.compare`` fold both models over the
same rows into a :class:`~xent.scoring._pairs.PairState` and build a
:class:`CompareReport` from it with :meth:`CompareReport.from_state`.

Directions: lower is better for log loss, NE, Brier and ECE; higher is better
for accuracy, ROC AUC and average precision; the calibration ratio is best at 1
and gets no verdict. A verdict says "better" or
"worse" (for B, against A) when the paired interval of B - A lies wholly on
one side of 0, and "not distinguishable" when it holds 0.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from xent.io import DEFAULT_BATCH_ROWS, expand_paths
from xent.scoring._compare_render import render
from xent.scoring._local import _prefetch, raise_nothing_to_score
from xent.scoring._paired import COMPARED, paired_intervals, segments, verdict
from xent.scoring._pairs import PairState, file_batches, fold_pairs, pair_batches, read_specs
from xent.scoring._plot import plot_compare
from xent.scoring._report import ScoreReport
from xent.scoring._spec import ScoreSpec

__all__ = ["COMPARED", "CompareReport", "compare", "compare_files", "compare_specs"]

VERDICTS = ("better", "worse", "not distinguishable")


def compare_specs(spec: ScoreSpec, vs: Any = None, *, against: Any = None, level: float = 0.95
                  ) -> tuple[ScoreSpec, ScoreSpec]:
    """Model A's spec and model B's: ``spec`` with intervals at ``level`` and, for B, its prediction
    columns replaced by ``vs``; ValueError naming the argument when they cannot be compared.

    ``vs`` defaults to ``spec.pred`` when ``against`` (another file set) is given; without
    ``against`` it must name other columns than ``spec.pred``. ``on_invalid`` must be "error".
    """
    check_on_invalid(spec)
    spec = spec.with_(ci=check_level(level))  # always paired intervals, at ``level``
    if vs is None or (isinstance(vs, (tuple, list)) and not vs):
        if against is None:
            raise ValueError("`vs` must name model B's prediction column(s), or `against` its files")
        vs = spec.pred
    spec_b = spec.with_(pred=vs)
    if against is None and set(spec_b.pred) == set(spec.pred):
        raise ValueError(f"`vs` names the same column(s) as model A ({', '.join(spec.pred)}): model B must be "
                         "other columns, or the same columns of other files (`against`)")
    if len(spec_b.pred) != len(spec.pred):
        raise ValueError(f"`vs` must name as many columns as model A's predictions ({len(spec.pred)}), "
                         f"got {len(spec_b.pred)}: {', '.join(spec_b.pred)}")
    return spec, spec_b


def compare_files(paths: Any, against: Any, spec_a: ScoreSpec, spec_b: ScoreSpec) -> tuple[list[str], list[str] | None]:
    """Model A's files and model B's (None: the same files, ``vs`` columns); ValueError when ``against``
    names A's own files and columns."""
    files = expand_paths(paths)
    files_b = None if against is None else expand_paths(against)
    if files_b is not None and files_b == files and spec_b.pred == spec_a.pred:
        raise ValueError("`against` names model A's own files and columns: give model B's files, or its "
                         "columns with `vs`")
    return files, files_b


def check_level(level: Any) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0.0 < level < 1.0:
        raise ValueError(f"`level` must be a number in (0, 1), e.g. 0.95, got {level!r}")
    return float(level)


@dataclass(frozen=True)
class CompareReport:
    """What ``compare`` returns, for every engine.

    Attributes
    ----------
    a, b : ScoreReport
        Each model's report, over the same rows.
    level : float
        Confidence level of the paired intervals.
    delta : dict
        B - A per metric of :data:`COMPARED` (only those both reports have).
    delta_ci : dict
        ``[lo, hi]`` of B - A per metric, the same bootstrap replicates for both models.
    interval : dict
        How the intervals were made: ``method``, ``seed``, ``replicates`` (empty without them).
    """

    a: ScoreReport
    b: ScoreReport
    level: float
    delta: dict[str, float | None]
    delta_ci: dict[str, list[float | None]] = field(default_factory=dict)
    interval: dict[str, Any] = field(default_factory=dict)
    against: tuple[str, ...] | None = None
    engine: str = "local"
    seconds: float = math.nan
    states: Any = field(default=None, repr=False, compare=False)  # the PairState, for the figure's curves
    segments: dict[str, list[Any]] = field(default_factory=dict)

    @classmethod
    def from_state(cls, state: PairState, spec_a: ScoreSpec, spec_b: ScoreSpec, *, sources: Any,
                   against: Any = None, level: float, engine: str, seconds: float) -> CompareReport:
        sources = tuple(str(s) for s in sources)
        against = None if against is None else tuple(str(s) for s in against)
        a = ScoreReport.from_state(state.a, spec_a, sources=sources, engine=engine, seconds=seconds)
        b = ScoreReport.from_state(state.b, spec_b, sources=against or sources, engine=engine, seconds=seconds)
        ma, mb = a.result.to_dict(), b.result.to_dict()
        delta = {k: (None if ma.get(k) is None or mb.get(k) is None else mb[k] - ma[k])
                 for k, _, _ in COMPARED if k in ma and k in mb}
        delta_ci, interval = paired_intervals(state, level, spec_a)
        return cls(a=a, b=b, level=level, delta=delta, delta_ci={k: v for k, v in delta_ci.items() if k in delta},
                   interval=interval, against=against, engine=engine, seconds=float(seconds), states=state,
                   segments=segments(state, level, spec_a))

    @property
    def verdict(self) -> dict[str, str | None]:
        """Per metric: "better" / "worse" (B against A) or "not distinguishable" at ``level``; None without an
        interval."""
        return {k: verdict(self.delta.get(k), self.delta_ci.get(k), d) for k, _, d in COMPARED if k in self.delta}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: ``a``, ``b`` (each model's metrics), ``delta``, ``delta_ci``, ``verdict`` and provenance."""
        return {
            "a": self.a.to_dict()["metrics"],
            "b": self.b.to_dict()["metrics"],
            "delta": dict(self.delta),
            "delta_ci": {k: list(v) for k, v in self.delta_ci.items()},
            "verdict": self.verdict,
            "level": self.level,
            **self.interval,
            "models": {"a": {"pred": list(self.a.spec.pred), "files": list(self.a.sources)},
                       "b": {"pred": list(self.b.spec.pred), "files": list(self.b.sources)}},
            **({"segments": {col: [dict(seg) for seg in segs] for col, segs in self.segments.items()}}
               if self.segments else {}),
            "positive_class": None if self.a.positive_class is None else str(self.a.positive_class),
            "warnings": [f"A: {w}" for w in self.a.warnings] + [f"B: {w}" for w in self.b.warnings],
            "engine": self.engine,
            "seconds": self.seconds,
        }

    def render(self, top: int = 20) -> str:
        """The terminal table (and per segment, the ``top`` largest segments of each column)."""
        return render(self, top=top)

    def plot(self, path: str) -> None:
        """Both models' reliability diagrams (and ROC curves, binary) in one figure, PNG."""
        plot_compare(self, path, self.states)


def compare(paths: Any, spec: ScoreSpec, vs: Any = None, *, against: Any = None, level: float = 0.95,
            threads: int | None = None, progress: bool = False, batch_rows: int | None = None) -> CompareReport:
    """Score model A and model B on the same rows of prediction files, with paired intervals of B - A.

    Parameters
    ----------
    paths : str, path or sequence of them
        Files, directories or globs holding the labels, model A's predictions (``spec.pred``) and,
        without ``against``, model B's (``vs``).
    spec : ScoreSpec
        Model A: label, prediction columns, logits or not, weight, classes.
    vs : str or sequence of str, optional
        Model B's prediction column(s), in the space of A's (probabilities or logits). Default with
        ``against``: A's column names.
    against : str, path or sequence of them, optional
        Model B's files: the same rows in the same order, holding the label column (checked equal
        row by row) and B's prediction columns. The weight is A's.
    level : float
        Confidence level of the paired intervals, in (0, 1).
    threads, progress, batch_rows
        As for :func:`xent.scoring.score`.

    Returns
    -------
    CompareReport

    Raises
    ------
    ValueError
        ``vs`` names A's own columns, or ``level`` is outside (0, 1).
    ScoreInputError
        Bad input (file, row and column), different row counts, a label that differs between
        the two file sets, or an invalid row of either model (``on_invalid`` must be "error":
        a paired comparison needs both models on the same rows).

    Examples
    --------
    >>> from xent.scoring import ScoreSpec, compare
    >>> r = compare("examples/data/ctr_sample.parquet", ScoreSpec(label="clicked", pred="p_click"),
    ...             vs="p_click_v2")  # doctest: +SKIP
    >>> r.delta["log_loss"], r.delta_ci["log_loss"], r.verdict["log_loss"]  # doctest: +SKIP
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"`threads` must be an integer >= 1, got {threads!r}")
    spec_a, spec_b = compare_specs(spec, vs, against=against, level=level)
    files, files_b = compare_files(paths, against, spec_a, spec_b)
    start = time.perf_counter()
    rows = batch_rows or DEFAULT_BATCH_ROWS
    with threads_for(threads):
        use_threads = threads != 1
        read_a, read_b = read_specs(spec_a, spec_b, against=files_b is not None)
        a = file_batches(files, read_a, batch_rows=rows, use_threads=use_threads)
        b = None if files_b is None else file_batches(files_b, read_b, batch_rows=rows, use_threads=use_threads)
        pairs: Iterator[Any] = pair_batches(a, b, spec_a)
        if use_threads:
            pairs = _prefetch(pairs, depth=2)
        state = fold_pairs(pairs, spec_a, spec_b, threads=threads)
    if state is None or state.rows == 0:
        raise_nothing_to_score(None if state is None else state.a, files)
    assert state is not None  # raise_nothing_to_score raised otherwise
    return CompareReport.from_state(state, spec_a, spec_b, sources=files, against=files_b, level=level,
                                    engine="local", seconds=time.perf_counter() - start)


@contextlib.contextmanager
def threads_for(threads: int | None) -> Iterator[None]:
    """pyarrow's decode pool (process-wide) at ``threads`` for the block, restored afterwards."""
    if threads is None:
        yield
        return
    import pyarrow as pa  # optional dependency (the cli extra): only files need it

    saved = pa.cpu_count()
    pa.set_cpu_count(threads)
    try:
        yield
    finally:
        pa.set_cpu_count(saved)


def check_on_invalid(spec: ScoreSpec) -> None:
    if spec.on_invalid != "error":
        raise ValueError("a comparison needs both models on the same rows: `on_invalid` must be 'error', "
                         f"got {spec.on_invalid!r}")
