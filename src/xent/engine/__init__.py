"""The fast CPU engine: compiled kernels for large NumPy inputs, behind typed functions.

The public functions (:func:`xent.logsumexp`, :func:`xent.sparse_categorical_cross_entropy`,
...) validate their arguments and then call the function of the same name here.
Each returns its result, or ``None`` when the engine does not take the input (not
NumPy, not float32/float64, fewer than :data:`MIN_ELEMENTS` values, no classes, or
the reference path was asked for); the caller then runs the reference path. The
engine is transparent: the same options, the same errors (it runs after
validation), and results within 1e-6 (float32) / 1e-12 (float64) of the exact value.

Kernels
-------
The compiled extension :mod:`xent._native` (C++17, ``src/native/engine/``, built
by ``pip install``) holds one set of kernels per instruction set (AVX-512, AVX2
and a baseline) and picks the best the CPU runs when it is first used. They read
each row once with an online (running-max) softmax normaliser, release the GIL,
and run on :func:`get_num_threads` threads. Without the extension (``XENT_NATIVE=0``,
or a build that failed) the engine runs blocked NumPy kernels instead
(``_softmax.py``, ``_crossentropy.py``, ``_binary.py``) and says so once.

Arrays are taken as they are: any class axis, any strides, no copy (a permuted
N-d view whose axes cannot be merged is the only layout copied first). The loss
functions can write the gradient into a caller's buffer (``grad_out``, for
example a ``torch.Tensor.numpy()`` view).

Choosing the path
-----------------
``XENT_ENGINE=reference`` in the environment, :func:`set_engine("reference")`
or the :func:`use_engine` context manager force the reference path.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np

from xent._lib.native import native
from xent._lib.validation import check_choice
from xent.engine import _compiled
from xent.engine._layout import SoftmaxKind
from xent.engine._threads import get_num_threads, set_num_threads

EngineName = Literal["auto", "reference"]
Array = np.ndarray
LossAndGrad = tuple[np.ndarray, np.ndarray | None]

__all__ = [
    "MIN_ELEMENTS",
    "EngineName",
    "binary_cross_entropy",
    "categorical_cross_entropy",
    "get_engine",
    "get_num_threads",
    "log_softmax",
    "logsumexp",
    "set_engine",
    "set_num_threads",
    "softmax",
    "sparse_categorical_cross_entropy",
    "use_engine",
]

#: Inputs with fewer values than this take the reference path (a call's fixed costs, a few
#: microseconds, are then a large share; at this size the engine is already >= 1.5x faster).
MIN_ELEMENTS = 1 << 13

_state = {"engine": check_choice("XENT_ENGINE", os.environ.get("XENT_ENGINE", "auto"), EngineName)}
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def set_engine(name: EngineName) -> None:
    """Select ``"auto"`` (the engine where it applies) or ``"reference"`` (never the engine)."""
    _state["engine"] = check_choice("name", name, EngineName)


def get_engine() -> str:
    """The engine in use: ``"auto"`` or ``"reference"``."""
    return _state["engine"]


@contextlib.contextmanager
def use_engine(name: EngineName) -> Iterator[None]:
    """Temporarily select an engine: ``with xent.engine.use_engine("reference"): ...``."""
    previous = get_engine()
    set_engine(name)
    try:
        yield
    finally:
        _state["engine"] = previous


def _takes(x: Any, axis: int | None = None) -> bool:
    if _state["engine"] == "reference":
        return False
    if not isinstance(x, np.ndarray) or x.dtype not in _FLOATS or x.size < MIN_ELEMENTS:
        return False
    return axis is None or x.shape[axis] > 0


def _kernels() -> Any:
    """The compiled engine module, or None (then the NumPy kernels run)."""
    nat = native()
    return None if nat is None else nat.engine


def _softmax_family(x: Any, axis: int, kind: SoftmaxKind, out: Array | None) -> Array | None:
    if not _takes(x, axis):
        return None
    nat = _kernels()
    if nat is not None:
        return _compiled.softmax_family(nat, x, axis, kind, out)
    from xent.engine._softmax import softmax_family  # start-up time: loaded only without the extension

    res = softmax_family(x, axis, kind)
    if res is not None and out is not None:
        np.copyto(out, res)
        res = out
    return res


def logsumexp(x: Any, axis: int) -> Array | None:
    """``log sum exp x`` along ``axis`` (a non-negative int), or None if the engine declines."""
    return _softmax_family(x, axis, "logsumexp", None)


def log_softmax(x: Any, axis: int, *, out: Array | None = None) -> Array | None:
    """``x - logsumexp(x)`` along ``axis``, into ``out`` if given; None if the engine declines."""
    return _softmax_family(x, axis, "log_softmax", out)


def softmax(x: Any, axis: int, *, out: Array | None = None) -> Array | None:
    """``exp(x - logsumexp(x))`` along ``axis``, into ``out`` if given; None if the engine declines."""
    return _softmax_family(x, axis, "softmax", out)


def _with_grad_out(res: LossAndGrad | None, grad_out: Array | None) -> LossAndGrad | None:
    if res is None or grad_out is None or res[1] is None:
        return res
    np.copyto(grad_out, res[1])
    return res[0], grad_out


def sparse_categorical_cross_entropy(
    logits: Any,
    labels: Any,
    *,
    axis: int,
    class_weights: Any = None,
    weights: Any = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    return_grad: bool = False,
    grad_out: Array | None = None,
) -> LossAndGrad | None:
    """Sparse softmax cross-entropy of validated NumPy ``logits`` and integer ``labels``, in nats.

    The options mean what they mean in :func:`xent.sparse_categorical_cross_entropy`
    (``axis`` non-negative, ``class_weights`` of shape (C,), ``weights`` broadcastable
    to the label shape). Returns ``(loss, grad)``: ``loss`` a 0-d array of the logits'
    dtype ("mean", "sum") or the per-example losses ("none"), ``grad`` the gradient of
    ``loss`` with respect to ``logits`` (written into ``grad_out`` when given) or None;
    or None when the engine declines.
    """
    if not _takes(logits, axis):
        return None
    opts = dict(
        axis=axis, class_weights=class_weights, weights=weights, ignore_index=ignore_index,
        label_smoothing=label_smoothing, reduction=reduction, return_grad=return_grad,
    )
    nat = _kernels()
    if nat is not None:
        return _compiled.sparse_ce(nat, logits, labels, grad_out=grad_out, **opts)
    from xent.engine._crossentropy import sparse_ce  # start-up time: loaded only without the extension

    return _with_grad_out(sparse_ce(logits, np.asarray(labels), **opts), grad_out)


def categorical_cross_entropy(
    logits: Any,
    targets: Any,
    *,
    axis: int,
    class_weights: Any = None,
    weights: Any = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    return_grad: bool = False,
    grad_out: Array | None = None,
) -> LossAndGrad | None:
    """Softmax cross-entropy of validated NumPy ``logits`` and target distributions ``targets``.

    As :func:`sparse_categorical_cross_entropy`, with ``targets`` of the logits' shape.
    """
    if not _takes(logits, axis):
        return None
    opts = dict(
        axis=axis, class_weights=class_weights, weights=weights, label_smoothing=label_smoothing,
        reduction=reduction, return_grad=return_grad,
    )
    nat = _kernels()
    if nat is not None:
        return _compiled.categorical_ce(nat, logits, targets, grad_out=grad_out, **opts)
    from xent.engine._crossentropy import categorical_ce  # start-up time: loaded only without the extension

    return _with_grad_out(categorical_ce(logits, np.asarray(targets), **opts), grad_out)


def binary_cross_entropy(
    y_true: Any,
    logits: Any,
    *,
    weights: Any = None,
    pos_weight: Any = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    return_grad: bool = False,
    grad_out: Array | None = None,
) -> LossAndGrad | None:
    """Binary cross-entropy with validated NumPy ``logits``; targets, weights, pos_weight broadcast to them.

    Returns ``(loss, grad)`` as :func:`sparse_categorical_cross_entropy`, or None.
    """
    if not _takes(logits):
        return None
    opts = dict(
        weights=weights, pos_weight=pos_weight, label_smoothing=label_smoothing, reduction=reduction,
        return_grad=return_grad,
    )
    nat = _kernels()
    if nat is not None:
        return _compiled.binary_ce(nat, y_true, logits, grad_out=grad_out, **opts)
    from xent.engine._binary import binary_ce  # start-up time: loaded only without the extension

    return _with_grad_out(binary_ce(np.asarray(y_true), logits, **opts), grad_out)
