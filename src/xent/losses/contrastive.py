"""Contrastive losses over the N x N logits of N matched pairs: SigLIP (sigmoid) and CLIP (softmax).

Both take two (N, d) embedding matrices whose row i are a matched pair and score
every pair ``(i, j)`` with the logit ``l_ij = scale * x_i . y_j (+ bias)``.
SigLIP is binary cross-entropy on every entry (positive on the diagonal);
CLIP is softmax cross-entropy over the rows and over the columns with the
diagonal as the target. These are the reference forms on NumPy, PyTorch and
JAX arrays (the full N x N matrix); :mod:`xent.torch` has the chunked and
distributed forms of the same formulas.

With ``G = d result / d l`` the gradients of the inputs are
``d x = scale G y``, ``d y = scale G^T x``, ``d scale = sum_ij G_ij x_i . y_j
= sum_i x_i . (G y)_i`` and ``d bias = sum_ij G_ij``.
"""

from __future__ import annotations

import math
from typing import Any, Literal, overload

from xent._lib.namespace import accumulate_sum, as_float_array, device_of, get_namespace, is_traced, to_result
from xent._lib.typing import Array, ArrayLike, Reduction
from xent._lib.validation import check_fraction, check_shape
from xent.losses._categorical_core import sparse_core
from xent.losses._common import check_flag, check_loss_options, finish
from xent.losses._reduce import reduce_losses
from xent.primitives import _log_sigmoid, _sigmoid

__all__ = ["clip_loss", "siglip_loss"]


def _check_pairs(x: Any, y: Any, xp: Any) -> tuple[Any, Any]:
    """Two float (N, d) arrays with N >= 1 (promoted to one dtype), or a ValueError naming the argument."""
    x = as_float_array(x, xp)
    y = as_float_array(y, xp)
    if x.ndim != 2:
        raise ValueError(f"`x` must have shape (N, d) (one embedding per row), got shape {tuple(x.shape)}")
    if y.ndim != 2:
        raise ValueError(f"`y` must have shape (N, d) (one embedding per row), got shape {tuple(y.shape)}")
    n, d = x.shape
    if y.shape[1] != d:
        raise ValueError(f"`y` must have d = {d} columns (the embedding size of `x`), got shape {tuple(y.shape)}")
    check_shape("y", y, (n, d), what="row i of `y` is the match of row i of `x`")
    if n == 0:
        raise ValueError("`x` and `y` must hold at least one pair (N >= 1), got N = 0")
    dtype = xp.result_type(x, y)
    return xp.astype(x, dtype, copy=False), xp.astype(y, dtype, copy=False)


def _check_scalar(name: str, value: Any, xp: Any, like: Any, *, positive: bool) -> Any:
    """A real number or 0-d array, returned as a 0-d array of ``like``'s dtype; finite (and > 0 if asked)."""
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be a real number or a 0-d array, got {value!r}")
    same = getattr(value, "dtype", None) == like.dtype and getattr(value, "device", None) == getattr(like, "device", None)
    # An array of the right dtype is used as it is (a torch scale that requires grad keeps its graph).
    v = value if same else as_float_array(value, xp, like=like)
    if v.ndim != 0:
        raise ValueError(f"`{name}` must be a real number or a 0-d array, got shape {tuple(v.shape)}")
    what = "a finite number > 0 (the inverse temperature)" if positive else "a finite number"
    if not is_traced(v):
        ok = bool(xp.isfinite(v)) and (not positive or bool(v > 0))
        if not ok:
            raise ValueError(f"`{name}` must be {what}, got {float(v)!r}")
    return v


def _options(reduction: Any, base: Any, return_grad: Any) -> tuple[Reduction, float | None, bool]:
    checked, base, _ = check_loss_options(reduction=reduction, base=base, label_smoothing=0.0)
    return checked, base, check_flag("return_grad", return_grad)


