"""What to score: :class:`ScoreSpec`, and the error every bad input raises."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from xent._lib.validation import check_choice
from xent.io import InputError, OnInvalid, ReadSpec

__all__ = ["OnInvalid", "ScoreInputError", "ScoreSpec"]

# The located input error of every engine: xent.io's, under the name the scoring API has always had.
ScoreInputError = InputError


@dataclass(frozen=True)
class ScoreSpec(ReadSpec):
    """Which columns to read and how to score them. Frozen, hashable, picklable.

    The :class:`xent.io.ReadSpec` that users build: the same fields, each validated
    here with a message naming it, so the readers take a ScoreSpec as it is.

    Parameters
    ----------
    label : str
        The label column: integers or strings.
    pred : tuple of str
        The prediction column(s). One column: binary (probability or logit of
        the positive class), unless ``classes`` has more than 2 entries or the
        column holds lists (one value per class: multi-class). Several columns:
        multi-class, one column per class, in the order of ``classes``.
    from_logits : bool
        ``pred`` holds logits (binary: log-odds; multi-class: unnormalised log
        probabilities, softmaxed per row) instead of probabilities.
    weight : str or None
        Optional per-row weight column (finite, >= 0).
    classes : tuple or None
        The class list; a label equal to ``classes[k]`` is class ``k``. Binary
        default ``(0, 1)`` (``classes[1]`` is the positive class); multi-class
        default ``0 .. K-1``. Strings are compared as strings.
    tolerance : float
        Multi-class probability rows must satisfy ``|sum_c p_c - 1| <= tolerance``.
    on_invalid : {"error", "skip"}
        ``"error"`` raises :class:`ScoreInputError` on the first bad row;
        ``"skip"`` drops bad rows and counts them by reason.
    n_bins : int
        Number of uniform calibration bins on [0, 1].
    eps : "auto" or float
        Probability clipping: ``"auto"`` = machine epsilon of the column's
        float dtype (scikit-learn >= 1.5), a float = that eps, 0.0 = no clipping.
    by : tuple of str
        Segment columns (string or integer; NULL is a segment of its own): the full
        metric set per value of each (``xent.metrics.GroupState``).
    ci : float or None
        Confidence level in (0, 1) of bootstrap intervals over hash buckets of rows
        (``xent.metrics._groups``), or None for none.
    max_segments : int
        Distinct values a ``by`` column may hold; more stops with an error.
    ci_buckets, ci_replicates, ci_seed : int
        The intervals' buckets of rows, bootstrap replicates and random seed.
    ci_segment_replicates : int
        Bootstrap replicates of the per-segment intervals (fewer: their cost grows with the segments).
    """

    ci_replicates: int = 1000
    ci_seed: int = 0
    ci_segment_replicates: int = 200

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(set(self.by)) != len(self.by):
            raise ValueError(f"`by` must not repeat a column, got {list(self.by)!r}")
        if self.ci is not None and not (isinstance(self.ci, (int, float)) and not isinstance(self.ci, bool)
                                        and 0.0 < self.ci < 1.0):
            raise ValueError(f"`ci` must be a confidence level in (0, 1), e.g. 0.95, got {self.ci!r}")
        for name, low in (("max_segments", 1), ("ci_buckets", 2), ("ci_replicates", 10), ("ci_seed", 0),
                          ("ci_segment_replicates", 10)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"`{name}` must be an integer >= {low}, got {v!r}")
        if not self.pred:
            raise ValueError("`pred` must name at least one column, got none")
        check_choice("on_invalid", self.on_invalid, OnInvalid)
        if isinstance(self.n_bins, bool) or not isinstance(self.n_bins, int) or self.n_bins < 1:
            raise ValueError(f"`n_bins` must be an integer >= 1, got {self.n_bins!r}")
        if not (isinstance(self.tolerance, (int, float)) and self.tolerance >= 0
                and math.isfinite(self.tolerance)):
            raise ValueError(f"`tolerance` must be a finite number >= 0, got {self.tolerance!r}")
        if not (self.eps == "auto" or (isinstance(self.eps, (int, float)) and not isinstance(self.eps, bool)
                                       and 0.0 <= self.eps < 0.5)):
            raise ValueError(f"`eps` must be 'auto' or a number in [0, 0.5), got {self.eps!r}")
        if self.classes is not None:
            if len(self.classes) < 2:
                raise ValueError(f"`classes` must list at least 2 classes, got {list(self.classes)!r}")
            if len(set(map(str, self.classes))) != len(self.classes):
                raise ValueError(f"`classes` must not repeat a class, got {list(self.classes)!r}")
            if len(self.pred) > 1 and len(self.pred) != len(self.classes):
                raise ValueError(
                    f"`pred` names {len(self.pred)} columns but `classes` lists {len(self.classes)} classes; "
                    "give one column per class"
                )

    def with_(self, **changes: Any) -> ScoreSpec:
        """A copy with some fields changed."""
        return replace(self, **changes)
