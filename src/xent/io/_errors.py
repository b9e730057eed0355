"""The located input error every reader and converter of :mod:`xent.io` raises."""

from __future__ import annotations

from typing import Any

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input data, located: ``"FILE: row R, column `C`: what was expected, got what"``.

    ``source`` (file path or a name), ``row`` (0-based row number inside that
    source, or None) and ``column`` (or None) are kept as attributes, with the
    bare ``message``, so that other engines (Dask) can re-raise it unchanged and
    a front end can word it for its users. Options are named as the fields of
    :class:`xent.io.ReadSpec` in backticks (e.g. ```tolerance```), never as a
    command-line flag. Picklable. ``xent.scoring.ScoreInputError`` is this class.

    Examples
    --------
    >>> from xent.io import InputError
    >>> str(InputError("missing label", source="a.csv", row=3, column="y"))
    'a.csv: row 3, column `y`: missing label'
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


def _rebuild_error(message: str, source: Any, row: Any, column: Any) -> InputError:
    return InputError(message, source=source, row=row, column=column)
