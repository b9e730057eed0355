"""Softmax cross-entropy: categorical (one-hot or soft targets) and sparse (integer labels)."""

from __future__ import annotations

from typing import Any, Literal, overload

from xent import engine
from xent._lib.namespace import as_float_array, compute_dtype, get_namespace
from xent._lib.typing import Array, ArrayLike, Eps, Reduction
from xent._lib.validation import (
    check_index,
    check_integer_dtype,
    check_labels,
    check_shape,
    check_values_in,
    normalize_axis,
)
from xent.losses._categorical_core import categorical_core, sparse_core
from xent.losses._common import (
    CategoricalInputs,
    check_flag,
    check_loss_options,
    finish,
    prepare_weights,
    resolve_eps,
    torch_sparse_cross_entropy,
)

__all__ = ["categorical_cross_entropy", "sparse_categorical_cross_entropy"]


def prepare_categorical(
    y_pred: Any,
    class_weights: Any,
    weights: Any,
    xp: Any,
    *,
    axis: Any,
    from_logits: Any,
    reduction: Any,
    base: Any,
    label_smoothing: Any,
    return_grad: Any,
    eps: Any,
) -> CategoricalInputs:
    """Validate what categorical losses share (everything but the targets)."""
    reduction, base, e = check_loss_options(reduction=reduction, base=base, label_smoothing=label_smoothing)
    from_logits = check_flag("from_logits", from_logits)
    return_grad = check_flag("return_grad", return_grad)
    x = as_float_array(y_pred, xp, name="y_pred")
    if x.ndim == 0:
        raise ValueError("`y_pred` must have at least 1 dimension (the class axis), got a 0-d array")
    ax = normalize_axis(axis, x.ndim)
    if x.shape[ax] == 0:
        raise ValueError(f"`y_pred` must have at least one class along axis {ax}, got shape {tuple(x.shape)}")
    eps_v = resolve_eps(eps, x, xp)  # the input dtype's epsilon, also for half precision
    x, dtype = compute_dtype(x, xp)
    if not from_logits:
        check_values_in("y_pred", x, xp, low=0.0, high=1.0, what="probabilities")
    n_classes = x.shape[ax]
    example_shape = tuple(d for i, d in enumerate(x.shape) if i != ax)
    checked_class_weights = None
    if class_weights is not None:
        cw = as_float_array(class_weights, xp, like=x, name="class_weights")
        check_shape("class_weights", cw, (n_classes,), what=f"one weight per class along axis {ax} of `y_pred`")
        checked_class_weights = prepare_weights("class_weights", cw, xp, like=x, shape=(n_classes,),
                                                what="one per class")
    sample_weights = prepare_weights(
        "weights", weights, xp, like=x, shape=example_shape,
        what="one weight per example: `y_pred` without its class axis",
    )
    return CategoricalInputs(
        predictions=x, axis=ax, class_weights=checked_class_weights, sample_weights=sample_weights,
        label_smoothing=e, eps=eps_v, from_logits=from_logits, reduction=reduction, base=base,
        return_grad=return_grad, example_shape=example_shape, n_classes=n_classes, dtype=dtype,
    )


@overload
def categorical_cross_entropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    /,
    *,
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
def categorical_cross_entropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    /,
    *,
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


