"""`xent compare` from the command line: the table, JSON, the plot, and every bad input (one line, exit 2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import log_loss

from xent.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AB = os.path.join(ROOT, "examples", "data", "ab_clicks.parquet")
CTR = os.path.join(ROOT, "examples", "data", "ctr_sample.parquet")
COLS = ("--label", "clicked", "--prob", "p_click")


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["compare", *args])
    out, err = capsys.readouterr()
    return code, out, err


def fails(capsys, *args: str) -> str:
    code, out, err = run(capsys, *args)
    assert code == 2 and out == "", (code, out, err)
    assert err.startswith("xent: error: compare: ") and err.count("\n") == 1, err
    return err.strip()


def test_table_and_json_on_the_bundled_data(capsys):
    t = pq.read_table(AB).to_pydict()
    y = np.asarray(t["clicked"])
    want = log_loss(y, np.asarray(t["p_click_v2"], np.float64)) - log_loss(y, np.asarray(t["p_click"], np.float64))
    code, out, err = run(capsys, AB, *COLS, "--vs", "p_click_v2", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert {"a", "b", "delta", "delta_ci", "verdict", "level", "models"} <= set(d)
    assert d["delta"]["log_loss"] == pytest.approx(want, rel=1e-6)  # float32 columns: clipped at float32 eps
    assert d["models"]["b"]["pred"] == ["p_click_v2"]
    code, text, err = run(capsys, AB, *COLS, "--vs", "p_click_v2")
    assert code == 0 and err == "", err
    lines = text.splitlines()
    assert lines[0].startswith("xent compare: 1 file(s), 5,000 rows, binary, local engine")
    assert lines[1:3] == ["model A: `p_click`", "model B: `p_click_v2`"]
    row = next(line for line in lines if line.startswith("log loss (nats)"))
    assert f"{d['delta']['log_loss']:.6f}" in row
    # --against: model B in another file (ctr_sample holds model A, ab_clicks model B)
    code, out2, err = run(capsys, CTR, *COLS, "--against", AB, "--vs", "p_click_v2", "--json")
    assert code == 0, err
    assert json.loads(out2)["delta"] == pytest.approx(d["delta"], rel=1e-12)


def test_plot_has_both_models(capsys, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xent.scoring import _plot

    figures = []
    real = _plot._save
    monkeypatch.setattr(_plot, "_save", lambda fig, path: (figures.append(fig), real(fig, path)))
    png = tmp_path / "ab.png"
    code, out, err = run(capsys, AB, *COLS, "--vs", "p_click_v2", "--plot", str(png), "--json")
    assert code == 0, err
    d = json.loads(out)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    [fig] = figures
    titles = [ax.get_title() for ax in fig.axes]
    assert "Reliability" in titles
    assert "positive class 1 of `clicked`" in fig._suptitle.get_text()
    rel = fig.axes[titles.index("Reliability")]
    labels = [t.get_text() for t in rel.get_legend().get_texts()]
    assert labels[0] == "perfect calibration"
    assert labels[1:] == ["A: p_click: 95% interval", f"A: p_click (ECE {d['a']['ece']:.4f})",
                          "B: p_click_v2: 95% interval", f"B: p_click_v2 (ECE {d['b']['ece']:.4f})"], labels
    roc = fig.axes[titles.index("ROC curve")]
    assert [t.get_text() for t in roc.get_legend().get_texts()] == [
        "chance (AUC 0.5)", f"A: p_click (AUC {d['a']['roc_auc']:.4f})", f"B: p_click_v2 (AUC {d['b']['roc_auc']:.4f})"]
    assert (roc.get_xlabel(), roc.get_ylabel()) == ("false positive rate", "true positive rate")
    for ax in fig.axes:
        assert ax.get_ylabel(), ax.get_title()
    assert fig.axes[1].get_xlabel() == "predicted probability"
    plt.close("all")


def test_bad_input(capsys, tmp_path):
    err = fails(capsys, AB, *COLS, "--vs", "p_click")
    assert "--vs names the same column(s) as --prob (p_click)" in err
    err = fails(capsys, AB, *COLS)
    assert "--vs COL" in err and "--against PATH" in err
    for level in ("0", "1", "1.5", "-0.2", "x"):
        err = fails(capsys, AB, *COLS, "--vs", "p_click_v2", "--ci", level)
        assert "--ci" in err and "(0, 1)" in err, err
    err = fails(capsys, AB, *COLS, "--vs", "nope")
    assert f"{AB}: column `nope`: column not found" in err
    # --against: fewer rows, more rows, a label that differs
    t = pq.read_table(AB)
    short = tmp_path / "short.parquet"
    pq.write_table(t.slice(0, 4000), short)
    err = fails(capsys, CTR, *COLS, "--against", str(short), "--vs", "p_click_v2")
    assert f"compare: {CTR}: row 4000: --against ends after 4,000 rows" in err
    err = fails(capsys, str(short), *COLS, "--against", AB, "--vs", "p_click_v2")
    assert f"compare: {AB}: row 4000: the input ends after 4,000 rows" in err
    y = np.asarray(t["clicked"]).copy()
    y[1234] = 1 - y[1234]
    flipped = tmp_path / "flipped.parquet"
    pq.write_table(t.set_column(0, "clicked", pa.array(y)), flipped)
    err = fails(capsys, CTR, *COLS, "--against", str(flipped), "--vs", "p_click_v2")
    assert f"compare: {CTR}: row 1234, column `clicked`: label" in err and f"in {flipped} row 1234" in err
    err = fails(capsys, AB, *COLS, "--against", AB)
    assert "--against names model A's own files and columns" in err
    err = fails(capsys, AB, *COLS, "--vs", "p_click_v2", "--workers", "2")
    assert "--scheduler and --workers need --engine dask" in err


def test_no_traceback_from_a_process(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "xent.cli", "compare", AB, *COLS, "--vs", "p_click"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("xent: error: compare: ") and proc.stderr.count("\n") == 1, proc.stderr
