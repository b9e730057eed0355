"""The terminal table of a :class:`~xent.scoring._compare.CompareReport`."""

from __future__ import annotations

from typing import Any

from xent.scoring._paired import COMPARED
from xent.scoring._render import _f

__all__ = ["render"]

BETTER = {-1: "lower", 1: "higher", 0: "at 1"}
SHORT = {"better": "better", "worse": "worse", "not distinguishable": "n.d."}  # segment tables are wide


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Numbers right-aligned; names (the first column) and verdicts ("B vs A") left-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    left = {0} | {i for i, h in enumerate(header) if h == "B vs A"}

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _cols(pred: tuple[str, ...]) -> str:
    return ", ".join(f"`{c}`" for c in pred)


def _files(sources: tuple[str, ...]) -> str:
    return ", ".join(sources[:3]) + (f", ... ({len(sources)} files)" if len(sources) > 3 else "")


def _interval(ci: Any, digits: int = 6) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "-"
    return f"[{_f(ci[0], digits)}, {_f(ci[1], digits)}]"


def _segments(col: str, segs: list[Any], top: int, pct: str) -> list[str]:
    more = f"; the {top} largest shown (--top N)" if len(segs) > top else ""
    out = ["", f"by {col} ({len(segs):,} segments, largest weight first{more}; n.d. = not distinguishable):"]
    rows = []
    for seg in segs[:top]:
        a, d, ci, v = seg["a"], seg["delta"], seg["delta_ci"], seg["verdict"]
        value = "NULL" if seg["value"] is None else str(seg["value"])
        row = [value, f"{int(a.get('rows') or 0):,}"]
        for k in ("log_loss", "roc_auc"):
            row += [_f(d.get(k), 4), _interval(ci.get(k), 4), SHORT.get(v.get(k) or "", "-")]
        rows.append(row)
    out += _table(["value", "rows", "log loss B - A", f"{pct} CI", "B vs A", "AUC B - A", f"{pct} CI", "B vs A"],
                  rows)
    return out


def render(report: Any, top: int = 20) -> str:
    a, b = report.a, report.b
    r = a.result
    multi = r.kind == "multiclass"
    kind = f"multi-class ({len(r.classes)} classes)" if multi else "binary"
    out = [f"xent compare: {len(a.sources)} file(s), {r.rows:,} rows, {kind}"
           + f"{', logits' if a.spec.from_logits else ''}, {report.engine} engine, {report.seconds:.2f} s"]
    where_a = where_b = ""
    if report.against is not None:
        where_a, where_b = f" in {_files(a.sources)}", f" in {_files(b.sources)}"
    out.append(f"model A: {_cols(a.spec.pred)}{where_a}")
    out.append(f"model B: {_cols(b.spec.pred)}{where_b}")
    if not multi:
        pos = a.positive_class
        shown = repr(pos) if isinstance(pos, str) else str(pos)
        what = "logits" if a.spec.from_logits else "probabilities"
        out.append(f"positive class: {shown} (both are {what} of `{a.spec.label}` = {shown})")
    pct = f"{report.level * 100:g}%"
    iv = report.interval
    if iv:
        out.append(f"{pct} intervals of B - A: paired bootstrap over {iv['buckets']} hash buckets of rows, "
                   f"{iv['replicates']} replicates, seed {iv['seed']}")
    out.append("")
    ma, mb = r.to_dict(), b.result.to_dict()
    verdict = report.verdict
    rows = []
    for key, name, direction in COMPARED:
        if key not in report.delta:
            continue
        rows.append([name, BETTER[direction], _f(ma[key]), _f(mb[key]), _f(report.delta[key]),
                     _interval(report.delta_ci.get(key)), verdict.get(key) or "-"])
    out += _table(["metric", "better", "A", "B", "B - A", f"{pct} interval of B - A", "B vs A"], rows)
    out += ["", f"rows {r.rows:,}, total weight {r.weight:,.6g}"]
    for col, segs in report.segments.items():
        out += _segments(col, segs, top, pct)
    return "\n".join(out)
