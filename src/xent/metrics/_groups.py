"""Segments and confidence intervals: sufficient statistics per segment and per bucket of rows.

Design note (the library API that ``xent score --by/--ci`` and ``xent compare`` build on)
-------------------------------------------------------------------------------------------
A :class:`GroupState` keeps, for every *segment* (a value of one ``--by`` column, or
the whole stream as one segment) and every *bucket* (``buckets`` hash-assigned
groups of rows), the sums that the metrics are ratios of: rows, weight, loss,
Brier, correct, weight per class, the calibration bins and a coarse AUC score
histogram, plus one finer AUC histogram per segment. Arrays have shape
``(segments, buckets, ...)`` (fields listed in :data:`GROUP_FIELDS`); memory grows
with segments x buckets, never with rows. ``merge`` adds the arrays (segments
matched by value), so any split of the rows gives the same state.

Buckets. A row's bucket is a hash of its identity, the file's base name and the
row's 0-based number in that file (:func:`row_buckets`): the same in every engine
and under any partitioning of the files into batches or Dask partitions, and
independent of the data (ties and repeated rows spread over buckets like any
other rows).

Confidence intervals (:func:`intervals`). A bootstrap over buckets: replicate r
draws ``buckets`` buckets with replacement (counts ``C[r] ~ Multinomial(buckets,
1/buckets)`` from ``numpy.random.default_rng(seed)``: :func:`bootstrap_counts`);
its sums are ``C[r] @ sums`` over the bucket axis, and its metrics are computed from
those sums exactly as the point estimate is (:func:`replicate_metrics`). The
interval is the (1 - level)/2 and (1 + level)/2 percentiles of the replicates. For
ROC AUC the replicates use the coarse per-bucket histograms, and the interval is
shifted by (fine AUC - coarse AUC of all buckets) so that it sits around the
reported value. Deterministic: the same files give the same buckets, the same
counts and the same intervals in every engine.

Paired intervals (for model A vs model B on the same rows): fold both models'
predictions into two GroupStates with the same segments and buckets (same rows,
same ``row_buckets``), draw one ``counts = bootstrap_counts(...)``, and take
percentiles of ``replicate_metrics(b, counts)[m] - replicate_metrics(a, counts)[m]``
(:func:`paired_intervals` does exactly this, per segment). The same buckets in both
replicates make the interval of the difference as narrow as the pairing allows.
A recipe for two models A and B over the same files::

    spec_a = ScoreSpec(label="y", pred="p_a", by=("country",), ci=0.95)
    spec_b = spec_a.with_(pred=("p_b",))
    a = b = None
    for batch in iter_batches(path, spec_a):  # or the rows of B's files, in the same order
        a = state_from_table(batch.table, spec_a, source=batch.source, first_row=batch.first_row, state=a)
        b = state_from_table(batch.table, spec_b, source=batch.source, first_row=batch.first_row, state=b)
    # per segment of `country`: the interval of B - A for every metric of CI_METRICS
    keys, delta = paired_intervals(a.groups["country"], b.groups["country"], level=0.95)
    # the whole stream: one segment (groups[None] when there is no `by` column)
    _, overall = paired_intervals(a.groups["country"].total(), b.groups["country"].total(), level=0.95)

(The source and first_row must be those of A's rows for both states, so that a row
lands in the same bucket for A and B. With ``--against FILES2``, pass A's file name
and row numbers when folding B's rows.) The AUC shift uses each state's own segment
histograms; pass the fine overall AUC through :func:`intervals`'s ``auc`` for a
single model.

Metric keys (:data:`METRICS`) are those of ``metrics`` in the JSON report:
``rows``, ``weight``, ``log_loss``, ``normalized_entropy`` (the segment's own prior,
as torchrec's segmented NE), ``calibration_ratio_pred_over_obs`` (binary: sum w p /
sum w y; multi-class: mean top-label confidence / accuracy), ``brier``, ``accuracy``,
``ece``, ``roc_auc`` (binary; multi-class: one-vs-rest macro), ``roc_auc_error_bound``.
"""

from __future__ import annotations

import copy
import hashlib
import os
from typing import Any

import numpy as np

from xent.metrics._auc import auc_from_histogram, n_score_bins, score_bins_at
from xent.metrics._dispatch import kernels
from xent.metrics._kernels_numpy import _bins, _matrix, binary_rows, multiclass_rows
from xent.metrics._sums import Field, Sums

