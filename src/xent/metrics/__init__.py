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


def new_state(num_classes: int | None = None, *, classes: tuple[Any, ...] | None = None, n_bins: int = 15,
              from_logits: bool = False, eps: float | str = "auto",
              tolerance: float = 1e-4) -> BinaryState | MulticlassState:
    """An empty state: binary when ``num_classes`` is None, else multi-class with ``num_classes`` classes.

    The keyword options are those of :class:`BinaryState` and :class:`MulticlassState`
    (``classes`` and ``tolerance`` apply to multi-class states only).

    Examples
    --------
    >>> from xent.metrics import new_state
    >>> type(new_state()).__name__, type(new_state(3, n_bins=10)).__name__
    ('BinaryState', 'MulticlassState')
    """
    if num_classes is not None:
        return MulticlassState(num_classes, classes=classes, n_bins=n_bins, from_logits=from_logits, eps=eps,
                               tolerance=tolerance)
    return BinaryState(n_bins=n_bins, from_logits=from_logits, eps=eps)
