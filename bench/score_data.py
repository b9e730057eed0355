"""Deterministic benchmark files for bench/score.py (written to bench/data/, gitignored).

binary_{N}.parquet: int8 `label`, float32 `prob` (p = sigmoid(z), z ~ N(-1, 1.5); y ~ Bernoulli(p)).
binary_{N}.csv: the same rows as text (pyarrow's CSV writer: shortest round-trip float32 digits).
multi10_{N}.parquet: int8 `label`, float32 `p0`..`p9` (softmax of N(0, 1.5) logits; y ~ Categorical(p)).
segments_{N}.parquet: binary_{N}'s columns plus int32 `seg`, 1,000 segments of Zipf-like sizes
  (segment s has weight ~ 1 / (s + 10)), the model's logit shifted by a per-segment offset.
"""

from __future__ import annotations

import os
import sys

import numpy as np

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
CHUNK = 5_000_000


def binary(n: int) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = os.path.join(DATA, f"binary_{n // 1_000_000}M.parquet")
    if os.path.exists(path):
        return path
    os.makedirs(DATA, exist_ok=True)
    schema = pa.schema([("label", pa.int8()), ("prob", pa.float32())])
    with pq.ParquetWriter(path + ".tmp", schema) as w:
        for i, start in enumerate(range(0, n, CHUNK)):
            rng = np.random.default_rng([7, i])
            m = min(CHUNK, n - start)
            p = (1.0 / (1.0 + np.exp(-rng.normal(-1.0, 1.5, m)))).astype(np.float32)
            y = (rng.random(m) < p).astype(np.int8)
            w.write_table(pa.table({"label": y, "prob": p}, schema=schema), row_group_size=1 << 20)
    os.replace(path + ".tmp", path)
    return path


def multiclass(n: int, k: int = 10) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = os.path.join(DATA, f"multi{k}_{n // 1_000_000}M.parquet")
    if os.path.exists(path):
        return path
    os.makedirs(DATA, exist_ok=True)
    names = [f"p{c}" for c in range(k)]
    schema = pa.schema([("label", pa.int8())] + [(c, pa.float32()) for c in names])
    with pq.ParquetWriter(path + ".tmp", schema) as w:
        for i, start in enumerate(range(0, n, CHUNK)):
            rng = np.random.default_rng([11, i])
            m = min(CHUNK, n - start)
            z = rng.normal(0.0, 1.5, (m, k))
            e = np.exp(z - z.max(axis=1, keepdims=True))
            P = e / e.sum(axis=1, keepdims=True)
            y = (rng.random(m)[:, None] > np.cumsum(P, axis=1)).sum(axis=1).clip(0, k - 1).astype(np.int8)
            cols = {"label": y, **{c: P[:, j].astype(np.float32) for j, c in enumerate(names)}}
            w.write_table(pa.table(cols, schema=schema), row_group_size=1 << 20)
    os.replace(path + ".tmp", path)
    return path


def segments(n: int, k: int = 1000) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = os.path.join(DATA, f"segments_{n // 1_000_000}M.parquet")
    if os.path.exists(path):
        return path
    os.makedirs(DATA, exist_ok=True)
    schema = pa.schema([("label", pa.int8()), ("prob", pa.float32()), ("seg", pa.int32())])
    sizes = 1.0 / (np.arange(k) + 10.0)
    offsets = np.random.default_rng(13).normal(0.0, 0.5, k)
    with pq.ParquetWriter(path + ".tmp", schema) as w:
        for i, start in enumerate(range(0, n, CHUNK)):
            rng = np.random.default_rng([13, i])
            m = min(CHUNK, n - start)
            seg = rng.choice(k, m, p=sizes / sizes.sum()).astype(np.int32)
            p = (1.0 / (1.0 + np.exp(-rng.normal(-1.0, 1.5, m) - offsets[seg]))).astype(np.float32)
            y = (rng.random(m) < p).astype(np.int8)
            w.write_table(pa.table({"label": y, "prob": p, "seg": seg}, schema=schema), row_group_size=1 << 20)
    os.replace(path + ".tmp", path)
    return path


def binary_csv(n: int) -> str:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    path = os.path.join(DATA, f"binary_{n // 1_000_000}M.csv")
    if os.path.exists(path):
        return path
    source = pq.ParquetFile(binary(n))
    with pcsv.CSVWriter(path + ".tmp", source.schema_arrow) as w:
        for batch in source.iter_batches(batch_size=CHUNK):
            w.write_batch(batch)
    os.replace(path + ".tmp", path)
    return path


if __name__ == "__main__":
    makers = {"binary": binary, "multi": multiclass, "csv": binary_csv, "segments": segments}
    for arg in sys.argv[1:] or ["binary:10", "binary:100", "multi:10", "csv:10"]:
        kind, millions = arg.split(":")
        print(makers[kind](int(millions) * 1_000_000))
