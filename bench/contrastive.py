"""Contrastive losses (SigLIP, CLIP): peak memory, time and bytes on the wire, xent beside its peers.

Single process (N x d float32 embeddings, forward + backward of the loss with a learnable
scale, and bias for SigLIP), each (loss, variant) in its own subprocess:
  obvious    the N x N logits in plain torch: SigLIP -logsigmoid(z * (s x y^T + b)).sum() / N,
             CLIP (F.cross_entropy(l, arange) + F.cross_entropy(l.T, arange)) / 2
  open_clip  open_clip's SigLipLoss / ClipLoss (open_clip/loss.py loaded from its file)
  xent       xent.torch.siglip_loss / clip_loss, chunked (default chunk size)

Across processes (--dist 2 4; gloo on loopback, one thread per rank, global batch --dist-n
split evenly), each rank holding N/W pairs:
  xent               the ring (xent.torch.*_loss(..., group=WORLD))
  open_clip gather   SigLipLoss(dist_impl="gather") / ClipLoss(local_loss=True, gather_with_grad=True):
                     all-gather of the embeddings (ClipLoss's only distributed mode)
  open_clip bidir    SigLipLoss's default neighbour exchange (SigLIP only)

Memory is the process's peak resident set (VmHWM, reset after the inputs exist) minus
the RSS after the inputs, minus the bytes of the embedding gradients: "extra peak
memory above the inputs and their gradients". Time is the best of --repeat runs after
one warm-up. Bytes sent per rank are counted from the torch.distributed calls each rank
makes: point-to-point payloads and scatters exactly, other collectives at the cost of the ring algorithm
(all_gather: (W-1) x the local tensor; all_reduce: 2 (W-1)/W x the tensor;
reduce_scatter: (W-1)/W x the input). Loss and gradients are checked against the
obvious code (single process) or against open_clip (across processes).

Run (the obvious code and open_clip need ~5 GB at N = 16384; one at a time):
  flock /tmp/xent-bench.lock python bench/contrastive.py
  flock /tmp/xent-bench.lock python bench/contrastive.py --quick      # N = 4096, dist N = 2048
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

from linear_cross_entropy import _peak, _reset_peak, _rss  # bench/ is the script's directory

LOSSES = ("siglip", "clip")
VARIANTS = ("obvious", "open_clip", "xent")
DIST_VARIANTS = ("xent", "open_clip gather", "open_clip bidir")


def open_clip_loss():
    """open_clip/loss.py alone: `import open_clip` pulls in torchvision and timm, which this bench does not need."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None:
        raise SystemExit("open_clip_torch is not installed: pip install --no-deps open_clip_torch==3.3.0")
    path = os.path.join(next(iter(spec.submodule_search_locations)), "loss.py")
    mod_spec = importlib.util.spec_from_file_location("_open_clip_loss", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod


def _inputs(n, d, *, seed=0, lo=0, hi=None):
    """Rows [lo, hi) of a fixed global batch of unit-norm pairs, with a learnable scale and bias."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=1)
    y = torch.nn.functional.normalize(x + torch.randn(n, d, generator=g), dim=1)
    hi = n if hi is None else hi
    x, y = x[lo:hi].clone().requires_grad_(), y[lo:hi].clone().requires_grad_()
    s = torch.tensor(10.0, requires_grad=True)
    b = torch.tensor(-10.0, requires_grad=True)
    return x, y, s, b


def _function(loss, variant, *, rank=0, world=1, chunk=None):
    """``fn(x, y, s, b) -> loss`` for one (loss, variant)."""
    import torch
    import torch.nn.functional as F

    import xent.torch as xt

    if variant == "obvious":
        def siglip(x, y, s, b):
            n = x.shape[0]
            z = 2 * torch.eye(n) - 1
            return -F.logsigmoid(z * (s * x @ y.T + b)).sum() / n

        def clip(x, y, s, b):
            logits = s * x @ y.T
            labels = torch.arange(x.shape[0])
            return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2

        return siglip if loss == "siglip" else clip
    if variant == "xent":
        group = torch.distributed.group.WORLD if world > 1 else None
        if loss == "siglip":
            return lambda x, y, s, b: xt.siglip_loss(x, y, s, b, chunk_size=chunk, group=group)
        return lambda x, y, s, b: xt.clip_loss(x, y, s, chunk_size=chunk, group=group)
    oc = open_clip_loss()
    if loss == "siglip":
        impl = "bidir" if variant.endswith("bidir") else "gather"
        m = oc.SigLipLoss(rank=rank, world_size=world, dist_impl=impl)
        return lambda x, y, s, b: m(x, y, s, b)
    m = oc.ClipLoss(local_loss=world > 1, gather_with_grad=world > 1, rank=rank, world_size=world)
    return lambda x, y, s, b: m(x, y, s)


def _measure(fn, x, y, s, b, params, repeat):
    import torch

    base = _rss()
    exact = _reset_peak()
    grad_bytes = (x.numel() + y.numel()) * x.element_size()
    times = []
    for _ in range(1 + repeat):
        t = time.perf_counter()
        out = fn(x, y, s, b)
        grads = torch.autograd.grad(out, params)
        times.append(time.perf_counter() - t)
        del grads
    peak = _peak()
    return {"time_s": min(times[1:]), "extra_bytes": peak - base - grad_bytes, "peak_exact": exact}


def worker(a) -> dict:
    import torch

    torch.set_num_threads(a.threads)
    x, y, s, b = _inputs(a.n, a.d)
    params = [x, y, s] + ([b] if a.loss == "siglip" else [])
    fn = _function(a.loss, a.variant, chunk=a.chunk)
    out = {"variant": a.variant, **_measure(fn, x, y, s, b, params, a.repeat)}
    # Correctness after the measurement: the same loss and gradients as the obvious code.
    got = fn(x, y, s, b)
    g_got = torch.autograd.grad(got, params)
    ref = _function(a.loss, "obvious")(x, y, s, b)
    g_ref = torch.autograd.grad(ref, params)
    out["rel_err_loss"] = abs(got.item() - ref.item()) / abs(ref.item())
    out["rel_err_grad"] = max(((g - r).abs().max() / r.abs().max()).item() for g, r in zip(g_got, g_ref))
    return out


class _ByteCounter:
    """Counts the bytes this rank sends through torch.distributed (see the module docstring)."""

    def __init__(self):
        import torch.distributed as dist

        self.sent = 0
        world = dist.get_world_size()

        def nbytes(t):
            return t.numel() * t.element_size()

        rank = dist.get_rank()

        def scattered(out, inputs=None, src=0, *a, **k):
            return sum(nbytes(t) for i, t in enumerate(inputs or []) if i != rank) if src == rank else 0

        rules = {
            # P2POp insists on the real isend, so point-to-point is counted per batch (isend ops only).
            "batch_isend_irecv": lambda ops: sum(nbytes(op.tensor) for op in ops if op.op is dist.isend),
            "send": lambda t, *a, **k: nbytes(t),
            "scatter": scattered,
            "all_to_all": lambda outs, inputs, *a, **k: sum(nbytes(t) for i, t in enumerate(inputs) if i != rank),
            "all_gather": lambda out, t, *a, **k: (world - 1) * nbytes(t),
            "all_gather_into_tensor": lambda out, t, *a, **k: (world - 1) * nbytes(t),
            "all_reduce": lambda t, *a, **k: 2 * (world - 1) * nbytes(t) // world,
            "reduce_scatter": lambda out, inputs, *a, **k: (world - 1) * nbytes(out),
            "reduce_scatter_tensor": lambda out, t, *a, **k: (world - 1) * nbytes(out),
        }
        for name, rule in rules.items():
            orig = getattr(dist, name)

            def wrapped(*args, _orig=orig, _rule=rule, **kwargs):
                self.sent += _rule(*args, **kwargs)
                return _orig(*args, **kwargs)

            setattr(dist, name, wrapped)


def dist_body(rank, world, payload):
    """One (loss, variant) on this rank: measured, then checked against open_clip's all-gather loss."""
    import warnings

    import torch
    import torch.distributed as dist

    warnings.filterwarnings("ignore", category=FutureWarning)  # open_clip's torch.distributed.nn.all_gather
    counter = _ByteCounter()
    n, d, repeat, loss, variant = (payload[k] for k in ("n", "d", "repeat", "loss", "variant"))
    per = n // world
    x, y, s, b = _inputs(n, d, lo=rank * per, hi=(rank + 1) * per)
    params = [x, y, s] + ([b] if loss == "siglip" else [])
    fn = _function(loss, variant, rank=rank, world=world)
    dist.barrier()
    counter.sent = 0
    m = _measure(fn, x, y, s, b, params, repeat)
    m["bytes_sent"] = counter.sent // (1 + repeat)
    results = []
    for f in (fn, _function(loss, "open_clip gather", rank=rank, world=world)):
        val = f(x, y, s, b)
        grads = torch.autograd.grad(val, params)
        total = val.detach().clone()
        dist.all_reduce(total)
        results.append((total.item() / world, grads))
    (got, g_got), (ref, g_ref) = results
    m["rel_err_loss"] = abs(got - ref) / abs(ref)
    m["rel_err_grad"] = max(((g - r).abs().max() / r.abs().max()).item() for g, r in zip(g_got, g_ref))
    return m


def run_one(a, loss, variant) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--loss", loss, "--variant", variant,
           "--n", str(a.n), "--d", str(a.d), "--repeat", str(a.repeat), "--threads", str(a.threads)]
    if a.chunk:
        cmd += ["--chunk", str(a.chunk)]
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        tail = (p.stderr or p.stdout).strip().splitlines()
        return {"variant": variant, "error": tail[-1] if tail else f"exit {p.returncode}"}
    return json.loads(p.stdout.strip().splitlines()[-1])


