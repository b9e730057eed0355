"""Paired intervals of B - A: the same bootstrap replicates for both models (filled in from xent.metrics)."""

from __future__ import annotations

from typing import Any

__all__ = ["paired_intervals"]


def paired_intervals(state: Any, level: float) -> tuple[dict[str, list[float | None]], dict[str, Any]]:
    return {}, {}
