"""Argument checks with messages that name the argument, the expectation and what came.

Scalar option checks always run. Checks that read array values are skipped
for traced arrays (jax.jit, torch.compile), whose values are unknown; see
:func:`xent._lib.namespace.is_traced`.
"""

from __future__ import annotations

import math
import operator
import typing
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from xent._lib.namespace import is_traced, to_numpy

__all__ = [
    "check_base",
    "check_choice",
    "check_count",
    "check_fraction",
    "check_index",
    "check_integer_dtype",
    "check_labels",
    "check_nonnegative",
    "check_nonnegative_scalar",
    "check_scalar_option",
    "check_shape",
    "check_values_in",
    "log_base",
    "normalize_axis",
    "warn_if_swapped",
]


def check_choice(name: str, value: Any, literal: Any) -> str:
    """``value`` must be one of the values of the ``Literal`` type ``literal``."""
    allowed = typing.get_args(literal)
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"`{name}` must be one of {choices}, got {value!r}")
    return str(value)


def _real_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"`{name}` must be a real number, got {value!r} of type {type(value).__name__}")
    return float(value)


def check_count(name: str, value: Any, *, or_none: bool = False) -> int:
    """A count or a size: an integer >= 1 (a Python int or a NumPy integer; not a bool), as an int.

    The one home of the rule "an integer >= 1" (see :mod:`xent._lib.rules`). ``or_none`` is for
    options where None means "the default" (the caller handles None first): the message then
    says ``None or an integer >= 1``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        what = "None or an integer >= 1" if or_none else "an integer >= 1"
        raise ValueError(f"`{name}` must be {what}, got {value!r}")
    return int(value)


def check_fraction(name: str, value: Any) -> float:
    """A scalar in [0, 1], e.g. ``label_smoothing``."""
    v = _real_number(name, value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"`{name}` must be in [0, 1], got {value!r}")
    return v


def check_nonnegative_scalar(name: str, value: Any) -> float:
    v = _real_number(name, value)
    if not (v >= 0.0 and math.isfinite(v)):
        raise ValueError(f"`{name}` must be a finite number >= 0, got {value!r}")
    return v


def check_scalar_option(name: str, value: Any, check: Callable[[str, Any], float]) -> Any:
    """A scalar option (``gamma``, ``alpha``) that may also come as a 0-d array.

    Numbers and eager 0-d arrays are read and checked by ``check`` (e.g.
    :func:`check_fraction`), which returns a float. A 0-d array whose value is
    abstract (traced under ``jax.jit`` / ``jax.grad``, ``torch.compile``) or that
    carries a gradient (a torch tensor with ``requires_grad``) is returned as it is,
    unread, so that it stays traced and differentiable; its range is then not checked.
    """
    if isinstance(value, np.generic):
        value = value.item()  # messages show 1.5, not np.float32(1.5)
    if not hasattr(value, "shape"):
        return check(name, value)
    if tuple(value.shape) != ():
        raise ValueError(f"`{name}` must be a number or a 0-d array, got an array of shape {tuple(value.shape)}")
    if is_traced(value) or getattr(value, "requires_grad", False):
        return value
    return check(name, to_numpy(value).item())


def check_index(name: str, value: Any) -> int | None:
    """None, or an integer: a Python int, a NumPy integer scalar (``np.int64(-100)``) or a 0-d
    integer array; returned as a Python int. Booleans and floats are a TypeError."""
    if value is None:
        return None
    if not isinstance(value, (bool, np.bool_, float, np.floating)):
        try:
            return operator.index(value)
        except TypeError:
            pass
    shown = value.item() if isinstance(value, np.generic) else value  # 1.0, not np.float64(1.0)
    raise TypeError(f"`{name}` must be None or an integer, got {shown!r}")


def check_base(base: Any) -> float | None:
    """``base`` is None (nats) or a real number > 0 other than 1."""
    if base is None:
        return None
    v = _real_number("base", base)
    if not (v > 0.0 and v != 1.0 and math.isfinite(v)):
        raise ValueError(f"`base` must be None (nats) or a finite number > 0 other than 1, got {base!r}")
    return v


def log_base(base: float | None) -> float:
    """The divisor that turns nats into units of ``base`` (1.0 for nats)."""
    return 1.0 if base is None else math.log(base)


def normalize_axis(axis: Any, ndim: int, *, name: str = "axis") -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer, got {axis!r}")
    if ndim == 0:
        raise ValueError(f"`{name}`={axis} needs an array with at least 1 dimension, got a 0-d array")
    if not -ndim <= axis < ndim:
        raise ValueError(f"`{name}` must be in [{-ndim}, {ndim - 1}] for a {ndim}-d array, got {axis}")
    return int(axis) % ndim


def check_shape(name: str, x: Any, expected: tuple[int, ...], *, what: str = "") -> None:
    """``x.shape`` must equal ``expected``; ``what`` says where the expectation comes from."""
    if tuple(x.shape) != tuple(expected):
        why = f" ({what})" if what else ""
        raise ValueError(f"`{name}` must have shape {tuple(expected)}{why}, got {tuple(x.shape)}")


def check_integer_dtype(name: str, x: Any, xp: Any) -> None:
    if not xp.isdtype(x.dtype, "integral"):
        raise TypeError(f"`{name}` must hold integer class labels, got dtype {x.dtype}")


def _any_concrete(bad: Any, xp: Any) -> bool:
    """``any(bad)``, or False when it is abstract: under ``jax.jit`` even concrete
    (closed-over) arrays give traced results, so the values cannot be checked."""
    flag = xp.any(bad)
    return False if is_traced(flag) else bool(flag)


def _at(idx: tuple[int, ...] | int) -> str:
    """" at index i" for the error messages; nothing for a 0-d array."""
    return "" if idx == () else f" at index {idx}"


def _first_index(mask: np.ndarray) -> tuple[int, ...] | int:
    idx = tuple(int(i) for i in np.argwhere(mask)[0])
    return idx[0] if len(idx) == 1 else idx


def _numpy_within(x: Any, low: float, high: float, *, finite: bool = False) -> bool:
    """True when NumPy array ``x`` surely lies in [low, high] (finite too, with ``finite``); False means
    "run the full check". Two reductions, no boolean temporaries the size of ``x``; NaN fails both."""
    if not isinstance(x, np.ndarray) or x.dtype == object:
        return False
    if x.size == 0:
        return True
    lo, hi = np.min(x), np.max(x)
    return bool(lo >= low and hi <= high and (not finite or np.isfinite(hi)))


def check_values_in(
    name: str,
    x: Any,
    xp: Any,
    *,
    low: float,
    high: float,
    what: str,
) -> None:
    """Every value of ``x`` is in [low, high] and not NaN (skipped when traced)."""
    if x is None or is_traced(x):
        return
    if _numpy_within(x, low, high):
        return
    bad = ~((x >= low) & (x <= high))
    if not _any_concrete(bad, xp):
        return
    host = to_numpy(bad)
    idx = _first_index(host)
    value = to_numpy(x)[idx].item()  # a Python number: repr 1.5, not np.float64(1.5)
    raise ValueError(f"`{name}` must hold {what} in [{low:g}, {high:g}], got {value!r}{_at(idx)}")


def check_nonnegative(name: str, x: Any, xp: Any) -> None:
    """Weights: every value finite and >= 0 (skipped when traced)."""
    if x is None or is_traced(x):
        return
    if _numpy_within(x, 0, math.inf, finite=True):
        return
    bad = ~((x >= 0) & xp.isfinite(x))
    if not _any_concrete(bad, xp):
        return
    idx = _first_index(to_numpy(bad))
    raise ValueError(f"`{name}` must be finite and >= 0, got {to_numpy(x)[idx].item()!r}{_at(idx)}")


def check_labels(
    name: str,
    labels: Any,
    xp: Any,
    *,
    num_classes: int,
    ignore_index: int | None,
) -> None:
    """Integer labels must be in [0, num_classes) or equal ``ignore_index`` (skipped when traced)."""
    if is_traced(labels):
        return
    if _numpy_within(labels, 0, num_classes - 1):
        return
    bad = (labels < 0) | (labels >= num_classes)
    if ignore_index is not None:
        bad = bad & (labels != ignore_index)
    if not _any_concrete(bad, xp):
        return
    idx = _first_index(to_numpy(bad))
    hint = f" or equal ignore_index={ignore_index}" if ignore_index is not None else ""
    raise ValueError(
        f"`{name}` must hold class labels in [0, {num_classes}){hint}, "
        f"got {to_numpy(labels)[idx].item()!r}{_at(idx)}"
    )


def _only_zeros_and_ones(x: Any, xp: Any) -> bool:
    """True when every value of ``x`` is 0 or 1. A look at the first values settles the common
    case (real predictions) with a small, fixed allocation; only 0/1 prefixes scan the rest."""
    head = x.flat[:64] if isinstance(x, np.ndarray) else xp.reshape(x, (-1,))[:64]
    if _any_concrete((head != 0) & (head != 1), xp):
        return False
    return not _any_concrete((x != 0) & (x != 1), xp)


def warn_if_swapped(y: Any, x: Any, xp: Any, *, stacklevel: int) -> None:
    """Warn when binary targets ``y`` hold values other than 0 and 1 while the predictions ``x``
    hold only 0s and 1s: almost surely ``(y_pred, y_true)`` passed in torch's order.

    Eager arrays only. Real predictions are told apart by their first values, so the check
    costs next to nothing and allocates nothing that grows with the input.
    """
    if is_traced(y, x) or math.prod(x.shape) == 0 or not _only_zeros_and_ones(x, xp):
        return
    soft = (y != 0) & (y != 1)
    if not _any_concrete(soft, xp):
        return
    idx = _first_index(to_numpy(soft))
    warnings.warn(
        f"`y_true` holds values other than 0 and 1 (e.g. {to_numpy(y)[idx].item()!r}{_at(idx)}) while "
        "`y_pred` holds only 0s and 1s: are the arguments swapped? xent takes (y_true, y_pred), "
        "as scikit-learn does, not torch's (input, target)",
        UserWarning,
        stacklevel=stacklevel + 1,
    )
