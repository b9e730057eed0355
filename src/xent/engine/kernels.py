"""Registers the fast CPU kernels with :mod:`xent.engine` (imported lazily on first dispatch).

Where numba is installed (``xent-ml[fast]``), C-contiguous inputs with the classes
on the last axis go to the fused kernels of :mod:`xent.engine._numba`; every
other input, or every input with ``XENT_NUMBA=0``, to the NumPy kernels.

Each kernel declines (returns ``NotImplemented``) for inputs where the engine
cannot help: fewer than :data:`MIN_ELEMENTS` values (thread hand-off and tile
bookkeeping cost more than they save), dtypes other than float32/float64, and
layouts that cannot be viewed as ``(rows, classes, inner)`` without a copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xent.engine import register
from xent.engine._binary import binary_ce
from xent.engine._crossentropy import categorical_ce, sparse_ce
from xent.engine._fused import fused_binary_ce, fused_softmax_family, fused_sparse_ce
from xent.engine._softmax import softmax_family

__all__ = ["MIN_ELEMENTS", "calls"]

# Below this many logits the engine's fixed costs (thread hand-off, tiling) are not worth it.
# Measured: at 8192 float32 values every kernel (fused or NumPy) already beats the reference 1.6-4x.
MIN_ELEMENTS = 1 << 13

#: How many times each kernel ran (did not decline): lets tests prove the engine was taken.
calls: dict[str, int] = {}

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _takes(x: Any, *others: Any) -> bool:
    if not isinstance(x, np.ndarray) or x.dtype not in _DTYPES or x.size < MIN_ELEMENTS:
        return False
    return all(o is None or isinstance(o, np.ndarray) for o in others)


def _counted(op: str, out: Any) -> Any:
    if out is not NotImplemented:
        calls[op] = calls.get(op, 0) + 1
    return out


def _softmax_kernel(kind: str) -> None:
    @register(kind)
    def kernel(x: np.ndarray, *, axis: int) -> Any:
        if not _takes(x) or x.shape[axis] == 0:
            return NotImplemented
        out = fused_softmax_family(x, axis, kind)
        if out is NotImplemented:
            out = softmax_family(x, axis, kind)
        return _counted(kind, out)


for _kind in ("logsumexp", "log_softmax", "softmax"):
    _softmax_kernel(_kind)


@register("sparse_categorical_cross_entropy")
def sparse_categorical_cross_entropy(logits: np.ndarray, labels: Any, **options: Any) -> Any:
    if not _takes(logits, labels) or logits.shape[options["axis"]] == 0:
        return NotImplemented
    out = fused_sparse_ce(logits, labels, **options)
    if out is NotImplemented:
        out = sparse_ce(logits, labels, **options)
    return _counted("sparse_categorical_cross_entropy", out)


@register("categorical_cross_entropy")
def categorical_cross_entropy(logits: np.ndarray, targets: Any, **options: Any) -> Any:
    if not _takes(logits, targets) or logits.shape[options["axis"]] == 0:
        return NotImplemented
    return _counted("categorical_cross_entropy", categorical_ce(logits, targets, **options))


@register("binary_cross_entropy")
def binary_cross_entropy(y_true: Any, logits: np.ndarray, **options: Any) -> Any:
    if not _takes(logits, y_true):
        return NotImplemented
    out = fused_binary_ce(y_true, logits, **options)
    if out is NotImplemented:
        out = binary_ce(y_true, logits, **options)
    return _counted("binary_cross_entropy", out)
