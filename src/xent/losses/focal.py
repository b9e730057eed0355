"""Focal cross-entropy (Lin et al. 2017): binary (torchvision / optax form) and categorical."""

from __future__ import annotations

from typing import Any, Literal, overload

from xent._lib.namespace import as_float_array, get_namespace
from xent._lib.typing import Array, ArrayLike, Eps, Reduction
from xent._lib.validation import (
    check_fraction,
    check_nonnegative_scalar,
    check_scalar_option,
    check_shape,
    check_values_in,
)
from xent.losses._binary_core import binary_core
from xent.losses._categorical_core import categorical_core
from xent.losses._common import finish, prepare_weights
from xent.losses.binary import prepare_binary
from xent.losses.categorical import prepare_categorical

__all__ = ["binary_focal_cross_entropy", "categorical_focal_cross_entropy"]


def _scalar_option(name: str, value: Any, check: Any, like: Any, xp: Any) -> Any:
    """A checked float, or a traced 0-d array that takes the predictions' dtype and device."""
    v = check_scalar_option(name, value, check)
    return v if isinstance(v, float) else as_float_array(v, xp, like=like, name=name)


@overload
def binary_focal_cross_entropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    /,
    *,
    gamma: ArrayLike = 2.0,
    alpha: ArrayLike | None = None,
    from_logits: bool = False,
    weights: ArrayLike | None = None,
    pos_weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    base: float | None = None,
    return_grad: Literal[False] = False,
    eps: Eps = "auto",
) -> Array: ...


@overload
def binary_focal_cross_entropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    /,
    *,
    gamma: ArrayLike = 2.0,
    alpha: ArrayLike | None = None,
    from_logits: bool = False,
    weights: ArrayLike | None = None,
    pos_weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    base: float | None = None,
    return_grad: Literal[True],
    eps: Eps = "auto",
) -> tuple[Array, Array]: ...


def binary_focal_cross_entropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    /,
    *,
    gamma: ArrayLike = 2.0,
    alpha: ArrayLike | None = None,
    from_logits: bool = False,
    weights: ArrayLike | None = None,
    pos_weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    base: float | None = None,
    return_grad: bool = False,
    eps: Eps = "auto",
) -> Array | tuple[Array, Array]:
    r"""Binary focal cross-entropy: cross-entropy scaled down on well-classified elements.

    With smoothed targets :math:`y' = y(1-e) + e/2`, :math:`p` the predicted
    probability, :math:`p_t = p\,y' + (1-p)(1-y')` and the binary cross-entropy
    :math:`\mathrm{CE} = -[w_+ y' \log p + (1-y')\log(1-p)]`,

    .. math:: \ell_i = \alpha_t\, (1 - p_t)^{\gamma}\, \mathrm{CE}_i,
              \qquad \alpha_t = \alpha y' + (1-\alpha)(1-y')

    and :math:`\alpha_t = 1` when ``alpha`` is None. Reductions as in
    :func:`xent.binary_cross_entropy` (``"mean"`` = :math:`\sum s_i\ell_i/\sum s_i`).

    Parameters
    ----------
    y_true, y_pred : arrays of one shape S
        Targets in [0, 1]; probabilities, or logits with ``from_logits=True``.
    gamma : float >= 0, or a 0-d array
        Focusing parameter; 0 gives (alpha-weighted) binary cross-entropy. A traced 0-d
        array (``jax.jit``, ``jax.grad``) or a torch tensor with ``requires_grad`` is used
        as is, unchecked, so the loss stays jittable and differentiable in ``gamma``.
    alpha : float in [0, 1] or a 0-d array, optional
        Weight of positives (negatives get ``1 - alpha``), as in torchvision; None: no
        balancing. Traced like ``gamma``.
    from_logits, weights, pos_weight, label_smoothing, reduction, base, return_grad, eps
        As in :func:`xent.binary_cross_entropy`.

    Returns
    -------
    loss : scalar or array of shape S; grad : array of shape S with ``return_grad=True``.

    Notes
    -----
    * Without ``pos_weight``/smoothing and with ``reduction="none"`` this equals
      torchvision ``sigmoid_focal_loss`` and optax ``sigmoid_focal_loss`` (whose
      default is ``alpha=None`` too; torchvision's default is 0.25).
    * ``1 - p_t`` is computed from :math:`\sigma(z)` and :math:`\sigma(-z)` separately,
      so it does not cancel to 0 for confident predictions.
    * Keras ``BinaryFocalCrossentropy`` applies ``alpha`` only when
      ``apply_class_balancing=True`` and averages over the last axis.

    References
    ----------
    .. [1] T.-Y. Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.

    Examples
    --------
    >>> import numpy as np, xent
    >>> y = np.array([1.0, 0.0])
    >>> p = np.array([0.9, 0.4])
    >>> round(float(xent.binary_focal_cross_entropy(y, p, gamma=2.0, reduction="sum")), 6)
    0.082786
    >>> bool(np.isclose(xent.binary_focal_cross_entropy(y, p, gamma=0.0), xent.binary_cross_entropy(y, p)))
    True
    """
    get_namespace(y_true, y_pred, gamma, alpha, names=("y_true", "y_pred", "gamma", "alpha"))
    a = prepare_binary(
        y_true, y_pred, weights, pos_weight, from_logits=from_logits, reduction=reduction, base=base,
        label_smoothing=label_smoothing, return_grad=return_grad, eps=eps,
    )
    focusing = _scalar_option("gamma", gamma, check_nonnegative_scalar, a.predictions, a.xp)
    balance = None if alpha is None else _scalar_option("alpha", alpha, check_fraction, a.predictions, a.xp)
    out = binary_core(
        a.targets, a.predictions, a.xp, from_logits=a.from_logits, eps=a.eps, pos_weight=a.pos_weight,
        label_smoothing=a.label_smoothing, sample_weights=a.sample_weights, reduction=a.reduction,
        return_grad=a.return_grad, gamma=focusing, alpha=balance,
    )
    return finish(out[0], out[1], a.xp, base=a.base, return_grad=a.return_grad, dtype=a.dtype)


