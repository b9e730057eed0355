"""Benchmark `xent score` as users run it, against Polars and DuckDB, side by side.

Run (never concurrently with another benchmark):

    flock /tmp/xent-bench.lock python bench/score.py [--reps 5] [--skip-100m] [--no-in-process]

Generates (once, deterministic) the files of bench/score_data.py in bench/data/:
binary_10M.parquet, binary_100M.parquet (int8 label, float32 prob), multi10_10M.parquet
(int8 label, float32 p0..p9) and binary_10M.csv (the 10M binary rows as text).

Whole processes (the headline table). Every tool is one command started from the
shell, a fresh interpreter each time: start-up, imports, reading and computing all
count. Each command runs once first (files in the page cache), then --reps rounds
run the tools in turn (xent, Polars, DuckDB, xent, ...); the table shows the best
round of each and that process's own peak RSS (wait4). `xent score` computes every
metric (log loss, NE, Brier, accuracy, calibration, 15 reliability bins, per-class
tables) and prints them as JSON; the Polars and DuckDB one-liners compute the clipped
log loss only, in the fastest formulation we found for each. The bundled sample
(examples/data/ctr_sample.parquet, the README's main job) is timed against
`python -c "import pyarrow.parquet as pq; pq.read_table(F)"`.

In process (second table, labelled as such): file to numbers inside one warm
interpreter (imports and start-up not counted), best of --reps after a warm-up,
with scikit-learn's `log_loss` on the data loaded in memory and the pyarrow decode
floor.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from score_data import binary, binary_csv, multiclass  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(ROOT, "examples", "data", "ctr_sample.parquet")
EPS32 = 1.1920928955078125e-07
K = 10

# ---- whole processes ---------------------------------------------------------------------------

POLARS_BINARY = """
import polars as pl
p = pl.col("prob").cast(pl.Float64).clip({eps!r}, 1 - {eps!r})
y = pl.col("label").cast(pl.Float64)
print(pl.{scan}({path!r}).select((-(y * p.log() + (1 - y) * (1 - p).log())).mean()).collect(engine="streaming").item())
"""
POLARS_MULTI = """
import polars as pl
py = pl.coalesce([pl.when(pl.col("label") == c).then(pl.col(f"p{{c}}")) for c in range({k})]).cast(pl.Float64)
print(pl.scan_parquet({path!r}).select((-py.clip({eps!r}, 1 - {eps!r}).log()).mean()).collect(engine="streaming").item())
"""
DUCKDB_BINARY = """
import duckdb
c = "greatest(least(prob::DOUBLE, 1 - {eps!r}), {eps!r})"
print(duckdb.sql(f"SELECT -avg(ln(CASE WHEN label = 1 THEN {{c}} ELSE 1 - {{c}} END)) FROM {read}({path!r})").fetchall()[0][0])
"""
DUCKDB_MULTI = """
import duckdb
py = "CASE label " + " ".join(f"WHEN {{c}} THEN p{{c}}" for c in range({k})) + " END"
print(duckdb.sql(f"SELECT avg(-ln(greatest(least(({{py}})::DOUBLE, 1 - {eps!r}), {eps!r}))) FROM read_parquet({path!r})").fetchall()[0][0])
"""


def _xent_command() -> list[str]:
    script = shutil.which("xent", path=os.path.dirname(sys.executable))  # the console script users run
    return [script] if script else [sys.executable, "-m", "xent.cli"]


def _commands(kind: str, path: str) -> dict[str, list[str]]:
    """Tool -> argv for one workload."""
    py = [sys.executable, "-c"]
    if kind == "sample":
        return {"xent": [*_xent_command(), "score", path, "--label", "clicked", "--prob", "p_click"],
                "pyarrow read_table": [*py, f"import pyarrow.parquet as pq; pq.read_table({path!r})"]}
    cols = ["prob"] if kind != "multi" else [f"p{c}" for c in range(K)]
    out = {"xent": [*_xent_command(), "score", path, "--label", "label", "--prob", *cols, "--json"]}
    if kind == "multi":
        out["polars"] = [*py, POLARS_MULTI.format(path=path, eps=EPS32, k=K)]
        out["duckdb"] = [*py, DUCKDB_MULTI.format(path=path, eps=EPS32, k=K)]
    else:
        csv = kind == "csv"
        out["polars"] = [*py, POLARS_BINARY.format(path=path, eps=EPS32, scan="scan_csv" if csv else "scan_parquet")]
        out["duckdb"] = [*py, DUCKDB_BINARY.format(path=path, eps=EPS32, read="read_csv" if csv else "read_parquet")]
    return out


def _run_rss(argv: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of one process: its own peak RSS, from wait4 on its pid."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    # read the pipes on threads so that a chatty child cannot block, then reap it ourselves
    chunks: dict[str, bytes] = {}
    readers = [threading.Thread(target=lambda n=n, f=f: chunks.__setitem__(n, f.read()))
               for n, f in (("out", proc.stdout), ("err", proc.stderr))]
    for r in readers:
        r.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    for r in readers:
        r.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv[:4])} failed: {chunks['err'].decode().strip().splitlines()[-1:]}")
    return wall, usage.ru_maxrss / 1024, chunks["out"].decode()


def _log_loss(tool: str, out: str) -> float | None:
    if tool == "xent":
        try:
            return json.loads(out)["metrics"]["log_loss"]
        except ValueError:
            return None
    try:
        return float(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None


def whole_processes(workloads: list[tuple[str, str, str, int]], reps: int) -> list[tuple[str, str, float]]:
    print("## Whole processes from the shell (the headline)")
    print()
    print(f"best of {reps} rounds after a warm-up run, tools alternating; {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    print()
    print("| workload | tool | computes | wall (s) | Mrows/s | xent throughput vs peer | peak RSS (MB) | log loss |")
    print("|---|---|---|---|---|---|---|---|")
    ratios = []
    for name, kind, path, n in workloads:
        cmds = _commands(kind, path)
        for argv in cmds.values():  # warm-up: page cache, .pyc files
            _run_rss(argv)
        best = {t: (float("inf"), 0.0, "") for t in cmds}
        for _ in range(reps):
            for tool, argv in cmds.items():
                got = _run_rss(argv)
                if got[0] < best[tool][0]:
                    best[tool] = got
        ref = "pyarrow read_table" if kind == "sample" else "polars"
        computes = {"xent": "all metrics", "polars": "clipped log loss", "duckdb": "clipped log loss",
                    "pyarrow read_table": "reads the file"}
        for tool, (wall, rss, out) in best.items():
            ratio = "-" if tool == "xent" else f"{wall / best['xent'][0]:.2f}x"
            ll = _log_loss(tool, out) if kind != "sample" else None
            print(f"| {name} | {tool} | {computes[tool]} | {wall:.3f} | {n / wall / 1e6:.1f} | {ratio} | {rss:.0f} | "
                  f"{'-' if ll is None else f'{ll:.10f}'} |")
        ratios.append((name, ref, best[ref][0] / best["xent"][0]))
    print()
    return ratios


# ---- in process ---------------------------------------------------------------------------------

CHILD = r'''
import json, resource, sys, time
kind, tool, path, reps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
EPS = %r
K = %d

def xent_run():
    from xent.scoring import ScoreSpec, score
    spec = ScoreSpec(label="label", pred=("prob",)) if kind == "binary" else ScoreSpec(label="label", pred=tuple(f"p{c}" for c in range(K)))
    d = score(path, spec).result
    return {"log_loss": d.log_loss, "brier": d.brier, "ece": d.ece, "accuracy": d.accuracy}

def polars_run():
    import polars as pl
    if kind == "binary":
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
    t = pq.read_table(path)
    y = t["label"].to_numpy()
    if kind == "binary":
        p = t["prob"].to_numpy().astype(np.float64)
    else:
        p = np.stack([t[f"p{c}"].to_numpy() for c in range(K)], axis=1).astype(np.float64)
    brier = brier_score_loss(y, p) if kind == "binary" else brier_score_loss(y, p, labels=list(range(K)))
    pc = np.clip(p, EPS, 1 - EPS)  # the same clipping as xent's eps="auto" for float32 columns
    t1 = time.perf_counter()
    ll = log_loss(y, pc, labels=list(range(2 if kind == "binary" else K)))
    return {"log_loss": ll, "brier": brier, "log_loss_s": time.perf_counter() - t1}

fn = {"xent": xent_run, "polars": polars_run, "duckdb": duckdb_run, "decode": decode_run, "sklearn": sklearn_run}[tool]
out = fn()  # warm-up
best = float("inf")
for _ in range(reps):
    t = time.perf_counter(); out = fn(); best = min(best, time.perf_counter() - t)
out["seconds"] = best
out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
''' % (EPS32, K)  # noqa: UP031 - a code template full of {}: %-formatting keeps them literal


def _in_process(kind: str, tool: str, path: str, reps: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, kind, tool, path, str(reps)], capture_output=True, text=True)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def in_process(files: list[tuple[str, str, int]], reps: int) -> None:
    print(f"## In process (file to numbers in a warm interpreter: start-up and imports not counted; best of {reps})")
    print()
    print("| file | tool | computes | time (s) | Mrows/s | xent throughput vs Polars | peak RSS (MB) | log loss |")
    print("|---|---|---|---|---|---|---|---|")
    checks = []
    what = {"decode": "pyarrow decode only (floor)", "xent": "all metrics", "polars": "clipped log loss",
            "duckdb": "clipped log loss", "sklearn": "log_loss in memory (load not timed)"}
    for kind, path, n in files:
        tools = ["decode", "xent", "polars", "duckdb"] + (["sklearn"] if n <= 10_000_000 else [])
        res = {t: _in_process(kind, t, path, reps) for t in tools}
        name = os.path.basename(path)
        for t in tools:
            r = res[t]
            if "error" in r:
                print(f"| {name} | {t} | {what[t]} | error: {r['error']} | | | | |")
                continue
            s = r["log_loss_s"] if t == "sklearn" else r["seconds"]
            xs = res["xent"].get("seconds")
            ratio = f"{s / xs:.2f}x" if xs and t == "polars" else "-"
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
    for name, w, d in checks:
        print(f"| {name} | {w} | {d:.1e} |")
    print()


TARGETS = {"binary_10M.parquet": 1.5, "binary_100M.parquet": 1.5, "multi10_10M.parquet": 1.25, "binary_10M.csv": 1.0,
           "bundled sample (5,000 rows)": 0.5}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--skip-100m", action="store_true", help="only the 10M files (quick)")
    ap.add_argument("--no-in-process", action="store_true", help="only the whole-process table")
    args = ap.parse_args()
    workloads = [("bundled sample (5,000 rows)", "sample", SAMPLE, 5_000),
                 ("binary_10M.parquet", "binary", binary(10_000_000), 10_000_000)]
    if not args.skip_100m:
        workloads.append(("binary_100M.parquet", "binary", binary(100_000_000), 100_000_000))
    workloads += [("multi10_10M.parquet", "multi", multiclass(10_000_000), 10_000_000),
                  ("binary_10M.csv", "csv", binary_csv(10_000_000), 10_000_000)]
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"`uptime`: {uptime}")
    print()
    ratios = whole_processes(workloads, args.reps)
    print("| workload | target | measured |")
    print("|---|---|---|")
    for name, ref, r in ratios:
        goal = TARGETS[name]
        met = "(met)" if r >= goal else "(not met)"
        if ref == "polars":
            print(f"| {name} | xent throughput >= {goal:.2f}x Polars' | {r:.2f}x {met} |")
        else:
            print(f"| {name} | xent wall time <= 2x pyarrow read_table's | {1 / r:.2f}x {met} |")
    print()
    if not args.no_in_process:
        files = [(k, p, n) for _, k, p, n in workloads if k in ("binary", "multi")]
        in_process([(("binary" if k == "binary" else "multiclass"), p, n) for k, p, n in files], args.reps)


if __name__ == "__main__":
    main()
