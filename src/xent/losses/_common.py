"""Plumbing shared by every loss: option checks, clipping, weights, finishing.

Nothing here computes a loss; the formulas live in ``_binary_core`` and
``_categorical_core``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from xent import engine
from xent._lib import rules
from xent._lib.namespace import as_float_array, library_name, scalar, to_result
from xent._lib.validation import (
    check_base,
    check_choice,
    check_fraction,
    check_nonnegative,
    log_base,
)
from xent.losses._reduce import Reduction
from xent.primitives import _safe_mul as safe_mul  # re-exported: the losses' name for it

__all__ = [
    "BinaryInputs",
    "CategoricalInputs",
    "check_flag",
    "check_loss_options",
    "clip_probabilities",
    "finish",
    "log_probabilities",
    "prepare_weights",
    "resolve_eps",
    "safe_div",
    "safe_mul",
]


@dataclass(frozen=True)
class CategoricalInputs:
    """The validated arguments every softmax loss shares (:func:`prepare_categorical`)."""

    predictions: Any  # y_pred, floating, in the compute dtype (float32 for half precision)
    axis: int  # the class axis, non-negative
    class_weights: Any  # (C,) or None
    sample_weights: Any  # broadcast to example_shape, or None
    label_smoothing: float
    eps: float  # the clipping bound (rules.resolve_eps)
    from_logits: bool
    reduction: Reduction
    base: float | None
    return_grad: bool
    example_shape: tuple[int, ...]  # y_pred's shape without the class axis
    n_classes: int
    dtype: Any  # the dtype results come back in (the input's)


@dataclass(frozen=True)
class BinaryInputs:
    """The validated arguments every binary loss shares (:func:`prepare_binary`)."""

    xp: Any  # the array namespace of the inputs
    targets: Any  # y_true, in the predictions' dtype
    predictions: Any  # y_pred, in the compute dtype
    sample_weights: Any  # broadcast to the predictions' shape, or None
    pos_weight: Any  # broadcast to the predictions' shape, or None
    label_smoothing: float
    eps: float
    from_logits: bool
    reduction: Reduction
    base: float | None
    return_grad: bool
    dtype: Any  # the dtype results come back in (the input's)


def check_flag(name: str, value: Any) -> bool:
    """Boolean options (``from_logits``, ``return_grad``) must be real booleans."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, got {value!r}")
    return bool(value)


def check_loss_options(*, reduction: Any, base: Any, label_smoothing: Any) -> tuple[Reduction, float | None, float]:
    """Validate the scalar options every loss shares; return them normalised."""
    checked = cast(Reduction, check_choice("reduction", reduction, Reduction))  # one of Reduction's values
    return checked, check_base(base), check_fraction("label_smoothing", label_smoothing)


def resolve_eps(eps: Any, like: Any, xp: Any) -> float:
    """``"auto"`` -> machine epsilon of ``like``'s dtype; a number in [0, 0.5) -> itself
    (the rule: :func:`xent._lib.rules.resolve_eps`)."""
    return rules.resolve_eps(eps, like.dtype, finfo=xp.finfo)


def clip_probabilities(p: Any, eps: float, xp: Any) -> tuple[Any, Any]:
    """Clip ``p`` to [eps, 1 - eps]; return ``(clipped, inside)``.

    Built from ``where`` rather than ``clip`` so that the derivative is the same
    everywhere: 1 where ``eps <= p <= 1 - eps`` (bounds included) and 0 outside,
    which is also what torch autograd and ``jax.grad`` give through this code.
    ``inside`` is None when ``eps == 0`` (no clipping).
    """
    if eps == 0.0:
        return p, None
    lo = scalar(eps, p, xp)
    hi = scalar(1.0 - eps, p, xp)
    inside = (p >= lo) & (p <= hi)
    return xp.where(p < lo, lo, xp.where(p > hi, hi, p)), inside


