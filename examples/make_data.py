"""Regenerate the small bundled example files in examples/data/ (deterministic).

    python examples/make_data.py

- ctr_sample.parquet: 5,000 ad impressions from a slightly over-confident click
  model: `clicked` (int8 0/1), `p_click` (float32), `weight` (float32, 1 to 3).
- species_sample.csv: 1,500 rows of a 3-class classifier: `species` (string),
  `p_setosa`, `p_versicolor`, `p_virginica` (probabilities, 6 decimals).
"""

from __future__ import annotations

import os

import numpy as np

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def ctr(path: str, n: int = 5000) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(2026)
    z = rng.normal(-2.0, 1.2, n)
    true_p = 1.0 / (1.0 + np.exp(-z))
    clicked = (rng.random(n) < true_p).astype(np.int8)
    p_click = (1.0 / (1.0 + np.exp(-(1.15 * z + 0.25)))).astype(np.float32)  # over-confident, over-predicting
    weight = rng.integers(1, 4, n).astype(np.float32)  # e.g. repeated impressions
    table = pa.table({"clicked": clicked, "p_click": p_click, "weight": weight})
    pq.write_table(table, path, compression="zstd")


def species(path: str, n: int = 1500) -> None:
    rng = np.random.default_rng(7)
    names = ["setosa", "versicolor", "virginica"]
    z = rng.normal(0.0, 2.0, (n, 3))
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p])
    p = np.round(p, 6)
    p[:, 2] = np.round(1.0 - p[:, 0] - p[:, 1], 6)  # rows sum to 1 up to float rounding
    with open(path, "w", newline="") as f:
        f.write("species,p_setosa,p_versicolor,p_virginica\n")
        for label, row in zip(y, p):
            f.write(f"{names[label]},{row[0]:.6f},{row[1]:.6f},{row[2]:.6f}\n")


if __name__ == "__main__":
    os.makedirs(HERE, exist_ok=True)
    ctr(os.path.join(HERE, "ctr_sample.parquet"))
    species(os.path.join(HERE, "species_sample.csv"))
    for f in sorted(os.listdir(HERE)):
        print(f, os.path.getsize(os.path.join(HERE, f)), "bytes")
