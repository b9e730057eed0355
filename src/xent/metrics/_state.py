"""Mergeable metric states: ``update`` (sufficient statistics), ``merge``, ``compute``.

A state holds one named structure of sufficient statistics (:class:`Sums`, whose
fields are listed in ``BINARY_FIELDS`` / ``MULTICLASS_FIELDS``): compensated
float64 sums (value + rounding error) and exact int64 counts, O(n_bins +
n_classes) in size. ``merge`` adds field by field, exactly up to ~1e-16
relative, associatively and in any order, so any split of the data (batches,
files, Dask partitions) gives the one-pass result. Never an average of averages.

A batch is folded by one fused kernel that validates and sums in one pass: the
native one (``xent._native.metrics``, compiled, multi-threaded, the GIL released)
or its NumPy reference (:mod:`xent.metrics._kernels_numpy`), used when the
extension is not built or ``XENT_SCORE_KERNEL=numpy``.

Adding a statistic: declare its :class:`Field` below (an axis of its own, such as
score-histogram bins, is named in ``axes`` and sized in ``_sizes``); fold it in both
kernels (the NumPy one with ``sums.add``; the native one through a pointer in
``Sums`` of ``src/native/metrics/kernels.hpp``, read by name in ``bind.cpp``'s
``read_sums``); ``compute`` reads it with ``sums.total``. Merging, copying and
pickling need nothing more: they go field by field.
"""

from __future__ import annotations

import copy
from typing import Any, Self

import numpy as np

from xent._lib.namespace import to_numpy
from xent._lib.threads import get_num_threads
from xent.metrics._auc import (
    auc_from_histogram,
    average_precision_from_histogram,
    macro_weighted,
    n_score_bins,
    scatter,
    score_bins,
)
from xent.metrics._dispatch import kernels
from xent.metrics._groups import GroupState, row_buckets, row_values
from xent.metrics._invalid import REASONS, find_invalid
from xent.metrics._results import (
    BinaryResult,
    ClassRow,
    MulticlassResult,
    Reliability,
    entropy_nats,
)
from xent.metrics._sums import Field, Sums

__all__ = ["BINARY_FIELDS", "MULTICLASS_FIELDS", "BinaryState", "MulticlassState", "kernels"]

_CALIBRATION_FIELDS = (
    Field("bin_weight", ("bins",), doc="sum of w per calibration bin"),
    Field("bin_prediction", ("bins",), doc="per bin: sum of w p (binary) or of w times the top-label confidence"),
    Field("bin_outcome", ("bins",), doc="per bin: sum of w y (binary) or of w [arg max = y] (multi-class)"),
    Field("bin_rows", ("bins",), count=True, doc="rows per bin"),
)

BINARY_FIELDS = (
    Field("rows", count=True, doc="rows folded in"),
    Field("weight", doc="sum of w"),
    Field("weighted_labels", doc="sum of w y"),
    Field("weighted_predictions", doc="sum of w p"),
    Field("loss", doc="sum of w loss, loss = -log(clip(p if y else 1 - p)) or -log_sigmoid(+-logit)"),
    Field("brier", doc="sum of w (p - y)^2"),
    Field("correct", doc="sum of w [(p >= 0.5) == y]"),
    *_CALIBRATION_FIELDS,
    Field("auc_pos", ("scores",), plain=True, doc="per score bin (xent.metrics._auc): sum of w y"),
    Field("auc_neg", ("scores",), plain=True, doc="per score bin: sum of w (1 - y)"),
)

