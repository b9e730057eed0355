"""The Dask engine gives the local engine's numbers (to 1e-12 relative), whatever the
partitioning, on multi-file Parquet and CSV inputs; and the same located errors."""

from __future__ import annotations

import numpy as np
import pytest
from dask_data import (
    assert_same_numbers,
    binary_frame,
    metrics_of,
    multiclass_frame,
    write_csv,
    write_parquet,
)

import xent.dask
from xent.dask._plan import plan_parts
from xent.scoring import ScoreInputError, ScoreSpec
from xent.scoring import score as local_score


def _split(cols, sizes):
    out, start = [], 0
    for n in sizes:
        out.append({k: v[start:start + n] for k, v in cols.items()})
        start += n
    return out


@pytest.fixture(scope="module")
def binary_files(tmp_path_factory):
    """Three Parquet files with very uneven row groups (1 row to 3000 rows) and a CSV file."""
    d = tmp_path_factory.mktemp("binary")
    cols = binary_frame(9000, seed=1, weights=True)
    a, b, c, e = _split(cols, [3601, 7, 2392, 3000])
    return [
        write_parquet(d / "a.parquet", a, [1, 3000, 600]),
        write_parquet(d / "b.parquet", b, [7]),
        write_parquet(d / "c.parquet", c, [2000, 1, 1, 390]),
        write_csv(d / "d.csv", e),
    ]


@pytest.fixture(scope="module")
def multiclass_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("multi")
    cols = multiclass_frame(5000, seed=2)
    a, b, c = _split(cols, [2500, 13, 2487])
    return [
        write_parquet(d / "m1.parquet", a, [100, 2000, 400]),
        write_csv(d / "m2.csv", b),
        write_parquet(d / "m3.parquet", c, [2487]),
    ]


BINARY_SPECS = [
    ScoreSpec(label="label", pred="prob"),
    ScoreSpec(label="label", pred="prob", weight="w", n_bins=7),
]


@pytest.mark.parametrize("spec", BINARY_SPECS, ids=["plain", "weighted"])
@pytest.mark.parametrize("partition_rows", [1, 1000, 10**9], ids=["row-group-each", "mixed", "file-each"])
def test_binary_parquet_and_csv_match_local(dask_client, binary_files, spec, partition_rows):
    parts = plan_parts(binary_files, partition_rows=partition_rows)
    if partition_rows == 1:
        assert len(parts) == 3 + 1 + 4 + 1  # every row group alone, the CSV whole
    want = local_score(binary_files, spec)
    got = xent.dask.score(binary_files, spec, client=dask_client, partition_rows=partition_rows, split_every=2)
    assert got.engine == "dask"
    assert_same_numbers(metrics_of(got), metrics_of(want))
    assert got.result.rows == 9000


def test_multiclass_string_labels_weights_match_local(dask_client, multiclass_files):
    spec = ScoreSpec(label="label", pred=("p0", "p1", "p2", "p3"), classes=("c0", "c1", "c2", "c3"), weight="w")
    want = local_score(multiclass_files, spec)
    got = xent.dask.score(multiclass_files, spec, client=dask_client, partition_rows=150)
    assert_same_numbers(metrics_of(got), metrics_of(want))
    assert [row.rows for row in got.result.classes] == [row.rows for row in want.result.classes]


def test_multiclass_logits_match_local(dask_client, tmp_path):
    rng = np.random.default_rng(5)
    z = rng.normal(0, 3, (3000, 5))
    cols = {"y": rng.integers(0, 5, 3000), **{f"z{j}": z[:, j] for j in range(5)}}
    files = [write_parquet(tmp_path / f"l{i}.parquet", part, sizes)
             for i, (part, sizes) in enumerate(zip(_split(cols, [2999, 1]), [[1000, 999, 1000], [1]]))]
    spec = ScoreSpec(label="y", pred=tuple(f"z{j}" for j in range(5)), from_logits=True)
    assert_same_numbers(metrics_of(xent.dask.score(files, spec, client=dask_client, partition_rows=1)),
                        metrics_of(local_score(files, spec)))


@pytest.fixture(scope="module")
def dirty_files(tmp_path_factory):
    """Binary files with NaN, out-of-range probabilities and unknown labels in later row groups."""
    d = tmp_path_factory.mktemp("dirty")
    cols = binary_frame(4000, seed=3)
    cols["prob"] = cols["prob"].copy()
    cols["label"] = cols["label"].astype(np.int64)
    cols["prob"][[1500, 2600]] = np.nan
    cols["prob"][3100] = 1.5
    cols["label"][3999] = 7
    a, b = _split(cols, [2000, 2000])
    return [write_parquet(d / "x1.parquet", a, [1000, 1000]), write_parquet(d / "x2.parquet", b, [500, 1000, 500])]


def test_skip_policy_matches_local(dask_client, dirty_files):
    spec = ScoreSpec(label="label", pred="prob", on_invalid="skip")
    want = local_score(dirty_files, spec)
    got = xent.dask.score(dirty_files, spec, client=dask_client, partition_rows=1)
    assert sum(got.skipped.values()) == 4
    assert got.skipped == want.skipped
    assert_same_numbers(metrics_of(got), metrics_of(want))


