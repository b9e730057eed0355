"""Readers and table -> state: paths, formats, batching, located errors, pandas partitions."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import log_loss

from xent.io import count_rows, expand_paths, iter_batches, state_from_table
from xent.metrics import BinaryState, MulticlassState
from xent.scoring import ScoreInputError, ScoreSpec, score

SPEC = ScoreSpec(label="y", pred=("p",))


def _table(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.random(n).astype(np.float32)
    return pa.table({"y": (rng.random(n) < p).astype(np.int8), "p": p, "w": rng.random(n)})


def test_expand_paths(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("a/1.parquet", "a/2.csv", "a/skip.txt", "3.npz"):
        (tmp_path / name).write_bytes(b"")
    assert expand_paths(tmp_path / "a") == [str(tmp_path / "a/1.parquet"), str(tmp_path / "a/2.csv")]
    assert expand_paths(str(tmp_path / "**" / "*.parquet")) == [str(tmp_path / "a/1.parquet")]
    with pytest.raises(ScoreInputError, match="no file matches"):
        expand_paths(str(tmp_path / "*.csv"))
    with pytest.raises(ScoreInputError, match="unknown file type '.txt'"):
        expand_paths(tmp_path / "a/skip.txt")


def test_batches_threads_and_splits_agree(tmp_path):
    t = _table(5000)
    pq.write_table(t, tmp_path / "t.parquet", row_group_size=700)
    assert count_rows(str(tmp_path / "t.parquet")) == 5000
    firsts = [b.first_row for b in iter_batches(str(tmp_path / "t.parquet"), SPEC, batch_rows=200)]
    assert firsts[:3] == [0, 700, 1400]  # whole row groups (<= 4 batches each)
    small = [b.first_row for b in iter_batches(str(tmp_path / "t.parquet"), SPEC, batch_rows=100)]
    assert small[:8] == [0, 100, 200, 300, 400, 500, 600, 700]  # larger groups are streamed
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