@overload
def categorical_focal_cross_entropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    /,
    *,
    gamma: ArrayLike = 2.0,
    alpha: ArrayLike | None = None,
    from_logits: bool = False,
    axis: int = -1,
    class_weights: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    base: float | None = None,
    return_grad: Literal[False] = False,
    eps: Eps = "auto",
) -> Array: ...


@overload
def categorical_focal_cross_entropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    /,
    *,
    gamma: ArrayLike = 2.0,
    alpha: ArrayLike | None = None,
    from_logits: bool = False,
    axis: int = -1,
    class_weights: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    base: float | None = None,
    return_grad: Literal[True],
    eps: Eps = "auto",
) -> tuple[Array, Array]: ...


def categorical_focal_cross_entropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    /,
    *,
    gamma: ArrayLike = 2.0,
    alpha: ArrayLike | None = None,
    from_logits: bool = False,
    axis: int = -1,
    class_weights: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    base: float | None = None,
    return_grad: bool = False,
    eps: Eps = "auto",
) -> Array | tuple[Array, Array]:
    r"""Categorical focal cross-entropy of target distributions and predicted distributions.

    With targets :math:`t` (one-hot or soft), :math:`q = (1-e)t + e/C`, class
    weights :math:`w_c` and per-class factors :math:`\alpha_c` (``alpha``),

    .. math:: \ell_i = -\sum_c \alpha_c\, w_c\, q_{ic}\, (1 - p_{ic})^{\gamma} \log p_{ic}

    ``"mean"`` divides :math:`\sum_i s_i\ell_i` by :math:`\sum_i s_i c_i` with
    :math:`c_i = \sum_c w_c t_{ic}`, as in :func:`xent.categorical_cross_entropy`:
    class weights enter the normaliser, ``alpha`` does not.

    Parameters
    ----------
    y_true, y_pred : arrays of one shape S = (..., C, ...)
        Targets in [0, 1]; probabilities, or logits with ``from_logits=True``.
    gamma : float >= 0, or a 0-d array
        Focusing parameter; 0 gives :func:`xent.categorical_cross_entropy` (times ``alpha``).
        May be traced, as in :func:`xent.binary_focal_cross_entropy`.
    alpha : float >= 0, 0-d array or array of shape (C,), optional
        A scale for every class, or one per class; None means 1.
    from_logits, axis, class_weights, weights, label_smoothing, reduction, base, return_grad, eps
        As in :func:`xent.categorical_cross_entropy`.

    Returns
    -------
    loss : scalar, or array of S without ``axis`` for ``"none"``; grad : array of shape S.

    Notes
    -----
    * Keras 3 ``CategoricalFocalCrossentropy(alpha=0.25, gamma=2.0)`` is this formula
      with a scalar ``alpha``, after renormalising and clipping probabilities at 1e-7.
    * :math:`1 - p` is computed as ``-expm1(log_softmax(z))`` on the logits path,
      exact when :math:`p` is close to 1.

    References
    ----------
    .. [1] T.-Y. Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017.

    Examples
    --------
    >>> import numpy as np, xent
    >>> t = np.array([[0.0, 1.0, 0.0]])
    >>> p = np.array([[0.1, 0.8, 0.1]])
    >>> round(float(xent.categorical_focal_cross_entropy(t, p, gamma=2.0)), 6)  # 0.2**2 * -log(0.8)
    0.008926
    """
    xp = get_namespace(
        y_true, y_pred, class_weights, weights, alpha, names=("y_true", "y_pred", "class_weights", "weights", "alpha")
    )
    a = prepare_categorical(
        y_pred, class_weights, weights, xp, axis=axis, from_logits=from_logits, reduction=reduction,
        base=base, label_smoothing=label_smoothing, return_grad=return_grad, eps=eps,
    )
    x = a.predictions
    focusing = _scalar_option("gamma", gamma, check_nonnegative_scalar, x, xp)
    if alpha is None or getattr(alpha, "ndim", 0) == 0:
        factors = None if alpha is None else _scalar_option("alpha", alpha, check_nonnegative_scalar, x, xp)
    else:
        per_class = as_float_array(alpha, xp, like=x, name="alpha")
        check_shape("alpha", per_class, (a.n_classes,), what="a float or one factor per class")
        factors = prepare_weights("alpha", per_class, xp, like=x, shape=(a.n_classes,), what="one per class")
    t = as_float_array(y_true, xp, like=x, name="y_true")
    check_shape("y_true", t, tuple(x.shape), what="the shape of `y_pred`")
    check_values_in("y_true", t, xp, low=0.0, high=1.0, what="targets")
    out = categorical_core(
        t, x, xp, axis=a.axis, from_logits=a.from_logits, eps=a.eps, class_weights=a.class_weights,
        label_smoothing=a.label_smoothing, sample_weights=a.sample_weights, keep=None, reduction=a.reduction,
        return_grad=a.return_grad, gamma=focusing, alpha=factors,
    )
    return finish(out[0], out[1], xp, base=a.base, return_grad=a.return_grad, dtype=a.dtype)
