"""Test oracles of the torch face: the public functions' signatures over :func:`formula_loss`.

Plain materialised references, written straight from the formula with autograd;
the tests compare the chunked kernels against them, forward and backward.
"""

from __future__ import annotations

import torch

from xent.torch._formula import formula_loss
from xent.torch._options import check_options


def _reference_rows(z, labels, *, ignore_index, label_smoothing, class_weights, z_loss, softcap, reduction,
                    return_lse):
    """z: (N, C) logits with autograd; labels: any shape with N elements. Loss (and lse) in labels' shape."""
    opts = check_options(ignore_index=ignore_index, label_smoothing=label_smoothing, z_loss=z_loss,
                         softcap=softcap, reduction=reduction)
    out, lse = formula_loss(z, labels.reshape(-1).long(), opts, class_weights)
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
