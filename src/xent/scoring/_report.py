"""The result of scoring files: numbers, provenance, and how to show them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xent.metrics import BinaryResult, MulticlassResult, intervals
from xent.metrics._auc import n_score_bins
from xent.metrics._groups import BUCKET_AUC, CI_METRICS, METRICS
from xent.metrics._results import _json
from xent.scoring._plot import plot_reliability
from xent.scoring._render import render
from xent.scoring._spec import ScoreSpec

__all__ = ["ScoreReport"]


@dataclass(frozen=True)
class ScoreReport:
    """What ``score`` returns, for every engine.

    Attributes
    ----------
    result : BinaryResult or MulticlassResult
        The metrics (see :mod:`xent.metrics._results` for definitions).
    spec : ScoreSpec
        What was scored.
    sources : tuple of str
        The files read, in order.
    engine : str
        "local" or "dask".
    seconds : float
        Wall-clock time of the scoring.
    skipped : dict
        Rows dropped under ``on_invalid="skip"``, by reason.
    ci : dict or None
        With ``spec.ci``: ``{"level", "method", "buckets", "replicates", "seed", metric: [lo, hi], ...}``
        for the whole stream (``metrics.ci`` in the JSON).
    segments : dict
        With ``spec.by``: ``{column: [{"value": v, "metrics": {...}}, ...]}``, every segment,
        largest weight first (ties by value); each ``metrics`` has the keys of
        ``xent.metrics._groups.METRICS`` and, with ``spec.ci``, ``ci``.
    """

    result: BinaryResult | MulticlassResult
    spec: ScoreSpec
    sources: tuple[str, ...]
    engine: str = "local"
    seconds: float = math.nan
    skipped: dict[str, int] = field(default_factory=dict)
    ci: dict[str, Any] | None = None
    segments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    state: Any = field(default=None, repr=False, compare=False)  # the merged state, for the figure's curves

    @classmethod
    def from_state(cls, state: Any, spec: ScoreSpec, *, sources: Any, engine: str, seconds: float) -> ScoreReport:
        """Build the report from a final merged metric state."""
        result = state.compute()
        ci, segments = group_results(state, spec, result)
        return cls(result=result, spec=spec, sources=tuple(str(s) for s in sources), engine=engine,
                   seconds=float(seconds), skipped=dict(sorted(state.skipped.items())), ci=ci, segments=segments,
                   state=state)

    @property
    def positive_class(self) -> Any:
        """Binary input: the class whose probability (or logit) the prediction column holds,
        ``classes[1]`` (1 by default). None for multi-class input."""
        if self.result.kind != "binary":
            return None
        return self.spec.classes[1] if self.spec.classes is not None else 1

    @property
    def warnings(self) -> tuple[str, ...]:
        """Signs that the classes are out of order, one line each (empty when none).

        Binary: a negative RIG (worse than always predicting the observed positive
        rate), or a mean prediction more than a factor of ``MISMATCH_FACTOR`` away
        from the positive class's observed rate (or the same for the negative
        class): what a prediction column of the other class looks like.
        Multi-class: a negative RIG, or prediction columns named after classes other
        than the ones they are matched to by position.
        """
        r = self.result
        return tuple(_binary_warnings(self, r) if isinstance(r, BinaryResult) else _multiclass_warnings(self, r))

    @property
    def rows_per_second(self) -> float:
        return self.result.rows / self.seconds if self.seconds > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (NaN and infinite values become None: JSON has neither)."""
        metrics = self.result.to_dict()
        if self.ci is not None:
            metrics["ci"] = self.ci
        out = {
            "metrics": metrics,
            "positive_class": None if self.positive_class is None else str(self.positive_class),
            "warnings": list(self.warnings),
            "skipped_rows": dict(self.skipped),
            "skipped_total": sum(self.skipped.values()),
            "files": list(self.sources),
            "engine": self.engine,
            "seconds": self.seconds,
            "spec": {"label": self.spec.label, "pred": list(self.spec.pred), "from_logits": self.spec.from_logits,
                     "weight": self.spec.weight,
                     "classes": None if self.spec.classes is None else [str(c) for c in self.spec.classes],
                     "n_bins": self.spec.n_bins, "eps": self.spec.eps, "tolerance": self.spec.tolerance,
                     "on_invalid": self.spec.on_invalid, "by": list(self.spec.by), "ci": self.spec.ci},
        }
        if self.spec.by:
            out["segments"] = self.segments
        return out

    def render(self, *, top: int = 20) -> str:
        """The terminal table; ``top`` segments per ``by`` column (largest weight first)."""
        return render(self, top=top)

    def plot(self, path: str) -> None:
        """Write the figure to ``path`` (PNG; matplotlib, imported here): the reliability diagram (with its
        interval band when the spec asks for intervals) and, for binary input, the ROC curve."""
        plot_reliability(self, path, self.state)


# A mean prediction this many times above or below the observed rate is a warning.
MISMATCH_FACTOR = 2.0


