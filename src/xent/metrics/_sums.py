"""Compensated float64 sums: a value and its rounding error, merged without loss.

Every metric sum is kept as a pair ``(s, c)`` whose true value is ``s + c``.
Merging two pairs uses Knuth's error-free TwoSum, so combining partial sums in
any order or grouping agrees to ~1e-16 relative instead of drifting with the
number of merges (an order-independent, associative merge).
"""

from __future__ import annotations

import numpy as np

__all__ = ["merge_into", "total"]


def merge_into(s: np.ndarray, c: np.ndarray, s2: np.ndarray, c2: np.ndarray) -> None:
    """``(s, c) += (s2, c2)`` in place, with TwoSum capturing the rounding error of ``s + s2``."""
    with np.errstate(invalid="ignore", over="ignore"):  # inf sums (eps=0, log 0) give NaN errors, ignored below
        t = s + s2
        # TwoSum: (t, err) represent s + s2 exactly, whatever their magnitudes.
        bp = t - s
        err = (s - (t - bp)) + (s2 - bp)
        c += c2 + err
    s[...] = t


def total(s: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The compensated value ``s + c`` as float64 (``s`` itself once it is inf or NaN)."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(s), s + c, s)
