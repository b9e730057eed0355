"""Fused linear + cross-entropy: the N x V logits are never materialised.

Rows of ``hidden`` are processed ``chunk_size`` at a time. One GEMM writes a
chunk of logits (in the input dtype) into a reused buffer; small blocks of its
rows (about 1 MiB each, so that every pass stays in cache, spread over threads on
CPU: :mod:`xent.torch._parallel`) are turned in place, in float32 at least, into
the gradient of the loss with respect to those logits
(:func:`xent.torch._kernel.rows_loss_`); two more GEMMs contract the chunk into
``grad_hidden`` (``g @ W``) and a float32 ``grad_weight`` accumulator
(``g.T @ h``). For bfloat16/float16 inputs the chunk holds the input dtype (the
logits, then the gradient rows, each rounded once, like the unfused code) and is
about 128 MiB, so that the float32 accumulator is swept once per 128 MiB of
gradient rows, not once per small chunk. For ``reduction="mean"``/``"sum"``
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
:func:`xent.torch._formula.formula_loss` instead, so it is exact to any order
(and costs the N x V logits once).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from xent.torch._formula import formula_loss
from xent.torch._kernel import (
    LossOptions,
    reduce_rows,
    reduction_scale,
    row_weights,
    rows_loss_,
)
from xent.torch._logits import logits_block_rows
from xent.torch._parallel import for_blocks, thread_buffer, threaded
from xent.torch._vocab_parallel import VocabShard

__all__ = ["LinearCrossEntropyFunction", "fused_linear_cross_entropy"]


def _chunk_logits(buf: Tensor, h: Tensor, weight: Tensor, bias: Tensor | None) -> None:
    """buf[:] = h @ W.T + b in the buffer's dtype (the input dtype: float32 accumulation inside)."""
    if bias is None:
        torch.mm(h, weight.t(), out=buf)
    else:
        torch.addmm(bias, h, weight.t(), out=buf)


def _backward_fp(
    g: Tensor, h: Tensor, weight: Tensor, grad_h: Tensor | None, grad_w: Tensor | None, need_h: bool, need_w: bool
) -> None:
    """Full-precision chunk: grad_h[:] = g @ W; grad_w += g.T @ h (accumulated inside the GEMM)."""
    if need_h and grad_h is not None:
        torch.mm(g, weight, out=grad_h)
    if need_w and grad_w is not None:
        grad_w.addmm_(g.t(), h)


def low_precision_gemm(dtype: torch.dtype, device: torch.device) -> bool:
    """Whether GEMMs in ``dtype`` outrun float32 ones here (then grad_weight's product runs in ``dtype``).

    Accelerators: yes. CPUs: bfloat16 with AVX512-BF16 or AMX, float16 with AMX-FP16; without
    them oneDNN converts to float32 inside the GEMM, which is slower than a float32 GEMM.
    """
    if device.type != "cpu":
        return True
    probe = {torch.bfloat16: ("_is_avx512_bf16_supported", "_is_amx_tile_supported"),
             torch.float16: ("_is_amx_fp16_supported",)}.get(dtype, ())
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probe)  # private probes: absent -> False


def _backward_low(
    gl: Tensor,
    h: Tensor,
    weight: Tensor,
    grad_h: Tensor | None,
    grad_w: Tensor | None,
    need_h: bool,
    need_w: bool,
    v_block: int = 8192,
) -> None:
    """Low-precision staged rows: grad_h[:] = g @ W natively; grad_w += g.T @ h into the float32 accumulator.

    ``g @ W`` runs in the input dtype (float32 accumulation inside the kernel, rounded once
    like the unfused code). Where :func:`low_precision_gemm` holds, ``g.T @ h`` is computed as
    ``h.T @ g`` in the input dtype, one block of vocabulary columns at a time, rounded once per
    stage and added to the accumulator, which is then stored transposed ((d, V) memory, see
    :func:`_grad_w_buffer`): a product with a transposed low-precision operand takes a slow path
    on CPU. Elsewhere it is a float32 GEMM straight into the accumulator.
    """
    if need_h and grad_h is not None:
        torch.mm(gl, weight, out=grad_h)
    if not need_w or grad_w is None:
        return
    if low_precision_gemm(weight.dtype, weight.device):  # either way is right for either layout
        h_t = h.t().contiguous()  # (d, rows): small
        for start in range(0, gl.shape[1], v_block):
            stop = min(start + v_block, gl.shape[1])
            grad_w[start:stop].t().add_(h_t @ gl[:, start:stop])
    else:
        hf = h.to(grad_w.dtype)
        for start in range(0, gl.shape[1], v_block):
            stop = min(start + v_block, gl.shape[1])
            grad_w[start:stop].addmm_(gl[:, start:stop].t().to(grad_w.dtype), hf)