def categorical_cross_entropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    /,
    *,
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
    r"""Categorical cross-entropy of target distributions and predicted distributions.

    With targets :math:`t` (one-hot or soft) along the class axis, smoothing
    :math:`e`, :math:`C` classes, class weights :math:`w_c` (default 1) and
    :math:`q = (1-e)\,t + e/C`,

    .. math:: \ell_i = -\sum_c w_c\, q_{ic} \log p_{ic}

    with :math:`p = \mathrm{softmax}(z)` for logits or the clipped probabilities.
    With sample weights :math:`s_i` and normaliser weights
    :math:`c_i = \sum_c w_c t_{ic}` (the *unsmoothed* target; :math:`w_{y_i}` for
    one-hot targets, 1 without class weights), ``"mean"`` is
    :math:`\sum_i s_i \ell_i / \sum_i s_i c_i` (0 when that total weight is 0),
    ``"sum"`` is :math:`\sum_i s_i \ell_i` and ``"none"`` returns :math:`s_i \ell_i`.

    Parameters
    ----------
    y_true : array, shape S = (..., C, ...)
        Targets in [0, 1], same shape as ``y_pred`` (rows normally sum to 1).
    y_pred : array, shape S
        Probabilities, or logits when ``from_logits=True``. Shapes ``(C,)``,
        ``(N, C)`` and ``(N, d1, ..., C)``; the class axis is ``axis``.
    from_logits : bool
        Use :math:`\log p = z - \operatorname{logsumexp}(z)`: finite for any finite logits.
    axis : int
        The class axis (default last).
    class_weights : array of shape (C,), optional
        Non-negative per-class weights :math:`w_c` (PyTorch's ``weight``).
    weights : array broadcastable to S without ``axis``, optional
        Non-negative sample weights :math:`s_i`.
    label_smoothing : float in [0, 1]
    reduction : {"mean", "sum", "none"}
    base : float, optional
        Log base: None for nats, 2 for bits.
    return_grad : bool
        Also return the gradient with respect to ``y_pred`` (the logits when ``from_logits=True``).
    eps : "auto" or float
        Probabilities are clipped to ``[eps, 1 - eps]`` (each class, no
        renormalisation); ``"auto"`` is the dtype's machine epsilon, ``0.0`` exact.

    Returns
    -------
    loss : scalar, or array of shape S without ``axis`` for ``"none"``
    grad : array of shape S (only with ``return_grad=True``), in ``base``

    Notes
    -----
    * Hard (one-hot) targets give exactly PyTorch ``F.cross_entropy`` with
      ``weight``/``label_smoothing``. For *soft* targets with ``weight``, PyTorch's
      mean divides by N; xent divides by :math:`\sum_i s_i c_i` so that one-hot and
      integer labels agree. Without class weights both divide by N.
    * Keras clips at 1e-7 *and renormalises* probabilities to sum to 1; xent only
      clips, at the dtype's epsilon, and the gradient goes through the clip
      (0 outside ``[eps, 1 - eps]``), as torch autograd / ``jax.grad`` give.
    * optax ``softmax_cross_entropy`` is the unreduced logits form with :math:`e = 0`.
    * Data-dependent checks are skipped under ``jax.jit`` / ``torch.compile``.

    References
    ----------
    .. [1] C. Szegedy et al., "Rethinking the Inception Architecture", CVPR 2016 (label smoothing).
    .. [2] PyTorch, ``torch.nn.functional.cross_entropy``.

    Examples
    --------
    >>> import numpy as np, xent
    >>> y = np.array([1.0, 0.0, 0.0, 0.0])
    >>> p = np.array([0.775, 0.116, 0.039, 0.070])
    >>> round(float(xent.categorical_cross_entropy(y, p, base=2)), 5)
    0.36773
    >>> z = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.2]])
    >>> t = np.array([[1.0, 0.0, 0.0], [0.2, 0.8, 0.0]])
    >>> loss, grad = xent.categorical_cross_entropy(t, z, from_logits=True, return_grad=True)
    >>> round(float(loss), 6)
    0.514291
    >>> np.allclose(grad, (xent.softmax(z) - t) / 2)
    True
    """
    xp = get_namespace(y_true, y_pred, class_weights, weights, names=("y_true", "y_pred", "class_weights", "weights"))
    a = prepare_categorical(
        y_pred, class_weights, weights, xp, axis=axis, from_logits=from_logits, reduction=reduction,
        base=base, label_smoothing=label_smoothing, return_grad=return_grad, eps=eps,
    )
    x = a.predictions
    t = as_float_array(y_true, xp, like=x, name="y_true")
    check_shape("y_true", t, tuple(x.shape), what="the shape of `y_pred`")
    check_values_in("y_true", t, xp, low=0.0, high=1.0, what="targets")
    out = None
    if a.from_logits:  # large NumPy logits: the engine; None means the reference below
        out = engine.categorical_cross_entropy(
            x, t, axis=a.axis, class_weights=a.class_weights, weights=a.sample_weights,
            label_smoothing=a.label_smoothing, reduction=a.reduction, return_grad=a.return_grad,
        )
    if out is None:
        out = categorical_core(
            t, x, xp, axis=a.axis, from_logits=a.from_logits, eps=a.eps, class_weights=a.class_weights,
            label_smoothing=a.label_smoothing, sample_weights=a.sample_weights, keep=None, reduction=a.reduction,
            return_grad=a.return_grad,
        )
    return finish(out[0], out[1], xp, base=a.base, return_grad=a.return_grad, dtype=a.dtype)


