"""Binary cross-entropy (log loss) on probabilities or logits."""

from __future__ import annotations

from typing import Any, Literal, overload

from xent import engine
from xent._lib.namespace import as_float_array, compute_dtype, get_namespace
from xent._lib.typing import Array, ArrayLike, Eps, Reduction
from xent._lib.validation import check_shape, check_values_in, warn_if_swapped
from xent.losses._binary_core import binary_core
from xent.losses._common import (
    BinaryInputs,
    check_flag,
    check_loss_options,
    finish,
    prepare_weights,
    resolve_eps,
)

__all__ = ["binary_cross_entropy"]


def prepare_binary(
    y_true: Any,
    y_pred: Any,
    weights: Any,
    pos_weight: Any,
    *,
    from_logits: bool,
    reduction: Any,
    base: Any,
    label_smoothing: Any,
    return_grad: Any,
    eps: Any,
) -> BinaryInputs:
    """Validate the arguments binary losses share; return them as arrays of one library."""
    xp = get_namespace(y_true, y_pred, weights, pos_weight, names=("y_true", "y_pred", "weights", "pos_weight"))
    reduction, base, e = check_loss_options(reduction=reduction, base=base, label_smoothing=label_smoothing)
    from_logits = check_flag("from_logits", from_logits)
    return_grad = check_flag("return_grad", return_grad)
    x = as_float_array(y_pred, xp, name="y_pred")
    eps_v = resolve_eps(eps, x, xp)  # the input dtype's epsilon, also for half precision
    x, dtype = compute_dtype(x, xp)
    y = as_float_array(y_true, xp, like=x, name="y_true")
    check_shape("y_true", y, tuple(x.shape), what="the shape of `y_pred`")
    check_values_in("y_true", y, xp, low=0.0, high=1.0, what="targets")
    if not from_logits:
        check_values_in("y_pred", x, xp, low=0.0, high=1.0, what="probabilities")
        # Probabilities only: logits of exactly 0 and 1 are ordinary values (p = 0.5, 0.73).
        warn_if_swapped(y, x, xp, stacklevel=3)  # the caller of the public loss
    shape = tuple(x.shape)
    sample_weights = prepare_weights("weights", weights, xp, like=x, shape=shape,
                                     what="one weight per element of `y_pred`")
    checked_pos_weight = prepare_weights("pos_weight", pos_weight, xp, like=x, shape=shape,
                                         what="the shape of `y_pred`")
    return BinaryInputs(
        xp=xp, targets=y, predictions=x, sample_weights=sample_weights, pos_weight=checked_pos_weight,
        label_smoothing=e, eps=eps_v, from_logits=from_logits, reduction=reduction, base=base,
        return_grad=return_grad, dtype=dtype,
    )


@overload
def binary_cross_entropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    /,
    *,
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
def binary_cross_entropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    /,
    *,
    from_logits: bool = False,
    weights: ArrayLike | None = None,
    pos_weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    base: float | None = None,
    return_grad: Literal[True],
    eps: Eps = "auto",
) -> tuple[Array, Array]: ...


