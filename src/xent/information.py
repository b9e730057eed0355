r"""Information measures over a distribution axis: entropy, cross-entropy, KL and JS.

Every function reads probabilities ``p`` (and ``q``) along ``axis`` exactly as
given: nothing is clipped and nothing is renormalised. The information-theory
convention :math:`0 \log 0 = 0` holds, so zero-probability outcomes of ``p``
contribute nothing, while an outcome with :math:`p_i > 0` and :math:`q_i = 0`
makes :math:`H(p, q)` and :math:`D_{KL}(p \| q)` infinite.

``p`` and ``q`` broadcast against each other (NumPy rules); ``axis`` refers to
the broadcast shape. Values outside [0, 1] or NaN raise a ValueError naming the
argument and the first bad index; that data-dependent check is skipped for
traced arrays (``jax.jit``, ``torch.compile``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xent._lib.namespace import accumulate_sum, as_float_array, get_namespace, scalar, to_result
from xent._lib.typing import Array, ArrayLike
from xent._lib.validation import check_base, check_values_in, log_base, normalize_axis
from xent.primitives import _xlogy

__all__ = ["cross_entropy", "entropy", "js_divergence", "kl_divergence"]


def _prepare(arrays: tuple[Any, ...], names: tuple[str, ...], axis: Any, base: Any) -> tuple[Any, ...]:
    """Resolve the namespace, promote to a common float dtype, broadcast and validate."""
    xp = get_namespace(*arrays, names=names)
    b = check_base(base)
    arrs = [as_float_array(a, xp, name=n) for a, n in zip(arrays, names)]
    try:
        shape = np.broadcast_shapes(*(tuple(a.shape) for a in arrs))
    except ValueError:
        described = " and ".join(f"`{n}` has shape {tuple(a.shape)}" for n, a in zip(names, arrs))
        raise ValueError(f"`p` and `q` must have broadcast-compatible shapes, got: {described}") from None
    dtype = xp.result_type(*arrs)
    arrs = [xp.broadcast_to(xp.astype(a, dtype), shape) for a in arrs]
    ax = normalize_axis(axis, len(shape))
    for n, a in zip(names, arrs):
        check_values_in(n, a, xp, low=0.0, high=1.0, what="probabilities")
    return (xp, ax, b, *arrs)


def _finish(terms: Any, xp: Any, axis: int, base: float | None) -> Any:
    """Sum the per-outcome terms along ``axis`` (float64 accumulator) and convert to ``base``."""
    total = xp.astype(accumulate_sum(terms, xp, axis=axis), terms.dtype)
    if base is not None:
        total = total / log_base(base)
    return to_result(total, xp)


def _rel_entr(p: Any, q: Any, xp: Any) -> Any:
    """Elementwise p log(p / q): 0 where p == 0, inf where p > 0 == q (``scipy.special.rel_entr``)."""
    p0 = p == 0
    q0 = q == 0
    one = scalar(1.0, p, xp)
    safe_p = xp.where(p0, one, p)
    safe_q = xp.where(p0 | q0, one, q)
    # log(p / q) keeps relative accuracy when p ~ q, but p / q overflows when q < p * tiny
    # (subnormal q): there, and only there, split the log into log p - log q.
    floor = safe_p * scalar(float(xp.finfo(p.dtype).smallest_normal), p, xp)
    split = safe_q < floor
    ratio = safe_p / xp.where(split, one, safe_q)
    log_ratio = xp.where(split, xp.log(safe_p) - xp.log(safe_q), xp.log(ratio))
    value = xp.where(q0, scalar(math.inf, p, xp), p * log_ratio)
    return xp.where(p0, xp.zeros_like(p), value)


def entropy(p: ArrayLike, /, *, axis: int = -1, base: float | None = None) -> Array:
    r"""Shannon entropy of the distribution ``p`` along ``axis``.

    .. math:: H(p) = -\sum_i p_i \log p_i, \qquad 0 \log 0 = 0

    Parameters
    ----------
    p : array, shape (..., C, ...)
        Probabilities in [0, 1], used as given (not renormalised, not clipped).
    axis : int
        The distribution axis (default the last).
    base : float or None
        Log base of the result: None for nats, 2 for bits, any finite base > 0 other than 1.

    Returns
    -------
    array
        ``p`` with ``axis`` removed, in ``p``'s library, dtype and device; a NumPy
        scalar for a 1-d NumPy input.

    Raises
    ------
    ValueError
        ``p`` holds a value outside [0, 1] or NaN (eager arrays only), bad ``axis`` or ``base``.

    Notes
    -----
    Equals ``scipy.stats.entropy(p, base=base, axis=axis)`` for a ``p`` that sums
    to 1 (SciPy renormalises, xent does not).

    References
    ----------
    C. E. Shannon, "A Mathematical Theory of Communication", Bell System
    Technical Journal 27 (1948).

    Examples
    --------
    A container holding 26 of one shape and 4 of another, in bits:

    >>> import xent
    >>> round(float(xent.entropy([26 / 30, 4 / 30], base=2)), 5)
    0.56651
    >>> float(xent.entropy([0.5, 0.5, 0.0], base=2))
    1.0
    """
    xp, ax, b, p = _prepare((p,), ("p",), axis, base)
    return _finish(-_xlogy(p, p, xp), xp, ax, b)


def cross_entropy(p: ArrayLike, q: ArrayLike, /, *, axis: int = -1, base: float | None = None) -> Array:
    r"""Cross-entropy :math:`H(p, q)` of the model ``q`` relative to the true distribution ``p``.

    .. math:: H(p, q) = -\sum_i p_i \log q_i = H(p) + D_{KL}(p \,\|\, q)

    Terms with :math:`p_i = 0` are 0 whatever :math:`q_i` is; a term with
    :math:`p_i > 0` and :math:`q_i = 0` is :math:`+\infty`. No clipping: for the
    clipped, weighted training losses see :func:`xent.categorical_cross_entropy`.

    Parameters
    ----------
    p, q : array, broadcast-compatible shapes (..., C, ...)
        Probabilities in [0, 1]: ``p`` the reference ("true") distribution,
        ``q`` the model's prediction.
    axis : int
        The distribution axis of the broadcast shape (default the last).
    base : float or None
        None for nats, 2 for bits, any finite base > 0 other than 1.

    Returns
    -------
    array
        The broadcast shape with ``axis`` removed; a NumPy scalar for 1-d NumPy inputs.

    Examples
    --------
    One-hot truth against a 4-class prediction, in bits:

    >>> import xent
    >>> round(float(xent.cross_entropy([1, 0, 0, 0], [0.775, 0.116, 0.039, 0.070], base=2)), 5)
    0.36773
    """
    xp, ax, b, p, q = _prepare((p, q), ("p", "q"), axis, base)
    q0 = q == 0
    # -p log 0 = +inf for p > 0, set directly so that NumPy never warns about log(0).
    terms = -_xlogy(p, xp.where(q0, xp.ones_like(q), q), xp)
    terms = xp.where(q0 & (p != 0), scalar(math.inf, p, xp), terms)
    return _finish(terms, xp, ax, b)


def kl_divergence(p: ArrayLike, q: ArrayLike, /, *, axis: int = -1, base: float | None = None) -> Array:
    r"""Kullback-Leibler divergence :math:`D_{KL}(p \,\|\, q)` along ``axis``.

    .. math:: D_{KL}(p \,\|\, q) = \sum_i p_i \log \frac{p_i}{q_i} = H(p, q) - H(p)

    Each term is ``scipy.special.rel_entr(p_i, q_i)``: 0 when :math:`p_i = 0`,
    :math:`+\infty` when :math:`p_i > 0 = q_i`. It is computed as
    :math:`p_i \log(p_i / q_i)`, not as a difference of entropies, so it stays
    accurate (and >= 0) when ``q`` is close to ``p``.

    Parameters
    ----------
    p, q : array, broadcast-compatible shapes (..., C, ...)
        Probabilities in [0, 1], used as given.
    axis : int
        The distribution axis of the broadcast shape (default the last).
    base : float or None
        None for nats, 2 for bits, any finite base > 0 other than 1.

    Returns
    -------
    array
        The broadcast shape with ``axis`` removed; a NumPy scalar for 1-d NumPy inputs.

    Notes
    -----
    PyTorch's ``F.kl_div(input, target)`` takes the *log* of the model first and
    the target second: ``kl_divergence(p, q) == F.kl_div(log(q), p, reduction="sum")``
    for one distribution.

    References
    ----------
    S. Kullback and R. A. Leibler, "On Information and Sufficiency", Annals of
    Mathematical Statistics 22 (1951).

    Examples
    --------
    >>> import xent
    >>> round(float(xent.kl_divergence([0.5, 0.5], [0.9, 0.1])), 6)
    0.510826
    >>> float(xent.kl_divergence([0.5, 0.5], [1.0, 0.0]))
    inf
    """
    xp, ax, b, p, q = _prepare((p, q), ("p", "q"), axis, base)
    return _finish(_rel_entr(p, q, xp), xp, ax, b)


def js_divergence(p: ArrayLike, q: ArrayLike, /, *, axis: int = -1, base: float | None = None) -> Array:
    r"""Jensen-Shannon divergence of ``p`` and ``q`` along ``axis``.

    .. math::

        JS(p, q) = \tfrac12 D_{KL}(p \,\|\, m) + \tfrac12 D_{KL}(q \,\|\, m),
        \qquad m = \tfrac12 (p + q)

    Symmetric, always finite, and at most :math:`\log 2` (1 bit) for
    distributions that sum to 1.

    Parameters
    ----------
    p, q : array, broadcast-compatible shapes (..., C, ...)
        Probabilities in [0, 1], used as given.
    axis : int
        The distribution axis of the broadcast shape (default the last).
    base : float or None
        None for nats, 2 for bits, any finite base > 0 other than 1.

    Returns
    -------
    array
        The broadcast shape with ``axis`` removed; a NumPy scalar for 1-d NumPy inputs.

    Notes
    -----
    ``scipy.spatial.distance.jensenshannon`` returns the Jensen-Shannon
    *distance*, the square root of this divergence (and renormalises its inputs).

    References
    ----------
    J. Lin, "Divergence measures based on the Shannon entropy", IEEE
    Transactions on Information Theory 37 (1991).

    Examples
    --------
    Disjoint distributions are 1 bit apart:

    >>> import xent
    >>> float(xent.js_divergence([1.0, 0.0], [0.0, 1.0], base=2))
    1.0
    """
    xp, ax, b, p, q = _prepare((p, q), ("p", "q"), axis, base)
    # p log(p / m) with m = (p + q) / 2 is rel_entr(2p, p + q) / 2: halving p + q would underflow
    # to 0 for the smallest subnormals (a finite JS turned inf); doubling p is exact.
    s = p + q
    two, quarter = scalar(2.0, p, xp), scalar(0.25, p, xp)
    return _finish(quarter * (_rel_entr(two * p, s, xp) + _rel_entr(two * q, s, xp)), xp, ax, b)
