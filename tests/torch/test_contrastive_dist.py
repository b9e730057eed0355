"""xent.torch.siglip_loss / clip_loss across 2 and 4 gloo processes (the ring) against one process.

Convention under test (DistributedDataParallel's): the mean of the ranks' losses is
the full-batch loss; each rank's gradient for its rows of x and y is world_size times
the full-batch gradient for those rows (more generally: the gradient of
sum_r g_r L_r for per-rank upstream gradients g_r); the ranks' scale/bias gradients
average to the full-batch one; and through DDP the encoders' parameter gradients
equal the single-process ones. Each spawn runs many checks (spawning costs seconds).
"""

from __future__ import annotations

import copy

import pytest

from dist_harness import run_distributed

SIZES = {2: (5, 3), 4: (3, 1, 4, 2)}  # uneven local batches
D = 6


def _close(a, b, what, rtol=1e-10, atol=1e-12):
    import torch

    torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=lambda m: f"{what}: {m}")


def _global_batch(n, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, D, generator=g, dtype=torch.float64)
    y = x + 0.7 * torch.randn(n, D, generator=g, dtype=torch.float64)  # positives score higher
    return x, y


def _functional_checks(rank, world):
    """Loss and every gradient against the single-process full batch, upstream 1 and per-rank upstream."""
    import torch
    import torch.distributed as dist

    import xent
    import xent.torch as xt

    group = dist.group.WORLD
    sizes = SIZES[world]
    lo, hi = sum(sizes[:rank]), sum(sizes[: rank + 1])
    owner = torch.cat([torch.full((n,), r, dtype=torch.float64) for r, n in enumerate(sizes)])
    X, Y = _global_batch(sum(sizes))
    n_total = X.shape[0]
    checked = 0
    # (loss, options, scale, bias, chunk_size, upstream): chunks of 2 and 3 split the blocks unevenly.
    cases = [
        ("siglip", {}, 3.0, -2.0, 2, "ones"),
        ("siglip", {}, 3.0, -2.0, None, "per-rank"),
        ("clip", {}, 4.0, None, 3, "per-rank"),
        ("clip", {"label_smoothing": 0.1}, 2.5, None, 2, "ones"),
    ]
    for name, opts, s0, b0, chunk, upstream in cases:
        c = 1.0 if upstream == "ones" else float(rank + 1)
        x = X[lo:hi].clone().requires_grad_()
        y = Y[lo:hi].clone().requires_grad_()
        s = torch.tensor(s0, dtype=torch.float64, requires_grad=True)
        b = None if b0 is None else torch.tensor(b0, dtype=torch.float64, requires_grad=True)
        if name == "siglip":
            loss = xt.siglip_loss(x, y, s, b, chunk_size=chunk, group=group)
        else:
            loss = xt.clip_loss(x, y, s, chunk_size=chunk, group=group, **opts)
        (loss * c).backward()
        # Reference: L_r = W/N sum_{i in r} l_i with the core's per-pair losses, weighted by c_r.
        Xr, Yr = X.clone().requires_grad_(), Y.clone().requires_grad_()
        sr = torch.tensor(s0, dtype=torch.float64, requires_grad=True)
        br = None if b0 is None else torch.tensor(b0, dtype=torch.float64, requires_grad=True)
        if name == "siglip":
            per = xent.siglip_loss(Xr, Yr, scale=sr, bias=br, reduction="none")
        else:
            per = xent.clip_loss(Xr, Yr, scale=sr, reduction="none", **opts)
        weights = owner + 1.0 if upstream == "per-rank" else torch.ones_like(owner)
        (world / n_total * (weights * per).sum()).backward()
        share = world / n_total * per[lo:hi].sum()
        tag = f"{name}{opts} chunk={chunk} upstream={upstream} rank={rank}/{world}"
        _close(loss, share.detach(), f"{tag}: loss share")
        _close(x.grad, Xr.grad[lo:hi], f"{tag}: grad x")
        _close(y.grad, Yr.grad[lo:hi], f"{tag}: grad y")
        # Scale/bias: the ranks' gradients sum to the reference's (their mean under DDP).
        params = [(s, sr)] + ([] if b is None else [(b, br)])
        for mine, ref in params:
            tot = mine.grad.detach().clone()
            dist.all_reduce(tot, group=group)
            _close(tot, ref.grad, f"{tag}: summed scale/bias grad")
        mean_loss = loss.detach().clone()
        dist.all_reduce(mean_loss, group=group)
        if upstream == "ones":
            full = per.detach().mean()
            _close(mean_loss / world, full, f"{tag}: mean of the ranks' losses")
        checked += 1
    return checked


