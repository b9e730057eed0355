"""The loss written straight from its formula on materialised logits, with autograd.

:func:`formula_loss` is the kernels' double-backward path: when a backward is
asked to build a graph (``create_graph=True``), the kernels return the gradient
of this formula, which autograd differentiates again. It is deliberately plain:
full logits, ``log_softmax``, a smoothed one-hot, a mask. (The tests' oracles with
the public functions' signatures are in ``tests/torch/torch_reference.py``.)
"""

from __future__ import annotations

import torch

from xent.torch._kernel import LossOptions, kept_rows

__all__ = ["formula_loss"]


def formula_loss(
    z: torch.Tensor,
    target: torch.Tensor,
    opts: LossOptions,
    class_weights: torch.Tensor | None = None,
    sample_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(reduced loss, lse) of (N, C) logits ``z`` and (N,) int64 labels, differentiable twice.

    ``sample_weights`` (N,) multiply each row's loss and its weight in the mean's
    denominator (the core API's ``weights``). ``lse`` is detached.
    """
    n_classes = z.shape[-1]
    if opts.softcap is not None:
        z = opts.softcap * torch.tanh(z / opts.softcap)
    valid = kept_rows(target, opts.ignore_index)
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
