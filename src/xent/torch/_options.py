"""Argument checks for the torch face, on top of :mod:`xent._lib.validation`.

Scalar options are always checked. The label range check reads tensor values:
on CPU it runs eagerly with a precise message; on other devices it uses
``torch._assert_async`` (no host synchronisation: a bad label fails the device
asynchronously); under ``torch.compile`` tracing it is skipped.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np
import torch

from xent._lib.namespace import get_namespace
from xent._lib.typing import Reduction
from xent._lib.validation import (
    check_choice,
    check_count,
    check_fraction,
    check_labels,
    check_nonnegative,
    check_nonnegative_scalar,
)
from xent.torch._kernel import LossOptions

__all__ = [
    "Reduction",
    "check_chunk_size",
    "check_class_weights",
    "check_ignore_index",
    "check_options",
    "check_target",
    "check_tensor",
    "compiling",
    "compute_dtype",
    "default_rows",
]


def compiling() -> bool:
    return bool(torch.compiler.is_compiling())


def check_options(
    *,
    ignore_index: Any,
    label_smoothing: Any,
    z_loss: Any,
    softcap: Any,
    reduction: Any,
) -> LossOptions:
    check_choice("reduction", reduction, Reduction)
    ignore_index = check_ignore_index(ignore_index)
    e = check_fraction("label_smoothing", label_smoothing)
    z = check_nonnegative_scalar("z_loss", z_loss)
    cap = None
    if softcap is not None:
        cap = check_nonnegative_scalar("softcap", softcap)
        if not cap > 0.0:
            raise ValueError(f"`softcap` must be None or a finite number > 0, got {softcap!r}")
    return LossOptions(ignore_index=ignore_index, label_smoothing=e, z_loss=z, softcap=cap, reduction=reduction)


def check_ignore_index(ignore_index: Any) -> int:
    """Any integer type (int, np.int64, a 0-d integer tensor...), as a Python int."""
    # operator.index accepts exactly the integer types.
    try:
        if isinstance(ignore_index, (bool, np.bool_)):
            raise TypeError
        return operator.index(ignore_index)
    except TypeError:
        raise TypeError(f"`ignore_index` must be an integer, got {ignore_index!r}") from None


def check_chunk_size(chunk_size: Any) -> int | None:
    return None if chunk_size is None else check_count("chunk_size", chunk_size, or_none=True)


def check_tensor(name: str, x: Any) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"`{name}` must be a torch.Tensor, got {type(x).__name__}")


def check_target(target: torch.Tensor, *, num_classes: int, ignore_index: int | None) -> torch.Tensor:
    """Integer dtype always; values in [0, C) or ignore_index (see module docstring).

    Returns the labels as int64 (no copy when they already are): every integer dtype is
    accepted, as in the core API, and compared with ``ignore_index`` without wrapping
    (a uint8 label 156 is not -100).
    """
    check_tensor("target", target)
    if target.dtype.is_floating_point or target.dtype.is_complex or target.dtype == torch.bool:
        raise TypeError(f"`target` must hold integer class labels, got dtype {target.dtype}")
    target = target.to(torch.int64)
    if compiling() or target.numel() == 0:
        return target
    if target.device.type == "cpu":
        check_labels("target", target, get_namespace(target), num_classes=num_classes, ignore_index=ignore_index)
    else:
        bad = (target < 0) | (target >= num_classes)
        if ignore_index is not None:
            bad = bad & (target != ignore_index)
        torch._assert_async(~bad.any(), f"`target` must hold class labels in [0, {num_classes}) or equal ignore_index")
    return target


def check_class_weights(class_weights: Any, *, num_classes: int, like: torch.Tensor) -> torch.Tensor | None:
    """Shape (C,), finite and >= 0; returned in the compute dtype on ``like``'s device."""
    if class_weights is None:
        return None
    check_tensor("class_weights", class_weights)
    if tuple(class_weights.shape) != (num_classes,):
        raise ValueError(
            f"`class_weights` must have shape ({num_classes},) (one weight per class), got {tuple(class_weights.shape)}"
        )
    weights: torch.Tensor = class_weights
    if not compiling() and weights.device.type == "cpu":
        check_nonnegative("class_weights", weights, get_namespace(weights))
    return weights.to(device=like.device, dtype=like.dtype)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Logits and softmax are computed in at least float32."""
    return torch.promote_types(dtype, torch.float32)


def default_rows(num_classes: int, *, target_bytes: int = 32 * 2**20, lo: int = 32, hi: int = 4096) -> int:
    """Rows per chunk so that one float32 chunk of logits is about ``target_bytes``."""
    rows = max(1, target_bytes // (4 * max(num_classes, 1)))
    rows = 2 ** int(math.floor(math.log2(rows)))
    return int(min(hi, max(lo, rows)))
