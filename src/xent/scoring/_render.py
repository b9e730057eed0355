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
    line = lambda cells: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def render(report: Any) -> str:
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
    if multi:
        rows += [["Brier (sum over classes, [0, 2])", _f(r.brier)], ["accuracy (arg max)", _f(r.accuracy)],
                 [f"ECE (top-label, {len(r.reliability.rows)} bins)", _f(r.ece)], ["MCE (top-label)", _f(r.mce)]]
    else:
        rows += [["Brier mean (p - y)^2", _f(r.brier)], ["accuracy (p >= 0.5)", _f(r.accuracy)],
                 ["positive rate sum(w y)/sum(w)", _f(r.positive_rate)],
                 ["mean predicted sum(w p)/sum(w)", _f(r.mean_predicted)],
                 ["calibration ratio sum(p)/sum(y)", _f(r.calibration_ratio_pred_over_obs, 4)],
                 [f"ECE ({len(r.reliability.rows)} bins)", _f(r.ece)], ["MCE", _f(r.mce)]]
    rows += [["rows", f"{r.rows:,}"], ["total weight", f"{r.weight:,.6g}"]]
    out += _table(["metric", "value"], rows)
    if report.skipped:
        out += ["", f"skipped {sum(report.skipped.values()):,} invalid rows:"]
        out += [f"  {count:,}  {reason}" for reason, count in report.skipped.items()]
    if multi:
        out += ["", "per class:"]
        out += _table(["class", "rows", "prior", "log loss", "mean p", "sum(p)/sum(y)"],
                      [[str(c.label), f"{c.rows:,}", _f(c.prior, 4), _f(c.log_loss, 4), _f(c.mean_predicted, 4),
                        _f(c.calibration_ratio_pred_over_obs, 4)] for c in r.classes])
    rel = r.reliability
    out += ["", "reliability (" + ("top-label confidence vs accuracy" if multi else "p vs positive rate") + "):"]
    out += _table(["bin", "rows", "mean predicted", "observed", "gap"],
                  [[f"[{rel.edges[k]:.3f}, {rel.edges[k + 1]:.3f}{']' if k == len(rel.rows) - 1 else ')'}",
                    f"{rel.rows[k]:,}", _f(rel.mean_predicted[k], 4), _f(rel.observed[k], 4),
                    _f(rel.observed[k] - rel.mean_predicted[k], 4)]
                   for k in range(len(rel.rows)) if rel.rows[k]])
    return "\n".join(out)
