"""The rules every engine shares, each in one place.

Every path computes the same numbers: the reference (array-API) losses in
:mod:`xent.losses`, the NumPy engine and the compiled kernels behind
:mod:`xent.engine`, the torch kernels of :mod:`xent.torch`, and the metric
states of :mod:`xent.metrics`. The rules they share are written here once; a
kernel that must restate one for speed (fused into a loop, in C++, on a tile)
is listed under the rule, and ``tests/test_parity.py`` runs every listed path
over every option against a float64 truth, so that changing a rule in one
place and not another fails a test.

Label smoothing (:func:`smooth_targets`, :func:`smooth_binary_targets`)
    Categorical ``q = (1 - e) t + e / C``; binary ``y' = y (1 - e) + e / 2``.
    Restated for speed, as coefficients ``(1 - e) w_y`` and ``e / C`` of the
    log-probabilities (the one-hot is never built), in:

    - ``src/xent/losses/_categorical_core.py`` (:func:`sparse_core`)
    - ``src/xent/engine/_crossentropy.py`` (``label_weights``, ``target_masses``)
    - ``src/xent/engine/_binary.py`` (per tile, into a buffer)
    - ``src/native/engine/kernels.hpp``, ``src/native/engine/kernels.cpp``,
      ``src/native/engine/rows.hpp``, ``src/native/engine/lanes.hpp``
    - ``src/xent/torch/_kernel.py`` (``row_losses``, ``grad_``) and
      ``src/xent/torch/_formula.py`` (the double-backward formula)
    - ``src/xent/torch/_contrastive.py`` (CLIP's smoothed rows and columns)

The weighted mean and its zero total weight (:func:`weighted_mean`)
    ``mean = sum_i s_i l_i / sum_i s_i c_i``; a mean over zero total weight
    (every example ignored, or all weights 0) is 0, with a zero gradient.
    The array form, with the gradient's per-example factor, is
    :func:`xent.losses._reduce.reduce_losses`. Restated in:

    - ``src/xent/engine/_compiled.py`` and ``src/xent/engine/_crossentropy.py``,
      ``src/xent/engine/_binary.py`` (call :func:`weighted_mean`; the gradient's
      factor ``1 / denom`` or 0 is :func:`mean_factor`)
    - ``src/native/engine/kernels.cpp`` (takes that factor from Python)
    - ``src/xent/torch/_kernel.py`` (``reduction_scale``: on device, no host sync)
      and ``src/xent/torch/_formula.py``
    - ``src/xent/metrics/_results.py`` (the scorer's weighted means)

Probability clipping ``eps`` (:func:`resolve_eps`)
    ``"auto"`` is the machine epsilon of the predictions' dtype (float64's for
    integer predictions); a number in [0, 0.5) is taken as it is; probabilities
    are clipped to ``[eps, 1 - eps]`` (:func:`xent.losses._common.clip_probabilities`).
    Restated in ``src/xent/metrics/_state.py`` (``_resolve_eps``) and
    ``src/native/metrics/kernels.hpp`` (the clip).

Counts and sizes: :func:`xent._lib.validation.check_count` ("an integer >= 1").
    Restated in ``src/xent/metrics/_state.py`` (``n_bins``),
    ``src/xent/scoring/_spec.py`` (``n_bins``), ``src/xent/scoring/_local.py``
    (``threads``) and ``src/xent/dask/_cluster.py`` (``workers``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "mean_factor",
    "resolve_eps",
    "smooth_binary_targets",
    "smooth_targets",
    "weighted_mean",
]


def smooth_targets(targets: Any, label_smoothing: float, n_classes: int) -> Any:
    """Categorical smoothing ``(1 - e) t + e / C`` of targets ``t`` (any array, or a number)."""
    if label_smoothing == 0.0:
        return targets
    return targets * (1.0 - label_smoothing) + label_smoothing / n_classes


def smooth_binary_targets(targets: Any, label_smoothing: float) -> Any:
    """Binary smoothing ``y (1 - e) + e / 2`` of targets ``y`` (any array, or a number)."""
    if label_smoothing == 0.0:
        return targets
    return targets * (1.0 - label_smoothing) + label_smoothing / 2.0


def weighted_mean(total: float, total_weight: float) -> float:
    """``total / total_weight``, and 0.0 when the total weight is 0 (a mean over nothing is 0)."""
    return total / total_weight if total_weight != 0 else 0.0


def mean_factor(total_weight: float) -> float:
    """``d mean / d total``: ``1 / total_weight``, and 0.0 when it is 0 (a zero gradient)."""
    return 1.0 / total_weight if total_weight != 0 else 0.0


def resolve_eps(eps: Any, dtype: Any, *, finfo: Any = np.finfo) -> float:
    """``"auto"`` -> the machine epsilon of ``dtype``; a number in [0, 0.5) -> itself as a float.

    ``finfo`` is the array library's (``xp.finfo``) when ``dtype`` is not a NumPy dtype.
    Anything else is a ValueError (a bad string or range) or a TypeError naming ``eps``.
    """
    if isinstance(eps, str):
        if eps != "auto":
            raise ValueError(f"`eps` must be 'auto' or a number in [0, 0.5), got {eps!r}")
        return float(finfo(dtype).eps)
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.integer, np.floating)):
        raise TypeError(f"`eps` must be 'auto' or a number in [0, 0.5), got {eps!r}")
    value = float(eps)
    if not (0.0 <= value < 0.5 and math.isfinite(value)):
        raise ValueError(f"`eps` must be 'auto' or a number in [0, 0.5), got {eps!r}")
    return value
