"""Cross-entropy on materialised logits, chunked over rows.

The gradient with respect to the logits is computed during the forward pass,
directly in its output buffer, one cache-sized block of rows at a time (copy,
max, exp, normalise and the softmax-minus-target update all touch the block
while it is hot in cache). Backward only scales it (in place) by the upstream gradient,
per row for ``reduction="none"``, which is exact because row ``i`` of the
gradient depends on the loss of row ``i`` only. A second backward through the
same graph recomputes the gradient.
"""

from __future__ import annotations

import torch

from xent.torch._kernel import reduce_rows, reduction_scale, row_weights, rows_loss_

__all__ = ["CrossEntropyFunction"]


class CrossEntropyFunction(torch.autograd.Function):
    """autograd Function behind :func:`xent.torch.cross_entropy` (2-D logits, 1-D target)."""

    @staticmethod
    def forward(ctx, logits, target, class_weights, opts, rows, need_grad):
        cdt = torch.promote_types(logits.dtype, torch.float32)
        inv, scale = reduction_scale(target, class_weights, opts, cdt)
        losses, lse, grad = _rows(logits, target, class_weights, opts, rows, scale if need_grad else None)
        out = reduce_rows(losses, inv, opts)
        ctx.save_for_backward(logits, target, class_weights)
        ctx.grad = grad
        ctx.scale = scale
        ctx.opts = opts
        ctx.rows = rows
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    def backward(ctx, grad_out, grad_lse):
        logits, target, class_weights = ctx.saved_tensors
        grad = ctx.grad
        ctx.grad = None
        if grad is None:  # a second backward through the same graph (retain_graph=True): recompute
            grad = _rows(logits, target, class_weights, ctx.opts, ctx.rows, ctx.scale)[2]
        g = grad_out.to(grad.dtype)
        # Scaled in place: the forward's buffer becomes the gradient, no second N x C buffer.
        grad.mul_(g.unsqueeze(1) if ctx.opts.reduction == "none" else g)
        return grad.to(logits.dtype), None, None, None, None, None


def _rows(logits, target, class_weights, opts, rows, scale):
    """Per-row loss and lse; with ``scale``, also the (N, C) gradient times ``scale`` (not yet upstream)."""
    cdt = torch.promote_types(logits.dtype, torch.float32)
    n, n_classes = logits.shape
    safe, valid, _ = row_weights(target, class_weights, opts.ignore_index, cdt)
    sum_w = 1.0 * n_classes if class_weights is None else class_weights.sum()
    need_grad = scale is not None
    grad = torch.empty((n if need_grad else min(rows, n), n_classes), dtype=cdt, device=logits.device)
    losses, lses = [], []
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        b = grad[start:stop] if need_grad else grad[: stop - start]
        b.copy_(logits[start:stop])
        l_c, lse_c = rows_loss_(b, safe[start:stop], valid[start:stop], opts, class_weights, sum_w, grad_scale=scale)
        losses.append(l_c)
        lses.append(lse_c)
    if n == 0:
        empty = torch.zeros((0,), dtype=cdt, device=logits.device)
        return empty, empty, grad if need_grad else None
    return torch.cat(losses), torch.cat(lses), grad if need_grad else None
