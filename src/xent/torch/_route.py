"""The core losses on torch tensors, served by the torch kernels.

``xent.sparse_categorical_cross_entropy(labels, logits, from_logits=True, ...)``
with torch tensors validates its arguments as for any array library, then hands
them here (through ``xent.losses._common.torch_sparse_cross_entropy``; this module
is imported only when a torch tensor arrives). It returns what the engine's typed
functions return (:mod:`xent.engine`): ``(loss in nats, gradient or None)``, or
``None`` to keep the generic array-API path.

What is served: the sparse softmax loss on logits of any floating dtype, any
class ``axis``, with ``class_weights``, sample ``weights``, ``ignore_index``,
``label_smoothing``, every reduction and ``return_grad``, on any device, through
:class:`xent.torch._logits.CrossEntropyFunction` (so autograd, ``retain_graph``
and double backward work as on the generic path). What stays generic:
probabilities (``from_logits=False``), soft targets, the binary and focal losses,
tracing under ``torch.compile`` (the kernels gather labels that the generic
path's skipped range check cannot vouch for), class or sample weights that
require grad (the kernels give no gradient for them), and ``return_grad=True``
on logits that require grad (the returned gradient must then be differentiable).
The loss and gradient come back in the logits' dtype (computed in float32 at
least). ``xent.engine.use_engine("reference")`` turns the routing off.
"""

from __future__ import annotations

from typing import Any

import torch

from xent.torch._kernel import LossOptions, reduce_rows, reduction_scale
from xent.torch._logits import CrossEntropyFunction, logits_block_rows, logits_rows
from xent.torch._options import compiling, compute_dtype

__all__ = ["sparse_categorical_cross_entropy"]

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _requires_grad(*tensors: Any) -> bool:
    return torch.is_grad_enabled() and any(isinstance(t, torch.Tensor) and t.requires_grad for t in tensors)


def sparse_categorical_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    axis: int,
    class_weights: torch.Tensor | None,
    weights: torch.Tensor | None,
    ignore_index: int | None,
    label_smoothing: float,
    reduction: str,
    return_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """Validated logits (any shape, classes on ``axis``) and int64 labels -> ``(loss, grad | None)`` in nats."""
    n_classes = logits.shape[axis]
    if (logits.dtype not in _FLOATS or n_classes == 0 or compiling() or _requires_grad(class_weights, weights)
            or (return_grad and _requires_grad(logits))):
        return None
    cdt = compute_dtype(logits.dtype)
    z = logits.movedim(axis, -1)
    example_shape = z.shape[:-1]
    z2 = z.reshape(-1, n_classes)
    target = labels.reshape(-1)
    opts = LossOptions(ignore_index=ignore_index, label_smoothing=label_smoothing, z_loss=0.0, softcap=None,
                       reduction=reduction)
    cw = None if class_weights is None else class_weights.to(cdt)
    sw = None if weights is None else weights.reshape(-1).to(cdt)
    rows = logits_block_rows(n_classes)
    grad: torch.Tensor | None = None
    if return_grad:
        inv, scale = reduction_scale(target, cw, opts, cdt, sw)
        losses, _, grad_rows = logits_rows(z2, target, cw, sw, opts, rows, scale)
        loss = reduce_rows(losses, inv, opts)
        if grad_rows is not None:  # always, with a scale
            grad = grad_rows.reshape(z.shape).movedim(-1, axis).to(logits.dtype)
    else:
        loss, _ = CrossEntropyFunction.apply(  # type: ignore[no-untyped-call]
            z2, target, cw, sw, opts, rows, _requires_grad(logits)
        )
    if reduction == "none":
        loss = loss.reshape(example_shape)
    return loss.to(logits.dtype), grad
