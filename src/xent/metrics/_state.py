"""Mergeable metric states: ``update`` (sufficient statistics), ``merge``, ``compute``.

A state holds compensated float64 sums (value + rounding error, see
:mod:`xent.metrics._sums`) and integer row counts, O(n_bins + n_classes) in
size. ``merge`` is exact up to ~1e-16 relative, associative and
order-independent, so any split of the data (batches, files, Dask partitions)
gives the one-pass result. Never an average of averages.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import numpy as np

from xent._lib.namespace import to_numpy
from xent.metrics._invalid import REASONS, find_invalid
from xent.metrics._results import BinaryResult, ClassRow, MulticlassResult, Reliability, entropy_nats
from xent.metrics._sums import merge_into, total

__all__ = ["BinaryState", "MulticlassState", "kernels"]


def kernels() -> Any:
    """The kernel module: numba's fused one-pass kernels, or the NumPy reference.

    ``XENT_SCORE_KERNEL=numpy`` forces the NumPy path (identical sums up to summation order).
    """
    if os.environ.get("XENT_SCORE_KERNEL", "auto") != "numpy":
        try:
            from xent.metrics import _kernels_numba

            return _kernels_numba
        except ImportError:  # numba is optional (the `cli` / `fast` extras)
            pass
    from xent.metrics import _kernels_numpy

    return _kernels_numpy


def _resolve_eps(eps: Any, dtype: np.dtype) -> float:
    if eps == "auto":
        return float(np.finfo(dtype).eps) if np.issubdtype(dtype, np.floating) else float(np.finfo(np.float64).eps)
    return float(eps)


def _check_n_bins(n_bins: Any) -> int:
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"`n_bins` must be an integer >= 1, got {n_bins!r}")
    return int(n_bins)


def _pred_array(x: Any, name: str) -> np.ndarray:
    a = to_numpy(x)
    if a.dtype == np.float32 or a.dtype == np.float64:
        return np.ascontiguousarray(a)
    if np.issubdtype(a.dtype, np.floating):  # float16, bfloat16-as-float: widen exactly
        return np.ascontiguousarray(a, dtype=np.float32)
    if np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_:
        return a.astype(np.float64)
    raise TypeError(f"`{name}` must hold real numbers, got dtype {a.dtype}")


def _label_array(y: Any) -> np.ndarray:
    a = to_numpy(y)
    if a.dtype == np.int8 or a.dtype == np.int64:
        return np.ascontiguousarray(a)
    if a.dtype == np.bool_:
        return a.view(np.int8) if a.flags.c_contiguous else a.astype(np.int8)
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int64)
    if np.issubdtype(a.dtype, np.floating):
        out = a.astype(np.int64)
        # a float label that is not a whole number is no class code
        return np.where(out == a, out, -1)
    raise TypeError(f"`y_true` must hold integer class codes, got dtype {a.dtype}")


def _class_major(P: np.ndarray, by_row: bool) -> np.ndarray:
    """``P.T`` (shape (K, n)) in the memory order its kernel reads fastest.

    The probability kernel walks each class over a block of rows (wants a contiguous
    (K, n) array); the logit kernel walks each row over its classes (wants a
    row-major (n, K) array, seen through ``.T``). At most one transposing copy.
    """
    if by_row:
        return np.ascontiguousarray(P).T
    return np.ascontiguousarray(P.T)


class _State:
    _n_sums = 0

    def __init__(self, *, n_bins: int, from_logits: bool, eps: Any) -> None:
        self.n_bins = _check_n_bins(n_bins)
        self.from_logits = bool(from_logits)
        if not (eps == "auto" or (isinstance(eps, (int, float)) and not isinstance(eps, bool) and 0 <= eps < 0.5)):
            raise ValueError(f"`eps` must be 'auto' or a number in [0, 0.5), got {eps!r}")
        self.eps = eps
        self.rows = 0
        self.skipped: dict[str, int] = {}
        self._s = np.zeros(self._n_sums)
        self._c = np.zeros(self._n_sums)
        self._bs = np.zeros((3, self.n_bins))
        self._bc = np.zeros((3, self.n_bins))
        self._bn = np.zeros(self.n_bins, dtype=np.int64)

    def copy(self):
        return copy.deepcopy(self)

    def add_skipped(self, reason: str, count: int) -> None:
        if count:
            self.skipped[reason] = self.skipped.get(reason, 0) + int(count)

    def _check_mergeable(self, other: Any) -> None:
        if type(other) is not type(self):
            raise TypeError(f"cannot merge a {type(other).__name__} into a {type(self).__name__}")
        for attr in ("n_bins", "from_logits", "num_classes"):
            a, b = getattr(self, attr, None), getattr(other, attr, None)
            if a != b:
                raise ValueError(f"cannot merge states with different `{attr}`: {a!r} and {b!r}")

    def merge(self, other):
        """Add ``other``'s sums into this state (in place) and return ``self``."""
        self._check_mergeable(other)
        merge_into(self._s, self._c, other._s, other._c)
        merge_into(self._bs, self._bc, other._bs, other._bc)
        self._bn += other._bn
        self.rows += other.rows
        for reason, count in other.skipped.items():
            self.add_skipped(reason, count)
        self._merge_extra(other)
        return self

    def _merge_extra(self, other: Any) -> None:
        pass

    def _raise_invalid(self, y, p, w, first: int) -> None:
        reason, col = find_invalid(y, p, w, num_classes=getattr(self, "num_classes", 2),
                                   logits=self.from_logits, tolerance=getattr(self, "tolerance", 0.0))
        bad = np.flatnonzero(reason)
        i = int(bad[0]) if len(bad) else first
        code = int(reason[i])
        what = REASONS[code] if code else "invalid row"
        raise ValueError(f"invalid input at index {i}: {what}")

    def _reliability(self) -> Reliability:
        bs = total(self._bs, self._bc)
        return Reliability.from_sums(self._bn, bs[0], bs[1], bs[2])


