"""Sparse softmax CE on the reference (array-API) path: peak extra memory and time, forward + gradient.

Variants, side by side in one run (logits N x C, labels of int64, smoothing ``--smoothing``):
  torch xent        xent.sparse_categorical_cross_entropy(y, z, from_logits=True, return_grad=True)
  torch F.ce        F.cross_entropy(z, y, label_smoothing=e) + backward
  jax-jit xent      jax.jit of the same xent call (return_grad=True)
  jax-jit obvious   jax.jit(jax.value_and_grad) of mean(-(1-e) logp[y] - e/C sum(logp))
  numpy reference   the xent call on NumPy with the fast engine off (use_engine("reference"))

Each variant runs in its own subprocess. After the inputs exist and one warm-up
call (which also compiles), the peak resident set (VmHWM) is reset through
/proc/self/clear_refs; "peak extra" is the peak during --repeat calls minus the
resident set before them (so the gradient output is included, the inputs are not).
For the JAX rows the peak is XLA's compiled memory analysis instead (temporaries +
outputs), because XLA's CPU allocator keeps its buffers after the warm-up.
Time is the best of --repeat calls. Single-threaded by default (--threads) so that
the two shared cores give stable ratios.

Run:
  flock /tmp/xent-bench.lock .venv/bin/python bench/sparse_reference.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

VARIANTS = ("torch xent", "torch F.ce", "jax-jit xent", "jax-jit obvious", "numpy reference")


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM (peak RSS) to the current RSS (Linux >= 4.0)


def _peak() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _make_call(variant: str, n: int, c: int, e: float):
    """Return a no-argument function that computes loss and gradient and blocks until done."""
    import numpy as np

    import xent

    rng = np.random.default_rng(0)
    z_np = rng.standard_normal((n, c), dtype=np.float32) * 3
    y_np = rng.integers(0, c, size=n)
    if variant.startswith("torch"):
        import torch
        import torch.nn.functional as F

        z, y = torch.from_numpy(z_np), torch.from_numpy(y_np)
        if variant == "torch xent":
            return lambda: xent.sparse_categorical_cross_entropy(
                y, z, from_logits=True, label_smoothing=e, return_grad=True
            )

        def torch_ce():
            zz = z.detach().requires_grad_(True)
            loss = F.cross_entropy(zz, y, label_smoothing=e)
            loss.backward()
            return loss, zz.grad

        return torch_ce
    if variant.startswith("jax"):
        import jax
        import jax.numpy as jnp

        z, y = jnp.asarray(z_np), jnp.asarray(y_np)
        if variant == "jax-jit xent":
            f = jax.jit(lambda z, y: xent.sparse_categorical_cross_entropy(
                y, z, from_logits=True, label_smoothing=e, return_grad=True
            ))
        else:
            def obvious(z, y):
                logp = jax.nn.log_softmax(z, axis=-1)
                true = jnp.take_along_axis(logp, y[:, None], axis=-1)[:, 0]
                return jnp.mean(-(1 - e) * true - e / c * jnp.sum(logp, axis=-1))

            f = jax.jit(jax.value_and_grad(obvious))
        stats = f.lower(z, y).compile().memory_analysis()
        # XLA's CPU allocator keeps its buffers after the warm-up, so the RSS peak says nothing:
        # report XLA's own plan instead (temporaries + outputs).
        call = lambda: jax.block_until_ready(f(z, y))  # noqa: E731
        call.xla_bytes = stats.temp_size_in_bytes + stats.output_size_in_bytes
        return call
    xent.engine.set_engine("reference")  # the fast engine would otherwise take these NumPy logits
    return lambda: xent.sparse_categorical_cross_entropy(
        y_np, z_np, from_logits=True, label_smoothing=e, return_grad=True
    )


def worker(variant: str, n: int, c: int, e: float, repeat: int, threads: int) -> dict:
    os.environ["JAX_PLATFORMS"] = "cpu"
    import torch

    torch.set_num_threads(threads)
    call = _make_call(variant, n, c, e)
    call()  # warm-up (and compile); its result is dropped before the baseline
    base = _rss()
    _reset_peak()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = call()
        best = min(best, time.perf_counter() - t0)
        del out
    extra = getattr(call, "xla_bytes", _peak() - base)
    return {"peak_mb": extra / 2**20, "ms": best * 1e3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--c", type=int, default=32000)
    ap.add_argument("--smoothing", type=float, nargs="+", default=[0.1, 0.0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        variant, e = a.worker.rsplit("|", 1)
        print(json.dumps(worker(variant, a.n, a.c, float(e), a.repeat, a.threads)))
        return
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    if a.threads == 1:
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false"
    grad_mb = a.n * a.c * 4 / 2**20
    print(f"sparse softmax CE, forward + gradient, {a.n} x {a.c} float32, {a.threads} thread(s), "
          f"best of {a.repeat}; gradient output = {grad_mb:.0f} MB")
    print()
    print("| smoothing | variant | peak extra MB | x grad size | ms | time / fastest peer |")
    print("|---|---|---|---|---|---|")
    for e in a.smoothing:
        rows = {}
        for v in VARIANTS:
            cmd = [sys.executable, __file__, "--worker", f"{v}|{e}", "--n", str(a.n), "--c", str(a.c),
                   "--repeat", str(a.repeat), "--threads", str(a.threads)]
            r = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if r.returncode != 0:
                raise SystemExit(f"{v} failed:\n{r.stderr}")
            rows[v] = json.loads(r.stdout.strip().splitlines()[-1])
        fastest = min(rows[v]["ms"] for v in ("torch F.ce", "jax-jit obvious"))
        for v, r in rows.items():
            print(f"| {e} | {v} | {r['peak_mb']:.0f} | {r['peak_mb'] / grad_mb:.1f} | {r['ms']:.0f} "
                  f"| {r['ms'] / fastest:.2f} |")


if __name__ == "__main__":
    main()
