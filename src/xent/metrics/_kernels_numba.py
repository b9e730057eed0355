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

from xent.metrics._fastlog import fast_log

BLOCK = 4096

__all__ = ["binary_kernel", "multiclass_kernel"]


@numba.njit(cache=True, nogil=True)  # not inlined by numba: callers' fastmath must not touch it
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
def _flush(s, c, *values):  # pragma: no cover - compiled
    """Add a block's scalar sums into ``(s, c)``, one compensated add each."""
    k = 0
    for v in numba.literal_unroll(values):
        _add(s, c, k, v)
        k += 1


@numba.njit(cache=True, nogil=True)
def _flush_rows(bs, bc, lb):  # pragma: no cover - compiled
    """Add a block's 2-d sums (bins or classes) into ``(bs, bc)``."""
    for r in range(lb.shape[0]):
        for k in range(lb.shape[1]):
            _add(bs[r], bc[r], k, lb[r, k])


_FM = {"reassoc", "contract"}  # reassociation lets LLVM vectorise the block sums (fixed order per machine)


@numba.njit(inline="always", fastmath=_FM, error_model="numpy")
def _binary_prob(y, p, w, weighted, eps, n_bins, s, c, bs, bc, bn):  # pragma: no cover - compiled
    # Two phases per block: a branch-free, vectorised pass (validity, loss, Brier, accuracy,
    # bin index), then a scalar pass scattering into the calibration bins.
    n = p.shape[0]
    lo = eps
    hi = 1.0 - eps
    nb = n_bins
    top = nb - 1.0
    idx = np.empty(BLOCK, np.int32)
    hist = np.zeros(2 * nb, np.int64)  # unweighted bins: rows by (bin, label), exact integers
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
        bad = 0
        for j in range(i, end):
            yj = y[j]
            yy = np.float64(yj)
            x = np.float64(p[j])
            wj = np.float64(w[j]) if weighted else 1.0
            bad |= (yj != 0) & (yj != 1)
            bad |= ~((x >= 0.0) & (x <= 1.0))
            if weighted:
                bad |= ~((wj >= 0.0) & (wj < np.inf))
            # clip like sklearn log_loss: p in [eps, 1 - eps]
            pc = min(max(x, lo), hi)
            loss = -fast_log(pc if yj == 1 else 1.0 - pc)
            d = x - yy
            hit = 1.0 if (x >= 0.5) == (yj == 1) else 0.0
            a0 += wj
            a1 += wj * yy
            a2 += wj * x
            a3 += wj * loss
            a4 += wj * d * d
            a5 += wj * hit
            xb = x * nb
            xb = xb if xb >= 0.0 else 0.0  # NaN -> 0: the row is flagged bad anyway
            xb = xb if xb < top else top  # p = 1 joins the last bin
            idx[j - i] = np.int32(xb)
        if bad:
            return i
        if weighted:
            lb[:, :] = 0.0
            for j in range(i, end):
                b = idx[j - i]
                wj = np.float64(w[j])
                lb[0, b] += wj
                lb[1, b] += wj * np.float64(p[j])
                lb[2, b] += wj * np.float64(y[j])
                bn[b] += 1
            _flush_rows(bs, bc, lb)
        else:
            lb[1, :] = 0.0
            for j in range(i, end):
                b = idx[j - i]
                hist[2 * b + y[j]] += 1
                lb[1, b] += np.float64(p[j])
            for k in range(nb):
                _add(bs[1], bc[1], k, lb[1, k])
        _flush(s, c, a0, a1, a2, a3, a4, a5)
        i = end
    if not weighted:  # integer counts: exact
        for k in range(nb):
            neg = hist[2 * k]
            pos = hist[2 * k + 1]
            bn[k] += neg + pos
            _add(bs[0], bc[0], k, np.float64(neg + pos))
            _add(bs[2], bc[2], k, np.float64(pos))
    return -1