def test_error_names_file_and_row_as_locally(dask_client, dirty_files):
    spec = ScoreSpec(label="label", pred="prob")
    with pytest.raises(ScoreInputError) as local_err:
        local_score(dirty_files, spec)
    with pytest.raises(ScoreInputError) as dask_err:
        xent.dask.score(dirty_files, spec, client=dask_client, partition_rows=1)
    assert str(dask_err.value) == str(local_err.value)
    # the first bad row in input order: file x1, row 1500 (row group 1 of 2)
    assert (dask_err.value.source, dask_err.value.row, dask_err.value.column) == (dirty_files[0], 1500, "prob")


def test_error_in_second_file_names_its_row(dask_client, dirty_files):
    spec = ScoreSpec(label="label", pred="prob")
    with pytest.raises(ScoreInputError) as local_err:
        local_score(dirty_files[1:], spec)
    with pytest.raises(ScoreInputError) as dask_err:
        xent.dask.score(dirty_files[1:], spec, client=dask_client, partition_rows=1)
    assert str(dask_err.value) == str(local_err.value)
    assert (dask_err.value.source, dask_err.value.row) == (dirty_files[1], 600)


def test_missing_column_and_corrupt_file_as_locally(dask_client, binary_files, tmp_path):
    spec = ScoreSpec(label="label", pred="nope")
    with pytest.raises(ScoreInputError) as local_err:
        local_score(binary_files[:1], spec)
    with pytest.raises(ScoreInputError) as dask_err:
        xent.dask.score(binary_files[:1], spec, client=dask_client)
    assert str(dask_err.value) == str(local_err.value)

    bad = tmp_path / "cut.parquet"
    bad.write_bytes(open(binary_files[0], "rb").read()[:-100])
    spec = ScoreSpec(label="label", pred="prob")
    with pytest.raises(ScoreInputError) as local_err:
        local_score([str(bad)], spec)
    with pytest.raises(ScoreInputError) as dask_err:
        xent.dask.score([str(bad)], spec, client=dask_client)
    assert str(dask_err.value) == str(local_err.value)


def test_empty_input_message_as_locally(dask_client, tmp_path):
    empty = write_parquet(tmp_path / "empty.parquet", {"label": np.zeros(0, np.int8), "prob": np.zeros(0)}, [0])
    spec = ScoreSpec(label="label", pred="prob")
    with pytest.raises(ScoreInputError) as local_err:
        local_score([empty], spec)
    with pytest.raises(ScoreInputError) as dask_err:
        xent.dask.score([empty], spec, client=dask_client)
    assert str(dask_err.value) == str(local_err.value)


def test_dask_dataframe_input(dask_client, binary_files):
    import dask.dataframe as dd
    import pandas as pd
    import pyarrow.parquet as pq

    frames = [pq.read_table(f).to_pandas() for f in binary_files[:3]]
    full = pd.concat(frames, ignore_index=True)
    ddf = dd.from_pandas(full, npartitions=7)
    spec = ScoreSpec(label="label", pred="prob", weight="w")
    got = xent.dask.score(ddf, spec, client=dask_client)
    want = local_score(binary_files[:3], spec)
    assert_same_numbers(metrics_of(got)["metrics"], metrics_of(want)["metrics"])


def test_scheduler_address_path(dask_cluster, binary_files):
    """Connect by address to a scheduler and workers started here on loopback."""
    assert dask_cluster.scheduler_address.startswith("tcp://127.0.0.1:")
    spec = BINARY_SPECS[1]
    got = xent.dask.score(binary_files, spec, scheduler=dask_cluster.scheduler_address)
    assert_same_numbers(metrics_of(got), metrics_of(local_score(binary_files, spec)))


def test_progress_bar_counts_every_row(dask_client, binary_files, capsys):
    spec = ScoreSpec(label="label", pred="prob")
    xent.dask.score(binary_files[:3], spec, client=dask_client, partition_rows=1, progress=True)
    err = capsys.readouterr().err
    assert "100.0%" in err and "6.0k rows" in err  # Parquet only: the total is known from the footers
    xent.dask.score(binary_files, spec, client=dask_client, progress=True)
    err = capsys.readouterr().err
    assert "9.0k rows" in err and "%" not in err  # with a CSV file: rows counted from finished partitions


def test_a_crash_that_is_not_bad_input_still_raises(dask_client):
    # Bad input comes back as a value (no worker log); any other exception must still surface.
    import dask.dataframe as dd
    import pandas as pd

    def crash(df):
        raise ZeroDivisionError("a real crash")

    frame = dd.from_pandas(pd.DataFrame({"label": [0, 1] * 10, "prob": [0.5] * 20}), npartitions=2)
    frame = frame.map_partitions(crash, meta=frame._meta)
    with pytest.raises(ZeroDivisionError, match="a real crash"):
        xent.dask.score(frame, ScoreSpec(label="label", pred="prob"), client=dask_client)
