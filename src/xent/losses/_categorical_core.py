"""Per-example softmax (focal) cross-entropy and its analytic gradient, in nats.

For a target distribution ``t`` along the class axis (one-hot for sparse labels),
smoothing ``e``, ``C`` classes, class weights ``w`` and per-class factor ``alpha``::

    q = (1 - e) t + e / C,   a_c = alpha_c w_c q_c
    l = -sum_c a_c (1 - p_c)^gamma log p_c          (gamma = 0: plain cross-entropy)
    normaliser weight c = sum_c w_c t_c             (class_weights only; alpha never enters it)

``log p = log_softmax(z)`` on the logits path, ``log(clip(p))`` otherwise.
"""

from __future__ import annotations

from typing import Any

from xent.losses._binary_core import _focal_power_derivative
from xent.losses._common import clip_probabilities, log_probabilities, safe_div, safe_mul
from xent.losses._reduce import reduce_losses
from xent.primitives import _log_softmax, _softmax

__all__ = ["categorical_core", "class_vector"]


def class_vector(v: Any, ndim: int, axis: int, xp: Any) -> Any:
    """Reshape a per-class vector so that it broadcasts along ``axis`` of an ``ndim``-d array."""
    if v is None:
        return None
    shape = tuple(v.shape[0] if d == axis else 1 for d in range(ndim))
    return xp.reshape(v, shape)


def categorical_core(
    t: Any,
    x: Any,
    xp: Any,
    *,
    axis: int,
    from_logits: bool,
    eps: float,
    class_weights: Any,
    label_smoothing: float,
    sample_weights: Any,
    keep: Any,
    reduction: str,
    return_grad: bool,
    gamma: float = 0.0,
    alpha: Any = None,
) -> tuple[Any, Any]:
    """Return ``(reduced loss, gradient or None)`` in nats.

    ``class_weights`` and ``alpha`` are None, a Python float (alpha only) or a
    length-C vector; ``keep`` is None or a boolean mask over examples.
    """
    ndim, e = x.ndim, label_smoothing
    n_classes = x.shape[axis]
    q = t if e == 0.0 else t * (1.0 - e) + e / n_classes
    w = class_vector(class_weights, ndim, axis, xp)
    a = q if w is None else q * w
    norm = None if w is None else xp.sum(t * w, axis=axis)
    if alpha is not None:
        a = a * (alpha if isinstance(alpha, float) else class_vector(alpha, ndim, axis, xp))
    if from_logits:
        logp = _log_softmax(x, axis, xp)
        inside = None
    else:
        x, inside = clip_probabilities(x, eps, xp)
        logp = log_probabilities(x, xp)[0]
    if gamma != 0.0:
        # softmax itself, not exp(log_softmax): keeps p's relative accuracy when logits are huge.
        p = _softmax(x, axis, xp) if from_logits else x
        # -expm1(log p) is 1 - p without cancellation when p is close to 1.
        omp = -xp.expm1(logp) if from_logits else 1.0 - x
        mod = omp**gamma
        per = -xp.sum(safe_mul(a * mod, logp, xp), axis=axis)
    else:
        per = -xp.sum(safe_mul(a, logp, xp), axis=axis)
    result, scale = reduce_losses(
        per, xp, reduction=reduction, sample_weights=sample_weights, norm_weights=norm, keep=keep
    )
    if not return_grad:
        return result, None
    if gamma != 0.0:
        dmod = _focal_power_derivative(omp, gamma, xp)  # -d(1 - p)^gamma / dp
        if from_logits:
            # u_c = a_c [(1 - p_c)^gamma - gamma (1 - p_c)^(gamma - 1) p_c log p_c]; dl/dz = p sum(u) - u.
            u = a * (mod - dmod * safe_mul(p, logp, xp))
            g = p * xp.sum(u, axis=axis, keepdims=True) - u
        else:
            g = safe_mul(a * dmod, logp, xp) - safe_div(a * mod, x, xp)
    elif from_logits:
        # d/dz of -sum_c a_c log_softmax(z)_c is p sum(a) - a.
        g = _softmax(x, axis, xp) * xp.sum(a, axis=axis, keepdims=True) - a
    else:
        g = -safe_div(a, x, xp)
    if inside is not None:
        # Clipped entries have derivative 0 (see clip_probabilities).
        g = xp.where(inside, g, xp.zeros_like(g))
    s = xp.expand_dims(scale, axis=axis)
    g = xp.where(s != 0, g * s, xp.zeros_like(g))
    return result, g
