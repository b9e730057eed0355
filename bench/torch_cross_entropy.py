"""Softmax cross-entropy on materialised logits, forward + backward (CPU), quiet and under load.

Variants (each without and with label_smoothing=0.1):
  torch   F.cross_entropy(z, y) + backward
  xent    xent.torch.cross_entropy(z, y) + backward
  core    xent.sparse_categorical_cross_entropy(y, z, from_logits=True, ignore_index=-100) + backward
          (the core API on torch tensors, served by the torch kernels)

Time: interleaved in one process, best of --repeat after a warm-up; then the
same again while a second process keeps both cores busy (a float32 matmul loop
on 2 threads), and the slowdown (busy / quiet) of each variant. Memory: each
variant once in its own subprocess, peak RSS (VmHWM, reset after the inputs
exist) above the inputs and the gradient of the logits. Also wall time and CPU
time (process_time) of the quiet runs: on a shared machine CPU time is the
steadier measure of work.

Run: python bench/torch_cross_entropy.py [--n 4096 --c 32000 --repeat 5] [--no-load] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

VARIANTS = ("torch", "xent", "core")
BUSY = "import torch\ntorch.set_num_threads(2)\na = torch.randn(1024, 1024)\nwhile True:\n    a @ a\n"


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _setup(a):
    import torch

    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    z = (3 * torch.randn(a.n, a.c, generator=g)).requires_grad_()
    y = torch.randint(0, a.c, (a.n,), generator=g)
    y[::10] = -100
    return z, y


def _fn(name, z, y, smoothing):
    import torch.nn.functional as F

    import xent
    import xent.torch as xt

    if name == "torch":
        return lambda: F.cross_entropy(z, y, label_smoothing=smoothing)
    if name == "xent":
        return lambda: xt.cross_entropy(z, y, label_smoothing=smoothing)
    return lambda: xent.sparse_categorical_cross_entropy(y, z, from_logits=True, ignore_index=-100,
                                                         label_smoothing=smoothing)


def memory_worker(a) -> dict:
    z, y = _setup(a)
    small = z.detach()[:16].clone().requires_grad_()
    _fn(a.variant, small, y[:16], a.smoothing)().backward()  # lazy imports and the thread pool, not the big run
    f = _fn(a.variant, z, y, a.smoothing)
    base = _rss()
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    f().backward()
    return {"extra_bytes": _peak() - base - z.numel() * z.element_size()}


def timings(a, z, y) -> tuple[dict, dict]:
    runs = {(v, e): _fn(v, z, y, e) for e in (0.0, 0.1) for v in VARIANTS}
    wall = {k: float("inf") for k in runs}
    cpu = {k: float("inf") for k in runs}
    for f in runs.values():  # warm-up
        z.grad = None
        f().backward()
    for _ in range(a.repeat):  # interleaved, best of N
        for k, f in runs.items():
            z.grad = None
            t, c = time.perf_counter(), time.process_time()
            f().backward()
            wall[k] = min(wall[k], time.perf_counter() - t)
            cpu[k] = min(cpu[k], time.process_time() - c)
    return wall, cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--c", type=int, default=32000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-load", action="store_true", help="skip the run next to a busy process")
    p.add_argument("--quick", action="store_true", help="N=1024, C=8000, best of 2: checks that it runs")
    p.add_argument("--memory-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    p.add_argument("--smoothing", type=float, default=0.0, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.quick:
        a.n, a.c, a.repeat = 1024, 8000, 2
    if a.memory_worker:
        print(json.dumps(memory_worker(a)))
        return
    import torch

    import xent.torch as xt

    mem = {}
    for e in (0.0, 0.1):
        for v in VARIANTS:
            cmd = [sys.executable, os.path.abspath(__file__), "--memory-worker", "--variant", v, "--smoothing", str(e),
                   "--n", str(a.n), "--c", str(a.c), "--threads", str(a.threads)]
            # Large blocks always mmapped: freed memory leaves the RSS, so the peak is of live memory.
            env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
            out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
            mem[(v, e)] = json.loads(out.strip().splitlines()[-1])["extra_bytes"]
    z, y = _setup(a)
    load_before = os.getloadavg()[0]
    wall, cpu = timings(a, z, y)
    busy_wall = None
    if not a.no_load:
        busy = subprocess.Popen([sys.executable, "-c", BUSY])
        try:
            time.sleep(1.0)
            busy_wall, _ = timings(a, z, y)
        finally:
            busy.kill()
            busy.wait()
    # correctness of what was timed
    z.grad = None
    xt.cross_entropy(z, y).backward()
    gx = z.grad.clone()
    z.grad = None
    torch.nn.functional.cross_entropy(z, y).backward()
    rel = ((gx - z.grad).abs().max() / z.grad.abs().max()).item()

    print(f"softmax cross-entropy, forward + backward, {a.n} x {a.c} float32, torch {torch.__version__} CPU, "
          f"{a.threads} threads, best of {a.repeat} interleaved; load average {load_before:.1f} before the run")
    print("extra = peak RSS above the inputs and the logits' gradient (one subprocess per variant); "
          "busy = a second process running a 2-thread matmul loop")
    print()
    print("| variant | label_smoothing | time (ms) | CPU time (ms) | vs F.cross_entropy | extra peak (MiB) | "
          "time, busy (ms) | slowdown busy / quiet |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    names = {"torch": "`F.cross_entropy`", "xent": "`xent.torch.cross_entropy`",
             "core": "`xent.sparse_categorical_cross_entropy` (core API, torch tensors)"}
    for e in (0.0, 0.1):
        for v in VARIANTS:
            k = (v, e)
            ratio = wall[k] / wall[("torch", e)]
            b = "" if busy_wall is None else f"{busy_wall[k] * 1e3:.0f}"
            s = "" if busy_wall is None else f"{busy_wall[k] / wall[k]:.2f}x"
            print(f"| {names[v]} | {e} | {wall[k] * 1e3:.0f} | {cpu[k] * 1e3:.0f} | {ratio:.2f}x | "
                  f"{mem[k] / 2**20:.0f} | {b} | {s} |")
    print(f"\nmax |grad xent - grad torch| / max |grad torch| = {rel:.1e}; load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
