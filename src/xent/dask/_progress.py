"""A one-line progress bar for the Dask engine, fed from completed partition futures.

Drawn on stderr only when it is a terminal: rows done, rows/s and the ETA when
the total is known (Parquet footers), partitions done otherwise.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["RowProgress"]


class RowProgress:
    """``update(rows, parts=1)`` after each finished partition; a context manager."""

    def __init__(self, *, total: int | None, enabled: bool, stream: TextIO | None = None,
                 min_interval: float = 0.1) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.enabled = bool(enabled) and bool(getattr(self.stream, "isatty", lambda: False)())
        self.total = total
        self.rows = 0
        self.parts = 0
        self.min_interval = min_interval
        self._start = time.perf_counter()
        self._last = 0.0

    def __enter__(self) -> RowProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()

    def update(self, rows: int, *, parts: int = 1) -> None:
        self.rows += rows
        self.parts += parts
        if self.enabled:
            self._draw()

    def line(self) -> str:
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        rate = self.rows / elapsed
        text = f"dask: {self.parts} partitions, {self.rows:,} rows, {rate:,.0f} rows/s"
        if self.total:
            frac = min(self.rows / self.total, 1.0)
            eta = (self.total - self.rows) / rate if rate > 0 else float("inf")
            text = f"dask: {100 * frac:5.1f}% {self.rows:,}/{self.total:,} rows, {rate:,.0f} rows/s, ETA {eta:.0f}s"
        return text

    def _draw(self, *, force: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < self.min_interval:
            return
        self._last = now
        self.stream.write("\r" + self.line() + "\x1b[K")
        self.stream.flush()