class BinaryState(_State):
    """Streaming binary metrics: log loss, NE/RIG, Brier, accuracy, calibration, reliability bins.

    Parameters
    ----------
    n_bins : int
        Uniform calibration bins on [0, 1] (bin k is [k/n, (k+1)/n); p = 1 in the last).
    from_logits : bool
        Predictions are log-odds (loss via log_sigmoid, never clipped) instead of probabilities.
    eps : "auto" or float
        Probabilities are clipped to [eps, 1 - eps] for the log loss only (as
        scikit-learn ``log_loss``); "auto" = machine eps of each batch's dtype
        (1.19e-7 for float32, 2.2e-16 for float64), 0.0 = no clipping.

    Examples
    --------
    >>> import numpy as np
    >>> from xent.metrics import BinaryState
    >>> s = BinaryState().update(np.array([0, 1, 1]), np.array([0.2, 0.7, 0.9]))
    >>> round(s.compute().log_loss, 6)
    0.228393
    """

    _n_sums = 6  # W, W*y, W*p, W*loss, W*(p-y)^2, W*correct

    def __init__(self, *, n_bins: int = 15, from_logits: bool = False, eps: Any = "auto") -> None:
        super().__init__(n_bins=n_bins, from_logits=from_logits, eps=eps)

    def update(self, y_true: Any, y_pred: Any, /, *, weights: Any = None) -> BinaryState:
        """Fold a batch in: ``y_true`` (n,) in {0, 1} (or bool), ``y_pred`` (n,) probabilities or logits."""
        y = _label_array(y_true)
        p = _pred_array(y_pred, "y_pred")
        w = None if weights is None else np.ascontiguousarray(to_numpy(weights), dtype=np.float64)
        if y.ndim != 1 or p.shape != y.shape or (w is not None and w.shape != y.shape):
            raise ValueError(
                f"`y_true`, `y_pred` and `weights` must be 1-d of one length, got shapes {y.shape}, {p.shape}"
                + (f", {w.shape}" if w is not None else "")
            )
        first = self.fold(y, p, w)
        if first >= 0:
            self._raise_invalid(y, p, w, first)
        return self

    def fold(self, y: np.ndarray, p: np.ndarray, w: np.ndarray | None) -> int:
        """Validated fast path for readers: returns -1 when folded, else the first bad row (state untouched)."""
        s, c = np.zeros(6), np.zeros(6)
        bs, bc = np.zeros((3, self.n_bins)), np.zeros((3, self.n_bins))
        bn = np.zeros(self.n_bins, dtype=np.int64)
        if len(y) == 0:
            return -1
        eps = 0.0 if self.from_logits else _resolve_eps(self.eps, p.dtype)
        k = kernels()
        first = k.binary_kernel(y, p, w if w is not None else np.zeros(1), w is not None, self.from_logits,
                                eps, self.n_bins, s, c, bs, bc, bn)
        if first >= 0:
            return int(first)
        merge_into(self._s, self._c, s, c)
        merge_into(self._bs, self._bc, bs, bc)
        self._bn += bn
        self.rows += len(y)
        return -1

    def compute(self) -> BinaryResult:
        t = total(self._s, self._c)
        W = t[0]
        q = t[1] / W if W > 0 else float("nan")
        h = entropy_nats(np.array([q, 1.0 - q])) if W > 0 else float("nan")
        mean = (lambda v: float(v / W) if W > 0 else float("nan"))
        return BinaryResult(
            rows=self.rows, weight=float(W), log_loss=mean(t[3]), brier=mean(t[4]), accuracy=mean(t[5]),
            entropy_prior=h, reliability=self._reliability(), positive_rate=float(q), mean_predicted=mean(t[2]),
        )


