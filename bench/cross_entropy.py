"""Cross-entropy forward and forward+gradient: xent vs NumPy, PyTorch, JAX/optax and the memory floor.

Run (wrap every benchmark in the shared lock so two never run at once)::

    flock /tmp/xent-bench.lock python bench/cross_entropy.py            # full table
    flock /tmp/xent-bench.lock python bench/cross_entropy.py --quick    # smaller shapes

Prints two markdown tables. The first: every time is the best of ``--repeat`` runs
after a warm-up, all in this process. Columns:

- ``ms``: best-of-N wall time;
- ``vs fastest peer``: the fastest of PyTorch / JAX / NumPy on the same task
  divided by this row's time (> 1 means faster than every peer);
- ``x floor``: this time divided by the memory floor of the same bytes:
  ``np.copyto`` of the logits (read + write) for forward+gradient, a single read
  (``np.sum``) for forward alone.
- ``peak extra``: tracemalloc peak of the xent call beyond its outputs (NumPy
  allocations only), as a multiple of the gradient output's size.

The second table is the first call in a fresh process: for each implementation,
``--fresh`` new Python processes each build the data and import the library (not
timed), then time the first call (kernels loaded or compiled, threads started,
scratch allocated) and then the steady state (best of ``--repeat`` further calls);
it reports the best first call, the best steady call and their ratio.

Threads: xent uses ``--threads`` (default: all CPUs; also ``XENT_NUM_THREADS``),
PyTorch ``torch.set_num_threads(--threads)``; XLA uses what it uses.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
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


# ---------------------------------------------------------------- the first call in a fresh process


def make_call(impl: str, n: int, c: int, threads: int) -> Callable[[], Any]:
    """Data and the call of one implementation (sparse CE, forward + gradient); nothing timed here."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c), dtype=np.float32)
    y = rng.integers(0, c, n)
    if impl == "xent":
        import xent

        xent.set_num_threads(threads)
        return lambda: xent.sparse_categorical_cross_entropy(y, x, from_logits=True, return_grad=True)
    if impl == "NumPy (obvious)":
        return lambda: numpy_sparse(x, y, True)
    if impl == "PyTorch":
        return torch_fns(threads)["sparse"](x, y, True)
    return jax_fns()["sparse"](x, y, True)


def child(impl: str, n: int, c: int, threads: int, repeat: int) -> None:
    """Runs in a fresh process: print the first call's time and the steady state's, as JSON."""
    call = make_call(impl, n, c, threads)
    t0 = time.perf_counter()
    call()
    first = time.perf_counter() - t0
    steady = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()
        steady.append(time.perf_counter() - t0)
    print(json.dumps({"first": first, "steady": min(steady)}))


def first_call_table(args: argparse.Namespace, impls: list[str]) -> None:
    shapes = [(1024, 32000), (250_000, 10)] if args.quick else [(4096, 32000), (1_000_000, 10)]
    print()
    print(f"First call in a fresh process (best of {args.fresh} processes; steady: best of {args.repeat} "
          "further calls in the same process), sparse CE fwd+grad float32:")
    print()
    print("| workload | implementation | first call ms | steady ms | first / steady |")
    print("|---|---|---:|---:|---:|")
    for n, c in shapes:
        for impl in impls:
            firsts, steadies = [], []
            for _ in range(args.fresh):
                cmd = [sys.executable, __file__, "--child", impl, str(n), str(c), str(args.threads), str(args.repeat)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
                r = json.loads(out)
                firsts.append(r["first"])
                steadies.append(r["steady"])
            first, steady = min(firsts), min(steadies)
            print(f"| {n:,} x {c:,} | {impl} | {first * 1e3:.1f} | {steady * 1e3:.1f} | {first / steady:.2f} |",
                  flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        impl, n, c, threads, repeat = sys.argv[2], *(int(v) for v in sys.argv[3:7])
        child(impl, n, c, threads, repeat)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--quick", action="store_true", help="4x smaller shapes")
    parser.add_argument("--no-peers", action="store_true", help="skip PyTorch and JAX")
    parser.add_argument("--fresh", type=int, default=5, help="fresh processes per first-call row (0: no such table)")
    args = parser.parse_args()

    import xent

    xent.set_num_threads(args.threads)
    peers: dict[str, Any] = {}
    if not args.no_peers:
        peers["PyTorch"] = torch_fns(args.threads)
        peers["JAX/optax jit"] = jax_fns()

    rng = np.random.default_rng(0)
    from xent._lib.native import native

    nat = native()
    engine = f"native kernels, {nat.isa()}" if nat is not None else "NumPy kernels (no native extension)"
    print(f"threads={args.threads}, best of {args.repeat} after a warm-up, cpus={os.cpu_count()}, xent engine: {engine}")
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
            True: best_of(lambda dst=dst, x=x: np.copyto(dst, x), args.repeat),
            False: best_of(lambda x=x: np.sum(x), args.repeat),
        }
        del dst
        for grad in (True, False):
            pass_name = "fwd+grad" if grad else "fwd"
            rows: list[tuple[str, float, str]] = []
            t_x = best_of(lambda grad=grad: xent_call(grad), args.repeat)
            extra = peak_extra(lambda grad=grad: xent_call(grad))
            rows.append(("xent", t_x, f"{extra / x.nbytes:.3f} x ({extra / 2**20:.1f} MiB)"))
            rows.append(("NumPy (obvious)", best_of(lambda grad=grad: np_call(grad), args.repeat), ""))
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
    if args.fresh > 0:
        impls = ["xent", "NumPy (obvious)"] + ([] if args.no_peers else ["PyTorch", "JAX/optax jit"])
        first_call_table(args, impls)


if __name__ == "__main__":
    main()
