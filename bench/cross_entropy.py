"""Cross-entropy forward and forward+gradient: xent vs NumPy, PyTorch, JAX/optax and the memory floor.

Run (wrap every benchmark in the shared lock so two never run at once)::

    flock /tmp/xent-bench.lock python bench/cross_entropy.py            # full table
    flock /tmp/xent-bench.lock python bench/cross_entropy.py --quick    # smaller shapes

Prints one markdown table. Every time is the best of ``--repeat`` runs after a
warm-up, all in this process. Columns:

- ``ms``: best-of-N wall time;
- ``vs fastest peer``: the fastest of PyTorch / JAX / NumPy on the same task
  divided by this row's time (> 1 means faster than every peer);
- ``x floor``: this time divided by the memory floor of the same bytes:
  ``np.copyto`` of the logits (read + write) for forward+gradient, a single read
  (``np.sum``) for forward alone.
- ``peak extra``: tracemalloc peak of the xent call beyond its outputs (NumPy
  allocations only), as a multiple of the gradient output's size.

Threads: xent uses ``--threads`` (default: all CPUs; also ``XENT_NUM_THREADS``),
PyTorch ``torch.set_num_threads(--threads)``; XLA uses what it uses.
"""

from __future__ import annotations

import argparse
import gc
import os
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

os.environ.setdefault("JAX_PLATFORMS", "cpu")


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm-up (and JIT compile)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def peak_extra(fn: Callable[[], Any]) -> int:
    """Peak bytes NumPy allocated during ``fn()`` beyond what it returned."""
    gc.collect()
    tracemalloc.start()
    out = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    outs = out if isinstance(out, tuple) else (out,)
    kept = sum(getattr(o, "nbytes", 0) for o in outs)
    return peak - kept


# ---------------------------------------------------------------- NumPy written the obvious way


def numpy_sparse(x: np.ndarray, y: np.ndarray, grad: bool) -> Any:
    n = x.shape[0]
    m = x.max(axis=1, keepdims=True)
    e = np.exp(x - m)
    s = e.sum(axis=1, keepdims=True)
    lse = np.log(s) + m
    rows = np.arange(n)
    loss = np.mean(lse[:, 0] - x[rows, y], dtype=np.float64)
    if not grad:
        return loss
    g = e / s
    g[rows, y] -= 1
    g /= n
    return loss, g


def numpy_binary(y: np.ndarray, z: np.ndarray, grad: bool) -> Any:
    loss = np.mean(np.logaddexp(0, z) - y * z, dtype=np.float64)
    if not grad:
        return loss
    return loss, (1 / (1 + np.exp(-z)) - y) / z.size


# ---------------------------------------------------------------- peers


def torch_fns(threads: int) -> dict[str, Callable[..., Callable[[], Any]]]:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)

    def sparse(x: np.ndarray, y: np.ndarray, grad: bool) -> Callable[[], Any]:
        xt = torch.from_numpy(x)
        yt = torch.from_numpy(y)

        def run() -> Any:
            if not grad:
                with torch.no_grad():
                    return F.cross_entropy(xt, yt)
            v = xt.detach().requires_grad_(True)
            loss = F.cross_entropy(v, yt)
            loss.backward()
            return loss, v.grad

        return run

    def binary(y: np.ndarray, z: np.ndarray, grad: bool) -> Callable[[], Any]:
        zt, yt = torch.from_numpy(z), torch.from_numpy(y)

        def run() -> Any:
            if not grad:
                with torch.no_grad():
                    return F.binary_cross_entropy_with_logits(zt, yt)
            v = zt.detach().requires_grad_(True)
            loss = F.binary_cross_entropy_with_logits(v, yt)
            loss.backward()
            return loss, v.grad

        return run

    return {"sparse": sparse, "binary": binary}


def jax_fns() -> dict[str, Callable[..., Callable[[], Any]]]:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax

    def sparse(x: np.ndarray, y: np.ndarray, grad: bool) -> Callable[[], Any]:
        xj, yj = jnp.asarray(x), jnp.asarray(y)

        def f(v: Any) -> Any:
            return optax.softmax_cross_entropy_with_integer_labels(v, yj).mean()

        fn = jax.jit(jax.value_and_grad(f) if grad else f)
        return lambda: jax.block_until_ready(fn(xj))

    def binary(y: np.ndarray, z: np.ndarray, grad: bool) -> Callable[[], Any]:
        zj, yj = jnp.asarray(z), jnp.asarray(y)

        def f(v: Any) -> Any:
            return optax.sigmoid_binary_cross_entropy(v, yj).mean()

        fn = jax.jit(jax.value_and_grad(f) if grad else f)
        return lambda: jax.block_until_ready(fn(zj))

    return {"sparse": sparse, "binary": binary}


