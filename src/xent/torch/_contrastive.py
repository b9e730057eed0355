"""Chunked, ring-distributed SigLIP and CLIP losses: the autograd Functions behind :mod:`xent.torch.contrastive`.

The global batch is split over the ``W`` ranks of a ring (``W = 1`` without a
process group): rank ``r`` holds ``x_r``, ``y_r`` (``n_r`` rows each). Each rank
computes the blocks of logits ``l = s x_r y_t^T (+ b)`` of its own rows of ``x``
against every block ``y_t``, while the ``y`` blocks travel one hop to the right
per step (the SigLIP paper's ring). Inside a block, ``rows`` rows of ``x`` are
taken at a time, so at most ``rows x n_t`` logits (and their gradient) exist.
The formulas are those of :mod:`xent.losses.contrastive`; with
``G = d loss / d l`` per block: ``d x = s G y``, ``d y = s G^T x``,
``d s = sum_i x_i . (G y)_i``, ``d b = sum G``.

Gradient convention (DistributedDataParallel's): rank ``r`` returns
``L_r = W / N * (its rows' share)`` so that ``mean_r L_r`` is the full-batch
loss, and autograd's gradient of ``sum_r g_r L_r`` (``g_r`` the upstream
gradient on rank ``r``) reaches the rank that owns each embedding.

SigLIP. ``L_r = W/N sum_{i in r} sum_j -log sigmoid(z_ij l_ij)`` depends on the
other ranks' ``y`` only. Forward: one ring of ``y``; per block the loss, and
``G`` contracted at once into ``d x_r``, ``d s``, ``d b`` (and, on one rank,
``d y``: three GEMMs per block, no recomputation). Backward, with W > 1: the
``y`` gradient needs every rank's ``g_r``, so ``x_r`` and ``g_r`` go round the ring
and each rank recomputes its ``y`` columns' blocks (two GEMMs per block).

CLIP. ``L_r = W/(2N) (sum_{i in r} CE(row i) + sum_{j in r} CE(column j))``. Forward:
one ring of ``y`` with, beside each block, the running log-sum-exp of its
columns (which comes home after the last step); each rank keeps the row
log-sum-exp of its rows (one matmul per block). Backward: a second ring of
``y`` (with its column lse and its owner's ``g``) and an accumulator of its
gradient, which comes home at the end; per block the logits are recomputed and
``G = a_r (P_row - e/N) + a_t (P_col - e/N)`` minus ``(1 - e)(a_r + a_t)`` on the
diagonal, with ``a = g W / (2N)`` (three matmuls per block; with one rank ``a``
multiplies the (N, d) results once instead of every block).

Only ``batch_isend_irecv`` (point-to-point) and ``all_reduce`` / ``all_gather``
are used: gloo and NCCL both have them. Nothing reads a device value on the
host; the one exchange of host metadata (every rank's N and d, to size the
receive buffers and to reject mismatches) goes through a CPU (gloo) group.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["CLIPFunction", "Ring", "SigLIPFunction", "single_ring"]


@dataclass(frozen=True)
class Ring:
    """Who holds what: the group (None for one process), this rank and every rank's number of pairs."""

    group: Any
    rank: int
    sizes: tuple[int, ...]

    @property
    def world(self) -> int:
        return len(self.sizes)

    @property
    def total(self) -> int:
        return sum(self.sizes)

    def owner(self, step: int) -> int:
        """The rank whose block this rank holds at ``step`` (blocks move one hop right per step)."""
        return (self.rank - step) % self.world

    def shift(self, sends: list[torch.Tensor], recvs: list[torch.Tensor]) -> list[Any]:
        """Send ``sends`` to the right neighbour and receive ``recvs`` from the left one (asynchronous)."""
        if self.world == 1 or not (sends or recvs):
            return []
        right, left = (self.rank + 1) % self.world, (self.rank - 1) % self.world
        ops = [dist.P2POp(dist.isend, t, group=self.group, group_peer=right) for t in sends]
        ops += [dist.P2POp(dist.irecv, t, group=self.group, group_peer=left) for t in recvs]
        return dist.batch_isend_irecv(ops)

    def shift_now(self, sends: list[torch.Tensor], recvs: list[torch.Tensor]) -> None:
        for w in self.shift(sends, recvs):
            w.wait()


