"""Fused one-pass metric kernels (numba): log loss, Brier, accuracy and calibration bins together.

Each kernel reads a batch once and adds its sums into compensated ``(s, c)``
pairs (see :mod:`xent.metrics._sums`). Rows are summed in blocks of ``BLOCK``
into float64 locals, and each block total is added with Neumaier compensation:
the error of a batch sum is ~BLOCK * 1e-16 relative at worst, whatever the
batch length, so any split of the data agrees to ~1e-13 or better.

A kernel returns -1 when every row was valid, else the index of the first
invalid row (nothing is trusted from that call; the caller locates the reason
with NumPy and raises or skips). Compiled lazily on first use, cached on disk.
The stable formulas are those of :mod:`xent.primitives` (log_sigmoid,
log_softmax), written out per element because a numba loop cannot call them.
"""

from __future__ import annotations

import math

import numba
import numpy as np

BLOCK = 4096

__all__ = ["binary_kernel", "multiclass_kernel"]


@numba.njit(cache=True, nogil=True, inline="always")
def _add(s, c, k, v):  # pragma: no cover - compiled
    # Neumaier: keeps the rounding error of s + v in c, whichever term is larger.
    a = s[k]
    t = a + v
    if abs(a) >= abs(v):
        c[k] += (a - t) + v
    else:
        c[k] += (v - t) + a
    s[k] = t


@numba.njit(cache=True, nogil=True)
def binary_kernel(y, p, w, use_w, logits, eps, n_bins, s, c, bs, bc, bn):  # pragma: no cover - compiled
    """Sums: s[0] W, s[1] W*y, s[2] W*p, s[3] W*loss, s[4] W*(p-y)^2, s[5] W*correct.

    Bins (rows of ``bs``): 0 weight, 1 weight*p, 2 weight*y; ``bn`` row counts.
    """
    n = p.shape[0]
    lo = eps
    hi = 1.0 - eps
    nb = n_bins
    lb = np.zeros((3, nb))
    i = 0
    while i < n:
        end = min(i + BLOCK, n)
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        a3 = 0.0
        a4 = 0.0
        a5 = 0.0
        lb[:, :] = 0.0
        for j in range(i, end):
            yj = y[j]
            if yj == 1:
                yy = 1.0
            elif yj == 0:
                yy = 0.0
            else:
                return j
            x = np.float64(p[j])
            if logits:
                if not math.isfinite(x):
                    return j
                # log sigmoid(+-x) = min(+-x, 0) - log1p(exp(-|x|)): never overflows (primitives._log_sigmoid)
                e = math.exp(-abs(x))
                l1p = math.log1p(e)
                if yy == 1.0:
                    loss = l1p - min(x, 0.0)
                else:
                    loss = l1p - min(-x, 0.0)
                pj = 1.0 / (1.0 + e) if x >= 0.0 else e / (1.0 + e)
            else:
                if not (x >= 0.0 and x <= 1.0):
                    return j
                pj = x
                # clip like sklearn log_loss: p in [eps, 1 - eps]
                pc = min(max(x, lo), hi)
                loss = -math.log(pc) if yy == 1.0 else -math.log(1.0 - pc)
            if use_w:
                wj = w[j]
                if not (wj >= 0.0 and wj < np.inf):
                    return j
            else:
                wj = 1.0
            d = pj - yy
            hit = 1.0 if (pj >= 0.5) == (yy == 1.0) else 0.0
            b = int(pj * nb)
            if b >= nb:
                b = nb - 1
            a0 += wj
            a1 += wj * yy
            a2 += wj * pj
            a3 += wj * loss
            a4 += wj * d * d
            a5 += wj * hit
            lb[0, b] += wj
            lb[1, b] += wj * pj
            lb[2, b] += wj * yy
            bn[b] += 1
        _add(s, c, 0, a0)
        _add(s, c, 1, a1)
        _add(s, c, 2, a2)
        _add(s, c, 3, a3)
        _add(s, c, 4, a4)
        _add(s, c, 5, a5)
        for r in range(3):
            for k in range(nb):
                _add(bs[r], bc[r], k, lb[r, k])
        i = end
    return -1


@numba.njit(cache=True, nogil=True)
def multiclass_kernel(y, P, w, use_w, logits, eps, tol, n_bins, s, c, cs, cc, cn, bs, bc, bn):  # pragma: no cover
    """Sums: s[0] W, s[1] W*loss, s[2] W*brier, s[3] W*correct.

    Per class k (rows of ``cs``): 0 W of rows labelled k, 1 W*loss of those
    rows, 2 W*p_k over all rows; ``cn[k]`` rows labelled k. Bins over the
    top-label confidence: 0 weight, 1 weight*confidence, 2 weight*correct.
    """
    n, K = P.shape
    lo = eps
    hi = 1.0 - eps
    nb = n_bins
    lb = np.zeros((3, nb))
    lc = np.zeros((3, K))
    q = np.zeros(K)
    i = 0
    while i < n:
        end = min(i + BLOCK, n)
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        a3 = 0.0
        lb[:, :] = 0.0
        lc[:, :] = 0.0
        for j in range(i, end):
            yj = y[j]
            if yj < 0 or yj >= K:
                return j
            if logits:
                m = -np.inf
                for k in range(K):
                    z = np.float64(P[j, k])
                    if not math.isfinite(z):
                        return j
                    m = max(m, z)
                # log-softmax with the max shifted out (primitives._log_softmax): exp never overflows
                t = 0.0
                for k in range(K):
                    q[k] = math.exp(np.float64(P[j, k]) - m)
                    t += q[k]
                lse = m + math.log(t)
                loss = lse - np.float64(P[j, yj])
                for k in range(K):
                    q[k] = q[k] / t
            else:
                t = 0.0
                for k in range(K):
                    x = np.float64(P[j, k])
                    if not (x >= 0.0 and x <= 1.0):
                        return j
                    q[k] = x
                    t += x
                if not abs(t - 1.0) <= tol:
                    return j
                loss = -math.log(min(max(q[yj], lo), hi))
            if use_w:
                wj = w[j]
                if not (wj >= 0.0 and wj < np.inf):
                    return j
            else:
                wj = 1.0
            br = 0.0
            top = 0
            for k in range(K):
                d = q[k] - (1.0 if k == yj else 0.0)
                br += d * d
                if q[k] > q[top]:
                    top = k
                lc[2, k] += wj * q[k]
            conf = q[top]
            hit = 1.0 if top == yj else 0.0
            a0 += wj
            a1 += wj * loss
            a2 += wj * br
            a3 += wj * hit
            lc[0, yj] += wj
            lc[1, yj] += wj * loss
            cn[yj] += 1
            b = int(conf * nb)
            if b >= nb:
                b = nb - 1
            lb[0, b] += wj
            lb[1, b] += wj * conf
            lb[2, b] += wj * hit
            bn[b] += 1
        _add(s, c, 0, a0)
        _add(s, c, 1, a1)
        _add(s, c, 2, a2)
        _add(s, c, 3, a3)
        for r in range(3):
            for k in range(K):
                _add(cs[r], cc[r], k, lc[r, k])
            for k in range(nb):
                _add(bs[r], bc[r], k, lb[r, k])
        i = end
    return -1
