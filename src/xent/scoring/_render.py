"""The terminal table of a :class:`ScoreReport`."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["render"]


def _f(x: float, digits: int = 6) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    return f"{x:.{digits}f}" if abs(x) < 1e6 else f"{x:.6g}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.rjust(w) if i else c.ljust(w)
                                   for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


_CI_ROWS = {"log loss (nats)": "log_loss", "normalized entropy (NE)": "normalized_entropy", "brier": "brier",
            "accuracy": "accuracy", "calibration ratio": "calibration_ratio_pred_over_obs", "ECE": "ece",
            "ROC AUC": "roc_auc"}


def _ci_key(label: str) -> str | None:
    """The CI key of a row of the metric table (the weighted AUC has no interval: the CI is the macro's)."""
    if "weighted" in label:
        return None
    return next((v for k, v in _CI_ROWS.items() if label.lower().startswith(k.lower())), None)


def _ci_cell(ci: dict[str, Any] | None, key: str | None, digits: int = 6) -> str:
    if ci is None or key is None or key not in ci:
        return ""
    lo, hi = ci[key]
    return f"[{_f(lo, digits)}, {_f(hi, digits)}]"


def _segment_tables(report: Any, top: int) -> list[str]:
    r = report.result
    out: list[str] = []
    ci = report.ci is not None
    for col, segs in report.segments.items():
        shown = segs[:top]
        more = f", the {top} of largest weight shown (--top; the JSON has all)" if len(segs) > top else ""
        out += ["", f"by {col} ({len(segs):,} segment{'s' if len(segs) != 1 else ''}{more}):"]
        header = ["value", "rows", "weight", "log loss", "NE", "sum(p)/sum(y)", "Brier", "AUC", "ECE"]
        if ci:
            header += [f"log loss {report.spec.ci:.0%} CI", f"AUC {report.spec.ci:.0%} CI"]

        def cells(value: str, m: dict[str, Any]) -> list[str]:
            row = [value, f"{m['rows']:,}", f"{m['weight']:,.6g}", _f(m["log_loss"], 4), _f(m["normalized_entropy"], 4),
                   _f(m["calibration_ratio_pred_over_obs"], 4), _f(m["brier"], 4), _f(m["roc_auc"], 4),
                   _f(m["ece"], 4)]
            if ci:
                c = m.get("ci")
                row += [_ci_cell(c, "log_loss", 4), _ci_cell(c, "roc_auc", 4)]
            return row

        overall = {"rows": r.rows, "weight": r.weight, "log_loss": r.log_loss, "normalized_entropy":
                   r.normalized_entropy, "calibration_ratio_pred_over_obs": _calibration(r), "brier": r.brier,
                   "roc_auc": r.roc_auc, "ece": r.ece, "ci": report.ci}
        rows = [cells("(all)", overall)]
        rows += [cells("NULL" if s["value"] is None else str(s["value"]), s["metrics"]) for s in shown]
        out += _table(header, rows)
    return out


def _calibration(r: Any) -> float:
    if r.kind == "binary":
        return r.calibration_ratio_pred_over_obs
    rel = r.reliability
    w = sum(rel.weight)
    conf = sum(x * m for x, m in zip(rel.weight, rel.mean_predicted) if x > 0)
    return conf / (r.accuracy * w) if w > 0 and r.accuracy > 0 else math.nan


def render(report: Any, *, top: int = 20) -> str:
    r = report.result
    multi = r.kind == "multiclass"
    out = [f"xent score: {len(report.sources)} file(s), {r.rows:,} rows, "
           f"{'multi-class (' + str(len(r.classes)) + ' classes)' if multi else 'binary'}"
           f"{', logits' if report.spec.from_logits else ''}, {report.engine} engine, {report.seconds:.2f} s"]
    if not multi:
        pos = report.positive_class
        shown = repr(pos) if isinstance(pos, str) else str(pos)
        what = "logit" if report.spec.from_logits else "probability"
        out.append(f"positive class: {shown} (`{report.spec.pred[0]}` is the {what} of "
                   f"`{report.spec.label}` = {shown})")
    out.append("")
    rows = [
        ["log loss (nats)", _f(r.log_loss)],
        ["log loss (bits)", _f(r.log_loss_bits)],
        ["perplexity", _f(r.perplexity)],
        ["normalized entropy (NE)", _f(r.normalized_entropy)],
        ["relative info gain (RIG = 1 - NE)", _f(r.rig)],
        ["label entropy H(prior) (nats)", _f(r.entropy_prior)],
    ]
    bound = (lambda b: f" (+-{b:.1e})" if isinstance(b, float) and math.isfinite(b) else "")
    if multi:
        rows += [["Brier (sum over classes, [0, 2])", _f(r.brier)], ["accuracy (arg max)", _f(r.accuracy)],
                 ["calibration ratio (top-label conf/acc)", _f(_calibration(r), 4)],
                 [f"ECE (top-label, {len(r.reliability.rows)} bins)", _f(r.ece)], ["MCE (top-label)", _f(r.mce)],
                 ["ROC AUC (one-vs-rest, macro)", _f(r.roc_auc) + bound(r.roc_auc_error_bound)],
                 ["ROC AUC (one-vs-rest, weighted)", _f(r.roc_auc_weighted) + bound(r.roc_auc_weighted_error_bound)]]
    else:
        rows += [["Brier mean (p - y)^2", _f(r.brier)], ["accuracy (p >= 0.5)", _f(r.accuracy)],
                 ["positive rate sum(w y)/sum(w)", _f(r.positive_rate)],
                 ["mean predicted sum(w p)/sum(w)", _f(r.mean_predicted)],
                 ["calibration ratio sum(p)/sum(y)", _f(r.calibration_ratio_pred_over_obs, 4)],
                 [f"ECE ({len(r.reliability.rows)} bins)", _f(r.ece)], ["MCE", _f(r.mce)],
                 ["ROC AUC", _f(r.roc_auc) + bound(r.roc_auc_error_bound)],
                 ["average precision (PR AUC)", _f(r.average_precision) + bound(r.average_precision_error_bound)]]
    rows += [["rows", f"{r.rows:,}"], ["total weight", f"{r.weight:,.6g}"]]
    if report.ci is not None:
        for row in rows:
            row.append(_ci_cell(report.ci, _ci_key(row[0])))
        out += _table(["metric", "value", f"{report.ci['level']:.0%} CI"], rows)
        out += [f"CI: {report.ci['method']}"]
    else:
        out += _table(["metric", "value"], rows)
    if report.skipped:
        out += ["", f"skipped {sum(report.skipped.values()):,} invalid rows:"]
        out += [f"  {count:,}  {reason}" for reason, count in report.skipped.items()]
    if multi:
        out += ["", "per class:"]
        out += _table(["class", "rows", "prior", "log loss", "mean p", "sum(p)/sum(y)", "AUC (vs rest)"],
                      [[str(c.label), f"{c.rows:,}", _f(c.prior, 4), _f(c.log_loss, 4), _f(c.mean_predicted, 4),
                        _f(c.calibration_ratio_pred_over_obs, 4), _f(c.roc_auc, 4)] for c in r.classes])
    out += _segment_tables(report, top)
    rel = r.reliability
    out += ["", "reliability (" + ("top-label confidence vs accuracy" if multi else "p vs positive rate") + "):"]
    out += _table(["bin", "rows", "mean predicted", "observed", "gap"],
                  [[f"[{rel.edges[k]:.3f}, {rel.edges[k + 1]:.3f}{']' if k == len(rel.rows) - 1 else ')'}",
                    f"{rel.rows[k]:,}", _f(rel.mean_predicted[k], 4), _f(rel.observed[k], 4),
                    _f(rel.observed[k] - rel.mean_predicted[k], 4)]
                   for k in range(len(rel.rows)) if rel.rows[k]])
    return "\n".join(out)
