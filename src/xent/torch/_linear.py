"""Fused linear + cross-entropy: the N x V logits are never materialised.

Rows of ``hidden`` are processed ``chunk_size`` at a time: one float32 buffer of
``chunk_size x V`` logits is computed, turned in place into the gradient of the
loss with respect to those logits (:func:`xent.torch._kernel.rows_loss_`), and
immediately contracted into ``grad_hidden`` (``g @ W``) and a float32
``grad_weight`` accumulator (``g.T @ h``). For bfloat16/float16 inputs the
gradient rows are first staged in the input dtype (about 128 MiB) so that the
float32 accumulator, read and written once per contraction, is not swept once
per small chunk. For ``reduction="mean"``/``"sum"``
the gradients are computed during the forward pass (as Liger Kernel does) and
only scaled by the upstream scalar in backward, so forward + backward costs
three matmuls, like the unfused code. ``reduction="none"`` cannot be handled
that way (each row's upstream gradient enters ``grad_weight`` differently), so
its backward recomputes the logits chunk by chunk from the saved per-row
log-sum-exp (four matmuls in total). The forward-pass gradients are scaled in
place and handed out once; a second backward through the same graph
(``retain_graph=True``, gradcheck) takes the recomputation path, so it is exact too.
A backward that builds a graph (``create_graph=True``: gradient penalties,
Hessian-vector products) differentiates the materialised formula of
:func:`xent.torch._reference.reference_loss` instead, so it is exact to any order
(and costs the N x V logits once).
"""

from __future__ import annotations

import torch

from xent.torch._kernel import LossOptions, reduce_rows, reduction_scale, row_weights, rows_loss_
from xent.torch._reference import reference_loss

__all__ = ["LinearCrossEntropyFunction", "fused_linear_cross_entropy"]


def _chunk_logits(buf, h, weight, bias, cdt):
    """buf[:] = float(h @ W.T + b), without a second full-size temporary in float32."""
    if h.dtype == cdt:
        if bias is None:
            torch.mm(h, weight.t(), out=buf)
        else:
            torch.addmm(bias, h, weight.t(), out=buf)
    else:
        # Low precision: the matmul runs natively (fp32 accumulation inside), then upcasts.
        buf.copy_(h @ weight.t())
        if bias is not None:
            buf.add_(bias.to(cdt))


def _backward_fp(g, h, weight, grad_h, grad_w, need_h, need_w):
    """Full-precision chunk: grad_h[:] = g @ W; grad_w += g.T @ h (accumulated inside the GEMM)."""
    if need_h:
        torch.mm(g, weight, out=grad_h)
    if need_w:
        grad_w.addmm_(g.t(), h)


def _backward_low(gl, h, weight, grad_h, grad_w, need_h, need_w, v_block=4096):
    """Low-precision staged rows: grad_h[:] = g @ W natively; grad_w += g.T @ h in float32.

    ``g @ W`` runs in the input dtype (float32 accumulation inside the kernel, rounded once
    like the unfused code). ``g.T @ h`` goes straight into the float32 accumulator with a
    float32 GEMM over blocks of vocabulary rows: a low-precision product added to a
    float32 buffer would cost a slow mixed-dtype pass over V x d per stage.
    """
    if need_h:
        torch.mm(gl, weight, out=grad_h)
    if need_w:
        hf = h.float()
        for start in range(0, gl.shape[1], v_block):
            stop = min(start + v_block, gl.shape[1])
            grad_w[start:stop].addmm_(gl[:, start:stop].t().float(), hf)


