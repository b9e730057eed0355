"""The one weighted reduction every loss goes through.

For per-example losses ``l_i``, sample weights ``s_i`` (1 when absent),
normaliser weights ``c_i`` (the class weight of the true class; 1 when absent)
and a keep mask ``k_i`` (0 for ignored examples):

- ``"none"``: ``s_i k_i l_i`` per example;
- ``"sum"``:  ``sum_i s_i k_i l_i``;
- ``"mean"``: ``sum_i s_i k_i l_i / sum_i s_i k_i c_i``, and 0 when that total weight is 0
  (every example ignored, or all weights zero), with a zero gradient.

Sums accumulate in float64 (see :func:`accumulate_sum`). :func:`reduce_losses`
also returns the per-example factor ``d result / d l_i`` that gradients are scaled by.
"""

from __future__ import annotations

from typing import Any

from xent._lib.namespace import accumulate_sum
from xent._lib.typing import Reduction
from xent.primitives import _safe_mul

__all__ = ["Reduction", "reduce_losses"]


def reduce_losses(
    losses: Any,
    xp: Any,
    *,
    reduction: str,
    sample_weights: Any = None,
    norm_weights: Any = None,
    keep: Any = None,
) -> tuple[Any, Any]:
    """Reduce per-example ``losses``; return ``(result, dresult_dloss)``.

    ``dresult_dloss`` has the shape of ``losses`` and the loss dtype. Ignored and
    zero-weight examples are zeroed here, an infinite loss too (no NaN, no warning);
    give ignored examples a finite placeholder so that autograd through it stays finite.
    """
    dtype = losses.dtype
    w = xp.ones_like(losses) if sample_weights is None else xp.astype(sample_weights, dtype)
    if keep is not None:
        w = xp.where(keep, w, xp.zeros_like(w))
    # An ignored or zero-weight example's infinite loss must not leak inf * 0 = NaN (nor warn),
    # while d weighted / d w stays the loss, also where w == 0.
    weighted = _safe_mul(w, losses, xp)
    if reduction == "none":
        return weighted, w
    total = accumulate_sum(weighted, xp)
    if reduction == "sum":
        return xp.astype(total, dtype), w
    denom_terms = w if norm_weights is None else w * xp.astype(norm_weights, dtype)
    denom = accumulate_sum(denom_terms, xp)
    empty = denom == 0
    # All-ignored or zero total weight: the mean is defined as 0 with a zero gradient.
    safe = xp.where(empty, xp.ones_like(denom), denom)
    result = xp.where(empty, xp.zeros_like(total), total / safe)
    scale = xp.where(empty, xp.zeros_like(w), w / xp.astype(safe, dtype))
    return xp.astype(result, dtype), scale
