"""NumPy reference of the one-pass metric kernels: the fallback and the tests' oracle.

Same signatures and the same fields as the native kernels (``xent._native.metrics``,
``src/native/metrics/kernels.cpp``): each validates a batch, returns the first
invalid row (and folds nothing), or folds the batch's sums into the named fields
of ``sums`` (:class:`xent.metrics._sums.Sums`) and returns -1. Used when the
extension is not built or ``XENT_SCORE_KERNEL=numpy``; the tests check that both
give the same numbers (to ~1e-13 relative: only the summation order differs).
Logit paths use :mod:`xent.primitives`' stable helpers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from xent._lib.namespace import get_namespace
from xent.metrics._auc import scatter, score_bins
from xent.metrics._sums import Sums
from xent.primitives import _log_sigmoid, _log_softmax, _sigmoid

__all__ = ["binary", "binary_rows", "multiclass", "multiclass_rows", "scatter_add"]


def _first(bad: np.ndarray) -> int:
    return int(np.argmax(bad)) if bad.any() else -1


def _bins(x: np.ndarray, n_bins: int) -> np.ndarray:
    # bin k = [k/n, (k+1)/n); p = 1 joins the last bin
    return np.minimum((x * n_bins).astype(np.int64), n_bins - 1)


def _fold_bins(sums: Sums, b: np.ndarray, w: np.ndarray, prediction: np.ndarray, outcome: np.ndarray) -> None:
    nb = len(sums.bin_rows)
    sums.add("bin_weight", np.bincount(b, weights=w, minlength=nb))
    sums.add("bin_prediction", np.bincount(b, weights=w * prediction, minlength=nb))
    sums.add("bin_outcome", np.bincount(b, weights=w * outcome, minlength=nb))
    sums.bin_rows[...] += np.bincount(b, minlength=nb)


def binary(y: np.ndarray, p: np.ndarray, w: np.ndarray | None, sums: Sums, logits: bool, eps: float,
           threads: int = 1, auc_octaves: int = 0, auc_bits: int = 0) -> int:
    """Fold a binary batch: ``y`` (n,) labels, ``p`` (n,) probabilities or logits, ``w`` (n,) or None.

    With ``auc_octaves`` > 0, also the score histograms ``sums.auc_pos`` / ``sums.auc_neg``.
    """
    y64 = np.asarray(y)
    x = np.asarray(p, dtype=np.float64)
    bad = ~((y64 == 0) | (y64 == 1))
    bad |= ~np.isfinite(x) if logits else ~((x >= 0.0) & (x <= 1.0))
    wv = np.ones_like(x) if w is None else np.asarray(w, dtype=np.float64)
    if w is not None:
        bad |= ~((wv >= 0.0) & (wv < np.inf))
    first = _first(bad)
    if first >= 0:
        return first
    yy = y64.astype(np.float64)
    loss, pj, hit = binary_rows(yy, x, logits, eps)
    with np.errstate(invalid="ignore"):
        sums.add("weight", wv.sum())
        sums.add("weighted_labels", (wv * yy).sum())
        sums.add("weighted_predictions", (wv * pj).sum())
        sums.add("loss", (wv * loss).sum())
        sums.add("brier", (wv * (pj - yy) ** 2).sum())
        sums.add("correct", (wv * hit).sum())
    _fold_bins(sums, _bins(pj, len(sums.bin_rows)), wv, pj, yy)
    sums.rows[...] += len(x)
    if auc_octaves > 0 and "auc_pos" in sums.names:
        b = score_bins(x, logits=logits, octaves=auc_octaves, mantissa_bits=auc_bits)
        scatter(sums.auc_pos, sums.auc_neg, b, y64 == 1, w)
    return -1


def binary_rows(yy: np.ndarray, x: np.ndarray, logits: bool, eps: float) -> tuple[np.ndarray, ...]:
    """Per row of a valid binary batch: ``(loss, p, hit)``; ``yy`` float64 0/1, ``x`` float64 scores."""
    if logits:
        xp = get_namespace(x)
        loss = -np.where(yy == 1.0, _log_sigmoid(x, xp), _log_sigmoid(-x, xp))
        pj = _sigmoid(x, xp)
    else:
        pj = x
        pc = np.clip(x, eps, 1.0 - eps)
        with np.errstate(divide="ignore"):  # eps = 0: log 0 = -inf, an infinite loss
            loss = -np.where(yy == 1.0, np.log(pc), np.log(1.0 - pc))
    hit = ((pj >= 0.5) == (yy == 1.0)).astype(np.float64)
    return loss, pj, hit


def _matrix(columns: Any) -> np.ndarray:
    """(n, K) float64 predictions from a 2-d array or a sequence of K columns."""
    if isinstance(columns, np.ndarray) and columns.ndim == 2:
        return columns.astype(np.float64)
    cols: Sequence[Any] = columns
    return np.stack([np.asarray(c, dtype=np.float64) for c in cols], axis=1)


def multiclass_rows(y: np.ndarray, X: np.ndarray, logits: bool, eps: float) -> tuple[np.ndarray, ...]:
    """Per row of a valid multi-class batch: ``(loss, q, brier, confidence, hit)``; ``q`` the (n, K) probabilities."""
    rows = np.arange(len(y))
    if logits:
        logq = _log_softmax(X, 1, get_namespace(X))
        loss = -logq[rows, y]
        q = np.exp(logq)
    else:
        q = X
        with np.errstate(divide="ignore"):  # eps = 0: log 0 = -inf, an infinite loss
            loss = -np.log(np.clip(q[rows, y], eps, 1.0 - eps))
    onehot = np.zeros_like(q)
    onehot[rows, y] = 1.0
    br = ((q - onehot) ** 2).sum(axis=1)
    top = np.argmax(q, axis=1)
    conf = q[rows, top]
    hit = (top == y).astype(np.float64)
    return loss, q, br, conf, hit


def multiclass(y: np.ndarray, columns: Any, w: np.ndarray | None, sums: Sums, logits: bool, eps: float,
               tolerance: float, threads: int = 1, auc_octaves: int = 0, auc_bits: int = 0) -> int:
    """Fold a multi-class batch: ``y`` (n,) class codes, ``columns`` (n, K) or K arrays of (n,), ``w`` (n,)."""
    y = np.asarray(y, dtype=np.int64)
    X = _matrix(columns)
    n, K = X.shape
    bad = (y < 0) | (y >= K)
    if logits:
        bad |= ~np.isfinite(X).all(axis=1)
    else:
        bad |= ~((X >= 0.0) & (X <= 1.0)).all(axis=1)
        with np.errstate(invalid="ignore"):
            bad |= ~(np.abs(X.sum(axis=1) - 1.0) <= tolerance)
    wv = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    if w is not None:
        bad |= ~((wv >= 0.0) & (wv < np.inf))
    first = _first(bad)
    if first >= 0:
        return first
    loss, q, br, conf, hit = multiclass_rows(y, X, logits, eps)
    with np.errstate(invalid="ignore"):
        sums.add("weight", wv.sum())
        sums.add("loss", (wv * loss).sum())
        sums.add("brier", (wv * br).sum())
        sums.add("correct", (wv * hit).sum())
        sums.add("class_weight", np.bincount(y, weights=wv, minlength=K))
        sums.add("class_loss", np.bincount(y, weights=wv * loss, minlength=K))
        sums.add("class_prediction", (wv[:, None] * q).sum(axis=0))
    sums.class_rows[...] += np.bincount(y, minlength=K)
    _fold_bins(sums, _bins(conf, len(sums.bin_rows)), wv, conf, hit)
    sums.rows[...] += n
    if auc_octaves > 0 and not logits and "auc_pos" in sums.names:  # as the native one: logits by the caller
        for k in range(K):
            b = score_bins(X[:, k], logits=False, octaves=auc_octaves, mantissa_bits=auc_bits)
            scatter(sums.auc_pos[k], sums.auc_neg[k], b, y == k, w)
    return -1


def scatter_add(out: np.ndarray, idx: np.ndarray, w: np.ndarray | None) -> None:
    """``out[idx[i]] += w[i]`` (1 when ``w`` is None) in place, ``out`` flat float64 (the native one's reference)."""
    if len(idx) * 8 < out.size:
        np.add.at(out, idx, 1.0 if w is None else w)
    else:
        out += np.bincount(idx, weights=w, minlength=out.size)
