"""Cross-entropy on materialised logits, chunked over rows.

The gradient with respect to the logits is computed during the forward pass,
directly in its output buffer, one cache-sized block of rows at a time (copy,
max, exp, normalise and the softmax-minus-target update all touch the block
while it is hot in cache). On CPU the blocks are spread over a few threads with
dynamic scheduling (:mod:`xent.torch._parallel`). Backward only scales the
gradient (in place) by the upstream gradient, per row for ``reduction="none"``,
which is exact because row ``i`` of the gradient depends on the loss of row
``i`` only. A second backward through the same graph recomputes the gradient.
A backward that builds a graph (``create_graph=True``) differentiates the
materialised formula of :func:`xent.torch._formula.formula_loss` instead,
so gradient penalties and Hessian-vector products are exact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from xent.torch._formula import formula_loss
from xent.torch._kernel import (
    LossOptions,
    grad_,
    reduce_rows,
    reduction_scale,
    row_losses,
    row_weights,
    rows_loss_,
    softcap_,
)
from xent.torch._options import default_rows
from xent.torch._parallel import for_blocks, thread_buffer, threaded
from xent.torch._vocab_parallel import VocabShard, stats_width

__all__ = ["CrossEntropyFunction", "logits_block_rows", "logits_rows"]


def logits_block_rows(n_classes: int) -> int:
    """Rows per block: about 1 MiB of float32 logits, so that a block's passes stay in cache."""
    return default_rows(n_classes, target_bytes=2**20, lo=8)


class CrossEntropyFunction(torch.autograd.Function):
    """autograd Function behind :func:`xent.torch.cross_entropy` (2-D logits, 1-D int64 target).

    ``sample_weights`` (N,) or None: per-row weights of the core API (see :func:`reduction_scale`).
    """

    @staticmethod
    def forward(
        ctx: Any,
        logits: Tensor,
        target: Tensor,
        class_weights: Tensor | None,
        sample_weights: Tensor | None,
        opts: LossOptions,
        rows: int,
        need_grad: bool,
        shard: VocabShard | None = None,
    ) -> tuple[Tensor, Tensor]:
        cdt = torch.promote_types(logits.dtype, torch.float32)
        inv, scale = reduction_scale(target, class_weights, opts, cdt, sample_weights)
        losses, lse, grad = logits_rows(logits, target, class_weights, sample_weights, opts, rows,
                                        scale if need_grad else None, shard)
        out = reduce_rows(losses, inv, opts)
        ctx.save_for_backward(logits, target, class_weights, sample_weights)
        ctx.grad = grad
        ctx.scale = scale
        ctx.opts = opts
        ctx.rows = rows
        ctx.shard = shard
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor, grad_lse: Tensor | None) -> tuple[Tensor | None, ...]:
        logits, target, class_weights, sample_weights = ctx.saved_tensors
        nones = (None,) * 7
        if torch.is_grad_enabled():  # create_graph=True: a gradient autograd can differentiate again
            if ctx.shard is not None:
                raise NotImplementedError(
                    "xent.torch.cross_entropy with `group=` supports first derivatives only: a backward with "
                    "create_graph=True (double backward) is not implemented for vocabulary shards"
                )
            ctx.grad = None
            with torch.enable_grad():
                z = logits.to(torch.promote_types(logits.dtype, torch.float32))
                out, _ = formula_loss(z, target, ctx.opts, class_weights, sample_weights)
                (g,) = torch.autograd.grad(out, logits, grad_out.to(out.dtype), create_graph=True)
            return (g, *nones)
        grad = ctx.grad
        ctx.grad = None
        if grad is None:  # a second backward through the same graph (retain_graph=True): recompute
            grad = logits_rows(logits, target, class_weights, sample_weights, ctx.opts, ctx.rows, ctx.scale,
                               ctx.shard)[2]
        g = grad_out.to(grad.dtype)
        # Scaled in place: the forward's buffer becomes the gradient, no second N x C buffer.
        grad.mul_(g.unsqueeze(1) if ctx.opts.reduction == "none" else g)
        return (grad.to(logits.dtype), *nones)