@overload
def sparse_categorical_cross_entropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    /,
    *,
    from_logits: bool = False,
    axis: int = -1,
    class_weights: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    base: float | None = None,
    return_grad: Literal[False] = False,
    eps: Eps = "auto",
) -> Array: ...


@overload
def sparse_categorical_cross_entropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    /,
    *,
    from_logits: bool = False,
    axis: int = -1,
    class_weights: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    base: float | None = None,
    return_grad: Literal[True],
    eps: Eps = "auto",
) -> tuple[Array, Array]: ...


def sparse_categorical_cross_entropy(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    /,
    *,
    from_logits: bool = False,
    axis: int = -1,
    class_weights: ArrayLike | None = None,
    weights: ArrayLike | None = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    base: float | None = None,
    return_grad: bool = False,
    eps: Eps = "auto",
) -> Array | tuple[Array, Array]:
    r"""Cross-entropy of integer class labels and predicted distributions.

    With label :math:`y_i`, smoothing :math:`e`, :math:`C` classes, class
    weights :math:`w_c` (default 1) and :math:`q_{ic} = (1-e)[c = y_i] + e/C`,

    .. math:: \ell_i = -\sum_c w_c\, q_{ic} \log p_{ic}
              = -(1-e)\, w_{y_i} \log p_{i y_i} - \frac{e}{C} \sum_c w_c \log p_{ic}

    ``"mean"`` is :math:`\sum_i s_i \ell_i / \sum_i s_i w_{y_i}` over examples
    whose label is not ``ignore_index``; when every example is ignored or the
    total weight is 0 the result is 0.0 with a zero gradient. ``"sum"`` is
    :math:`\sum_i s_i \ell_i` and ``"none"`` gives :math:`s_i \ell_i` (0 for
    ignored examples).

    Parameters
    ----------
    y_true : integer array, shape S without ``axis``
        Class labels in ``[0, C)`` of any integer dtype, or ``ignore_index``.
        A 0-d label goes with a ``(C,)`` prediction.
    y_pred : array, shape S = (..., C, ...)
        Probabilities, or logits when ``from_logits=True``; shapes ``(C,)``,
        ``(N, C)``, ``(N, d1, ..., C)`` or any class ``axis``.
    from_logits : bool
        Use :math:`\log p = z - \operatorname{logsumexp}(z)`: finite for any finite logits.
    axis : int
        The class axis of ``y_pred`` (default last).
    class_weights : array of shape (C,), optional
        Non-negative per-class weights (PyTorch's ``weight``).
    weights : array broadcastable to the label shape, optional
        Non-negative sample weights :math:`s_i`.
    ignore_index : int, optional
        Label value whose examples contribute nothing (PyTorch uses -100 by default;
        xent ignores nothing unless asked).
    label_smoothing : float in [0, 1]
    reduction : {"mean", "sum", "none"}
    base : float, optional
        Log base: None for nats, 2 for bits.
    return_grad : bool
        Also return the gradient with respect to ``y_pred``.
    eps : "auto" or float
        Probability clipping to ``[eps, 1 - eps]``; ``"auto"`` is the dtype's
        machine epsilon, ``0.0`` exact (``inf`` when the true class has probability 0).

    Returns
    -------
    loss : scalar, or array of the label shape for ``"none"``
    grad : array of shape S (only with ``return_grad=True``), in ``base``

    Notes
    -----
    * Equals PyTorch ``F.cross_entropy(weight=w, ignore_index=k, label_smoothing=e)``
      for every reduction, and scikit-learn ``log_loss(sample_weight=s)`` for
      probabilities inside ``[eps, 1 - eps]``.
    * PyTorch returns NaN when every example is ignored; xent returns 0.0.
    * optax ``softmax_cross_entropy_with_integer_labels`` is the unreduced, unweighted form.
    * Probabilities are clipped per class without renormalising (Keras renormalises
      and clips at 1e-7); gradients are 0 outside ``[eps, 1 - eps]``, as torch
      autograd / ``jax.grad`` give through this function.
    * Label range checks are skipped under ``jax.jit`` / ``torch.compile``; an
      out-of-range label there gives a loss term of 0 for that example's true class.

    References
    ----------
    .. [1] PyTorch, ``torch.nn.functional.cross_entropy``.
    .. [2] scikit-learn, ``sklearn.metrics.log_loss``.

    Examples
    --------
    >>> import numpy as np, xent
    >>> z = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.2], [0.0, 0.0, 0.0]])
    >>> labels = np.array([0, 1, -100])
    >>> round(float(xent.sparse_categorical_cross_entropy(labels, z, from_logits=True, ignore_index=-100)), 6)
    0.314291
    >>> xent.sparse_categorical_cross_entropy(np.array([-100]), z[:1], from_logits=True, ignore_index=-100)
    np.float64(0.0)
    """
    xp = get_namespace(y_true, y_pred, class_weights, weights, names=("y_true", "y_pred", "class_weights", "weights"))
    a = prepare_categorical(
        y_pred, class_weights, weights, xp, axis=axis, from_logits=from_logits, reduction=reduction,
        base=base, label_smoothing=label_smoothing, return_grad=return_grad, eps=eps,
    )
    x, ax, n_classes = a.predictions, a.axis, a.n_classes
    labels = xp.asarray(y_true)
    check_integer_dtype("y_true", labels, xp)
    ignore_index = check_index("ignore_index", ignore_index)
    check_shape("y_true", labels, a.example_shape, what=f"`y_pred`'s shape without its class axis {ax}")
    # One signed integer type for every label dtype, so comparing with a negative ignore_index is exact.
    labels = xp.astype(labels, xp.asarray(0).dtype, copy=False)  # no copy when already that type
    check_labels("y_true", labels, xp, num_classes=n_classes, ignore_index=ignore_index)
    out = None
    if a.from_logits:  # large NumPy or torch logits: the fast kernels; None means the reference below
        options: dict[str, Any] = dict(
            axis=ax, class_weights=a.class_weights, weights=a.sample_weights, ignore_index=ignore_index,
            label_smoothing=a.label_smoothing, reduction=a.reduction, return_grad=a.return_grad,
        )
        out = engine.sparse_categorical_cross_entropy(x, labels, **options)
        if out is None:
            out = torch_sparse_cross_entropy(x, labels, **options)
    if out is None:
        keep = None if ignore_index is None else labels != ignore_index
        out = sparse_core(
            labels, x, xp, axis=ax, from_logits=a.from_logits, eps=a.eps, class_weights=a.class_weights,
            label_smoothing=a.label_smoothing, sample_weights=a.sample_weights, keep=keep, reduction=a.reduction,
            return_grad=a.return_grad,
        )
    return finish(out[0], out[1], xp, base=a.base, return_grad=a.return_grad, dtype=a.dtype)
