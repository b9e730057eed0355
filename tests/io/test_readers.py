"""Readers and table -> state: paths, formats, batching, located errors, pandas partitions."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import log_loss

from xent.io import count_rows, expand_paths, file_format, iter_batches, state_from_table
from xent.metrics import BinaryState, MulticlassState
from xent.scoring import ScoreInputError, ScoreSpec, score

SPEC = ScoreSpec(label="y", pred=("p",))


def _table(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.random(n).astype(np.float32)
    return pa.table({"y": (rng.random(n) < p).astype(np.int8), "p": p, "w": rng.random(n)})


def test_expand_paths(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/1.parquet", "a/2.csv", "a/3.csv.gz", "a/4.parq", "a/5.CSV.BZ2", "a/skip.txt", "a/skip.gz",
                 "3.npz"):
        (tmp_path / name).write_bytes(b"")
    assert expand_paths(tmp_path / "a") == [str(tmp_path / f"a/{f}")
                                            for f in ("1.parquet", "2.csv", "3.csv.gz", "4.parq", "5.CSV.BZ2")]
    assert [file_format(f) for f in ("x.parq", "x.pq", "x.csv.gz", "x.csv.zst", "x.npz")] == [
        "parquet", "parquet", "csv", "csv", "npz"]
    with pytest.raises(ScoreInputError, match="unknown file type '.gz'"):
        expand_paths(tmp_path / "a/skip.gz")
    assert expand_paths(str(tmp_path / "**" / "*.parquet")) == [str(tmp_path / "a/1.parquet")]
    with pytest.raises(ScoreInputError, match="no file matches"):
        expand_paths(str(tmp_path / "*.csv"))
    with pytest.raises(ScoreInputError, match="unknown file type '.txt'"):
        expand_paths(tmp_path / "a/skip.txt")


def test_batches_threads_and_splits_agree(tmp_path):
    t = _table(5000)
    pq.write_table(t, tmp_path / "t.parquet", row_group_size=700)
    assert count_rows(str(tmp_path / "t.parquet")) == 5000
    for batch_rows, firsts in ((200, [0, 200, 400, 600, 700, 900]), (100, [0, 100, 200, 300, 400, 500]),
                               (700, [0, 700, 1400, 2100, 2800, 3500])):
        # row groups of at most batch_rows rows are read whole, larger ones in batches of batch_rows
        batches = list(iter_batches(str(tmp_path / "t.parquet"), SPEC, batch_rows=batch_rows))
        assert [b.first_row for b in batches][:6] == firsts
        assert max(b.num_rows for b in batches) <= batch_rows and sum(b.num_rows for b in batches) == 5000
    spec = SPEC.with_(weight="w")
    ref = score(tmp_path / "t.parquet", spec).result
    for kw in ({"threads": 1}, {"batch_rows": 37}, {"threads": 2, "batch_rows": 100}):
        got = score(tmp_path / "t.parquet", spec, **kw).result
        assert got.log_loss == pytest.approx(ref.log_loss, rel=1e-13)
        assert got.ece == pytest.approx(ref.ece, rel=1e-12)
    y, p, w = (t[c].to_numpy() for c in ("y", "p", "w"))
    eps = np.finfo(np.float32).eps
    assert ref.log_loss == pytest.approx(log_loss(y, np.clip(p.astype(float), eps, 1 - eps), sample_weight=w),
                                         rel=1e-12)


def test_state_from_pandas_dict_and_arrow_agree():
    t = _table(300)
    spec = SPEC.with_(weight="w")
    a = state_from_table(t, spec).compute()
    b = state_from_table(t.to_pandas(), spec).compute()
    c = state_from_table({k: t[k].to_numpy() for k in ("y", "p", "w")}, spec).compute()
    d = state_from_table(t.to_batches(max_chunksize=100)[1], spec)
    assert a == b == c and d.rows == 100
    # folding into an existing state is a merge
    s = BinaryState()
    for rb in t.to_batches(max_chunksize=64):
        state_from_table(rb, spec, state=s)
    assert s.compute().log_loss == pytest.approx(a.log_loss, rel=1e-13)


def test_errors_name_source_row_and_column():
    t = pa.table({"y": [0, 1, 1, 0], "p": [0.2, 0.4, 1.2, 0.1]})
    with pytest.raises(ScoreInputError) as exc:
        state_from_table(t, SPEC, source="part-7.parquet", first_row=1000)
    e = exc.value
    assert (e.source, e.row, e.column) == ("part-7.parquet", 1002, "p")
    assert str(e) == "part-7.parquet: row 1002, column `p`: probability 1.2 is outside [0, 1]"
    e2 = pickle.loads(pickle.dumps(e))  # crosses process boundaries (Dask workers) intact
    assert (str(e2), e2.row, e2.column) == (str(e), 1002, "p")
    with pytest.raises(ScoreInputError, match="column `label`: column not found"):
        state_from_table(pd.DataFrame({"p": [0.5]}), ScoreSpec(pred=("p",)))


def test_skip_policy_in_library():
    t = pa.table({"y": pa.array([0, 1, None, 1, 3], pa.int64()), "p": [0.2, np.nan, 0.5, 0.7, 0.5]})
    s = state_from_table(t, SPEC.with_(on_invalid="skip"))
    assert s.rows == 2
    assert s.skipped == {"missing or NaN prediction": 1, "missing label": 1, "label not in classes": 1}


def test_multiclass_columns_list_and_classes():
    rng = np.random.default_rng(2)
    z = rng.normal(size=(200, 3))
    P = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = rng.integers(0, 3, 200)
    cols = pa.table({"y": y, "a": P[:, 0], "b": P[:, 1], "c": P[:, 2], "lst": list(P)})
    by_cols = state_from_table(cols, ScoreSpec(label="y", pred=("a", "b", "c")))
    by_list = state_from_table(cols, ScoreSpec(label="y", pred=("lst",)))
    assert isinstance(by_list, MulticlassState) and by_list.num_classes == 3
    assert by_cols.compute().log_loss == pytest.approx(by_list.compute().log_loss, rel=1e-14)
    assert by_cols.compute().log_loss == pytest.approx(log_loss(y, P), rel=1e-12)
    # non-contiguous class codes: labels 10, 20, 30
    coded = cols.set_column(0, "y", pa.array((y + 1) * 10))
    s = state_from_table(coded, ScoreSpec(label="y", pred=("a", "b", "c"), classes=(10, 20, 30)))
    assert s.compute().log_loss == pytest.approx(log_loss(y, P), rel=1e-12)
    ragged = pa.table({"y": [0, 1], "lst": [[0.5, 0.5], [0.2, 0.3, 0.5]]})
    with pytest.raises(ScoreInputError, match="row 1, column `lst`: every row must hold a list of 2"):
        state_from_table(ragged, ScoreSpec(label="y", pred=("lst",)))


def test_spec_validation():
    with pytest.raises(ValueError, match="`on_invalid` must be one of 'error', 'skip'"):
        ScoreSpec(on_invalid="ignore")
    with pytest.raises(ValueError, match="`n_bins`"):
        ScoreSpec(n_bins=0)
    with pytest.raises(ValueError, match="one column per class"):
        ScoreSpec(pred=("a", "b"), classes=("x", "y", "z"))
    assert ScoreSpec(pred="p").pred == ("p",)
    assert pickle.loads(pickle.dumps(ScoreSpec(classes=["a", "b"]))) == ScoreSpec(classes=("a", "b"))


@pytest.mark.parametrize("labels, classes", [
    (pa.array(["no", "yes", "yes", "no"]), ("no", "yes")),
    (pa.array([False, True, True, False]), None),
    (pa.array([0.0, 1.0, 1.0, 0.0]), None),
    (pa.array([-1, 1, 1, -1]), (-1, 1)),
    (pa.array(["no", "yes", "yes", "no"]).dictionary_encode(), ("no", "yes")),
])
def test_binary_label_kinds(labels, classes):
    p = [0.2, 0.7, 0.9, 0.4]
    s = state_from_table(pa.table({"y": labels, "p": p}), ScoreSpec(label="y", pred=("p",), classes=classes))
    assert s.compute().log_loss == pytest.approx(log_loss([0, 1, 1, 0], p), rel=1e-12)
    bad = pa.table({"y": pa.array(["no", "maybe"]) if classes == ("no", "yes") else pa.array([0.5, 1.0]),
                    "p": [0.2, 0.3]})
    with pytest.raises(ScoreInputError, match="row [01], column `y`: label .* is not in the class list"):
        state_from_table(bad, ScoreSpec(label="y", pred=("p",), classes=classes))


def test_dask_plans_parquet_by_the_readers_list():
    from xent.dask._plan import PARQUET_SUFFIXES
    from xent.io._paths import FORMATS

    assert set(PARQUET_SUFFIXES) == {s for s, f in FORMATS.items() if f == "parquet"}


def _binary_csv_text(n=300, seed=3):
    y, p = (c.to_numpy() for c in _table(n, seed).select(["y", "p"]).columns)
    return y, p, "y,p\n" + "".join(f"{a},{b!r}\n" for a, b in zip(y, p.tolist()))


@pytest.mark.parametrize("codec", ["gzip", "bz2", "zstd", "lz4"])
def test_compressed_csv(tmp_path, codec):
    y, p, text = _binary_csv_text()
    ext = {"gzip": "gz", "bz2": "bz2", "zstd": "zst", "lz4": "lz4"}[codec]
    path = tmp_path / f"b.csv.{ext}"
    with pa.CompressedOutputStream(str(path), codec) as out:
        out.write(text.encode())
    (tmp_path / "b.csv").write_text(text)
    got = score(path, SPEC).result
    assert got.rows == len(y) and got == score(tmp_path / "b.csv", SPEC).result
    assert got.log_loss == pytest.approx(log_loss(y, np.clip(p.astype(float), 2.2e-16, 1 - 2.2e-16)), rel=1e-12)


def _first_error(path, spec=SPEC):
    with pytest.raises(ScoreInputError) as exc:
        score(path, spec)
    return exc.value


def test_csv_not_utf8_is_located(tmp_path):
    (tmp_path / "d.csv").write_bytes(b"y,p\n1,0.5\n0,0.25\n1,0.\xff5\n")
    e = _first_error(tmp_path / "d.csv")
    assert (e.row, e.column) == (2, "p") and "not UTF-8" in str(e) and "\\xff" in str(e)
    (tmp_path / "l.csv").write_bytes("y,p\nchat,0.5\nchien,0.25\n".encode("latin-1") + b"ch\xe8vre,0.1\n")
    e = _first_error(tmp_path / "l.csv", ScoreSpec(label="y", pred=("p",), classes=("chat", "chien")))
    assert (e.row, e.column) == (2, "y") and "not UTF-8" in str(e)
    (tmp_path / "h.csv").write_bytes("y,prob\u00e9\n1,0.5\n".encode("latin-1"))
    e = _first_error(tmp_path / "h.csv", ScoreSpec(label="y", pred=("prob\u00e9",)))
    assert e.row is None and "header is not UTF-8" in str(e)


def test_csv_repeated_column_name_is_an_error(tmp_path):
    (tmp_path / "r.csv").write_text("y,p,p\n1,0.5,0.9\n0,0.25,0.1\n")
    e = _first_error(tmp_path / "r.csv")
    assert e.column == "p" and "2 columns have this name" in str(e)
    (tmp_path / "ok.csv").write_text("y,p,y2,y2\n1,0.5,1,1\n0,0.25,0,0\n")
    assert score(tmp_path / "ok.csv", SPEC).result.rows == 2  # a repeated name not read is fine


def test_parquet_repeated_column_name_is_an_error(tmp_path):
    t = pa.Table.from_arrays([pa.array([0, 1]), pa.array([0.2, 0.7]), pa.array([0.3, 0.4])], names=["y", "p", "p"])
    pq.write_table(t, tmp_path / "r.parquet")
    e = _first_error(tmp_path / "r.parquet")
    assert (e.source, e.column) == (str(tmp_path / "r.parquet"), "p") and "2 columns have this name" in str(e)
    e = _first_error(tmp_path / "r.parquet", ScoreSpec(label="p", pred=("y",)))
    assert e.column == "p"


@pytest.mark.parametrize("threads", [1, 2])
def test_ragged_csv_row_is_located(tmp_path, threads):
    rows = [f"{i % 2},0.{i % 9 + 1}" for i in range(5000)]
    rows[3210] = "1,0.5,7"
    (tmp_path / "long.csv").write_text("y,p\n" + "\n".join(rows) + "\n")
    with pytest.raises(ScoreInputError) as exc:
        score(tmp_path / "long.csv", SPEC, threads=threads)
    e = exc.value
    assert (e.row, e.column) == (3210, None) and "expected 2 fields (y, p), got 3: '1,0.5,7'" in str(e)
    rows[3210] = "1"
    (tmp_path / "short.csv").write_text("y,p\n" + "\n".join(rows) + "\n")
    with pytest.raises(ScoreInputError) as exc:
        score(tmp_path / "short.csv", SPEC, threads=threads)
    assert (exc.value.row, exc.value.column) == (3210, "p") and "got 1" in str(exc.value)


_POOL_PEAK = r"""
import json, sys
import pyarrow as pa
from xent.io import iter_batches
from xent.scoring import ScoreSpec
rows = [b.num_rows for b in iter_batches(sys.argv[1], ScoreSpec(label="y", pred=("p",)), batch_rows=32768,
                                         use_threads=False)]
