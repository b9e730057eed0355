"""A metric state's sufficient statistics: one named structure of compensated sums and exact counts.

Each statistic is a named :class:`Field` (what it holds, one value or one per
bin / class). :class:`Sums` keeps one array per field:

- a *sum* field is float64 of shape ``(2, *shape)``: ``[0]`` the value, ``[1]`` its
  rounding error, so that the true sum is ``value + compensation``;
- a *count* field is int64 of shape ``shape``: exact;
- a *plain* field is float64 of shape ``shape`` without a compensation term: for large
  histograms (the AUC score histograms) whose entries are integer-valued when the data
  is unweighted (exact in float64 up to 2**53) and otherwise sums of a few weights each.
  Pickled sparsely (only the non-zero entries), since most of their bins stay empty.

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
    plain : bool
        A plain float64 sum (no compensation term): for large histograms, see the module docstring.
    doc : str
        One line: the formula of the statistic.
    """

    name: str
    axes: tuple[str, ...] = ()
    count: bool = False
    doc: str = ""
    plain: bool = False


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
            if f.count:
                arrays[f.name] = np.zeros(shape, dtype=np.int64)
            else:
                arrays[f.name] = np.zeros(shape) if f.plain else np.zeros((2, *shape))
        self._arrays = arrays
        self._scalars = frozenset(f.name for f in fields if not f.axes)
        self._plain = frozenset(f.name for f in fields if f.plain)

    def __getstate__(self) -> dict[str, Any]:
        # plain fields (histograms, mostly empty) travel as their non-zero entries
        state = dict(self.__dict__)
        arrays: dict[str, Any] = dict(self._arrays)
        for name in self._plain:
            a = arrays[name]
            nz = np.flatnonzero(a)
            if len(nz) * 3 < a.size:
                arrays[name] = ("sparse", a.shape, nz.astype(np.int64), a.ravel()[nz])
        state["_arrays"] = arrays
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        arrays = state["_arrays"]
        for name, packed in list(arrays.items()):
            if isinstance(packed, tuple):
                _, shape, nz, values = packed
                full = np.zeros(shape)
                full.ravel()[nz] = values
                arrays[name] = full
        state.setdefault("_plain", frozenset())
        self.__dict__.update(state)

    def __getattr__(self, name: str) -> np.ndarray:
        arrays = self.__dict__.get("_arrays")
        if arrays is None or name not in arrays:
            raise AttributeError(name)
        array: np.ndarray = arrays[name]
        return array

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._arrays)

    def __deepcopy__(self, memo: Any) -> Sums:
        return self.copy()

    def copy(self) -> Sums:
        new = copy.copy(self)
        new.__dict__["_arrays"] = {k: _sparse_copy(a) if k in self._plain else a.copy()
                                   for k, a in self._arrays.items()}
        return new

    def add(self, name: str, values: Any) -> None:
        """Fold plain float64 ``values`` (one batch's sums) into the sum field ``name``."""
        a = self._arrays[name]
        if name in self._plain:
            a += values
            return
        merge_into(a[0], a[1], np.asarray(values, dtype=np.float64), 0.0)

    def total(self, name: str) -> Any:
        """A sum field's compensated value, a count field's counts (a number for a one-value field)."""
        a = self._arrays[name]
        v = a if a.dtype == np.int64 or name in self._plain else total(a[0], a[1])
        return (int(v[0]) if a.dtype == np.int64 else float(v[0])) if name in self._scalars else v

    def merge(self, other: Sums) -> Sums:
        """Add ``other``'s fields into these (in place), field by field; returns ``self``."""
        if self.names != other.names:
            raise ValueError(f"cannot merge sums with different fields: {self.names} and {other.names}")
        for name, a in self._arrays.items():
            b = other._arrays[name]
            if a.shape != b.shape:
                raise ValueError(f"cannot merge field `{name}` of shape {a.shape} with one of shape {b.shape}")
            if name in self._plain:
                _sparse_add(a, b)
            elif a.dtype == np.int64:
                a += b
            else:
                merge_into(a[0], a[1], b[0], b[1])
        return self


def _sparse_copy(a: np.ndarray) -> np.ndarray:
    """A copy of a mostly empty histogram that writes only its non-zero entries (fresh zeros cost nothing)."""
    out = np.zeros(a.shape)
    flat = a.reshape(-1)
    nz = np.flatnonzero(flat)
    out.reshape(-1)[nz] = flat[nz]
    return out


def _sparse_add(a: np.ndarray, b: np.ndarray) -> None:
    """``a += b`` touching only the non-zero entries of ``b`` (a histogram, mostly empty when small)."""
    flat = b.reshape(-1)
    nz = np.flatnonzero(flat)
    if len(nz) * 4 > flat.size:
        a += b
    else:
        a.reshape(-1)[nz] += flat[nz]
