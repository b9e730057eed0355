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


def focal_power(omp: Any, gamma: Any, xp: Any) -> Any:
    """``(1 - p_t)^gamma``, with a zero derivative where ``1 - p_t == 0``.

    Double where: the power only ever sees positive values, so autograd never forms
    ``gamma 0^(gamma - 1) = inf`` (0 < gamma < 1) times a zero loss factor, which is NaN.
    The true derivative of the loss is 0 there (``p_t = 1``: the loss is flat).
    """
    pos = omp > 0
    safe = xp.where(pos, omp, xp.ones_like(omp))
    return xp.where(pos, safe**gamma, _power_at_zero(gamma, omp, xp))


def focal_power_derivative(omp: Any, gamma: Any, xp: Any) -> Any:
    """``gamma (1 - p_t)^(gamma - 1)``; where ``1 - p_t == 0`` it is 1 for gamma == 1 and 0 otherwise.

    0 stands in for the infinite value at gamma < 1: that case only arises where
    ``1 - p_t`` is 0, i.e. where the loss factor it multiplies (or dp/dz) is 0 too.
    """
    pos = omp > 0
    safe = xp.where(pos, omp, xp.ones_like(omp))
    return xp.where(pos, gamma * safe ** (gamma - 1.0), gamma * _power_at_zero(gamma - 1.0, omp, xp))


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
    e = label_smoothing
    ys = smooth_binary_targets(y, e)
    a = ys if pos_weight is None else ys * pos_weight
    b = 1.0 - ys
    if from_logits:
        # log(1 - sigmoid(z)) == log_sigmoid(-z): exact for large z, never log(0).
        log_p, log_q = _log_sigmoid(x, xp), _log_sigmoid(-x, xp)
        inside = None
    else:
        x, inside = clip_probabilities(x, eps, xp)
        log_p, log_q = log_probabilities(x, xp, eps=eps)
    ce = -(safe_mul(a, log_p, xp) + safe_mul(b, log_q, xp))
    focal = not is_zero(gamma) or alpha is not None
    if focal:
        p = _sigmoid(x, xp) if from_logits else x
        q = _sigmoid(-x, xp) if from_logits else 1.0 - x
        omp = p * (1.0 - ys) + q * ys  # 1 - p_t, from p and 1 - p computed separately
        mod = xp.ones_like(omp) if is_zero(gamma) else focal_power(omp, gamma, xp)
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
        dmod = None if is_zero(gamma) else focal_power_derivative(omp, gamma, xp) * (1.0 - 2.0 * ys)
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
