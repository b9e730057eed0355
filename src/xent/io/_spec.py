"""What to read from a table and how to fold it: :class:`ReadSpec`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["OnInvalid", "ReadSpec"]

OnInvalid = Literal["error", "skip"]


def _as_tuple(x: Any) -> tuple[Any, ...] | None:
    if x is None:
        return None
    if isinstance(x, str):
        return (x,)
    return tuple(x)


@dataclass(frozen=True)
class ReadSpec:
    """The columns to read, what they hold, and the metric state they fold into. Frozen, picklable.

    A plain typed record: it normalises ``pred`` and ``classes`` to tuples and
    checks nothing else. :class:`xent.scoring.ScoreSpec` is the subclass users
    build; it validates every option with a message naming it.

    Parameters
    ----------
    label : str
        The label column.
    pred : tuple of str
        One prediction column (binary, or a list column), or one per class.
    from_logits : bool
        ``pred`` holds logits instead of probabilities.
    weight : str or None
        Optional per-row weight column.
    classes : tuple or None
        The class list (``classes[k]`` is class ``k``); None: ``0, 1`` or ``0 .. K-1``.
    tolerance : float
        Multi-class probability rows must satisfy ``|sum_c p_c - 1| <= tolerance``.
    on_invalid : {"error", "skip"}
        Raise :class:`xent.io.InputError` on the first bad row, or drop bad rows and count them.
    n_bins : int
        Calibration bins of the metric state.
    eps : "auto" or float
        Probability clipping of the metric state.
    by : tuple of str
        Segment columns (string or integer): the state keeps sums per value of each
        (:class:`xent.metrics.GroupState`).
    max_segments : int
        Distinct values a ``by`` column may hold.
    ci : float or None
        A confidence level: the state keeps sums per hash bucket of rows too.
    ci_buckets : int
        Those buckets.

    Examples
    --------
    >>> from xent.io import ReadSpec
    >>> ReadSpec(label="y", pred="p", weight="w").columns
    ('y', 'p', 'w')
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
    max_segments: int = 100_000
    ci: float | None = None
    ci_buckets: int = 64

    def __post_init__(self) -> None:
        object.__setattr__(self, "pred", _as_tuple(self.pred))
        object.__setattr__(self, "classes", _as_tuple(self.classes))
        object.__setattr__(self, "by", _as_tuple(self.by) or ())

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
