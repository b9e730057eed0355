"""The Dask engine against the local engine on the same 100M-row Parquet file.

Run (never concurrently with another benchmark):

    flock /tmp/xent-bench.lock .venv/bin/python bench/score_dask.py [--reps 3] [--rows 100000000]

The file is bench/score.py's (bench/score_data.py: int8 `label`, float32 `prob`,
row groups of 2^20 rows, written once to bench/data/). In one run: the local
engine (``xent.scoring.score``, all cores) and ``xent.dask.score`` on a
LocalCluster of 2 worker processes with 1 thread each, both computing every
metric; one warm-up each, then the best of --reps. The cluster start-up is
timed separately, and end to end (``workers=2``: start, score, shut down), as
``xent score --engine dask --workers 2`` pays it: best of --reps runs, each in
a fresh interpreter and timed after its imports. The numbers are compared
field by field (every float of the report) as a maximum relative difference.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from score_data import binary  # noqa: E402


def _floats(tree: Any, out: list[float]) -> list[float]:
    if isinstance(tree, dict):
        for v in tree.values():
            _floats(v, out)
    elif isinstance(tree, (list, tuple)):
        for v in tree:
            _floats(v, out)
    elif isinstance(tree, float):
        out.append(tree)
    return out


def max_rel_diff(a: Any, b: Any) -> float:
    fa, fb = _floats(a, []), _floats(b, [])
    assert len(fa) == len(fb)
    worst = 0.0
    for x, y in zip(fa, fb):
        if x == y or (math.isnan(x) and math.isnan(y)):
            continue
        worst = max(worst, abs(x - y) / max(abs(x), abs(y)))
    return worst


def best_of(fn: Any, reps: int) -> tuple[float, Any]:
    out = fn()  # warm-up: imports, the native kernels, page cache
    best = math.inf
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def _end_to_end_in_child(args: Any) -> tuple[float, dict]:
    """Seconds and metrics of one ``_child`` run in a fresh interpreter."""
    import json
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--child", "--rows", str(args.rows), "--workers",
                          str(args.workers)], check=True, capture_output=True, text=True).stdout
    seconds, metrics = json.loads(out)
    return seconds, metrics


def _child(args: Any) -> None:
    """One ``xent.dask.score(workers=N)`` call, timed after the imports; prints JSON."""
    import json

    import xent.dask
    from xent.scoring import ScoreSpec

    spec = ScoreSpec(label="label", pred=("prob",))
    path = binary(args.rows)
    t = time.perf_counter()
    report = xent.dask.score(path, spec, workers=args.workers)
    print(json.dumps([time.perf_counter() - t, report.to_dict()["metrics"]]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rows", type=int, default=100_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return _child(args)

    from distributed import Client, LocalCluster

    import xent.dask
    from xent.scoring import ScoreSpec, score

    path = binary(args.rows)
    spec = ScoreSpec(label="label", pred=("prob",))
    n = args.rows

    local_s, local = best_of(lambda: score(path, spec), args.reps)

    t = time.perf_counter()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster, set_as_default=False) as client:
        start_s = time.perf_counter() - t
        dask_s, dask = best_of(lambda: xent.dask.score(path, spec, client=client), args.reps)

    # Each end-to-end run in a fresh interpreter, as the CLI runs: a second call in the
    # same process would reuse the warmed forkserver that forks the workers.
    cold_s, cm = min((_end_to_end_in_child(args) for _ in range(args.reps)), key=lambda r: r[0])

    lm, dm = local.to_dict()["metrics"], dask.to_dict()["metrics"]
    print(f"{os.path.basename(path)}: {n:,} rows; cores: {os.cpu_count()}, load average: "
          f"{os.getloadavg()[0]:.1f}; best of {args.reps} after a warm-up")
    print()
    print("| engine | time (s) | Mrows/s | vs local | log loss |")
    print("|---|---|---|---|---|")
    print(f"| local (all cores) | {local_s:.3f} | {n / local_s / 1e6:.0f} | 1.00x | {lm['log_loss']:.15f} |")
    print(f"| dask, LocalCluster {args.workers} processes x 1 thread (warm) | {dask_s:.3f} | {n / dask_s / 1e6:.0f} "
          f"| {dask_s / local_s:.2f}x | {dm['log_loss']:.15f} |")
    print(f"| dask, `workers={args.workers}` end to end (start + score + shutdown), fresh process | {cold_s:.3f} | "
          f"{n / cold_s / 1e6:.0f} | {cold_s / local_s:.2f}x | {cm['log_loss']:.15f} |")
    print(f"| (LocalCluster start-up alone) | {start_s:.3f} | | | |")
    print()
    print("| check | max relative difference over every float of the report |")
    print("|---|---|")
    print(f"| dask (warm) vs local | {max_rel_diff(dm, lm):.1e} |")
    print(f"| dask (end to end) vs local | {max_rel_diff(cm, lm):.1e} |")
    print(f"| rows equal | {dm['rows'] == lm['rows'] == cm['rows'] == n} |")


if __name__ == "__main__":
    main()
