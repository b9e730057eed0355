"""Why a row is invalid: one reason code per row, shared by the states and the file readers."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["REASONS", "find_invalid"]

# Reason codes (index into REASONS); 0 means the row is valid. A row gets its first reason.
REASONS = (
    "valid",
    "label not in classes",
    "missing or NaN prediction",
    "probability outside [0, 1]",
    "non-finite logit",
    "probabilities do not sum to 1",
    "negative or non-finite weight",
    "missing label",
    "unparseable number",
)
LABEL, NAN, RANGE, LOGIT, SUM, WEIGHT, MISSING_LABEL, PARSE = range(1, 9)


def find_invalid(y: Any, p: Any, w: Any, *, num_classes: int, logits: bool, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(reason, column)``: reason code per row (0 valid) and, for predictions, the bad column.

    ``y`` are class codes (``-1`` for labels outside the class list), ``p`` has
    shape (n,) (binary) or (n, K), ``w`` is None or shape (n,).
    """
    y = np.asarray(y)
    X = np.asarray(p, dtype=np.float64)
    X2 = X[:, None] if X.ndim == 1 else X
    reason = np.zeros(len(y), dtype=np.int8)
    col = np.zeros(len(y), dtype=np.int64)

    def mark(mask: Any, code: int, where: np.ndarray | None = None) -> None:
        new = mask & (reason == 0)
        reason[new] = code
        if where is not None:
            col[new] = where[new]

    mark((y < 0) | (y >= num_classes), LABEL)
    nan = np.isnan(X2)
    mark(nan.any(axis=1), NAN, np.argmax(nan, axis=1))
    if logits:
        inf = np.isinf(X2)
        mark(inf.any(axis=1), LOGIT, np.argmax(inf, axis=1))
    else:
        out = ~((X2 >= 0.0) & (X2 <= 1.0))
        mark(out.any(axis=1), RANGE, np.argmax(out, axis=1))
        if X.ndim == 2:
            with np.errstate(invalid="ignore"):
                mark(~(np.abs(X2.sum(axis=1) - 1.0) <= tolerance), SUM)
    if w is not None:
        wv = np.asarray(w, dtype=np.float64)
        mark(~((wv >= 0.0) & (wv < np.inf)), WEIGHT)
    return reason, col
