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

from xent._lib.namespace import scalar
from xent._lib.rules import smooth_binary_targets
from xent.losses._common import clip_probabilities, log_probabilities, safe_div, safe_mul
from xent.losses._reduce import reduce_losses
from xent.primitives import _log_sigmoid, _sigmoid

__all__ = ["binary_core", "focal_power", "focal_power_derivative", "is_zero"]


def _power_at_zero(exponent: Any, like: Any, xp: Any) -> Any:
    """The value ``focal_power`` and its derivative take where ``1 - p_t == 0``: 1 where the
    exponent is 0 (``0^0 = 1``) and 0 otherwise; ``exponent`` is a float or a traced 0-d array."""
    if isinstance(exponent, float):
        return scalar(1.0 if exponent == 0.0 else 0.0, like, xp)
    return xp.where(exponent == 0, scalar(1.0, like, xp), scalar(0.0, like, xp))


def focal_power(one_minus_pt: Any, gamma: Any, xp: Any) -> Any:
    """``(1 - p_t)^gamma``, with a zero derivative where ``1 - p_t == 0``.

    Double where: the power only ever sees positive values, so autograd never forms
    ``gamma 0^(gamma - 1) = inf`` (0 < gamma < 1) times a zero loss factor, which is NaN.
    The true derivative of the loss is 0 there (``p_t = 1``: the loss is flat).
    """
    pos = one_minus_pt > 0
    safe = xp.where(pos, one_minus_pt, xp.ones_like(one_minus_pt))
    return xp.where(pos, safe**gamma, _power_at_zero(gamma, one_minus_pt, xp))


def focal_power_derivative(one_minus_pt: Any, gamma: Any, xp: Any) -> Any:
    """``gamma (1 - p_t)^(gamma - 1)``; where ``1 - p_t == 0`` it is 1 for gamma == 1 and 0 otherwise.

    0 stands in for the infinite value at gamma < 1: that case only arises where
    ``1 - p_t`` is 0, i.e. where the loss factor it multiplies (or dp/dz) is 0 too.
    """
    pos = one_minus_pt > 0
    safe = xp.where(pos, one_minus_pt, xp.ones_like(one_minus_pt))
    return xp.where(pos, gamma * safe ** (gamma - 1.0), gamma * _power_at_zero(gamma - 1.0, one_minus_pt, xp))


def is_zero(gamma: Any) -> bool:
    """True for a plain ``gamma == 0`` (no focusing); a traced 0-d array is never taken as 0."""
    return isinstance(gamma, float) and gamma == 0.0


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
    gamma: Any = 0.0,
    alpha: Any = None,
) -> tuple[Any, Any]:
    """Return ``(reduced loss, gradient or None)`` in nats for targets ``y`` and predictions ``x``.

    ``gamma`` and ``alpha`` are floats or (traced) 0-d arrays of ``x``'s dtype.
    """
    smoothed = smooth_binary_targets(y, label_smoothing)  # y'
    positive = smoothed if pos_weight is None else smoothed * pos_weight  # A = pw y': the weight of log p
    negative = 1.0 - smoothed  # B = 1 - y': the weight of log(1 - p)
    if from_logits:
        # log(1 - sigmoid(z)) == log_sigmoid(-z): exact for large z, never log(0).
        log_p, log_q = _log_sigmoid(x, xp), _log_sigmoid(-x, xp)
        inside = None
    else:
        x, inside = clip_probabilities(x, eps, xp)
        log_p, log_q = log_probabilities(x, xp, eps=eps)
    ce = -(safe_mul(positive, log_p, xp) + safe_mul(negative, log_q, xp))
    focal = not is_zero(gamma) or alpha is not None
    if focal:
        p = _sigmoid(x, xp) if from_logits else x
        q = _sigmoid(-x, xp) if from_logits else 1.0 - x
        one_minus_pt = p * (1.0 - smoothed) + q * smoothed  # 1 - p_t, from p and 1 - p computed separately
        modulator = xp.ones_like(one_minus_pt) if is_zero(gamma) else focal_power(one_minus_pt, gamma, xp)
        alpha_t = 1.0 if alpha is None else alpha * smoothed + (1.0 - alpha) * (1.0 - smoothed)
        per = alpha_t * ce * modulator
    else:
        per = ce
    result, scale = reduce_losses(per, xp, reduction=reduction, sample_weights=sample_weights)
    if not return_grad:
        return result, None
    if from_logits:
        p = _sigmoid(x, xp) if not focal else p
        q = _sigmoid(-x, xp) if not focal else q
        # d/dz log sigmoid(z) = 1 - p, d/dz log sigmoid(-z) = -p.
        dce = negative * p - positive * q
        dp_dx = p * q
    else:
        dce = safe_div(negative, 1.0 - x, xp) - safe_div(positive, x, xp)
        dp_dx = None
    if focal:
        # d (1 - p_t)^gamma / dp = gamma (1 - p_t)^(gamma - 1) (1 - 2 y')
        modulator_slope = (None if is_zero(gamma)
                           else focal_power_derivative(one_minus_pt, gamma, xp) * (1.0 - 2.0 * smoothed))
        grad = dce * modulator
        if modulator_slope is not None:
            grad = grad + safe_mul(modulator_slope if dp_dx is None else modulator_slope * dp_dx, ce, xp)
        grad = alpha_t * grad
    else:
        grad = dce
    if inside is not None:
        # Clipped entries have derivative 0 (see clip_probabilities).
        grad = xp.where(inside, grad, xp.zeros_like(grad))
    grad = safe_mul(scale, grad, xp)  # a zero-weight example's infinite gradient is 0, not NaN
    return result, grad
