"""Data helpers for the Dask engine tests: multi-file prediction fixtures (Parquet with
uneven row groups, CSV) and a recursive report comparison."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def binary_frame(n: int, seed: int, *, weights: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = 1.0 / (1.0 + np.exp(-rng.normal(-0.5, 2.0, n)))
    y = (rng.random(n) < p).astype(np.int8)
    cols = {"label": y, "prob": p}
    if weights:
        cols["w"] = rng.exponential(1.0, n)
    return cols


def multiclass_frame(n: int, seed: int, k: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, (n, k))
    P = np.exp(z - z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    y = np.minimum((rng.random(n)[:, None] > np.cumsum(P, axis=1)).sum(axis=1), k - 1)
    cols: dict[str, np.ndarray] = {"label": np.array([f"c{v}" for v in y])}
    cols.update({f"p{j}": P[:, j] for j in range(k)})
    cols["w"] = rng.uniform(0.0, 3.0, n)
    return cols


def write_parquet(path: Any, cols: dict[str, np.ndarray], row_groups: list[int]) -> str:
    """Write ``cols`` with row groups of the given (uneven) sizes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(cols)
    assert sum(row_groups) == table.num_rows
    with pq.ParquetWriter(str(path), table.schema) as w:
        start = 0
        for n in row_groups:
            w.write_table(table.slice(start, n), row_group_size=max(n, 1))
            start += n
    return str(path)


def write_csv(path: Any, cols: dict[str, np.ndarray]) -> str:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    pcsv.write_csv(pa.table(cols), str(path))
    return str(path)


def assert_same_numbers(a: Any, b: Any, *, rtol: float = 1e-12, where: str = "report") -> None:
    """Recursive equality of two ``to_dict()`` trees; floats to ``rtol`` relative."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same_numbers(a[k], b[k], rtol=rtol, where=f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_numbers(x, y, rtol=rtol, where=f"{where}[{i}]")
    elif isinstance(a, float) and not isinstance(b, bool) and isinstance(b, (int, float)):
        assert (math.isnan(a) and math.isnan(b)) or a == b or math.isclose(a, b, rel_tol=rtol, abs_tol=0.0), (
            f"{where}: {a!r} != {b!r}")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def metrics_of(report: Any) -> dict[str, Any]:
    d = report.to_dict()
    return {"metrics": d["metrics"], "skipped_rows": d["skipped_rows"], "files": d["files"], "spec": d["spec"]}
