"""``nn.Module`` wrappers following PyTorch's loss conventions (input first, then target)."""

from __future__ import annotations

from typing import Any, TypedDict

import torch
from torch import nn

from xent._lib.typing import Reduction
from xent.torch._options import check_chunk_size, check_ignore_index, check_options
from xent.torch.functional import cross_entropy, linear_cross_entropy

__all__ = ["CrossEntropyLoss", "LinearCrossEntropyLoss"]


class _LossKwargs(TypedDict):
    """The options a module passes to its function on every call."""

    ignore_index: int
    label_smoothing: float
    class_weights: torch.Tensor | None
    z_loss: float
    softcap: float | None
    reduction: Reduction
    chunk_size: int | None


class _Options(nn.Module):
    def __init__(
        self,
        *,
        class_weights: torch.Tensor | None,
        ignore_index: int,
        label_smoothing: float,
        z_loss: float,
        softcap: float | None,
        reduction: Reduction,
        chunk_size: int | None,
    ) -> None:
        super().__init__()
        check_options(ignore_index=ignore_index, label_smoothing=label_smoothing, z_loss=z_loss,
                      softcap=softcap, reduction=reduction)
        check_chunk_size(chunk_size)
        # A buffer, like nn.CrossEntropyLoss's `weight`: follows .to(device) and the state dict.
        self.class_weights: torch.Tensor | None
        self.register_buffer("class_weights", class_weights)
        self.ignore_index = check_ignore_index(ignore_index)  # a Python int, whatever integer type came
        self.label_smoothing = label_smoothing
        self.z_loss = z_loss
        self.softcap = softcap
        self.reduction = reduction
        self.chunk_size = chunk_size

    def _kwargs(self) -> _LossKwargs:
        return _LossKwargs(ignore_index=self.ignore_index, label_smoothing=self.label_smoothing,
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

    def __init__(
        self,
        class_weights: torch.Tensor | None = None,
        *,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
        z_loss: float = 0.0,
        softcap: float | None = None,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        group: Any = None,
    ) -> None:
        super().__init__(class_weights=class_weights, ignore_index=ignore_index, label_smoothing=label_smoothing,
                         z_loss=z_loss, softcap=softcap, reduction=reduction, chunk_size=chunk_size)
        self.group = group  # vocabulary parallel: input holds this rank's slice of the classes

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return cross_entropy(input, target, group=self.group, **self._kwargs())


class LinearCrossEntropyLoss(_Options):
    """The last linear layer and the cross-entropy in one module, never materialising the logits.

    Two forms:

    - ``LinearCrossEntropyLoss(in_features, num_classes, bias=True)`` holds ``weight``
      (V, d) and optionally ``bias`` (V,) like ``nn.Linear(d, V)``; call it as
      ``loss_fn(hidden, target)``. It equals
      ``nn.CrossEntropyLoss()(linear(hidden).flatten(0, -2), target.flatten())``.
    - ``LinearCrossEntropyLoss()`` (no sizes) holds no parameters and takes the
      model's own head: ``loss_fn(hidden, weight, target, bias=None)``, like
      :func:`xent.torch.linear_cross_entropy` (and Liger Kernel's module).

    ``weight`` is the linear layer's weight; class weights are ``class_weights``
    (``nn.CrossEntropyLoss``'s ``weight``). ``group`` and ``reduce_hidden_grad``: the
    vocabulary-parallel form, where the weight is this rank's slice of the vocabulary.
    See :func:`xent.torch.linear_cross_entropy`.

    Examples
    --------
    >>> import torch, xent.torch
    >>> loss_fn = xent.torch.LinearCrossEntropyLoss(16, 100, bias=False)
    >>> loss = loss_fn(torch.randn(2, 3, 16), torch.randint(0, 100, (2, 3)))
    >>> loss.backward()
    >>> head = torch.nn.Linear(16, 100)
    >>> loss = xent.torch.LinearCrossEntropyLoss(ignore_index=-100)(
    ...     torch.randn(5, 16), head.weight, torch.tensor([1, 2, -100, 4, 5]), bias=head.bias)
    """

    def __init__(
        self,
        in_features: int | None = None,
        num_classes: int | None = None,
        *,
        bias: bool = True,
        class_weights: torch.Tensor | None = None,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
        z_loss: float = 0.0,
        softcap: float | None = None,
        reduction: Reduction = "mean",
        chunk_size: int | None = None,
        group: Any = None,
        reduce_hidden_grad: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(class_weights=class_weights, ignore_index=ignore_index, label_smoothing=label_smoothing,
                         z_loss=z_loss, softcap=softcap, reduction=reduction, chunk_size=chunk_size)
        # Vocabulary parallel: the weight is this rank's slice (num_classes = the slice's size).
        self.group = group
        self.reduce_hidden_grad = reduce_hidden_grad
        if (in_features is None) != (num_classes is None):
            raise ValueError(
                "`in_features` and `num_classes` must be given together (the module then holds the weight) "
                f"or both left out (pass the weight to each call), got in_features={in_features!r}, "
                f"num_classes={num_classes!r}"
            )
        self.in_features = in_features
        self.num_classes = num_classes
        self.weight: torch.Tensor | None = None  # nn.Parameters when the module holds them
        self.bias: torch.Tensor | None = None
        if in_features is None or num_classes is None:
            return
        linear = nn.Linear(in_features, num_classes, bias=bias, device=device, dtype=dtype)  # nn.Linear's init
        self.weight = linear.weight
        self.bias = linear.bias

    def forward(self, hidden: torch.Tensor, *tensors: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """``loss_fn(hidden, target)`` with an owned weight; ``loss_fn(hidden, weight, target, bias=None)`` without."""
        if self.in_features is None:
            if len(tensors) != 2:
                raise TypeError(
                    "this LinearCrossEntropyLoss holds no weight: call it as loss_fn(hidden, weight, target, "
                    f"bias=None), got {1 + len(tensors)} positional tensors"
                )
            weight, target = tensors
        elif self.weight is not None:
            if len(tensors) != 1 or bias is not None:
                raise TypeError(
                    "this LinearCrossEntropyLoss holds its own weight: call it as loss_fn(hidden, target), "
                    f"got {1 + len(tensors)} positional tensors" + (" and bias" if bias is not None else "")
                )
            weight, bias, (target,) = self.weight, self.bias, tensors
        else:  # pragma: no cover - in_features given means the weight was made
            raise RuntimeError("LinearCrossEntropyLoss lost its weight")
        return linear_cross_entropy(hidden, weight, target, bias=bias, group=self.group,
                                    reduce_hidden_grad=self.reduce_hidden_grad, **self._kwargs())

    def extra_repr(self) -> str:
        sizes = "" if self.in_features is None else f"in_features={self.in_features}, num_classes={self.num_classes}, "
        return sizes + super().extra_repr()