print(json.dumps({"peak": pa.default_memory_pool().max_memory(), "rows": rows}))
"""


def test_parquet_memory_follows_the_batch_not_the_row_group(tmp_path):
    # 4M rows (20 MB decoded) in 1 row group and in 32: reading either in 32k-row batches
    # peaks at a few MB of Arrow memory (the reader alone, in a fresh process; the rest is
    # the fixed read buffers), not at the size of a row group.
    import json
    import subprocess
    import sys

    n = 4_000_000
    rng = np.random.default_rng(0)
    t = pa.table({"y": (rng.random(n) < 0.3).astype(np.int8), "p": rng.random(n).astype(np.float32)})
    peaks = {}
    for groups in (1, 32):
        path = tmp_path / f"g{groups}.parquet"
        pq.write_table(t, path, row_group_size=n // groups)
        out = subprocess.run([sys.executable, "-c", _POOL_PEAK, str(path)], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr
        got = json.loads(out.stdout)
        assert max(got["rows"]) <= 32768 and sum(got["rows"]) == n
        peaks[groups] = got["peak"]
    assert peaks[1] < 0.4 * n * 5, peaks  # well under the row group's 20 MB
    assert peaks[1] < 3 * peaks[32], peaks


def test_csv_numbers_parsed_fast_then_as_text_from_the_first_odd_value(tmp_path, monkeypatch):
    # pyarrow parses the numbers; a label "1.0" (not an integer) or a padded probability later in the
    # file switches to reading text from there on: every row read once, in order, the same numbers.
    import xent.io._readers as readers

    monkeypatch.setattr(readers, "CSV_BLOCK", 4096)  # ~300 rows per batch
    rng = np.random.default_rng(4)
    n = 3000
    p = rng.random(n).round(6)
    y = (rng.random(n) < p).astype(int)
    rows = [f"{a},{b}" for a, b in zip(y, p)]
    rows[2500] = f"{float(y[2500])},{p[2500]}"
    rows[2800] = f"{y[2800]}, {p[2800]} "
    (tmp_path / "m.csv").write_text("y,p\n" + "\n".join(rows) + "\n")
    batches = list(iter_batches(str(tmp_path / "m.csv"), SPEC))
    firsts = [b.first_row for b in batches]
    assert len(batches) > 5 and firsts == sorted(set(firsts)) and firsts[0] == 0
    assert [f + b.num_rows for f, b in zip(firsts, batches)][:-1] == firsts[1:]
    assert sum(b.num_rows for b in batches) == n
    got = score(tmp_path / "m.csv", SPEC).result
    assert got.rows == n
    assert got.log_loss == pytest.approx(log_loss(y, np.clip(p, 2.2e-16, 1 - 2.2e-16)), rel=1e-12)
    names = ScoreSpec(label="y", pred=("p",), classes=("no", "yes"))
    (tmp_path / "s.csv").write_text("y,p\n" + "\n".join(f"{'yes' if a else 'no'},{b}" for a, b in zip(y, p)) + "\n")
    assert score(tmp_path / "s.csv", names).result.log_loss == pytest.approx(got.log_loss, rel=1e-12)
