r"""Blocked, multithreaded softmax cross-entropy (sparse labels or target distributions).

For one example with logits ``x``, target ``t`` (one-hot for sparse labels),
smoothing ``e``, ``C`` classes, class weights ``w`` and ``lse = logsumexp(x)``::

    q = (1 - e) t + e / C
    l = -sum_c w_c q_c (x_c - lse) = W lse - (1 - e) sum_c w_c t_c x_c - (e / C) sum_c w_c x_c
    W = sum_c w_c q_c,   dl/dx = p W - w q   (p = softmax(x))

Per tile of rows (see :mod:`xent.engine._layout`): ``exp`` goes straight into the
gradient output (or a scratch tile), the row sums give ``lse``, and the gradient
is finished in place, ``g = e * (scale W / s) - scale w q``: the logits are read
once and the gradient written once, with no other N x C array. The reduction
(weights, ignored examples, mean/sum/none) is the one of
:mod:`xent.losses._reduce`, applied to float64 per-example losses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xent.engine._layout import as_3d, col, per_row, rows_of, tiles
from xent.engine._rows import exp_rows, log_sum, rowsum
from xent.engine._threads import parallel_for

__all__ = ["categorical_ce", "sparse_ce"]


def _per_example(v: Any, o: int, i: int) -> np.ndarray:
    return np.asarray(v, dtype=np.float64).reshape(o, i)


def _safe_dot_rows(a: np.ndarray, b: np.ndarray, scr: np.ndarray) -> np.ndarray:
    """``sum_c a_c b_c`` per row, with ``0 * anything = 0`` (a zero weight on a -inf logit is 0)."""
    np.multiply(a, b, out=scr)
    r = rowsum(scr)
    if np.isnan(r).any():  # only for non-finite logits: redo the products with the reference's rule
        np.copyto(scr, 0, where=(a == 0))
        r = rowsum(scr)
    return r


def _zero_unscaled(gb: np.ndarray, sct: np.ndarray) -> None:
    # Reference: the gradient of an ignored / zero-weight example is exactly 0, even for non-finite logits.
    if (sct == 0).any():
        gb[np.broadcast_to(col(sct == 0), gb.shape)] = 0


def _subtract_smoothing(gb: np.ndarray, sb: np.ndarray, coef: np.ndarray, wv: Any) -> None:
    """gb -= coef * w_c: the smoothing mass e/C every class gets, scaled per row (``sb`` is scratch)."""
    if wv is None:
        np.subtract(gb, coef, out=gb)
    else:
        np.multiply(coef, wv, out=sb)
        np.subtract(gb, sb, out=gb)


def _scaled_rows(gb: np.ndarray, s: np.ndarray, sct: np.ndarray, big_w: np.ndarray, dtype: np.dtype) -> None:
    """``gb = exp(x - m) * scale * W / s``: softmax times its coefficient, one in-place pass."""
    np.multiply(gb, col((sct * big_w / s).astype(dtype)), out=gb)


def _finish(loss: np.ndarray, sk: np.ndarray, reduction: str, denom: float, dtype: np.dtype, shape) -> np.ndarray:
    # where(), not multiplication: an ignored example's loss placeholder must not leak inf * 0 = NaN.
    weighted = np.where(sk != 0, sk * loss, 0.0)
    if reduction == "none":
        return weighted.astype(dtype).reshape(shape)
    total = float(weighted.sum())
    if reduction == "sum":
        return np.asarray(total, dtype)
    # All ignored or zero total weight: the mean is 0 with a zero gradient (xent.losses._reduce).
    return np.asarray(total / denom if denom != 0 else 0.0, dtype)


def _scale(sk: np.ndarray, norm: Any, reduction: str) -> tuple[np.ndarray, float]:
    """``d result / d l_i`` and the mean's denominator ``sum_i s_i k_i c_i``."""
    if reduction != "mean":
        return sk, 1.0
    denom = float((sk * norm).sum())
    return (sk / denom if denom != 0 else np.zeros_like(sk)), denom


