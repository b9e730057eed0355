"""`xent score --by/--ci/--top/--max-segments`: JSON and tables against pandas group-by, and every bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from xent.cli import main


@pytest.fixture(scope="module")
def seg_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    n = 3000
    country = rng.choice(["fr", "de", "us", "jp", "br"], n, p=[0.4, 0.3, 0.15, 0.1, 0.05]).astype(object)
    country[rng.random(n) < 0.03] = None
    shard = rng.integers(0, 3, n).astype(np.int32)
    p = 1 / (1 + np.exp(-rng.normal(-1, 1.5, n)))
    y = (rng.random(n) < p).astype(np.int8)
    w = rng.uniform(0.5, 2, n)
    path = tmp_path_factory.mktemp("seg") / "s.parquet"
    pq.write_table(pa.table({"y": y, "p": p, "w": w, "country": pa.array(country.tolist(), pa.string()),
                             "shard": shard, "score": p.astype(np.float32)}), path, row_group_size=700)
    df = pd.DataFrame({"y": y, "p": p, "w": w, "country": country, "shard": shard})
    return str(path), df


def run(capsys, *argv):
    code = main(["score", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_segments_equal_pandas_groupby(capsys, seg_file):
    path, df = seg_file
    code, out, _ = run(capsys, path, "--label", "y", "--prob", "p", "--weight", "w", "--by", "country", "--by",
                       "shard", "--ci", "0.9", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["metrics"]["roc_auc"] == pytest.approx(roc_auc_score(df.y, df.p, sample_weight=df.w),
                                                    abs=d["metrics"]["roc_auc_error_bound"])
    ci = d["metrics"]["ci"]
    assert ci["level"] == 0.9 and ci["seed"] == 0 and ci["replicates"] == 1000 and "bootstrap" in ci["method"]
    for k in ("log_loss", "normalized_entropy", "brier", "accuracy", "calibration_ratio_pred_over_obs", "ece",
              "roc_auc"):
        lo, hi = ci[k]
        assert lo <= hi
    assert ci["log_loss"][0] < d["metrics"]["log_loss"] < ci["log_loss"][1]
    for col in ("country", "shard"):
        segs = d["segments"][col]
        key = df[col].where(df[col].notna(), None)
        assert len(segs) == key.nunique(dropna=False)
        weights = [s["metrics"]["weight"] for s in segs]
        assert weights == sorted(weights, reverse=True)  # largest weight first
        for s in segs:
            sub = df[key.isna()] if s["value"] is None else df[key == s["value"]]
            m = s["metrics"]
            assert m["rows"] == len(sub) and m["weight"] == pytest.approx(sub.w.sum(), rel=1e-12)
            assert m["log_loss"] == pytest.approx(log_loss(sub.y, sub.p, sample_weight=sub.w), rel=1e-10)
            assert abs(m["roc_auc"] - roc_auc_score(sub.y, sub.p, sample_weight=sub.w)) <= m["roc_auc_error_bound"]
            assert set(m) >= {"normalized_entropy", "calibration_ratio_pred_over_obs", "brier", "ece", "ci"}
            assert m["ci"]["log_loss"][0] <= m["log_loss"] <= m["ci"]["log_loss"][1]
    assert isinstance(d["segments"]["shard"][0]["value"], int)
    assert any(s["value"] is None for s in d["segments"]["country"])  # NULL is a segment of its own


def test_table_per_column_top_and_overall_row(capsys, seg_file):
    path, _ = seg_file
    code, out, _ = run(capsys, path, "--label", "y", "--prob", "p", "--by", "country", "--top", "2", "--ci", "0.95")
    assert code == 0
    assert "by country (6 segments, the 2 of largest weight shown" in out
    block = out.split("by country")[1].split("\n\n")[0].splitlines()
    assert block[3].startswith("(all)") and block[4].startswith("fr") and block[5].startswith("de")
    assert len(block) == 6  # title, header, rule, overall, 2 segments
    assert "95% CI" in out and "ROC AUC" in out and "CI: bootstrap percentile over 64 hash buckets" in out


def test_same_numbers_for_any_batch_size(seg_file):
    from xent.scoring import ScoreSpec, score

    path, _ = seg_file
    spec = ScoreSpec(label="y", pred="p", by=("country",), ci=0.95, ci_replicates=200, ci_segment_replicates=50)
    a = score(path, spec).to_dict()
    b = score(path, spec, batch_rows=333, threads=1).to_dict()
    for k in ("metrics", "segments"):
        assert json.dumps(a[k]) == json.dumps(b[k]) or _close(a[k], b[k])


def _close(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a == pytest.approx(b, rel=1e-12)
    return a == b


def _fails(capsys, argv, *parts):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and err.startswith("xent: error: ") and err.count("\n") == 1, err
    for part in parts:
        assert part in err, (part, err)


@pytest.mark.parametrize("engine", [[], ["--engine", "dask"]])
def test_bad_options_exit_2_on_one_line(capsys, seg_file, engine):
    path, _ = seg_file
    base = [path, "--label", "y", "--prob", "p", *engine]
    for level in ("1.5", "0", "1", "-0.2", "abc"):
        _fails(capsys, [*base, "--ci", level], "--ci", "must be a confidence level in (0, 1)", repr(level))
    for opt in ("--top", "--max-segments"):
        for bad in ("0", "-3", "x"):
            _fails(capsys, [*base, opt, bad], opt, "must be a positive integer")


def test_bad_segment_columns_name_file_row_and_column(capsys, seg_file):
    path, _ = seg_file
    base = [path, "--label", "y", "--prob", "p"]
    _fails(capsys, [*base, "--by", "nope"], path, "column `nope`", "column not found")
    _fails(capsys, [*base, "--by", "score"], path, "column `score`", "--by needs a string or integer column",
           "type float", "too many distinct values")
    _fails(capsys, [*base, "--by", "country", "--max-segments", "3"], path, "column `country`",
           "more than 3 distinct values (--max-segments)", "row ")
    _fails(capsys, [*base, "--by", "shard", "--by", "shard"], "--by must not repeat a column")
