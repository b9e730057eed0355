"""Blocked, multithreaded logsumexp, log_softmax and softmax.

Each tile of whole class vectors is exponentiated once into the output (or a
per-thread scratch tile for logsumexp) while it sits in cache, then finished in
place: ``softmax = e * (1 / s)``, ``log_softmax = x - (log s + m)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xent.engine._layout import SoftmaxKind, as_3d, col, per_row, rows_of, tiles
from xent.engine._rows import exp_rows, log_sum
from xent.engine._threads import parallel_for

__all__ = ["softmax_family"]

def softmax_family(x: np.ndarray, axis: int, kind: SoftmaxKind) -> np.ndarray | None:
    """``kind`` of ``x`` along ``axis``; None for layouts that would need a copy."""
    x3 = as_3d(x, axis)
    if x3 is None:
        return None
    o, c, i = x3.shape
    dtype = x.dtype
    ts = tiles(o, c, i)
    big = max(((t.o1 - t.o0) * (t.i1 - t.i0) for t in ts), default=0) * c
    if kind == "logsumexp":
        out = np.empty((o, i), dtype)
        out3 = None
    else:
        out = np.empty(x.shape, dtype)
        out3 = out.reshape(o, c, i)

    def make_worker() -> Callable[[int], None]:
        scratch = np.empty(big if out3 is None else 0, dtype)  # per-thread tile for logsumexp

        def work(k: int) -> None:
            t = ts[k]
            xb = rows_of(x3, t)
            buf = rows_of(out3, t) if out3 is not None else scratch[: xb.size].reshape(xb.shape)
            s, m = exp_rows(xb, buf)
            if kind == "logsumexp":
                per_row(out, t, i)[...] = log_sum(s, m)
            elif kind == "softmax":
                # Rows whose sum is 0 or inf came back from exp_rows shifted; 1/s is then the reference's.
                np.multiply(buf, col((1.0 / s).astype(dtype)), out=buf)
            else:
                np.subtract(xb, col(log_sum(s, m).astype(dtype)), out=buf)

        return work

    parallel_for(len(ts), make_worker)
    if kind == "logsumexp":
        return out.reshape(x.shape[:axis] + x.shape[axis + 1 :])
    return out
