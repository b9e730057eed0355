"""The types of xent's public signatures, re-exported by :mod:`xent.typing`.

Arrays come from any library that array_api_compat accepts (NumPy, PyTorch,
JAX, CuPy, ...), so :data:`Array` is ``Any``, as in array-api-extra: a checker
cannot follow an array across libraries, and a ``Protocol`` would reject the
scalars, lists and 0-d arrays the functions take. The option types are exact:
each ``Literal`` is also the list of allowed values in the error messages
(``typing.get_args``; see :func:`xent._lib.validation.check_choice`).
"""

from __future__ import annotations

from typing import Any, Literal, TypeAlias

__all__ = ["Array", "ArrayLike", "Eps", "Reduction"]

#: An array of NumPy, PyTorch, JAX or another array-API library.
Array: TypeAlias = Any
#: An array, or what converts to one (a Python number, a nested list or tuple).
ArrayLike: TypeAlias = Any
#: How per-example losses are reduced (see :mod:`xent.losses._reduce`).
Reduction: TypeAlias = Literal["mean", "sum", "none"]
#: Probability clipping: ``"auto"`` (the dtype's machine epsilon) or a number in [0, 0.5).
Eps: TypeAlias = float | Literal["auto"]