def stage_rows(rows: int, num_classes: int, *, target_bytes: int = 128 * 2**20) -> int:
    """Rows of low-precision gradient staged before one pass over the float32 grad_weight.

    Each pass reads and writes all of V x d x 4 bytes, so staging several small softmax
    chunks (about ``target_bytes`` of bf16 gradient) keeps that traffic from dominating.
    """
    group = max(1, target_bytes // (2 * max(num_classes, 1) * rows))
    return rows * group


def _loop(hidden, weight, bias, target, class_weights, opts: LossOptions, rows: int, *, scale, lse=None,
          grad_h=None, grad_w=None, grad_b=None, need=(False, False, False), shard=None):
    """Run the chunks. ``scale``: None (loss only), a scalar tensor, or per-row (N,) tensor.

    ``shard`` (a :class:`~xent.torch._vocab_parallel.VocabShard`): ``weight`` and ``bias`` are this
    rank's rows of the vocabulary; ``class_weights`` and the labels are global.
    """
    n = hidden.shape[0]
    v = weight.shape[0]
    cdt = torch.promote_types(hidden.dtype, torch.float32)
    safe, valid, _ = row_weights(target, class_weights, opts.ignore_index, cdt)
    n_classes = v if shard is None else shard.n_classes
    sum_w = 1.0 * n_classes if class_weights is None else class_weights.sum()
    chunk_loss_ = rows_loss_ if shard is None else shard.rows_loss_
    need_h, need_w, need_b = need
    buf = torch.empty((min(rows, n), v), dtype=cdt, device=hidden.device)
    low = scale is not None and weight.dtype != cdt and (need_h or need_w)
    if low:
        stage = torch.empty((min(stage_rows(rows, v), n), v), dtype=weight.dtype, device=hidden.device)
        staged_from = 0
    losses = [] if lse is None else None
    lses = [] if lse is None else None
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        b = buf[: stop - start]
        h = hidden[start:stop]
        _chunk_logits(b, h, weight, bias, cdt)
        s = None if scale is None else (scale if scale.dim() == 0 else scale[start:stop])
        l_c, lse_c = chunk_loss_(
            b, safe[start:stop], valid[start:stop], opts, class_weights, sum_w,
            grad_scale=s, lse=None if lse is None else lse[start:stop],
        )
        if lse is None:
            losses.append(l_c)
            lses.append(lse_c)
        if s is None:
            continue
        if need_b:
            grad_b.add_(b.sum(0))
        if not low:
            _backward_fp(b, h, weight, None if grad_h is None else grad_h[start:stop], grad_w, need_h, need_w)
            continue
        stage[start - staged_from : stop - staged_from].copy_(b)
        if stop - staged_from == stage.shape[0] or stop == n:
            _backward_low(stage[: stop - staged_from], hidden[staged_from:stop], weight,
                          None if grad_h is None else grad_h[staged_from:stop], grad_w, need_h, need_w)
            staged_from = stop
    if lse is not None:
        return None, None, valid
    if n == 0:  # two tensors: the loss is differentiable, the lse is marked as not
        return (torch.zeros((0,), dtype=cdt, device=hidden.device), torch.zeros((0,), dtype=cdt, device=hidden.device),
                valid)
    return torch.cat(losses), torch.cat(lses), valid


class LinearCrossEntropyFunction(torch.autograd.Function):
    """autograd Function behind :func:`xent.torch.linear_cross_entropy` (2-D hidden, 1-D target)."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, target, class_weights, opts, rows, need_h, need_w, need_b, shard):
        cdt = torch.promote_types(hidden.dtype, torch.float32)
        need = (need_h, need_w, need_b)
        inv, scale = reduction_scale(target, class_weights, opts, cdt)
        fused = any(need) and opts.reduction != "none"
        grad_h = grad_w = grad_b = None
        if fused:
            if need_h:
                grad_h = torch.empty_like(hidden)
            if need_w:
                grad_w = torch.zeros(weight.shape, dtype=cdt, device=weight.device)
            if need_b:
                grad_b = torch.zeros(bias.shape, dtype=cdt, device=bias.device)
        losses, lse, _ = _loop(hidden, weight, bias, target, class_weights, opts, rows, scale=scale if fused else None,
                               grad_h=grad_h, grad_w=grad_w, grad_b=grad_b, need=need, shard=shard)
        ctx.save_for_backward(hidden, weight, bias, target, class_weights, lse)
        out = reduce_rows(losses, inv, opts)
        ctx.fused = None
        ctx.scale = None if opts.reduction == "none" else scale
        if fused:
            if grad_w is not None and grad_w.dtype != weight.dtype:
                grad_w = grad_w.to(weight.dtype)  # the float32 accumulator handed back in weight's dtype
            if grad_b is not None and grad_b.dtype != bias.dtype:
                grad_b = grad_b.to(bias.dtype)
            ctx.fused = (grad_h, grad_w, grad_b)
        ctx.opts = opts
        ctx.rows = rows
        ctx.need = need
        ctx.shard = shard
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    def backward(ctx, grad_out, grad_lse):
        nones = (None,) * 8
        shard = ctx.shard
        if torch.is_grad_enabled():  # create_graph=True: a gradient autograd can differentiate again
            if shard is not None:
                raise NotImplementedError(
                    "xent.torch.linear_cross_entropy with `group=` supports first derivatives only: "
                    "a backward with create_graph=True (double backward) is not implemented for vocabulary shards"
                )
            ctx.fused = None
            return (*_differentiable_grads(ctx, grad_out), *nones)
        if ctx.fused is not None:
            # Gradients from the forward pass, scaled in place: no second V x d buffer.
            # They are handed out once; a later backward (retain_graph=True) recomputes.
            grad_h, grad_w, grad_b = (None if g is None else g.mul_(grad_out.to(g.dtype)) for g in ctx.fused)
            ctx.fused = None
            if shard is not None:
                grad_h = shard.reduce_hidden_grad(grad_h)
            return (grad_h, grad_w, grad_b, *nones)
        hidden, weight, bias, target, class_weights, lse = ctx.saved_tensors
        need_h, need_w, need_b = ctx.need
        cdt = lse.dtype
        scale = grad_out.to(cdt) if ctx.scale is None else ctx.scale * grad_out.to(cdt)
        grad_h = torch.empty_like(hidden) if need_h else None
        grad_w = torch.zeros(weight.shape, dtype=cdt, device=weight.device) if need_w else None
        grad_b = torch.zeros(bias.shape, dtype=cdt, device=bias.device) if need_b else None
        _loop(hidden, weight, bias, target, class_weights, ctx.opts, ctx.rows, scale=scale, lse=lse,
              grad_h=grad_h, grad_w=grad_w, grad_b=grad_b, need=ctx.need, shard=shard)
        if shard is not None:
            grad_h = shard.reduce_hidden_grad(grad_h)
        if grad_w is not None:
            grad_w = grad_w.to(weight.dtype)
        if grad_b is not None:
            grad_b = grad_b.to(bias.dtype)
        return (grad_h, grad_w, grad_b, *nones)


def _differentiable_grads(ctx, grad_out):
    """Gradients of the materialised formula (:func:`reference_loss`), built as a graph.

    Only a backward with ``create_graph=True`` comes here (gradient penalties, Hessian-vector
    products): it materialises the N x V logits once, in float32 (float64 for float64 inputs).
    """
    hidden, weight, bias, target, class_weights, _ = ctx.saved_tensors
    inputs = [x for x, need in zip((hidden, weight, bias), ctx.needs_input_grad[:3]) if need]
    with torch.enable_grad():
        cdt = torch.promote_types(hidden.dtype, torch.float32)
        z = hidden.to(cdt) @ weight.to(cdt).t()
        if bias is not None:
            z = z + bias.to(cdt)
        out, _ = reference_loss(z, target, ctx.opts, class_weights)
        got = iter(torch.autograd.grad(out, inputs, grad_out.to(out.dtype), create_graph=True))
    return tuple(next(got) if need else None for need in ctx.needs_input_grad[:3])


def fused_linear_cross_entropy(hidden, weight, bias, target, class_weights, opts, rows, shard=None):
    """Dispatch to the Function with the needs-grad flags resolved (2-D hidden, 1-D target)."""
    grad_on = torch.is_grad_enabled()
    need_h = grad_on and hidden.requires_grad
    need_w = grad_on and weight.requires_grad
    need_b = grad_on and bias is not None and bias.requires_grad
    return LinearCrossEntropyFunction.apply(hidden, weight, bias, target, class_weights, opts, rows,
                                            need_h, need_w, need_b, shard)