def log_probabilities(p: Any, xp: Any, *, eps: float = 0.0, complement: bool = True) -> tuple[Any, Any]:
    """``(log p, log(1 - p))`` of probabilities clipped at ``eps``; ``log 0 = -inf`` without a NumPy warning.

    With ``eps=0`` (or an ``eps`` below the dtype's machine epsilon, which rounds ``1 - eps``
    to 1) an exact 0 or 1 is allowed and its ``-inf`` is the intended answer. There the log is taken of 1 instead (double where), so that its derivative is 0,
    not inf: autograd through a zero coefficient (``0 * log 0``, which :func:`safe_mul` sets
    to 0) then gives 0, never ``0 * inf = NaN``. ``log1p(-p)`` keeps the digits of
    ``log(1 - p)`` for small ``p``. ``complement=False`` skips ``log(1 - p)`` (None).
    """
    if eps >= float(xp.finfo(p.dtype).eps):  # p is clipped inside (0, 1): both logs are finite
        return xp.log(p), (xp.log1p(-p) if complement else None)
    minus_inf = scalar(-math.inf, p, xp)
    zero, one = p == 0, p == 1
    log_p = xp.where(zero, minus_inf, xp.log(xp.where(zero, xp.ones_like(p), p)))
    if not complement:
        return log_p, None
    return log_p, xp.where(one, minus_inf, xp.log1p(-xp.where(one, xp.zeros_like(p), p)))


def safe_div(a: Any, b: Any, xp: Any) -> Any:
    """``a / b`` with ``0 / anything = 0`` (the derivative of ``xlogy`` in its first slot is 0 there)."""
    zero = a == 0
    with np.errstate(divide="ignore"):  # a / 0 = inf is the exact (eps=0) derivative
        quot = a / xp.where(zero, xp.ones_like(b), b)
    return xp.where(zero, xp.zeros_like(quot), quot)


def prepare_weights(
    name: str, w: Any, xp: Any, *, like: Any, shape: tuple[int, ...], what: str
) -> Any:
    """Weights as an array of ``like``'s dtype and device, broadcast to ``shape``, checked >= 0."""
    if w is None:
        return None
    w = as_float_array(w, xp, like=like, name=name)
    try:
        ok = np.broadcast_shapes(tuple(w.shape), shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"`{name}` must be broadcastable to {tuple(shape)} ({what}), got shape {tuple(w.shape)}")
    check_nonnegative(name, w, xp)
    return xp.broadcast_to(w, shape)


def torch_sparse_cross_entropy(logits: Any, labels: Any, **options: Any) -> tuple[Any, Any] | None:
    """Validated torch logits and labels to :mod:`xent.torch`'s kernels: ``(loss, grad | None)`` in nats.

    ``None`` (not torch tensors, an input the kernels do not take, or
    ``use_engine("reference")``) means the caller runs the generic array-API path.
    The NumPy counterpart is :func:`xent.engine.sparse_categorical_cross_entropy`.
    """
    if library_name(logits) != "torch" or engine.get_engine() == "reference":
        return None
    from xent.torch._route import sparse_categorical_cross_entropy  # torch is optional: loaded for torch tensors

    return sparse_categorical_cross_entropy(logits, labels, **options)


def finish(loss: Any, grad: Any, xp: Any, *, base: float | None, return_grad: bool, dtype: Any = None) -> Any:
    """Convert nats to ``base``, return ``dtype`` (the input's, when half precision computed in
    float32; None keeps the computed dtype), give NumPy callers scalars, and pair the gradient when asked."""
    if base is not None:
        d = log_base(base)
        loss = loss / d
        grad = None if grad is None else grad / d
    if dtype is not None:
        loss = xp.astype(loss, dtype, copy=False)
        grad = None if grad is None else xp.astype(grad, dtype, copy=False)
    out = to_result(loss, xp)
    return (out, grad) if return_grad else out
