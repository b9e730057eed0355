"""`xent score --engine dask` as a subprocess: same JSON as the local engine, same errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from dask_data import assert_same_numbers, binary_frame, write_csv, write_parquet


def xent_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xent.cli", *args], capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    cols = binary_frame(3000, seed=21, weights=True)
    a = {k: v[:2000] for k, v in cols.items()}
    b = {k: v[2000:] for k, v in cols.items()}
    return [write_parquet(d / "a.parquet", a, [10, 1500, 490]), write_csv(d / "b.csv", b)]


def _numbers(stdout: str) -> dict:
    d = json.loads(stdout)
    return {k: d[k] for k in ("metrics", "skipped_rows", "files", "spec")}


def test_cli_workers_json_equals_local(files):
    local = xent_cli("score", *files, "--weight", "w", "--json")
    dask = xent_cli("score", *files, "--weight", "w", "--json", "--engine", "dask", "--workers", "2")
    assert local.returncode == 0, local.stderr
    assert dask.returncode == 0, dask.stderr
    assert json.loads(dask.stdout)["engine"] == "dask"
    assert_same_numbers(_numbers(dask.stdout), _numbers(local.stdout))


def test_cli_scheduler_address_and_located_error(dask_cluster, files, tmp_path):
    addr = dask_cluster.scheduler_address
    ok = xent_cli("score", *files, "--json", "--engine", "dask", "--scheduler", addr)
    assert ok.returncode == 0, ok.stderr
    assert_same_numbers(_numbers(ok.stdout), _numbers(xent_cli("score", *files, "--json").stdout))

    cols = binary_frame(500, seed=4)
    cols["prob"] = cols["prob"].copy()
    cols["prob"][321] = 1.25
    bad = write_parquet(tmp_path / "bad.parquet", cols, [100, 100, 300])
    local = xent_cli("score", files[0], bad)
    dask = xent_cli("score", files[0], bad, "--engine", "dask", "--scheduler", addr)
    assert (local.returncode, dask.returncode) == (2, 2)
    assert dask.stderr == local.stderr
    assert dask.stderr.count("\n") == 1 and "Traceback" not in dask.stderr
    assert f"{bad}: row 321, column `prob`" in dask.stderr


def test_cli_workers_located_errors_are_the_local_single_line(files, tmp_path):
    # Several bad partitions (two Parquet row groups, then a CSV file) on a LocalCluster that xent owns:
    # its workers print to this terminal, and must print nothing for bad input.
    cols = binary_frame(600, seed=8)
    cols["prob"] = cols["prob"].copy()
    cols["prob"][[150, 420]] = [1.5, -0.25]
    bad = write_parquet(tmp_path / "bad.parquet", cols, [100, 100, 200, 200])
    csv_cols = binary_frame(50, seed=9)
    csv_cols["prob"] = csv_cols["prob"].copy()
    csv_cols["prob"][7] = float("nan")
    bad_csv = write_csv(tmp_path / "bad.csv", csv_cols)
    args = ("score", files[0], bad, bad_csv)
    local = xent_cli(*args)
    dask = xent_cli(*args, "--engine", "dask", "--workers", "2")
    assert (local.returncode, dask.returncode) == (2, 2)
    assert local.stderr == f"xent: error: {bad}: row 150, column `prob`: probability 1.5 is outside [0, 1]\n"
    assert dask.stderr == local.stderr and dask.stdout == ""
