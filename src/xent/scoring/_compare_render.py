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


def render(report: Any) -> str:
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
        out.append(f"paired {pct} intervals of B - A: {iv.get('method', '')}"
                   + (f", {iv['replicates']} replicates" if "replicates" in iv else "")
                   + (f", seed {iv['seed']}" if "seed" in iv else ""))
    out.append("")
    ma, mb = r.to_dict(), b.result.to_dict()
    verdict = report.verdict
    rows = []
    for key, name, direction in COMPARED:
        if key not in report.delta:
            continue
        better = "lower" if direction < 0 else "higher"
        rows.append([f"{name} ({better} is better)", _f(ma[key]), _f(mb[key]), _f(report.delta[key]),
                     _interval(report.delta_ci.get(key)), verdict.get(key) or "-"])
    out += _table(["metric", "A", "B", "B - A", f"{pct} interval of B - A", "B vs A"], rows)
    out += ["", f"rows {r.rows:,}, total weight {r.weight:,.6g}"]
    return "\n".join(out)
