"""Exact values of the engine's losses and gradients, for the exactness tests.

Computed from the conventions (README "Conventions"), not from xent's code, in
extended precision: NumPy's 80-bit ``longdouble`` (eps 1.1e-19) where the platform
has it, mpmath at 40 digits elsewhere. Every formula is one that extended precision
evaluates without cancellation:

- the softmax normaliser is ``K + R`` (K terms at the row max, each exactly 1, R the
  others), so ``lse - max = log1p(K - 1 + R)`` keeps a tiny loss;
- the gradient ``s (A p_c - a_c)`` at the row's unique maximum is written
  ``s ((A - a_c) - a_c (S - 1)) / S`` with ``A - a_c`` and ``S - 1`` sums of the other
  entries (otherwise a confident row's label gradient, about 1e-17, is lost to
  cancellation even in 80 bits).

Inputs are the float32 / float64 arrays as given (their values are exact); results
are float64 arrays or floats, exact to far better than 1e-12 relative.
"""

from __future__ import annotations

import numpy as np

EXTENDED = np.finfo(np.longdouble).eps < 1e-18

if EXTENDED:
    F = np.longdouble

    def _exp(a: np.ndarray) -> np.ndarray:
        return np.exp(a)

    def _log1p(a: np.ndarray) -> np.ndarray:
        return np.log1p(a)

    def _num(a: np.ndarray) -> np.ndarray:
        return np.asarray(a, np.float64).astype(F)

else:  # pragma: no cover - platforms whose long double is a double (macOS arm64, MSVC)
    import mpmath

    mpmath.mp.dps = 40
    F = object
    _exp = np.frompyfunc(mpmath.exp, 1, 1)
    _log1p = np.frompyfunc(mpmath.log1p, 1, 1)

    def _num(a: np.ndarray) -> np.ndarray:
        return np.frompyfunc(lambda v: mpmath.mpf(float(v)), 1, 1)(np.asarray(a, np.float64))


def _f64(a) -> np.ndarray:
    return np.asarray(np.asarray(a, dtype=F if EXTENDED else object), dtype=np.float64)


def _rows(x: np.ndarray, axis: int) -> np.ndarray:
    """Logits as (rows, C) with the class axis last."""
    x = np.moveaxis(np.asarray(x), axis, -1)
    return x.reshape(-1, x.shape[-1])


def _softmax_parts(x2: np.ndarray):
    """(m, d = x - m, terms e^d, S - 1 = K - 1 + R, lse - m, unique-argmax index or -1) per row, extended."""
    xs = _num(x2)
    m = np.max(x2, axis=1).astype(np.float64)
    d = xs - _num(m)[:, None]
    at_max = x2 == m[:, None]
    terms = _exp(d)
    k = at_max.sum(axis=1)
    rest = np.where(at_max, _num(np.zeros(x2.shape)), terms).sum(axis=1)
    s1 = rest + _num(k - 1.0)
    lse = _log1p(s1)
    argmax = np.where(k == 1, np.argmax(x2, axis=1), -1)
    return m, d, terms, s1, lse, argmax


def softmax_family(x: np.ndarray, axis: int, kind: str) -> np.ndarray:
    """logsumexp / log_softmax / softmax of finite rows (at least one finite entry)."""
    x2 = _rows(x, axis)
    m, d, terms, s1, lse, _ = _softmax_parts(x2)
    moved = np.moveaxis(np.asarray(x), axis, -1).shape
    if kind == "logsumexp":
        return _f64(_num(m) + lse).reshape(moved[:-1])
    out = d - lse[:, None] if kind == "log_softmax" else terms / (s1 + 1)[:, None]
    return np.moveaxis(_f64(out).reshape(moved), -1, axis)


def _reduce(per: np.ndarray, sk: np.ndarray, norm: np.ndarray, reduction: str):
    """(result, d result / d l_i) with the team conventions: mean = sum s k l / sum s k c, 0 when that is 0."""
    weighted = np.where(sk != 0, _num(sk) * per, _num(np.zeros(per.shape)))
    if reduction == "none":
        return _f64(weighted), sk.astype(np.float64)
    total = weighted.sum()
    if reduction == "sum":
        return float(_f64(total)), sk.astype(np.float64)
    denom = float(np.sum(sk * norm))
    if denom == 0:
        return 0.0, np.zeros(sk.shape)
    return float(_f64(total / _num(np.float64(denom)))), sk / denom


def _ce_rows(x2: np.ndarray, a: np.ndarray, scale: np.ndarray):
    """Per-row loss sum_c a_c (lse - d_c) (0 * inf = 0) and gradient scale (A p - a), extended."""
    m, d, terms, s1, lse, argmax = _softmax_parts(x2)
    az = _num(a)
    zero = _num(np.zeros(x2.shape))
    per = np.where(a == 0, zero, az * (lse[:, None] - d)).sum(axis=1)
    big_a = az.sum(axis=1)
    p = terms / (s1 + 1)[:, None]
    g = p * big_a[:, None] - az
    rows = np.flatnonzero(argmax >= 0)
    if rows.size:  # the unique maximum: (A - a_c) - a_c (S - 1), both sums of the other entries
        c = argmax[rows]
        at = np.arange(x2.shape[1])[None, :] == c[:, None]
        others = np.where(at, zero[rows], az[rows]).sum(axis=1)
        a_c = az[rows, c]
        g[rows, c] = (others - a_c * s1[rows]) / (s1[rows] + 1)
    g = _f64(g) * scale[:, None]
    return per, np.where(scale[:, None] != 0, g, 0.0)