MULTICLASS_FIELDS = (
    Field("rows", count=True, doc="rows folded in"),
    Field("weight", doc="sum of w"),
    Field("loss", doc="sum of w loss, loss = -log(clip(p_y)) or -log_softmax(logits)_y"),
    Field("brier", doc="sum of w sum_k (p_k - [y = k])^2"),
    Field("correct", doc="sum of w [arg max p = y]"),
    *_CALIBRATION_FIELDS,
    Field("class_weight", ("classes",), doc="per class k: sum of w [y = k]"),
    Field("class_loss", ("classes",), doc="per class k: sum of w loss [y = k]"),
    Field("class_prediction", ("classes",), doc="per class k: sum of w p_k over every row"),
    Field("class_rows", ("classes",), count=True, doc="per class k: rows labelled k"),
    Field("auc_pos", ("auc_classes", "scores"), plain=True, doc="per class k and bin of p_k: sum of w [y = k]"),
    Field("auc_neg", ("auc_classes", "scores"), plain=True, doc="per class k and bin of p_k: sum of w [y != k]"),
)

# AUC score histograms (xent.metrics._auc): (octaves, mantissa bits). Binary: 2**22 bins
# (32 MiB per histogram pair), an error bound near 5e-7 on continuous scores whatever the
# row count. Multi-class: one histogram per class, 2**12 bins per octave while
# K * bins stays under 2**22, coarser for many classes; above 2**17 classes no AUC.
BINARY_AUC = (16, 17)
MULTICLASS_AUC_OCTAVES = 16
MULTICLASS_AUC_BUDGET = 1 << 22


def multiclass_auc_bits(num_classes: int) -> int | None:
    """Mantissa bits of the per-class AUC histograms of a K-class state (None: too many classes)."""
    for m in range(12, -1, -1):
        if num_classes * n_score_bins(MULTICLASS_AUC_OCTAVES, m) <= MULTICLASS_AUC_BUDGET:
            return m
    return None


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


def _columns(P: Any) -> tuple[Any, np.dtype]:
    """What the multi-class kernel reads: a 2-d array (rows at any positive stride) or a list of columns."""
    if isinstance(P, np.ndarray):
        if P.strides[0] <= 0 or P.strides[1] < 0 or P.strides[0] % P.itemsize or P.strides[1] % P.itemsize:
            P = np.ascontiguousarray(P)
        return P, P.dtype
    cols = list(P)
    dtypes = {c.dtype for c in cols}
    if len(dtypes) > 1:  # mixed float32/float64 columns: widen the float32 ones
        cols = [c.astype(np.float64) for c in cols]
    strides = {c.strides[0] for c in cols if len(c) > 1}
    if len(strides) > 1 or any(st <= 0 for st in strides):
        cols = [np.ascontiguousarray(c) for c in cols]
    return cols, cols[0].dtype


