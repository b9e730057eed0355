"""Fused numba kernels for C-contiguous logits with the classes on the last axis (optional: ``xent-ml[fast]``).

Imported only when such a kernel is about to run (never by ``import xent``), and
compiled on first use (cached on disk afterwards). Each row is handled in one
sweep: ``exp`` (a vectorisable polynomial, see :func:`fast_exp`) is written
straight into the output and summed in the same loop, then the output row, still
in cache, is finished in place. Rows whose plain ``sum(exp(x))`` leaves the safe
float range, or that hold NaN/inf, are flagged in ``bad`` and redone by the NumPy
engine with the reference's max shift.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange
from numba.core import types
from numba.extending import intrinsic, overload

__all__ = ["binary_rows", "lse_rows", "set_threads", "softmax_rows", "sparse_denominator", "sparse_rows"]

# Reassociation lets sums vectorise; no "nnan"/"ninf": the NaN/inf row checks must stay real.
_FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}
_CHUNK = 64  # float32 partial sums over 64 terms keep ~1e-7, then float64. Small, because the tail
# (c % _CHUNK terms, a variable-length loop) does not vectorise: at 512, 1000 classes ran 3x slower.


@intrinsic
def _f32_from_bits(typingctx, v):  # noqa: ANN001, ANN202 - numba intrinsic signature
    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@intrinsic
def _f64_from_bits(typingctx, v):  # noqa: ANN001, ANN202
    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@njit(inline="always", fastmath=_FAST)
def _exp32(x):  # noqa: ANN001, ANN202
    # exp(x) = 2^n e^r, |r| <= ln2/2 (Cody-Waite split of ln 2); degree-7 Taylor: < 3 ulp.
    n = np.floor(x * np.float32(1.4426950408889634) + np.float32(0.5))
    r = x - n * np.float32(0.693145751953125) - n * np.float32(1.428606765330187e-06)
    p = np.float32(1.0 / 5040.0)
    p = p * r + np.float32(1.0 / 720.0)
    p = p * r + np.float32(1.0 / 120.0)
    p = p * r + np.float32(1.0 / 24.0)
    p = p * r + np.float32(1.0 / 6.0)
    p = p * r + np.float32(0.5)
    p = p * r + np.float32(1.0)
    p = p * r + np.float32(1.0)
    # 2^n built from its bits; outside the normal range give 0 / inf (the row is then flagged).
    k = np.int32(np.float32(-126.0) if n < np.float32(-126.0) else (np.float32(127.0) if n > np.float32(127.0) else n))
    v = p * _f32_from_bits((k + np.int32(127)) << np.int32(23))
    v = np.float32(0.0) if n < np.float32(-126.0) else v
    return np.float32(np.inf) if n > np.float32(127.0) else v


@njit(inline="always", fastmath=_FAST)
def _exp64(x):  # noqa: ANN001, ANN202
    # Same scheme in float64: degree-12 Taylor on |r| <= ln2/2 is below 2e-16.
    n = np.floor(x * 1.4426950408889634 + 0.5)
    r = x - n * 6.93147180369123816490e-01 - n * 1.90821492927058770002e-10
    p = 1.0 / 479001600.0
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    k = np.int64(-1022.0 if n < -1022.0 else (1023.0 if n > 1023.0 else n))
    v = p * _f64_from_bits((k + np.int64(1023)) << np.int64(52))
    v = 0.0 if n < -1022.0 else v
    return np.inf if n > 1023.0 else v


def fast_exp(x):  # noqa: ANN001, ANN201 - typed by the overload below
    """Vectorisable exp for float32/float64 (inside numba only)."""
    raise NotImplementedError


@overload(fast_exp, fastmath=_FAST)
def _fast_exp(x):  # noqa: ANN001, ANN202
    if x == types.float32:
        return lambda x: _exp32(x)
    return lambda x: _exp64(x)


def cast_like(v, like):  # noqa: ANN001, ANN201 - typed by the overload below
    """``v`` converted to the float type of ``like`` (inside numba only; ``like``'s value is unused)."""
    raise NotImplementedError


@overload(cast_like)
def _cast_like(v, like):  # noqa: ANN001, ANN202
    if like == types.float32:
        return lambda v, like: np.float32(v)
    return lambda v, like: np.float64(v)


@njit(inline="always", fastmath=_FAST)
def _exp_sum(xr):  # noqa: ANN001, ANN202
    """Sum of exp over a row, float64 result."""
    c = xr.shape[0]
    full = c - c % _CHUNK
    s = 0.0
    # Fixed-length inner loops vectorise (a min() bound does not); the tail is summed last.
    for j0 in range(0, full, _CHUNK):
        part = cast_like(0.0, xr[0])
        for j in range(_CHUNK):
            part += fast_exp(xr[j0 + j])
        s += np.float64(part)
    part = cast_like(0.0, xr[0])
    for j in range(full, c):
        part += fast_exp(xr[j])
    return s + np.float64(part)


@njit(inline="always", fastmath=_FAST)
def _exp_store_sum(xr, out):  # noqa: ANN001, ANN202
    """``out = exp(xr)``; return its float64 sum."""
    c = xr.shape[0]
    full = c - c % _CHUNK
    s = 0.0
    for j0 in range(0, full, _CHUNK):
        part = cast_like(0.0, xr[0])
        for j in range(_CHUNK):
            e = fast_exp(xr[j0 + j])
            out[j0 + j] = e
            part += e
        s += np.float64(part)
    part = cast_like(0.0, xr[0])
    for j in range(full, c):
        e = fast_exp(xr[j])
        out[j] = e
        part += e
    return s + np.float64(part)


@njit(parallel=True, fastmath=_FAST, cache=True)
def lse_rows(x, out, bad, low, high):  # noqa: ANN001, ANN201
    """``out[i] = log sum exp x[i]`` (float64); ``bad[i] = 1`` when the row needs the shifted path."""
    n = x.shape[0]
    for i in prange(n):
        s = _exp_sum(x[i])
        if not (s >= low and s <= high):
            bad[i] = 1
            continue
        out[i] = math.log(s)


@njit(parallel=True, fastmath=_FAST, cache=True)
def softmax_rows(x, out, bad, low, high, log):  # noqa: ANN001, ANN201
    """``out[i] = softmax(x[i])`` or, with ``log``, ``log_softmax(x[i])``; flags rows as :func:`lse_rows`."""
    n, c = x.shape
    for i in prange(n):
        s = _exp_sum(x[i]) if log else _exp_store_sum(x[i], out[i])
        if not (s >= low and s <= high):
            bad[i] = 1
            continue
        if log:
            lse = cast_like(math.log(s), x[i, 0])
            for j in range(c):
                out[i, j] = x[i, j] - lse
        else:
            inv = cast_like(1.0 / s, x[i, 0])
            for j in range(c):
                out[i, j] *= inv


@intrinsic
def _bits_of_f64(typingctx, v):  # noqa: ANN001, ANN202
    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@njit(inline="always", fastmath=_FAST)
def _log64(s):  # noqa: ANN001, ANN202
    """Vectorisable log of a positive normal float64 (a scalar libm call per row cost more than the exps)."""
    # s = m 2^k with m in [sqrt(1/2), sqrt(2)); log m = log1p(m - 1), m - 1 exact (Sterbenz), and
    # the atanh series of _log1p64 has |t| <= 0.172 here (< 1e-17 truncation).
    bits = _bits_of_f64(s)
    k = (bits >> np.int64(52)) - np.int64(1023)
    m = _f64_from_bits((bits & np.int64(0x000FFFFFFFFFFFFF)) | np.int64(0x3FF0000000000000))
    big = m > 1.4142135623730951
    m = m * 0.5 if big else m
    kf = np.float64(k) + (1.0 if big else 0.0)
    # k ln 2 with ln 2 split in two (fdlibm's hi/lo): the high product is exact for |k| < 2^11.
    return kf * 6.93147180369123816490e-01 + (kf * 1.90821492927058770002e-10 + _log1p64(m - 1.0))


@njit(inline="always", fastmath=_FAST)
def _sparse_loss(i, xr, lse, y, ignore, has_ignore, w, has_w, wsum, sw, has_sw, e):  # noqa: ANN001, ANN202
    """Example ``i`` from its logits ``xr`` and ``lse``: ``(s_i l_i, s_i, label weight, W, label)``."""
    c = xr.shape[0]
    ec = e / c
    yi = y[i]
    kept = not (has_ignore and yi == ignore)
    ys = yi if kept else 0
    si = (sw[i] if has_sw else 1.0) if kept else 0.0
    wy = w[ys] if has_w else 1.0
    lab = (1.0 - e) * wy  # weight of the label's own log-probability
    big_w = lab + ec * wsum  # W = sum_c w_c q_c
    loss = big_w * lse
    if lab != 0.0:  # a zero weight on a -inf logit is 0, as in the reference
        loss -= lab * np.float64(xr[ys])
    if e > 0.0:
        sx = 0.0
        for j in range(c):
            wj = w[j] if has_w else 1.0
            if wj != 0.0:
                sx += wj * np.float64(xr[j])
        loss -= ec * sx
    return (si * loss if si != 0.0 else 0.0), si, lab, big_w, ys


@njit(inline="always", fastmath=_FAST)
def _sparse_grad(er, s, si, factor, lab, big_w, ys, e, w, has_w):  # noqa: ANN001, ANN202
    """Turn the exps ``er`` of one example into its gradient row, in place."""
    c = er.shape[0]
    scale = si * factor
    coef = cast_like(scale * big_w / s, er[0])
    if e > 0.0:
        sub = cast_like(scale * e / c, er[0])
        for j in range(c):
            wj = cast_like(w[j] if has_w else 1.0, er[0])
            er[j] = er[j] * coef - sub * wj
    else:
        for j in range(c):
            er[j] *= coef
    er[ys] -= cast_like(scale * lab, er[0])


_SMALL_C = 64  # below this many classes, exps are taken over whole row blocks (one long vector loop)
_BLOCK_ROWS = 256


@njit(parallel=True, fastmath=_FAST, cache=True)
def sparse_rows(x, y, ignore, has_ignore, w, has_w, wsum, sw, has_sw, e, factor, g, want_grad,
                out, want_out, bad, low, high):  # noqa: ANN001, ANN201
    """Sparse softmax cross-entropy, one row per example; returns ``(sum_i s_i l_i, flagged rows)``.

    The sum is float64 partial sums per row block (no per-example buffer). With
    ``want_out``, ``out[i] = s_i l_i`` (0 for ignored or zero-weight examples); with
    ``want_grad``, ``g[i] = d(factor * sum_i s_i l_i) / d x[i]``. ``factor`` is 1
    (sum, none) or 1 / denominator (mean). Flagged rows (sums outside [low, high])
    are left out of the sum, and marked in ``bad`` when it has one entry per row.
    """
    n, c = x.shape
    mark = bad.shape[0] == n
    total = 0.0
    nbad = 0
    if c >= _SMALL_C:
        for i in prange(n):
            xr = x[i]
            er = g[i] if want_grad else xr
            s = _exp_store_sum(xr, er) if want_grad else _exp_sum(xr)
            if not (s >= low and s <= high):
                nbad += 1
                if mark:
                    bad[i] = 1
                continue
            wl, si, lab, big_w, ys = _sparse_loss(i, xr, math.log(s), y, ignore, has_ignore, w, has_w, wsum,
                                                  sw, has_sw, e)
            total += wl
            if want_out:
                out[i] = cast_like(wl, xr[0])
            if want_grad:
                _sparse_grad(er, s, si, factor, lab, big_w, ys, e, w, has_w)
        return total, nbad
    # Few classes: a row is too short for SIMD, so each step runs over a whole block of rows as one
    # vector loop: the exps, the row sums, the logs; then the per-example sums.
    n_blocks = (n + _BLOCK_ROWS - 1) // _BLOCK_ROWS
    for b in prange(n_blocks):
        r0 = b * _BLOCK_ROWS
        r1 = min(n, r0 + _BLOCK_ROWS)
        m = r1 - r0
        xf = x[r0:r1].reshape(-1)
        ef = g[r0:r1].reshape(-1) if want_grad else np.empty(m * c, x.dtype)
        s = np.empty(m)
        lse = np.empty(m)
        for k in range(m * c):
            ef[k] = fast_exp(xf[k])
        nb = 0
        for r in range(m):
            a = 0.0
            for j in range(c):
                a += np.float64(ef[r * c + j])
            s[r] = a
        for r in range(m):
            ok = s[r] >= low and s[r] <= high
            nb += 0 if ok else 1
            lse[r] = _log64(s[r] if ok else 1.0)
        bt = 0.0
        if nb == 0 and e == 0.0 and not (want_grad or want_out):
            # The common forward: l_i = w_y (lse - x_y), a branch-free loop that vectorises.
            for r in range(m):
                i = r0 + r
                yi = y[i]
                kept = not (has_ignore and yi == ignore)
                ys = yi if kept else 0
                v = ((sw[i] if has_sw else 1.0) if kept else 0.0) * (w[ys] if has_w else 1.0)
                # where, not a product: a zero weight on a -inf logit is 0, as in the reference
                bt += v * (lse[r] - np.float64(xf[r * c + ys])) if v != 0.0 else 0.0
        else:
            for r in range(m):
                i = r0 + r
                if nb > 0 and not (s[r] >= low and s[r] <= high):
                    if mark:
                        bad[i] = 1
                    continue
                xr = xf[r * c : (r + 1) * c]
                wl, si, lab, big_w, ys = _sparse_loss(i, xr, lse[r], y, ignore, has_ignore, w, has_w, wsum,
                                                      sw, has_sw, e)
                bt += wl
                if want_out:
                    out[i] = cast_like(wl, xr[0])
                if want_grad:
                    _sparse_grad(ef[r * c : (r + 1) * c], s[r], si, factor, lab, big_w, ys, e, w, has_w)
        total += bt
        nbad += nb
    return total, nbad


@njit(parallel=True, cache=True)
def sparse_denominator(y, ignore, has_ignore, w, has_w, sw, has_sw):  # noqa: ANN001, ANN201
    """The mean's denominator ``sum_i s_i k_i w_{y_i}``."""
    total = 0.0
    for i in prange(y.shape[0]):
        yi = y[i]
        kept = not (has_ignore and yi == ignore)
        ys = yi if kept else 0  # an ignored label may be out of range: never index with it
        total += ((sw[i] if has_sw else 1.0) * (w[ys] if has_w else 1.0)) if kept else 0.0
    return total


def set_threads(n: int) -> None:
    n = max(1, min(n, numba.config.NUMBA_NUM_THREADS))
    # numba.set_num_threads costs milliseconds even when nothing changes: only call it on a change.
    if numba.get_num_threads() != n:
        numba.set_num_threads(n)


@njit(inline="always", fastmath=_FAST)
def _log1p64(e):  # noqa: ANN001, ANN202
    # log1p(e) = 2 atanh(t), t = e / (2 + e), |t| <= 1/3 for -0.3 <= e <= 1: the odd series keeps full
    # relative precision for tiny e (no 1 + e rounding); terms to t^27 leave < 1e-14 relative.
    t = e / (2.0 + e)
    t2 = t * t
    p = 1.0 / 27.0
    p = p * t2 + 1.0 / 25.0
    p = p * t2 + 1.0 / 23.0
    p = p * t2 + 1.0 / 21.0
    p = p * t2 + 1.0 / 19.0
    p = p * t2 + 1.0 / 17.0
    p = p * t2 + 1.0 / 15.0
    p = p * t2 + 1.0 / 13.0
    p = p * t2 + 1.0 / 11.0
    p = p * t2 + 1.0 / 9.0
    p = p * t2 + 1.0 / 7.0
    p = p * t2 + 1.0 / 5.0
    p = p * t2 + 1.0 / 3.0
    p = p * t2 + 1.0
    return 2.0 * t * p


@njit(inline="always", fastmath=_FAST)
def _log1p32(e):  # noqa: ANN001, ANN202
    # The same series in float32, terms to t^15 (< 3e-9 relative).
    t = e / (np.float32(2.0) + e)
    t2 = t * t
    p = np.float32(1.0 / 15.0)
    p = p * t2 + np.float32(1.0 / 13.0)
    p = p * t2 + np.float32(1.0 / 11.0)
    p = p * t2 + np.float32(1.0 / 9.0)
    p = p * t2 + np.float32(1.0 / 7.0)
    p = p * t2 + np.float32(1.0 / 5.0)
    p = p * t2 + np.float32(1.0 / 3.0)
    p = p * t2 + np.float32(1.0)
    return np.float32(2.0) * t * p


def log1p_unit(x):  # noqa: ANN001, ANN201 - typed by the overload below
    """log1p for 0 <= x <= 1 (inside numba only), vectorisable."""
    raise NotImplementedError


@overload(log1p_unit, fastmath=_FAST)
def _log1p_unit(x):  # noqa: ANN001, ANN202
    if x == types.float32:
        return lambda x: _log1p32(x)
    return lambda x: _log1p64(x)


@njit(parallel=True, fastmath=_FAST, cache=True)
def binary_rows(z, y, sw, sw_period, has_sw, pw, pw_period, has_pw, e, factor, g, want_grad, out, want_out):  # noqa: ANN001, ANN201
    """Binary CE with logits over flat arrays; returns (sum_i s_i l_i, number of non-finite terms).

    ``sw``/``pw`` repeat with period ``*_period`` (1 for a scalar, the last axis for a per-column vector).
    """
    n = z.shape[0]
    total = 0.0
    bad = 0
    for i in prange(n):
        # Elementwise math in float64 (measured faster here than float32 vectors), summed in float64.
        zi = np.float64(z[i])
        ys = np.float64(y[i]) * (1.0 - e) + e / 2.0
        a = ys * (np.float64(pw[i % pw_period]) if has_pw else 1.0)
        b = 1.0 - ys
        s = np.float64(sw[i % sw_period]) if has_sw else 1.0
        ex = fast_exp(-abs(zi))  # exp(-|z|) <= 1: never overflows
        lg = log1p_unit(ex)
        # l = (a + b) log1p(e^-|z|) - a min(z, 0) + b max(z, 0): every term >= 0, nothing cancels.
        loss = (a + b) * lg - a * (zi if zi < 0.0 else 0.0) + b * (zi if zi > 0.0 else 0.0)
        wl = s * loss if s != 0.0 else 0.0
        if not (wl - wl == 0.0):  # NaN or inf: redone by the NumPy kernel
            bad += 1
        total += wl
        if want_out:
            out[i] = cast_like(wl, z[0])
        if want_grad:
            r = 1.0 / (1.0 + ex)
            p = r if zi >= 0.0 else ex * r  # sigmoid(z)
            q = ex * r if zi >= 0.0 else r  # sigmoid(-z)
            g[i] = cast_like((b * p - a * q) * (s * factor), z[0])
    return total, bad