def sparse_ce(
    logits: np.ndarray,
    labels: np.ndarray,
    *,
    axis: int,
    class_weights: Any,
    weights: Any,
    ignore_index: int | None,
    label_smoothing: float,
    reduction: str,
    return_grad: bool,
) -> Any:
    x3 = as_3d(logits, axis)
    if x3 is None:
        return NotImplemented
    o, c, i = x3.shape
    dtype, e = logits.dtype, float(label_smoothing)
    y = np.asarray(labels).reshape(o, i)
    keep = None if ignore_index is None else y != ignore_index
    ys = (y if keep is None else np.where(keep, y, 0)).astype(np.intp)  # ignored rows read class 0, scale 0
    w = None if class_weights is None else np.asarray(class_weights, np.float64).reshape(c)
    wsum = float(c) if w is None else float(w.sum())
    wy = np.ones((o, i)) if w is None else w[ys]
    sk = np.ones((o, i)) if weights is None else _per_example(weights, o, i)
    if keep is not None:
        sk = np.where(keep, sk, 0.0)
    scale, denom = _scale(sk, wy, reduction)
    lab = (1.0 - e) * wy  # weight of the label's own log-probability
    big_w = lab + (e / c) * wsum  # W = sum_c w_c q_c
    wv = None if w is None else w.astype(dtype).reshape((c,) if i == 1 else (c, 1))
    loss = np.empty((o, i))
    grad = np.empty(logits.shape, dtype) if return_grad else None
    g3 = None if grad is None else grad.reshape(o, c, i)
    ts = tiles(o, c, i)
    big = max((t.o1 - t.o0) * (t.i1 - t.i0) for t in ts) * c

    def make_worker():  # noqa: ANN202 - a closure factory for parallel_for
        buf = None if g3 is not None else np.empty(big, dtype)
        scr = np.empty(big, dtype) if (e > 0 and w is not None) else None

        def work(k: int) -> None:
            t = ts[k]
            xb = rows_of(x3, t)
            gb = rows_of(g3, t) if g3 is not None else buf[: xb.size].reshape(xb.shape)
            sb = None if scr is None else scr[: xb.size].reshape(xb.shape)
            s, m = exp_rows(xb, gb)
            idx = col(per_row(ys, t, i))
            xy = np.squeeze(np.take_along_axis(xb, idx, axis=1), 1).astype(np.float64)
            labt, wt = per_row(lab, t, i), per_row(big_w, t, i)
            # A zero label weight times a -inf logit is 0, as in the reference (safe_mul).
            lt = wt * log_sum(s, m) - np.where(labt != 0, labt * xy, 0.0)
            if e > 0:
                sx = rowsum(xb) if w is None else _safe_dot_rows(wv, xb, sb)  # zero weights, not zero logits
                lt -= (e / c) * sx
            per_row(loss, t, i)[...] = lt
            if g3 is None:
                return
            sct = per_row(scale, t, i)
            _scaled_rows(gb, s, sct, wt, dtype)
            cur = np.take_along_axis(gb, idx, axis=1)
            np.put_along_axis(gb, idx, cur - col(sct * labt).astype(dtype), axis=1)
            if e > 0:
                _subtract_smoothing(gb, sb, col((sct * (e / c)).astype(dtype)), wv)
            if m is not None:
                _zero_unscaled(gb, sct)

        return work

    parallel_for(len(ts), make_worker)
    out_shape = logits.shape[:axis] + logits.shape[axis + 1 :]
    return _finish(loss, sk, reduction, denom, dtype, out_shape), grad


def categorical_ce(
    logits: np.ndarray,
    targets: np.ndarray,
    *,
    axis: int,
    class_weights: Any,
    weights: Any,
    label_smoothing: float,
    reduction: str,
    return_grad: bool,
) -> Any:
    x3 = as_3d(logits, axis)
    t3 = as_3d(np.asarray(targets), axis)
    if x3 is None or t3 is None or t3.shape != x3.shape:
        return NotImplemented
    o, c, i = x3.shape
    dtype, e = logits.dtype, float(label_smoothing)
    w = None if class_weights is None else np.asarray(class_weights, np.float64).reshape(c)
    wsum = float(c) if w is None else float(w.sum())
    wv = None if w is None else w.astype(dtype).reshape((c,) if i == 1 else (c, 1))
    sk = np.ones((o, i)) if weights is None else _per_example(weights, o, i)
    ts = tiles(o, c, i)
    big = max((t.o1 - t.o0) * (t.i1 - t.i0) for t in ts) * c
    norm = np.ones((o, i)) if w is None else np.empty((o, i))  # c_i = sum_c w_c t_c (unsmoothed)
    if w is not None and reduction == "mean" and return_grad:
        # The mean's denominator scales every gradient row: get it first (one read of the targets).
        def make_norm():  # noqa: ANN202 - a closure factory for parallel_for
            scr = np.empty(big, dtype)

            def work(k: int) -> None:
                tb = rows_of(t3, ts[k])
                per_row(norm, ts[k], i)[...] = _safe_dot_rows(tb, wv, scr[: tb.size].reshape(tb.shape))

            return work

        parallel_for(len(ts), make_norm)
    scale, denom = _scale(sk, norm, reduction) if (w is None or return_grad) else (sk, 0.0)
    loss = np.empty((o, i))
    grad = np.empty(logits.shape, dtype) if return_grad else None
    g3 = None if grad is None else grad.reshape(o, c, i)

    def make_worker():  # noqa: ANN202 - a closure factory for parallel_for
        buf = None if g3 is not None else np.empty(big, dtype)
        scr = np.empty(big, dtype)
        twb = None if w is None else np.empty(big, dtype)

        def work(k: int) -> None:
            t = ts[k]
            xb, tb = rows_of(x3, t), rows_of(t3, t)
            n = xb.size
            gb = rows_of(g3, t) if g3 is not None else buf[:n].reshape(xb.shape)
            sb = scr[:n].reshape(xb.shape)
            if w is None:
                tw = tb
                ct = rowsum(tb)
            else:
                tw = twb[:n].reshape(xb.shape)
                np.multiply(tb, wv, out=tw)
                ct = rowsum(tw)
                per_row(norm, t, i)[...] = ct
            s, m = exp_rows(xb, gb)
            wt = (1.0 - e) * ct + (e / c) * wsum
            lt = wt * log_sum(s, m) - (1.0 - e) * _safe_dot_rows(tw, xb, sb)
            if e > 0:
                lt -= (e / c) * (rowsum(xb) if w is None else _safe_dot_rows(wv, xb, sb))
            per_row(loss, t, i)[...] = lt
            if g3 is None:
                return
            sct = per_row(scale, t, i)
            _scaled_rows(gb, s, sct, wt, dtype)
            np.multiply(tw, col((sct * (1.0 - e)).astype(dtype)), out=sb)
            np.subtract(gb, sb, out=gb)
            if e > 0:
                _subtract_smoothing(gb, sb, col((sct * (e / c)).astype(dtype)), wv)
            if m is not None:
                _zero_unscaled(gb, sct)

        return work

    parallel_for(len(ts), make_worker)
    if w is not None and not return_grad and reduction == "mean":
        denom = float((sk * norm).sum())
    out_shape = logits.shape[:axis] + logits.shape[axis + 1 :]
    return _finish(loss, sk, reduction, denom, dtype, out_shape), grad
