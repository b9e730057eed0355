"""Hand C-contiguous, last-axis inputs to the numba kernels of :mod:`xent.engine._numba` when numba is installed.

numba is optional (``pip install "xent-ml[fast]"``). It is imported the first time a
kernel could use it, never by ``import xent``; ``XENT_NUMBA=0`` in the
environment (or :data:`ENABLED` = False) keeps the engine on pure NumPy. Rows
the fused kernels flag (sums outside the safe range, NaN/inf) are redone by the
NumPy kernels with the reference's max shift.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from xent.engine._crossentropy import sparse_ce
from xent.engine._rows import _limits
from xent.engine._softmax import softmax_family
from xent.engine._threads import get_num_threads

__all__ = ["ENABLED", "fused_binary_ce", "fused_softmax_family", "fused_sparse_ce", "numba_kernels"]

ENABLED = os.environ.get("XENT_NUMBA", "1") != "0"
_module: list[Any] = []
# numba's workqueue threading layer aborts on concurrent parallel launches: one caller at a time.
_launch = threading.Lock()


def numba_kernels() -> Any:
    """The numba kernel module, or None when numba is missing or disabled."""
    if not ENABLED:
        return None
    if not _module:
        try:
            from xent.engine import _numba
        except ImportError:  # numba is an optional extra: the NumPy engine runs without it
            _numba = None
        _module.append(_numba)
    return _module[0]


def _rows_2d(x: np.ndarray, axis: int) -> np.ndarray | None:
    if axis != x.ndim - 1 or not x.flags.c_contiguous or x.shape[-1] == 0:
        return None
    return x.reshape(-1, x.shape[-1])


def fused_softmax_family(x: np.ndarray, axis: int, kind: str) -> Any:
    nb = numba_kernels()
    x2 = None if nb is None else _rows_2d(x, axis)
    if x2 is None:
        return NotImplemented
    n, c = x2.shape
    low, high = _limits(x.dtype, c)
    bad = np.zeros(n, np.uint8)
    if kind == "logsumexp":
        out = np.empty(n, np.float64)
        with _launch:
            nb.set_threads(get_num_threads())
            nb.lse_rows(x2, out, bad, low, high)
        res = out.astype(x.dtype)
        if bad.any():
            idx = np.flatnonzero(bad)
            res[idx] = softmax_family(x2[idx], 1, "logsumexp")
        return res.reshape(x.shape[:-1])
    out = np.empty(x2.shape, x.dtype)
    with _launch:
        nb.set_threads(get_num_threads())
        nb.softmax_rows(x2, out, bad, low, high, kind == "log_softmax")
    if bad.any():
        idx = np.flatnonzero(bad)
        out[idx] = softmax_family(x2[idx], 1, kind)
    return out.reshape(x.shape)


def fused_sparse_ce(
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
    nb = numba_kernels()
    x2 = None if nb is None else _rows_2d(logits, axis)
    if x2 is None:
        return NotImplemented
    n, c = x2.shape
    dtype, e = logits.dtype, float(label_smoothing)
    y = np.ascontiguousarray(np.asarray(labels).reshape(-1), dtype=np.int64)
    has_w, has_sw = class_weights is not None, weights is not None
    w = np.ascontiguousarray(class_weights, np.float64).reshape(-1) if has_w else np.zeros(1)
    sw = np.ascontiguousarray(np.broadcast_to(weights, labels.shape), np.float64).reshape(-1) if has_sw else w[:1]
    wsum = float(w.sum()) if has_w else float(c)
    has_ignore = ignore_index is not None
    ignore = int(ignore_index) if has_ignore else 0
    denom = 1.0
    if reduction == "mean":
        trivial = not (has_ignore or has_w or has_sw)  # every example counts 1
        denom = float(n) if trivial else nb.sparse_denominator(y, ignore, has_ignore, w, has_w, sw, has_sw)
    factor = 1.0 / denom if denom != 0 else 0.0
    g = np.empty(x2.shape, dtype) if return_grad else np.empty((1, 1), dtype)
    want_out = reduction == "none"
    out = np.empty(n, dtype) if want_out else np.empty(1, dtype)
    low, high = _limits(dtype, c)
    args = (x2, y, ignore, has_ignore, w, has_w, wsum, sw, has_sw, e, factor, g, return_grad, out, want_out)
    with _launch:
        nb.set_threads(get_num_threads())
        # The sum is reduced per row block inside the kernel: no per-example buffer unless "none" asks for one.
        total, n_bad = nb.sparse_rows(*args, np.zeros(1, np.uint8), low, high)
        if n_bad:
            # Rare: rerun marking the flagged rows (same code, so the same rows) to know which they are.
            bad = np.zeros(n, np.uint8)
            total, n_bad = nb.sparse_rows(*args, bad, low, high)
    if n_bad:
        # Overflowing / underflowing / non-finite rows: the NumPy kernel with the reference's shift.
        idx = np.flatnonzero(bad)
        sub_loss, sub_grad = sparse_ce(
            x2[idx], y[idx], axis=1, class_weights=class_weights, weights=sw[idx] if has_sw else None,
            ignore_index=ignore_index, label_smoothing=e, reduction="none", return_grad=return_grad,
        )
        total += float(np.sum(sub_loss, dtype=np.float64))
        if want_out:
            out[idx] = sub_loss
        if return_grad:
            g[idx] = sub_grad * dtype.type(factor)
    grad = g.reshape(logits.shape) if return_grad else None
    if want_out:
        return out.reshape(labels.shape), grad
    if reduction == "sum":
        return np.asarray(total, dtype), grad
    return np.asarray(total / denom if denom != 0 else 0.0, dtype), grad


def _periodic(a: Any, shape: tuple[int, ...]) -> tuple[np.ndarray, int] | None:
    """A broadcast operand as (flat values, period): full arrays, per-last-axis vectors and scalars."""
    v = np.broadcast_to(a, shape)
    if v.flags.c_contiguous:
        return v.reshape(-1), max(v.size, 1)
    if all(s == 0 for s in v.strides[:-1]):
        row = np.ascontiguousarray(v[(0,) * (v.ndim - 1)])
        if row.strides[0] == 0 or row.size == 0:
            return row[:1].copy(), 1
        return row, row.size
    if all(s == 0 for s in v.strides):
        return np.asarray(v.flat[0]).reshape(1), 1
    return None


def fused_binary_ce(
    y_true: np.ndarray,
    logits: np.ndarray,
    *,
    weights: Any,
    pos_weight: Any,
    label_smoothing: float,
    reduction: str,
    return_grad: bool,
) -> Any:
    nb = numba_kernels()
    shape, dtype = logits.shape, logits.dtype
    if nb is None or not logits.flags.c_contiguous or logits.ndim == 0:
        return NotImplemented
    y = np.broadcast_to(y_true, shape)
    if not y.flags.c_contiguous or y.dtype != dtype:
        return NotImplemented
    sw = _periodic(weights, shape) if weights is not None else (logits.reshape(-1)[:1], 1)
    pw = _periodic(pos_weight, shape) if pos_weight is not None else (logits.reshape(-1)[:1], 1)
    if sw is None or pw is None:
        return NotImplemented
    z = logits.reshape(-1)
    if reduction == "mean":
        denom = float(z.size) if weights is None else float(np.sum(np.broadcast_to(weights, shape), dtype=np.float64))
    else:
        denom = 1.0
    factor = 1.0 / denom if denom != 0 else 0.0
    g = np.empty(z.shape, dtype) if return_grad else z[:1]
    out = np.empty(z.shape, dtype) if reduction == "none" else z[:1]
    with _launch:
        nb.set_threads(get_num_threads())
        total, bad = nb.binary_rows(
            z, y.reshape(-1), sw[0], sw[1], weights is not None, pw[0], pw[1], pos_weight is not None,
            float(label_smoothing), factor, g, return_grad, out, reduction == "none",
        )
    if bad:
        return NotImplemented  # non-finite logits or targets: the NumPy kernel applies the reference's rules
    grad = g.reshape(shape) if return_grad else None
    if reduction == "none":
        return out.reshape(shape), grad
    if reduction == "sum":
        return np.asarray(total, dtype), grad
    return np.asarray(total / denom if denom != 0 else 0.0, dtype), grad
