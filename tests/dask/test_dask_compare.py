"""`xent compare` on Dask: the local engine's numbers (1e-12) for any partitioning of either file set,
and the local engine's located errors (library and CLI)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from dask_data import assert_same_numbers, binary_frame, write_csv, write_parquet

import xent.dask
from xent.dask._compare import plan_pairs
from xent.scoring import ScoreInputError, ScoreSpec, compare

NUMBERS = ("a", "b", "verdict", "level", "models")


def _numbers(report) -> dict:
    d = report.to_dict()
    return {k: d[k] for k in (*NUMBERS, "delta", "delta_ci", "segments") if k in d}


def assert_same(got: dict, want: dict) -> None:
    """a, b and the rest to 1e-12 relative; a difference B - A (and its interval) to 1e-12 of the metric's
    own size: each of A and B may move by an ulp with the batching, and B - A can be far smaller than both."""
    assert_same_numbers({k: got[k] for k in NUMBERS if k in got}, {k: want[k] for k in NUMBERS if k in want})
    assert got["delta"].keys() == want["delta"].keys() and got["delta_ci"].keys() == want["delta_ci"].keys()
    assert got.get("segments", {}).keys() == want.get("segments", {}).keys()
    for col, segs in want.get("segments", {}).items():
        assert [s["value"] for s in got["segments"][col]] == [s["value"] for s in segs]
        for x, y in zip(got["segments"][col], segs):
            assert_same(x, y)
    for k, v in want["delta"].items():
        if v is None:
            assert got["delta"][k] is None, k
            continue
        scale = 1e-12 * max(abs(want["a"][k]), abs(want["b"][k]))
        assert abs(got["delta"][k] - v) <= scale, (k, got["delta"][k], v)
        for x, y in zip(got["delta_ci"].get(k, ()), want["delta_ci"].get(k, ())):
            assert abs(x - y) <= scale, (k, x, y)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cmp")
    cols = binary_frame(6000, seed=8, weights=True)
    rng = np.random.default_rng(9)
    cols["prob_b"] = np.clip(cols["prob"] + rng.normal(0, 0.05, 6000), 0.0, 1.0)
    cols["seg"] = rng.integers(0, 5, 6000)
    a = [write_parquet(d / "a1.parquet", {k: v[:3500] for k, v in cols.items()}, [1, 2000, 1499]),
         write_parquet(d / "a2.parquet", {k: v[3500:] for k, v in cols.items()}, [900, 1600])]
    b_cols = {"label": cols["label"], "prob": cols["prob_b"]}
    b = [write_parquet(d / "b1.parquet", {k: v[:1000] for k, v in b_cols.items()}, [1000]),
         write_parquet(d / "b2.parquet", {k: v[1000:] for k, v in b_cols.items()}, [3, 4000, 997])]
    csv = [write_csv(d / "b.csv", b_cols)]
    return a, b, csv, d


def test_same_numbers_as_local_for_any_split(files, dask_client):
    a, b, csv, _ = files
    spec = ScoreSpec(label="label", pred="prob", weight="w", by=("seg",))
    local_vs = _numbers(compare(a, spec, vs="prob_b"))
    assert len(local_vs["segments"]["seg"]) == 5 and local_vs["delta_ci"]
    local = _numbers(compare(a, spec, against=b))
    assert_same({**local, "models": None}, {**local_vs, "models": None})
    for rows in (2000, 1 << 22):
        tasks = plan_pairs(a, b, partition_rows=rows)
        assert len(tasks) == (3 if rows == 2000 else 2) and all(t.pieces for t in tasks)
        assert sum(p.rows for t in tasks for p in t.pieces) == 6000
    assert [len(t.pieces) for t in plan_pairs(a, b, partition_rows=2000)] == [2, 1, 1]
    # 3 partitions of A's row groups, each paired with rows cut out of B's differently grouped files
    got = xent.dask.compare(a, spec, against=b, client=dask_client, partition_rows=2000, split_every=2)
    assert got.engine == "dask"
    assert_same(_numbers(got), local)
    assert_same(_numbers(xent.dask.compare(a, spec, vs="prob_b", client=dask_client, partition_rows=1 << 22)),
                local_vs)
    # CSV on model B's side: row counts unknown up front, one partition pairs everything
    assert plan_pairs(a, csv, partition_rows=700)[0].part is None
    got = xent.dask.compare(a, spec, against=csv, client=dask_client, partition_rows=700)
    assert_same({**_numbers(got), "models": None}, {**local, "models": None})


def _both(fn):
    out = []
    for engine in ("local", "dask"):
        with pytest.raises(ScoreInputError) as info:
            fn(engine)
        out.append(str(info.value))
    assert out[0] == out[1], out
    return out[0]


def test_same_errors_as_local(files, dask_client, tmp_path):
    a, b, _, d = files
    spec = ScoreSpec(label="label", pred="prob", weight="w")

    def run(engine, against, **kw):
        if engine == "local":
            return compare(a, spec, against=against, **kw)
        return xent.dask.compare(a, spec, against=against, client=dask_client, partition_rows=700, **kw)

    err = _both(lambda e: run(e, b[:1]))
    assert err.startswith(f"{a[0]}: row 1000: --against ends after 1,000 rows")
    cols = binary_frame(6000, seed=8, weights=True)
    y = cols["label"].copy()
    y[4321] = 1 - y[4321]
    flipped = write_parquet(tmp_path / "flipped.parquet", {"label": y, "prob": cols["prob"]}, [3000, 3000])
    err = _both(lambda e: run(e, [flipped]))
    assert err.startswith(f"{a[1]}: row {4321 - 3500}, column `label`: label") and f"{flipped} row 4321" in err
    p = cols["prob"].copy()
    p[5000] = -0.5
    bad = write_parquet(tmp_path / "bad.parquet", {"label": cols["label"], "prob": p}, [6000])
    err = _both(lambda e: run(e, [bad]))
    assert err.startswith(f"{bad}: row 5000, column `prob`: probability -0.5 is outside [0, 1]")


def test_cli_on_a_cluster(files, dask_cluster):
    import json

    a, b, _, _ = files
    args = ["compare", *a, "--label", "label", "--prob", "prob", "--vs", "prob_b", "--by", "seg", "--json"]
    local = subprocess.run([sys.executable, "-m", "xent.cli", *args], capture_output=True, text=True, timeout=240)
    dask = subprocess.run([sys.executable, "-m", "xent.cli", *args, "--engine", "dask", "--scheduler",
                           dask_cluster.scheduler_address], capture_output=True, text=True, timeout=240)
    assert local.returncode == 0 and dask.returncode == 0, (local.stderr, dask.stderr)
    got, want = json.loads(dask.stdout), json.loads(local.stdout)
    assert (got["engine"], want["engine"]) == ("dask", "local")
    assert_same(got, want)
    proc = subprocess.run([sys.executable, "-m", "xent.cli", "compare", *a, "--label", "label", "--prob", "prob",
                           "--against", b[0], "--engine", "dask", "--scheduler", dask_cluster.scheduler_address],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert proc.stderr == f"xent: error: compare: {a[0]}: row 1000: --against ends after 1,000 rows; this row has " \
                          "no partner (the two file sets must hold the same rows in the same order)\n"
