"""Plain materialised references, written straight from the formula with autograd.

The tests compare the chunked kernels against these, forward and backward. They
take the same arguments as the public functions and are deliberately simple:
full logits in float32 (or float64), ``log_softmax``, a smoothed one-hot, a mask.

:func:`reference_loss` is also the kernels' double-backward path: when a
backward is asked to build a graph (``create_graph=True``), the kernels return
the gradient of this formula, which autograd differentiates again.
"""

from __future__ import annotations

import torch

from xent.torch._kernel import LossOptions
from xent.torch._options import check_options

__all__ = ["_reference_cross_entropy", "_reference_linear_cross_entropy", "reference_loss"]


def reference_loss(z, target, opts: LossOptions, class_weights=None, sample_weights=None):
    """(reduced loss, lse) of (N, C) logits ``z`` and (N,) int64 labels, differentiable twice.

    ``sample_weights`` (N,) multiply each row's loss and its weight in the mean's
    denominator (the core API's ``weights``). ``lse`` is detached.
    """
    n_classes = z.shape[-1]
    if opts.softcap is not None:
        z = opts.softcap * torch.tanh(z / opts.softcap)
    valid = target != opts.ignore_index
    safe = torch.where(valid, target, 0)
    w = torch.ones(n_classes, dtype=z.dtype, device=z.device) if class_weights is None else class_weights.to(z)
    e = opts.label_smoothing
    q = (1 - e) * torch.nn.functional.one_hot(safe, n_classes).to(z.dtype) + e / n_classes
    logp = torch.log_softmax(z, dim=-1)
    lse = torch.logsumexp(z, dim=-1)
    w_y = w[safe]
    loss = -(w * q * logp).sum(-1) + opts.z_loss * w_y * lse**2
    c = torch.where(valid, w_y, torch.zeros_like(w_y))
    if sample_weights is not None:
        s = sample_weights.to(z.dtype)
        loss = torch.where(s != 0, loss * s, torch.zeros_like(loss))
        c = c * s
    loss = torch.where(valid, loss, torch.zeros_like(loss))
    if opts.reduction == "none":
        out = loss
    elif opts.reduction == "sum":
        out = loss.sum()
    else:
        denom = c.sum()
        out = torch.where(denom > 0, loss.sum() / torch.where(denom > 0, denom, 1.0), torch.zeros_like(denom))
    return out, lse.detach()


def _reference_rows(z, labels, *, ignore_index, label_smoothing, class_weights, z_loss, softcap, reduction,
                    return_lse):
    """z: (N, C) logits with autograd; labels: any shape with N elements. Loss (and lse) in labels' shape."""
    opts = check_options(ignore_index=ignore_index, label_smoothing=label_smoothing, z_loss=z_loss,
                         softcap=softcap, reduction=reduction)
    out, lse = reference_loss(z, labels.reshape(-1).long(), opts, class_weights)
    if opts.reduction == "none":
        out = out.reshape(labels.shape)
    lse = lse.reshape(labels.shape)
    return (out, lse) if return_lse else out


def _reference_linear_cross_entropy(hidden, weight, target, /, *, bias=None, ignore_index=-100,
                                    label_smoothing=0.0, class_weights=None, z_loss=0.0, softcap=None,
                                    reduction="mean", chunk_size=None, return_lse=False):
    """Materialised ``hidden @ weight.T + bias`` in float32 (at least), then the formula."""
    cdt = torch.promote_types(hidden.dtype, torch.float32)
    z = hidden.to(cdt) @ weight.to(cdt).t()
    if bias is not None:
        z = z + bias.to(cdt)
    return _reference_rows(z.reshape(-1, weight.shape[0]), target, ignore_index=ignore_index,
                           label_smoothing=label_smoothing, class_weights=class_weights, z_loss=z_loss,
                           softcap=softcap, reduction=reduction, return_lse=return_lse)


def _reference_cross_entropy(input, target, /, *, ignore_index=-100, label_smoothing=0.0, class_weights=None,
                             z_loss=0.0, softcap=None, reduction="mean", chunk_size=None, return_lse=False):
    """Materialised logits with the class dimension at 1 (or 0 for an unbatched (C,) input)."""
    cdt = torch.promote_types(input.dtype, torch.float32)
    z = input.to(cdt)
    z = z.unsqueeze(0) if z.dim() == 1 else z.movedim(1, -1)
    return _reference_rows(z.reshape(-1, z.shape[-1]), target, ignore_index=ignore_index,
                           label_smoothing=label_smoothing, class_weights=class_weights, z_loss=z_loss,
                           softcap=softcap, reduction=reduction, return_lse=return_lse)
