"""``nn.Module`` wrappers following PyTorch's loss conventions (input first, then target)."""

from __future__ import annotations

import torch
from torch import nn

from xent.torch._options import check_chunk_size, check_options
from xent.torch.functional import cross_entropy, linear_cross_entropy

__all__ = ["CrossEntropyLoss", "LinearCrossEntropyLoss"]


class _Options(nn.Module):
    def __init__(self, *, class_weights, ignore_index, label_smoothing, z_loss, softcap, reduction, chunk_size):
        super().__init__()
        check_options(ignore_index=ignore_index, label_smoothing=label_smoothing, z_loss=z_loss,
                      softcap=softcap, reduction=reduction)
        check_chunk_size(chunk_size)
        # A buffer, like nn.CrossEntropyLoss's `weight`: follows .to(device) and the state dict.
        self.register_buffer("class_weights", class_weights)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        self.z_loss = z_loss
        self.softcap = softcap
        self.reduction = reduction
        self.chunk_size = chunk_size

    def _kwargs(self):
        return dict(ignore_index=self.ignore_index, label_smoothing=self.label_smoothing,
                    class_weights=self.class_weights, z_loss=self.z_loss, softcap=self.softcap,
                    reduction=self.reduction, chunk_size=self.chunk_size)

    def extra_repr(self) -> str:
        return (f"ignore_index={self.ignore_index}, label_smoothing={self.label_smoothing}, z_loss={self.z_loss}, "
                f"softcap={self.softcap}, reduction={self.reduction!r}")


class CrossEntropyLoss(_Options):
    """Module form of :func:`xent.torch.cross_entropy`: ``loss_fn(input, target)``.

    Drop-in for ``nn.CrossEntropyLoss`` (``class_weights`` plays ``weight``), plus
    ``z_loss`` and ``softcap``; a mean over zero total weight is 0, not NaN.

    Examples
    --------
    >>> import torch, xent.torch
    >>> loss_fn = xent.torch.CrossEntropyLoss(label_smoothing=0.1)
    >>> loss = loss_fn(torch.randn(3, 5), torch.tensor([0, 4, 2]))
    """

    def __init__(self, class_weights=None, *, ignore_index=-100, label_smoothing=0.0, z_loss=0.0, softcap=None,
                 reduction="mean", chunk_size=None):
        super().__init__(class_weights=class_weights, ignore_index=ignore_index, label_smoothing=label_smoothing,
                         z_loss=z_loss, softcap=softcap, reduction=reduction, chunk_size=chunk_size)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return cross_entropy(input, target, **self._kwargs())


class LinearCrossEntropyLoss(_Options):
    """The last linear layer and the cross-entropy in one module, never materialising the logits.

    Holds ``weight`` (V, d) and optionally ``bias`` (V,) like ``nn.Linear(d, V)``;
    ``loss_fn(hidden, target)`` equals ``nn.CrossEntropyLoss()(linear(hidden).flatten(0, -2), target.flatten())``
    (see :func:`xent.torch.linear_cross_entropy`).

    Examples
    --------
    >>> import torch, xent.torch
    >>> loss_fn = xent.torch.LinearCrossEntropyLoss(16, 100, bias=False)
    >>> loss = loss_fn(torch.randn(2, 3, 16), torch.randint(0, 100, (2, 3)))
    >>> loss.backward()
    """

    def __init__(self, in_features: int, num_classes: int, *, bias: bool = True, class_weights=None,
                 ignore_index=-100, label_smoothing=0.0, z_loss=0.0, softcap=None, reduction="mean",
                 chunk_size=None, device=None, dtype=None):
        super().__init__(class_weights=class_weights, ignore_index=ignore_index, label_smoothing=label_smoothing,
                         z_loss=z_loss, softcap=softcap, reduction=reduction, chunk_size=chunk_size)
        linear = nn.Linear(in_features, num_classes, bias=bias, device=device, dtype=dtype)  # nn.Linear's init
        self.weight = linear.weight
        self.bias = linear.bias
        self.in_features = in_features
        self.num_classes = num_classes

    def forward(self, hidden: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return linear_cross_entropy(hidden, self.weight, target, bias=self.bias, **self._kwargs())