def single_table(a) -> None:
    print(f"### One process: N = {a.n}, d = {a.d}, float32, forward + backward, {a.threads} threads, "
          f"best of {a.repeat} after a warm-up, best of {a.rounds} alternating subprocess(es)")
    print()
    print("| loss | variant | time (s) | vs obvious | extra peak (MiB) | obvious / this | vs open_clip (mem) | "
          "loss err | grad err |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for loss in LOSSES:
        rows = {}
        for _ in range(a.rounds):
            for var in a.variants:
                r = run_one(a, loss, var)
                old = rows.get(var)
                if old is None or "error" in old:
                    rows[var] = r
                elif "error" not in r:
                    old["time_s"] = min(old["time_s"], r["time_s"])
                    old["extra_bytes"] = min(old["extra_bytes"], r["extra_bytes"])
        ob, oc = rows.get("obvious", {}), rows.get("open_clip", {})
        for var, r in rows.items():
            if "error" in r:
                print(f"| {loss} | {var} | failed: {r['error'][:120]} | | | | | | |")
                continue
            ratio = r["time_s"] / ob["time_s"] if "time_s" in ob else float("nan")
            mem = r["extra_bytes"] / 2**20
            m_ob = ob["extra_bytes"] / r["extra_bytes"] if "extra_bytes" in ob else float("nan")
            m_oc = oc["extra_bytes"] / r["extra_bytes"] if "extra_bytes" in oc else float("nan")
            print(f"| {loss} | {var} | {r['time_s']:.2f} | {ratio:.2f}x | {mem:.0f} | {m_ob:.1f}x | {m_oc:.1f}x | "
                  f"{r['rel_err_loss']:.1e} | {r['rel_err_grad']:.1e} |", flush=True)
    print()


def dist_table(a) -> None:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "torch"))
    from dist_harness import run_distributed

    print(f"### Across processes: gloo on loopback, global N = {a.dist_n}, d = {a.d}, float32, one thread per rank, "
          f"best of {a.repeat} after a warm-up")
    print()
    print("| ranks | loss | variant | time (s) | sent per rank (MiB) | extra peak per rank (MiB) | loss err | "
          "grad err |")
    print("|---:|---|---|---:|---:|---:|---:|---:|")
    for world in a.dist:
        for loss in LOSSES:
            for var in DIST_VARIANTS:
                if loss == "clip" and var.endswith("bidir"):
                    continue  # ClipLoss has no neighbour exchange
                payload = {"n": a.dist_n, "d": a.d, "repeat": a.repeat, "loss": loss, "variant": var}
                res = run_distributed(dist_body, world=world, payload=payload, timeout=3600)  # fresh processes
                t = max(r["time_s"] for r in res)
                sent = max(r["bytes_sent"] for r in res) / 2**20
                mem = max(r["extra_bytes"] for r in res) / 2**20
                el = res[0]["rel_err_loss"]
                eg = max(r["rel_err_grad"] for r in res)
                print(f"| {world} | {loss} | {var} | {t:.2f} | {sent:.1f} | {mem:.0f} | {el:.1e} | {eg:.1e} |",
                      flush=True)
    print()


