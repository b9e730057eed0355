"""The compiled kernels, :mod:`xent._native`, loaded on first use.

``pip install`` builds the extension (C++17, nanobind, scikit-build-core; the
sources are in ``src/native/``). :func:`native` returns the module, or None when
it cannot be imported (a source checkout that was never built, an unsupported
platform) or when ``XENT_NATIVE=0`` is set. Then xent runs its pure-NumPy
kernels, which give the same results more slowly, and says so once with a
RuntimeWarning naming the rebuild command.
"""

from __future__ import annotations

import importlib
import os
import warnings
from types import ModuleType

__all__ = ["REBUILD_HINT", "native"]

REBUILD_HINT = "pip install -e . (in the source checkout) or pip install --force-reinstall xent-ml"

_loaded: list[ModuleType | None] = []


def native() -> ModuleType | None:
    """The extension module, or None (fallback to NumPy; warned about once per process)."""
    if _loaded:
        return _loaded[0]
    module: ModuleType | None = None
    if os.environ.get("XENT_NATIVE", "1") != "0":
        try:
            module = importlib.import_module("xent._native")  # loaded on first use; may be absent (XENT_NATIVE=0 path)
        except ImportError as exc:
            warnings.warn(
                f"xent runs without its native kernels ({exc}); results are the same but slower. "
                f"Rebuild them with: {REBUILD_HINT}",
                RuntimeWarning,
                stacklevel=2,
            )
    _loaded.append(module)
    return module
