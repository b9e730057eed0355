"""Benchmark and check `xent score`'s AUC, `--by` segments and `--ci` intervals (issue 14), side by side.

Run (never concurrently with another benchmark):

    flock /tmp/xent-bench.lock python bench/score_stats.py [--rows 100] [--reps 3] [--skip-sklearn] [--skip-dask]

Generates (once, deterministic; bench/score_data.py) binary_10M.parquet, binary_weighted_10M.parquet,
multi10_10M.parquet and segments_{R}M.parquet (int32 `seg`, 1,000 segments; R = --rows, 10 by default).

1. AUC against scikit-learn (printed last): `xent score --json` as a whole process on the bench files (binary,
   weighted, 10-class OvR macro and weighted) next to roc_auc_score / average_precision_score on the
   same data loaded in memory; each xent value must be within its reported error bound.
2. Cost of `--by seg --ci 0.95` (1,000 segments) against a plain `xent score` of the same file:
   whole processes, alternating A B A B, best of --reps, each process's own peak RSS (wait4).
3. Local against `--engine dask --workers 2` with `--by` and `--ci`: every number equal to 1e-12.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from score_data import binary, binary_weighted, multiclass, segments  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _xent() -> list[str]:
    script = shutil.which("xent", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "xent.cli"]


def _run_rss(argv: list[str]) -> tuple[float, float, str]:
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if status:
        raise SystemExit(f"{' '.join(argv)} failed with status {status}")
    return wall, usage.ru_maxrss / 1024, out.decode()


def auc_table(skip_sklearn: bool) -> None:
    import numpy as np
    import pyarrow.parquet as pq
    from sklearn.metrics import average_precision_score, roc_auc_score

    print("\n1. AUC: xent score (whole process, --json) against scikit-learn on the same data in memory")
    print(f"{'file':<28} {'metric':<22} {'xent':>12} {'bound':>9} {'sklearn':>12} {'|diff|':>9}  within")
    jobs = [
        ("binary_10M", binary(10_000_000), ["--label", "label", "--prob", "prob"], None),
        ("binary_weighted_10M", binary_weighted(10_000_000), ["--label", "label", "--prob", "prob", "--weight", "w"],
         "w"),
        ("multi10_10M", multiclass(10_000_000), ["--label", "label", "--prob", *[f"p{k}" for k in range(10)]], None),
    ]
    for name, path, args, wcol in jobs:
        wall, rss, out = _run_rss([*_xent(), "score", path, *args, "--json", "--no-progress"])
        m = json.loads(out)["metrics"]
        rows = []
        if m["kind"] == "binary":
            rows = [("roc_auc", m["roc_auc"], m["roc_auc_error_bound"]),
                    ("average_precision", m["average_precision"], m["average_precision_error_bound"])]
        else:
            rows = [("roc_auc (ovr macro)", m["roc_auc"], m["roc_auc_error_bound"]),
                    ("roc_auc (ovr weighted)", m["roc_auc_weighted"], m["roc_auc_weighted_error_bound"])]
        ref: list[float | None] = [None] * len(rows)
        if not skip_sklearn:
            t = pq.read_table(path)
            y = t.column("label").to_numpy()
            w = t.column(wcol).to_numpy().astype(np.float64) if wcol else None
            if m["kind"] == "binary":
                p = t.column("prob").to_numpy()
                ref = [roc_auc_score(y, p, sample_weight=w), average_precision_score(y, p, sample_weight=w)]
            else:
                P = np.stack([t.column(f"p{k}").to_numpy().astype(np.float64) for k in range(10)], axis=1)
                P /= P.sum(axis=1, keepdims=True)  # sklearn demands rows summing to 1 to 1e-8 (float32 files)
                ref = [roc_auc_score(y, P, multi_class="ovr", average=a) for a in ("macro", "weighted")]
                del P
        for (metric, value, bound), r in zip(rows, ref):
            diff = abs(value - r) if r is not None else math.nan
            ok = "-" if r is None else ("yes" if diff <= bound else "NO")
            print(f"{name:<28} {metric:<22} {value:>12.9f} {bound:>9.2e} "
                  f"{(f'{r:.9f}' if r is not None else '-'):>12} {diff:>9.2e}  {ok}")
        print(f"{'':<28} (xent process {wall:.2f} s, {rss:.0f} MB)")


def cost_table(rows_m: int, reps: int) -> None:
    path = segments(rows_m * 1_000_000)
    base = [*_xent(), "score", path, "--label", "label", "--prob", "prob", "--json", "--no-progress"]
    cmds = {"plain xent score": base, "--by seg --ci 0.95": [*base, "--by", "seg", "--ci", "0.95"],
            "--by seg": [*base, "--by", "seg"], "--ci 0.95": [*base, "--ci", "0.95"]}
    best = {k: (math.inf, 0.0) for k in cmds}
    for argv in cmds.values():  # warm-up: the file in the page cache
        _run_rss(argv)
    for _ in range(reps):
        for k, argv in cmds.items():
            wall, rss, _ = _run_rss(argv)
            if wall < best[k][0]:
                best[k] = (wall, rss)
    print(f"\n2. Segments and intervals on {rows_m}M binary rows, 1,000 segments (whole processes, best of {reps})")
    plain = best["plain xent score"][0]
    print(f"{'command':<22} {'seconds':>8} {'x plain':>8} {'peak RSS MB':>12}")
    for k, (wall, rss) in best.items():
        print(f"{k:<22} {wall:>8.2f} {wall / plain:>8.2f} {rss:>12.0f}")


def _compare(a, b, where="", rtol=1e-12):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        return max([_compare(a[k], b[k], f"{where}.{k}", rtol) for k in a] or [0.0])
    if isinstance(a, list):
        assert len(a) == len(b), where
        return max([_compare(x, y, f"{where}[{i}]", rtol) for i, (x, y) in enumerate(zip(a, b))] or [0.0])
    if isinstance(a, float) and isinstance(b, (int, float)):
        d = abs(a - b) / max(abs(a), abs(b), 1e-300)
        assert d <= rtol, f"{where}: {a!r} != {b!r}"
        return d
    assert a == b, f"{where}: {a!r} != {b!r}"
    return 0.0


def dask_table() -> None:
    sample = os.path.join(ROOT, "examples", "data", "ctr_sample.parquet")
    args = [sample, "--label", "clicked", "--prob", "p_click", "--weight", "weight", "--by", "device", "--ci", "0.95",
            "--json", "--no-progress"]
    _, _, local = _run_rss([*_xent(), "score", *args])
    _, _, dask = _run_rss([*_xent(), "score", *args, "--engine", "dask", "--workers", "2"])
    a, b = json.loads(local), json.loads(dask)
    worst = _compare({k: a[k] for k in ("metrics", "segments")}, {k: b[k] for k in ("metrics", "segments")})
    print("\n3. Local against --engine dask --workers 2 (ctr_sample, --by device --ci 0.95): every number of "
          f"metrics and segments, CIs included, equal; largest relative difference {worst:.1e} (limit 1e-12)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10, help="millions of rows of the segments file (100 for the target)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--skip-sklearn", action="store_true", help="no scikit-learn reference (it loads 10M rows)")
    ap.add_argument("--skip-auc", action="store_true")
    ap.add_argument("--skip-dask", action="store_true")
    args = ap.parse_args()
    print(f"load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")
    # processes first: a child's peak RSS (wait4) counts what it shared with this process at fork,
    # and the scikit-learn references below load the 10M-row files into this one
    cost_table(args.rows, args.reps)
    if not args.skip_dask:
        dask_table()
    if not args.skip_auc:
        auc_table(args.skip_sklearn)


if __name__ == "__main__":
    main()
