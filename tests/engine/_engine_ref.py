"""Plain float64 NumPy references for the engine tests, written from the team conventions.

Independent of xent's own code: losses are -sum_c w_c q_c log p_c with
q = (1 - e) t + e / C, reduced with sample weights s, keep mask k and normaliser c
(mean = sum s k l / sum s k c, 0 when that is 0); gradients are d(result)/d(logits).
"""

from __future__ import annotations

import numpy as np


def log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    x = np.asarray(x, np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def _reduce(per, s, keep, norm, reduction):
    sk = s * keep
    weighted = np.where(sk != 0, sk * np.where(keep, per, 0.0), 0.0)
    if reduction == "none":
        return weighted, sk
    if reduction == "sum":
        return weighted.sum(), sk
    denom = (sk * norm).sum()
    if denom == 0:
        return 0.0, np.zeros_like(sk)
    return weighted.sum() / denom, sk / denom


def categorical(t, x, *, axis, class_weights=None, weights=None, label_smoothing=0.0, reduction="mean", keep=None):
    """(loss, grad) for targets ``t`` (same shape as the logits ``x``)."""
    t = np.moveaxis(np.asarray(t, np.float64), axis, -1)
    x = np.moveaxis(np.asarray(x, np.float64), axis, -1)
    c = x.shape[-1]
    e = label_smoothing
    w = np.ones(c) if class_weights is None else np.asarray(class_weights, np.float64)
    q = (1 - e) * t + e / c
    a = w * q
    logp = log_softmax(x, -1)
    per = -np.sum(np.where(a == 0, 0.0, a * np.where(a == 0, 1.0, logp)), axis=-1)
    norm = np.sum(w * t, axis=-1)
    s = np.ones(per.shape) if weights is None else np.broadcast_to(np.asarray(weights, np.float64), per.shape)
    k = np.ones(per.shape, bool) if keep is None else keep
    result, scale = _reduce(per, s, k, norm, reduction)
    g = np.exp(logp) * a.sum(-1, keepdims=True) - a
    g = np.where(scale[..., None] != 0, g * scale[..., None], 0.0)
    return result, np.moveaxis(g, -1, axis)


def sparse(y, x, *, axis, ignore_index=None, **options):
    """(loss, grad) for integer labels ``y``; ``ignore_index`` labels are dropped."""
    x = np.asarray(x, np.float64)
    keep = np.ones(y.shape, bool) if ignore_index is None else y != ignore_index
    c = x.shape[axis]
    onehot = (np.where(keep, y, 0)[..., None] == np.arange(c)).astype(np.float64)
    return categorical(np.moveaxis(onehot, -1, axis), x, axis=axis, keep=keep, **options)


def binary(y, z, *, weights=None, pos_weight=None, label_smoothing=0.0, reduction="mean"):
    y = np.asarray(y, np.float64)
    z = np.asarray(z, np.float64)
    e = label_smoothing
    ys = y * (1 - e) + e / 2
    pw = 1.0 if pos_weight is None else np.asarray(pos_weight, np.float64)
    a, b = pw * ys, 1 - ys
    # log sigmoid(z) = -logaddexp(0, -z): exact for large |z|.
    lsp, lsq = -np.logaddexp(0, -z), -np.logaddexp(0, z)
    per = -(a * lsp + b * lsq)
    s = np.ones(per.shape) if weights is None else np.broadcast_to(np.asarray(weights, np.float64), per.shape)
    result, scale = _reduce(per, s, np.ones(per.shape, bool), np.ones(per.shape), reduction)
    sig = 1 / (1 + np.exp(-z))
    g = (b * sig - a * (1 - sig)) * scale
    return result, g


def assert_close(actual, expected, dtype, *, floor: float = 0.0) -> None:
    """Max error relative to the largest magnitude: 1e-6 for float32 inputs, 1e-12 for float64.

    ``floor`` is a lower bound on that magnitude: log-probabilities near 0 come from
    ``x - lse``, so their error is relative to ``|x|``, not to their own size.
    """
    tol = 1e-6 if np.dtype(dtype) == np.float32 else 1e-12
    a = np.asarray(actual, np.float64)
    e = np.asarray(expected, np.float64)
    assert a.shape == e.shape
    finite = np.isfinite(e)
    np.testing.assert_array_equal(np.isfinite(a), finite)
    if not finite.any():
        return
    scale = max(float(np.max(np.abs(e[finite]))), floor, 1e-300)
    err = float(np.max(np.abs(a[finite] - e[finite]), initial=0.0)) / scale
    assert err <= tol, f"relative error {err:.3g} > {tol:g}"
