"""Row math shared by the softmax kernels: exponentials and their sums over one tile.

A tile ``xb`` holds whole class vectors along axis 1 (``(rows, C)`` or
``(rows, C, inner)``). :func:`exp_rows` writes ``exp(xb - m)`` into a buffer and
returns the row sums and the shift ``m``, so that ``logsumexp = log(s) + m``
and ``softmax = buffer / s``.

The shift is 0 for every row whose plain ``sum(exp(x))`` is safely inside the
float range: such a row needs no max pass, so the logits are read once. Rows
that overflow, underflow or hold NaN/inf are redone with the reference's shift
(the row max, 0 when that is not finite), so they agree with the reference.
"""

from __future__ import annotations

import numpy as np

from xent.engine._layout import col

__all__ = ["exp_rows", "log_sum", "rowsum"]


def rowsum(e: np.ndarray) -> np.ndarray:
    """Sum over axis 1 as float64."""
    if e.ndim == 2:
        # Contiguous-axis reduction is pairwise in NumPy: error ~ log2(C) ulp, no float64 copy needed.
        pairwise: np.ndarray = np.add.reduce(e, axis=1)
        return pairwise.astype(np.float64)
    # Across a strided axis NumPy adds naively; accumulate in float64 so 1e5 float32 terms keep 1e-7.
    accumulated: np.ndarray = np.add.reduce(e, axis=1, dtype=np.float64)
    return accumulated


def _limits(dtype: np.dtype, n_classes: int) -> tuple[float, float]:
    fi = np.finfo(dtype)
    # Each underflowed exp loses at most `tiny`; below this sum the loss could exceed eps^2 relative.
    low = max(n_classes, 1) * float(fi.tiny) / float(fi.eps) ** 2
    return low, float(fi.max)


def exp_rows(xb: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``out = exp(xb - m)``; return ``(s, m)``: float64 row sums of ``out`` and the shift (None = 0)."""
    np.exp(xb, out=out)
    s = rowsum(out)
    low, high = _limits(xb.dtype, xb.shape[1])
    if s.size == 0 or (low <= s.min() and s.max() <= high):  # NaN fails both comparisons
        return s, None
    bad = ~((s >= low) & (s <= high))
    m = np.max(xb, axis=1)
    # Reference shift for the rows that need it: the max, or 0 when the max is not finite.
    m = np.where(bad & np.isfinite(m), m, np.zeros((), xb.dtype))
    np.subtract(xb, col(m), out=out)
    np.exp(out, out=out)
    return rowsum(out), m.astype(np.float64)


def log_sum(s: np.ndarray, m: np.ndarray | None) -> np.ndarray:
    """``log(s) + m`` in float64 (0 sums give -inf without a warning)."""
    lse: np.ndarray = np.log(s)  # callers run under np.errstate(all="ignore") (see parallel_for)
    return lse if m is None else lse + m
