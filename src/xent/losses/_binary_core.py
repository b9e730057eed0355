"""Per-element binary (focal) cross-entropy and its analytic gradient, in nats.

With smoothed targets ``y' = y (1 - e) + e / 2``, positive weight ``pw`` and
``A = pw y'``, ``B = 1 - y'``::

    ce = -[A log p + B log(1 - p)]
    focal:  loss = alpha_t * ce * (1 - p_t)^gamma,  1 - p_t = p (1 - y') + (1 - p) y'

``p = sigmoid(z)`` on the logits path (``log p = log_sigmoid(z)``,
``log(1 - p) = log_sigmoid(-z)``) and the clipped probability otherwise.
"""

from __future__ import annotations

from typing import Any

from xent.losses._common import clip_probabilities, log_probabilities, safe_div, safe_mul
from xent.losses._reduce import reduce_losses
from xent.primitives import _log_sigmoid, _sigmoid

__all__ = ["binary_core"]


def _focal_power_derivative(omp: Any, gamma: float, xp: Any) -> Any:
    """gamma * (1 - p_t)^(gamma - 1), with the 0^negative case (gamma < 1) set to 0.

    That case only arises where 1 - p_t underflowed to 0, i.e. where dp/dz is 0 too.
    """
    if gamma >= 1.0:
        return gamma * omp ** (gamma - 1.0)
    pos = omp > 0
    safe = xp.where(pos, omp, xp.ones_like(omp))
    return xp.where(pos, gamma * safe ** (gamma - 1.0), xp.zeros_like(omp))


def binary_core(
    y: Any,
    x: Any,
    xp: Any,
    *,
    from_logits: bool,
    eps: float,
    pos_weight: Any,
    label_smoothing: float,
    sample_weights: Any,
    reduction: str,
    return_grad: bool,
    gamma: float = 0.0,
    alpha: float | None = None,
) -> tuple[Any, Any]:
    """Return ``(reduced loss, gradient or None)`` in nats for targets ``y`` and predictions ``x``."""
    e = label_smoothing
    ys = y if e == 0.0 else y * (1.0 - e) + e / 2.0
    a = ys if pos_weight is None else ys * pos_weight
    b = 1.0 - ys
    if from_logits:
        # log(1 - sigmoid(z)) == log_sigmoid(-z): exact for large z, never log(0).
        log_p, log_q = _log_sigmoid(x, xp), _log_sigmoid(-x, xp)
        inside = None
    else:
        x, inside = clip_probabilities(x, eps, xp)
        log_p, log_q = log_probabilities(x, xp)
    ce = -(safe_mul(a, log_p, xp) + safe_mul(b, log_q, xp))
    focal = gamma != 0.0 or alpha is not None
    if focal:
        p = _sigmoid(x, xp) if from_logits else x
        q = _sigmoid(-x, xp) if from_logits else 1.0 - x
        omp = p * (1.0 - ys) + q * ys  # 1 - p_t, from p and 1 - p computed separately
        mod = omp**gamma if gamma != 0.0 else xp.ones_like(omp)
        alpha_t = 1.0 if alpha is None else alpha * ys + (1.0 - alpha) * (1.0 - ys)
        per = alpha_t * ce * mod
    else:
        per = ce
    result, scale = reduce_losses(per, xp, reduction=reduction, sample_weights=sample_weights)
    if not return_grad:
        return result, None
    if from_logits:
        p = _sigmoid(x, xp) if not focal else p
        q = _sigmoid(-x, xp) if not focal else q
        # d/dz log sigmoid(z) = 1 - p, d/dz log sigmoid(-z) = -p.
        dce = b * p - a * q
        dpdx = p * q
    else:
        dce = safe_div(b, 1.0 - x, xp) - safe_div(a, x, xp)
        dpdx = None
    if focal:
        dmod = _focal_power_derivative(omp, gamma, xp) * (1.0 - 2.0 * ys) if gamma != 0.0 else None
        g = dce * mod
        if dmod is not None:
            g = g + safe_mul(dmod if dpdx is None else dmod * dpdx, ce, xp)
        g = alpha_t * g
    else:
        g = dce
    if inside is not None:
        # Clipped entries have derivative 0 (see clip_probabilities).
        g = xp.where(inside, g, xp.zeros_like(g))
    g = safe_mul(scale, g, xp)  # a zero-weight example's infinite gradient is 0, not NaN
    return result, g