def _input_grads(g: Any, x: Any, y: Any, scale: Any, xp: Any) -> tuple[Any, Any, Any]:
    """``(d x, d y, d scale)`` from ``g = d result / d logits`` for logits ``scale * x @ y.T (+ bias)``."""
    gy = xp.matmul(g, y)
    # d scale = sum_ij g_ij x_i . y_j, taken as sum_i x_i . (g y)_i: no second N x N product.
    d_scale = xp.astype(accumulate_sum(x * gy, xp), x.dtype)
    return scale * gy, scale * xp.matmul(xp.matrix_transpose(g), x), d_scale


def _convert(grads: tuple[Any, ...], base: float | None, xp: Any) -> tuple[Any, ...]:
    d = 1.0 if base is None else math.log(base)
    return tuple(to_result(g if d == 1.0 else g / d, xp) for g in grads)


@overload
def siglip_loss(
    x: ArrayLike,
    y: ArrayLike,
    /,
    *,
    scale: ArrayLike = 1.0,
    bias: ArrayLike = 0.0,
    reduction: Reduction = "mean",
    base: float | None = None,
    return_grad: Literal[False] = False,
) -> Array: ...


@overload
def siglip_loss(
    x: ArrayLike,
    y: ArrayLike,
    /,
    *,
    scale: ArrayLike = 1.0,
    bias: ArrayLike = 0.0,
    reduction: Reduction = "mean",
    base: float | None = None,
    return_grad: Literal[True],
) -> tuple[Array, tuple[Array, ...]]: ...


def siglip_loss(
    x: ArrayLike,
    y: ArrayLike,
    /,
    *,
    scale: ArrayLike = 1.0,
    bias: ArrayLike = 0.0,
    reduction: Reduction = "mean",
    base: float | None = None,
    return_grad: bool = False,
) -> Array | tuple[Array, tuple[Array, ...]]:
    r"""SigLIP's pairwise sigmoid loss: binary cross-entropy on every pair of a batch.

    Row :math:`i` of ``x`` and row :math:`i` of ``y`` are a matched pair (an image and
    its caption); every other pair :math:`(i, j)` is a negative. With the logits
    :math:`l_{ij} = s\, x_i \cdot y_j + b` and :math:`z_{ij} = +1` for :math:`i = j`,
    :math:`-1` otherwise,

    .. math:: \ell_i = -\sum_{j=1}^{N} \log \sigma(z_{ij}\, l_{ij}),
              \qquad \mathrm{loss} = \frac{1}{N} \sum_i \ell_i \quad (\text{"mean"})

    ``"mean"`` divides the sum over all :math:`N^2` pairs by :math:`N`, not by
    :math:`N^2`, as the SigLIP paper and open_clip's ``SigLipLoss`` do; ``"sum"`` is
    :math:`\sum_i \ell_i`, ``"none"`` gives the per-row sums :math:`\ell_i`.

    Parameters
    ----------
    x, y : arrays of shape (N, d)
        The two towers' embeddings, N >= 1, used as given: no normalisation is
        applied (L2-normalise them first if your model expects it, as SigLIP does).
        Integer inputs are promoted to the default float.
    scale : float or 0-d array, > 0
        :math:`s`, the inverse temperature (SigLIP learns :math:`t'` with :math:`s = e^{t'}`,
        initialised to :math:`\log 10`).
    bias : float or 0-d array
        :math:`b` (SigLIP initialises it to -10).
    reduction : {"mean", "sum", "none"}
    base : float, optional
        Log base: None for nats, 2 for bits.
    return_grad : bool
        Also return ``(d x, d y, d scale, d bias)``, the gradients of the returned
        loss (for ``"none"``, of its sum).

    Returns
    -------
    loss : scalar, or array of shape (N,) for ``"none"``
        A NumPy scalar for NumPy inputs; otherwise an array of the inputs' library.
    grads : tuple ``(d x, d y, d scale, d bias)``, only with ``return_grad=True``
        Shapes (N, d), (N, d), (), (); ``x``'s dtype and library.

    Notes
    -----
    :math:`-\log\sigma(m)` is computed as :math:`\max(-m, 0) + \log(1 + e^{-|m|})`: finite
    and exact for any finite logit, including confident pairs. The derivative
    :math:`\partial \ell / \partial l_{ij} = -z_{ij}\, \sigma(-z_{ij} l_{ij})`.
    Builds the N x N logits; :func:`xent.torch.siglip_loss` is the chunked and
    distributed form.

    References
    ----------
    .. [1] X. Zhai, B. Mustafa, A. Kolesnikov, L. Beyer, "Sigmoid Loss for Language
       Image Pre-Training", ICCV 2023 (arXiv:2303.15343).
    .. [2] open_clip, ``open_clip.loss.SigLipLoss``.

    Examples
    --------
    >>> import numpy as np, xent
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> round(float(xent.siglip_loss(x, x, scale=10.0, bias=-5.0)), 6)  # 2 positives at +5, 2 negatives at -5
    0.013431
    >>> loss, (dx, dy, ds, db) = xent.siglip_loss(x, x, scale=10.0, bias=-5.0, return_grad=True)
    >>> dx.shape, round(float(db), 6)
    ((2, 2), 0.0)
    """
    xp = get_namespace(x, y, scale, bias, names=("x", "y", "scale", "bias"))
    reduction, base, return_grad = _options(reduction, base, return_grad)
    x, y = _check_pairs(x, y, xp)
    s = _check_scalar("scale", scale, xp, x, positive=True)
    b = _check_scalar("bias", bias, xp, x, positive=False)
    n = x.shape[0]
    logits = s * xp.matmul(x, xp.matrix_transpose(y)) + b
    # z = +1 on the diagonal (the matched pairs), -1 elsewhere.
    z = 2.0 * xp.eye(n, dtype=x.dtype, device=device_of(x)) - 1.0
    margins = z * logits
    per = xp.astype(accumulate_sum(-_log_sigmoid(margins, xp), xp, axis=1), x.dtype)
    result, w = reduce_losses(per, xp, reduction=reduction)
    if not return_grad:
        return finish(result, None, xp, base=base, return_grad=False)
    # d/dl of -log sigmoid(z l) is -z sigmoid(-z l); row i is scaled by d result / d l_i.
    g = -z * _sigmoid(-margins, xp) * xp.expand_dims(w, axis=1)
    dx, dy, ds = _input_grads(g, x, y, s, xp)
    db = xp.astype(accumulate_sum(g, xp), x.dtype)
    return finish(result, None, xp, base=base, return_grad=False), _convert((dx, dy, ds, db), base, xp)


