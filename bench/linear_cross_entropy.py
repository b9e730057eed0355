"""Fused linear + cross-entropy: peak memory and time of forward + backward (CPU).

Variants, side by side in one run:
  obvious        F.cross_entropy(hidden @ weight.T, target) + backward
  torch          F.linear_cross_entropy(hidden, weight, target) + backward (torch 2.13, options=None:
                 its reference path, no chunking)
  torch_chunked  F.linear_cross_entropy(..., options=torch.nn.LinearCrossEntropyOptions()) + backward
                 (torch's chunked path with its per-(device, dtype) defaults; on CPU bf16 that is
                 acc_policy="accurate", chunks sized by aspect ratio)
  compiled       torch.compile of the obvious function (inductor, CPU; not run by default)
  gemms          the three GEMMs alone: z = h @ W.T, z @ W, h.T @ z (the floor of any fused loss)
  xent           xent.torch.linear_cross_entropy(hidden, weight, target) + backward

Each (shape, dtype, variant) runs in its own subprocess. Memory is the process's
peak resident set (VmHWM, reset through /proc/self/clear_refs after the inputs
exist; ru_maxrss minus the RSS after the inputs where that reset is not
available) minus the RSS after allocating the inputs, minus the bytes of the
gradients of hidden and weight: "extra peak memory above inputs and their
gradients". Time is the best of --repeat runs after one warm-up (which also
compiles). Gradients are checked against the obvious code on the first
--check-rows rows (same V and d) after the measurement.

Run (big shapes need ~13 GB for the obvious float32 code at V=128256; one at a time):
  flock /tmp/xent-bench.lock .venv/bin/python bench/linear_cross_entropy.py
  flock /tmp/xent-bench.lock .venv/bin/python bench/linear_cross_entropy.py --quick
  ... --d 512 1024 --v 32000            the issue's targets at V = 32000
  ... --v 128256 --variants torch_chunked gemms xent   the large vocabulary without the 13 GB obvious code
Times are wall clock (best of --repeat) and CPU time (process_time, steadier on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

VARIANTS = ("obvious", "torch", "torch_chunked", "compiled", "gemms", "xent")
DEFAULT_VARIANTS = ("obvious", "torch", "torch_chunked", "gemms", "xent")


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM (peak RSS) to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _peak() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(a) -> dict:
    import torch
    import torch.nn.functional as F

    import xent.torch as xt

    torch.set_num_threads(a.threads)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[a.dtype]
    g = torch.Generator().manual_seed(0)

    def make(shape, scale):
        # fill in place in the target dtype: no full-size float32 temporary
        x = torch.empty(shape, dtype=dtype)
        for i in range(0, shape[0], 4096):
            x[i : i + 4096] = torch.randn((min(4096, shape[0] - i), *shape[1:]), generator=g) * scale
        return x.requires_grad_()

    hidden = make((a.n, a.d), 1.0)
    weight = make((a.v, a.d), a.d**-0.5)
    target = torch.randint(0, a.v, (a.n,), generator=g)
    target[::7] = -100

    def obvious(h, w, y):
        return F.cross_entropy(h @ w.T, y)

    class _Gemms:
        """The three GEMMs of forward + backward, with the layouts autograd uses; .backward() is a no-op."""

        def __init__(self, h, w, y):
            h, w = h.detach(), w.detach()
            z = h @ w.t()
            self.out = (z @ w, h.t() @ z)

        def backward(self):
            pass

    fn = {
        "obvious": obvious,
        "torch": lambda h, w, y: F.linear_cross_entropy(h, w, y),
        "torch_chunked": lambda h, w, y: F.linear_cross_entropy(h, w, y, options=torch.nn.LinearCrossEntropyOptions()),
        "compiled": torch.compile(obvious) if a.variant == "compiled" else None,
        "gemms": _Gemms,
        "xent": lambda h, w, y: xt.linear_cross_entropy(h, w, y),
    }[a.variant]

    base = _rss()
    exact = _reset_peak()
    grad_bytes = (hidden.numel() + weight.numel()) * hidden.element_size()
    times, cpu = [], []
    for _ in range(1 + a.repeat):
        hidden.grad = None
        weight.grad = None
        t, c = time.perf_counter(), time.process_time()
        fn(hidden, weight, target).backward()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    peak = _peak()
    out = {
        "variant": a.variant,
        "time_s": min(times[1:]),
        "cpu_s": min(cpu[1:]),
        "first_s": times[0],
        "extra_bytes": peak - base - grad_bytes,
        "peak_exact": exact,
    }
    if a.variant == "gemms":  # no loss, no gradient to check
        out["rel_err_grad_hidden"] = out["rel_err_grad_weight"] = float("nan")
        return out
    # gradient check on a row slice (full V and d), after the measurement
    k = min(a.check_rows, a.n)
    h = hidden.detach()[:k].clone().requires_grad_()
    w = weight.detach().clone().requires_grad_()
    fn(h, w, target[:k]).backward()
    h2 = hidden.detach()[:k].clone().requires_grad_()
    w2 = weight.detach().clone().requires_grad_()
    ref = obvious(h2.float(), w2.float(), target[:k]) if dtype != torch.float32 else obvious(h2, w2, target[:k])
    ref.backward()

    def rel(x, r):
        return ((x.float() - r.float()).abs().max() / r.float().abs().max()).item()

    out["rel_err_grad_hidden"] = rel(h.grad, h2.grad)
    out["rel_err_grad_weight"] = rel(w.grad, w2.grad)
    return out


def run_one(a, n, d, v, dtype, variant) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--variant", variant, "--n", str(n), "--d", str(d),
           "--v", str(v), "--dtype", dtype, "--repeat", str(a.repeat), "--threads", str(a.threads),
           "--check-rows", str(a.check_rows)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()
        return {"variant": variant, "error": tail[-1] if tail else f"exit {p.returncode}"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description="fused linear cross-entropy: memory and time vs the obvious code")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--variant", choices=VARIANTS)
    p.add_argument("--variants", nargs="*", choices=VARIANTS, default=list(DEFAULT_VARIANTS))
    p.add_argument("--n", type=int, default=8192)
    p.add_argument("--d", type=int, nargs="*", default=[1024])
    p.add_argument("--v", type=int, nargs="*", default=[32000, 128256])
    p.add_argument("--dtype", nargs="*", default=["float32", "bfloat16"])
    p.add_argument("--repeat", type=int, default=1, help="timed runs after the warm-up (best of)")
    p.add_argument("--rounds", type=int, default=1, help="subprocesses per variant, alternating (best of)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--check-rows", type=int, default=512)
    p.add_argument("--quick", action="store_true", help="N=2048, d=512, V in (8000, 32000)")
    a = p.parse_args()
    if a.worker:
        a.v = a.v[0]
        a.d = a.d[0]
        a.dtype = a.dtype[0]
        print(json.dumps(worker(a)))
        return
    if a.quick:
        a.n, a.d, a.v = 2048, [512], [8000, 32000]
    import torch

    print(f"fused linear cross-entropy, forward + backward, torch {torch.__version__} CPU, "
          f"{a.threads} threads, best of {a.repeat} run(s) after a warm-up, in each of {a.rounds} alternating subprocess(es)")
    print("extra = peak RSS above the inputs and their gradients; grad err = max|g - g_obvious| / max|g_obvious| "
          f"on {a.check_rows} rows (bf16: vs float32 math on the same bf16 values)")
    print()
    print(f"load average {os.getloadavg()[0]:.1f} at the start; CPU = process_time of the timed run")
    print()
    print("| N x d x V | dtype | variant | time (s) | CPU (s) | vs obvious | vs torch chunked | extra peak (MiB) | "
          "torch chunked / this | grad err hidden | grad err weight |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for d in a.d:
        for v in a.v:
            for dtype in a.dtype:
                rows = {}
                for _ in range(a.rounds):  # alternate the variants; keep each one's best time and least memory
                    for var in a.variants:
                        r = run_one(a, a.n, d, v, dtype, var)
                        old = rows.get(var)
                        if old is None or "error" in old:
                            rows[var] = r
                        elif "error" not in r:
                            for key in ("time_s", "cpu_s", "extra_bytes"):
                                old[key] = min(old[key], r[key])
                ob = rows.get("obvious", {})
                tc = rows.get("torch_chunked", {})
                for var, r in rows.items():
                    shape = f"{a.n} x {d} x {v}"
                    if "error" in r:
                        print(f"| {shape} | {dtype} | {var} | failed: {r['error'][:120]} | | | | | | | |")
                        continue

                    def ratio(x, y):
                        return f"{x / y:.2f}x" if not (math.isnan(x) or math.isnan(y)) and y > 0 else "n/a"

                    print(f"| {shape} | {dtype} | {var} | {r['time_s']:.2f} | {r['cpu_s']:.2f} | "
                          f"{ratio(r['time_s'], ob.get('time_s', float('nan')))} | "
                          f"{ratio(r['time_s'], tc.get('time_s', float('nan')))} | "
                          f"{r['extra_bytes'] / 2**20:.0f} | "
                          f"{ratio(tc.get('extra_bytes', float('nan')), max(r['extra_bytes'], 1))} | "
                          f"{r['rel_err_grad_hidden']:.1e} | {r['rel_err_grad_weight']:.1e} |", flush=True)


if __name__ == "__main__":
    main()