def main() -> None:
    p = argparse.ArgumentParser(description="contrastive losses: memory, time and bytes vs the obvious code and open_clip")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--loss", choices=LOSSES)
    p.add_argument("--variant", choices=VARIANTS)
    p.add_argument("--variants", nargs="*", default=list(VARIANTS))
    p.add_argument("--n", type=int, default=16384)
    p.add_argument("--d", type=int, default=512)
    p.add_argument("--chunk", type=int, default=None, help="xent's chunk_size (default: xent's own)")
    p.add_argument("--repeat", type=int, default=2, help="timed runs after the warm-up (best of)")
    p.add_argument("--rounds", type=int, default=1, help="subprocesses per variant, alternating (best of)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dist", type=int, nargs="*", default=[2, 4], help="world sizes (none: skip)")
    p.add_argument("--dist-n", type=int, default=8192, help="global batch across the ranks")
    p.add_argument("--single", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--quick", action="store_true", help="N = 4096, dist N = 2048")
    a = p.parse_args()
    if a.worker:
        print(json.dumps(worker(a)))
        return
    if a.quick:
        a.n, a.dist_n = 4096, 2048
    import torch

    print(f"contrastive losses, torch {torch.__version__} CPU; extra = peak RSS above the inputs and their gradients; "
          "errors are max relative differences against the obvious code (one process) or open_clip gather (ranks)")
    print()
    if a.single:
        single_table(a)
    if a.dist:
        dist_table(a)


if __name__ == "__main__":
    main()
