"""Array-namespace resolution: the one place that imports array_api_compat.

Public functions resolve ``xp`` once with :func:`get_namespace` and pass ``xp=``
down to private helpers. Frameworks are never imported here eagerly:
array_api_compat only imports torch or JAX when it is handed their arrays.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

__all__ = [
    "accumulate_sum",
    "as_float_array",
    "compute_dtype",
    "device_of",
    "get_namespace",
    "is_numpy_namespace",
    "is_traced",
    "library_name",
    "scalar",
    "to_numpy",
    "to_result",
]


def library_name(x: Any) -> str:
    """Name of the array library that owns ``x`` ("numpy", "torch", "jax", ...)."""
    if array_api_compat.is_numpy_array(x):
        return "numpy"
    if array_api_compat.is_torch_array(x):
        return "torch"
    if array_api_compat.is_jax_array(x):
        return "jax"
    if array_api_compat.is_cupy_array(x):
        return "cupy"
    if array_api_compat.is_dask_array(x):
        return "dask"
    return type(x).__module__.split(".", 1)[0]


def _is_array(x: Any) -> bool:
    # Python scalars, lists and tuples are "array-likes" that follow the arrays' namespace.
    return x is not None and not isinstance(x, (bool, int, float, complex, list, tuple)) and (
        array_api_compat.is_array_api_obj(x)
    )


def get_namespace(*arrays: Any, names: tuple[str, ...] | None = None) -> Any:
    """Return the array namespace shared by ``arrays``.

    Python scalars, lists and tuples take the namespace of the other arguments,
    NumPy when all are array-likes. Mixing two array libraries is a TypeError
    that names the arguments (``names`` gives the argument names, in order).
    """
    seen: dict[str, str] = {}
    real = []
    for i, a in enumerate(arrays):
        if not _is_array(a):
            continue
        real.append(a)
        lib = library_name(a)
        seen.setdefault(lib, names[i] if names and i < len(names) else f"argument {i}")
    if len(seen) > 1:
        described = ", ".join(f"`{arg}` is a {lib} array" for lib, arg in seen.items())
        raise TypeError(
            f"arrays from different libraries cannot be mixed: {described}; "
            "convert them to one library first"
        )
    if not real:
        return array_api_compat.array_namespace(np.empty(0))
    return array_api_compat.array_namespace(*real)


def is_numpy_namespace(xp: Any) -> bool:
    return array_api_compat.is_numpy_namespace(xp)


def device_of(x: Any) -> Any:
    return array_api_compat.device(x)


def is_traced(*arrays: Any) -> bool:
    """True when any array is an abstract value (jax.jit tracer, torch.compile graph).

    Data-dependent checks are skipped for such arrays: their values are unknown.
    """
    for a in arrays:
        if a is None:
            continue
        if array_api_compat.is_jax_array(a):
            import jax  # optional dependency: imported only when handed its arrays

            if isinstance(a, jax.core.Tracer):
                return True
        elif array_api_compat.is_torch_array(a):
            import torch  # optional dependency: imported only when handed its arrays

            if torch.compiler.is_compiling():
                return True
    return False


def to_numpy(x: Any) -> np.ndarray:
    """A host NumPy copy (or view) of an eager array, for error reporting and I/O."""
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def as_float_array(x: Any, xp: Any, *, like: Any = None, name: str = "x") -> Any:
    """``x`` as a floating array of ``xp``; integer/bool inputs are promoted.

    With ``like``, the result takes its dtype and device (used for targets, scalars
    and weights that must follow the predictions). Anything that is not real numbers
    (None, strings, objects, complex numbers, whose imaginary part a cast would
    silently drop) is a TypeError naming the argument ``name``.
    """
    if not _is_array(x):
        if x is None:
            raise TypeError(f"`{name}` must be an array of real numbers, got None")
        try:
            x = xp.asarray(x)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"`{name}` must be an array of real numbers: {exc}") from None
    if not xp.isdtype(x.dtype, ("bool", "integral", "real floating")):
        raise TypeError(f"`{name}` must hold real numbers (bool, integer or real floating), got dtype {x.dtype}")
    if like is not None:
        # astype / to_device, not asarray: keeps a torch tensor's autograd graph (gradients with
        # respect to targets and weights) without torch's "unspecified requires_grad" warning.
        return array_api_compat.to_device(xp.astype(x, like.dtype, copy=False), device_of(like))
    if not xp.isdtype(x.dtype, "real floating"):
        # Promote on entry: integer or boolean probabilities become the default float.
        x = xp.astype(x, xp.asarray(0.0).dtype)
    return x


def compute_dtype(x: Any, xp: Any) -> tuple[Any, Any]:
    """Return ``(x to compute with, dtype to return results in)``.

    Half precision (float16, bfloat16) computes in float32, as torch's CPU kernels do:
    a float16 sum of 128256 softmax terms overflows at 65504, and float32 keeps every
    step well inside the range and accurate. Other dtypes come back as they are.
    """
    if xp.finfo(x.dtype).bits >= 32:
        return x, x.dtype
    return xp.astype(x, xp.float32), x.dtype


def scalar(value: float, like: Any, xp: Any) -> Any:
    """A 0-d array holding ``value`` with the dtype and device of ``like``."""
    return xp.asarray(value, dtype=like.dtype, device=device_of(like))


def accumulate_sum(x: Any, xp: Any, *, axis: Any = None) -> Any:
    """Sum ``x`` with a float64 accumulator where the library has one.

    Summing 1e8 float32 terms naively loses digits; float64 keeps the sum exact
    to ~1e-16 relative. JAX without x64 falls back to XLA's pairwise float32 sum.
    """
    if array_api_compat.is_jax_namespace(xp):
        import jax  # optional dependency: imported only when handed its arrays

        if jax.dtypes.canonicalize_dtype(jax.numpy.float64) != jax.numpy.float64:  # x64 is off
            return xp.sum(x, axis=axis)
    if array_api_compat.is_torch_namespace(xp) and x.device.type == "mps":
        return xp.sum(x, axis=axis)
    return xp.sum(xp.astype(x, xp.float64), axis=axis)


def to_result(x: Any, xp: Any) -> Any:
    """NumPy callers get a NumPy scalar for 0-d results; other libraries keep arrays."""
    if is_numpy_namespace(xp) and getattr(x, "ndim", None) == 0:
        return x[()]
    return x
