"""Per-example softmax (focal) cross-entropy and its analytic gradient, in nats.

For a target distribution ``t`` along the class axis (one-hot for sparse labels),
smoothing ``e``, ``C`` classes, class weights ``w`` and per-class factor ``alpha``::

    q = (1 - e) t + e / C,   a_c = alpha_c w_c q_c
    l = -sum_c a_c (1 - p_c)^gamma log p_c          (gamma = 0: plain cross-entropy)
    normaliser weight c = sum_c w_c t_c             (class_weights only; alpha never enters it)

``log p = log_softmax(z)`` on the logits path, ``log(clip(p))`` otherwise.

:func:`sparse_core` is the same loss for integer labels ``y`` (gamma = 0) without
the one-hot: ``l = -(1 - e) w_y log p_y - e/C sum_c w_c log p_c`` and, on logits,
``dl/dz = p sum_c a_c - a`` with ``a = where(c == y, (1 - e) w_y, 0) + e/C w``.
"""

from __future__ import annotations

from typing import Any

from xent._lib.namespace import device_of, scalar
from xent._lib.rules import smooth_targets
from xent.losses._binary_core import focal_power, focal_power_derivative, is_zero
from xent.losses._common import clip_probabilities, log_probabilities, safe_div, safe_mul
from xent.losses._reduce import reduce_losses
from xent.primitives import _log_softmax, _softmax, _softmax_parts

__all__ = ["categorical_core", "class_vector", "sparse_core"]


def class_vector(v: Any, ndim: int, axis: int, xp: Any) -> Any:
    """Reshape a per-class vector so that it broadcasts along ``axis`` of an ``ndim``-d array."""
    if v is None:
        return None
    shape = tuple(v.shape[0] if d == axis else 1 for d in range(ndim))
    return xp.reshape(v, shape)


def _log_p(x: Any, xp: Any, *, axis: int, from_logits: bool, eps: float) -> tuple[Any, Any, Any]:
    """Return ``(x, log p, inside)``: ``x`` clipped on the probability path, ``inside`` as in clip_probabilities."""
    if from_logits:
        return x, _log_softmax(x, axis, xp), None
    x, inside = clip_probabilities(x, eps, xp)
    return x, log_probabilities(x, xp, eps=eps, complement=False)[0], inside


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
    gamma: Any = 0.0,
    alpha: Any = None,
) -> tuple[Any, Any]:
    """Return ``(reduced loss, gradient or None)`` in nats.

    ``class_weights`` and ``alpha`` are None, a scalar (alpha only: a float or a traced
    0-d array) or a length-C vector; ``gamma`` is a float or a traced 0-d array; ``keep``
    is None or a boolean mask over examples.
    """
    ndim, n_classes = x.ndim, x.shape[axis]
    smoothed = smooth_targets(t, label_smoothing, n_classes)  # q
    class_w = class_vector(class_weights, ndim, axis, xp)
    # a_c = alpha_c w_c q_c: the weight of log p_c in the loss
    target_weight = smoothed if class_w is None else smoothed * class_w
    norm = None if class_w is None else xp.sum(t * class_w, axis=axis)  # c = sum_c w_c t_c (unsmoothed)
    if alpha is not None:
        alpha_c = alpha if isinstance(alpha, float) or alpha.ndim == 0 else class_vector(alpha, ndim, axis, xp)
        target_weight = target_weight * alpha_c
    x, logp, inside = _log_p(x, xp, axis=axis, from_logits=from_logits, eps=eps)
    focal = not is_zero(gamma)
    if focal:
        # softmax itself, not exp(log_softmax): keeps p's relative accuracy when logits are huge.
        p = _softmax(x, axis, xp) if from_logits else x
        # -expm1(log p) is 1 - p without cancellation when p is close to 1.
        one_minus_p = -xp.expm1(logp) if from_logits else 1.0 - x
        modulator = focal_power(one_minus_p, gamma, xp)  # (1 - p)^gamma
        per = -xp.sum(safe_mul(target_weight * modulator, logp, xp), axis=axis)
    else:
        per = -xp.sum(safe_mul(target_weight, logp, xp), axis=axis)
    result, scale = reduce_losses(
        per, xp, reduction=reduction, sample_weights=sample_weights, norm_weights=norm, keep=keep
    )
    if not return_grad:
        return result, None
    if focal:
        modulator_slope = focal_power_derivative(one_minus_p, gamma, xp)  # -d(1 - p)^gamma / dp
        if from_logits:
            # u_c = a_c [(1 - p_c)^gamma - gamma (1 - p_c)^(gamma - 1) p_c log p_c]; dl/dz = p sum(u) - u.
            u = target_weight * (modulator - modulator_slope * safe_mul(p, logp, xp))
            grad = p * xp.sum(u, axis=axis, keepdims=True) - u
        else:
            grad = (safe_mul(target_weight * modulator_slope, logp, xp)
                    - safe_div(target_weight * modulator, x, xp))
    elif from_logits:
        # d/dz of -sum_c a_c log_softmax(z)_c is p sum(a) - a.
        grad = _softmax(x, axis, xp) * xp.sum(target_weight, axis=axis, keepdims=True) - target_weight
    else:
        grad = -safe_div(target_weight, x, xp)
    if inside is not None:
        # Clipped entries have derivative 0 (see clip_probabilities).
        grad = xp.where(inside, grad, xp.zeros_like(grad))
    row_scale = xp.expand_dims(scale, axis=axis)  # d result / d l_i
    grad = safe_mul(row_scale, grad, xp)  # a zero-weight example's infinite gradient is 0, not NaN
    return result, grad


