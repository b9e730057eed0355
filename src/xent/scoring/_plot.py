"""Figures of a score or a comparison: reliability diagram (with its interval band), rows per bin, ROC curve.

matplotlib (Agg backend) is imported only when a plot is asked for. One layout
for ``xent score --plot`` (one model) and ``xent compare --plot`` (models A and
B, in one figure, in colours C0 and C1):

- left, top: observed rate (binary: positive rate; multi-class: accuracy) against
  the mean prediction of each non-empty calibration bin, the diagonal of perfect
  calibration, and, when intervals were asked for, each model's band of the
  observed rate per bin;
- left, bottom: rows per bin (side by side for two models);
- right (binary input with a score histogram): the ROC curve of each model with
  its AUC, and the chance diagonal.

The title names the positive class (binary) or says "top-label" (multi-class);
the legend names each model by its column(s) and states its ECE / AUC.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from xent.metrics import bootstrap_counts

__all__ = ["Curve", "plot_compare", "plot_reliability", "roc_curve_from_histogram"]

COLORS = ("C0", "C1")
STYLES = ("-", "--")  # B dashed: two curves that coincide (the same ranking) both stay visible


@dataclass(frozen=True)
class Curve:
    """One model's lines: ``name`` (legend), its report, and optional ROC points and reliability band."""

    name: str
    report: Any
    roc: tuple[np.ndarray, np.ndarray] | None = None
    band: tuple[Any, Any] | None = None  # per bin: low, high of the observed rate (NaN for an empty bin)
    band_label: str = ""  # what the band is, e.g. "95% interval"


def roc_curve_from_histogram(pos: Any, neg: Any, *, points: int = 2000) -> tuple[np.ndarray, np.ndarray] | None:
    """``(fpr, tpr)`` from positive and negative weight per score bin (bins in increasing score order).

    A point per threshold between non-empty bins, from (0, 0) to (1, 1), thinned to about ``points``
    (evenly along the curve's length; the curve is monotone, so nothing visible is lost); None when
    one class has no weight (the curve is undefined).
    """
    pos = np.asarray(pos, dtype=np.float64).ravel()[::-1]  # from the highest score down
    neg = np.asarray(neg, dtype=np.float64).ravel()[::-1]
    keep = (pos > 0) | (neg > 0)
    tp, fp = np.cumsum(pos[keep]), np.cumsum(neg[keep])
    if not len(tp) or tp[-1] <= 0 or fp[-1] <= 0:
        return None
    fpr, tpr = np.concatenate([[0.0], fp / fp[-1]]), np.concatenate([[0.0], tp / tp[-1]])
    if len(fpr) > points:
        length = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(fpr), np.diff(tpr)))])
        idx = np.unique(np.searchsorted(length, np.linspace(0.0, length[-1], points)).clip(0, len(fpr) - 1))
        idx = np.unique(np.concatenate([[0], idx, [len(fpr) - 1]]))
        fpr, tpr = fpr[idx], tpr[idx]
    return fpr, tpr


def _pyplot() -> Any:
    try:
        import matplotlib  # optional dependency (the cli extra)

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # optional dependency (the cli extra)
    except ImportError:
        raise ModuleNotFoundError('plotting needs matplotlib: pip install "xent-ml[cli]"', name="matplotlib") from None
    return plt


def _show(c: Any) -> str:
    return repr(c) if isinstance(c, str) else str(c)


def model_name(pred: Sequence[str]) -> str:
    """A short legend name for prediction columns: ``p``, or ``p_* (3 columns)`` for one column per class."""
    if len(pred) == 1:
        return pred[0]
    prefix = os.path.commonprefix(list(pred))
    head = f"{prefix}*" if len(prefix) >= 2 else f"{pred[0]}, ..."
    return f"{head} ({len(pred)} columns)"


def _subject(report: Any) -> str:
    if report.result.kind == "multiclass":
        return f"top-label, {len(report.result.classes)} classes"
    return f"binary, positive class {_show(report.positive_class)} of `{report.spec.label}`"


