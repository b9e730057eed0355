"""Paired intervals of B - A, overall and per segment, from the two models' bucket sums.

Both models' states are folded over the same rows under the same row identity
(file name and row number: :func:`xent.scoring._pairs.fold_pair`), so their
per-bucket sums (:class:`xent.metrics.GroupState`) share buckets, and one draw of
bootstrap counts serves both: :func:`xent.metrics.paired_intervals` takes the
percentiles of ``metric(B, replicate) - metric(A, replicate)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xent.metrics import paired_intervals as _paired
from xent.scoring._report import _sort_key, ci_method

__all__ = ["COMPARED", "Segment", "paired_intervals", "segments", "verdict"]

# (JSON key, shown name, +1 when higher is better, -1 when lower is better), in the order shown
COMPARED: tuple[tuple[str, str, int], ...] = (
    ("log_loss", "log loss (nats)", -1),
    ("normalized_entropy", "NE", -1),
    ("brier", "Brier", -1),
    ("accuracy", "accuracy", +1),
    ("ece", "ECE", -1),
    ("roc_auc", "ROC AUC", +1),
    ("average_precision", "average precision", +1),
    ("calibration_ratio_pred_over_obs", "sum(p)/sum(y)", 0),  # best at 1: no verdict
)


def verdict(delta: float | None, ci: list[float | None] | None, direction: int) -> str | None:
    """"better" / "worse" (for B) when the interval ``ci`` of B - A excludes 0, else "not distinguishable";
    None without an interval or a direction (``direction``: +1 higher is better, -1 lower, 0 neither)."""
    lo, hi = (None, None) if ci is None else ci
    if delta is None or lo is None or hi is None or direction == 0:
        return None
    if lo > 0 or hi < 0:
        return "better" if (lo > 0) == (direction > 0) else "worse"
    return "not distinguishable"


def _pair(x: Any) -> list[float | None]:
    return [None if not math.isfinite(float(v)) else float(v) for v in x]


def _settings(spec: Any) -> dict[str, Any]:
    return {"replicates": spec.ci_replicates, "seed": spec.ci_seed}


def method(spec: Any) -> dict[str, Any]:
    """``method``, ``buckets``, ``replicates`` and ``seed`` of the intervals (JSON keys)."""
    return {"method": f"paired {ci_method(spec)}; B - A in each replicate, the same buckets for both models",
            "buckets": spec.ci_buckets, "replicates": spec.ci_replicates, "seed": spec.ci_seed}


def paired_intervals(state: Any, level: float, spec: Any) -> tuple[dict[str, list[float | None]], dict[str, Any]]:
    """``({metric: [lo, hi]}, method)`` of B - A over every row; empty without bucket sums."""
    ga, gb = getattr(state.a, "groups", None), getattr(state.b, "groups", None)
    if not ga or not gb:
        return {}, {}
    col = next(iter(ga))
    a, b = ga[col], gb[col]
    if a.buckets <= 1:
        return {}, {}
    if col is not None:  # grouped by a column: the whole stream is the sum of its segments
        a, b = a.total(), b.total()
    _, out = _paired(a, b, level=level, **_settings(spec))
    return {k: _pair(v[0]) for k, v in out.items()}, method(spec)


class Segment(dict):
    """One segment's comparison: ``value``, ``a``, ``b``, ``delta``, ``delta_ci``, ``verdict`` (a JSON-able dict)."""


def segments(state: Any, level: float, spec: Any, compared: Any = COMPARED) -> dict[str, list[Segment]]:
    """Per ``--by`` column: every segment's metrics for A and B, B - A, its paired interval and the verdict,
    largest weight first."""
    ga, gb = getattr(state.a, "groups", None) or {}, getattr(state.b, "groups", None) or {}
    out: dict[str, list[Segment]] = {}
    if not any(col is not None for col in ga):
        return out
    for col in ga:
        if col is None:
            continue
        a, b = ga[col], gb[col]
        keys = list(a.keys) + [k for k in b.keys if k not in a._index]
        a, b = a.aligned(keys), b.aligned(keys)
        ma, mb = a.metrics(), b.metrics()
        cis = _paired(a, b, level=level, **_settings(spec))[1] if a.buckets > 1 else {}
        rows = []
        for i, key in enumerate(keys):
            da = {k: _num(v[i], k) for k, v in ma.items()}
            db = {k: _num(v[i], k) for k, v in mb.items()}
            delta: dict[str, float | None] = {}
            ci: dict[str, list[float | None]] = {}
            verdicts: dict[str, str | None] = {}
            for k, _, direction in compared:
                if k not in da or k not in db:
                    continue
                va, vb = da[k], db[k]
                delta[k] = None if va is None or vb is None else vb - va
                if k in cis:
                    ci[k] = _pair(cis[k][i])
                verdicts[k] = verdict(delta[k], ci.get(k), direction)
            rows.append(Segment(value=key, a=da, b=db, delta=delta, delta_ci=ci, verdict=verdicts))
        rows.sort(key=lambda s: _sort_key((s["value"], s["a"].get("weight") or 0.0)))  # as `xent score` orders
        out[col] = rows
    return out


def _num(x: Any, key: str) -> float | int | None:
    v = float(np.asarray(x))
    if key == "rows":
        return int(v)
    return v if math.isfinite(v) else None
