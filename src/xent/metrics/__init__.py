"""Mergeable streaming metrics for probabilistic classifiers.

``BinaryState`` and ``MulticlassState`` keep exact sufficient statistics
(compensated float64 sums, integer counts): ``update`` a batch at a time from a
training loop (NumPy, PyTorch or JAX arrays), ``merge`` states computed
anywhere (threads, files, Dask partitions), ``compute`` the results. See
:mod:`xent.metrics._results` for the metric definitions and conventions.
"""

from __future__ import annotations

from typing import Any

from xent.metrics._results import BinaryResult, ClassRow, MulticlassResult, Reliability
from xent.metrics._state import BinaryState, MulticlassState

__all__ = ["BinaryResult", "BinaryState", "ClassRow", "MulticlassResult", "MulticlassState", "Reliability",
           "new_state"]


def new_state(spec: Any, num_classes: int | None = None) -> BinaryState | MulticlassState:
    """An empty state for a :class:`xent.scoring.ScoreSpec`.

    Binary unless the spec is multi-class or ``num_classes`` is given (a list
    column's width, known from the data).
    """
    multi = spec.multiclass
    if multi or num_classes is not None:
        k = num_classes if num_classes is not None else (len(spec.classes) if spec.classes else len(spec.pred))
        return MulticlassState(k, classes=spec.classes, n_bins=spec.n_bins, from_logits=spec.from_logits,
                               eps=spec.eps, tolerance=spec.tolerance)
    return BinaryState(n_bins=spec.n_bins, from_logits=spec.from_logits, eps=spec.eps)
