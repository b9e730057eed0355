"""Stable primitives every numeric path in xent is built on.

All functions take an array of any supported library (NumPy, PyTorch, JAX),
return an array of the same library, dtype and device, and never overflow for
finite inputs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xent import engine
from xent._lib.namespace import (
    as_float_array,
    compute_dtype,
    device_of,
    get_namespace,
    scalar,
    to_result,
)
from xent._lib.typing import Array, ArrayLike
from xent._lib.validation import normalize_axis

__all__ = ["log_sigmoid", "log_softmax", "logsumexp", "sigmoid", "softmax"]


def _softmax_parts(x: Any, axis: int, xp: Any) -> tuple[Any, Any, Any, Any]:
    """Return ``(m, x - m, exp(x - m), rest)`` with keepdims, ``m`` the row max (0 where not finite).

    ``rest`` is the sum of the exp terms other than one maximum, so that
    ``sum exp(x - m) = 1 + rest``, ``lse(x - m) = log1p(rest)`` and
    ``softmax(x) = exp(x - m) / (1 + rest)``: one exp serves the loss and its gradient.
    """
    m = xp.max(x, axis=axis, keepdims=True)
    # A row that is all -inf (or holds +inf) has a non-finite max: shift by 0 instead,
    # so -inf rows give log(0) = -inf and +inf rows give +inf, never NaN from inf - inf.
    m = xp.where(xp.isfinite(m), m, scalar(0.0, m, xp))
    shifted = x - m
    e = xp.exp(shifted)
    at_max = shifted == 0
    # Ties at the max count 1 each; "- 1" removes the one maximum that log1p stands for
    # (an all -inf row has no term at 0, so rest = -1 and log1p(-1) = -inf, as it should).
    n_max = xp.sum(at_max, axis=axis, dtype=x.dtype, keepdims=True)
    rest = xp.sum(xp.where(at_max, scalar(0.0, e, xp), e), axis=axis, keepdims=True) + (n_max - 1)
    return m, shifted, e, rest


def _shifted_lse(x: Any, axis: int, xp: Any) -> tuple[Any, Any, Any]:
    """Return ``(m, x - m, lse(x - m))`` with keepdims (see :func:`_softmax_parts`).

    The maximal term is exactly 1, and log1p of the others keeps the relative
    accuracy of a tiny loss that log(1 + tiny) drops.
    """
    m, shifted, _, rest = _softmax_parts(x, axis, xp)
    return m, shifted, xp.log1p(rest)


def _logsumexp(x: Any, axis: int, xp: Any, *, keepdims: bool = False) -> Any:
    m, _, lse = _shifted_lse(x, axis, xp)
    out = m + lse
    return out if keepdims else xp.squeeze(out, axis=axis)


def _log_softmax(x: Any, axis: int, xp: Any) -> Any:
    # (x - m) - lse(x - m), not x - lse(x): the top class's shifted logit is exactly 0, so a tiny
    # loss next to huge logits keeps its digits instead of drowning in one ulp of max(x).
    _, shifted, lse = _shifted_lse(x, axis, xp)
    return shifted - lse


def _softmax(x: Any, axis: int, xp: Any) -> Any:
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, scalar(0.0, m, xp))
    # exp(x - max) <= 1 never overflows; the sum is >= 1 for any row with a finite max.
    e = xp.exp(x - m)
    return e / xp.sum(e, axis=axis, keepdims=True)


def _log_sigmoid(x: Any, xp: Any) -> Any:
    # log sigmoid(x) = min(x, 0) - log1p(exp(-|x|)): exp never overflows, exact for large |x|.
    return xp.minimum(x, scalar(0.0, x, xp)) - xp.log1p(xp.exp(-xp.abs(x)))


def _sigmoid(x: Any, xp: Any) -> Any:
    # exp(-|x|) <= 1, so both branches are finite; each branch is the accurate one on its side.
    e = xp.exp(-xp.abs(x))
    one = scalar(1.0, x, xp)
    return xp.where(x >= 0, one / (one + e), e / (one + e))


def _safe_mul(a: Any, b: Any, xp: Any) -> Any:
    """``a * b`` with ``0 * b = 0`` even where ``b`` is infinite or NaN (a zero weight on log 0).

    Only the entries where ``a == 0`` *and* ``b`` is not finite are replaced (``b`` by 0, before
    the product), so both derivatives survive everywhere else: ``d/da = b`` also where ``a == 0``
    (a target of exactly 0 still has a gradient), ``d/db = a``. Never evaluates ``0 * inf``.
    """
    lost = (a == 0) & ~xp.isfinite(b)
    return a * xp.where(lost, xp.zeros_like(b), b)


def _xlogy(x: Any, y: Any, xp: Any) -> Any:
    """x * log(y) with 0 * log(0) = 0 (the information-theory convention).

    Only ``x == y == 0`` evaluates the log on 1 (so ``0 * log 0`` never becomes ``0 * -inf = NaN``,
    in the value or in autograd); elsewhere ``d/dx = log y``, also at ``x == 0``.
    """
    both_zero = (x == 0) & (y == 0)
    return x * xp.log(xp.where(both_zero, xp.ones_like(y), y))


_REFERENCE = {"logsumexp": _logsumexp, "log_softmax": _log_softmax, "softmax": _softmax}


def _along_axis(op: str, x: Any, axis: Any) -> tuple[Any, Any]:
    """The shared body of logsumexp / log_softmax / softmax; returns ``(result, xp)``.

    Half precision computes in float32 (a float16 sum of 128256 terms overflows) and
    comes back in its own dtype. A 0-d ``x`` is one value (``axis`` 0 or -1), as in
    SciPy and torch. An empty ``axis`` gives what torch gives: an empty softmax and
    ``-inf`` (the log of an empty sum) for logsumexp.
    """
    xp = get_namespace(x, names=("x",))
    x, dtype = compute_dtype(as_float_array(x, xp), xp)
    scalar_in = x.ndim == 0
    if scalar_in:
        if isinstance(axis, (int, np.integer)) and not isinstance(axis, bool) and axis not in (0, -1):
            raise ValueError(f"`axis` must be 0 or -1 for a 0-d `x` (one value), got {axis}")
        x = xp.reshape(x, (1,))
    ax = normalize_axis(axis, x.ndim)
    if x.shape[ax] == 0:
        if op == "logsumexp":
            shape = tuple(d for i, d in enumerate(x.shape) if i != ax)
            out = xp.full(shape, -math.inf, dtype=x.dtype, device=device_of(x))
        else:
            out = xp.zeros_like(x)
    else:
        out = getattr(engine, op)(x, ax)  # large NumPy inputs (engine function of the same name); None: the reference below
        if out is None:
            out = _REFERENCE[op](x, ax, xp)
    if scalar_in and op != "logsumexp":
        out = xp.reshape(out, ())
    return xp.astype(out, dtype, copy=False), xp


def logsumexp(x: ArrayLike, /, *, axis: int = -1) -> Array:
    r"""Log of the sum of exponentials along ``axis``, without overflow.

    .. math:: \operatorname{lse}(x) = m + \log \sum_j e^{x_j - m}, \quad m = \max_j x_j

    Parameters
    ----------
    x : array, shape (..., C, ...)
        Real values (logits). Integer inputs are promoted to the default float.
    axis : int
        The axis that is reduced.

    Returns
    -------
    array
        ``x`` with ``axis`` removed; a NumPy scalar for a 1-d NumPy input.

    Notes
    -----
    Rows that are all ``-inf`` give ``-inf``; a row holding ``+inf`` gives ``+inf``;
    an empty ``axis`` gives ``-inf`` (as in torch). Half precision sums in float32.
    Equals ``scipy.special.logsumexp(x, axis=axis)``.

    Examples
    --------
    >>> import xent
    >>> float(xent.logsumexp([1000.0, 1000.0]))  # doctest: +ELLIPSIS
    1000.693147...
    """
    out, xp = _along_axis("logsumexp", x, axis)
    return to_result(out, xp)


def log_softmax(x: ArrayLike, /, *, axis: int = -1) -> Array:
    r"""Log of the softmax along ``axis``: :math:`x_i - \operatorname{lse}(x)`.

    Finite for any finite input, however large (``softmax`` may underflow to 0,
    its log does not become ``-inf`` unless the gap exceeds the float range).

    Examples
    --------
    >>> import numpy as np, xent
    >>> np.round(xent.log_softmax(np.array([0.0, 0.0])), 6)
    array([-0.693147, -0.693147])
    """
    return _along_axis("log_softmax", x, axis)[0]


def softmax(x: ArrayLike, /, *, axis: int = -1) -> Array:
    r"""Softmax along ``axis``: :math:`e^{x_i - m} / \sum_j e^{x_j - m}`.

    Turns logits into probabilities that sum to 1 along ``axis``. Subtracting the
    row maximum ``m`` leaves the result unchanged and prevents overflow.

    Examples
    --------
    >>> import numpy as np, xent
    >>> np.round(xent.softmax(np.array([1.0, 2.0, 3.0])), 4)
    array([0.09  , 0.2447, 0.6652])
    """
    return _along_axis("softmax", x, axis)[0]


def sigmoid(x: ArrayLike, /) -> Array:
    r"""Logistic sigmoid :math:`1 / (1 + e^{-x})`, elementwise, without overflow.

    Equals ``scipy.special.expit``.

    Examples
    --------
    >>> import xent
    >>> float(xent.sigmoid(0.0))
    0.5
    """
    xp = get_namespace(x, names=("x",))
    x = as_float_array(x, xp)
    return to_result(_sigmoid(x, xp), xp)


def log_sigmoid(x: ArrayLike, /) -> Array:
    r"""Log of the sigmoid, :math:`-\log(1 + e^{-x})`, exact for large ``|x|``.

    ``log_sigmoid(-x)`` is ``log(1 - sigmoid(x))``. Equals ``scipy.special.log_expit``.

    Examples
    --------
    >>> import xent
    >>> float(xent.log_sigmoid(-1000.0))
    -1000.0
    """
    xp = get_namespace(x, names=("x",))
    x = as_float_array(x, xp)
    return to_result(_log_sigmoid(x, xp), xp)