def single_ring(n: int) -> Ring:
    return Ring(group=None, rank=0, sizes=(n,))


def _acc_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64  # float64 sums (MPS has none)


def _like(shape: tuple[int, ...], t: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    return torch.empty(shape, dtype=t.dtype if dtype is None else dtype, device=t.device)


class _Buffers:
    """Reusable (rows, cols) work buffers: one allocation per call, not one per chunk."""

    def __init__(self, rows: int, cols: int, count: int, dtype: torch.dtype, device: torch.device):
        self.bufs = [torch.empty((rows, cols), dtype=dtype, device=device) for _ in range(count)]

    def get(self, i: int, r: int, c: int) -> torch.Tensor:
        # A (r, c) view with row stride c: contiguous, so matmul writes it in place.
        return self.bufs[i].view(-1)[: r * c].view(r, c)


def _chunks(n: int, rows: int) -> Iterator[tuple[int, int]]:
    for c0 in range(0, n, rows):
        yield c0, min(n, c0 + rows)


# ----------------------------------------------------------------------------- SigLIP


def _siglip_margins(out: Tensor, xs_c: Tensor, yt: Tensor, b: Tensor, *, diag: int | None) -> Tensor:
    """out[:] = z * (xs_c @ yt^T + b): -l off the diagonal, +l on it (``diag`` = the chunk's first row)."""
    torch.addmm(-b, xs_c, yt.t(), beta=1, alpha=-1, out=out)
    if diag is not None:
        out.diagonal(diag).neg_()
    return out


def _siglip_grad_(m: Tensor, *, diag: int | None) -> Tensor:
    """Margins -> d(-log sigmoid(z l))/dl = -z sigmoid(-z l), in place."""
    m.neg_().sigmoid_()
    if diag is not None:
        m.diagonal(diag).neg_()
    return m


class SigLIPFunction(torch.autograd.Function):
    """Loss share of this rank; gradients as described in the module docstring."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, y: Tensor, scale: Tensor, bias: Tensor, ring: Ring, rows: int,
        need: tuple[bool, bool, bool, bool],
    ) -> Tensor:
        need_x, need_y, need_s, need_b = need
        cdt = torch.promote_types(x.dtype, torch.float32)
        acc = _acc_dtype(x.device)
        n, d = x.shape
        s, b = scale.to(cdt), bias.to(cdt)
        xc = x.to(cdt)
        grads_now = need_x or need_s or need_b or (need_y and ring.world == 1)
        gx = torch.zeros((n, d), dtype=cdt, device=x.device) if (need_x or need_s) else None
        gy = torch.zeros((n, d), dtype=cdt, device=x.device) if (need_y and ring.world == 1) else None
        sums = torch.zeros((2,), dtype=acc, device=x.device)  # d scale, d bias (before the 1/N)
        rows_loss = torch.zeros((n,), dtype=acc, device=x.device)
        work = _Buffers(min(rows, n), max(ring.sizes), 2, cdt, x.device)
        yt = y
        for step in range(ring.world):
            c = ring.sizes[ring.owner(step)]
            nxt = [_like((ring.sizes[ring.owner(step + 1)], d), y)] if step + 1 < ring.world else []
            pending = ring.shift([yt] if nxt else [], nxt)  # the next block travels while this one is computed
            ytc = yt.to(cdt)
            for c0, c1 in _chunks(n, rows):
                diag = c0 if step == 0 else None
                xs_c = xc[c0:c1] * s
                m = _siglip_margins(work.get(0, c1 - c0, c), xs_c, ytc, b, diag=diag)
                # exact for any finite margin; out= (not in torch's stubs) reuses the work buffer
                ls = torch._C._nn.log_sigmoid(m, out=work.get(1, c1 - c0, c))  # type: ignore[call-arg]
                rows_loss[c0:c1] -= ls.sum(1)  # float32 row sums (cascaded), accumulated across blocks in float64
                if not grads_now:
                    continue
                # expm1(log sigmoid(m)) = -sigmoid(-m), exact at both ends, so the gradient
                # G = -z sigmoid(-m) is -E off the diagonal and +E on it: E' = -G, one pass.
                neg_g = ls.expm1_()
                if diag is not None:
                    neg_g.diagonal(diag).neg_()
                if gx is not None:
                    gyx = neg_g @ ytc
                    gx[c0:c1] -= gyx
                    sums[0] -= (gyx * xc[c0:c1]).sum(dtype=acc)
                sums[1] -= neg_g.sum(1).sum(dtype=acc)
                if gy is not None:
                    gy.addmm_(neg_g.t(), xs_c, alpha=-1)
            for w in pending:
                w.wait()
            if nxt:
                yt = nxt[0]
        share = ring.world / ring.total
        loss = (rows_loss.sum() * share).to(cdt)
        ctx.ring, ctx.rows, ctx.need, ctx.share = ring, rows, need, share
        ctx.dtypes = (x.dtype, y.dtype, scale.dtype, bias.dtype)
        ctx.grads = (
            None if gx is None else gx.mul_(s * share),
            None if gy is None else gy.mul_(share),
            (sums[0] * share).to(cdt),
            (sums[1] * share).to(cdt),
        )
        if need_y and ring.world > 1:
            ctx.save_for_backward(x, y, scale, bias)
        return loss

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        need_x, need_y, need_s, need_b = ctx.need
        gx, gy, ds, db = ctx.grads
        g = grad_out
        tx, ty, ts, tb = ctx.dtypes
        # New tensors, not in-place scaling: a second backward (retain_graph=True) sees the same grads.
        dx = (gx * g.to(gx.dtype)).to(tx) if need_x else None
        if need_y:
            if gy is not None:
                dy = gy * g.to(gy.dtype)
            else:
                x, y, scale, bias = ctx.saved_tensors
                dy = _siglip_ring_dy(x, y, scale, bias, g, ctx.ring, ctx.rows, ctx.share)
            dy = dy.to(ty)
        else:
            dy = None
        dscale = (ds * g.to(ds.dtype)).to(ts) if need_s else None
        dbias = (db * g.to(db.dtype)).to(tb) if need_b else None
        return dx, dy, dscale, dbias, None, None, None


def _siglip_ring_dy(
    x: Tensor, y: Tensor, scale: Tensor, bias: Tensor, g: Tensor, ring: Ring, rows: int, share: float
) -> Tensor:
    """``d y_r = sum_t g_t share s G_{tr}^T x_t``: the blocks ``x_t`` (with ``g_t``) come round the ring."""
    cdt = torch.promote_types(x.dtype, torch.float32)
    n, d = y.shape
    s, b = scale.to(cdt), bias.to(cdt)
    yc = y.to(cdt)
    dy = torch.zeros((n, d), dtype=cdt, device=y.device)
    xt, gt = x, (g.to(cdt) * share).reshape(1)
    work = _Buffers(min(rows, max(ring.sizes)), n, 1, cdt, y.device)
    for step in range(ring.world):
        rows_t = ring.sizes[ring.owner(step)]
        if step + 1 < ring.world:
            nxt = [_like((ring.sizes[ring.owner(step + 1)], d), x), _like((1,), gt)]
            pending = ring.shift([xt, gt], nxt)
        else:
            nxt, pending = [], []
        xtc = xt.to(cdt)
        for c0, c1 in _chunks(rows_t, rows):
            diag = c0 if step == 0 else None
            xs_c = xtc[c0:c1] * s
            gm = _siglip_grad_(_siglip_margins(work.get(0, c1 - c0, n), xs_c, yc, b, diag=diag), diag=diag)
            dy.addmm_(gm.t(), xs_c * gt)
        for w in pending:
            w.wait()
        if nxt:
            xt, gt = nxt
    return dy


# ----------------------------------------------------------------------------- CLIP


def _logaddexp_(acc: torch.Tensor, v: torch.Tensor) -> None:
    acc.copy_(torch.logaddexp(acc, v))


def _lse_(buf: torch.Tensor, tmp: torch.Tensor, dim: int) -> torch.Tensor:
    """logsumexp of ``buf`` along ``dim`` through the work buffer ``tmp`` (torch.logsumexp allocates two)."""
    m = buf.amax(dim, keepdim=True)
    # exp(l - max) <= 1 never overflows and its sum is >= 1 (finite logits).
    return torch.sub(buf, m, out=tmp).exp_().sum(dim).log_().add_(m.squeeze(dim))


class CLIPFunction(torch.autograd.Function):
    """Loss share of this rank (forward: log-sum-exps; backward: a second ring for the gradients)."""

    @staticmethod
    def forward(
        ctx: Any, x: Tensor, y: Tensor, scale: Tensor, ring: Ring, rows: int, smoothing: float,
        need: tuple[bool, bool, bool],
    ) -> Tensor:
        cdt = torch.promote_types(x.dtype, torch.float32)
        acc = _acc_dtype(x.device)
        n, d = x.shape
        s = scale.to(cdt)
        xs = x.to(cdt) * s
        lse_row = torch.full((n,), -math.inf, dtype=cdt, device=x.device)
        lse_col = torch.full((n,), -math.inf, dtype=cdt, device=x.device)  # of the block in hand
        work = _Buffers(min(rows, n), max(ring.sizes), 2, cdt, x.device)
        yt = y
        for step in range(ring.world):
            c = ring.sizes[ring.owner(step)]
            nxt = [_like((ring.sizes[ring.owner(step + 1)], d), y)] if step + 1 < ring.world else []
            pending = ring.shift([yt] if nxt else [], nxt)
            ytc = yt.to(cdt)
            for c0, c1 in _chunks(n, rows):
                buf = torch.mm(xs[c0:c1], ytc.t(), out=work.get(0, c1 - c0, c))
                tmp = work.get(1, c1 - c0, c)
                _logaddexp_(lse_row[c0:c1], _lse_(buf, tmp, 1))
                _logaddexp_(lse_col, _lse_(buf, tmp, 0))
            for w in pending:
                w.wait()
            if ring.world > 1:  # the column lse follows its block; after the last step it is home
                home = _like((ring.sizes[ring.owner(step + 1)],), lse_col)
                ring.shift_now([lse_col], [home])
                lse_col = home
            if nxt:
                yt = nxt[0]
        xc, yc = x.to(cdt), y.to(cdt)
        diag = (xs * yc).sum(1)  # l_ii of this rank's pairs
        ce_row = lse_row - (1.0 - smoothing) * diag
        ce_col = lse_col - (1.0 - smoothing) * diag
        if smoothing > 0.0:
            # e/N sum_j l_ij = e/N s x_i . sum_j y_j (and the same for columns): global sums of the embeddings.
            tot = torch.stack([xc.sum(0, dtype=acc), yc.sum(0, dtype=acc)])
            if ring.world > 1:
                dist.all_reduce(tot, group=ring.group)
            tot = tot.to(cdt) * (smoothing / ring.total)
            ce_row = ce_row - xs @ tot[1]
            ce_col = ce_col - (yc * s) @ tot[0]
        share = ring.world / (2 * ring.total)
        loss = ((ce_row.sum(dtype=acc) + ce_col.sum(dtype=acc)) * share).to(cdt)
        ctx.save_for_backward(x, y, scale, lse_row, lse_col)
        ctx.ring, ctx.rows, ctx.smoothing, ctx.need, ctx.share = ring, rows, smoothing, need, share
        return loss

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        x, y, scale, lse_row, lse_col = ctx.saved_tensors
        need_x, need_y, need_s = ctx.need
        dx, dy, ds = _clip_grads(x, y, scale, lse_row, lse_col, grad_out, ctx.ring, ctx.rows, ctx.smoothing,
                                 ctx.share, need_x or need_s)
        return (dx.to(x.dtype) if need_x and dx is not None else None, dy.to(y.dtype) if need_y else None,
                ds.to(scale.dtype) if need_s else None, None, None, None, None)


def _clip_grads(
    x: Tensor, y: Tensor, scale: Tensor, lse_row: Tensor, lse_col: Tensor, g: Tensor, ring: Ring, rows: int,
    e: float, share: float, need_gx: bool,
) -> tuple[Tensor | None, Tensor, Tensor]:
    cdt = lse_row.dtype
    acc = _acc_dtype(x.device)
    n, d = x.shape
    s = scale.to(cdt)
    xc = x.to(cdt)
    xs = xc * s
    a_r = g.to(cdt) * share
    smooth = e / ring.total
    gx = torch.zeros((n, d), dtype=cdt, device=x.device) if need_gx else None
    ds = torch.zeros((), dtype=acc, device=x.device)
    yt, lse_t, a_t = y, lse_col, a_r.reshape(1)
    gy_t = torch.zeros((n, d), dtype=cdt, device=x.device)  # the gradient of the block in hand
    work = _Buffers(min(rows, n), max(ring.sizes), 2, cdt, x.device)
    # One rank: G = a (P_row + P_col - 2q), and a multiplies the small results at the end instead of each block.
    unit = ring.world == 1
    for step in range(ring.world):
        c = ring.sizes[ring.owner(step)]
        if step + 1 < ring.world:
            c_next = ring.sizes[ring.owner(step + 1)]
            nxt = [_like((c_next, d), y), _like((c_next,), lse_t), _like((1,), a_t)]
            pending = ring.shift([yt, lse_t, a_t], nxt)
        else:
            nxt, pending = [], []
        ytc = yt.to(cdt)
        coef_r, coef_t = (1.0, 1.0) if unit else (a_r, a_t)
        for c0, c1 in _chunks(n, rows):
            buf = torch.mm(xs[c0:c1], ytc.t(), out=work.get(0, c1 - c0, c))
            p_col = torch.sub(buf, lse_t, out=work.get(1, c1 - c0, c)).exp_()
            buf.sub_(lse_row[c0:c1, None]).exp_()
            if not unit:
                p_col.mul_(a_t)
                buf.mul_(a_r)
            buf.add_(p_col)  # coef_r P_row + coef_t P_col
            if e > 0.0:
                buf.sub_(smooth * (coef_r + coef_t))
            if step == 0:  # the diagonal block: its owner's row and column targets
                buf.diagonal(c0).sub_((1.0 - e) * (coef_r + coef_t))
            if gx is not None:
                gyx = buf @ ytc
                gx[c0:c1] += gyx
                ds += (gyx * xc[c0:c1]).sum(dtype=acc)
            gy_t.addmm_(buf.t(), xs[c0:c1])
        for w in pending:
            w.wait()
        if ring.world > 1:  # the block's gradient follows it; after the last step it is home
            home = _like((ring.sizes[ring.owner(step + 1)], d), gy_t)
            ring.shift_now([gy_t], [home])
            gy_t = home
        if nxt:
            yt, lse_t, a_t = nxt
    if unit:
        gy_t.mul_(a_r)
        ds = ds * a_r
    dx = None if gx is None else gx.mul_(s * a_r if unit else s)
    return dx, gy_t, ds.to(cdt)
