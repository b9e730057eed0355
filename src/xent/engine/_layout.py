"""Array layouts the kernels work on: a (rows, classes, inner) view and its tiles.

Any array with a class axis ``axis`` is seen as ``(O, C, I)``: ``O`` the
product of the axes before it, ``C`` the classes, ``I`` the product of the axes
after it (``I = 1`` for the last axis). The view is taken without copying;
strided inputs keep their strides. A tile is a block of whole class vectors,
``[o0:o1, :, i0:i1]``, small enough to stay in the core's cache while the
kernel makes its passes over it.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import numpy as np

__all__ = ["SoftmaxKind", "Tile", "as_3d", "rows_of", "tiles", "view_as"]

#: What a softmax-family kernel returns for each class vector.
SoftmaxKind = Literal["logsumexp", "log_softmax", "softmax"]

# Elements per tile: 256k float32 = 1 MiB, in L2/L3 between passes; smaller tiles measured slower
# (per-tile Python overhead of the NumPy kernels dominates below ~64k elements).
TILE_ELEMENTS = 1 << 18


class Tile(NamedTuple):
    o0: int
    o1: int
    i0: int
    i1: int


def view_as(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """``a`` reshaped to ``shape`` without copying (strides kept), or None when that needs a copy."""
    try:
        return np.reshape(a, shape, copy=False)
    except ValueError:  # the strides cannot be merged without copying
        return None
    except TypeError:  # NumPy < 2.1 has no copy=: take the view only if it is one
        v = a.reshape(shape)
        return v if np.shares_memory(v, a) or a.size == 0 else None


def as_3d(x: np.ndarray, axis: int) -> np.ndarray | None:
    """``x`` as an ``(O, C, I)`` view, or None when that needs a copy."""
    return view_as(x, (math.prod(x.shape[:axis]), x.shape[axis], math.prod(x.shape[axis + 1 :])))


def tiles(o: int, c: int, i: int, elements: int | None = None) -> list[Tile]:
    """Split ``(O, C, I)`` into tiles of about ``elements`` values, whole class vectors each."""
    elements = TILE_ELEMENTS if elements is None else elements
    if i == 1:
        rows = max(1, elements // max(c, 1))
        return [Tile(a, min(o, a + rows), 0, 1) for a in range(0, o, rows)]
    # Inner tiles at least 16 wide: the inner axis is the contiguous one, keep reads long.
    inner = min(i, max(16, elements // max(c, 1)))
    rows = max(1, elements // max(c * inner, 1))
    return [
        Tile(a, min(o, a + rows), b, min(i, b + inner)) for a in range(0, o, rows) for b in range(0, i, inner)
    ]


def rows_of(a3: np.ndarray, t: Tile) -> np.ndarray:
    """The tile's block of an ``(O, C, I)`` array: ``(ob, C)`` when ``I = 1``, else ``(ob, C, ib)``."""
    if a3.shape[2] == 1:
        return a3[t.o0 : t.o1, :, 0]
    return a3[t.o0 : t.o1, :, t.i0 : t.i1]


def per_row(a2: np.ndarray, t: Tile, inner: int) -> np.ndarray:
    """The tile's block of an ``(O, I)`` per-example array, shaped like a row reduction of :func:`rows_of`."""
    if inner == 1:
        return a2[t.o0 : t.o1, 0]
    return a2[t.o0 : t.o1, t.i0 : t.i1]


def col(v: Any) -> Any:
    """Per-row values shaped to broadcast along the class axis (axis 1)."""
    return np.expand_dims(v, 1)
