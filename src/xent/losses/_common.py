"""Plumbing shared by every loss: option checks, clipping, weights, engine hand-off, finishing.

Nothing here computes a loss; the formulas live in ``_binary_core`` and
``_categorical_core``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xent._lib.namespace import (
    as_float_array,
    is_numpy_namespace,
    library_name,
    scalar,
    to_result,
)
from xent._lib.validation import (
    check_base,
    check_choice,
    check_fraction,
    check_nonnegative,
    log_base,
)
from xent.losses._reduce import Reduction

__all__ = [
    "check_flag",
    "check_loss_options",
    "clip_probabilities",
    "finish",
    "log_probabilities",
    "prepare_weights",
    "resolve_eps",
    "safe_div",
    "safe_mul",
    "try_engine",
]


def check_flag(name: str, value: Any) -> bool:
    """Boolean options (``from_logits``, ``return_grad``) must be real booleans."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False, got {value!r}")
    return bool(value)


def check_loss_options(*, reduction: Any, base: Any, label_smoothing: Any) -> tuple[str, float | None, float]:
    """Validate the scalar options every loss shares; return them normalised."""
    check_choice("reduction", reduction, Reduction)
    return reduction, check_base(base), check_fraction("label_smoothing", label_smoothing)


def resolve_eps(eps: Any, like: Any, xp: Any) -> float:
    """``"auto"`` -> machine epsilon of ``like``'s dtype; a number in [0, 0.5) -> itself."""
    if isinstance(eps, str):
        if eps != "auto":
            raise ValueError(f"`eps` must be 'auto' or a number in [0, 0.5), got {eps!r}")
        return float(xp.finfo(like.dtype).eps)
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)):
        raise TypeError(f"`eps` must be 'auto' or a number in [0, 0.5), got {eps!r}")
    v = float(eps)
    if not (0.0 <= v < 0.5 and math.isfinite(v)):
        raise ValueError(f"`eps` must be 'auto' or a number in [0, 0.5), got {eps!r}")
    return v


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


def log_probabilities(p: Any, xp: Any) -> tuple[Any, Any]:
    """``(log p, log(1 - p))`` of (clipped) probabilities; ``log 0 = -inf`` without a NumPy warning.

    With ``eps=0`` an exact 0 is allowed and its ``-inf`` is the intended answer.
    ``log1p(-p)`` keeps the digits of ``log(1 - p)`` for small ``p``.
    """
    with np.errstate(divide="ignore"):
        return xp.log(p), xp.log1p(-p)


def safe_mul(a: Any, b: Any, xp: Any) -> Any:
    """``a * b`` with ``0 * anything = 0``: a zero weight on a log of 0 (or -inf logit) gives 0, not NaN."""
    zero = a == 0
    # Evaluate the product on 1 where a == 0, so neither value nor gradient sees 0 * inf.
    prod = a * xp.where(zero, xp.ones_like(b), b)
    return xp.where(zero, xp.zeros_like(prod), prod)


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
    w = as_float_array(w, xp, like=like)
    try:
        ok = np.broadcast_shapes(tuple(w.shape), shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"`{name}` must be broadcastable to {tuple(shape)} ({what}), got shape {tuple(w.shape)}")
    check_nonnegative(name, w, xp)
    return xp.broadcast_to(w, shape)


def try_engine(op: str, xp: Any, *args: Any, **kwargs: Any) -> Any:
    """Hand validated logits to a fast kernel; ``NotImplemented`` means 'run the reference'.

    NumPy arrays go to the CPU engine, torch tensors to :mod:`xent.torch`'s kernels
    (:mod:`xent.torch._route`). Kernels follow the contract in :mod:`xent.engine` and
    return ``(loss, grad)`` in nats; ``use_engine("reference")`` turns both off.
    """
    torch_tensors = library_name(args[0]) == "torch"
    if not (torch_tensors or is_numpy_namespace(xp)):
        return NotImplemented
    from xent import engine

    if torch_tensors:
        # torch is optional: its face is loaded only when torch tensors arrive
        from xent.torch._route import dispatch

        return NotImplemented if engine.get_engine() == "reference" else dispatch(op, *args, **kwargs)
    return engine.dispatch(op, *args, **kwargs)


def finish(loss: Any, grad: Any, xp: Any, *, base: float | None, return_grad: bool) -> Any:
    """Convert nats to ``base``, give NumPy callers scalars, and pair the gradient when asked."""
    if base is not None:
        d = log_base(base)
        loss = loss / d
        grad = None if grad is None else grad / d
    out = to_result(loss, xp)
    return (out, grad) if return_grad else out