def _error_checks(rank, world):
    """Inputs that only one rank gets wrong fail on every rank, with a message naming the problem."""
    import torch
    import torch.distributed as dist

    import xent.torch as xt

    group = dist.group.WORLD
    msgs = []
    d = 5 if rank == world - 1 else D
    for fn in (lambda x, y: xt.siglip_loss(x, y, 2.0, 0.0, group=group), lambda x, y: xt.clip_loss(x, y, 2.0, group=group)):
        try:
            fn(torch.randn(3, d), torch.randn(3, d))
        except ValueError as exc:
            msgs.append(str(exc))
        n = 0 if rank == 0 else 2
        try:
            fn(torch.randn(n, D), torch.randn(n, D))
        except ValueError as exc:
            msgs.append(str(exc))
    try:
        xt.siglip_loss(torch.randn(2, D), torch.randn(2, D), -1.0 if rank == 1 else 1.0, 0.0, group=group)
    except ValueError as exc:
        msgs.append(str(exc))
    # The group still works after the failures: nothing is left half-sent.
    loss = xt.siglip_loss(torch.randn(2, D), torch.randn(2, D), 2.0, 0.0, group=group)
    return msgs, bool(torch.isfinite(loss))


def _ddp_checks(rank, world):
    """Two DDP-wrapped encoders and the loss modules: parameter gradients equal the single-process ones."""
    import torch
    import torch.distributed as dist
    from torch import nn

    import xent.torch as xt

    sizes = SIZES[world]
    lo, hi = sum(sizes[:rank]), sum(sizes[: rank + 1])
    g = torch.Generator().manual_seed(1)
    n = sum(sizes)
    a = torch.randn(n, 7, generator=g, dtype=torch.float64)
    t = torch.randn(n, 4, generator=g, dtype=torch.float64)
    checked = 0
    makers = {  # one loss per world size: each DDP construction costs seconds under gloo
        2: lambda grp: xt.SigLIPLoss(init_scale=5.0, init_bias=-3.0, chunk_size=2, group=grp, dtype=torch.float64),
        4: lambda grp: xt.CLIPLoss(init_scale=3.0, label_smoothing=0.05, chunk_size=3, group=grp, dtype=torch.float64),
    }
    for make in (makers[world],):
        torch.manual_seed(2)

        class Towers(nn.Module):
            def __init__(self, loss):
                super().__init__()
                self.image = nn.Linear(7, D, dtype=torch.float64)
                self.text = nn.Sequential(nn.Linear(4, 8, dtype=torch.float64), nn.Tanh(),
                                          nn.Linear(8, D, dtype=torch.float64))
                self.loss = loss

            def forward(self, image, text):
                x = nn.functional.normalize(self.image(image), dim=1)
                y = nn.functional.normalize(self.text(text), dim=1)
                return self.loss(x, y)

        single = Towers(make(None))
        model = copy.deepcopy(single)
        model.loss.group = dist.group.WORLD
        ddp = nn.parallel.DistributedDataParallel(model)
        ddp(a[lo:hi], t[lo:hi]).backward()
        single(a, t).backward()
        for (name, p), (_, q) in zip(ddp.module.named_parameters(), single.named_parameters()):
            _close(p.grad, q.grad, f"DDP {type(single.loss).__name__} {name} rank={rank}/{world}")
            checked += 1
    return checked


def _body(rank, world, payload):
    out = {"functional": _functional_checks(rank, world), "ddp": _ddp_checks(rank, world)}
    if payload.get("errors"):
        out["errors"] = _error_checks(rank, world)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("world", [2, 4])
def test_ring_matches_single_process_and_ddp(world):
    results = run_distributed(_body, world=world, payload={"errors": world == 2}, timeout=240)
    for r in results:
        assert r["functional"] == 4
        assert r["ddp"] >= 5
    if world == 2:
        for rank, r in enumerate(results):
            msgs, finite = r["errors"]
            assert finite
            assert len(msgs) == 5, msgs
            assert "disagree on d" in msgs[0] and "d = 5" in msgs[0] and "d = 6" in msgs[0]
            assert "N >= 1" in msgs[1] if rank == 0 else "rank 0 of `group` has invalid input" in msgs[1]
            assert "disagree on d" in msgs[2]
            assert "`scale` must be a finite number > 0" in msgs[4] if rank == 1 else "rank 1" in msgs[4]
