"""`xent score` on files that used to end in tracebacks: one located line on stderr and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def _fails(path: str, *parts: str, args: tuple[str, ...] = ("--label", "y", "--prob", "p")) -> None:
    proc = subprocess.run([sys.executable, "-m", "xent.cli", "score", path, *args], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, COLUMNS="100"))
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    err = proc.stderr.strip()
    assert err.startswith("xent: error: ") and "\n" not in err and "Traceback" not in proc.stderr, proc.stderr
    for part in parts:
        assert part in err, (part, err)


@pytest.mark.parametrize("kind", ["csv-not-utf8", "parquet-repeated-column"])
def test_bad_files_end_in_one_located_line(tmp_path, kind):
    if kind == "csv-not-utf8":
        (tmp_path / "x.csv").write_bytes(b"y,p\n1,0.5\n0,0.25\n1,0.\xff5\n")
        _fails(str(tmp_path / "x.csv"), "x.csv: row 2, column `p`", "not UTF-8")
    else:
        t = pa.Table.from_arrays([pa.array([0, 1]), pa.array([0.2, 0.7]), pa.array([0.3, 0.4])], names=["y", "p", "p"])
        pq.write_table(t, tmp_path / "x.parquet")
        _fails(str(tmp_path / "x.parquet"), "x.parquet: column `p`", "2 columns have this name")
