"""A metric state's sufficient statistics: one named structure of compensated sums and exact counts.

Each statistic is a named :class:`Field` (what it holds, one value or one per
bin / class). :class:`Sums` keeps one array per field:

- a *sum* field is float64 of shape ``(2, *shape)``: ``[0]`` the value, ``[1]`` its
  rounding error, so that the true sum is ``value + compensation``;
- a *count* field is int64 of shape ``shape``: exact.

``merge`` works field by field (as torchmetrics' ``add_state`` states do): counts
add; sums add with Knuth's error-free TwoSum, so combining partial sums in any
order or grouping agrees to ~1e-16 relative instead of drifting with the number
of merges. Never an average of averages. The native kernels
(``src/native/metrics/``) read and fold into the same arrays, by field name.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Field", "Sums", "merge_into", "total"]


@dataclass(frozen=True)
class Field:
    """One sufficient statistic of a metric state.

    Parameters
    ----------
    name : str
        What it holds (the kernels read the field by this name).
    axes : tuple of str
        ``()`` for one value, or the names of its axes (``("bins",)``, ``("classes",)``),
        sized by the state.
    count : bool
        An exact int64 count instead of a compensated float64 sum.
    doc : str
        One line: the formula of the statistic.
    """

    name: str
    axes: tuple[str, ...] = ()
    count: bool = False
    doc: str = ""


def merge_into(s: np.ndarray, c: np.ndarray, s2: np.ndarray, c2: Any) -> None:
    """``(s, c) += (s2, c2)`` in place, with TwoSum capturing the rounding error of ``s + s2``."""
    with np.errstate(invalid="ignore", over="ignore"):  # inf sums (eps=0, log 0) give NaN errors, ignored below
        t = s + s2
        # TwoSum: (t, err) represent s + s2 exactly, whatever their magnitudes.
        bp = t - s
        err = (s - (t - bp)) + (s2 - bp)
        c += c2 + err
    s[...] = t


def total(s: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The compensated value ``s + c`` as float64 (``s`` itself once it is inf or NaN)."""
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(s), s + c, s)


class Sums:
    """The arrays of a set of :class:`Field` s, by name: ``sums.weight``, ``sums.bin_rows``, ...

    Parameters
    ----------
    fields : iterable of Field
    sizes : mapping of str to int
        The length of every axis the fields name.

    Examples
    --------
    >>> import numpy as np
    >>> s = Sums([Field("weight"), Field("bin_rows", ("bins",), count=True)], {"bins": 3})
    >>> s.add("weight", 0.1); s.add("weight", 0.2); s.bin_rows += [1, 0, 2]
    >>> t = s.copy().merge(s)
    >>> float(t.total("weight")), t.bin_rows.tolist()
    (0.6000000000000001, [2, 0, 4])
    """

    def __init__(self, fields: Iterable[Field], sizes: Mapping[str, int] | None = None) -> None:
        fields = tuple(fields)
        sizes = dict(sizes or {})
        arrays: dict[str, np.ndarray] = {}
        for f in fields:
            shape = tuple(int(sizes[a]) for a in f.axes) or (1,)  # one value: length 1, like every kernel field
            arrays[f.name] = np.zeros(shape, dtype=np.int64) if f.count else np.zeros((2, *shape))
        self._arrays = arrays
        self._scalars = frozenset(f.name for f in fields if not f.axes)

    def __getattr__(self, name: str) -> np.ndarray:
        arrays = self.__dict__.get("_arrays")
        if arrays is None or name not in arrays:
            raise AttributeError(name)
        return arrays[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._arrays)

    def copy(self) -> Sums:
        return copy.deepcopy(self)

    def add(self, name: str, values: Any) -> None:
        """Fold plain float64 ``values`` (one batch's sums) into the sum field ``name``."""
        a = self._arrays[name]
        merge_into(a[0], a[1], np.asarray(values, dtype=np.float64), 0.0)

    def total(self, name: str) -> Any:
        """A sum field's compensated value, a count field's counts (a number for a one-value field)."""
        a = self._arrays[name]
        v = a if a.dtype == np.int64 else total(a[0], a[1])
        return (int(v[0]) if a.dtype == np.int64 else float(v[0])) if name in self._scalars else v

    def merge(self, other: Sums) -> Sums:
        """Add ``other``'s fields into these (in place), field by field; returns ``self``."""
        if self.names != other.names:
            raise ValueError(f"cannot merge sums with different fields: {self.names} and {other.names}")
        for name, a in self._arrays.items():
            b = other._arrays[name]
            if a.shape != b.shape:
                raise ValueError(f"cannot merge field `{name}` of shape {a.shape} with one of shape {b.shape}")
            if a.dtype == np.int64:
                a += b
            else:
                merge_into(a[0], a[1], b[0], b[1])
        return self