__all__ = ["CI_METRICS", "GROUP_FIELDS", "METRICS", "GroupState", "SegmentLimitError", "bootstrap_counts",
           "intervals", "paired_intervals", "replicate_metrics", "row_buckets"]

GROUP_FIELDS = (
    Field("rows", ("segments", "buckets"), count=True, doc="rows"),
    Field("weight", ("segments", "buckets"), plain=True, doc="sum of w"),
    Field("loss", ("segments", "buckets"), plain=True, doc="sum of w loss"),
    Field("brier", ("segments", "buckets"), plain=True, doc="sum of w brier term"),
    Field("correct", ("segments", "buckets"), plain=True, doc="sum of w [prediction right]"),
    Field("class_weight", ("segments", "buckets", "classes"), plain=True, doc="sum of w [y = k]"),
    Field("bin_weight", ("segments", "buckets", "bins"), plain=True, doc="per calibration bin: sum of w"),
    Field("bin_prediction", ("segments", "buckets", "bins"), plain=True, doc="per bin: sum of w p (or confidence)"),
    Field("bin_outcome", ("segments", "buckets", "bins"), plain=True, doc="per bin: sum of w y (or [correct])"),
    Field("bucket_auc", ("segments", "buckets", "auc_classes", "bucket_scores", "labels"), plain=True,
          doc="coarse score histogram per bucket (CIs): sum of w [negative] (label 0), [positive] (label 1)"),
    Field("auc", ("segments", "auc_classes", "scores", "labels"), plain=True,
          doc="score histogram per segment: sum of w [negative], [positive]"),
)

METRICS = ("rows", "weight", "log_loss", "normalized_entropy", "calibration_ratio_pred_over_obs", "brier",
           "accuracy", "ece", "roc_auc", "roc_auc_error_bound")
CI_METRICS = ("log_loss", "normalized_entropy", "brier", "accuracy", "calibration_ratio_pred_over_obs", "ece",
              "roc_auc")

# Score histograms (octaves, mantissa bits; xent.metrics._auc). Per segment: 1,536 bins
# (binary); per bucket: 48 bins, for the spread of the AUC replicates only.
SEGMENT_AUC = (12, 6)
BUCKET_AUC = (6, 2)
SEGMENT_AUC_BUDGET = 2048  # multi-class: classes x bins per segment at most this (coarser for more classes)

DEFAULT_BUCKETS = 64
DEFAULT_REPLICATES = 1000
DEFAULT_SEED = 0


class SegmentLimitError(ValueError):
    """More distinct segment values than ``max_segments``; ``value`` is the first one over the limit."""

    def __init__(self, message: str, value: Any = None) -> None:
        super().__init__(message)
        self.value = value


def _mantissa_for(k: int, octaves: int, budget: int, top: int) -> int:
    for m in range(top, -1, -1):
        if k * n_score_bins(octaves, m) <= budget:
            return m
    return 0