def sparse(
    y, x, *, axis, class_weights=None, weights=None, ignore_index=None, label_smoothing=0.0, reduction="mean",
    with_parts=False,
):
    """(loss, grad) of sparse softmax cross-entropy from logits, exact; labels outside [0, C) have no label term.

    ``with_parts``: also the per-row size of the subtracted smoothing weights (see _finish).
    """
    x = np.asarray(x)
    x2 = _rows(x, axis)
    n, c = x2.shape
    y1 = np.asarray(y).reshape(-1)
    keep = np.ones(n, bool) if ignore_index is None else y1 != ignore_index
    valid = (y1 >= 0) & (y1 < c)
    w = np.ones(c) if class_weights is None else np.asarray(class_weights, np.float64)
    e = label_smoothing
    onehot = np.zeros((n, c))
    rows = np.flatnonzero(valid & keep)
    onehot[rows, y1[rows]] = 1.0
    a = w * ((1 - e) * onehot + e / c)
    shape = np.asarray(y).shape
    s = np.ones(n) if weights is None else np.broadcast_to(np.asarray(weights, np.float64), shape).reshape(-1)
    sk = np.where(keep, s, 0.0)
    norm = np.where(valid, w[np.where(valid, y1, 0)], 0.0) if class_weights is not None else np.ones(n)
    return _finish(x, axis, a, sk, norm, reduction, np.asarray(y).shape, np.broadcast_to(w * e / c, a.shape),
                   with_parts)


def categorical(
    t, x, *, axis, class_weights=None, weights=None, label_smoothing=0.0, reduction="mean", with_parts=False
):
    """(loss, grad) of softmax cross-entropy with target distributions ``t`` (the logits' shape), exact."""
    x = np.asarray(x)
    x2 = _rows(x, axis)
    n, c = x2.shape
    t2 = _rows(np.asarray(t, np.float64), axis)
    w = np.ones(c) if class_weights is None else np.asarray(class_weights, np.float64)
    e = label_smoothing
    a = w * ((1 - e) * t2 + e / c)
    shape = np.moveaxis(x, axis, -1).shape[:-1]
    s = np.ones(n) if weights is None else np.broadcast_to(np.asarray(weights, np.float64), shape).reshape(-1)
    norm = (w * t2).sum(axis=1) if class_weights is not None else np.ones(n)
    return _finish(x, axis, a, s, norm, reduction, shape, a, with_parts)


def _finish(x, axis, a, sk, norm, reduction, shape, soft, with_parts):
    x2 = _rows(x, axis)
    per, _ = _ce_rows(x2, a, np.ones(len(sk)))
    result, scale = _reduce(per, sk, norm, reduction)
    _, g = _ce_rows(x2, a, scale)
    moved = np.moveaxis(x, axis, -1).shape
    g = np.moveaxis(g.reshape(moved), -1, axis)
    # Per row (in the layout's row order): the target weights a gradient entry s (A p_c - a_c)
    # subtracts where they are not a one-hot label's, s max_c a_c. Where the prediction meets
    # them the entry cancels to ~0 whatever the method, so a kernel computing in the logits'
    # dtype is judged against a few ulps of this size there (a hard label's row stays strict).
    parts = np.abs(scale) * np.max(np.abs(soft), axis=1, initial=0.0)
    if reduction == "none":
        result = result.reshape(shape)
    return (result, g, parts) if with_parts else (result, g)


def binary(y, z, *, weights=None, pos_weight=None, label_smoothing=0.0, reduction="mean"):
    """(loss, grad) of binary cross-entropy with logits, exact (softplus written without cancellation)."""
    z = np.asarray(z)
    zf = _num(z)
    e = label_smoothing
    ys = _num(np.broadcast_to(np.asarray(y, np.float64), z.shape)) * _num(np.float64(1 - e)) + _num(np.float64(e / 2))
    pw = _num(np.broadcast_to(np.asarray(1.0 if pos_weight is None else pos_weight, np.float64), z.shape))
    a, b = ys * pw, 1 - ys
    zero = _num(np.zeros(z.shape))
    em = _exp(-np.abs(zf))
    lg = _log1p(em)
    # log(1 + e^-z) = max(-z, 0) + log1p(e^-|z|), log(1 + e^z) = max(z, 0) + log1p(e^-|z|)
    per = np.where(_f64(a) == 0, zero, a * (np.maximum(-zf, zero) + lg)) + np.where(
        _f64(b) == 0, zero, b * (np.maximum(zf, zero) + lg)
    )
    s = np.ones(z.shape) if weights is None else np.broadcast_to(np.asarray(weights, np.float64), z.shape)
    result, scale = _reduce(per.reshape(-1), s.reshape(-1), np.ones(z.size), reduction)
    sig_pos = np.where(zf >= 0, 1 / (1 + em), em / (1 + em))
    sig_neg = np.where(zf >= 0, em / (1 + em), 1 / (1 + em))
    g = _f64(b * sig_pos - a * sig_neg).reshape(-1) * scale
    g = np.where(scale != 0, g, 0.0).reshape(z.shape)
    if reduction == "none":
        result = result.reshape(z.shape)
    return result, g