@numba.njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def _binary_prob_weighted(y, p, w, eps, n_bins, s, c, bs, bc, bn):  # pragma: no cover - compiled
    return _binary_prob(y, p, w, True, eps, n_bins, s, c, bs, bc, bn)


@numba.njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def _binary_prob_unweighted(y, p, w, eps, n_bins, s, c, bs, bc, bn):  # pragma: no cover - compiled
    return _binary_prob(y, p, w, False, eps, n_bins, s, c, bs, bc, bn)


def binary_kernel(y, p, w, use_w, logits, eps, n_bins, s, c, bs, bc, bn):
    """Sums: s[0] W, s[1] W*y, s[2] W*p, s[3] W*loss, s[4] W*(p-y)^2, s[5] W*correct.

    Bins (rows of ``bs``): 0 weight, 1 weight*p, 2 weight*y; ``bn`` row counts.
    Returns -1, or a row index at or before the first invalid row.
    """
    if logits:
        return _binary_logit(y, p, w, use_w, n_bins, s, c, bs, bc, bn)
    if use_w:
        return _binary_prob_weighted(y, p, w, eps, n_bins, s, c, bs, bc, bn)
    return _binary_prob_unweighted(y, p, w, eps, n_bins, s, c, bs, bc, bn)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _binary_logit(y, p, w, use_w, n_bins, s, c, bs, bc, bn):  # pragma: no cover - compiled
    n = p.shape[0]
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
        _flush(s, c, a0, a1, a2, a3, a4, a5)
        _flush_rows(bs, bc, lb)
        i = end
    return -1


@numba.njit(inline="always", fastmath=_FM, error_model="numpy")
def _multi_prob(y, PT, w, weighted, eps, tol, n_bins, s, c, cs, cc, cn, bs, bc, bn):  # pragma: no cover - compiled
    # Class-major passes over a block (vectorised over rows), then one scalar pass for the
    # scatters by label and by confidence bin.
    K, n = PT.shape
    lo = eps
    hi = 1.0 - eps
    nb = n_bins
    top = nb - 1.0
    tsum = np.empty(BLOCK)
    conf = np.empty(BLOCK)
    arg = np.empty(BLOCK, np.int64)
    py = np.empty(BLOCK)
    br = np.empty(BLOCK)
    lc = np.zeros((3, K))
    lb = np.zeros((3, nb))
    i = 0
    while i < n:
        end = min(i + BLOCK, n)
        m = end - i
        bad = 0
        for j in range(m):
            tsum[j] = 0.0
            conf[j] = -1.0
            arg[j] = 0
            py[j] = 0.0
            br[j] = 0.0
            yj = y[i + j]
            bad |= (yj < 0) | (yj >= K)
            if weighted:
                wj = np.float64(w[i + j])
                bad |= ~((wj >= 0.0) & (wj < np.inf))
        lc[:, :] = 0.0
        lb[:, :] = 0.0
        for k in range(K):
            ak = 0.0
            for j in range(m):
                x = np.float64(PT[k, i + j])
                wj = np.float64(w[i + j]) if weighted else 1.0
                bad |= ~((x >= 0.0) & (x <= 1.0))
                tsum[j] += x
                isy = y[i + j] == k
                py[j] = x if isy else py[j]
                d = x - (1.0 if isy else 0.0)
                br[j] += d * d
                gt = x > conf[j]  # strict: the first maximum wins, like np.argmax
                conf[j] = x if gt else conf[j]
                arg[j] = k if gt else arg[j]
                ak += wj * x
            lc[2, k] = ak
        for j in range(m):
            bad |= ~(abs(tsum[j] - 1.0) <= tol)
        if bad:
            return i
        a0 = 0.0
        a1 = 0.0
        a2 = 0.0
        a3 = 0.0
        for j in range(m):
            wj = np.float64(w[i + j]) if weighted else 1.0
            # clip like sklearn log_loss: p in [eps, 1 - eps]
            loss = -fast_log(min(max(py[j], lo), hi))
            hit = 1.0 if arg[j] == y[i + j] else 0.0
            a0 += wj
            a1 += wj * loss
            a2 += wj * br[j]
            a3 += wj * hit
            py[j] = loss
            tsum[j] = hit
        for j in range(m):
            yj = y[i + j]
            wj = np.float64(w[i + j]) if weighted else 1.0
            lc[0, yj] += wj
            lc[1, yj] += wj * py[j]
            cn[yj] += 1
            xb = conf[j] * nb
            xb = xb if xb < top else top  # confidence 1 joins the last bin
            b = np.int64(xb)
            lb[0, b] += wj
            lb[1, b] += wj * conf[j]
            lb[2, b] += wj * tsum[j]
            bn[b] += 1
        _flush(s, c, a0, a1, a2, a3)
        _flush_rows(cs, cc, lc)
        _flush_rows(bs, bc, lb)
        i = end
    return -1