class GroupState:
    """Sums per (segment, bucket): see the module docstring.

    Parameters
    ----------
    num_classes : int or None
        None for binary input, else K.
    n_bins : int
        Calibration bins (as the metric state's).
    from_logits : bool
        Scores are logits (AUC bins of sigmoid/softmax probabilities).
    buckets : int
        Hash buckets of rows (1 when no interval is wanted).
    max_segments : int
        Distinct segment values allowed; one more raises :class:`SegmentLimitError`.
    """

    def __init__(self, num_classes: int | None = None, *, n_bins: int = 15, from_logits: bool = False,
                 buckets: int = 1, max_segments: int = 100_000) -> None:
        if isinstance(buckets, bool) or not isinstance(buckets, (int, np.integer)) or buckets < 1:
            raise ValueError(f"`buckets` must be an integer >= 1, got {buckets!r}")
        if isinstance(max_segments, bool) or not isinstance(max_segments, (int, np.integer)) or max_segments < 1:
            raise ValueError(f"`max_segments` must be an integer >= 1, got {max_segments!r}")
        self.num_classes = num_classes
        self.n_bins = int(n_bins)
        self.from_logits = bool(from_logits)
        self.buckets = int(buckets)
        self.max_segments = int(max_segments)
        a = 1 if num_classes is None else int(num_classes)
        self.auc_classes = a
        self.segment_auc = (SEGMENT_AUC[0], SEGMENT_AUC[1] if num_classes is None else
                            _mantissa_for(a, SEGMENT_AUC[0], SEGMENT_AUC_BUDGET, SEGMENT_AUC[1]))
        self.bucket_auc = BUCKET_AUC if num_classes is None else (BUCKET_AUC[0], 0)
        self.keys: list[Any] = []
        self._index: dict[Any, int] = {}
        self.sums = self._new_sums(0)

    def _new_sums(self, capacity: int) -> Sums:
        sizes = {"segments": capacity, "buckets": self.buckets, "bins": self.n_bins,
                 "classes": 2 if self.num_classes is None else self.num_classes, "auc_classes": self.auc_classes,
                 "scores": n_score_bins(*self.segment_auc),
                 "bucket_scores": n_score_bins(*self.bucket_auc) if self.buckets > 1 else 0, "labels": 2}
        return Sums(GROUP_FIELDS, sizes)

    @property
    def segments(self) -> int:
        return len(self.keys)

    def copy(self) -> GroupState:
        new = copy.copy(self)
        new.keys = list(self.keys)
        new._index = dict(self._index)
        new.sums = self.sums.copy()
        return new

    def _grow(self, n: int) -> None:
        cap = self.sums.rows.shape[0]
        if n <= cap:
            return
        new = self._new_sums(max(n, 2 * cap, 8))
        for name in new.names:
            getattr(new, name)[:cap] = getattr(self.sums, name)
        self.sums = new

    def codes(self, values: list[Any]) -> np.ndarray:
        """Segment indices of the distinct ``values`` (registering new ones, in order of appearance)."""
        out = np.empty(len(values), dtype=np.int64)
        for i, v in enumerate(values):
            j = self._index.get(v)
            if j is None:
                if len(self.keys) >= self.max_segments:
                    raise SegmentLimitError(f"more than {self.max_segments:,} distinct values (--max-segments); "
                                            "segment by a column with fewer values, or raise the limit", v)
                j = self._index[v] = len(self.keys)
                self.keys.append(v)
            out[i] = j
        self._grow(len(self.keys))
        return out

    def fold(self, values: list[Any], inverse: np.ndarray, bucket: np.ndarray | None, rows: dict[str, Any]) -> None:
        """Add a batch of valid rows.

        ``values`` the batch's distinct segment values and ``inverse`` (n,) each row's index
        into them; ``bucket`` (n,) each row's bucket (None: bucket 0); ``rows`` the per-row
        values of :func:`row_values`.
        """
        add = kernels().scatter_add
        seg = self.codes(values)[inverse] if len(values) else np.zeros(0, dtype=np.int64)
        B = self.buckets
        S = self.sums.rows.shape[0]
        g = seg * B + (0 if bucket is None else bucket)
        wv = rows["weights"]  # None when every weight is 1
        n_groups = S * B
        s = self.sums
        s.rows.reshape(-1)[:] += np.bincount(g, minlength=n_groups)
        for name in ("weight", "loss", "brier", "correct"):
            add(getattr(s, name).reshape(-1), g, wv if name == "weight" else rows[name])
        C = s.class_weight.shape[-1]
        add(s.class_weight.reshape(-1), g * C + rows["y"], wv)
        nb = self.n_bins
        gb = g * nb + rows["bin"]
        add(s.bin_weight.reshape(-1), gb, wv)
        add(s.bin_prediction.reshape(-1), gb, rows["wconf"])
        add(s.bin_outcome.reshape(-1), gb, rows["wout"])
        A = self.auc_classes
        logits = self.from_logits and A == 1
        for k in range(A):
            score = rows["score"] if A == 1 else rows["q"][:, k]
            positive = rows["y"] == (1 if A == 1 else k)
            fine, coarse = score_bins_at(score, logits=logits, resolutions=(self.segment_auc, self.bucket_auc))
            _hist(add, s.auc, seg * A + k, fine, positive, wv)
            if B > 1:
                _hist(add, s.bucket_auc, g * A + k, coarse, positive, wv)

    def merge(self, other: GroupState) -> GroupState:
        """Add ``other``'s sums (segments matched by value) into this state; returns ``self``."""
        if (other.buckets, other.num_classes, other.n_bins) != (self.buckets, self.num_classes, self.n_bins):
            raise ValueError("cannot merge group states of different buckets, classes or bins")
        idx = self.codes(other.keys) if other.keys else np.zeros(0, dtype=np.int64)
        n = len(other.keys)
        for name in self.sums.names:
            mine, theirs = getattr(self.sums, name), getattr(other.sums, name)
            np.add.at(mine, idx, theirs[:n])
        return self

    def total(self) -> GroupState:
        """The whole stream as one segment (bucket sums added over the segments)."""
        new = GroupState(self.num_classes, n_bins=self.n_bins, from_logits=self.from_logits, buckets=self.buckets,
                         max_segments=1)
        new.codes([None])
        n = len(self.keys)
        for name in new.sums.names:
            getattr(new.sums, name)[0] = getattr(self.sums, name)[:n].sum(axis=0)
        return new

    def aligned(self, keys: list[Any]) -> GroupState:
        """A copy whose segments are ``keys`` in that order (absent ones empty)."""
        new = GroupState(self.num_classes, n_bins=self.n_bins, from_logits=self.from_logits, buckets=self.buckets,
                         max_segments=max(len(keys), 1))
        new.codes(list(keys))
        for i, k in enumerate(keys):
            j = self._index.get(k)
            if j is not None:
                for name in new.sums.names:
                    getattr(new.sums, name)[i] = getattr(self.sums, name)[j]
        return new

    def metrics(self, fine_auc: tuple[Any, Any] | None = None) -> dict[str, np.ndarray]:
        """Point estimates per segment: :data:`METRICS` -> array (segments,), in the order of ``keys``."""
        n = len(self.keys)
        s = self.sums
        sums = {name: getattr(s, name)[:n].sum(axis=1) for name in
                ("rows", "weight", "loss", "brier", "correct", "class_weight", "bin_weight", "bin_prediction",
                 "bin_outcome")}
        out = _metrics_from_sums(sums, binary=self.num_classes is None)
        auc, bound = auc_from_histogram(s.auc[:n, ..., 1], s.auc[:n, ..., 0])
        if self.auc_classes > 1:
            auc, bound = _macro(auc, bound)
        else:
            auc, bound = auc[:, 0], bound[:, 0]
        out["roc_auc"], out["roc_auc_error_bound"] = np.asarray(auc), np.asarray(bound)
        if fine_auc is not None:
            out["roc_auc"], out["roc_auc_error_bound"] = np.atleast_1d(fine_auc[0]), np.atleast_1d(fine_auc[1])
        return out


