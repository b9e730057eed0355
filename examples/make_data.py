"""Regenerate the small bundled example files in examples/data/ (deterministic).

    python examples/make_data.py

- ctr_sample.parquet: 5,000 ad impressions from a slightly over-confident click
  model: `clicked` (int8 0/1), `p_click` (float32), `weight` (float32, 1 to 3),
  `logit_click` (float32, the model's log-odds: p_click = sigmoid(logit_click)),
  `device` (string: mobile, desktop or tablet; NULL where unknown), a column to segment by.
- ab_clicks.parquet: the same 5,000 impressions scored by two models, for `xent compare`:
  `clicked`, `p_click` (model A, as in ctr_sample), `p_click_v2` (float32, model B: model A
  recalibrated by Platt scaling, so the same ranking) and `device` (as in ctr_sample).
- species_sample.csv: 1,500 rows of a 3-class classifier: `species` (string),
  `p_setosa`, `p_versicolor`, `p_virginica` (probabilities, 6 decimals).
- tokens_sample.parquet: 400 next-token predictions of a small language model over a
  vocabulary of 16 tokens: `token` (int16, the observed token) and `logits` (a list
  column of 16 float32 logits per row).
"""

from __future__ import annotations

import os

import numpy as np

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def _clicks(n: int) -> tuple[np.ndarray, ...]:
    """The impressions of ctr_sample: true log-odds z, clicks, the model's logit, p_click and weight."""
    rng = np.random.default_rng(2026)
    z = rng.normal(-2.0, 1.2, n)
    true_p = 1.0 / (1.0 + np.exp(-z))
    clicked = (rng.random(n) < true_p).astype(np.int8)
    logit = 1.15 * z + 0.25  # over-confident, over-predicting
    p_click = (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)
    weight = rng.integers(1, 4, n).astype(np.float32)  # e.g. repeated impressions
    return z, clicked, logit, p_click, weight


def _device(n: int) -> np.ndarray:
    """A column to segment by, drawn from a generator of its own: the other columns keep their values."""
    seg = np.random.default_rng(2027)
    device = seg.choice(np.array(["mobile", "desktop", "tablet"], dtype=object), n, p=[0.6, 0.3, 0.1])
    device[seg.random(n) < 0.02] = None
    return device


def ctr(path: str, n: int = 5000) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    _, clicked, logit, p_click, weight = _clicks(n)
    device = _device(n)
    table = pa.table({"clicked": clicked, "p_click": p_click, "weight": weight,
                      "logit_click": logit.astype(np.float32), "device": pa.array(device.tolist(), pa.string())})
    pq.write_table(table, path, compression="zstd")


def ab_clicks(path: str, n: int = 5000) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    _, clicked, logit, p_click, _ = _clicks(n)
    logit_v2 = (logit - 0.25) / 1.15  # model A recalibrated (Platt scaling): the same ranking
    table = pa.table({"clicked": clicked, "p_click": p_click,
                      "p_click_v2": (1.0 / (1.0 + np.exp(-logit_v2))).astype(np.float32),
                      "device": pa.array(_device(n).tolist(), pa.string())})
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


def tokens(path: str, n: int = 400, vocab: int = 16) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(11)
    z = rng.normal(0.0, 1.5, (n, vocab)).astype(np.float32)
    p = np.exp(z - z.max(axis=1, keepdims=True)).astype(np.float64)
    p /= p.sum(axis=1, keepdims=True)
    token = np.array([rng.choice(vocab, p=row) for row in p], dtype=np.int16)
    logits = pa.FixedSizeListArray.from_arrays(pa.array(z.ravel()), vocab).cast(pa.list_(pa.float32()))
    pq.write_table(pa.table({"token": token, "logits": logits}), path, compression="zstd")


if __name__ == "__main__":
    os.makedirs(HERE, exist_ok=True)
    ctr(os.path.join(HERE, "ctr_sample.parquet"))
    ab_clicks(os.path.join(HERE, "ab_clicks.parquet"))
    species(os.path.join(HERE, "species_sample.csv"))
    tokens(os.path.join(HERE, "tokens_sample.parquet"))
    for f in sorted(os.listdir(HERE)):
        print(f, os.path.getsize(os.path.join(HERE, f)), "bytes")