def binary_cross_entropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    /,
    *,
    from_logits: bool = False,
    weights: ArrayLike | None = None,
    pos_weight: ArrayLike | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    base: float | None = None,
    return_grad: bool = False,
    eps: Eps = "auto",
) -> Array | tuple[Array, Array]:
    r"""Binary cross-entropy (log loss) of targets ``y_true`` and predictions ``y_pred``.

    Every element is one example. With smoothed targets :math:`y' = y(1-e) + e/2`,
    positive weight :math:`w_+` (``pos_weight``, default 1) and :math:`p` the
    predicted probability of the positive class,

    .. math:: \ell_i = -\left[w_+\, y'_i \log p_i + (1 - y'_i) \log(1 - p_i)\right]

    and, with sample weights :math:`s_i` (``weights``, default 1),
    ``"mean"`` is :math:`\sum_i s_i \ell_i / \sum_i s_i`, ``"sum"`` is
    :math:`\sum_i s_i \ell_i` and ``"none"`` returns :math:`s_i \ell_i`.

    Parameters
    ----------
    y_true : array, any shape S
        Targets in [0, 1] (hard 0/1 labels or soft probabilities). Integers and
        booleans are accepted.
    y_pred : array, shape S
        Probabilities in [0, 1], or logits when ``from_logits=True``.
    from_logits : bool
        Treat ``y_pred`` as logits :math:`z`, :math:`p = \sigma(z)`. This path uses
        :math:`\log\sigma(z)` and :math:`\log\sigma(-z)`, so loss and gradient are
        finite for any finite logit.
    weights : array broadcastable to S, optional
        Non-negative sample weights :math:`s_i`.
    pos_weight : float or array broadcastable to S, optional
        Non-negative weight of the positive term (PyTorch's ``pos_weight``; a
        shape ``(K,)`` array weights each of K labels of a multi-label problem).
    label_smoothing : float in [0, 1]
        :math:`e`; targets become :math:`y(1-e) + e/2`.
    reduction : {"mean", "sum", "none"}
    base : float, optional
        Log base: None for nats, 2 for bits; any finite base > 0 other than 1.
    return_grad : bool
        Also return :math:`\partial\,\mathrm{loss}/\partial\,y_{pred}` (with respect
        to the logits when ``from_logits=True``).
    eps : "auto" or float
        Probabilities are clipped to ``[eps, 1 - eps]``; ``"auto"`` is the machine
        epsilon of ``y_pred``'s dtype, ``0.0`` gives the exact value (``inf`` when
        the true class has probability 0). Ignored for logits.

    Returns
    -------
    loss : scalar or array of shape S
        A NumPy scalar for NumPy inputs with ``"mean"``/``"sum"``; otherwise an
        array of ``y_pred``'s library, dtype and device.
    grad : array of shape S
        Only with ``return_grad=True``: same shape, dtype and library as ``y_pred``,
        the gradient of the returned loss (for ``"none"``, of its sum), in ``base``.

    Notes
    -----
    * Clipping: the gradient is taken through the clip, so it is 0 for
      probabilities strictly outside ``[eps, 1 - eps]`` and the unclipped formula
      inside (bounds included), exactly what torch autograd or ``jax.grad`` give
      through this function.
    * ``"mean"`` with weights divides by the total weight (scikit-learn's
      ``log_loss(sample_weight=...)``); PyTorch's ``binary_cross_entropy(weight=...)``
      divides by the number of elements instead; without weights they agree.
    * Keras ``binary_crossentropy`` clips at 1e-7 and averages over the last axis
      first; optax ``sigmoid_binary_cross_entropy`` does not reduce.
    * Under ``jax.jit`` / ``torch.compile`` the checks that read values (targets
      in [0, 1], non-negative weights) are skipped.

    References
    ----------
    .. [1] C. M. Bishop, *Pattern Recognition and Machine Learning*, 2006, sec. 4.3.2.
    .. [2] PyTorch, ``torch.nn.BCEWithLogitsLoss`` (``pos_weight``).

    Examples
    --------
    >>> import numpy as np, xent
    >>> y = np.array([1, 0, 1])
    >>> p = np.array([0.9, 0.2, 0.6])
    >>> round(float(xent.binary_cross_entropy(y, p)), 6)
    0.279777
    >>> round(float(xent.binary_cross_entropy(y, np.log(p / (1 - p)), from_logits=True)), 6)
    0.279777
    >>> loss, grad = xent.binary_cross_entropy(y, np.zeros(3), from_logits=True, return_grad=True)
    >>> np.round(grad, 4)  # (sigmoid(z) - y) / N
    array([-0.1667,  0.1667, -0.1667])
    """
    a = prepare_binary(
        y_true, y_pred, weights, pos_weight, from_logits=from_logits, reduction=reduction, base=base,
        label_smoothing=label_smoothing, return_grad=return_grad, eps=eps,
    )
    out = None
    if a.from_logits:  # large NumPy logits: the engine; None means the reference below
        out = engine.binary_cross_entropy(
            a.targets, a.predictions, weights=a.sample_weights, pos_weight=a.pos_weight,
            label_smoothing=a.label_smoothing, reduction=a.reduction, return_grad=a.return_grad,
        )
    if out is None:
        out = binary_core(
            a.targets, a.predictions, a.xp, from_logits=a.from_logits, eps=a.eps, pos_weight=a.pos_weight,
            label_smoothing=a.label_smoothing, sample_weights=a.sample_weights, reduction=a.reduction,
            return_grad=a.return_grad,
        )
    return finish(out[0], out[1], a.xp, base=a.base, return_grad=a.return_grad, dtype=a.dtype)
