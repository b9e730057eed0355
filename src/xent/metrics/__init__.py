"""Mergeable streaming metrics for probabilistic classifiers.

``BinaryState`` and ``MulticlassState`` keep exact sufficient statistics
(compensated float64 sums, integer counts): ``update`` a batch at a time from a
training loop (NumPy, PyTorch or JAX arrays), ``merge`` states computed
anywhere (threads, files, Dask partitions), ``compute`` the results. See
:mod:`xent.metrics._results` for the metric definitions and conventions.
"""

from __future__ import annotations

from typing import Any

from xent.metrics._groups import (
    GroupState,
    SegmentLimitError,
    bootstrap_counts,
    intervals,
    paired_intervals,
    replicate_metrics,
    row_buckets,
)
from xent.metrics._results import BinaryResult, ClassRow, MulticlassResult, Reliability
from xent.metrics._state import BinaryState, MulticlassState

__all__ = ["BinaryResult", "BinaryState", "ClassRow", "GroupState", "MulticlassResult", "MulticlassState",
           "Reliability", "SegmentLimitError", "bootstrap_counts", "intervals", "new_state", "paired_intervals",
           "replicate_metrics", "row_buckets"]


def new_state(spec: Any, num_classes: int | None = None) -> BinaryState | MulticlassState:
    """An empty state for a :class:`xent.scoring.ScoreSpec`.

    Binary unless the spec is multi-class or ``num_classes`` is given (a list
    column's width, known from the data).
    """
    multi = spec.multiclass
    state: BinaryState | MulticlassState
    if multi or num_classes is not None:
        k = num_classes if num_classes is not None else (len(spec.classes) if spec.classes else len(spec.pred))
        state = MulticlassState(k, classes=spec.classes, n_bins=spec.n_bins, from_logits=spec.from_logits,
                                eps=spec.eps, tolerance=spec.tolerance)
    else:
        state = BinaryState(n_bins=spec.n_bins, from_logits=spec.from_logits, eps=spec.eps)
    by, ci = tuple(getattr(spec, "by", ())), getattr(spec, "ci", None)
    if by or ci is not None:
        state.with_groups(by, buckets=spec.ci_buckets if ci is not None else 1, max_segments=spec.max_segments)
    return state
