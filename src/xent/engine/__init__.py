"""The fast CPU engine: a registry of kernels for large NumPy inputs.

Public functions validate their arguments, then (for NumPy inputs only) call
:func:`dispatch`. A kernel returns ``NotImplemented`` to decline (too small,
unsupported dtype or option), and the caller then runs the reference path.
The engine is transparent: same results within float tolerance, same errors
(it is only reached after validation), same options.

Kernel contracts (all arrays are NumPy, already validated; ``axis`` is a
non-negative int; losses are in nats; the caller applies ``base`` and scalar
conversion):

``"logsumexp" | "log_softmax" | "softmax"``: ``kernel(x, *, axis) -> ndarray``

``"sparse_categorical_cross_entropy"``:
    ``kernel(logits, labels, *, axis, class_weights, weights, ignore_index,
    label_smoothing, reduction, return_grad) -> (loss, grad | None)``

``"categorical_cross_entropy"``:
    ``kernel(logits, targets, *, axis, class_weights, weights,
    label_smoothing, reduction, return_grad) -> (loss, grad | None)``

``"binary_cross_entropy"``:
    ``kernel(y_true, logits, *, weights, pos_weight, label_smoothing,
    reduction, return_grad) -> (loss, grad | None)``

The loss kernels are called only with ``from_logits=True``. ``loss`` is a 0-d
array of the logits' dtype for "mean"/"sum" and an array of the per-example
shape for "none"; ``grad`` has the shape and dtype of the logits.

Choosing the path
-----------------
``XENT_ENGINE=reference`` in the environment, :func:`set_engine("reference")`
or the :func:`use_engine` context manager force the reference path.

Threads
-------
The kernels split the rows into cache-sized tiles and run them on a pool of
threads (NumPy releases the GIL inside ufuncs). :func:`set_num_threads` (also
``xent.set_num_threads``), else the environment variable ``XENT_NUM_THREADS``,
else the number of CPUs available sets how many.

Kernels
-------
``xent.engine.kernels`` (imported on the first dispatch) registers them. With
numba installed (``pip install "xent-ml[fast]"``), C-contiguous inputs with the
classes on the last axis run fused single-sweep kernels (``_numba.py``,
compiled on first use and cached on disk; ``XENT_NUMBA=0`` turns them off);
everything else runs blocked NumPy kernels (``_softmax.py``,
``_crossentropy.py``, ``_binary.py``) on a thread pool.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable, Iterator
from typing import Any, Literal

from xent._lib.validation import check_choice
from xent.engine._threads import get_num_threads, set_num_threads

EngineName = Literal["auto", "reference"]

__all__ = [
    "EngineName",
    "dispatch",
    "get_engine",
    "get_num_threads",
    "register",
    "set_engine",
    "set_num_threads",
    "use_engine",
]

_KERNELS: dict[str, Callable[..., Any]] = {}
_state = {"engine": check_choice("XENT_ENGINE", os.environ.get("XENT_ENGINE", "auto"), EngineName)}
_loaded = False


def register(op: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator that registers ``fn`` as the kernel for ``op``."""

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        _KERNELS[op] = fn
        return fn

    return deco


def set_engine(name: EngineName) -> None:
    """Select ``"auto"`` (fast kernels where they apply) or ``"reference"`` (never the engine)."""
    _state["engine"] = check_choice("name", name, EngineName)


def get_engine() -> str:
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


def _load_kernels() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    try:
        importlib.import_module("xent.engine.kernels")  # registers the kernels on import
    except ModuleNotFoundError as exc:
        # No kernels module yet means "reference only"; any other import error is a bug.
        if exc.name != "xent.engine.kernels":
            raise


def dispatch(op: str, *args: Any, **kwargs: Any) -> Any:
    """Run the registered kernel for ``op`` or return ``NotImplemented``."""
    if _state["engine"] == "reference":
        return NotImplemented
    _load_kernels()
    kernel = _KERNELS.get(op)
    if kernel is None:
        return NotImplemented
    return kernel(*args, **kwargs)