def _far(a: float, b: float) -> bool:
    """a and b (rates in (0, 1)) differ by more than MISMATCH_FACTOR, either way."""
    return a > 0 and b > 0 and max(a / b, b / a) > MISMATCH_FACTOR


def _show(c: Any) -> str:
    return repr(c) if isinstance(c, str) else str(c)


def _binary_warnings(report: ScoreReport, r: BinaryResult) -> list[str]:
    m, obs = r.mean_predicted, r.positive_rate
    if not (0.0 < obs < 1.0) or math.isnan(m):  # one class only: neither check means anything
        return []
    reasons = []
    if r.rig < 0:
        reasons.append(f"RIG is negative ({r.rig:.4f}): the predictions do worse than always predicting the "
                       f"observed rate {obs:.4f}")
    if _far(m, obs) or _far(1.0 - m, 1.0 - obs):
        reasons.append(f"the mean prediction {m:.4f} is far from the observed rate {obs:.4f} of the positive "
                       f"class {_show(report.positive_class)}")
    if not reasons:
        return []
    neg, pos = report.spec.classes if report.spec.classes is not None else (0, 1)
    which = "1 by default" if report.spec.classes is None else "the second of --classes"
    col = report.spec.pred[0]
    what = "logit" if report.spec.from_logits else "probability"
    return [f"{' and '.join(reasons)}. Is `{col}` the {what} of {_show(pos)}? The positive class is {which}; "
            f"if `{col}` is the {what} of {_show(neg)}, use --classes {pos},{neg}"]


def _multiclass_warnings(report: ScoreReport, r: MulticlassResult) -> list[str]:
    labels = [c.label for c in r.classes]
    cols = report.spec.pred
    out = []
    if len(cols) == len(labels) > 1:
        # a column whose name holds exactly one class name, not the class it is matched to by position
        named = []
        for col, label in zip(cols, labels):
            hits = [c for c in labels if str(c).lower() in col.lower()]
            if len(hits) == 1 and hits[0] != label:
                named.append(f"`{col}` is read as class {_show(label)}")
        if named:
            out.append(f"the prediction columns look named after other classes: {', '.join(named)} (columns are "
                       "matched to --classes by position)")
    if r.rig < 0 and r.entropy_prior > 0:
        mapping = (": " + ", ".join(f"`{c}` -> {_show(k)}" for c, k in zip(cols, labels))
                   if len(cols) == len(labels) > 1 else "")
        out.append(f"RIG is negative ({r.rig:.4f}): the predictions do worse than always predicting the class "
                   f"priors. Check that --classes lists the classes in the order of the predictions{mapping}")
    return out


def ci_method(spec: ScoreSpec) -> str:
    """One line: how the intervals are computed."""

    return (f"bootstrap percentile over {spec.ci_buckets} hash buckets of rows (bucket = hash of the file name and "
            f"row number), {spec.ci_replicates} replicates ({spec.ci_segment_replicates} per segment), seed "
            f"{spec.ci_seed}; ROC AUC from {n_score_bins(*BUCKET_AUC)}-bin bucket histograms, shifted to the "
            "reported value")


def _ci_dict(spec: ScoreSpec, iv: dict[str, Any], i: int) -> dict[str, Any]:
    d: dict[str, Any] = {"level": spec.ci}
    for k in CI_METRICS:
        lo, hi = (float(v) for v in iv[k][i])
        d[k] = [_json(lo), _json(hi)]
    return d


def _sort_key(item: tuple[Any, float]) -> tuple[float, int, str]:
    value, weight = item
    return (-weight if not math.isnan(weight) else 0.0, value is None, str(value))


def group_results(state: Any, spec: ScoreSpec, result: Any) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """``(ci, segments)`` of a state with groups (see :class:`ScoreReport`)."""
    groups = getattr(state, "groups", None) or {}
    if not groups:
        return None, {}
    ci = None
    if spec.ci is not None:
        g = groups[None] if None in groups else next(iter(groups.values())).total()
        iv = intervals(g, level=spec.ci, replicates=spec.ci_replicates, seed=spec.ci_seed, auc=np.array([result.roc_auc]))
        ci = {**_ci_dict(spec, iv, 0), "method": ci_method(spec), "buckets": spec.ci_buckets,
              "replicates": spec.ci_replicates, "segment_replicates": spec.ci_segment_replicates,
              "seed": spec.ci_seed}
    segments: dict[str, list[dict[str, Any]]] = {}
    for col, g in groups.items():
        if col is None:
            continue
        m = g.metrics()
        seg_iv = (intervals(g, level=spec.ci, replicates=spec.ci_segment_replicates, seed=spec.ci_seed)
                  if spec.ci else None)
        order = sorted(range(len(g.keys)), key=lambda i: _sort_key((g.keys[i], float(m["weight"][i]))))
        rows = []
        for i in order:
            d: dict[str, Any] = {k: _json(float(m[k][i])) for k in METRICS}
            d["rows"] = int(m["rows"][i])
            if seg_iv is not None:
                d["ci"] = _ci_dict(spec, seg_iv, i)
            rows.append({"value": g.keys[i], "metrics": d})
        segments[col] = rows
    return ci, segments
