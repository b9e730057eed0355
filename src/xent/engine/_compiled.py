"""Hand NumPy arrays to the compiled kernels of :mod:`xent._native` (``src/native/engine/``).

Logits-shaped arrays go to the kernels as ``(outer, classes, inner)`` views and
per-example arrays as ``(outer, inner)`` views, without copying: any strides,
any class axis. Only a layout whose axes cannot be merged into such a view
(rare: a permuted N-d view) is copied first. Gradients are written into a
new array laid out like the logits, or into a caller's buffer.

Each function returns ``(loss, grad)`` with ``loss`` a 0-d array of the logits'
dtype for "mean"/"sum" and an array of the per-example shape for "none", in nats
(the caller applies ``base``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xent._lib.rules import mean_factor, weighted_mean
from xent._lib.threads import get_num_threads
from xent.engine._layout import view_as as _view

__all__ = ["binary_ce", "categorical_ce", "softmax_family", "sparse_ce"]

_KIND = {"logsumexp": 0, "log_softmax": 1, "softmax": 2}


def _dims(shape: tuple[int, ...], axis: int) -> tuple[int, int, int]:
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1 :])


def _as3(a: np.ndarray, axis: int) -> np.ndarray:
    """An input as an ``(outer, classes, inner)`` view; a copy only when no view exists."""
    dims = _dims(a.shape, axis)
    v = _view(a, dims)
    return v if v is not None else np.ascontiguousarray(a).reshape(dims)


def _per_example(a: Any, dims: tuple[int, int, int], dtype: Any) -> np.ndarray:
    """A per-example array (labels, weights) as an ``(outer, inner)`` view of ``dtype``."""
    a = np.asarray(a)
    if a.dtype != dtype:
        a = a.astype(dtype)
    shape = (dims[0], dims[2])
    v = _view(a, shape)
    return v if v is not None else np.ascontiguousarray(a).reshape(shape)


def _output(
    like: np.ndarray, dims: tuple[int, ...], out: np.ndarray | None, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """An output shaped and laid out like ``like`` (or the caller's ``out``), and its view of shape ``dims``."""
    if out is not None:
        if not isinstance(out, np.ndarray) or out.shape != like.shape or out.dtype != like.dtype:
            raise ValueError(f"`{name}` must be a {like.dtype} NumPy array of shape {like.shape}")
        if not out.flags.writeable:
            raise ValueError(f"`{name}` must be writeable")
        v = _view(out, dims)
        if v is None:
            raise ValueError(f"`{name}` must be viewable as {dims} without a copy")
        return out, v
    res = np.empty_like(like)  # the logits' memory order: rows stay contiguous where theirs are
    v = _view(res, dims)
    if v is None:
        res = np.empty(like.shape, like.dtype)
        v = res.reshape(dims)
    return res, v


def _class_weights(w: Any, c: int, dtype: Any) -> np.ndarray | None:
    return None if w is None else np.ascontiguousarray(np.asarray(w).reshape(c), dtype=dtype)


def _finish(
    total: float, denom: float, reduction: str, loss2: np.ndarray | None, shape: tuple[int, ...], dtype: Any
) -> np.ndarray:
    if loss2 is not None:  # reduction "none"
        return loss2.reshape(shape)
    return np.asarray(total if reduction == "sum" else weighted_mean(total, denom), dtype)


def softmax_family(nat: Any, x: np.ndarray, axis: int, kind: str, out: np.ndarray | None = None) -> np.ndarray:
    x3 = _as3(x, axis)
    o, c, i = x3.shape
    if kind == "logsumexp":
        res = np.empty((o, i), x.dtype)
        nat.softmax(x3, res, 0, get_num_threads())
        return res.reshape(x.shape[:axis] + x.shape[axis + 1 :])
    res, r3 = _output(x, x3.shape, out, "out")
    nat.softmax(x3, r3, _KIND[kind], get_num_threads())
    return res


def _softmax_loss(
    run: Any, logits: np.ndarray, axis: int, dims: tuple[int, int, int], denom: float, reduction: str,
    return_grad: bool, grad_out: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """What the softmax losses share: outputs, ``run(factor, grad3, loss2) -> sum``, the reduction."""
    factor = mean_factor(denom)  # d result / d (s l)
    grad, g3 = _output(logits, dims, grad_out, "grad_out") if return_grad else (None, None)
    loss2 = np.empty((dims[0], dims[2]), logits.dtype) if reduction == "none" else None
    total = run(factor, g3, loss2)
    out_shape = logits.shape[:axis] + logits.shape[axis + 1 :]
    return _finish(total, denom, reduction, loss2, out_shape, logits.dtype), grad


def sparse_ce(
    nat: Any,
    logits: np.ndarray,
    labels: Any,
    *,
    axis: int,
    class_weights: Any,
    weights: Any,
    ignore_index: int | None,
    label_smoothing: float,
    reduction: str,
    return_grad: bool,
    grad_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    x3 = _as3(logits, axis)
    dims = x3.shape
    o, c, i = dims
    dtype = logits.dtype
    y2 = _per_example(labels, dims, np.int64)
    cw = _class_weights(class_weights, c, dtype)
    sw = None if weights is None else _per_example(weights, dims, np.float64)
    threads = get_num_threads()
    denom = 1.0
    if reduction == "mean":
        trivial = ignore_index is None and cw is None and sw is None  # every example counts 1
        denom = float(o * i) if trivial else nat.sparse_denominator(x3, y2, cw, sw, ignore_index, threads)
    e = float(label_smoothing)
    return _softmax_loss(
        lambda factor, g3, loss2: nat.sparse(x3, y2, cw, sw, ignore_index, e, factor, g3, loss2, threads),
        logits, axis, dims, denom, reduction, return_grad, grad_out,
    )


def categorical_ce(
    nat: Any,
    logits: np.ndarray,
    targets: Any,
    *,
    axis: int,
    class_weights: Any,
    weights: Any,
    label_smoothing: float,
    reduction: str,
    return_grad: bool,
    grad_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    x3 = _as3(logits, axis)
    dims = x3.shape
    o, c, i = dims
    dtype = logits.dtype
    t = np.asarray(targets)
    t3 = _as3(t if t.dtype == dtype else t.astype(dtype), axis)
    cw = _class_weights(class_weights, c, dtype)
    sw = None if weights is None else _per_example(weights, dims, np.float64)
    threads = get_num_threads()
    denom = 1.0
    if reduction == "mean":
        if cw is not None:  # normaliser sum_i s_i sum_c w_c t_ic (unsmoothed targets)
            denom = nat.categorical_denominator(x3, t3, cw, sw, threads)
        else:
            denom = float(o * i) if sw is None else float(np.sum(sw, dtype=np.float64))
    e = float(label_smoothing)
    return _softmax_loss(
        lambda factor, g3, loss2: nat.categorical(x3, t3, cw, sw, e, factor, g3, loss2, threads),
        logits, axis, dims, denom, reduction, return_grad, grad_out,
    )


def _as2(a: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An operand broadcast to ``shape`` as a ``(rows, last)`` view (0 strides kept), copied only if need be."""
    a = np.asarray(a)
    if a.dtype != dtype:
        a = a.astype(dtype)
    v = np.broadcast_to(a, shape)
    two = (math.prod(shape[:-1]), shape[-1]) if shape else (1, 1)
    w = _view(v, two)
    return w if w is not None else np.ascontiguousarray(v).reshape(two)


def binary_ce(
    nat: Any,
    y_true: Any,
    logits: np.ndarray,
    *,
    weights: Any,
    pos_weight: Any,
    label_smoothing: float,
    reduction: str,
    return_grad: bool,
    grad_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    shape, dtype = logits.shape, logits.dtype
    z2 = _as2(logits, shape, dtype)
    y2 = _as2(y_true, shape, dtype)
    sw = None if weights is None else _as2(weights, shape, dtype)
    pw = None if pos_weight is None else _as2(pos_weight, shape, dtype)
    denom = 1.0
    if reduction == "mean":
        denom = float(logits.size) if sw is None else float(np.sum(np.broadcast_to(weights, shape), dtype=np.float64))
    factor = mean_factor(denom)
    grad, g2 = _output(logits, z2.shape, grad_out, "grad_out") if return_grad else (None, None)
    loss = np.empty(shape, dtype) if reduction == "none" else None
    l2 = None if loss is None else loss.reshape(z2.shape)
    total = nat.binary(z2, y2, sw, pw, float(label_smoothing), factor, g2, l2, get_num_threads())
    return _finish(total, denom, reduction, loss, shape, dtype), grad
