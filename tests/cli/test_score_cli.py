"""`xent score` run as a subprocess: output formats and every bad-input case (exit 2, one line)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import brier_score_loss, log_loss

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def xent(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="100")
    return subprocess.run([sys.executable, "-m", "xent.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


def fails(proc: subprocess.CompletedProcess, *parts: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert err.startswith("xent: error: ") and "\n" not in err and "Traceback" not in proc.stderr, proc.stderr
    for part in parts:
        assert part in err, (part, err)
    assert proc.stdout == ""
    return err


def _binary(n=400, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.random(n).astype(np.float32)
    y = (rng.random(n) < p).astype(np.int8)
    return y, p


@pytest.fixture
def data(tmp_path):
    y, p = _binary()
    pq.write_table(pa.table({"y": y, "p": p}), tmp_path / "b.parquet")
    lines = ["y,p"] + [f"{a},{b!r}" for a, b in zip(y, p.tolist())]
    (tmp_path / "b.csv").write_text("\n".join(lines) + "\n")
    return tmp_path, y, p


def _csv(path, header, rows):
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return str(path)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_json_matches_sklearn(data, fmt):
    tmp, y, p = data
    proc = xent("score", str(tmp / f"b.{fmt}"), "--label", "y", "--prob", "p", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    m = out["metrics"]
    p64 = p.astype(np.float64)
    eps = float(np.finfo(np.float32 if fmt == "parquet" else np.float64).eps)  # CSV text parses to float64
    assert m["log_loss"] == pytest.approx(log_loss(y, np.clip(p64, eps, 1 - eps)), rel=1e-12)
    assert m["brier"] == pytest.approx(brier_score_loss(y, p64), rel=1e-12)
    assert m["rows"] == len(y) and out["files"] == [str(tmp / f"b.{fmt}")]
    assert len(m["reliability"]["bins"]) == 15


def test_table_plot_and_multiple_inputs(data):
    tmp, y, p = data
    png = tmp / "rel.png"
    proc = xent("score", str(tmp), "--label", "y", "--prob", "p", "--plot", str(png), "--bins", "10")
    assert proc.returncode == 0, proc.stderr
    assert "log loss (nats)" in proc.stdout and "normalized entropy" in proc.stdout and "2 file(s)" in proc.stdout
    assert f"{2 * len(y):,} rows" in proc.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert "\r" not in proc.stderr  # no progress bar when stderr is not a terminal
    glob = xent("score", str(tmp / "*.parquet"), "--label", "y", "--prob", "p", "--json")
    assert json.loads(glob.stdout)["metrics"]["rows"] == len(y)


def test_multiclass_string_labels_and_list_column(tmp_path):
    rng = np.random.default_rng(5)
    z = rng.normal(0, 2, (300, 3))
    P = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    names = np.array(["cat", "dog", "eel"])
    y = rng.integers(0, 3, 300)
    pq.write_table(pa.table({"animal": names[y], "probs": list(P)}), tmp_path / "m.parquet")
    proc = xent("score", str(tmp_path / "m.parquet"), "--label", "animal", "--prob", "probs", "--classes",
                "cat,dog,eel", "--json")
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)["metrics"]
    assert m["kind"] == "multiclass" and [c["label"] for c in m["classes"]] == ["cat", "dog", "eel"]
    assert m["log_loss"] == pytest.approx(log_loss(y, P, labels=[0, 1, 2]), rel=1e-12)
    assert m["brier"] == pytest.approx(brier_score_loss(y, P, labels=[0, 1, 2]), rel=1e-12)
    logits = xent("score", str(tmp_path / "m.parquet"), "--label", "animal", "--logit", "probs", "--classes",
                  "cat,dog,eel", "--json")
    assert json.loads(logits.stdout)["metrics"]["kind"] == "multiclass"


def test_help_has_examples():
    top = xent("--help")
    assert top.returncode == 0 and "score" in top.stdout
    sub = xent("score", "--help")
    assert sub.returncode == 0
    for part in ("examples:", "--label", "--prob", "--logit", "--weight", "--classes", "--json", "--plot",
                 "--threads", "--on-invalid", "--tolerance", "--engine"):
        assert part in sub.stdout


def test_readme_main_job_command():
    proc = xent("score", "examples/data/ctr_sample.parquet", "--label", "clicked", "--prob", "p_click", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "log loss (nats)" in proc.stdout and "5,000 rows" in proc.stdout
    multi = xent("score", "examples/data/species_sample.csv", "--label", "species", "--prob", "p_setosa",
                 "p_versicolor", "p_virginica", "--classes", "setosa,versicolor,virginica", cwd=ROOT)
    assert multi.returncode == 0, multi.stderr
    assert "per class:" in multi.stdout and "versicolor" in multi.stdout


# ---- bad input: exit 2, one line naming file, row and column -------------------------------------------


def test_missing_column(data):
    tmp, _, _ = data
    for f in ("b.parquet", "b.csv"):
        fails(xent("score", str(tmp / f), "--label", "y", "--prob", "q"), f, "column `q`", "not found")


def test_unparseable_number(tmp_path):
    f = _csv(tmp_path / "x.csv", "y,p", ["1,0.5", "0,0.25", "1,abc", "0,0.1"])
    fails(xent("score", f, "--label", "y", "--prob", "p"), "x.csv", "row 2", "column `p`", "cannot parse")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_nan(tmp_path, fmt):
    p = np.array([0.5, 0.2, 0.3, np.nan, 0.9])
    y = np.array([1, 0, 0, 1, 1], dtype=np.int8)
    if fmt == "csv":
        f = _csv(tmp_path / "n.csv", "y,p", [f"{a},{b}" for a, b in zip(y, p)])
    else:
        f = str(tmp_path / "n.parquet")
        pq.write_table(pa.table({"y": y, "p": p}), f)
    fails(xent("score", f, "--label", "y", "--prob", "p"), f"n.{fmt}", "row 3", "column `p`", "NaN")


def test_probability_out_of_range(tmp_path):
    f = str(tmp_path / "r.parquet")
    pq.write_table(pa.table({"y": [0, 1, 1], "p": [0.1, 1.5, 0.3]}), f)
    fails(xent("score", f, "--label", "y", "--prob", "p"), "r.parquet", "row 1", "column `p`", "1.5",
          "outside [0, 1]")


def test_rows_not_summing_to_one_and_tolerance(tmp_path):
    f = _csv(tmp_path / "s.csv", "y,a,b", ["0,0.5,0.5", "1,0.3,0.6", "1,0.2,0.8"])
    err = fails(xent("score", f, "--label", "y", "--prob", "a", "b"), "s.csv", "row 1", "sum to 0.9")
    assert "--logit for unnormalised scores" in err and "--logits" not in err  # the flag's real name
    assert xent("score", f, "--label", "y", "--prob", "a", "b", "--tolerance", "0.2").returncode == 0


def test_label_not_in_class_list(tmp_path):
    f = _csv(tmp_path / "l.csv", "y,p", ["cat,0.5", "dog,0.2", "eel,0.1"])
    fails(xent("score", f, "--label", "y", "--prob", "p", "--classes", "cat,dog"), "l.csv", "row 2",
          "column `y`", "'eel'", "not in the class list")
    f2 = _csv(tmp_path / "l2.csv", "y,p", ["0,0.5", "2,0.2"])
    fails(xent("score", f2, "--label", "y", "--prob", "p"), "row 1", "column `y`", "label 2 ")


def test_empty_input(tmp_path):
    f = _csv(tmp_path / "e.csv", "y,p", [])
    (tmp_path / "e.csv").write_text("y,p\n")
    fails(xent("score", f, "--label", "y", "--prob", "p"), "nothing to score", "no rows")
    g = str(tmp_path / "e.parquet")
    pq.write_table(pa.table({"y": pa.array([], pa.int8()), "p": pa.array([], pa.float32())}), g)
    fails(xent("score", g, "--label", "y", "--prob", "p"), "nothing to score")
    fails(xent("score", str(tmp_path / "nope.parquet"), "--label", "y"), "nope.parquet", "no such file")


def test_truncated_and_corrupt_parquet(data, tmp_path):
    src = (data[0] / "b.parquet").read_bytes()
    t = tmp_path / "t.parquet"
    t.write_bytes(src[: len(src) // 2])
    fails(xent("score", str(t), "--label", "y", "--prob", "p"), "t.parquet", "Parquet")
    c = tmp_path / "c.parquet"
    c.write_bytes(src[:4] + bytes(60) + src[64:])  # magic and footer intact, first page header zeroed
    fails(xent("score", str(c), "--label", "y", "--prob", "p"), "c.parquet", "corrupt")
    y, p = _binary(5000)
    pq.write_table(pa.table({"y": y, "p": p}), tmp_path / "k.parquet", write_page_checksum=True, compression="none")
    raw = (tmp_path / "k.parquet").read_bytes()
    mid = len(raw) // 2
    (tmp_path / "k.parquet").write_bytes(raw[:mid] + bytes(16) + raw[mid + 16:])  # flipped data bytes only
    fails(xent("score", str(tmp_path / "k.parquet"), "--label", "y", "--prob", "p"), "k.parquet", "corrupt")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    fails(xent("score", str(tmp_path / "junk.parquet"), "--label", "y", "--prob", "p"), "junk.parquet", "Parquet")


def test_npy_is_never_unpickled(tmp_path):
    obj = np.array([{"a": 1}, None], dtype=object)
    np.save(tmp_path / "o.npy", obj, allow_pickle=True)
    fails(xent("score", str(tmp_path / "o.npy"), "--label", "y", "--prob", "p"), "o.npy", "NPY")
    np.savez(tmp_path / "o.npz", y=np.array([1, 0]), p=obj)
    fails(xent("score", str(tmp_path / "o.npz"), "--label", "y", "--prob", "p"), "o.npz")


def test_npy_and_npz_inputs(tmp_path):
    y, p = _binary(50)
    rec = np.zeros(50, dtype=[("y", "i1"), ("p", "f4")])
    rec["y"], rec["p"] = y, p
    np.save(tmp_path / "r.npy", rec)
    np.savez(tmp_path / "r.npz", y=y, p=p)
    a = json.loads(xent("score", str(tmp_path / "r.npy"), "--label", "y", "--prob", "p", "--json").stdout)
    b = json.loads(xent("score", str(tmp_path / "r.npz"), "--label", "y", "--prob", "p", "--json").stdout)
    assert a["metrics"]["log_loss"] == pytest.approx(b["metrics"]["log_loss"], rel=1e-14)


def test_skip_counts_rows_by_reason(tmp_path):
    rows = ["1,0.5,1", "0,abc,1", "1,nan,1", "0,1.5,1", "7,0.5,1", ",0.5,1", "1,0.5,-2", "0,0.25,2"]
    f = _csv(tmp_path / "k.csv", "y,p,w", rows)
    proc = xent("score", f, "--label", "y", "--prob", "p", "--weight", "w", "--on-invalid", "skip", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["metrics"]["rows"] == 2 and out["skipped_total"] == 6
    assert out["skipped_rows"] == {
        "label not in classes": 1, "missing label": 1, "missing or NaN prediction": 1,
        "negative or non-finite weight": 1, "probability outside [0, 1]": 1, "unparseable number": 1,
    }
    assert out["metrics"]["log_loss"] == pytest.approx(log_loss([1, 0], [0.5, 0.25], sample_weight=[1, 2]),
                                                       rel=1e-12)
    table = xent("score", f, "--label", "y", "--prob", "p", "--weight", "w", "--on-invalid", "skip")
    assert "skipped 6 invalid rows" in table.stdout
    fails(xent("score", f, "--label", "y", "--prob", "p", "--weight", "w"), "row 1", "column `p`")


def test_usage_errors(data):
    tmp, _, _ = data
    f = str(tmp / "b.csv")
    fails(xent("score", f, "--label", "y", "--prob", "p", "--bins", "0"), "--bins")
    fails(xent("score", f, "--label", "y", "--prob", "p", "--workers", "2"), "--engine dask")
    fails(xent("score", f, "--label", "y", "--prob", "p", "--on-invalid", "maybe"), "invalid choice")


def test_progress_bar_draws_rows_rate_and_eta():
    import io

    from xent.scoring._progress import Progress

    buf = io.StringIO()
    bar = Progress(total=2_000_000, stream=buf)
    bar.advance(1_000_000)
    assert "50.0%" in buf.getvalue() and "1.0M rows" in buf.getvalue()
    bar.advance(1_000_000)
    bar.close()
    text = buf.getvalue()
    assert text.startswith("\r[") and "2.0M rows" in text and "rows/s" in text and "ETA" in text
    assert "100.0%" in text and text.endswith("\n")
    unknown = io.StringIO()
    bar = Progress(total=None, stream=unknown)
    bar.advance(1500)
    bar.close()
    assert "1.5k rows" in unknown.getvalue() and "ETA" not in unknown.getvalue()


def test_threads_option_same_numbers(data):
    tmp, _, _ = data
    one = xent("score", str(tmp / "b.parquet"), "--label", "y", "--prob", "p", "--threads", "1", "--json")
    two = xent("score", str(tmp / "b.parquet"), "--label", "y", "--prob", "p", "--threads", "2", "--json")
    assert json.loads(one.stdout)["metrics"] == json.loads(two.stdout)["metrics"]
    fails(xent("score", str(tmp / "b.parquet"), "--label", "y", "--prob", "p", "--threads", "0"), "--threads")


def test_infinite_log_loss_is_null_in_json(tmp_path):
    f = _csv(tmp_path / "i.csv", "y,p", ["1,0.0", "0,0.5"])
    proc = xent("score", f, "--label", "y", "--prob", "p", "--eps", "0", "--json")
    assert proc.returncode == 0, proc.stderr
    m = json.loads(proc.stdout)["metrics"]
    assert m["log_loss"] is None and m["perplexity"] is None and m["brier"] == pytest.approx((1 + 0.25) / 2)
    assert "inf" in xent("score", f, "--label", "y", "--prob", "p", "--eps", "0").stdout


def test_usage_errors_have_one_prefix(capsys):
    from xent.cli import main

    for argv, want in [
        (["score", "f.csv", "--on-invalid", "maybe"],
         "xent: error: score: argument --on-invalid: invalid choice: 'maybe' (choose from 'error', 'skip') "
         "(see `xent score --help`)\n"),
        (["bogus"], "xent: error: argument COMMAND: invalid choice: 'bogus' (choose from 'score', 'compare', 'explain') "
                    "(see `xent --help`)\n"),
        (["explain", "binary", "--labels", "1"],
         "xent: error: explain binary: one of the arguments --probs --logits is required "
         "(see `xent explain binary --help`)\n"),
    ]:
        assert main(argv) == 2
        out, err = capsys.readouterr()
        assert (out, err) == ("", want)


# ---- class order: which class is positive, and warnings when the classes look swapped ------------------


@pytest.fixture
def yes_no(tmp_path):
    y, p = _binary(2000, seed=3)
    p = (0.1 + 0.3 * p).astype(np.float32)  # positives are rare: 25% on average, predicted as such
    y = (np.random.default_rng(4).random(len(p)) < p).astype(np.int8)
    f = tmp_path / "yn.parquet"
    pq.write_table(pa.table({"answer": np.where(y == 1, "yes", "no"), "p_yes": p, "y01": y}), f)
    return str(f), y, p


def main(capsys, *args: str) -> subprocess.CompletedProcess:
    """`xent ARGS` in this process (no interpreter start-up), with its exit status, stdout and stderr."""
    from xent.cli import main as cli_main

    rc = cli_main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, out, err)


def test_binary_prints_the_positive_class_and_stays_quiet_when_the_order_is_right(capsys, yes_no):
    xent = functools.partial(main, capsys)
    f, y, p = yes_no
    ok = xent("score", f, "--label", "answer", "--prob", "p_yes", "--classes", "no,yes")
    assert ok.returncode == 0 and ok.stderr == "", ok.stderr
    assert "positive class: 'yes' (`p_yes` is the probability of `answer` = 'yes')" in ok.stdout
    numeric = xent("score", f, "--label", "y01", "--prob", "p_yes", "--json")
    out = json.loads(numeric.stdout)
    assert numeric.stderr == "" and out["positive_class"] == "1" and out["warnings"] == []


def test_swapped_classes_warn_and_say_how_to_fix(capsys, yes_no):
    xent = functools.partial(main, capsys)
    f, y, p = yes_no
    bad = xent("score", f, "--label", "answer", "--prob", "p_yes", "--classes", "yes,no", "--json")
    assert bad.returncode == 0
    out = json.loads(bad.stdout)
    assert out["positive_class"] == "no" and out["metrics"]["rig"] < 0
    [warning] = bad.stderr.splitlines()
    assert warning.startswith("xent: warning: RIG is negative (")
    assert "far from the observed rate" in warning and "of the positive class 'no'" in warning
    assert warning.endswith("if `p_yes` is the probability of 'yes', use --classes no,yes")
    assert out["warnings"] == [warning.removeprefix("xent: warning: ")]
    # numeric labels with a column that holds P(y = 0)
    flipped = tmp = f.replace("yn.parquet", "flip.parquet")
    pq.write_table(pa.table({"y": y, "p0": (1 - p).astype(np.float32)}), tmp)
    w = xent("score", flipped, "--label", "y", "--prob", "p0").stderr
    assert "The positive class is 1 by default; if `p0` is the probability of 0, use --classes 1,0" in w
    fixed = xent("score", flipped, "--label", "y", "--prob", "p0", "--classes", "1,0")
    assert fixed.returncode == 0 and fixed.stderr == "" and "positive class: 0" in fixed.stdout


def test_multiclass_columns_named_after_other_classes_warn(capsys):
    xent = functools.partial(main, capsys)
    args = ("score", os.path.join(ROOT, "examples/data/species_sample.csv"), "--label", "species", "--prob",
            "p_setosa", "p_versicolor", "p_virginica", "--classes")
    ok = xent(*args, "setosa,versicolor,virginica")
    assert ok.returncode == 0 and ok.stderr == ""
    bad = xent(*args, "versicolor,setosa,virginica")
    assert bad.returncode == 0
    named, rig = bad.stderr.splitlines()
    assert named == ("xent: warning: the prediction columns look named after other classes: `p_setosa` is read as "
                     "class 'versicolor', `p_versicolor` is read as class 'setosa' (columns are matched to --classes "
                     "by position)")
    assert rig.startswith("xent: warning: RIG is negative (") and "`p_setosa` -> 'versicolor'" in rig


def test_labels_outside_the_default_classes_suggest_classes(capsys, yes_no):
    xent = functools.partial(main, capsys)
    f, _, _ = yes_no
    err = fails(xent("score", f, "--label", "answer", "--prob", "p_yes"), "row 0", "column `answer`",
                "label 'no' is not in the class list [0, 1]")
    assert err.endswith("need --classes, e.g. --classes no,yes (binary: the positive class last)")
    err = fails(xent("score", f, "--label", "answer", "--prob", "p_yes", "--classes", "no,yess"), "label 'yes'")
    assert err.endswith("add it to --classes, or check the spelling of --classes")