# ---------------------------------------------------------------- the table


def workloads(quick: bool) -> list[tuple[str, str, tuple[int, ...], Any]]:
    if quick:
        return [
            ("sparse CE", "sparse", (1024, 32000), np.float32),
            ("sparse CE", "sparse", (16384, 1000), np.float32),
            ("sparse CE", "sparse", (250000, 10), np.float32),
            ("sparse CE", "sparse", (1024, 32000), np.float64),
            ("binary CE", "binary", (2_500_000,), np.float32),
        ]
    return [
        ("sparse CE", "sparse", (4096, 32000), np.float32),
        ("sparse CE", "sparse", (65536, 1000), np.float32),
        ("sparse CE", "sparse", (1_000_000, 10), np.float32),
        ("sparse CE", "sparse", (4096, 32000), np.float64),
        ("binary CE", "binary", (10_000_000,), np.float32),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--quick", action="store_true", help="4x smaller shapes")
    parser.add_argument("--no-peers", action="store_true", help="skip PyTorch and JAX")
    args = parser.parse_args()

    import xent

    xent.set_num_threads(args.threads)
    peers: dict[str, Any] = {}
    if not args.no_peers:
        peers["PyTorch"] = torch_fns(args.threads)
        peers["JAX/optax jit"] = jax_fns()

    rng = np.random.default_rng(0)
    print(f"threads={args.threads}, best of {args.repeat} after a warm-up, cpus={os.cpu_count()}")
    print()
    print("| workload | pass | implementation | ms | vs fastest peer | x floor | peak extra |")
    print("|---|---|---|---:|---:|---:|---:|")
    for title, kind, shape, dtype in workloads(args.quick):
        label = f"{title} {' x '.join(f'{s:,}' for s in shape)} {np.dtype(dtype).name}"
        if kind == "sparse":
            x = rng.standard_normal(shape, dtype=np.float64).astype(dtype)
            y = rng.integers(0, shape[1], shape[0])
            a0, a1 = y, x  # xent: (labels, logits)

            def xent_call(grad: bool, a0: Any = a0, a1: Any = a1) -> Any:
                return xent.sparse_categorical_cross_entropy(a0, a1, from_logits=True, return_grad=grad)

            def np_call(grad: bool, x: Any = x, y: Any = y) -> Any:
                return numpy_sparse(x, y, grad)

            peer_args = (x, y)
        else:
            x = (rng.standard_normal(shape) * 3).astype(dtype)
            y = (rng.uniform(size=shape) > 0.5).astype(dtype)

            def xent_call(grad: bool, y: Any = y, x: Any = x) -> Any:
                return xent.binary_cross_entropy(y, x, from_logits=True, return_grad=grad)

            def np_call(grad: bool, x: Any = x, y: Any = y) -> Any:
                return numpy_binary(y, x, grad)

            peer_args = (y, x)
        dst = np.empty_like(x)
        floors = {
            True: best_of(lambda: np.copyto(dst, x), args.repeat),
            False: best_of(lambda: np.sum(x), args.repeat),
        }
        del dst
        for grad in (True, False):
            pass_name = "fwd+grad" if grad else "fwd"
            rows: list[tuple[str, float, str]] = []
            t_x = best_of(lambda: xent_call(grad), args.repeat)
            extra = peak_extra(lambda: xent_call(grad))
            rows.append(("xent", t_x, f"{extra / x.nbytes:.3f} x ({extra / 2**20:.1f} MiB)"))
            rows.append(("NumPy (obvious)", best_of(lambda: np_call(grad), args.repeat), ""))
            for name, fns in peers.items():
                run = fns[kind](*peer_args, grad) if kind == "sparse" else fns[kind](y, x, grad)
                rows.append((name, best_of(run, args.repeat), ""))
                del run
                gc.collect()
            fastest_peer = min(t for n, t, _ in rows if n != "xent")
            floor_name = "memcpy (np.copyto, read+write)" if grad else "one read (np.sum)"
            rows.append((floor_name, floors[grad], ""))
            for name, t, mem in rows:
                print(
                    f"| {label} | {pass_name} | {name} | {t * 1e3:.1f} | {fastest_peer / t:.2f} "
                    f"| {t / floors[grad]:.2f} | {mem} |"
                )
        del x, y
        gc.collect()


if __name__ == "__main__":
    main()