@numba.njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def _multi_prob_weighted(y, PT, w, eps, tol, n_bins, s, c, cs, cc, cn, bs, bc, bn):  # pragma: no cover - compiled
    return _multi_prob(y, PT, w, True, eps, tol, n_bins, s, c, cs, cc, cn, bs, bc, bn)


@numba.njit(cache=True, nogil=True, fastmath=_FM, error_model="numpy")
def _multi_prob_unweighted(y, PT, w, eps, tol, n_bins, s, c, cs, cc, cn, bs, bc, bn):  # pragma: no cover - compiled
    return _multi_prob(y, PT, w, False, eps, tol, n_bins, s, c, cs, cc, cn, bs, bc, bn)


def multiclass_kernel(y, PT, w, use_w, logits, eps, tol, n_bins, s, c, cs, cc, cn, bs, bc, bn):
    """Sums: s[0] W, s[1] W*loss, s[2] W*brier, s[3] W*correct; ``PT`` has shape (K, n).

    Per class k (rows of ``cs``): 0 W of rows labelled k, 1 W*loss of those
    rows, 2 W*p_k over all rows; ``cn[k]`` rows labelled k. Bins over the
    top-label confidence: 0 weight, 1 weight*confidence, 2 weight*correct.
    Returns -1, or a row index at or before the first invalid row.
    """
    if logits:
        return _multiclass_scalar(y, PT, w, use_w, logits, eps, tol, n_bins, s, c, cs, cc, cn, bs, bc, bn)
    if use_w:
        return _multi_prob_weighted(y, PT, w, eps, tol, n_bins, s, c, cs, cc, cn, bs, bc, bn)
    return _multi_prob_unweighted(y, PT, w, eps, tol, n_bins, s, c, cs, cc, cn, bs, bc, bn)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _multiclass_scalar(y, PT, w, use_w, logits, eps, tol, n_bins, s, c, cs, cc, cn, bs, bc, bn):  # pragma: no cover
    """Sums: s[0] W, s[1] W*loss, s[2] W*brier, s[3] W*correct.

    Per class k (rows of ``cs``): 0 W of rows labelled k, 1 W*loss of those
    rows, 2 W*p_k over all rows; ``cn[k]`` rows labelled k. Bins over the
    top-label confidence: 0 weight, 1 weight*confidence, 2 weight*correct.
    """
    K, n = PT.shape
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
                    z = np.float64(PT[k, j])
                    if not math.isfinite(z):
                        return j
                    m = max(m, z)
                # log-softmax with the max shifted out (primitives._log_softmax): exp never overflows
                t = 0.0
                for k in range(K):
                    q[k] = math.exp(np.float64(PT[k, j]) - m)
                    t += q[k]
                lse = m + math.log(t)
                loss = lse - np.float64(PT[yj, j])
                for k in range(K):
                    q[k] = q[k] / t
            else:
                t = 0.0
                for k in range(K):
                    x = np.float64(PT[k, j])
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
        _flush(s, c, a0, a1, a2, a3)
        _flush_rows(cs, cc, lc)
        _flush_rows(bs, bc, lb)
        i = end
    return -1