class _State:
    _fields: tuple[Field, ...] = ()

    def __init__(self, *, n_bins: int, from_logits: bool, eps: Any, auc: bool = True) -> None:
        self.auc = bool(auc)
        self.n_bins = _check_n_bins(n_bins)
        self.from_logits = bool(from_logits)
        if not (eps == "auto" or (isinstance(eps, (int, float)) and not isinstance(eps, bool) and 0 <= eps < 0.5)):
            raise ValueError(f"`eps` must be 'auto' or a number in [0, 0.5), got {eps!r}")
        self.eps = eps
        self.skipped: dict[str, int] = {}
        self.sums = Sums(self._fields, self._sizes())
        # per-segment / per-bucket sums (xent.metrics._groups): one GroupState per `by` column,
        # or under the key None (the whole stream as one segment) when only intervals are wanted
        self.groups: dict[str | None, GroupState] = {}

    def with_groups(self, by: tuple[str, ...] = (), *, buckets: int = 1, max_segments: int = 100_000) -> Any:
        """Keep per-segment sums for each column of ``by`` (and per-bucket sums when ``buckets`` > 1); self."""
        k = getattr(self, "num_classes", None)
        for col in (by or (None,)):
            self.groups[col] = GroupState(k, n_bins=self.n_bins, from_logits=self.from_logits, buckets=buckets,
                                          max_segments=max_segments)
        return self

    def fold_groups(self, y: np.ndarray, P: Any, w: np.ndarray | None, *, by: dict[Any, tuple[list[Any], np.ndarray]],
                    source: str, rows: np.ndarray) -> None:
        """Fold a batch of valid rows (already folded by ``fold``) into the group states.

        ``by[col] = (values, inverse)``: the batch's distinct values of column ``col`` and each
        row's index into them (columns not given: one segment, the value None). ``source``
        and ``rows`` (each row's 0-based number in that file) assign the buckets.
        """
        if not self.groups or len(y) == 0:
            return
        g0 = next(iter(self.groups.values()))
        dtype = P.dtype if isinstance(P, np.ndarray) else np.asarray(P[0]).dtype
        rv = row_values(y, P, w, logits=self.from_logits, eps=self._eps(dtype), n_bins=self.n_bins,
                        binary=not hasattr(self, "num_classes"))
        bucket = row_buckets(source, rows, g0.buckets) if g0.buckets > 1 else None
        for col, g in self.groups.items():
            values, inverse = by.get(col, ([None], np.zeros(len(y), dtype=np.int64)))
            g.fold(values, inverse, bucket, rv)

    def _sizes(self) -> dict[str, int]:
        return {"bins": self.n_bins, "scores": n_score_bins(*BINARY_AUC) if self.auc else 0}

    @property
    def rows(self) -> int:
        """Rows folded in (skipped rows not included)."""
        return int(self.sums.rows[0])

    def copy(self) -> Self:
        return copy.deepcopy(self)

    def add_skipped(self, reason: str, count: int) -> None:
        if count:
            self.skipped[reason] = self.skipped.get(reason, 0) + int(count)

    def _check_mergeable(self, other: Any) -> None:
        if type(other) is not type(self):
            raise TypeError(f"cannot merge a {type(other).__name__} into a {type(self).__name__}")
        for attr in ("n_bins", "from_logits", "num_classes", "auc"):
            a, b = getattr(self, attr, None), getattr(other, attr, None)
            if a != b:
                raise ValueError(f"cannot merge states with different `{attr}`: {a!r} and {b!r}")

    def merge(self, other: Any) -> Self:
        """Add ``other``'s sums into this state (in place), field by field, and return ``self``."""
        self._check_mergeable(other)
        if set(self.groups) != set(other.groups):
            raise ValueError(f"cannot merge states grouped by {list(self.groups)} and by {list(other.groups)}")
        self.sums.merge(other.sums)
        for col, g in other.groups.items():
            self.groups[col].merge(g)
        for reason, count in other.skipped.items():
            self.add_skipped(reason, count)
        return self

    def _eps(self, dtype: np.dtype) -> float:
        return 0.0 if self.from_logits else _resolve_eps(self.eps, dtype)

    def _raise_invalid(self, y: Any, p: Any, w: Any, first: int) -> None:
        reason, col = find_invalid(y, p, w, num_classes=getattr(self, "num_classes", 2),
                                   logits=self.from_logits, tolerance=getattr(self, "tolerance", 0.0))
        bad = np.flatnonzero(reason)
        i = int(bad[0]) if len(bad) else first
        code = int(reason[i])
        what = REASONS[code] if code else "invalid row"
        raise ValueError(f"invalid input at index {i}: {what}")

    def _reliability(self) -> Reliability:
        t = self.sums.total
        return Reliability.from_sums(self.sums.bin_rows, t("bin_weight"), t("bin_prediction"), t("bin_outcome"))


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
    auc : bool
        Keep the score histograms of ROC AUC and average precision
        (:mod:`xent.metrics._auc`: 2 x 2**22 float64 bins, 64 MiB of address space of
        which only the bins where scores land are touched); False leaves them out
        (the results' AUC fields are then NaN).

    Examples
    --------
    >>> import numpy as np
    >>> from xent.metrics import BinaryState
    >>> s = BinaryState().update(np.array([0, 1, 1]), np.array([0.2, 0.7, 0.9]))
    >>> round(s.compute().log_loss, 6)
    0.228393
    """

    _fields = BINARY_FIELDS

    def __init__(self, *, n_bins: int = 15, from_logits: bool = False, eps: Any = "auto", auc: bool = True) -> None:
        super().__init__(n_bins=n_bins, from_logits=from_logits, eps=eps, auc=auc)

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

    def fold(self, y: np.ndarray, p: np.ndarray, w: np.ndarray | None, *, threads: int | None = None) -> int:
        """Validated fast path for readers: returns -1 when folded, else the first bad row (state untouched).

        ``y`` int8 or int64 (n,), ``p`` float32 or float64 (n,), contiguous; ``w`` float64 (n,) or None;
        ``threads`` for the kernel (default :func:`xent.get_num_threads`).
        """
        if len(y) == 0:
            return -1
        octaves, bits = BINARY_AUC if self.auc else (0, 0)
        return int(kernels().binary(y, p, w, self.sums, self.from_logits, self._eps(p.dtype),
                                    threads or get_num_threads(), octaves, bits))

    def compute(self) -> BinaryResult:
        t = self.sums.total
        W = t("weight")
        q = t("weighted_labels") / W if W > 0 else float("nan")
        h = entropy_nats(np.array([q, 1.0 - q])) if W > 0 else float("nan")

        def mean(total: Any) -> float:  # a mean over zero weight is reported as NaN
            return float(total / W) if W > 0 else float("nan")

        nan = float("nan")
        auc = auc_bound = ap = ap_bound = nan
        if self.auc:
            auc, auc_bound = auc_from_histogram(self.sums.auc_pos, self.sums.auc_neg)
            ap, ap_bound = average_precision_from_histogram(self.sums.auc_pos, self.sums.auc_neg)
        return BinaryResult(
            rows=self.rows, weight=float(W), log_loss=mean(t("loss")), brier=mean(t("brier")),
            accuracy=mean(t("correct")), entropy_prior=h, reliability=self._reliability(), positive_rate=float(q),
            mean_predicted=mean(t("weighted_predictions")), roc_auc=auc, roc_auc_error_bound=auc_bound,
            average_precision=ap, average_precision_error_bound=ap_bound,
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
    auc : bool
        Keep one-vs-rest score histograms per class (ROC AUC macro, weighted and per
        class; 2**22 bins in all, fewer per class as K grows, none above 131,072 classes).
    """

    _fields = MULTICLASS_FIELDS

    def __init__(self, num_classes: int, *, classes: Any = None, n_bins: int = 15, from_logits: bool = False,
                 eps: Any = "auto", tolerance: float = 1e-4, auc: bool = True) -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
            raise ValueError(f"`num_classes` must be an integer >= 2, got {num_classes!r}")
        self.num_classes = int(num_classes)
        self.classes = tuple(range(self.num_classes)) if classes is None else tuple(classes)
        if len(self.classes) != self.num_classes:
            raise ValueError(f"`classes` must list {self.num_classes} classes, got {len(self.classes)}")
        self.tolerance = float(tolerance)
        self.auc_bits = multiclass_auc_bits(self.num_classes) if auc else None
        super().__init__(n_bins=n_bins, from_logits=from_logits, eps=eps, auc=self.auc_bits is not None)

    def _sizes(self) -> dict[str, int]:
        scores = n_score_bins(MULTICLASS_AUC_OCTAVES, self.auc_bits) if self.auc_bits is not None else 0
        return {"bins": self.n_bins, "classes": self.num_classes, "auc_classes": self.num_classes if self.auc else 0,
                "scores": scores}

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

    def fold(self, y: np.ndarray, P: Any, w: np.ndarray | None, *, threads: int | None = None) -> int:
        """Validated fast path for readers: returns -1 when folded, else the first bad row (state untouched).

        ``P`` is an (n, K) array (any strides), or a sequence of K arrays of shape (n,)
        (one column per class: read where they are, no copy). ``y`` int8 or int64 (n,),
        ``w`` float64 (n,) or None; ``threads`` for the kernel (default :func:`xent.get_num_threads`).
        """
        if len(y) == 0:
            return -1
        columns, dtype = _columns(P)
        octaves, bits = (MULTICLASS_AUC_OCTAVES, self.auc_bits) if self.auc_bits is not None else (0, 0)
        first = int(kernels().multiclass(y if y.dtype in (np.int8, np.int64) else y.astype(np.int64), columns, w,
                                         self.sums, self.from_logits, self._eps(dtype), self.tolerance,
                                         threads or get_num_threads(), octaves, bits))
        if first < 0 and self.auc_bits is not None and self.from_logits:  # the kernels bin probabilities only
            fold_multiclass_auc(self.sums.auc_pos, self.sums.auc_neg, y, columns, w, logits=self.from_logits,
                                resolution=(MULTICLASS_AUC_OCTAVES, self.auc_bits))
        return first

    def compute(self) -> MulticlassResult:
        t = self.sums.total
        W = t("weight")
        cw, closs, cpred = t("class_weight"), t("class_loss"), t("class_prediction")
        nan = float("nan")
        prior = cw / W if W > 0 else np.full(self.num_classes, nan)
        aucs = bounds = np.full(self.num_classes, nan)
        macro = macro_b = weighted = weighted_b = nan
        if self.auc:
            aucs, bounds = auc_from_histogram(self.sums.auc_pos, self.sums.auc_neg)
            macro, macro_b, weighted, weighted_b = macro_weighted(aucs, bounds, cw)
        rows = tuple(
            ClassRow(label=self.classes[k], rows=int(self.sums.class_rows[k]), weight=float(cw[k]),
                     prior=float(prior[k]), log_loss=float(closs[k] / cw[k]) if cw[k] > 0 else nan,
                     mean_predicted=float(cpred[k] / W) if W > 0 else nan,
                     calibration_ratio_pred_over_obs=float(cpred[k] / cw[k]) if cw[k] > 0 else nan,
                     roc_auc=float(aucs[k]), roc_auc_error_bound=float(bounds[k]))
            for k in range(self.num_classes)
        )

        def mean(total: Any) -> float:  # a mean over zero weight is reported as NaN
            return float(total / W) if W > 0 else nan

        return MulticlassResult(
            rows=self.rows, weight=float(W), log_loss=mean(t("loss")), brier=mean(t("brier")),
            accuracy=mean(t("correct")), entropy_prior=entropy_nats(prior) if W > 0 else nan,
            reliability=self._reliability(), classes=rows, roc_auc=macro, roc_auc_error_bound=macro_b,
            roc_auc_weighted=weighted, roc_auc_weighted_error_bound=weighted_b,
        )


def probabilities(columns: Any, logits: bool) -> np.ndarray:
    """(n, K) float64 probabilities of a multi-class batch (softmax of logits)."""
    X = columns.astype(np.float64) if isinstance(columns, np.ndarray) else np.stack(
        [np.asarray(c, dtype=np.float64) for c in columns], axis=1)
    if logits:
        X = np.exp(X - X.max(axis=1, keepdims=True))
        X /= X.sum(axis=1, keepdims=True)
    return X


def fold_multiclass_auc(pos: np.ndarray, neg: np.ndarray, y: np.ndarray, columns: Any, w: np.ndarray | None, *,
                        logits: bool, resolution: tuple[int, int]) -> None:
    """Add a (valid) multi-class batch to the per-class one-vs-rest histograms ``pos``, ``neg`` (K, bins)."""
    Q = probabilities(columns, logits)
    K = pos.shape[0]
    y = np.asarray(y, dtype=np.int64)
    for k in range(K):
        b = score_bins(Q[:, k], logits=False, octaves=resolution[0], mantissa_bits=resolution[1])
        scatter(pos[k], neg[k], b, y == k, w)
