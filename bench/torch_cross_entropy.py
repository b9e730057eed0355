"""xent.torch.cross_entropy vs F.cross_entropy, forward + backward, on materialised logits (CPU).

Run: flock /tmp/xent-bench.lock .venv/bin/python bench/torch_cross_entropy.py [--n 4096 --c 32000 --repeat 7]
Prints best-of-N times measured interleaved in one process, and the ratio.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

import xent.torch as xt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--c", type=int, default=32000)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--chunk-size", type=int, nargs="*", default=[None])
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    z = (3 * torch.randn(a.n, a.c, generator=g)).requires_grad_()
    y = torch.randint(0, a.c, (a.n,), generator=g)
    y[::10] = -100

    def run_torch(**kw):
        F.cross_entropy(z, y, **kw).backward()

    def run_xent(chunk_size=None, **kw):
        xt.cross_entropy(z, y, chunk_size=chunk_size, **kw).backward()

    variants = {"F.cross_entropy + backward": lambda: run_torch()}
    for cs in a.chunk_size:
        variants[f"xent.torch.cross_entropy + backward (chunk_size={cs})"] = lambda cs=cs: run_xent(cs)
    variants["F.cross_entropy, label_smoothing=0.1"] = lambda: run_torch(label_smoothing=0.1)
    variants["xent.torch.cross_entropy, label_smoothing=0.1"] = lambda: run_xent(label_smoothing=0.1)
    best = {k: float("inf") for k in variants}
    for k, f in variants.items():  # warm-up
        z.grad = None
        f()
    for _ in range(a.repeat):  # interleaved, best of N
        for k, f in variants.items():
            z.grad = None
            t = time.perf_counter()
            f()
            best[k] = min(best[k], time.perf_counter() - t)
    # correctness of what we time
    z.grad = None
    run_xent()
    gx = z.grad.clone()
    z.grad = None
    run_torch()
    rel = ((gx - z.grad).abs().max() / z.grad.abs().max()).item()
    base = best["F.cross_entropy + backward"]
    print(f"softmax cross-entropy fwd+bwd, {a.n} x {a.c} float32, torch {torch.__version__}, "
          f"{a.threads} threads, best of {a.repeat}")
    print(f"| variant | time (ms) | vs F.cross_entropy |")
    print(f"|---|---:|---:|")
    for k, v in best.items():
        print(f"| {k} | {v * 1e3:.0f} | {v / base:.2f}x |")
    print(f"max |grad diff| / max |grad| = {rel:.1e}")


if __name__ == "__main__":
    main()
