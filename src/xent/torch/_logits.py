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
materialised formula of :func:`xent.torch._reference.reference_loss` instead,
so gradient penalties and Hessian-vector products are exact.
"""

from __future__ import annotations

import threading

import torch

from xent.torch._kernel import reduce_rows, reduction_scale, row_weights, rows_loss_
from xent.torch._parallel import for_blocks, threaded
from xent.torch._reference import reference_loss

__all__ = ["CrossEntropyFunction", "logits_rows"]


class CrossEntropyFunction(torch.autograd.Function):
    """autograd Function behind :func:`xent.torch.cross_entropy` (2-D logits, 1-D int64 target).

    ``sample_weights`` (N,) or None: per-row weights of the core API (see :func:`reduction_scale`).
    """

    @staticmethod
    def forward(ctx, logits, target, class_weights, sample_weights, opts, rows, need_grad):
        cdt = torch.promote_types(logits.dtype, torch.float32)
        inv, scale = reduction_scale(target, class_weights, opts, cdt, sample_weights)
        losses, lse, grad = logits_rows(logits, target, class_weights, sample_weights, opts, rows,
                                        scale if need_grad else None)
        out = reduce_rows(losses, inv, opts)
        ctx.save_for_backward(logits, target, class_weights, sample_weights)
        ctx.grad = grad
        ctx.scale = scale
        ctx.opts = opts
        ctx.rows = rows
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    def backward(ctx, grad_out, grad_lse):
        logits, target, class_weights, sample_weights = ctx.saved_tensors
        nones = (None,) * 6
        if torch.is_grad_enabled():  # create_graph=True: a gradient autograd can differentiate again
            ctx.grad = None
            with torch.enable_grad():
                z = logits.to(torch.promote_types(logits.dtype, torch.float32))
                out, _ = reference_loss(z, target, ctx.opts, class_weights, sample_weights)
                (g,) = torch.autograd.grad(out, logits, grad_out.to(out.dtype), create_graph=True)
            return (g, *nones)
        grad = ctx.grad
        ctx.grad = None
        if grad is None:  # a second backward through the same graph (retain_graph=True): recompute
            grad = logits_rows(logits, target, class_weights, sample_weights, ctx.opts, ctx.rows, ctx.scale)[2]
        g = grad_out.to(grad.dtype)
        # Scaled in place: the forward's buffer becomes the gradient, no second N x C buffer.
        grad.mul_(g.unsqueeze(1) if ctx.opts.reduction == "none" else g)
        return (grad.to(logits.dtype), *nones)


def logits_rows(logits, target, class_weights, sample_weights, opts, rows, scale):
    """Per-row loss (times ``sample_weights``) and lse; with ``scale``, also the (N, C) gradient times ``scale``.

    The gradient does not include the upstream gradient yet. Without ``scale`` no gradient is kept.
    """
    cdt = torch.promote_types(logits.dtype, torch.float32)
    n, n_classes = logits.shape
    device = logits.device
    safe, valid, _ = row_weights(target, class_weights, opts.ignore_index, cdt)
    sum_w = 1.0 * n_classes if class_weights is None else class_weights.sum()
    need_grad = scale is not None
    if need_grad and sample_weights is not None:
        scale = scale * sample_weights  # per-row gradient scale s_i * (1 / sum or 1)
    losses = torch.empty((n,), dtype=cdt, device=device)
    lses = torch.empty((n,), dtype=cdt, device=device)
    grad = torch.empty((n, n_classes), dtype=cdt, device=device) if need_grad else None
    n_blocks = -(-n // rows)
    if need_grad:
        def buffer(start, stop):
            return grad[start:stop]
    elif not threaded(device, n_blocks):  # the blocks only need their loss and lse: one reused buffer
        one = torch.empty((min(rows, n), n_classes), dtype=cdt, device=device)

        def buffer(start, stop):
            return one[: stop - start]
    else:  # one reused buffer per thread
        local = threading.local()

        def buffer(start, stop):
            if not hasattr(local, "buf"):
                local.buf = torch.empty((min(rows, n), n_classes), dtype=cdt, device=device)
            return local.buf[: stop - start]

    def block(k: int) -> None:
        start = k * rows
        stop = min(start + rows, n)
        b = buffer(start, stop)
        b.copy_(logits[start:stop])
        s = None if scale is None else (scale if scale.dim() == 0 else scale[start:stop])
        l_c, lse_c = rows_loss_(b, safe[start:stop], valid[start:stop], opts, class_weights, sum_w, grad_scale=s)
        losses[start:stop] = l_c
        lses[start:stop] = lse_c

    for_blocks(n_blocks, block, device)
    if sample_weights is not None:
        # where(), not a product: a zero weight on an infinite loss (a -inf true-class logit) gives 0.
        losses = torch.where(sample_weights != 0, losses * sample_weights, torch.zeros((), dtype=cdt, device=device))
    return losses, lses, grad