def _reliability(ax: Any, curves: Sequence[Curve]) -> None:
    multi = curves[0].report.result.kind == "multiclass"
    ax.plot([0, 1], [0, 1], ":", color="gray", lw=1, label="perfect calibration")
    for color, c in zip(COLORS, curves):
        rel = c.report.result.reliability
        full = [k for k in range(len(rel.rows)) if rel.rows[k]]
        x = [rel.mean_predicted[k] for k in full]
        if c.band is not None:
            lo, hi = c.band
            ax.fill_between(x, [lo[k] for k in full], [hi[k] for k in full], color=color, alpha=0.2, lw=0,
                            label=f"{c.name}: {c.band_label}" if c.band_label else None)
        ax.plot(x, [rel.observed[k] for k in full], "o-", color=color, ms=4,
                label=f"{c.name} (ECE {c.report.result.ece:.4f})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.03)  # a bin at 1.0 stays visible
    ax.set_ylabel("accuracy" if multi else "observed positive rate")
    ax.set_title("Reliability", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)


def _rows(ax: Any, curves: Sequence[Curve]) -> None:
    rel = curves[0].report.result.reliability
    width = (rel.edges[1] - rel.edges[0]) * 0.9 / len(curves)
    for i, (color, c) in enumerate(zip(COLORS, curves)):
        r = c.report.result.reliability
        left = [r.edges[k] + 0.05 * (r.edges[1] - r.edges[0]) + i * width for k in range(len(r.rows))]
        ax.bar(left, r.rows, width=width, align="edge", color=color, alpha=0.8)
    multi = curves[0].report.result.kind == "multiclass"
    ax.set_xlabel("top-label confidence" if multi else "predicted probability")
    ax.set_ylabel("rows per bin")
    ax.set_xlim(0, 1)


def _roc(ax: Any, curves: Sequence[Curve]) -> None:
    ax.plot([0, 1], [0, 1], ":", color="gray", lw=1, label="chance (AUC 0.5)")
    for color, style, c in zip(COLORS, STYLES, curves):
        if c.roc is None:
            continue
        fpr, tpr = c.roc
        auc = getattr(c.report.result, "roc_auc", None)
        label = c.name if auc is None else f"{c.name} (AUC {auc:.4f})"
        ax.plot(fpr, tpr, style, color=color, lw=1.5, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC curve", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)


def draw(curves: Sequence[Curve], title: str) -> Any:
    """The figure (see the module docstring); returned open, for the caller to save and close."""
    plt = _pyplot()
    roc = any(c.roc is not None for c in curves)
    fig = plt.figure(figsize=(10.5 if roc else 5.5, 6.2))
    grid = fig.add_gridspec(2, 2 if roc else 1, height_ratios=[3, 1], width_ratios=[1, 1] if roc else [1])
    ax = fig.add_subplot(grid[0, 0])
    axh = fig.add_subplot(grid[1, 0], sharex=ax)
    ax.tick_params(labelbottom=False)
    _reliability(ax, curves)
    _rows(axh, curves)
    if roc:
        _roc(fig.add_subplot(grid[:, 1]), curves)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def _save(fig: Any, path: str) -> None:
    plt = _pyplot()
    try:
        fig.savefig(path, format="png", dpi=100)
    finally:
        plt.close(fig)


def reliability_band(state: Any, level: float, *, replicates: int, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Per calibration bin, the bootstrap percentile interval of the observed rate (binary: positive rate;
    multi-class: accuracy), from the state's per-bucket bin sums (the replicates of its intervals);
    None without bucket sums. Empty bins get NaN."""
    groups = getattr(state, "groups", None) or {}
    if not groups:
        return None
    g = next(iter(groups.values()))
    if g.buckets <= 1 or not g.keys:
        return None
    n = len(g.keys)
    bw = g.sums.bin_weight[:n].sum(axis=0)  # (buckets, bins), over every segment
    bo = g.sums.bin_outcome[:n].sum(axis=0)
    C = bootstrap_counts(g.buckets, replicates, seed).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        obs = (C @ bo) / (C @ bw)  # (replicates, bins)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a bin empty in every replicate: NaN
            lo = np.nanquantile(obs, (1.0 - level) / 2.0, axis=0)
            hi = np.nanquantile(obs, (1.0 + level) / 2.0, axis=0)
    return lo, hi


def curve_of(report: Any, name: str, state: Any = None, level: float | None = None) -> Curve:
    """A model's :class:`Curve`: ROC points from the state's score histogram (binary), and the band of
    the reliability diagram at ``level`` from its bucket sums, when it has them."""
    roc = band = None
    sums = getattr(state, "sums", None)
    if sums is not None and report.result.kind == "binary" and "auc_pos" in sums.names and len(sums.auc_pos):
        roc = roc_curve_from_histogram(sums.auc_pos, sums.auc_neg)
    if level is not None and getattr(state, "groups", None):
        band = reliability_band(state, level, replicates=report.spec.ci_replicates, seed=report.spec.ci_seed)
    label = f"{level * 100:g}% interval" if band is not None and level is not None else ""
    return Curve(name, report, roc=roc, band=band, band_label=label)


def plot_reliability(report: Any, path: str, state: Any = None) -> None:
    """``xent score --plot``: one model's reliability diagram, rows per bin and ROC curve."""
    r = report.result
    cols = model_name(report.spec.pred)
    title = f"{cols} ({_subject(report)})\nlog loss {r.log_loss:.4f} nats, ECE {r.ece:.4f}, {r.rows:,} rows"
    _save(draw([curve_of(report, cols, state, getattr(report.spec, "ci", None))], title), path)


def plot_compare(report: Any, path: str, states: Any = None) -> None:
    """``xent compare --plot``: models A and B in one figure."""
    a, b = report.a, report.b
    na, nb = "A: " + model_name(a.spec.pred), "B: " + model_name(b.spec.pred)
    curves = [curve_of(a, na, None if states is None else states.a, report.level),
              curve_of(b, nb, None if states is None else states.b, report.level)]
    title = (f"Model A vs model B ({_subject(a)})\nlog loss A {a.result.log_loss:.4f}, B {b.result.log_loss:.4f} "
             f"nats, {a.result.rows:,} rows")
    _save(draw(curves, title), path)