class MulticlassState(_State):
    """Streaming multi-class metrics, with per-class log loss, prior, count and calibration.

    Parameters
    ----------
    num_classes : int
        K; labels are class codes 0..K-1, predictions have shape (n, K).
    classes : sequence, optional
        Names of the K classes for the per-class table (default 0..K-1).
    n_bins, from_logits, eps
        As for :class:`BinaryState`; logits are softmaxed per row (log_softmax, never clipped).
    tolerance : float
        Probability rows must satisfy |sum_k p_k - 1| <= tolerance.
    """

    _n_sums = 4  # W, W*loss, W*brier, W*correct

    def __init__(self, num_classes: int, *, classes: Any = None, n_bins: int = 15, from_logits: bool = False,
                 eps: Any = "auto", tolerance: float = 1e-4) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
            raise ValueError(f"`num_classes` must be an integer >= 2, got {num_classes!r}")
        self.num_classes = int(num_classes)
        self.classes = tuple(range(self.num_classes)) if classes is None else tuple(classes)
        if len(self.classes) != self.num_classes:
            raise ValueError(f"`classes` must list {self.num_classes} classes, got {len(self.classes)}")
        self.tolerance = float(tolerance)
        super().__init__(n_bins=n_bins, from_logits=from_logits, eps=eps)
        self._cs = np.zeros((3, self.num_classes))
        self._cc = np.zeros((3, self.num_classes))
        self._cn = np.zeros(self.num_classes, dtype=np.int64)

    def _merge_extra(self, other: MulticlassState) -> None:
        merge_into(self._cs, self._cc, other._cs, other._cc)
        self._cn += other._cn

    def update(self, y_true: Any, y_pred: Any, /, *, weights: Any = None) -> MulticlassState:
        """Fold a batch in: ``y_true`` (n,) class codes, ``y_pred`` (n, K) probabilities or logits."""
        y = _label_array(y_true)
        P = _pred_array(y_pred, "y_pred")
        w = None if weights is None else np.ascontiguousarray(to_numpy(weights), dtype=np.float64)
        if y.ndim != 1 or P.shape != (len(y), self.num_classes) or (w is not None and w.shape != y.shape):
            raise ValueError(
                f"`y_true` must have shape (n,), `y_pred` (n, {self.num_classes}) and `weights` (n,), "
                f"got {y.shape}, {P.shape}" + (f", {w.shape}" if w is not None else "")
            )
        first = self.fold(y, P, w)
        if first >= 0:
            self._raise_invalid(y, P, w, first)
        return self

    def fold(self, y: np.ndarray, P: np.ndarray, w: np.ndarray | None) -> int:
        """Validated fast path for readers: returns -1 when folded, else the first bad row (state untouched).

        ``P`` has shape (n, K); the kernels read ``P.T``, so a transposed view of a
        contiguous (K, n) array (one row per class column) is the fastest layout.
        """
        if len(y) == 0:
            return -1
        K, nb = self.num_classes, self.n_bins
        s, c = np.zeros(4), np.zeros(4)
        cs, cc, cn = np.zeros((3, K)), np.zeros((3, K)), np.zeros(K, dtype=np.int64)
        bs, bc, bn = np.zeros((3, nb)), np.zeros((3, nb)), np.zeros(nb, dtype=np.int64)
        eps = 0.0 if self.from_logits else _resolve_eps(self.eps, P.dtype)
        first = kernels().multiclass_kernel(
            y if y.dtype in (np.int8, np.int64) else y.astype(np.int64), _class_major(P, self.from_logits),
            w if w is not None else np.zeros(1),
            w is not None, self.from_logits, eps, self.tolerance, nb, s, c, cs, cc, cn, bs, bc, bn)
        if first >= 0:
            return int(first)
        merge_into(self._s, self._c, s, c)
        merge_into(self._cs, self._cc, cs, cc)
        merge_into(self._bs, self._bc, bs, bc)
        self._cn += cn
        self._bn += bn
        self.rows += len(y)
        return -1

    def compute(self) -> MulticlassResult:
        t = total(self._s, self._c)
        cs = total(self._cs, self._cc)
        W = t[0]
        nan = float("nan")
        prior = cs[0] / W if W > 0 else np.full(self.num_classes, nan)
        rows = tuple(
            ClassRow(label=self.classes[k], rows=int(self._cn[k]), weight=float(cs[0, k]), prior=float(prior[k]),
                     log_loss=float(cs[1, k] / cs[0, k]) if cs[0, k] > 0 else nan,
                     mean_predicted=float(cs[2, k] / W) if W > 0 else nan,
                     calibration_ratio_pred_over_obs=float(cs[2, k] / cs[0, k]) if cs[0, k] > 0 else nan)
            for k in range(self.num_classes)
        )
        mean = (lambda v: float(v / W) if W > 0 else nan)
        return MulticlassResult(
            rows=self.rows, weight=float(W), log_loss=mean(t[1]), brier=mean(t[2]), accuracy=mean(t[3]),
            entropy_prior=entropy_nats(prior) if W > 0 else nan, reliability=self._reliability(), classes=rows,
        )
