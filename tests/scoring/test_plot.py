"""The figures: `xent score --plot` (one model) and the ROC curve from a score histogram, read through
matplotlib's objects (panels, labels, legend entries), not pixels."""

from __future__ import annotations

import os

import matplotlib
import numpy as np
import pytest
from sklearn.metrics import auc, roc_curve

from xent.scoring import ScoreSpec, _plot, score

matplotlib.use("Agg")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CTR = os.path.join(ROOT, "examples", "data", "ctr_sample.parquet")


@pytest.fixture
def figures(monkeypatch):
    import matplotlib.pyplot as plt

    seen = []
    real = _plot._save
    monkeypatch.setattr(_plot, "_save", lambda fig, path: (seen.append(fig), real(fig, path)))
    yield seen
    plt.close("all")


def _legend(ax):
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_score_figure_with_band_and_roc(tmp_path, figures):
    report = score(CTR, ScoreSpec(label="clicked", pred="p_click", ci=0.9))
    png = tmp_path / "r.png"
    report.plot(str(png))
    assert png.read_bytes()[:4] == b"\x89PNG"
    [fig] = figures
    rel, rows, roc = fig.axes
    assert (rel.get_title(), roc.get_title()) == ("Reliability", "ROC curve")
    assert _legend(rel) == ["perfect calibration", "p_click: 90% interval", f"p_click (ECE {report.result.ece:.4f})"]
    assert _legend(roc) == ["chance (AUC 0.5)", f"p_click (AUC {report.result.roc_auc:.4f})"]
    assert "positive class 1 of `clicked`" in fig._suptitle.get_text()
    assert (rows.get_xlabel(), rows.get_ylabel()) == ("predicted probability", "rows per bin")
    assert (roc.get_xlabel(), roc.get_ylabel()) == ("false positive rate", "true positive rate")
    assert len(rel.collections) == 1  # the band
    # without --ci: no band; multi-class: no ROC panel
    score(CTR, ScoreSpec(label="clicked", pred="p_click")).plot(str(png))
    assert _legend(figures[1].axes[0]) == ["perfect calibration", f"p_click (ECE {report.result.ece:.4f})"]
    species = os.path.join(ROOT, "examples", "data", "species_sample.csv")
    score(species, ScoreSpec(label="species", pred=("p_setosa", "p_versicolor", "p_virginica"),
                             classes=("setosa", "versicolor", "virginica"))).plot(str(png))
    assert [ax.get_title() for ax in figures[2].axes] == ["Reliability", ""]
    assert figures[2].axes[0].get_ylabel() == "accuracy" and "top-label, 3 classes" in figures[2]._suptitle.get_text()
    assert _legend(figures[2].axes[0])[1].startswith("p_* (3 columns) (ECE ")


def test_roc_curve_from_histogram_matches_sklearn():
    rng = np.random.default_rng(0)
    bins = rng.integers(0, 500, 4000)  # scores with ties: one bin, one score
    y = (rng.random(4000) < bins / 500).astype(int)
    pos, neg = np.bincount(bins, y, 500), np.bincount(bins, 1 - y, 500)
    fpr, tpr = _plot.roc_curve_from_histogram(pos, neg, points=10**6)
    want_fpr, want_tpr, _ = roc_curve(y, bins, drop_intermediate=False)
    np.testing.assert_allclose(fpr, want_fpr, atol=1e-15)
    np.testing.assert_allclose(tpr, want_tpr, atol=1e-15)
    thin = _plot.roc_curve_from_histogram(pos, neg, points=50)
    assert len(thin[0]) <= 52 and (thin[0][0], thin[1][-1]) == (0.0, 1.0)
    assert auc(*thin) == pytest.approx(auc(fpr, tpr), abs=2e-3)
    assert _plot.roc_curve_from_histogram(pos, np.zeros(500)) is None  # one class: no curve
