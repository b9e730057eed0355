"""`--by` and `--ci` on the Dask engine: the local engine's numbers (1e-12) and errors, whatever the partitioning."""

from __future__ import annotations

import numpy as np
import pytest
from dask_data import assert_same_numbers, binary_frame, write_csv, write_parquet

import xent.dask
from xent.scoring import ScoreInputError, ScoreSpec
from xent.scoring import score as local_score


@pytest.fixture(scope="module")
def seg_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("segments")
    cols = binary_frame(6000, seed=3, weights=True)
    rng = np.random.default_rng(4)
    seg = rng.choice(["a", "b", "c", "d", "e"], 6000).astype(object)
    seg[rng.random(6000) < 0.05] = None
    cols["seg"] = seg
    cols["f"] = rng.random(6000)
    part = lambda a, b: {k: v[a:b] for k, v in cols.items()}  # noqa: E731
    return [write_parquet(d / "a.parquet", part(0, 3500), [1, 2000, 1499]),
            write_csv(d / "b.csv", part(3500, 4000)),
            write_parquet(d / "c.parquet", part(4000, 6000), [7, 1993])]


@pytest.mark.parametrize("partition_rows", [1, 10**9], ids=["row-group-each", "file-each"])
def test_segments_and_intervals_match_local(dask_client, seg_files, partition_rows):
    spec = ScoreSpec(label="label", pred="prob", weight="w", by=("seg",), ci=0.95, ci_replicates=300,
                     ci_segment_replicates=100)
    want = local_score(seg_files, spec).to_dict()
    got = xent.dask.score(seg_files, spec, client=dask_client, partition_rows=partition_rows, split_every=2).to_dict()
    assert_same_numbers(got["metrics"], want["metrics"])  # AUC, its bound and every CI included
    assert_same_numbers(got["segments"], want["segments"])
    assert len(got["segments"]["seg"]) == 6 and "ci" in got["metrics"]


def test_segment_errors_as_locally(dask_client, seg_files):
    for by, part in ((("f",), "--by needs a string or integer column"), (("nope",), "column not found")):
        spec = ScoreSpec(label="label", pred="prob", by=by)
        with pytest.raises(ScoreInputError) as local:
            local_score(seg_files, spec)
        with pytest.raises(ScoreInputError) as remote:
            xent.dask.score(seg_files, spec, client=dask_client)
        assert part in str(local.value) and str(remote.value) == str(local.value)
    spec = ScoreSpec(label="label", pred="prob", by=("seg",), max_segments=2)
    with pytest.raises(ScoreInputError, match="more than 2 distinct values"):
        xent.dask.score(seg_files, spec, client=dask_client)