def _grad_w_buffer(weight: Tensor, cdt: torch.dtype) -> Tensor:
    """The float32 (float64) accumulator of grad_weight, shape (V, d). Where the low-precision
    product is used (:func:`low_precision_gemm`) its memory is (d, V), a transposed view."""
    if weight.dtype == cdt or not low_precision_gemm(weight.dtype, weight.device):
        return torch.zeros(weight.shape, dtype=cdt, device=weight.device)
    return torch.zeros(weight.shape[::-1], dtype=cdt, device=weight.device).t()


def _to_param_dtype(g: Tensor | None, param: Tensor | None) -> Tensor | None:
    """An accumulator handed back in the parameter's dtype and ordinary (row-major) layout."""
    if g is None or param is None or (g.dtype == param.dtype and g.is_contiguous()):
        return g
    return g.to(param.dtype, memory_format=torch.contiguous_format)


def _loop(
    hidden: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    target: Tensor,
    class_weights: Tensor | None,
    opts: LossOptions,
    rows: int,
    *,
    scale: Tensor | None,
    lse: Tensor | None = None,
    grad_h: Tensor | None = None,
    grad_w: Tensor | None = None,
    grad_b: Tensor | None = None,
    need: tuple[bool, bool, bool] = (False, False, False),
    shard: VocabShard | None = None,
) -> tuple[Tensor | None, Tensor, Tensor]:
    """Run the chunks. ``scale``: None (loss only), a scalar tensor, or per-row (N,) tensor.

    ``lse`` given: the backward recomputation (no loss). ``shard`` (a
    :class:`~xent.torch._vocab_parallel.VocabShard`): ``weight`` and ``bias`` are this rank's
    rows of the vocabulary; ``class_weights`` and the labels are global; each chunk is then one
    block, run on the calling thread (its statistics cross the network once per chunk, in the
    same order on every rank).
    """
    n = hidden.shape[0]
    v = weight.shape[0]
    device = hidden.device
    cdt = torch.promote_types(hidden.dtype, torch.float32)
    low = weight.dtype != cdt
    safe, valid, _ = row_weights(target, class_weights, opts.ignore_index, cdt)
    n_classes = v if shard is None else shard.n_classes
    sum_w: float | Tensor = 1.0 * n_classes if class_weights is None else class_weights.sum()
    chunk_loss_: Callable[..., tuple[Tensor | None, Tensor]] = rows_loss_ if shard is None else shard.rows_loss_
    need_h, need_w, need_b = need
    grads = scale is not None
    buf = torch.empty((min(rows, n), v), dtype=weight.dtype, device=device)  # logits, then their gradient
    block = max(1, min(rows, n)) if shard is not None else min(rows, logits_block_rows(v))
    out_loss = None if lse is not None else torch.empty((n,), dtype=cdt, device=device)
    out_lse = torch.empty((n,), dtype=cdt, device=device) if lse is None else lse
    serial = shard is not None
    scratch = thread_buffer(lambda: torch.empty((block, v), dtype=cdt, device=device),
                            not serial and threaded(device, 2))  # float32 rows for low-precision chunks
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        b = buf[: stop - start]
        h = hidden[start:stop]
        _chunk_logits(b, h, weight, bias)

        def rows_(k: int, b: Tensor = b, start: int = start, stop: int = stop) -> None:
            lo, hi = k * block, min(k * block + block, stop - start)
            rows_b = b[lo:hi]
            work = rows_b
            if low:
                work = scratch()[: hi - lo]
                work.copy_(rows_b)
            i, j = start + lo, start + hi
            s = None if scale is None else (scale if scale.dim() == 0 else scale[i:j])
            l_c, lse_c = chunk_loss_(work, safe[i:j], valid[i:j], opts, class_weights, sum_w, grad_scale=s,
                                     lse=None if lse is None else lse[i:j])
            if out_loss is not None and l_c is not None:
                out_loss[i:j] = l_c
                out_lse[i:j] = lse_c
            if low and grads:
                rows_b.copy_(work)  # the gradient rows, rounded once to the input dtype

        for_blocks(-(-(stop - start) // block), rows_, device, serial=serial)
        if not grads:
            continue
        if need_b and grad_b is not None:
            grad_b.add_(b.sum(0, dtype=cdt))
        if low:
            _backward_low(b, h, weight, None if grad_h is None else grad_h[start:stop], grad_w, need_h, need_w)
        else:
            _backward_fp(b, h, weight, None if grad_h is None else grad_h[start:stop], grad_w, need_h, need_w)
    return out_loss, out_lse, valid


class LinearCrossEntropyFunction(torch.autograd.Function):
    """autograd Function behind :func:`xent.torch.linear_cross_entropy` (2-D hidden, 1-D target)."""

    @staticmethod
    def forward(
        ctx: Any,
        hidden: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        target: Tensor,
        class_weights: Tensor | None,
        opts: LossOptions,
        rows: int,
        need_h: bool,
        need_w: bool,
        need_b: bool,
        shard: VocabShard | None,
    ) -> tuple[Tensor, Tensor]:
        cdt = torch.promote_types(hidden.dtype, torch.float32)
        need = (need_h, need_w, need_b)
        inv, scale = reduction_scale(target, class_weights, opts, cdt)
        fused = any(need) and opts.reduction != "none"
        grad_h = grad_w = grad_b = None
        if fused:
            if need_h:
                grad_h = torch.empty_like(hidden)
            if need_w:
                grad_w = _grad_w_buffer(weight, cdt)
            if need_b and bias is not None:
                grad_b = torch.zeros(bias.shape, dtype=cdt, device=bias.device)
        losses, lse, _ = _loop(hidden, weight, bias, target, class_weights, opts, rows, scale=scale if fused else None,
                               grad_h=grad_h, grad_w=grad_w, grad_b=grad_b, need=need, shard=shard)
        ctx.save_for_backward(hidden, weight, bias, target, class_weights, lse)
        assert losses is not None  # the forward computes the loss
        out = reduce_rows(losses, inv, opts)
        ctx.fused = None
        ctx.scale = None if opts.reduction == "none" else scale
        if fused:
            ctx.fused = (grad_h, _to_param_dtype(grad_w, weight), _to_param_dtype(grad_b, bias))
        ctx.opts = opts
        ctx.rows = rows
        ctx.need = need
        ctx.shard = shard
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor, grad_lse: Tensor | None) -> tuple[Tensor | None, ...]:
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
        grad_w = _grad_w_buffer(weight, cdt) if need_w else None
        grad_b = torch.zeros(bias.shape, dtype=cdt, device=bias.device) if need_b and bias is not None else None
        _loop(hidden, weight, bias, target, class_weights, ctx.opts, ctx.rows, scale=scale, lse=lse,
              grad_h=grad_h, grad_w=grad_w, grad_b=grad_b, need=ctx.need, shard=shard)
        if shard is not None:
            grad_h = shard.reduce_hidden_grad(grad_h)
        return (grad_h, _to_param_dtype(grad_w, weight), _to_param_dtype(grad_b, bias), *nones)


def _differentiable_grads(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:
    """Gradients of the materialised formula (:func:`xent.torch._formula.formula_loss`), built as a graph.

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
        out, _ = formula_loss(z, target, ctx.opts, class_weights)
        got = iter(torch.autograd.grad(out, inputs, grad_out.to(out.dtype), create_graph=True))
    return tuple(next(got) if need else None for need in ctx.needs_input_grad[:3])


def fused_linear_cross_entropy(
    hidden: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    target: Tensor,
    class_weights: Tensor | None,
    opts: LossOptions,
    rows: int,
    shard: VocabShard | None = None,
) -> tuple[Tensor, Tensor]:
    """Dispatch to the Function with the needs-grad flags resolved (2-D hidden, 1-D target)."""
    grad_on = torch.is_grad_enabled()
    need_h = grad_on and hidden.requires_grad
    need_w = grad_on and weight.requires_grad
    need_b = grad_on and bias is not None and bias.requires_grad
    loss, lse = LinearCrossEntropyFunction.apply(  # type: ignore[no-untyped-call]
        hidden, weight, bias, target, class_weights, opts, rows, need_h, need_w, need_b, shard
    )
    return loss, lse
