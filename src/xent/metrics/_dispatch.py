"""Which metric kernels run: the compiled ones (``xent._native.metrics``) or the NumPy reference."""

from __future__ import annotations

import os
from typing import Any

from xent._lib.native import native
from xent.metrics import _kernels_numpy

__all__ = ["kernels"]


def kernels() -> Any:
    """The kernels: ``xent._native.metrics``, or the NumPy reference when it is missing.

    ``XENT_SCORE_KERNEL=numpy`` forces the NumPy path (the same sums up to summation order).
    """
    if os.environ.get("XENT_SCORE_KERNEL", "auto") != "numpy":
        nat = native()
        if nat is not None:
            return nat.metrics
    return _kernels_numpy
