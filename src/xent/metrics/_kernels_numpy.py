"""NumPy reference of the fused metric kernels (same signature and sums as the numba ones).

Used when numba is not installed or ``XENT_SCORE_KERNEL=numpy``; the tests
check that both give the same numbers (to ~1e-13 relative: only the summation
order differs). Logit paths use :mod:`xent.primitives`' stable helpers.
"""

from __future__ import annotations

import numpy as np

from xent._lib.namespace import get_namespace
from xent.metrics._sums import merge_into
from xent.primitives import _log_sigmoid, _log_softmax, _sigmoid

__all__ = ["binary_kernel", "multiclass_kernel"]


def _first(bad: np.ndarray) -> int:
    return int(np.argmax(bad)) if bad.any() else -1


def _fold(s: np.ndarray, c: np.ndarray, values: np.ndarray) -> None:
    merge_into(s, c, values.astype(np.float64), np.zeros_like(s))


def _bins(x: np.ndarray, n_bins: int) -> np.ndarray:
    # bin k = [k/n, (k+1)/n); p = 1 joins the last bin
    return np.minimum((x * n_bins).astype(np.int64), n_bins - 1)


def binary_kernel(y, p, w, use_w, logits, eps, n_bins, s, c, bs, bc, bn):
    y64 = np.asarray(y)
    x = np.asarray(p, dtype=np.float64)
    bad = ~((y64 == 0) | (y64 == 1))
    bad |= ~np.isfinite(x) if logits else ~((x >= 0.0) & (x <= 1.0))
    wv = np.asarray(w, dtype=np.float64) if use_w else np.ones_like(x)
    if use_w:
        bad |= ~((wv >= 0.0) & (wv < np.inf))
    first = _first(bad)
    if first >= 0:
        return first
    yy = y64.astype(np.float64)
    xp = get_namespace(x)
    if logits:
        loss = -np.where(yy == 1.0, _log_sigmoid(x, xp), _log_sigmoid(-x, xp))
        pj = _sigmoid(x, xp)
    else:
        pj = x
        pc = np.clip(x, eps, 1.0 - eps)
        loss = -np.where(yy == 1.0, np.log(pc), np.log(1.0 - pc))
    hit = ((pj >= 0.5) == (yy == 1.0)).astype(np.float64)
    sums = np.array([wv.sum(), (wv * yy).sum(), (wv * pj).sum(), (wv * loss).sum(),
                     (wv * (pj - yy) ** 2).sum(), (wv * hit).sum()])
    _fold(s, c, sums)
    b = _bins(pj, n_bins)
    binned = np.stack([np.bincount(b, weights=wv * v, minlength=n_bins) for v in (1.0, pj, yy)])
    _fold(bs, bc, binned)
    bn += np.bincount(b, minlength=n_bins)
    return -1


def multiclass_kernel(y, PT, w, use_w, logits, eps, tol, n_bins, s, c, cs, cc, cn, bs, bc, bn):
    y = np.asarray(y, dtype=np.int64)
    X = np.asarray(PT, dtype=np.float64).T  # kernels take (K, n)
    n, K = X.shape
    bad = (y < 0) | (y >= K)
    if logits:
        bad |= ~np.isfinite(X).all(axis=1)
    else:
        bad |= ~((X >= 0.0) & (X <= 1.0)).all(axis=1)
        with np.errstate(invalid="ignore"):
            bad |= ~(np.abs(X.sum(axis=1) - 1.0) <= tol)
    wv = np.asarray(w, dtype=np.float64) if use_w else np.ones(n)
    if use_w:
        bad |= ~((wv >= 0.0) & (wv < np.inf))
    first = _first(bad)
    if first >= 0:
        return first
    rows = np.arange(n)
    if logits:
        logq = _log_softmax(X, 1, get_namespace(X))
        loss = -logq[rows, y]
        q = np.exp(logq)
    else:
        q = X
        loss = -np.log(np.clip(q[rows, y], eps, 1.0 - eps))
    onehot = np.zeros_like(q)
    onehot[rows, y] = 1.0
    br = ((q - onehot) ** 2).sum(axis=1)
    top = np.argmax(q, axis=1)
    conf = q[rows, top]
    hit = (top == y).astype(np.float64)
    _fold(s, c, np.array([wv.sum(), (wv * loss).sum(), (wv * br).sum(), (wv * hit).sum()]))
    per_class = np.stack([np.bincount(y, weights=wv, minlength=K), np.bincount(y, weights=wv * loss, minlength=K),
                          (wv[:, None] * q).sum(axis=0)])
    _fold(cs, cc, per_class)
    cn += np.bincount(y, minlength=K)
    b = _bins(conf, n_bins)
    binned = np.stack([np.bincount(b, weights=wv * v, minlength=n_bins) for v in (1.0, conf, hit)])
    _fold(bs, bc, binned)
    bn += np.bincount(b, minlength=n_bins)
    return -1
