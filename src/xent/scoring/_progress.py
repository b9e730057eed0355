"""A one-line progress bar on stderr: rows, rows/s, and ETA when the total is known."""

from __future__ import annotations

import sys
import time

__all__ = ["Progress"]


def _human(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.1f}{unit}"
    return f"{n:.0f}"


class Progress:
    """Redraws at most 10 times a second; ``close`` ends the line."""

    def __init__(self, total: int | None, stream=None, width: int = 30) -> None:
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.start = time.perf_counter()
        self._last = 0.0

    def advance(self, rows: int) -> None:
        self.done += rows
        now = time.perf_counter()
        if now - self._last >= 0.1:
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        text = f"{_human(self.done)} rows  {_human(rate)} rows/s"
        if self.total:
            frac = min(self.done / self.total, 1.0)
            fill = int(frac * self.width)
            eta = (self.total - self.done) / rate if rate > 0 else float("nan")
            text = f"[{'#' * fill}{'.' * (self.width - fill)}] {frac:6.1%}  {text}  ETA {eta:5.1f}s"
        self.stream.write("\r" + text + "\033[K")
        self.stream.flush()

    def close(self) -> None:
        self._draw(time.perf_counter())
        self.stream.write("\n")
        self.stream.flush()