@overload
def clip_loss(
    x: ArrayLike,
    y: ArrayLike,
    /,
    *,
    scale: ArrayLike = 1.0,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    base: float | None = None,
    return_grad: Literal[False] = False,
) -> Array: ...


@overload
def clip_loss(
    x: ArrayLike,
    y: ArrayLike,
    /,
    *,
    scale: ArrayLike = 1.0,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    base: float | None = None,
    return_grad: Literal[True],
) -> tuple[Array, tuple[Array, ...]]: ...


def clip_loss(
    x: ArrayLike,
    y: ArrayLike,
    /,
    *,
    scale: ArrayLike = 1.0,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    base: float | None = None,
    return_grad: bool = False,
) -> Array | tuple[Array, tuple[Array, ...]]:
    r"""CLIP's symmetric softmax cross-entropy over the rows and the columns of the pair logits.

    Row :math:`i` of ``x`` and row :math:`i` of ``y`` are a matched pair. With the
    logits :math:`l_{ij} = s\, x_i \cdot y_j`, smoothing :math:`e` and
    :math:`q_{ij} = (1-e)[i = j] + e/N`,

    .. math:: \ell_i = \tfrac12 \Big(-\sum_j q_{ij} \log \operatorname{softmax}_j(l_{i\cdot})_j
              - \sum_j q_{ij} \log \operatorname{softmax}_j(l_{\cdot i})_j\Big)

    the mean of the cross-entropy of row :math:`i` (``x`` to ``y``) and of column
    :math:`i` (``y`` to ``x``), each with the matched pair as the target. ``"mean"``
    is :math:`\frac1N \sum_i \ell_i`, which is open_clip's ``ClipLoss``
    (``(F.cross_entropy(l, arange(N)) + F.cross_entropy(l.T, arange(N))) / 2``);
    ``"sum"`` is :math:`\sum_i \ell_i` and ``"none"`` gives :math:`\ell_i`.

    Parameters
    ----------
    x, y : arrays of shape (N, d)
        The two towers' embeddings, N >= 1, used as given: no normalisation is
        applied (CLIP L2-normalises them first).
    scale : float or 0-d array, > 0
        :math:`s = 1/\tau`, the inverse temperature (CLIP learns :math:`\log s`, initialised
        to :math:`\log(1/0.07)` and clipped at 100).
    label_smoothing : float in [0, 1]
        :math:`e`, as in ``F.cross_entropy(label_smoothing=e)`` over the N candidates.
    reduction : {"mean", "sum", "none"}
    base : float, optional
        Log base: None for nats, 2 for bits.
    return_grad : bool
        Also return ``(d x, d y, d scale)``, the gradients of the returned loss
        (for ``"none"``, of its sum).

    Returns
    -------
    loss : scalar, or array of shape (N,) for ``"none"``
    grads : tuple ``(d x, d y, d scale)``, only with ``return_grad=True``

    Notes
    -----
    Each direction is :func:`xent.sparse_categorical_cross_entropy` on the logits
    (rows, then columns) with labels ``arange(N)``: exact for confident rows, finite
    for any finite logits. With :math:`P^{row}`, :math:`P^{col}` the row- and
    column-softmax, :math:`\partial\,\mathrm{loss} / \partial l_{ij} =
    \frac{1}{2N}(P^{row}_{ij} + P^{col}_{ij} - 2 q_{ij})` for ``"mean"``. With N = 1 the
    loss is 0. Builds the N x N logits; :func:`xent.torch.clip_loss` is the chunked
    and distributed form.

    References
    ----------
    .. [1] A. Radford et al., "Learning Transferable Visual Models From Natural
       Language Supervision", ICML 2021 (arXiv:2103.00020).
    .. [2] open_clip, ``open_clip.loss.ClipLoss``.

    Examples
    --------
    >>> import numpy as np, xent
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> round(float(xent.clip_loss(x, x, scale=2.0)), 6)  # log(1 + e^-2) per direction
    0.126928
    >>> loss, (dx, dy, ds) = xent.clip_loss(x, x, scale=2.0, return_grad=True)
    >>> round(float(ds), 6)  # a sharper softmax lowers the loss
    -0.119203
    """
    xp = get_namespace(x, y, scale, names=("x", "y", "scale"))
    reduction, base, return_grad = _options(reduction, base, return_grad)
    e = check_fraction("label_smoothing", label_smoothing)
    x, y = _check_pairs(x, y, xp)
    s = _check_scalar("scale", scale, xp, x, positive=True)
    n = x.shape[0]
    logits = s * xp.matmul(x, xp.matrix_transpose(y))
    labels = xp.arange(n, device=device_of(x))
    ce = {}
    for axis in (1, 0):  # 1: row i over the columns (x to y); 0: column i over the rows (y to x)
        ce[axis] = sparse_core(
            labels, logits, xp, axis=axis, from_logits=True, eps=0.0, class_weights=None, label_smoothing=e,
            sample_weights=None, keep=None, reduction="none", return_grad=return_grad,
        )
    per = (ce[1][0] + ce[0][0]) / 2.0
    result, w = reduce_losses(per, xp, reduction=reduction)
    if not return_grad:
        return finish(result, None, xp, base=base, return_grad=False)
    # Row i's loss weighs row i of its gradient; column j's loss weighs column j of its own.
    half = w / 2.0
    g = ce[1][1] * xp.expand_dims(half, axis=1) + ce[0][1] * xp.expand_dims(half, axis=0)
    dx, dy, ds = _input_grads(g, x, y, s, xp)
    return finish(result, None, xp, base=base, return_grad=False), _convert((dx, dy, ds), base, xp)
