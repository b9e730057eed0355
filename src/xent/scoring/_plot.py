"""Reliability diagram (matplotlib, Agg backend, imported only when a plot is asked for)."""

from __future__ import annotations

from typing import Any

__all__ = ["plot_reliability"]


def plot_reliability(report: Any, path: str) -> None:
    try:
        import matplotlib  # optional dependency (the cli extra)

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # optional dependency (the cli extra)
    except ImportError:
        raise ModuleNotFoundError('plotting needs matplotlib: pip install "xent-ml[cli]"', name="matplotlib") from None
    r = report.result
    rel = r.reliability
    multi = r.kind == "multiclass"
    centers = [(rel.edges[k] + rel.edges[k + 1]) / 2 for k in range(len(rel.rows))]
    width = rel.edges[1] - rel.edges[0]
    fig, (ax, axh) = plt.subplots(2, 1, figsize=(5, 6), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    full = [k for k in range(len(rel.rows)) if rel.rows[k]]
    ax.bar([centers[k] for k in full], [rel.observed[k] for k in full], width=width * 0.9, alpha=0.7,
           label="accuracy" if multi else "observed positive rate")
    ax.plot([rel.mean_predicted[k] for k in full], [rel.observed[k] for k in full], "o-", color="C1",
            label="bin mean")
    ax.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    ax.set_ylabel("accuracy" if multi else "observed rate")
    pos = report.positive_class
    kind = "top-label" if multi else f"binary, positive class {pos!r}" if isinstance(pos, str) else \
        f"binary, positive class {pos}"
    ax.set_title(f"Reliability ({kind})\nECE {r.ece:.4f}, log loss {r.log_loss:.4f} nats", fontsize=10)
    ax.legend(loc="upper left")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.03)  # a bin at 1.0 stays visible
    axh.bar(centers, rel.rows, width=width * 0.9, color="C2")
    axh.set_xlabel("top-label confidence" if multi else "predicted probability")
    axh.set_ylabel("rows")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
