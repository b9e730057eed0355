"""What to score: :class:`ScoreSpec`, and the error every bad input raises."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from xent._lib.validation import check_choice

OnInvalid = Literal["error", "skip"]

__all__ = ["OnInvalid", "ScoreInputError", "ScoreSpec"]


class ScoreInputError(ValueError):
    """Bad input data, located: ``"FILE: row R, column `C`: what was expected, got what"``.

    ``source`` (file path or a name), ``row`` (0-based row number inside that
    source, or None) and ``column`` (or None) are kept as attributes so other
    engines (Dask) can re-raise it unchanged. The CLI prints ``str(exc)`` on one
    line and exits with status 2.
    """

    def __init__(self, message: str, *, source: str | None = None, row: int | None = None,
                 column: str | None = None) -> None:
        message = " ".join(str(message).split())  # always one line (Arrow messages span several)
        self.message = message
        self.source = source
        self.row = row
        self.column = column
        where = []
        if source is not None:
            where.append(str(source))
        loc = []
        if row is not None:
            loc.append(f"row {row}")
        if column is not None:
            loc.append(f"column `{column}`")
        head = ": ".join(where + ([", ".join(loc)] if loc else []))
        super().__init__(f"{head}: {message}" if head else message)

    def __reduce__(self) -> Any:  # picklable across Dask workers with its location
        return (_rebuild_error, (self.message, self.source, self.row, self.column))


def _rebuild_error(message: str, source: Any, row: Any, column: Any) -> ScoreInputError:
    return ScoreInputError(message, source=source, row=row, column=column)


def _as_tuple(x: Any) -> tuple[Any, ...] | None:
    if x is None:
        return None
    if isinstance(x, str):
        return (x,)
    return tuple(x)


@dataclass(frozen=True)
class ScoreSpec:
    """Which columns to read and how to score them. Frozen, hashable, picklable.

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

    label: str = "label"
    pred: tuple[str, ...] = ("prob",)
    from_logits: bool = False
    weight: str | None = None
    classes: tuple[Any, ...] | None = None
    tolerance: float = 1e-4
    on_invalid: OnInvalid = "error"
    n_bins: int = 15
    eps: float | str = "auto"
    by: tuple[str, ...] = ()
    ci: float | None = None
    max_segments: int = 100_000
    ci_buckets: int = 64
    ci_replicates: int = 1000
    ci_seed: int = 0
    ci_segment_replicates: int = 200

    def __post_init__(self) -> None:
        object.__setattr__(self, "pred", _as_tuple(self.pred))
        object.__setattr__(self, "by", _as_tuple(self.by) or ())
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
        object.__setattr__(self, "classes", _as_tuple(self.classes))
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

    @property
    def multiclass(self) -> bool | None:
        """True: multi-class; False: binary; None: decided by the data (a list column)."""
        if len(self.pred) > 1:
            return True
        if self.classes is not None and len(self.classes) > 2:
            return True
        return None

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column read, in order: label, predictions, weight, segment columns."""
        cols = (self.label, *self.pred)
        return cols + ((self.weight,) if self.weight else ()) + tuple(self.by)

    def with_(self, **changes: Any) -> ScoreSpec:
        """A copy with some fields changed."""
        from dataclasses import replace

        return replace(self, **changes)