def sparse_core(
    labels: Any,
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
) -> tuple[Any, Any]:
    """:func:`categorical_core` (gamma = 0) on the one-hot of integer ``labels``, never building it.

    Only reductions over the class axis, a gather of ``log p_y`` and a boolean
    ``c == y`` mask in the gradient: no float N x C target, no scatter. Labels
    outside ``[0, C)`` (ignored, or unchecked under jit) have no true-class term,
    as their all-zero one-hot row would give.
    """
    e, n_classes = label_smoothing, x.shape[axis]
    valid = (labels >= 0) & (labels < n_classes)
    # Out-of-range labels gather class 0; their true-class weight is zeroed below.
    safe = xp.expand_dims(xp.where(valid, labels, xp.zeros_like(labels)), axis=axis)
    zero = scalar(0.0, x, xp)
    if class_weights is None:
        w, w_y, norm = None, scalar(1.0, x, xp), None
    else:
        w = class_vector(class_weights, x.ndim, axis, xp)
        # xp.take wants 1-d indices (torch's index_select): gather from the flattened labels.
        w_y = xp.reshape(xp.take(class_weights, xp.reshape(safe, (-1,))), labels.shape)
        norm = xp.where(valid, w_y, zero)
    # Weight of log p_y, 0 for ignored examples too: their placeholder loss (and its autograd) stays finite.
    ok = valid if keep is None else valid & keep
    a_y = xp.where(ok, (1.0 - e) * w_y, zero)
    if from_logits:
        # log p = shifted - lse with shifted = z - max(z): gather and reduce `shifted`
        # instead of materialising log_softmax, and keep exp(shifted) for the gradient.
        _, shifted, exp_shifted, rest = _softmax_parts(x, axis, xp)
        lse = xp.log1p(rest)
        logp_y = xp.squeeze(xp.take_along_axis(shifted, safe, axis=axis) - lse, axis=axis)
        per = -safe_mul(a_y, logp_y, xp)
        if e != 0.0:
            # e/C sum_c w_c (lse - shifted_c): both parts >= 0 (shifted <= 0), so no cancellation.
            w_sum = n_classes if w is None else xp.sum(class_weights)
            w_shift = xp.sum(shifted if w is None else safe_mul(w, shifted, xp), axis=axis, keepdims=True)
            per = per - (e / n_classes) * xp.squeeze(w_shift - w_sum * lse, axis=axis)
        del shifted
    else:
        x, logp, inside = _log_p(x, xp, axis=axis, from_logits=False, eps=eps)
        logp_y = xp.squeeze(xp.take_along_axis(logp, safe, axis=axis), axis=axis)
        per = -safe_mul(a_y, logp_y, xp)
        if e != 0.0:
            # e/C sum_c w_c (-log p_c): the smoothing term as a reduction.
            smooth = xp.sum(logp if w is None else safe_mul(w, logp, xp), axis=axis)
            per = per - (e / n_classes) * smooth
        del logp  # the gradient below never needs it: keep one N x C array less alive
    result, scale = reduce_losses(
        per, xp, reduction=reduction, sample_weights=sample_weights, norm_weights=norm, keep=keep
    )
    if not return_grad:
        return result, None
    is_label = safe == class_vector(xp.arange(n_classes, device=device_of(x)), x.ndim, axis, xp)  # c == y
    share = e / n_classes if e != 0.0 else 0.0  # e / C: the smoothing mass of each class
    smoothing_weight = share * (scalar(1.0, x, xp) if w is None else w)  # e/C w_c: every class's target weight
    # Fold d result / d l_i into the per-example weights now: each N x C pass costs a fresh array.
    row_scale = xp.expand_dims(scale, axis=axis)
    label_weight = xp.expand_dims(a_y, axis=axis) * row_scale  # (1 - e) w_y, scaled
    # target weight a_c = scale (e/C w_c + [c == y] (1 - e) w_y): the one-hot only exists as `is_label`.
    target_weight = xp.where(is_label, label_weight + smoothing_weight * row_scale, smoothing_weight * row_scale)
    if from_logits:
        # d/dz of -sum_c a_c log_softmax(z)_c is p sum_c(a_c) - a: sum_c a_c = scale ((1 - e) w_y + e/C sum_c w_c).
        target_mass = label_weight + row_scale * (e if w is None else share * xp.sum(class_weights))
        # softmax = exp(shifted) / (1 + rest): reuse the forward's exp, one N x C pass less.
        grad = exp_shifted * (target_mass / (1.0 + rest)) - target_weight
    else:
        grad = -safe_div(target_weight, x, xp)
        if inside is not None:
            grad = xp.where(inside, grad, zero)  # clipped entries have derivative 0 (see clip_probabilities)
    # Rows with scale 0 (ignored, zero weight, empty mean) are 0 even where p is not finite.
    return result, xp.where(row_scale != 0, grad, zero)
