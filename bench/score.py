"""Benchmark `xent score` against Polars, DuckDB, scikit-learn and the pyarrow decode floor.

Run (never concurrently with another benchmark):

    flock /tmp/xent-bench.lock .venv/bin/python bench/score.py [--reps 3]

Generates (once, deterministic) bench/data/binary_10M.parquet, binary_100M.parquet
(int8 label, float32 prob) and multi10_10M.parquet (int8 label, float32 p0..p9),
see bench/score_data.py. Each measurement runs in its own fresh process: one
warm-up, then the best of --reps runs, and that process's peak RSS. Times are
in-process (file to numbers, no interpreter start-up); xent computes every
metric (log loss, NE, Brier, accuracy, calibration, 15 reliability bins,
per-class tables), the peers only the clipped log loss, each in the fastest
formulation we found for it. sklearn gets the same
clipping: predictions are clipped at float32 eps in float64 before the call.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from score_data import binary, multiclass  # noqa: E402

EPS32 = 1.1920928955078125e-07

CHILD = r'''
import json, resource, sys, time
kind, tool, path, reps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
EPS = %r
K = 10

def xent_run():
    from xent.scoring import ScoreSpec, score
    spec = ScoreSpec(label="label", pred=("prob",)) if kind == "binary" else ScoreSpec(label="label", pred=tuple(f"p{c}" for c in range(K)))
    d = score(path, spec).result
    return {"log_loss": d.log_loss, "brier": d.brier, "ece": d.ece, "accuracy": d.accuracy}

def polars_run():
    import polars as pl
    if kind == "binary":
        # the fastest of the formulations tried (when/then was 2-3x slower in Polars 2.1)
        p = pl.col("prob").cast(pl.Float64).clip(EPS, 1 - EPS)
        y = pl.col("label").cast(pl.Float64)
        loss = -(y * p.log() + (1 - y) * (1 - p).log())
    else:
        py = pl.coalesce([pl.when(pl.col("label") == c).then(pl.col(f"p{c}")) for c in range(K)]).cast(pl.Float64)
        loss = -py.clip(EPS, 1 - EPS).log()
    out = pl.scan_parquet(path).select(loss.mean().alias("ll")).collect(engine="streaming")
    return {"log_loss": out["ll"][0]}

def duckdb_run():
    import duckdb
    if kind == "binary":
        c = "greatest(least(prob::DOUBLE, 1 - %%r), %%r)" %% (EPS, EPS)
        # one log per row: the fastest of the formulations tried in DuckDB
        sql = f"SELECT -avg(ln(CASE WHEN label = 1 THEN {c} ELSE 1 - {c} END)) FROM read_parquet('{path}')"
    else:
        py = "CASE label " + " ".join(f"WHEN {c} THEN p{c}" for c in range(K)) + " END"
        sql = f"SELECT avg(-ln(greatest(least(({py})::DOUBLE, 1 - {EPS!r}), {EPS!r}))) FROM read_parquet('{path}')"
    return {"log_loss": duckdb.sql(sql).fetchall()[0][0]}

def decode_run():
    import pyarrow.parquet as pq
    n = 0
    for b in pq.ParquetFile(path).iter_batches(batch_size=1 << 20, use_threads=True):
        n += b.num_rows
    return {"rows": n}

def sklearn_run():
    import numpy as np, pyarrow.parquet as pq
    from sklearn.metrics import brier_score_loss, log_loss
    t0 = time.perf_counter()
    t = pq.read_table(path)
    y = t["label"].to_numpy()
    if kind == "binary":
        p = t["prob"].to_numpy().astype(np.float64)
    else:
        p = np.stack([t[f"p{c}"].to_numpy() for c in range(K)], axis=1).astype(np.float64)
    load = time.perf_counter() - t0
    brier = brier_score_loss(y, p) if kind == "binary" else brier_score_loss(y, p, labels=list(range(K)))
    pc = np.clip(p, EPS, 1 - EPS)  # the same clipping as xent's eps="auto" for float32 columns
    t1 = time.perf_counter()
    ll = log_loss(y, pc, labels=list(range(2 if kind == "binary" else K)))
    return {"log_loss": ll, "brier": brier, "load_s": load, "log_loss_s": time.perf_counter() - t1}

fn = {"xent": xent_run, "polars": polars_run, "duckdb": duckdb_run, "decode": decode_run, "sklearn": sklearn_run}[tool]
out = fn()  # warm-up (also compiles/loads xent's cached kernels)
best = float("inf")
for _ in range(reps):
    t = time.perf_counter(); out = fn(); best = min(best, time.perf_counter() - t)
out["seconds"] = best
out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
''' % EPS32


def measure(kind: str, tool: str, path: str, reps: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, kind, tool, path, str(reps)], capture_output=True, text=True)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--skip-100m", action="store_true", help="only the 10M files (quick)")
    args = ap.parse_args()
    files = [("binary", binary(10_000_000), 10_000_000)]
    if not args.skip_100m:
        files.append(("binary", binary(100_000_000), 100_000_000))
    files.append(("multiclass", multiclass(10_000_000), 10_000_000))
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}; best of {args.reps} after a warm-up")
    print()
    print("| file | tool | what | time (s) | Mrows/s | vs Polars | peak RSS (MB) | log loss |")
    print("|---|---|---|---|---|---|---|---|")
    checks = []
    for kind, path, n in files:
        tools = ["decode", "xent", "polars", "duckdb"] + (["sklearn"] if n <= 10_000_000 else [])
        res = {t: measure(kind, t, path, args.reps) for t in tools}
        polars_s = res["polars"].get("seconds")
        what = {"decode": "pyarrow decode only (floor)", "xent": "all metrics", "polars": "clipped log loss",
                "duckdb": "clipped log loss", "sklearn": "log_loss in memory (load not timed)"}
        name = f"{os.path.basename(path)}"
        for t in tools:
            r = res[t]
            if "error" in r:
                print(f"| {name} | {t} | {what[t]} | error: {r['error']} | | | | |")
                continue
            s = r["log_loss_s"] if t == "sklearn" else r["seconds"]
            ratio = f"{polars_s / s:.2f}x" if polars_s else "-"
            ll = f"{r['log_loss']:.12f}" if "log_loss" in r else "-"
            print(f"| {name} | {t} | {what[t]} | {s:.3f} | {n / s / 1e6:.0f} | {ratio} | {r['rss_mb']:.0f} | {ll} |")
        x = res["xent"]
        for t in ("polars", "duckdb", "sklearn"):
            if t in res and "log_loss" in res[t] and "log_loss" in x:
                checks.append((name, f"log loss vs {t}", abs(x["log_loss"] / res[t]["log_loss"] - 1)))
        if "sklearn" in res and "brier" in res["sklearn"]:
            checks.append((name, "Brier vs sklearn brier_score_loss", abs(x["brier"] / res["sklearn"]["brier"] - 1)))
    print()
    print("| file | check | relative difference |")
    print("|---|---|---|")
    for name, what, d in checks:
        print(f"| {name} | {what} | {d:.1e} |")


if __name__ == "__main__":
    main()
