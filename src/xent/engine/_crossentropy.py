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
:mod:`xent.losses._reduce`, applied to float64 per-example losses (the mean's
zero-total-weight rule: :func:`xent._lib.rules.weighted_mean`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xent._lib.rules import weighted_mean
from xent.engine._layout import as_3d, col, per_row, rows_of, tiles
from xent.engine._rows import exp_rows, log_sum, rowsum
from xent.engine._threads import parallel_for

__all__ = ["categorical_ce", "sparse_ce"]


def _per_example(v: Any, o: int, i: int) -> np.ndarray:
    return np.asarray(v, dtype=np.float64).reshape(o, i)


def _safe_dot_rows(a: np.ndarray, b: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """``sum_c a_c b_c`` per row, with ``0 * anything = 0`` (a zero weight on a -inf logit is 0)."""
    np.multiply(a, b, out=scratch)
    r = rowsum(scratch)
    if np.isnan(r).any():  # only for non-finite logits: redo the products with the reference's rule
        np.copyto(scratch, 0, where=(a == 0))
        r = rowsum(scratch)
    return r


def _zero_unscaled(grad_tile: np.ndarray, row_scale: np.ndarray) -> None:
    # Reference: the gradient of an ignored / zero-weight example is exactly 0, even for non-finite logits.
    if (row_scale == 0).any():
        grad_tile[np.broadcast_to(col(row_scale == 0), grad_tile.shape)] = 0


def _subtract_smoothing(
    grad_tile: np.ndarray, scratch: np.ndarray | None, coef: np.ndarray, class_column: np.ndarray | None
) -> None:
    """grad -= coef * w_c: the smoothing mass e/C every class gets, scaled per row (``scratch`` with class weights)."""
    if class_column is None or scratch is None:
        np.subtract(grad_tile, coef, out=grad_tile)
    else:
        np.multiply(coef, class_column, out=scratch)
        np.subtract(grad_tile, scratch, out=grad_tile)


def _scaled_rows(
    grad_tile: np.ndarray, sums: np.ndarray, row_scale: np.ndarray, target_mass: np.ndarray, dtype: np.dtype
) -> None:
    """``grad = exp(x - m) * scale * W / s``: softmax times its coefficient, one in-place pass."""
    np.multiply(grad_tile, col((row_scale * target_mass / sums).astype(dtype)), out=grad_tile)


def _finish(
    loss: np.ndarray, kept_weight: np.ndarray, reduction: str, denom: float, dtype: np.dtype, shape: tuple[int, ...]
) -> np.ndarray:
    # where(), not multiplication: an ignored example's loss placeholder must not leak inf * 0 = NaN.
    weighted = np.where(kept_weight != 0, kept_weight * loss, 0.0)
    if reduction == "none":
        return weighted.astype(dtype).reshape(shape)
    total = float(weighted.sum())
    return np.asarray(total if reduction == "sum" else weighted_mean(total, denom), dtype)


def _scale(kept_weight: np.ndarray, norm: Any, reduction: str) -> tuple[np.ndarray, float]:
    """``d result / d l_i`` and the mean's denominator ``sum_i s_i k_i c_i``."""
    if reduction != "mean":
        return kept_weight, 1.0
    denom = float((kept_weight * norm).sum())
    return (kept_weight / denom if denom != 0 else np.zeros_like(kept_weight)), denom


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
) -> tuple[np.ndarray, np.ndarray | None] | None:
    x3 = as_3d(logits, axis)
    if x3 is None:
        return None
    o, c, i = x3.shape
    dtype, e = logits.dtype, float(label_smoothing)
    y = np.asarray(labels).reshape(o, i)
    keep = None if ignore_index is None else y != ignore_index
    safe_labels = (y if keep is None else np.where(keep, y, 0)).astype(np.intp)  # ignored rows read class 0
    w = None if class_weights is None else np.asarray(class_weights, np.float64).reshape(c)
    weight_sum = float(c) if w is None else float(w.sum())
    label_class_weight = np.ones((o, i)) if w is None else w[safe_labels]  # w_y
    kept_weight = np.ones((o, i)) if weights is None else _per_example(weights, o, i)  # s_i k_i
    if keep is not None:
        kept_weight = np.where(keep, kept_weight, 0.0)
    scale, denom = _scale(kept_weight, label_class_weight, reduction)
    label_weights = (1.0 - e) * label_class_weight  # weight of the label's own log-probability
    target_masses = label_weights + (e / c) * weight_sum  # W = sum_c w_c q_c
    class_column = None if w is None else w.astype(dtype).reshape((c,) if i == 1 else (c, 1))
    loss = np.empty((o, i))
    grad = np.empty(logits.shape, dtype) if return_grad else None
    g3 = None if grad is None else grad.reshape(o, c, i)
    ts = tiles(o, c, i)
    big = max((t.o1 - t.o0) * (t.i1 - t.i0) for t in ts) * c

    def make_worker() -> Callable[[int], None]:
        exp_buffer = np.empty(big if g3 is None else 0, dtype)  # exp() goes into the gradient when there is one
        scratch = np.empty(big, dtype) if (e > 0 and class_column is not None) else None

        def work(k: int) -> None:
            t = ts[k]
            logit_tile = rows_of(x3, t)
            n = logit_tile.size
            grad_tile = rows_of(g3, t) if g3 is not None else exp_buffer[:n].reshape(logit_tile.shape)
            scratch_tile = None if scratch is None else scratch[:n].reshape(logit_tile.shape)
            sums, shift = exp_rows(logit_tile, grad_tile)
            idx = col(per_row(safe_labels, t, i))
            label_logit = np.squeeze(np.take_along_axis(logit_tile, idx, axis=1), 1).astype(np.float64)
            label_weight, target_mass = per_row(label_weights, t, i), per_row(target_masses, t, i)
            # A zero label weight times a -inf logit is 0, as in the reference (safe_mul).
            row_loss = target_mass * log_sum(sums, shift) - np.where(label_weight != 0, label_weight * label_logit, 0.0)
            if e > 0:
                # sum_c w_c x_c; zero weights, not zero logits, give zero terms
                if class_column is None or scratch_tile is None:
                    weighted_logits = rowsum(logit_tile)
                else:
                    weighted_logits = _safe_dot_rows(class_column, logit_tile, scratch_tile)
                row_loss -= (e / c) * weighted_logits
            per_row(loss, t, i)[...] = row_loss
            if g3 is None:
                return
            row_scale = per_row(scale, t, i)
            _scaled_rows(grad_tile, sums, row_scale, target_mass, dtype)
            at_label = np.take_along_axis(grad_tile, idx, axis=1)
            np.put_along_axis(grad_tile, idx, at_label - col(row_scale * label_weight).astype(dtype), axis=1)
            if e > 0:
                _subtract_smoothing(grad_tile, scratch_tile, col((row_scale * (e / c)).astype(dtype)), class_column)
            if shift is not None:
                _zero_unscaled(grad_tile, row_scale)

        return work

    parallel_for(len(ts), make_worker)
    out_shape = logits.shape[:axis] + logits.shape[axis + 1 :]
    return _finish(loss, kept_weight, reduction, denom, dtype, out_shape), grad


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
) -> tuple[np.ndarray, np.ndarray | None] | None:
    x3 = as_3d(logits, axis)
    t3 = as_3d(np.asarray(targets), axis)
    if x3 is None or t3 is None or t3.shape != x3.shape:
        return None
    o, c, i = x3.shape
    dtype, e = logits.dtype, float(label_smoothing)
    w = None if class_weights is None else np.asarray(class_weights, np.float64).reshape(c)
    weight_sum = float(c) if w is None else float(w.sum())
    class_column = None if w is None else w.astype(dtype).reshape((c,) if i == 1 else (c, 1))
    kept_weight = np.ones((o, i)) if weights is None else _per_example(weights, o, i)
    ts = tiles(o, c, i)
    big = max((t.o1 - t.o0) * (t.i1 - t.i0) for t in ts) * c
    norm = np.ones((o, i)) if w is None else np.empty((o, i))  # c_i = sum_c w_c t_c (unsmoothed)
    if class_column is not None and reduction == "mean" and return_grad:
        column = class_column
        # The mean's denominator scales every gradient row: get it first (one read of the targets).

        def make_norm() -> Callable[[int], None]:
            scratch = np.empty(big, dtype)

            def work(k: int) -> None:
                target_tile = rows_of(t3, ts[k])
                scratch_tile = scratch[: target_tile.size].reshape(target_tile.shape)
                per_row(norm, ts[k], i)[...] = _safe_dot_rows(target_tile, column, scratch_tile)

            return work

        parallel_for(len(ts), make_norm)
    scale, denom = _scale(kept_weight, norm, reduction) if (w is None or return_grad) else (kept_weight, 0.0)
    loss = np.empty((o, i))
    grad = np.empty(logits.shape, dtype) if return_grad else None
    g3 = None if grad is None else grad.reshape(o, c, i)

    def make_worker() -> Callable[[int], None]:
        exp_buffer = np.empty(big if g3 is None else 0, dtype)  # exp() goes into the gradient when there is one
        scratch = np.empty(big, dtype)
        weighted_targets = np.empty(big if class_column is not None else 0, dtype)

        def work(k: int) -> None:
            t = ts[k]
            logit_tile, target_tile = rows_of(x3, t), rows_of(t3, t)
            n = logit_tile.size
            grad_tile = rows_of(g3, t) if g3 is not None else exp_buffer[:n].reshape(logit_tile.shape)
            scratch_tile = scratch[:n].reshape(logit_tile.shape)
            if class_column is None:
                tw = target_tile  # w_c t_c
                target_weight = rowsum(target_tile)
            else:
                tw = weighted_targets[:n].reshape(logit_tile.shape)
                np.multiply(target_tile, class_column, out=tw)
                target_weight = rowsum(tw)  # c_i = sum_c w_c t_c
                per_row(norm, t, i)[...] = target_weight
            sums, shift = exp_rows(logit_tile, grad_tile)
            target_mass = (1.0 - e) * target_weight + (e / c) * weight_sum  # W = sum_c w_c q_c
            row_loss = target_mass * log_sum(sums, shift) - (1.0 - e) * _safe_dot_rows(tw, logit_tile, scratch_tile)
            if e > 0:
                if class_column is None:
                    weighted_logits = rowsum(logit_tile)
                else:
                    weighted_logits = _safe_dot_rows(class_column, logit_tile, scratch_tile)
                row_loss -= (e / c) * weighted_logits
            per_row(loss, t, i)[...] = row_loss
            if g3 is None:
                return
            row_scale = per_row(scale, t, i)
            _scaled_rows(grad_tile, sums, row_scale, target_mass, dtype)
            np.multiply(tw, col((row_scale * (1.0 - e)).astype(dtype)), out=scratch_tile)
            np.subtract(grad_tile, scratch_tile, out=grad_tile)
            if e > 0:
                _subtract_smoothing(grad_tile, scratch_tile, col((row_scale * (e / c)).astype(dtype)), class_column)
            if shift is not None:
                _zero_unscaled(grad_tile, row_scale)

        return work

    parallel_for(len(ts), make_worker)
    if w is not None and not return_grad and reduction == "mean":
        denom = float((kept_weight * norm).sum())
    out_shape = logits.shape[:axis] + logits.shape[axis + 1 :]
    return _finish(loss, kept_weight, reduction, denom, dtype, out_shape), grad
