"""Vocabulary parallel on gloo processes (CPU): network bytes, peak memory and time per rank.

Each of --world processes holds a contiguous slice of the vocabulary (V not
divisible by the world size is fine). Variants, forward + backward, one after
the other in the same processes:

  gather      the obvious code: local logits h @ W_k.T, all_gather them into the full
              N x V logits on every rank, F.cross_entropy, then each rank backpropagates its
              own columns and all-reduces grad_hidden
  xent        xent.torch.linear_cross_entropy(h, W_k, y, group=...) (fused, chunked)
  xent_logits xent.torch.cross_entropy(h @ W_k.T, y, group=...) on materialised local logits

Bytes: every collective's payload is counted per rank (what the rank contributes:
``all_gather`` input, ``all_reduce`` tensor), split into the per-row statistics
and the all-reduce of grad_hidden (N x d, the same for every tensor-parallel
head). Memory: peak RSS (VmHWM, reset before the variant) above the inputs, per
rank. Time: best of --repeat after a warm-up; max over ranks.

Run: python bench/vocab_parallel.py --world 2 4 [--n 4096 --d 1024 --v 32003] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "torch"))

VARIANTS = ("gather", "xent", "xent_logits")


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def _body(rank, world, a):
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F

    import xent.torch as xt

    torch.set_num_threads(a["threads"])
    group = dist.group.WORLD
    n, d, v = a["n"], a["d"], a["v"]
    sizes = [v // world + (1 if k < v % world else 0) for k in range(world)]
    lo, hi = sum(sizes[:rank]), sum(sizes[: rank + 1])
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(n, d, generator=g).requires_grad_()
    weight = (torch.randn(v, d, generator=g) * d**-0.5)[lo:hi].clone().requires_grad_()
    target = torch.randint(0, v, (n,), generator=g)

    sent = {"stats": 0, "grad_hidden": 0, "logits": 0}
    kind = ["stats"]
    real_gather, real_reduce = dist.all_gather_single, dist.all_reduce

    def gather(out, inp, group=None, async_op=False):
        sent[kind[0]] += inp.numel() * inp.element_size()
        return real_gather(out, inp, group=group, async_op=async_op)

    def reduce(t, op=dist.ReduceOp.SUM, group=None, async_op=False):
        sent["grad_hidden"] += t.numel() * t.element_size()
        return real_reduce(t, op=op, group=group, async_op=async_op)

    dist.all_gather_single, dist.all_reduce = gather, reduce

    def run_gather():
        z = hidden @ weight.t()
        full = torch.empty((world * n, hi - lo), dtype=z.dtype)
        kind[0] = "logits"
        if len(set(sizes)) == 1:
            dist.all_gather_single(full, z.detach().contiguous(), group=group)
            logits = full.view(world, n, -1).permute(1, 0, 2).reshape(n, v)
        else:  # uneven slices: pad to the largest, then drop the padding
            m = max(sizes)
            pad = torch.zeros((n, m), dtype=z.dtype)
            pad[:, : hi - lo] = z.detach()
            full = torch.empty((world * n, m), dtype=z.dtype)
            dist.all_gather_single(full, pad, group=group)
            parts = full.view(world, n, m)
            logits = torch.cat([parts[k, :, : sizes[k]] for k in range(world)], 1)
        kind[0] = "stats"
        logits.requires_grad_()
        F.cross_entropy(logits, target).backward()
        z.backward(logits.grad[:, lo:hi])
        dist.all_reduce(hidden.grad, group=group)

    def run_xent():
        xt.linear_cross_entropy(hidden, weight, target, group=group).backward()

    def run_xent_logits():
        z = hidden @ weight.t()
        xt.cross_entropy(z, target, group=group).backward()
        # the same hand-off of grad_hidden as the other two
        dist.all_reduce(hidden.grad, group=group)

    runs = {"gather": run_gather, "xent": run_xent, "xent_logits": run_xent_logits}
    out, ref = {}, None
    for name in a["variants"]:
        f = runs[name]
        hidden.grad = weight.grad = None
        f()  # warm-up
        for k in sent:
            sent[k] = 0
        hidden.grad = weight.grad = None
        base = _rss()
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        dist.barrier()
        t = time.perf_counter()
        f()
        first = time.perf_counter() - t
        peak = _peak()
        bytes_sent = dict(sent)
        best = first
        for _ in range(a["repeat"] - 1):
            hidden.grad = weight.grad = None
            dist.barrier()
            t = time.perf_counter()
            f()
            best = min(best, time.perf_counter() - t)
        grads = (hidden.numel() + weight.numel()) * 4
        out[name] = {"time_s": best, "extra_bytes": peak - base - grads, **{f"sent_{k}": b for k, b in bytes_sent.items()}}
        if name == "gather":
            ref = (weight.grad.clone(), hidden.grad.clone())
        if ref is not None:
            out[name]["err"] = max(((x.grad - r).abs().max() / r.abs().max()).item()
                                   for x, r in zip((weight, hidden), ref))
    return out


def main() -> None:
    from dist_harness import run_distributed

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world", type=int, nargs="*", default=[2, 4])
    p.add_argument("--n", type=int, default=4096)
    p.add_argument("--d", type=int, default=1024)
    p.add_argument("--v", type=int, default=32003)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    p.add_argument("--variants", nargs="*", choices=VARIANTS, default=list(VARIANTS))
    p.add_argument("--quick", action="store_true", help="N=512, d=256, V=8003, one run: checks that it runs")
    a = p.parse_args()
    if a.quick:
        a.n, a.d, a.v, a.repeat = 512, 256, 8003, 1
    # Large blocks always mmapped in the ranks: freed memory leaves the RSS, so peaks are of live memory.
    os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "131072")
    print(f"vocabulary parallel, forward + backward, N = {a.n}, d = {a.d}, V = {a.v}, float32, gloo on loopback, "
          f"{a.threads} thread(s) per rank, best of {a.repeat}; load average {os.getloadavg()[0]:.1f}")
    print("bytes = payload each rank contributes to collectives per row of the batch; "
          "extra = peak RSS above the inputs and their gradients, worst rank")
    print()
    print("| ranks | variant | bytes/row: logits | bytes/row: statistics | bytes/row: grad_hidden all-reduce | "
          "extra peak per rank (MiB) | time (s) | vs gather | max grad diff vs gather |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for world in a.world:
        res = run_distributed(_body, world=world, timeout=3600,
                              payload={"n": a.n, "d": a.d, "v": a.v, "repeat": a.repeat, "threads": a.threads,
                                       "variants": a.variants})
        base = max(r["gather"]["time_s"] for r in res) if "gather" in res[0] else float("nan")
        for name in a.variants:
            rows = [r[name] for r in res]
            t = max(r["time_s"] for r in rows)
            per_row = {k: max(r[f"sent_{k}"] for r in rows) / a.n for k in ("logits", "stats", "grad_hidden")}
            err = max(r.get("err", float("nan")) for r in rows)
            print(f"| {world} | {name} | {per_row['logits']:.0f} | {per_row['stats']:.0f} | "
                  f"{per_row['grad_hidden']:.0f} | {max(r['extra_bytes'] for r in rows) / 2**20:.0f} | {t:.2f} | "
                  f"{t / base:.2f}x | {err:.1e} |", flush=True)


if __name__ == "__main__":
    main()
