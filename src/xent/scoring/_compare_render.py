"""The terminal table of a :class:`~xent.scoring._compare.CompareReport`."""

from __future__ import annotations

from typing import Any

from xent.scoring._render import _f, _table

__all__ = ["render"]


def _cols(pred: tuple[str, ...]) -> str:
    return ", ".join(f"`{c}`" for c in pred)


def _files(sources: tuple[str, ...]) -> str:
    return ", ".join(sources[:3]) + (f", ... ({len(sources)} files)" if len(sources) > 3 else "")


def _interval(ci: Any) -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "-"
    return f"[{_f(ci[0])}, {_f(ci[1])}]"


def _segments(report: Any, col: str, segs: list[Any], top: int, pct: str) -> list[str]:
    shown = segs[:top]
    more = f"; the {top} largest shown, --top N for more" if len(segs) > top else ""
    out = ["", f"by `{col}`: {len(segs):,} segments, largest weight first{more}"]
    rows = []
    for seg in shown:
        a, b, d, ci, v = seg["a"], seg["b"], seg["delta"], seg["delta_ci"], seg["verdict"]
        value = "NULL" if seg["value"] is None else str(seg["value"])
        rows.append([value, f"{int(a.get('rows') or 0):,}", _f(a.get("log_loss")), _f(b.get("log_loss")),
                     _f(d.get("log_loss")), _interval(ci.get("log_loss")), v.get("log_loss") or "-",
                     _f(d.get("roc_auc")), _interval(ci.get("roc_auc")), v.get("roc_auc") or "-"])
    out += _table([col, "rows", "log loss A", "log loss B", "B - A", f"{pct} interval", "B vs A",
                   "AUC B - A", f"{pct} interval", "B vs A"], rows)
    return out


def render(report: Any, top: int = 20) -> str:
    from xent.scoring._compare import COMPARED

    a, b = report.a, report.b
    r = a.result
    multi = r.kind == "multiclass"
    kind = f"multi-class ({len(r.classes)} classes)" if multi else "binary"
    out = [f"xent compare: {len(a.sources)} file(s), {r.rows:,} rows, {kind}"
           f"{', logits' if a.spec.from_logits else ''}, {report.engine} engine, {report.seconds:.2f} s"]
    where_a = where_b = ""
    if report.against is not None:
        where_a, where_b = f" in {_files(a.sources)}", f" in {_files(b.sources)}"
    out.append(f"model A: {_cols(a.spec.pred)}{where_a}")
    out.append(f"model B: {_cols(b.spec.pred)}{where_b}")
    if not multi:
        pos = a.positive_class
        shown = repr(pos) if isinstance(pos, str) else str(pos)
        what = "logits" if a.spec.from_logits else "probabilities"
        out.append(f"positive class: {shown} (both columns are {what} of `{a.spec.label}` = {shown})")
    pct = f"{report.level * 100:g}%"
    iv = report.interval
    if iv:
        out.append(f"{pct} intervals of B - A: paired bootstrap over {iv['buckets']} hash buckets of rows, "
                   f"{iv['replicates']} replicates, seed {iv['seed']} (the same replicates for A and B)")
    out.append("")
    ma, mb = r.to_dict(), b.result.to_dict()
    verdict = report.verdict
    rows = []
    for key, name, direction in COMPARED:
        if key not in report.delta:
            continue
        better = {-1: " (lower is better)", 1: " (higher is better)", 0: " (best at 1)"}[direction]
        rows.append([f"{name}{better}", _f(ma[key]), _f(mb[key]), _f(report.delta[key]),
                     _interval(report.delta_ci.get(key)), verdict.get(key) or "-"])
    out += _table(["metric", "A", "B", "B - A", f"{pct} interval of B - A", "B vs A"], rows)
    out += ["", f"rows {r.rows:,}, total weight {r.weight:,.6g}"]
    for col, segs in report.segments.items():
        out += _segments(report, col, segs, top, pct)
    return "\n".join(out)
