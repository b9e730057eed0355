r"""Blocked, multithreaded binary cross-entropy with logits.

With smoothed targets ``y' = y (1 - e) + e / 2``, ``a = pos_weight y'``, ``b = 1 - y'``
and ``L = log1p(exp(-|z|))``::

    l = -[a log sigmoid(z) + b log sigmoid(-z)] = (a + b) L - a min(z, 0) + b max(z, 0)
    dl/dz = b sigmoid(z) - a sigmoid(-z)

Every term of ``l`` is >= 0, so nothing cancels; ``exp(-|z|) <= 1`` never
overflows. Elements are processed in cache-sized tiles on the engine's threads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xent._lib.rules import mean_factor, weighted_mean
from xent.engine import _layout
from xent.engine._threads import parallel_for

__all__ = ["binary_ce"]


def _as_2d(a: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """``a`` broadcast to ``shape`` and viewed as ``(rows, last)`` without copying, or None."""
    v = np.broadcast_to(a, shape)
    two = (int(np.prod(shape[:-1])), shape[-1]) if len(shape) else (1, 1)
    try:
        return np.reshape(v, two, copy=False)
    except ValueError:
        return None


def _safe_products(z: np.ndarray, a: np.ndarray, b: np.ndarray, lg: np.ndarray) -> np.ndarray:
    """The reference's loss for a tile with non-finite values: ``0 * log(0) = 0`` terms."""
    lsp = np.minimum(z, 0) - lg
    lsq = np.minimum(-z, 0) - lg
    return -(np.where(a == 0, 0, a * lsp) + np.where(b == 0, 0, b * lsq))


def binary_ce(
    y_true: np.ndarray,
    logits: np.ndarray,
    *,
    weights: Any,
    pos_weight: Any,
    label_smoothing: float,
    reduction: str,
    return_grad: bool,
) -> tuple[np.ndarray, np.ndarray | None] | None:
    shape, dtype, e = logits.shape, logits.dtype, float(label_smoothing)
    z2, y2 = _as_2d(logits, shape), _as_2d(y_true, shape)
    s2 = None if weights is None else _as_2d(weights, shape)
    p2 = None if pos_weight is None else _as_2d(pos_weight, shape)
    if z2 is None or y2 is None or (weights is not None and s2 is None) or (pos_weight is not None and p2 is None):
        return None
    rows, last = z2.shape
    step_r = max(1, _layout.TILE_ELEMENTS // max(last, 1))
    step_c = min(last, _layout.TILE_ELEMENTS)
    tl = [
        (r, min(rows, r + step_r), c, min(last, c + step_c))
        for r in range(0, rows, step_r)
        for c in range(0, last, step_c)
    ]
    if reduction == "mean":
        denom = float(z2.size) if s2 is None else float(np.sum(s2, dtype=np.float64))
        factor = mean_factor(denom)
    else:
        denom, factor = 1.0, 1.0
    out = np.empty(shape, dtype) if reduction == "none" else None
    o2 = None if out is None else out.reshape(rows, last)
    grad = np.empty(shape, dtype) if return_grad else None
    g2 = None if grad is None else grad.reshape(rows, last)
    totals = np.zeros(len(tl))
    big = step_r * step_c

    def make_worker() -> Callable[[int], None]:
        bufs = np.empty((5, big), dtype)
        mask = np.empty(big, bool)

        def work(k: int) -> None:
            r0, r1, c0, c1 = tl[k]
            zb, yb = z2[r0:r1, c0:c1], y2[r0:r1, c0:c1]
            A, B, E, L, T = (b[: zb.size].reshape(zb.shape) for b in bufs)
            if e > 0:
                np.multiply(yb, 1.0 - e, out=A)
                np.add(A, e / 2.0, out=A)
            else:
                np.copyto(A, yb)
            np.subtract(1, A, out=B)  # b = 1 - y'
            if p2 is not None:
                np.multiply(A, p2[r0:r1, c0:c1], out=A)  # a = pos_weight y'
            np.abs(zb, out=E)
            np.negative(E, out=E)
            np.exp(E, out=E)  # exp(-|z|) <= 1: never overflows
            np.log1p(E, out=L)
            # l = (a + b) L - a min(z, 0) + b max(z, 0): all terms >= 0, nothing cancels.
            np.add(A, B, out=T)
            np.multiply(T, L, out=L)
            np.minimum(zb, 0, out=T)
            np.multiply(T, A, out=T)
            np.subtract(L, T, out=L)
            np.maximum(zb, 0, out=T)
            np.multiply(T, B, out=T)
            np.add(L, T, out=L)
            sb = None if s2 is None else s2[r0:r1, c0:c1]
            if sb is not None:
                np.multiply(L, sb, out=L)
            total = float(np.sum(L, dtype=np.float64))
            if not np.isfinite(total):  # non-finite logits or targets: redo with the reference's rules
                lg = np.log1p(np.exp(-np.abs(zb)))
                ref = _safe_products(zb, A, B, lg)
                L[...] = ref if sb is None else np.where(sb != 0, sb * ref, 0)
                total = float(np.sum(L, dtype=np.float64))
            totals[k] = total
            if o2 is not None:
                o2[r0:r1, c0:c1] = L
            if g2 is None:
                return
            gb = g2[r0:r1, c0:c1]
            mk = mask[: zb.size].reshape(zb.shape)
            np.add(E, 1, out=T)
            np.reciprocal(T, out=T)  # r = 1 / (1 + exp(-|z|))
            np.multiply(E, T, out=E)  # exp(-|z|) r: the small one of sigmoid(z), sigmoid(-z)
            np.greater_equal(zb, 0, out=mk)
            # z >= 0: sigmoid(z) = r, sigmoid(-z) = E r; z < 0: the other way round.
            np.copyto(L, E)
            np.copyto(L, T, where=mk)  # L = sigmoid(z)
            np.copyto(T, E, where=mk)  # T = sigmoid(-z)
            np.multiply(B, L, out=gb)
            np.multiply(A, T, out=T)
            np.subtract(gb, T, out=gb)
            if sb is not None:
                np.multiply(gb, sb, out=gb)
                # Reference: a zero-weight element has gradient exactly 0.
                np.copyto(gb, 0, where=(sb == 0))
            if factor != 1.0:
                np.multiply(gb, factor, out=gb)

        return work

    parallel_for(len(tl), make_worker)
    if out is not None:  # reduction "none"
        return out, grad
    total = float(totals.sum())
    return np.asarray(total if reduction == "sum" else weighted_mean(total, denom), dtype), grad