def logits_rows(
    logits: Tensor,
    target: Tensor,
    class_weights: Tensor | None,
    sample_weights: Tensor | None,
    opts: LossOptions,
    rows: int,
    scale: Tensor | None,
    shard: VocabShard | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Per-row loss (times ``sample_weights``) and lse; with ``scale``, also the (N, C) gradient times ``scale``.

    The gradient does not include the upstream gradient yet. Without ``scale`` no gradient is kept.
    With ``shard`` the logits are this rank's columns of the vocabulary (see :func:`_shard_rows`).
    """
    cdt = torch.promote_types(logits.dtype, torch.float32)
    n, width = logits.shape
    n_classes = width if shard is None else shard.n_classes
    device = logits.device
    safe, valid, _ = row_weights(target, class_weights, opts.ignore_index, cdt)
    sum_w: float | Tensor = 1.0 * n_classes if class_weights is None else class_weights.sum()
    if scale is not None and sample_weights is not None:
        scale = scale * sample_weights  # per-row gradient scale s_i * (1 / sum or 1)
    losses = torch.empty((n,), dtype=cdt, device=device)
    lses = torch.empty((n,), dtype=cdt, device=device)
    grad = torch.empty((n, width), dtype=cdt, device=device) if scale is not None else None
    n_blocks = -(-n // rows)
    buffer: Callable[[int, int], Tensor]
    if grad is not None:
        grad_rows = grad

        def buffer(start: int, stop: int) -> Tensor:
            return grad_rows[start:stop]
    else:  # the blocks only need their loss and lse: one reused buffer per thread
        scratch = thread_buffer(lambda: torch.empty((min(rows, n), width), dtype=cdt, device=device),
                                threaded(device, n_blocks))

        def buffer(start: int, stop: int) -> Tensor:
            return scratch()[: stop - start]

    def block(k: int) -> None:
        start = k * rows
        stop = min(start + rows, n)
        b = buffer(start, stop)
        b.copy_(logits[start:stop])
        s = None if scale is None else (scale if scale.dim() == 0 else scale[start:stop])
        l_c, lse_c = rows_loss_(b, safe[start:stop], valid[start:stop], opts, class_weights, sum_w, grad_scale=s)
        if l_c is not None:
            losses[start:stop] = l_c
        lses[start:stop] = lse_c

    if shard is None:
        for_blocks(n_blocks, block, device)
    else:
        losses, lses = _shard_rows(logits, safe, valid, class_weights, sum_w, opts, rows, scale, shard, buffer, grad)
    if sample_weights is not None:
        # where(), not a product: a zero weight on an infinite loss (a -inf true-class logit) gives 0.
        losses = torch.where(sample_weights != 0, losses * sample_weights, torch.zeros((), dtype=cdt, device=device))
    return losses, lses, grad


def _shard_rows(
    logits: Tensor,
    safe: Tensor,
    valid: Tensor,
    class_weights: Tensor | None,
    sum_w: float | Tensor,
    opts: LossOptions,
    rows: int,
    scale: Tensor | None,
    shard: VocabShard,
    buffer: Callable[[int, int], Tensor],
    grad: Tensor | None,
) -> tuple[Tensor, Tensor]:
    """Vocabulary-parallel rows: local statistics block by block, one ``all_gather`` for all rows, then gradients.

    ``buffer(start, stop)`` gives each block's working rows (the gradient's, when kept).
    """
    n = logits.shape[0]
    cdt = torch.promote_types(logits.dtype, torch.float32)
    n_blocks = -(-n // rows)
    owner, mine, col = shard.label_owner(safe)
    cw_local = shard.local(class_weights)
    stats = torch.empty((n, stats_width(opts)), dtype=cdt, device=logits.device)

    def local_block(k: int) -> None:
        start, stop = k * rows, min(k * rows + rows, n)
        b = buffer(start, stop)
        b.copy_(logits[start:stop])
        softcap_(b, opts, False)
        stats[start:stop] = shard.local_stats_(b, col[start:stop], mine[start:stop], opts, cw_local)

    for_blocks(n_blocks, local_block, logits.device)
    wsum = shard.shard_wsum(class_weights, stats) if stats.shape[1] == 4 else None
    log_s, z_y, smooth, lse = shard.combine(shard.gather(stats), owner, wsum)
    w_y = None if class_weights is None else class_weights.gather(0, safe)
    losses = row_losses(log_s, z_y, smooth, lse, w_y, valid, opts, shard.n_classes, sum_w)
    if grad is None or scale is None or grad.shape[1] == 0:
        return losses, lse
    grad_rows = grad
    exp_to_p = (stats[:, 0] - lse).exp()  # p = exp(z - m_k) * exp(m_k - lse)
    row_scale = valid.to(cdt) * scale

    def grad_block(k: int) -> None:
        start, stop = k * rows, min(k * rows + rows, n)
        tanh = None
        if opts.softcap is not None:  # recomputed from the logits: d(s tanh(z/s))/dz = 1 - tanh^2
            tanh = torch.tanh(logits[start:stop].to(cdt) / opts.softcap)
        grad_(grad_rows[start:stop], exp_to_p[start:stop], col[start:stop], mine[start:stop],
              None if w_y is None else w_y[start:stop], cw_local, opts, shard.n_classes, sum_w,
              row_scale if row_scale.dim() == 0 else row_scale[start:stop], lse[start:stop], tanh)

    for_blocks(n_blocks, grad_block, logits.device)
    return losses, lse