def _hist(add: Any, out: np.ndarray, group: np.ndarray, b: np.ndarray, positive: np.ndarray,
          w: np.ndarray | None) -> None:
    """``out[group, b, positive] += w`` for ``out`` of shape (..., H, 2) whose leading axes flatten to groups."""
    H = out.shape[-2]
    add(out.reshape(-1), (group * H + b) * 2 + positive, w)


def _macro(auc: np.ndarray, bound: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest macro average over the last axis, over the classes where AUC is defined."""
    ok = np.isfinite(auc)
    cnt = ok.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.where(cnt > 0, np.where(ok, auc, 0).sum(axis=-1) / cnt, np.nan),
                np.where(cnt > 0, np.where(ok, bound, 0).sum(axis=-1) / cnt, np.nan))


def _metrics_from_sums(s: dict[str, np.ndarray], *, binary: bool) -> dict[str, np.ndarray]:
    """The ratio metrics of sums with any leading axes (segments, replicates)."""
    W = s["weight"]
    with np.errstate(invalid="ignore", divide="ignore"):
        pos = np.where(W > 0, W, np.nan)
        cw = s["class_weight"]
        prior = cw / pos[..., None]
        h = -np.where(prior > 0, prior * np.log(np.where(prior > 0, prior, 1.0)), 0.0).sum(axis=-1)
        log_loss = s["loss"] / pos
        bw, bp, bo = s["bin_weight"], s["bin_prediction"], s["bin_outcome"]
        gap = np.abs(bp - bo)  # W_b |conf_b - obs_b| = |sum w conf - sum w obs| per bin
        ece = gap.sum(axis=-1) / pos
        out = {
            "rows": s["rows"].astype(np.float64),
            "weight": W,
            "log_loss": log_loss,
            "normalized_entropy": np.where(h > 0, log_loss / np.where(h > 0, h, 1.0), np.nan),
            "calibration_ratio_pred_over_obs": bp.sum(axis=-1) / np.where(bo.sum(axis=-1) != 0,
                                                                           bo.sum(axis=-1), np.nan),
            "brier": s["brier"] / pos,
            "accuracy": s["correct"] / pos,
            "ece": np.where(bw.sum(axis=-1) > 0, ece, np.nan),
        }
    return out


def row_values(y: np.ndarray, P: Any, w: np.ndarray | None, *, logits: bool, eps: float, n_bins: int,
               binary: bool) -> dict[str, np.ndarray]:
    """The per-row values a GroupState folds, for a batch of valid rows (NumPy reference formulas).

    Keys: ``y`` (int64 class codes), ``w``, ``loss``, ``brier``, ``correct`` (w-weighted
    sums are taken in ``fold``), ``bin`` (calibration bin), ``wconf``/``wout`` (w times
    the binned prediction / outcome), ``score`` (binary: the score) or ``q`` (multi-class:
    (n, K) probabilities).
    """
    y = np.asarray(y, dtype=np.int64)
    n = len(y)
    wv = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    if binary:
        x = np.asarray(P, dtype=np.float64)
        yy = y.astype(np.float64)
        loss, pj, hit = binary_rows(yy, x, logits, eps)
        out: dict[str, Any] = {"loss": _times(w, loss), "brier": _times(w, (pj - yy) ** 2), "correct": _times(w, hit),
               "bin": _bins(pj, n_bins), "wconf": _times(w, pj), "wout": _times(w, yy), "score": x}
    else:
        loss, q, br, conf, hit = multiclass_rows(y, _matrix(P), logits, eps)
        out = {"loss": _times(w, loss), "brier": _times(w, br), "correct": _times(w, hit),
               "bin": _bins(conf, n_bins), "wconf": _times(w, conf), "wout": _times(w, hit), "q": q}
    out["y"] = y
    out["w"] = wv
    out["weights"] = None if w is None else wv
    return out


def _times(w: np.ndarray | None, v: np.ndarray) -> np.ndarray:
    """``w * v`` as contiguous float64 (``v`` itself when unweighted)."""
    return np.ascontiguousarray(v, dtype=np.float64) if w is None else np.asarray(w, dtype=np.float64) * v


def _source_hash(source: str) -> int:
    name = os.path.basename(str(source)).encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "little")


def row_buckets(source: str, rows: np.ndarray, buckets: int) -> np.ndarray:
    """Bucket (int64 in [0, buckets)) of rows ``rows`` (0-based numbers inside ``source``).

    splitmix64 of (blake2b of the file's base name) + row * golden ratio: the same bucket
    for the same (file name, row number) in every process and engine.
    """
    with np.errstate(over="ignore"):
        z = np.uint64(_source_hash(source)) + np.asarray(rows, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(buckets)).astype(np.int64)


def bootstrap_counts(buckets: int, replicates: int, seed: int) -> np.ndarray:
    """(replicates, buckets) int64: how often each bucket is drawn in each bootstrap replicate."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(buckets, np.full(buckets, 1.0 / buckets), size=replicates)


_CHUNK = 1 << 22  # float64 elements of replicate sums held at once (segments are processed in chunks)
_SUM_FIELDS = ("rows", "weight", "loss", "brier", "correct", "class_weight", "bin_weight", "bin_prediction",
               "bin_outcome")


def _replicate_sums(C: np.ndarray, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``C @ a`` over the bucket axis of every (segments, buckets, ...) array: (R, segments, ...)."""
    out = {}
    for name, a in arrays.items():
        S, B = a.shape[:2]
        rest = a.shape[2:]
        flat = np.ascontiguousarray(np.moveaxis(a.astype(np.float64, copy=False), 1, 0)).reshape(B, -1)
        out[name] = (C @ flat).reshape(C.shape[0], S, *rest)
    return out


def replicate_metrics(state: GroupState, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics of every bootstrap replicate: :data:`CI_METRICS` -> array (replicates, segments).

    ``roc_auc`` here is the AUC of the coarse per-bucket histograms (its spread is what
    an interval needs; see :func:`intervals` for the shift to the fine value).
    """
    n = len(state.keys)
    s = state.sums
    C = np.asarray(counts, dtype=np.float64)
    R = C.shape[0]
    out = {k: np.empty((R, n)) for k in CI_METRICS}
    per_segment = sum(int(np.prod(getattr(s, k).shape[2:])) for k in _SUM_FIELDS)
    if state.buckets > 1:
        per_segment += int(np.prod(s.bucket_auc.shape[2:]))
    step = max(1, _CHUNK // max(1, R * per_segment))
    for a in range(0, n, step):
        b = min(n, a + step)
        sums = _replicate_sums(C, {k: getattr(s, k)[a:b] for k in _SUM_FIELDS})
        m = _metrics_from_sums(sums, binary=state.num_classes is None)
        for k in CI_METRICS:
            if k != "roc_auc":
                out[k][:, a:b] = m[k]
        if state.buckets > 1:
            h = _replicate_sums(C, {"h": s.bucket_auc[a:b]})["h"]
            v, bound = auc_from_histogram(h[..., 1], h[..., 0])
            out["roc_auc"][:, a:b] = _macro(v, bound)[0]
        else:
            out["roc_auc"][:, a:b] = np.nan
    return out


def _coarse_auc(state: GroupState) -> np.ndarray:
    n = len(state.keys)
    if state.buckets <= 1 or n == 0:
        return np.full(n, np.nan)
    h = state.sums.bucket_auc[:n].sum(axis=1)
    v, b = auc_from_histogram(h[..., 1], h[..., 0])
    return _macro(v, b)[0]


def _percentiles(values: np.ndarray, level: float) -> np.ndarray:
    """(segments, 2) percentile interval over the replicate axis 0, NaN replicates left out
    (linear interpolation, as ``numpy.quantile``); NaN where every replicate is NaN."""
    v = np.sort(values, axis=0)  # NaN last
    valid = (~np.isnan(v)).sum(axis=0)
    out = np.full((v.shape[1], 2), np.nan)
    cols = np.arange(v.shape[1])
    for j, q in enumerate(((1.0 - level) / 2.0, (1.0 + level) / 2.0)):
        pos = q * np.maximum(valid - 1, 0)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(valid - 1, 0))
        frac = pos - lo
        a, b = v[lo, cols], v[hi, cols]
        with np.errstate(invalid="ignore"):
            val = a + (b - a) * frac
        out[:, j] = np.where(valid > 0, val, np.nan)
    return out


def intervals(state: GroupState, *, level: float, replicates: int = DEFAULT_REPLICATES, seed: int = DEFAULT_SEED,
              auc: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Bootstrap percentile intervals per segment: :data:`CI_METRICS` -> array (segments, 2).

    ``auc`` (segments,) is the reported AUC per segment (default: the segment
    histograms'); the AUC interval is the coarse replicates' percentiles shifted by
    ``auc - coarse AUC`` and clipped to [0, 1].
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"`level` must be in (0, 1), got {level!r}")
    counts = bootstrap_counts(state.buckets, replicates, seed)
    reps = replicate_metrics(state, counts)
    out = {k: _percentiles(v, level) for k, v in reps.items()}
    point = state.metrics()["roc_auc"] if auc is None else np.atleast_1d(np.asarray(auc, dtype=np.float64))
    shift = point - _coarse_auc(state)
    out["roc_auc"] = np.clip(out["roc_auc"] + shift[:, None], 0.0, 1.0)
    return out


def paired_intervals(a: GroupState, b: GroupState, *, level: float, replicates: int = DEFAULT_REPLICATES,
                     seed: int = DEFAULT_SEED) -> tuple[list[Any], dict[str, np.ndarray]]:
    """Intervals of the difference B - A per segment, from the same bootstrap replicates of both.

    ``a`` and ``b`` hold two models' sums over the same rows (same buckets); their
    segments are matched by value. Returns ``(keys, {metric: (segments, 2)})``. The AUC
    difference uses the coarse per-bucket histograms' replicates, centred by the shift
    of each model (see :func:`intervals`).
    """
    if a.buckets != b.buckets:
        raise ValueError(f"the two states have {a.buckets} and {b.buckets} buckets; pair states of equal buckets")
    keys = list(a.keys) + [k for k in b.keys if k not in a._index]
    a, b = a.aligned(keys), b.aligned(keys)
    counts = bootstrap_counts(a.buckets, replicates, seed)
    ra, rb = replicate_metrics(a, counts), replicate_metrics(b, counts)
    out = {k: _percentiles(rb[k] - ra[k], level) for k in CI_METRICS}
    shift = (b.metrics()["roc_auc"] - _coarse_auc(b)) - (a.metrics()["roc_auc"] - _coarse_auc(a))
    out["roc_auc"] = out["roc_auc"] + shift[:, None]
    return keys, out
